"""Training the colour (F2) and texture (F3) cue classifiers on real face crops.

Data: any labelled face crops ``[N, S, S, 3]`` uint8 (live = 1) with a subject id each —
in practice the NUAA builder (:mod:`palmjax.data.nuaa_tfds`), whose crops come from the
pipeline's own detector with the margin the models expect.

Protocol (nothing here ever sees a test split):

* **development subjects** are held out of the training part (default: subject ids
  congruent to 3 mod 4 — 3, 7, 11, 15 in NUAA); the classifiers are fitted on the other
  subjects and Platt-calibrated on the development subjects;
* F5 for stills (one frame: the lighting cue carries no weight) combines colour and
  texture by their **mean log-odds**; the decision threshold is the operating point with
  **BPCER <= ``dev_bpcer``** on the development subjects (the highest threshold that
  rejects at most that share of their live faces), a security-first choice written to
  the bundle (``bundle.json``) with everything needed to reproduce it;
* **F1** (the similarity gate) is recalibrated on genuine / impostor pairs of live faces of
  the training subjects (:func:`palmjax.face.similarity.calibrate_similarity`); the
  calibration is stored in the bundle and used by :func:`palmjax.face.load_models`.

The features (:class:`palmjax.face.cues.FeatureConfig`, ``REAL_FEATURES``): colour moments
of HSV and YCbCr over the whole crop (face plus margin), and uniform colour LBP
histograms (HSV and YCbCr channels; P=8 at R=1 over the face and on a 3x3 grid, and R=2
on the grid) over the face itself (the central ``1 / (1 + 2 margin)`` of the crop).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import numpy as np

from palmjax import config as config_lib
from palmjax.errors import InputError
from palmjax.face import cues as cues_lib
from palmjax.face.fusion import ImageFusionConfig, mean_log_odds, sigmoid

log = logging.getLogger(__name__)

CROP_MARGIN = 0.25
REAL_FEATURES = cues_lib.FeatureConfig(
    face_size=96, crop_margin=CROP_MARGIN, colour_spaces=("hsv", "ycbcr"), lbp_grid=3,
    lbp_extra_radii=(), texture_crop=1.0 / (1.0 + 2 * CROP_MARGIN), texture_frames=4)


@dataclasses.dataclass(frozen=True)
class RealTrainConfig:
  """A training run on real face crops (written to ``bundle.json``)."""
  dev_subject_mod: int = 4        # development subjects: id % mod == rem
  dev_subject_rem: int = 3
  dev_bpcer: float = 0.02         # operating point on the development subjects
  hidden: int = 0                 # 0: logistic regression
  steps: int = 800
  learning_rate: float = 1e-2
  weight_decay: float = 1e-2
  grid_radius2: bool = True       # also LBP at R=2 (global histograms)
  f1_pairs: int = 400             # genuine and impostor pairs for the F1 calibration
  seed: int = 0

  def __post_init__(self):
    if not 0.0 < self.dev_bpcer < 0.5:
      raise InputError(f"dev_bpcer must lie in (0, 0.5), got {self.dev_bpcer}")
    if self.dev_subject_mod < 2 or not 0 <= self.dev_subject_rem < self.dev_subject_mod:
      raise InputError("dev_subject_mod must be >= 2 and 0 <= dev_subject_rem < mod")

  def features(self) -> cues_lib.FeatureConfig:
    return dataclasses.replace(REAL_FEATURES,
                               lbp_extra_radii=(2.0,) if self.grid_radius2 else ())

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "RealTrainConfig":
    return config_lib.from_dict(cls, d)


def crop_features(faces: np.ndarray, fc: cues_lib.FeatureConfig, *, chunk: int = 512
                  ) -> dict[str, np.ndarray]:
  """Colour and texture features of face crops ``[N, S, S, 3]`` (uint8 or float in [0, 1]);
  each crop is a one-frame session."""
  x = np.asarray(faces)
  if x.ndim != 4 or x.shape[-1] != 3:
    raise InputError(f"faces: expected [N, S, S, 3], got {x.shape}")
  if x.shape[1:3] != (fc.face_size, fc.face_size):
    raise InputError(f"faces are {x.shape[2]}x{x.shape[1]}; these features expect "
                     f"{fc.face_size}x{fc.face_size} crops")
  out: dict[str, list[np.ndarray]] = {"colour": [], "texture": []}
  for i in range(0, len(x), chunk):
    b = x[i:i + chunk]
    b = b.astype(np.float32) / 255.0 if b.dtype == np.uint8 else b.astype(np.float32)
    f = cues_lib.cue_features(b[:, None], fc, cues=("colour", "texture"))
    for k in out:
      out[k].append(f[k])
  return {k: np.concatenate(v) for k, v in out.items()}


def fused_log_odds(colour: np.ndarray, texture: np.ndarray) -> np.ndarray:
  """F5 for stills with the lighting cue weightless (:func:`palmjax.face.fusion.
  mean_log_odds`) on arrays of log-odds."""
  return mean_log_odds(np.asarray(colour, np.float64), np.asarray(texture, np.float64))


def face_pairs(labels: np.ndarray, subjects: np.ndarray, n_pairs: int, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
  """Index pairs ``[n, 2]`` of live faces: genuine (same subject, two captures) and
  impostor (two subjects), drawn without replacement of the pair where possible."""
  rng = np.random.default_rng(seed)
  live = np.where(np.asarray(labels) == 1)[0]
  subj = np.asarray(subjects)[live]
  if len(np.unique(subj)) < 2:
    raise InputError("F1 calibration needs live faces of at least two subjects")
  by = {s: live[subj == s] for s in np.unique(subj)}
  multi = [s for s, v in by.items() if len(v) >= 2]
  if not multi:
    raise InputError("F1 calibration needs two live captures of at least one subject")
  gen, imp = [], []
  for _ in range(n_pairs):
    s = multi[rng.integers(len(multi))]
    gen.append(rng.choice(by[s], 2, replace=False))
    a, b = rng.choice(list(by), 2, replace=False)
    imp.append([rng.choice(by[a]), rng.choice(by[b])])
  return np.asarray(gen), np.asarray(imp)


def pair_distances(faces: np.ndarray, pairs: np.ndarray, embedding=None) -> np.ndarray:
  """F1 distances of index pairs of face crops (each crop is a one-frame session)."""
  from palmjax.face.similarity import LBP_EMBEDDING, session_distance
  emb = embedding or LBP_EMBEDDING
  x = np.asarray(faces)
  x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
  return np.asarray([session_distance(x[i], x[j], emb) for i, j in pairs])


def train_real(faces: np.ndarray, labels: np.ndarray, subjects: np.ndarray,
               cfg: RealTrainConfig = RealTrainConfig(), out: str | os.PathLike | None = None,
               *, source: dict[str, Any] | None = None) -> dict[str, Any]:
  """Fits, calibrates and (with ``out``) exports the real-face cue bundle.

  Returns ``{"colour": CueModel, "texture": CueModel, "fusion": ImageFusionConfig,
  "dev": {...figures on the development subjects...}}``.
  """
  from palmjax.metrics.pad import pad_report, threshold_for
  y = np.asarray(labels, np.float32)
  subj = np.asarray(subjects)
  if len(y) != len(faces) or len(subj) != len(faces):
    raise InputError(f"faces ({len(faces)}), labels ({len(y)}) and subjects ({len(subj)}) "
                     "must have one entry each")
  dev = subj % cfg.dev_subject_mod == cfg.dev_subject_rem
  for name, m in (("training", ~dev), ("development", dev)):
    if len(np.unique(y[m])) < 2:
      raise InputError(f"the {name} subjects hold only one class; both live and spoof "
                       "faces are needed")
  fc = cfg.features()
  feats = crop_features(faces, fc)
  models: dict[str, cues_lib.CueModel] = {}
  dev_z: dict[str, np.ndarray] = {}
  for cue in ("colour", "texture"):
    ccfg = cues_lib.CueClassifierConfig(cue=cue, n_features=feats[cue].shape[1],
                                        hidden=cfg.hidden, steps=cfg.steps,
                                        learning_rate=cfg.learning_rate,
                                        weight_decay=cfg.weight_decay, seed=cfg.seed)
    params, metrics = cues_lib.fit(ccfg, feats[cue][~dev], y[~dev], feats[cue][dev], y[dev])
    models[cue] = cues_lib.CueModel(ccfg, params, metrics)
    dev_z[cue] = models[cue].log_odds(feats[cue][dev])
    log.info("%s cue: %d features, development accuracy %.4f", cue, feats[cue].shape[1],
             metrics["calibration_accuracy"])
  zf = fused_log_odds(dev_z["colour"], dev_z["texture"])
  thr_z = threshold_for(zf, y[dev], criterion="bpcer", target=cfg.dev_bpcer)
  thr = sigmoid(thr_z)
  # Per-cue presets: a cue rejects alone only when it is confidently "spoof" (log-odds
  # below -3, P < 0.047); the fused threshold does the work.
  fusion = ImageFusionConfig(colour_preset=0.047, texture_preset=0.047, lighting_preset=0.047,
                             image_threshold=thr, insufficient_combine="mean")
  rep = pad_report(zf, y[dev], threshold=thr_z)
  # F1: the similarity calibration refitted on live faces of the training subjects.
  from palmjax.face.similarity import calibrate_similarity
  gp, ip = face_pairs(y, subj, cfg.f1_pairs, cfg.seed)
  f1 = calibrate_similarity(pair_distances(faces, gp), pair_distances(faces, ip))
  log.info("F1 similarity recalibrated on %d genuine / %d impostor pairs: slope %.3f, "
           "log_d0 %.3f", len(gp), len(ip), f1.slope, f1.log_d0)
  dev_fig = {"n": int(dev.sum()), "subjects": sorted(int(s) for s in np.unique(subj[dev])),
             "threshold_log_odds": float(thr_z), "auc": rep.auc, "bpcer": rep.bpcer,
             "apcer": rep.apcer_worst, "acer": rep.acer}
  log.info("development subjects %s: fused threshold %.3f (log-odds %.2f), BPCER %.4f, "
           "APCER %.4f", dev_fig["subjects"], thr, thr_z, rep.bpcer, rep.apcer_worst)
  if out is not None:
    from palmjax.checkpointing import write_json
    d = os.fspath(out)
    for cue, m in models.items():
      m.export(os.path.join(d, cue), fc)
    write_json(os.path.join(d, "bundle.json"), {
        "name": "real-face cues (colour + texture)", "fusion": dataclasses.asdict(fusion),
        "similarity": dataclasses.asdict(f1),
        "train_config": cfg.to_dict(), "development": dev_fig, "source": source or {},
        "lighting": "none: no real training data with motion; F5 gives it no weight"})
  return {**models, "fusion": fusion, "dev": dev_fig, "features": fc, "similarity": f1}
