"""The models behind the server, the decoding of uploads and one batch of inference.

Palm captures of a batch go through :meth:`PalmLivenessDetector.detect` in calls whose
batch sizes are one of a few fixed ``buckets``, so the jitted kernels see only those shapes
and nothing recompiles under load; :meth:`Engine.warm` compiles them all before the server
reports ready. A batch is padded (with copies of its first capture, whose results are
dropped) up to the next bucket when that wastes at most ``max_pad_fraction`` of it;
otherwise the largest bucket that fits is run and the rest follows (on a CPU the cost of a
call grows with its rows, so padding 9 captures to 16 would cost more than 8 + 1). Face sessions run :func:`palmjax.face.check` one by one (its
cascade stops early at different stages per session).

Uploads are read exactly as the CLI reads files (the body is written to a temporary file
and passed to the same loaders), so an answer is the same record as ``palmjax palm
detect`` / ``palmjax face check`` prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from typing import Any, Sequence

import numpy as np

from palmjax.errors import InputError

# Content type -> file suffix the loaders dispatch on.
PALM_TYPES = {"image/png": ".png", "image/tiff": ".tiff", "image/jpeg": ".jpg",
              "image/bmp": ".bmp", "application/dicom": ".dcm", "application/x-npy": ".npy"}
FACE_TYPES = {"application/x-npz": ".npz", "application/zip": ".npz"}


@dataclasses.dataclass(frozen=True)
class EngineConfig:
  classifier: str | None = None       # palm classifier (default: shipped)
  threshold: float | None = None      # palm threshold override
  quality_gate: bool = True
  face_models: str | None = None      # default: the shipped simulator models, as `face
                                      # check` uses for an .npz session
  buckets: tuple[int, ...] = (1, 2, 4, 8, 16)
  max_pad_fraction: float = 0.25
  # Engine.warm times every bucket after compiling it and keeps only those up to the one
  # cheapest per capture (on a CPU a larger call can cost more per capture).
  autotune: bool = False


@dataclasses.dataclass(frozen=True)
class PalmJob:
  capture: np.ndarray                 # [s, s, 1] float32, what the pipeline sees
  source: str
  input: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class FaceJob:
  session: Any                        # palmjax.face.Session
  enrolled: np.ndarray
  acoustic_hardware: bool = True
  similarity_threshold: float | None = None


def _digest(tree: Any) -> str:
  import jax
  h = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(tree):
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()[:16]


def _suffix(content_type: str | None, filename: str | None, types: dict[str, str]) -> str:
  ct = (content_type or "").split(";")[0].strip().lower()
  if ct in types:
    return types[ct]
  ext = os.path.splitext(filename or "")[1].lower()
  if ct in ("application/octet-stream", "") and ext in set(types.values()) | {".tif"}:
    return ext
  raise InputError(f"unsupported content type {ct or '(none)'!r}; send one of "
                   f"{sorted(types)} (or application/octet-stream with a filename ending in "
                   f"one of {sorted(set(types.values()))})")


def _with_upload(body: bytes, suffix: str, name: str, read):
  """Runs ``read(path)`` on ``body`` written to a temporary file; error messages name
  ``name`` instead of the temporary path."""
  if not body:
    raise InputError(f"{name}: empty request body")
  fd, path = tempfile.mkstemp(prefix="palmjax-upload-", suffix=suffix)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(body)
    try:
      return read(path)
    except InputError as e:
      raise InputError(str(e).replace(path, name)) from None
  finally:
    os.unlink(path)


def chunks(n: int, buckets: Sequence[int], max_pad_fraction: float = 0.25
           ) -> list[tuple[int, int]]:
  """``n`` captures as (rows, bucket) calls: padded up to the next bucket when the padding
  is at most ``max_pad_fraction`` of it, else the largest bucket that fits, and so on."""
  out = []
  while n > 0:
    up = next((b for b in buckets if b >= n), None)
    if up is not None and (up - n) <= max_pad_fraction * up:
      out.append((n, up))
      break
    down = max((b for b in buckets if b <= n), default=buckets[0])
    take = min(n, down)
    out.append((take, down))
    n -= take
  return out


def fastest_bucket(per_capture_ms: dict[int, float], tolerance: float = 0.05) -> int:
  """The largest bucket whose cost per capture is within ``tolerance`` of the cheapest
  (a larger call that costs no more per capture also shares more per-call work)."""
  best = min(per_capture_ms.values())
  return max(b for b, t in per_capture_ms.items() if t <= best * (1 + tolerance))


class Engine:
  """Both pipelines, loaded once. Thread-safe for the one worker thread that uses it."""

  def __init__(self, config: EngineConfig = EngineConfig()):
    from palmjax.face import load_models, sim_models_path
    from palmjax.palm.detector import PalmLivenessDetector, default_classifier_path
    from palmjax.palm.quality import QualityConfig
    if not config.buckets or sorted(set(config.buckets)) != list(config.buckets) or \
        config.buckets[0] < 1:
      raise InputError(f"buckets must be increasing positive batch sizes, got {config.buckets}")
    self.config = config
    self.buckets = config.buckets          # in use: autotuned by warm()
    self.per_capture_ms: dict[int, float] = {}
    self.palm = PalmLivenessDetector(config.classifier, threshold=config.threshold,
                                     quality=QualityConfig() if config.quality_gate else None)
    face_dir = config.face_models or sim_models_path()
    self.face = load_models(face_dir)
    self.versions = {
        "palm_classifier": {"path": os.fspath(config.classifier or default_classifier_path()),
                            "params_sha256": _digest(self.palm.params),
                            "input": self.palm.train_config.input,
                            "threshold": self.palm.threshold},
        "face_models": {"path": os.fspath(face_dir),
                        "params_sha256": _digest([getattr(self.face, c).params
                                                  for c in self.face.cues])},
    }

  @property
  def max_batch(self) -> int:
    return self.config.buckets[-1]

  # -- decoding (request threads) ---------------------------------------------------------
  def decode_palm(self, body: bytes, content_type: str | None,
                  filename: str | None = None) -> PalmJob:
    from palmjax.palm import clinical
    name = filename or "upload"
    suffix = _suffix(content_type, filename, PALM_TYPES)
    x, rec = _with_upload(body, suffix, name, lambda p: clinical.load_capture(
        p, clinical.ClinicalConfig(size=self.palm.lr_size)))
    return PalmJob(x, name, rec)

  def decode_face(self, body: bytes, content_type: str | None, filename: str | None = None, *,
                  acoustic_hardware: bool = True,
                  similarity_threshold: float | None = None) -> FaceJob:
    from palmjax.face.session_io import load_npz
    name = filename or "session.npz"
    suffix = _suffix(content_type, filename, FACE_TYPES)
    sess = _with_upload(body, suffix, name, load_npz)
    sess = dataclasses.replace(sess, source=name)
    if sess.enrolled is None:
      raise InputError(f"{name}: no 'enrolled' array inside; the session must carry the "
                       "user's enrolled face image (F1)")
    return FaceJob(sess, np.asarray(sess.enrolled), acoustic_hardware, similarity_threshold)

  # -- inference (the worker thread) ------------------------------------------------------
  def chunks(self, n: int) -> list[tuple[int, int]]:
    """``n`` captures as (rows, bucket) calls over the buckets in use (:func:`chunks`)."""
    return chunks(n, self.buckets, self.config.max_pad_fraction)

  def run_palm(self, jobs: Sequence[PalmJob]) -> list[dict[str, Any]]:
    """Detector calls of bucket sizes (:meth:`chunks`); records as ``palm detect`` prints."""
    out: list[dict[str, Any]] = []
    s = 0
    for rows, size in self.chunks(len(jobs)):
      chunk = jobs[s:s + rows]
      s += rows
      x = np.stack([j.capture for j in chunk])
      pad = size - rows
      if pad:  # repeat the first capture: results of padding rows are dropped
        x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
      res = self.palm.detect(x, [j.source for j in chunk] + ["#pad"] * pad,
                             [j.input for j in chunk] + [None] * pad)
      out += [r.to_dict() for r in res[:len(chunk)]]
    return out

  def run_face(self, job: FaceJob) -> dict[str, Any]:
    from palmjax.face import FaceCheckConfig, check_session
    cfg = FaceCheckConfig(acoustic_hardware=job.acoustic_hardware)
    if job.similarity_threshold is not None:
      cfg = dataclasses.replace(cfg, similarity_threshold=job.similarity_threshold)
    return check_session(job.session, job.enrolled, self.face, cfg).to_dict()

  def autotune(self) -> None:
    """Times every compiled bucket and keeps those up to :func:`fastest_bucket` (what
    ``/readyz`` reports as ``compute``)."""
    s = self.palm.lr_size
    self.per_capture_ms = {b: _time_bucket(self.palm.detect, b, s)
                           for b in self.config.buckets}
    top = fastest_bucket(self.per_capture_ms)
    self.buckets = tuple(b for b in self.config.buckets if b <= top)

  def warm(self) -> None:
    """Compiles every palm bucket and the face cues once (what /readyz waits for)."""
    from palmjax.face import Session
    s = self.palm.lr_size
    for b in self.config.buckets:
      self.palm.detect(np.full((b, s, s, 1), 0.5, np.float32))
    if self.config.autotune and len(self.config.buckets) > 1:
      self.autotune()
    rng = np.random.default_rng(0)
    frames = rng.random((4, 64, 64, 3)).astype(np.float32)
    self.face.cue_probabilities(frames)
    self.run_face(FaceJob(Session(frames=frames, timestamps=np.arange(4) / 10.0),
                          frames[0], acoustic_hardware=False, similarity_threshold=0.0))


def _time_bucket(detect, b: int, s: int, reps: int = 5) -> float:
  """Milliseconds per capture of a ``b``-capture call: the best of ``reps`` (the least
  disturbed by other work on the machine)."""
  import time
  x = np.random.default_rng(b).uniform(0.1, 0.9, (b, s, s, 1)).astype(np.float32)
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    detect(x)
    best = min(best, time.perf_counter() - t)
  return 1e3 * best / b


def summary(kind: str, record: dict[str, Any]) -> tuple[str, float | None, str]:
  """(decision, probability, reason) of a palm or face record, for the audit index."""
  if kind == "palm":
    return record["decision"], record["probability"], record["reason"]
  prob = record.get("image_probability")
  if record.get("combined_score") is not None:
    prob = record["combined_score"]
  return record["outcome"], prob, record["reason"]
