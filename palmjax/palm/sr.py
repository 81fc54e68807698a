"""SRCNN for palm radiographs: trained on simulated (low-res, high-res) capture pairs.

The simulator's low-resolution image is an independent, coarser acquisition of the same
hand (palm patent P3: "pairs of the same content"); the network sees its bicubic
up-scaling and learns the high-resolution capture. Training starts from the shipped
natural-image SRCNN of the same scale when there is one (fine-tuning).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np

from palmjax.data import palm_xray
from palmjax.data.images import PairPool
from palmjax.sr.inference import default_checkpoint
from palmjax.sr.train import SRTrainConfig, train


def palm_pairs(key: jax.Array, n: int, sim: palm_xray.PalmXrayConfig, *,
               progress: bool = False) -> PairPool:
  """``n`` simulated pairs: bicubic-up-scaled LR capture -> HR capture."""
  from palmjax.palm.train import _bicubic_up, simulate
  d = simulate(key, n, sim, progress=progress, desc="simulating SR pairs")
  up = np.concatenate([np.asarray(_bicubic_up(d["lr"][s:s + 64], sim.size))
                       for s in range(0, n, 64)])
  return PairPool(list(up), list(d["hr"]), [f"palm{i:05d}" for i in range(n)], sim.scale)


def train_palm_sr(workdir: str | os.PathLike, *, scale: int = 2, size: int = 128,
                  n_train: int = 512, n_val: int = 32, num_steps: int = 1000,
                  seed: int = 0, export_to: str | None = None, progress: bool = True,
                  log: Callable[[str], None] | None = None) -> tuple[Any, dict]:
  """Trains (resumably) the palm SRCNN; returns ``(state, summary)`` like ``sr.train.train``."""
  sim = palm_xray.PalmXrayConfig(size=size, scale=scale)
  k_train, k_val = jax.random.split(jax.random.key(seed))
  init = default_checkpoint(scale)
  cfg = SRTrainConfig(scale=scale, patch_size=32, batch_size=16, num_steps=num_steps,
                      learning_rate=3e-4, warmup_steps=20, eval_every=max(num_steps // 4, 1),
                      save_every=max(num_steps // 4, 1), seed=seed,
                      train_dirs=(f"simulated:palm_xray:n={n_train}:seed={seed}",),
                      val_dir=f"simulated:palm_xray:n={n_val}:seed={seed}",
                      init_from=str(init) if init.exists() else None)
  return train(cfg, workdir, export_to=export_to, progress=progress, log=log,
               train_pool=palm_pairs(k_train, n_train, sim, progress=progress),
               val_pool=palm_pairs(k_val, n_val, sim))
