"""Super-resolution (palm patent steps P2-P3): SRCNN training, evaluation and inference.

Training lives in :mod:`palmjax.sr.train`; its entry point is :func:`train_srcnn` (no
function here is named after a module of the package, so ``palmjax.sr.train`` stays the module).
"""

from palmjax.sr.evaluate import EvalRow, evaluate_pool, summarize
from palmjax.sr.inference import (SRModel, default_checkpoint, load_model, super_resolve,
                                  upscale_file)
from palmjax.sr.train import SRTrainConfig, create_train_state, make_train_step, train_srcnn

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
    "train_srcnn",
    "upscale_file",
]
