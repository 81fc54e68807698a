"""Reading and writing face-terminal sessions: frame folders, videos and ``.npz`` files."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import numpy as np

from palmjax.errors import InputError
from palmjax.face.session import Session

_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def load_frames_dir(directory: str | os.PathLike, *, fps: float | None = None) -> Session:
  """A session from a folder of frames (sorted by name).

  The folder may hold ``session.json`` with ``timestamps`` (s, one per frame) or ``fps``,
  optional ``blink_times``, and ``echo`` (``{"file": "echo.npy", "fs": 96000}``). Without
  timestamps and without ``fps`` the session has ``timestamps=None`` (rejected by
  :func:`palmjax.face.check_session` with a clear message).
  """
  from palmjax.io import list_images, load_image
  d = os.fspath(directory)
  if not os.path.isdir(d):
    raise InputError(f"{d}: not a directory of frames")
  paths = list_images(d)
  if not paths:
    raise InputError(f"{d}: no image frames found")
  frames = []
  for p in paths:
    img = load_image(p, channels=3).pixels.astype(np.float32)
    if frames and img.shape != frames[0].shape:
      raise InputError(f"{p}: frame is {img.shape[1]}x{img.shape[0]}, but "
                       f"{paths[0]} is {frames[0].shape[1]}x{frames[0].shape[0]}; all frames "
                       "of a session must have one size")
    frames.append(img)
  meta: dict[str, Any] = {}
  mpath = os.path.join(d, "session.json")
  if os.path.exists(mpath):
    from palmjax.checkpointing import read_json
    meta = read_json(mpath)
  ts = meta.get("timestamps")
  fps = meta.get("fps", fps)
  if ts is None and fps:
    ts = np.arange(len(frames)) / float(fps)
  if ts is not None:
    ts = np.asarray(ts, np.float64)
    if ts.shape != (len(frames),):
      raise InputError(f"{mpath}: {ts.size} timestamps for {len(frames)} frames")
  recording = None
  if "echo" in meta:
    e = meta["echo"]
    if not isinstance(e, dict) or "file" not in e or "fs" not in e:
      raise InputError(f"{mpath}: 'echo' must be {{\"file\": ..., \"fs\": <sample rate, Hz>}}, "
                       f"got {e!r}")
    epath = os.path.join(d, e["file"])
    if not os.path.exists(epath):
      raise InputError(f"{mpath}: echo file {epath} does not exist")
    from palmjax.io import load_arrays
    recording = _recording(load_arrays(epath, "the echo recording as a .npy array"), e["fs"],
                           mpath)
  bt = meta.get("blink_times")
  return Session(frames=np.stack(frames), timestamps=ts, recording=recording,
                 blink_times=None if bt is None else np.asarray(bt, np.float64), source=d)


def downscale(image: np.ndarray, max_side: int | None) -> np.ndarray:
  """``image [H, W, C]`` shrunk by area averaging so its longer side is at most
  ``max_side`` (unchanged when it already fits, or for ``None``)."""
  h, w = image.shape[:2]
  if max_side is None or max(h, w) <= max_side:
    return image
  import cv2
  s = max_side / max(h, w)
  return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                    interpolation=cv2.INTER_AREA)


DEFAULT_MAX_FRAMES = 32   # about 1 s of a 30 fps clip: enough for the lighting cue (F5)
DEFAULT_MAX_SIDE = 640    # frames are downscaled on decode so the longer side is at most this


def load_video(path: str | os.PathLike, *, max_frames: int | None = DEFAULT_MAX_FRAMES,
               max_side: int | None = DEFAULT_MAX_SIDE) -> Session:
  """A session from a video file, decoded as a stream (OpenCV).

  Only the first ``max_frames`` consecutive frames are kept (``None``: all of them) and
  each is downscaled on decode (area averaging) so its longer side is at most
  ``max_side`` (``None``: full size), so memory is bounded by
  ``max_frames * max_side**2 * 12`` bytes whatever the clip's length and resolution
  (BUILD.md: a 10 s 1080p clip).
  """
  p = os.fspath(path)
  if max_frames is not None and max_frames < 1:
    raise InputError(f"max_frames must be >= 1, got {max_frames}")
  if max_side is not None and max_side < 16:
    raise InputError(f"max_side must be >= 16, got {max_side}")
  try:
    import cv2
  except ImportError:
    raise InputError(f"{p}: reading video needs OpenCV; pip install 'opencv-python-headless<5' "
                     "(or pass a folder of frames)") from None
  if not os.path.isfile(p):
    raise InputError(f"{p}: no such video file")
  if os.path.getsize(p) == 0:
    raise InputError(f"{p}: empty file")
  cap = cv2.VideoCapture(p)
  if not cap.isOpened():
    raise InputError(f"{p}: OpenCV cannot open this video (corrupt or unsupported)")
  fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
  frames, ts = [], []
  try:
    while max_frames is None or len(frames) < max_frames:
      ok, bgr = cap.read()
      if not ok or bgr is None:
        break
      ts.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
      frames.append(downscale(bgr, max_side)[..., ::-1].astype(np.float32) / 255.0)
  finally:
    cap.release()
  if not frames:
    raise InputError(f"{p}: the video holds no readable frames")
  t = np.asarray(ts, np.float64)
  if len(t) > 1 and not np.all(np.diff(t) > 0):  # some containers report no times
    t = np.arange(len(frames)) / fps if fps > 0 else None
  return Session(frames=np.stack(frames), timestamps=t, source=p)


def load_session(path: str | os.PathLike, *, max_frames: int | None = DEFAULT_MAX_FRAMES,
                 max_side: int | None = DEFAULT_MAX_SIDE) -> Session:
  """A folder of frames, a video file, or an ``.npz`` (``frames``, ``timestamps``, ...).

  ``max_frames`` and ``max_side`` bound what a video decodes (:func:`load_video`).
  """
  p = os.fspath(path)
  if os.path.isdir(p):
    return load_frames_dir(p)
  if p.lower().endswith(".npz"):
    return load_npz(p)
  if p.lower().endswith(_VIDEO_SUFFIXES):
    return load_video(p, max_frames=max_frames, max_side=max_side)
  if not os.path.exists(p):
    raise InputError(f"{p}: no such file or directory")
  raise InputError(f"{p}: expected a folder of frames, a video ({', '.join(_VIDEO_SUFFIXES)}) "
                   "or an .npz session")


def save_npz(path: str | os.PathLike, session: Session, enrolled: Any | None = None) -> None:
  """Writes a session (and optionally the enrolled image) as one ``.npz``."""
  from palmjax.io import atomic_path
  arrays: dict[str, Any] = {"frames": np.asarray(session.frames, np.float32)}
  if session.timestamps is not None:
    arrays["timestamps"] = np.asarray(session.timestamps, np.float64)
  if session.recording is not None:
    arrays["echo"] = np.asarray(session.recording.samples, np.float32)
    arrays["echo_fs"] = np.float64(session.recording.fs)
  if session.blink_times is not None:
    arrays["blink_times"] = np.asarray(session.blink_times, np.float64)
  if enrolled is not None:
    arrays["enrolled"] = np.asarray(enrolled, np.float32)
  arrays["meta"] = np.asarray(json.dumps({"kind": session.kind, "identity": session.identity,
                                          "source": session.source}))
  with atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      np.savez_compressed(f, **arrays)


def _recording(samples: Any, fs: Any, where: str):
  from palmjax import echo
  try:
    rate = float(np.asarray(fs))
  except (TypeError, ValueError):
    raise InputError(f"{where}: echo sample rate {fs!r} is not a number") from None
  if not np.isfinite(rate) or rate <= 0:
    raise InputError(f"{where}: echo sample rate must be a positive number of Hz, got {rate}")
  return echo.Recording(np.asarray(samples), rate)


def load_npz(path: str | os.PathLike) -> Session:
  from palmjax.io import load_arrays
  p = os.fspath(path)
  z = load_arrays(p, "a face session")
  if isinstance(z, np.ndarray):
    raise InputError(f"{p}: a single .npy array, not an .npz face session")
  if "frames" not in z:
    raise InputError(f"{p}: no 'frames' array inside")
  recording = None
  if "echo" in z:
    if "echo_fs" not in z:
      raise InputError(f"{p}: holds an 'echo' recording but no 'echo_fs' sample rate")
    recording = _recording(z["echo"], z["echo_fs"], p)
  meta = json.loads(str(z["meta"])) if "meta" in z else {}
  return Session(frames=z["frames"], timestamps=z["timestamps"] if "timestamps" in z else None,
                 recording=recording,
                 blink_times=z["blink_times"] if "blink_times" in z else None,
                 kind=meta.get("kind"), identity=meta.get("identity"), source=p,
                 enrolled=z["enrolled"] if "enrolled" in z else None)


def glob_sessions(root: str | os.PathLike) -> list[str]:
  """Session folders/videos/npz directly under ``root`` (sorted)."""
  r = os.fspath(root)
  out = sorted(glob.glob(os.path.join(r, "*")))
  return [p for p in out if os.path.isdir(p) or p.lower().endswith(_VIDEO_SUFFIXES + (".npz",))]
