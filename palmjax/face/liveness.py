"""Image liveness of real face captures (F2-F5 with face detection): ``palmjax face liveness``.

One input — a still image, a folder of frames or a video — gives one
:class:`LivenessResult`: the face is found and cropped (:mod:`palmjax.face.detect`), the
cue classifiers score the crop (colour F2, texture F3, lighting F4 where the input has
motion and the models have a lighting cue), and F5 fuses them
(:func:`palmjax.face.fusion.fuse_image`).

* **One frame** (a still): the patent's F5 rule for too few frames applies — the lighting
  probability's accuracy is derived from frame count and capture time
  (:func:`palmjax.face.fusion.lighting_accuracy`) and is 0 for one frame, so the lighting
  cue carries no weight; it is reported as ``null``, not scored on copies of one frame.
* **Probabilities in log space**: every cue gives calibrated log-odds, bounded smoothly
  (``30 * tanh(z / 30)``, strictly increasing), so probabilities never collapse to exactly
  0 or 1 and scores always rank; the record carries ``log_odds`` next to ``probability``.
* **No face** -> ``decision: "recapture"`` with the reason; a bad file is an
  :class:`~palmjax.errors.InputError` naming it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from palmjax.errors import InputError
from palmjax.face import detect as detect_lib
from palmjax.face.fusion import ImageFusionConfig, fuse_image, logit
from palmjax.face.session_io import (DEFAULT_MAX_FRAMES, DEFAULT_MAX_SIDE, downscale,
                                     load_session)

DECISIONS = ("live", "spoof", "recapture")


@dataclasses.dataclass(frozen=True)
class LivenessConfig:
  """Settings of :func:`assess` (thresholds default to the model bundle's)."""
  detector: detect_lib.DetectorConfig = detect_lib.DetectorConfig()
  fusion: ImageFusionConfig | None = None     # None: the bundle's (chosen on dev data)
  max_frames: int = DEFAULT_MAX_FRAMES
  max_side: int = DEFAULT_MAX_SIDE
  fps: float = 25.0                           # frame folders without session.json


@dataclasses.dataclass
class LivenessResult:
  """One JSON line of ``palmjax face liveness`` (fields shared with ``face check``)."""
  source: str
  probability: float | None
  log_odds: float | None
  decision: str
  reason: str
  cues: dict[str, float | None]
  face_box: list[float] | None
  n_faces: int = 0
  frame_count: int = 0
  capture_s: float | None = None
  image: dict[str, Any] | None = None         # ImageFusion.to_dict()

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self, **kwargs) -> str:
    return json.dumps(self.to_dict(), default=float, **kwargs)


def load_frames(path: str | os.PathLike, config: LivenessConfig = LivenessConfig()
                ) -> tuple[np.ndarray, np.ndarray | None]:
  """Frames ``[T, H, W, 3]`` float32 and timestamps (or ``None``) of an image file, a folder
  of frames or a video (streamed, at most ``max_frames`` frames of at most ``max_side``)."""
  from palmjax.io import ARRAY_SUFFIXES, IMAGE_SUFFIXES, load_image
  p = os.fspath(path)
  if os.path.isfile(p) and p.lower().endswith(tuple(IMAGE_SUFFIXES) + tuple(ARRAY_SUFFIXES)):
    img = load_image(p, channels=3).pixels.astype(np.float32)
    return downscale(img, config.max_side)[None], None
  sess = load_session(p, max_frames=config.max_frames, max_side=config.max_side)
  frames = np.asarray(sess.frames, np.float32)[:config.max_frames]
  ts = None if sess.timestamps is None else np.asarray(sess.timestamps)[:len(frames)]
  if os.path.isdir(p) and ts is None and len(frames) > 1:
    ts = np.arange(len(frames)) / config.fps
  # Videos are downscaled on decode already; frame folders are loaded at full size.
  return np.stack([downscale(f, config.max_side) for f in frames]), ts


def detect_session(frames: np.ndarray, config: detect_lib.DetectorConfig
                   ) -> detect_lib.Detection | None:
  """One face box for a whole session: detected on the middle frame (then the first and the
  last) so that every frame is cropped by the same box and head motion stays visible to
  the lighting cue."""
  t = len(frames)
  for i in dict.fromkeys((t // 2, 0, t - 1)):
    det = detect_lib.detect(frames[i], config)
    if det is not None:
      return det
  return None


def crop_session(frames: np.ndarray, det: detect_lib.Detection, size: int, margin: float
                 ) -> np.ndarray:
  """Every frame cropped by one box: ``[T, size, size, 3]`` float32 in [0, 1]."""
  return np.stack([detect_lib.crop_face(f, det.box, size, margin) for f in frames])


def assess(frames: Any, timestamps: Any, models: Any, config: LivenessConfig = LivenessConfig(),
           *, source: str = "") -> LivenessResult:
  """F2-F5 on one capture (see the module docstring). ``models`` is a
  :class:`palmjax.face.FaceModels` (``face_size`` > 0: it scores face crops)."""
  x = np.asarray(frames)
  if x.ndim == 3:
    x = x[None]
  if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] < 1:
    raise InputError(f"{source or 'frames'}: expected [T, H, W, 3] RGB frames, got {x.shape}")
  t = int(x.shape[0])
  ts = None if timestamps is None else np.asarray(timestamps, np.float64)
  capture_s = float(ts[-1] - ts[0]) if ts is not None and t > 1 else 0.0
  det = detect_session(x, config.detector)
  if det is None:
    return LivenessResult(source, None, None, "recapture",
                          "no face found: look at the camera and capture again",
                          {"colour": None, "texture": None, "lighting": None}, None, 0, t,
                          capture_s)
  crops = crop_session(x, det, models.face_size, models.features.crop_margin)
  probs = models.cue_probabilities(crops)
  fcfg = config.fusion if config.fusion is not None else models.fusion
  fu = fuse_image(probs["colour"], probs["texture"], probs["lighting"], t, capture_s, fcfg)
  decision = "live" if fu.passed else "spoof"
  reason = ("image liveness passed: " if fu.passed else "image liveness failed: ") + fu.reason
  return LivenessResult(source, fu.probability, logit(fu.probability), decision, reason,
                        probs, det.box.to_list(), det.n_faces, t, capture_s, fu.to_dict())
