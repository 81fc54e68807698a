"""Super-resolution (palm patent steps P2-P3): SRCNN training, evaluation and inference.

Training lives in :mod:`palmjax.sr.train` (``from palmjax.sr.train import train``); the
package does not re-export the function ``train``, which would shadow that module.
"""

from palmjax.sr.evaluate import EvalRow, evaluate_pool, summarize
from palmjax.sr.inference import (SRModel, default_checkpoint, load_model, super_resolve,
                                  upscale_file)
from palmjax.sr.train import SRTrainConfig, create_train_state, make_train_step

__all__ = [
    "EvalRow",
    "SRModel",
    "SRTrainConfig",
    "create_train_state",
    "default_checkpoint",
    "evaluate_pool",
    "load_model",
    "make_train_step",
    "summarize",
    "super_resolve",
    "upscale_file",
]
