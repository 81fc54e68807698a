"""Flax Linen models (explicit parameter pytrees: ``params = model.init(...)``)."""

from palmjax.models.palm_classifier import (PalmClassifier, PalmClassifierConfig,
                                            live_probability)
from palmjax.models.srcnn import SRCNN, SRCNNConfig

__all__ = ["PalmClassifier", "PalmClassifierConfig", "SRCNN", "SRCNNConfig", "live_probability"]
