"""Flax Linen models (explicit parameter pytrees: ``params = model.init(...)``)."""

from palmjax.models.srcnn import SRCNN, SRCNNConfig

__all__ = ["SRCNN", "SRCNNConfig"]
