"""SRCNN for palm radiographs: trained on simulated (low-res, high-res) capture pairs.

The simulator's low-resolution image is an independent, coarser acquisition of the same
hand (palm patent P3: "pairs of the same content"); the network sees its bicubic
up-scaling and learns the high-resolution capture. Training starts from the shipped
natural-image SRCNN of the same scale when there is one (fine-tuning).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax
import numpy as np

from palmjax.data import palm_xray
from palmjax.data.images import PairPool
from palmjax.errors import InputError
from palmjax.sr.inference import default_checkpoint
from palmjax.sr.train import SRTrainConfig, train_srcnn


def palm_pairs(key: jax.Array, n: int, sim: palm_xray.PalmXrayConfig, *,
               progress: bool = False) -> PairPool:
  """``n`` simulated pairs: bicubic-up-scaled LR capture -> HR capture."""
  from palmjax.palm.train import _bicubic_up, simulate
  d = simulate(key, n, sim, progress=progress, desc="simulating SR pairs")
  up = np.concatenate([np.asarray(_bicubic_up(d["lr"][s:s + 64], sim.size))
                       for s in range(0, n, 64)])
  return PairPool(list(up), list(d["hr"]), [f"palm{i:05d}" for i in range(n)], sim.scale)


@dataclasses.dataclass(frozen=True)
class PalmSRConfig:
  """What a palm SRCNN run depends on (``palmjax palm train-sr`` flags)."""

  scale: int = 2  # LR capture factor (the simulator's and the network's)
  size: int = 128  # HR capture size (pixels)
  n_train: int = 512  # simulated training pairs
  n_val: int = 32  # simulated validation pairs
  num_steps: int = 1000
  seed: int = 0

  def __post_init__(self):
    for name in ("n_train", "n_val", "num_steps"):
      if getattr(self, name) < 1:
        raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")


def train_palm_sr(workdir: str | os.PathLike, cfg: PalmSRConfig = PalmSRConfig(), *,
                  export_to: str | None = None, progress: bool = True,
                  log: Callable[[str], None] | None = None) -> tuple[Any, dict]:
  """Trains (resumably) the palm SRCNN; returns ``(state, summary)`` like
  :func:`palmjax.sr.train.train_srcnn`."""
  sim = palm_xray.PalmXrayConfig(size=cfg.size, scale=cfg.scale)
  k_train, k_val = jax.random.split(jax.random.key(cfg.seed))
  init = default_checkpoint(cfg.scale)
  every = max(cfg.num_steps // 4, 1)
  sr_cfg = SRTrainConfig(scale=cfg.scale, patch_size=32, batch_size=16,
                         num_steps=cfg.num_steps, learning_rate=3e-4, warmup_steps=20,
                         eval_every=every, save_every=every, seed=cfg.seed,
                         train_dirs=(f"simulated:palm_xray:n={cfg.n_train}:seed={cfg.seed}",),
                         val_dir=f"simulated:palm_xray:n={cfg.n_val}:seed={cfg.seed}",
                         init_from=str(init) if init.exists() else None)
  return train_srcnn(sr_cfg, workdir, export_to=export_to, progress=progress, log=log,
                     train_pool=palm_pairs(k_train, cfg.n_train, sim, progress=progress),
                     val_pool=palm_pairs(k_val, cfg.n_val, sim))
