"""Face detection and alignment in front of F1-F4: find the face, crop it, resize it.

Two detectors, both with weights that ship inside installed packages (nothing is
downloaded at run time):

* ``"blazeface"`` (default): MediaPipe's BlazeFace short-range model
  (``palmjax/assets/face_detection_short_range.tflite``, 128x128 input, 896 SSD anchors,
  a box and six key points per anchor) run through OpenCV's DNN module;
* ``"haar"``: OpenCV's Viola-Jones frontal cascade (``haarcascade_frontalface_default.xml``
  from the ``opencv-python-headless`` 4.x wheel).

BUILD.md compares the two on real faces (NUAA), tight crops and hard lighting, and on
speed. BlazeFace finds faces that fill the frame and back-lit faces that the cascade
misses, so it is the default.

Rules (:class:`DetectorConfig`):

* the image is letter-boxed to a square (aspect kept) before detection; a face that fills
  the frame is searched again in a copy padded by ``fill_padding`` on every side (a
  frame-filling face is the case detectors are worst at);
* **several faces**: the largest box is the user (the person at the terminal is the one
  nearest to its camera); the others are counted in ``n_faces``;
* **no face**: :func:`detect` returns ``None`` and the caller answers ``recapture``;
* the crop is a square around the box enlarged by ``margin`` (aspect preserved; parts
  outside the image are filled by edge replication), resized with area averaging to
  ``size`` x ``size``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import numpy as np

from palmjax.errors import InputError

DETECTORS = ("blazeface", "haar")


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
  """How faces are found and cropped.

  Attributes:
    backend: ``"blazeface"`` or ``"haar"``.
    score_threshold: minimum BlazeFace score (sigmoid of the class logit).
    nms_iou: boxes overlapping more than this are one face.
    margin: the crop's side is ``(1 + 2 * margin)`` times the box's longer side (the cue
      models fix their own crop margin: ``FeatureConfig.crop_margin``).
    fill_padding: the fallback pass pads the image by this fraction of its longer side.
    min_face_fraction: boxes whose side is below this fraction of the image's shorter
      side are ignored (background faces, noise).
  """
  backend: str = "blazeface"
  score_threshold: float = 0.5
  nms_iou: float = 0.3
  margin: float = 0.25
  fill_padding: float = 0.5
  min_face_fraction: float = 0.08

  def __post_init__(self):
    if self.backend not in DETECTORS:
      raise InputError(f"detector backend must be one of {DETECTORS}, got {self.backend!r}")
    if not 0.0 <= self.margin <= 2.0:
      raise InputError(f"detector margin must lie in [0, 2], got {self.margin}")


class FaceBox(NamedTuple):
  """A detected face in pixel coordinates of the input image (x right, y down)."""
  x0: float
  y0: float
  x1: float
  y1: float
  score: float

  @property
  def area(self) -> float:
    return max(self.x1 - self.x0, 0.0) * max(self.y1 - self.y0, 0.0)

  def to_list(self) -> list[float]:
    return [round(float(v), 2) for v in (self.x0, self.y0, self.x1, self.y1)]


class Detection(NamedTuple):
  """The chosen face, how many faces were seen, and whether the fallback pass found it."""
  box: FaceBox
  n_faces: int
  fallback: bool


def _cv2():
  try:
    import cv2
  except ImportError as e:  # pragma: no cover - cv2 is a core dependency
    raise InputError("face detection needs OpenCV: pip install 'opencv-python-headless<5'"
                     ) from e
  return cv2


def to_uint8_rgb(image: Any, name: str = "image") -> np.ndarray:
  """``[H, W, 3]`` uint8 RGB from a uint8/uint16 image or a float image in ``[0, 1]``."""
  x = np.asarray(image)
  if x.ndim == 2:
    x = np.repeat(x[..., None], 3, -1)
  if x.ndim != 3 or x.shape[-1] not in (1, 3):
    raise InputError(f"{name}: expected an RGB image [H, W, 3], got shape {x.shape}")
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, -1)
  if min(x.shape[:2]) < 16:
    raise InputError(f"{name}: image is {x.shape[1]}x{x.shape[0]} pixels; at least 16x16 "
                     "is needed to find a face")
  if x.dtype == np.uint8:
    return x
  if x.dtype.kind in "iu":
    return (x.astype(np.float64) * (255.0 / np.iinfo(x.dtype).max)).round().astype(np.uint8)
  if x.dtype.kind != "f":
    raise InputError(f"{name}: image dtype {x.dtype} is not numeric")
  if not np.all(np.isfinite(x)):
    raise InputError(f"{name}: image holds NaN/inf values")
  if x.min() < -1e-3 or x.max() > 1 + 1e-3:
    raise InputError(f"{name}: float image values must lie in [0, 1], got "
                     f"[{x.min():.3g}, {x.max():.3g}]")
  return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# BlazeFace (short range): SSD anchors and box decoding as in MediaPipe's
# face_detection_short_range graph (4 layers, strides 8-16-16-16, fixed anchor size).

_BF_SIZE = 128


@functools.lru_cache(maxsize=1)
def _blazeface_anchors() -> np.ndarray:
  out = []
  for stride, per_cell in ((8, 2), (16, 6)):
    n = _BF_SIZE // stride
    ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    c = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], -1).reshape(-1, 1, 2)
    out.append(np.repeat(c, per_cell, axis=1).reshape(-1, 2))
  return np.concatenate(out).astype(np.float32)  # [896, 2] anchor centres in [0, 1]


@functools.lru_cache(maxsize=1)
def _blazeface_net():
  from palmjax.assets import asset_path
  return _cv2().dnn.readNetFromTFLite(str(asset_path("face_detection_short_range.tflite")))


def decode_blazeface(scores: np.ndarray, regressors: np.ndarray, threshold: float
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Raw model outputs ``[896]`` logits and ``[896, 16]`` -> boxes ``[K, 4]`` (x0, y0, x1,
  y1 in the unit square of the model input) and scores ``[K]`` above ``threshold``."""
  a = _blazeface_anchors()
  s = 1.0 / (1.0 + np.exp(-np.clip(scores.astype(np.float64), -100, 100)))
  keep = s >= threshold
  r = regressors[keep].astype(np.float64) / _BF_SIZE
  c = a[keep] + r[:, :2]
  half = r[:, 2:4] / 2
  boxes = np.concatenate([c - half, c + half], -1)
  return boxes, s[keep]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
  """Indices kept by greedy non-maximum suppression (highest score first)."""
  order = np.argsort(-scores)
  keep: list[int] = []
  area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0), -1)
  while order.size:
    i = order[0]
    keep.append(int(i))
    lt = np.maximum(boxes[i, :2], boxes[order[1:], :2])
    rb = np.minimum(boxes[i, 2:], boxes[order[1:], 2:])
    inter = np.prod(np.maximum(rb - lt, 0), -1)
    ov = inter / np.maximum(area[i] + area[order[1:]] - inter, 1e-12)
    order = order[1:][ov <= iou]
  return np.asarray(keep, np.int64)


def _letterbox(img: np.ndarray, side: int) -> tuple[np.ndarray, float, float, float]:
  """Pads ``img`` to a centred square (edge colour 0) and resizes it to ``side``; returns
  (square, scale from input pixels to square pixels, x offset, y offset)."""
  h, w = img.shape[:2]
  m = max(h, w)
  sq = np.zeros((m, m, 3), np.uint8)
  oy, ox = (m - h) // 2, (m - w) // 2
  sq[oy:oy + h, ox:ox + w] = img
  cv2 = _cv2()
  interp = cv2.INTER_AREA if m > side else cv2.INTER_LINEAR
  return cv2.resize(sq, (side, side), interpolation=interp), side / m, ox, oy


def _blazeface(img: np.ndarray, cfg: DetectorConfig) -> list[FaceBox]:
  cv2 = _cv2()
  sq, scale, ox, oy = _letterbox(img, _BF_SIZE)
  blob = cv2.dnn.blobFromImage(sq, 1 / 127.5, (_BF_SIZE, _BF_SIZE), (127.5, 127.5, 127.5))
  net = _blazeface_net()
  net.setInput(blob)
  reg, cls = net.forward(["regressors", "classificators"])
  boxes, scores = decode_blazeface(cls.reshape(-1), reg.reshape(-1, 16), cfg.score_threshold)
  if not len(boxes):
    return []
  keep = nms(boxes, scores, cfg.nms_iou)
  out = []
  for i in keep:
    b = boxes[i] * _BF_SIZE / scale
    out.append(FaceBox(b[0] - ox, b[1] - oy, b[2] - ox, b[3] - oy, float(scores[i])))
  return out


@functools.lru_cache(maxsize=1)
def _haar():
  cv2 = _cv2()
  if not hasattr(cv2, "CascadeClassifier"):
    raise InputError("the 'haar' face detector needs OpenCV 4.x (opencv-python-headless<5); "
                     f"this OpenCV is {cv2.__version__}")
  path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
  c = cv2.CascadeClassifier(path)
  if c.empty():
    raise InputError(f"OpenCV's Haar cascade {path} could not be loaded")
  return c


def _haar_detect(img: np.ndarray, cfg: DetectorConfig) -> list[FaceBox]:
  cv2 = _cv2()
  grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
  m = min(img.shape[:2])
  rects = _haar().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                   minSize=(max(int(cfg.min_face_fraction * m), 16),) * 2)
  return [FaceBox(float(x), float(y), float(x + w), float(y + h), 1.0)
          for x, y, w, h in np.asarray(rects).reshape(-1, 4)]


def _boxes(img: np.ndarray, cfg: DetectorConfig) -> list[FaceBox]:
  boxes = _blazeface(img, cfg) if cfg.backend == "blazeface" else _haar_detect(img, cfg)
  m = min(img.shape[:2])
  return [b for b in boxes if min(b.x1 - b.x0, b.y1 - b.y0) >= cfg.min_face_fraction * m]


def detect(image: Any, config: DetectorConfig = DetectorConfig()) -> Detection | None:
  """The user's face in one RGB image (see the module docstring), or ``None``."""
  img = to_uint8_rgb(image)
  boxes = _boxes(img, config)
  fallback = False
  if not boxes and config.fill_padding > 0:
    # A face filling the frame: search a padded copy (edge replication keeps the colours).
    p = int(round(config.fill_padding * max(img.shape[:2])))
    padded = np.pad(img, ((p, p), (p, p), (0, 0)), mode="edge")
    boxes = [FaceBox(b.x0 - p, b.y0 - p, b.x1 - p, b.y1 - p, b.score)
             for b in _boxes(padded, config)]
    fallback = bool(boxes)
  if not boxes:
    return None
  box = max(boxes, key=lambda b: b.area)
  return Detection(box, len(boxes), fallback)


def crop_box(box: FaceBox, margin: float) -> tuple[int, int, int]:
  """The square crop ``(x0, y0, side)`` around ``box`` enlarged by ``margin``."""
  cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
  side = max(box.x1 - box.x0, box.y1 - box.y0) * (1 + 2 * margin)
  side = max(int(round(side)), 2)
  return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_face(image: Any, box: FaceBox, size: int, margin: float = 0.25) -> np.ndarray:
  """Square, aspect-preserving crop around ``box`` (edge-replicated outside the image),
  resized to ``size`` x ``size``; float32 RGB in ``[0, 1]``."""
  img = to_uint8_rgb(image)
  x0, y0, side = crop_box(box, margin)
  h, w = img.shape[:2]
  pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
  if pad:
    img = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    x0, y0 = x0 + pad, y0 + pad
  patch = img[y0:y0 + side, x0:x0 + side]
  cv2 = _cv2()
  interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
  out = cv2.resize(patch, (size, size), interpolation=interp)
  return out.astype(np.float32) / 255.0
