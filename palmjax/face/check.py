"""``check_session(session, enrolled, models, config) -> DecisionRecord``: the face terminal, F1-F8.

input checks -> F1 similarity gate -> F2-F4 cue probabilities -> F5 image fusion ->
(image pass: proceed) | (no acoustic hardware: paused) | (no echo: recapture) |
F6-F7 :func:`palmjax.echo.acoustic_liveness` -> F8 (:mod:`palmjax.face.decision`).

Structural faults raise :class:`palmjax.errors.InputError` (one frame, frames of different
sizes, missing or non-monotonic timestamps, no enrolled image); a missing echo on a
terminal that claims acoustic hardware gives ``recapture``. No bad input ever gives
``proceed``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import numpy as np

from palmjax.assets import checkpoint_path
from palmjax.errors import InputError, check_finite
from palmjax.face import cues as cues_lib
from palmjax.face.decision import DecisionConfig, DecisionRecord, decide_acoustic
from palmjax.face.detect import DetectorConfig
from palmjax.face.fusion import ImageFusionConfig, fuse_image, sigmoid
from palmjax.face.session import Session, check_frames
from palmjax.face.similarity import LBP_EMBEDDING, Embedding, similarity_score


@dataclasses.dataclass(frozen=True)
class FaceCheckConfig:
  """Every threshold of the face terminal (named fields; see each stage's config)."""
  similarity_threshold: float = 0.5   # F1: calibrated similarity (see face.similarity)
  acoustic_hardware: bool = True
  image: ImageFusionConfig = ImageFusionConfig()
  decision: DecisionConfig = DecisionConfig()
  echo: Any = None            # palmjax.echo.LivenessConfig (default when None)
  model_size: int = 64        # whole-frame models: frames are resized to this size
  detector: DetectorConfig = DetectorConfig()  # face-crop models: how the face is found

  def echo_config(self):
    from palmjax import echo
    return self.echo if self.echo is not None else echo.LivenessConfig()

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(dataclasses.replace(self, echo=None))
    d["echo"] = dataclasses.asdict(self.echo_config())
    return d


@dataclasses.dataclass
class FaceModels:
  """The cue classifiers, their feature settings, F5 presets and the face embedding.

  ``lighting`` is ``None`` for a bundle without a lighting cue (the real-face models: no
  real training data with motion); F5 then gives it no weight. ``features.face_size > 0``
  means the models score face crops (``palmjax face liveness``, ``face check`` crop the
  detected face first); 0 means whole simulated frames.
  """
  colour: cues_lib.CueModel
  texture: cues_lib.CueModel
  lighting: cues_lib.CueModel | None
  features: cues_lib.FeatureConfig = cues_lib.FeatureConfig()
  embedding: Embedding = LBP_EMBEDDING
  fusion: ImageFusionConfig = ImageFusionConfig()
  info: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def face_size(self) -> int:
    return self.features.face_size

  @property
  def cues(self) -> tuple[str, ...]:
    return tuple(c for c in cues_lib.CUES if getattr(self, c) is not None)

  def cue_log_odds(self, frames: np.ndarray) -> dict[str, float | None]:
    """Bounded, calibrated log-odds per cue of one session ``[T, H, W, 3]`` (``None`` for a
    cue the models lack or the input cannot give: lighting needs two frames)."""
    x = np.asarray(frames)
    cues = tuple(c for c in self.cues if not (c == "lighting" and x.shape[0] < 2))
    f = cues_lib.cue_features(x, self.features, cues=cues)
    return {c: (float(getattr(self, c).log_odds(f[c])[0]) if c in f else None)
            for c in cues_lib.CUES}

  def cue_probabilities(self, frames: np.ndarray) -> dict[str, float | None]:
    return {c: (None if z is None else sigmoid(z)) for c, z in self.cue_log_odds(frames).items()}

  def batch_probabilities(self, frames: np.ndarray) -> dict[str, np.ndarray]:
    f = cues_lib.cue_features(frames, self.features, cues=self.cues)
    return {c: getattr(self, c)(f[c]) for c in self.cues}


def default_models_path() -> pathlib.Path:
  """The shipped cue models trained on real faces (NUAA; see README)."""
  return checkpoint_path("face_cues")


def sim_models_path() -> pathlib.Path:
  """The shipped cue models trained on simulated sessions only (whole 64x64 frames)."""
  return checkpoint_path("face_cues_sim")


def load_models(directory: str | os.PathLike | None = None, *,
                embedding: Embedding | None = None) -> FaceModels:
  """Loads exported cue classifiers (``<dir>/colour``, ``texture`` and, if present,
  ``lighting``) and the bundle's F5 presets and F1 calibration (``<dir>/bundle.json``,
  optional). ``embedding`` overrides the bundle's F1 embedding."""
  d = pathlib.Path(directory) if directory is not None else default_models_path()
  if not d.is_dir():
    raise InputError(f"{d}: no face cue models; train them with `palmjax face train "
                     f"--out {d}`")
  loaded: dict[str, Any] = {}
  fc = None
  for c in cues_lib.CUES:
    if c == "lighting" and not (d / c).is_dir():
      loaded[c] = None
      continue
    loaded[c], fc = cues_lib.CueModel.load(d / c)
  info: dict[str, Any] = {}
  fusion = ImageFusionConfig()
  if (d / "bundle.json").is_file():
    from palmjax.checkpointing import read_json
    from palmjax.config import from_dict
    info = read_json(d / "bundle.json")
    fusion = from_dict(ImageFusionConfig, info.get("fusion", {}))
  if embedding is None:
    embedding = LBP_EMBEDDING
    if "similarity" in info:
      from palmjax.face.similarity import SimilarityCalibration, lbp_chroma_embedding
      embedding = lbp_chroma_embedding(calibration=SimilarityCalibration(**info["similarity"]))
  return FaceModels(**loaded, features=fc, embedding=embedding, fusion=fusion, info=info)


def validate_session(session: Session, enrolled: Any) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
  """Structural checks; returns (frames, timestamps, enrolled) as NumPy."""
  if not isinstance(session, Session):
    raise InputError(f"session must be a palmjax.face.Session, got {type(session).__name__}")
  src = f"{session.source}: " if session.source else ""  # name the file in messages
  frames = check_frames(session.frames, f"{src}session.frames")
  if frames.shape[0] < 2:
    raise InputError(f"{src}session.frames: {frames.shape[0]} frame; at least 2 consecutive "
                     "frames are needed (the lighting cue compares frames)")
  if session.timestamps is None:
    raise InputError(f"{src}session.timestamps: missing; every frame needs a capture time")
  ts = check_finite(np.asarray(session.timestamps, np.float64), f"{src}session.timestamps")
  if ts.shape != (frames.shape[0],):
    raise InputError(f"{src}session.timestamps: {ts.size} values for {frames.shape[0]} "
                     "frames")
  if not np.all(np.diff(ts) > 0):
    i = int(np.argmin(np.diff(ts)))
    raise InputError(f"{src}session.timestamps: not strictly increasing (frame {i + 1} at "
                     f"{ts[i + 1]:.4f} s follows {ts[i]:.4f} s)")
  if enrolled is None:
    raise InputError("enrolled: missing; the user's enrolled face image is required (F1)")
  e = np.asarray(enrolled)
  if e.ndim != 3 or e.shape[-1] != 3:
    raise InputError(f"enrolled: expected an RGB image [H, W, 3], got shape {e.shape}")
  if e.dtype.kind in "iu":
    e = e.astype(np.float32) / np.iinfo(e.dtype).max
  check_finite(e, "enrolled")
  return frames, ts, e.astype(np.float32)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
  if x.shape[-3:-1] == (size, size):
    return x
  from palmjax.kernels import bicubic_resize
  return np.clip(np.asarray(bicubic_resize(x, size, size)), 0, 1)


def check_session(session: Session, enrolled: Any, models: FaceModels | None = None,
                  config: FaceCheckConfig = FaceCheckConfig()) -> DecisionRecord:
  """Runs the face-terminal pipeline on one session (see the module docstring)."""
  frames, ts, enr = validate_session(session, enrolled)
  models = models if models is not None else load_models()
  capture_s = float(ts[-1] - ts[0])
  rec = DecisionRecord(outcome="reject", reason="", stage="similarity",
                       acoustic_hardware=config.acoustic_hardware,
                       frame_count=int(frames.shape[0]), capture_s=capture_s,
                       source=session.source, similarity_threshold=config.similarity_threshold,
                       config=config.to_dict())
  if models.face_size:  # models of face crops: find the face in the session and enrolment
    from palmjax.face import detect as detect_lib
    from palmjax.face.liveness import crop_session, detect_session
    det = detect_session(frames, config.detector)
    if det is None:
      rec.outcome, rec.stage = "recapture", "input"
      rec.reason = "no face found in the session's frames: look at the camera and capture again"
      return rec
    rec.face_box = det.box.to_list()
    margin = models.features.crop_margin
    frames = crop_session(frames, det, models.face_size, margin)
    edet = detect_lib.detect(enr, config.detector)
    enr = (detect_lib.crop_face(enr, edet.box, models.face_size, margin) if edet is not None
           else _resize(enr, models.face_size))
  else:
    frames = _resize(frames, config.model_size)
    enr = _resize(enr, config.model_size)
  # F1
  rec.similarity = float(similarity_score(frames, enr, models.embedding))
  if rec.similarity < config.similarity_threshold:
    rec.reason = (f"face does not match the enrolled image: similarity {rec.similarity:.3f} "
                  f"< {config.similarity_threshold}")
    return rec
  # A terminal with acoustic hardware must deliver its echo (a fault otherwise).
  if config.acoustic_hardware and session.recording is None:
    rec.outcome, rec.stage = "recapture", "input"
    rec.reason = ("the terminal claims acoustic hardware but the session holds no echo "
                  "recording; capture again")
    return rec
  # F2-F5
  rec.cue_probabilities = models.cue_probabilities(frames)
  fu = fuse_image(rec.cue_probabilities["colour"], rec.cue_probabilities["texture"],
                  rec.cue_probabilities["lighting"], int(frames.shape[0]), capture_s,
                  config.image)
  rec.image, rec.image_probability = fu.to_dict(), fu.probability
  if fu.passed:
    rec.outcome, rec.stage = "proceed", "image"
    rec.reason = f"image liveness passed: {fu.reason}; no acoustic check needed"
    return rec
  if not config.acoustic_hardware:
    rec.outcome, rec.stage = "paused", "image"
    rec.reason = (f"image liveness failed ({fu.reason}) and the terminal has no acoustic "
                  "hardware: the credit application is paused")
    return rec
  # F6-F8
  from palmjax import echo
  ecfg = config.echo_config()
  bt = None
  if session.blink_times is not None and np.size(session.blink_times):
    bt = np.asarray(session.blink_times, np.float64)
  try:
    er = echo.acoustic_liveness(session.recording, ecfg, blink_times=bt)
  except InputError as e:  # name the session's file, as validate_session does
    if not session.source:
      raise
    raise InputError(f"{session.source}: echo {e}") from None
  return decide_acoustic(rec, er, fu.probability, ecfg.fusion.live_threshold,
                         ecfg.fusion.fusion_preset, config.decision)
