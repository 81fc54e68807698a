"""Training the three cue classifiers (F2-F4) on simulated sessions.

Sessions of every kind are rendered with :func:`palmjax.face.simulate.simulate_batch` from
a data seed (identities ``identity_offset + i``), their cue features computed once, and
each cue's classifier fitted (live = 1 vs print / replay / mask = 0; impostors are live
faces and are not used here) and Platt-calibrated on a held-out calibration split. The
exported models (``<out>/<cue>/``) are what :func:`palmjax.face.load_models` reads.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

import jax
import numpy as np

from palmjax import config as config_lib
from palmjax.errors import InputError
from palmjax.face import cues as cues_lib
from palmjax.face import session as session_lib
from palmjax.face import simulate as simulate_lib


@dataclasses.dataclass(frozen=True)
class FaceTrainConfig:
  """A cue-training run (written to ``<out>/train_config.json``)."""
  n_per_kind: int = 96          # sessions per kind (live, print, replay, mask)
  calibration_fraction: float = 0.3
  data_seed: int = 0
  identity_offset: int = 0      # training identities: offset .. offset + n - 1
  chunk: int = 32
  size: int = 64
  n_frames: int = 12
  hidden: int = 16
  steps: int = 600
  learning_rate: float = 1e-2
  weight_decay: float = 1e-3
  seed: int = 0

  def __post_init__(self):
    if self.n_per_kind < 4:
      raise InputError(f"n_per_kind must be >= 4, got {self.n_per_kind}")
    if not 0.05 <= self.calibration_fraction <= 0.7:
      raise InputError("calibration_fraction must lie in [0.05, 0.7]")

  def session_config(self) -> session_lib.SessionConfig:
    return session_lib.SessionConfig(size=self.size, n_frames=self.n_frames)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "FaceTrainConfig":
    return config_lib.from_dict(cls, d)


def simulated_features(key: jax.Array, kinds: tuple[str, ...], n_per_kind: int,
                       scfg: session_lib.SessionConfig, fcfg: cues_lib.FeatureConfig, *,
                       identity_offset: int = 0, chunk: int = 32,
                       log: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
  """Cue features of ``n_per_kind`` simulated sessions of each kind (NumPy).

  Returns ``colour``, ``texture``, ``lighting`` features, ``label`` (1 for live/impostor)
  and ``kind`` (index into :data:`palmjax.face.session.KINDS`).
  """
  out: dict[str, list[np.ndarray]] = {c: [] for c in cues_lib.CUES}
  labels, kinds_idx = [], []
  for ki, kind in enumerate(kinds):
    kkey = jax.random.fold_in(key, session_lib.KINDS.index(kind))
    for s in range(0, n_per_kind, chunk):
      ids = identity_offset + s + np.arange(chunk)
      r = simulate_lib.simulate_batch(jax.random.fold_in(kkey, s), kind, chunk, scfg,
                                     identities=ids)
      f = cues_lib.cue_features(r.frames, fcfg)
      m = min(chunk, n_per_kind - s)
      for c in cues_lib.CUES:
        out[c].append(f[c][:m])
      labels.append(np.full(m, kind in ("live", "impostor"), np.float32))
      kinds_idx.append(np.full(m, session_lib.KINDS.index(kind), np.int32))
    if log:
      log(f"simulated {n_per_kind} {kind} sessions")
  res = {c: np.concatenate(v) for c, v in out.items()}
  res["label"] = np.concatenate(labels)
  res["kind"] = np.concatenate(kinds_idx)
  return res


def train(cfg: FaceTrainConfig, out: str | os.PathLike | None = None, *,
          log: Callable[[str], None] = print) -> dict[str, cues_lib.CueModel]:
  """Simulates, trains and calibrates the three cue classifiers; exports them to ``out``."""
  t0 = time.time()
  fcfg = cues_lib.FeatureConfig()
  data = simulated_features(jax.random.key(cfg.data_seed), ("live",) + session_lib.ATTACK_KINDS,
                            cfg.n_per_kind, cfg.session_config(), fcfg,
                            identity_offset=cfg.identity_offset, chunk=cfg.chunk, log=log)
  n = len(data["label"])
  rng = np.random.default_rng(cfg.seed)
  perm = rng.permutation(n)
  n_cal = int(round(cfg.calibration_fraction * n))
  cal, tr = perm[:n_cal], perm[n_cal:]
  models = {}
  for c in cues_lib.CUES:
    ccfg = cues_lib.CueClassifierConfig(cue=c, n_features=data[c].shape[1], hidden=cfg.hidden,
                                        steps=cfg.steps, learning_rate=cfg.learning_rate,
                                        weight_decay=cfg.weight_decay, seed=cfg.seed)
    params, metrics = cues_lib.fit(ccfg, data[c][tr], data["label"][tr], data[c][cal],
                                   data["label"][cal])
    pc = np.asarray(cues_lib.probability(params, data[c][cal]))
    for ki in np.unique(data["kind"][cal]):
      m = data["kind"][cal] == ki
      metrics[f"mean_p_{session_lib.KINDS[ki]}"] = float(pc[m].mean())
    metrics["train_config"] = cfg.to_dict()
    models[c] = cues_lib.CueModel(ccfg, params, metrics)
    log(f"{c}: calibration accuracy {metrics['calibration_accuracy']:.3f}, "
        + ", ".join(f"P(live|{session_lib.KINDS[k]}) {metrics[f'mean_p_{session_lib.KINDS[k]}']:.2f}"
                    for k in np.unique(data['kind'][cal])))
    if out is not None:
      models[c].export(os.path.join(os.fspath(out), c), fcfg)
  if out is not None:
    from palmjax.checkpointing import write_json
    write_json(os.path.join(os.fspath(out), "train_config.json"), cfg.to_dict())
  log(f"trained the cue classifiers in {time.time() - t0:.0f} s")
  return models
