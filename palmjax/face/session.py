"""Capture sessions at a face terminal: the :class:`Session` type, its config and checks.

A :class:`Session` is what the terminal captured: consecutive colour face frames
``[T, H, W, 3]`` in [0, 1], their timestamps (seconds), optionally an ultrasonic echo
recording (:class:`palmjax.echo.Recording`), the blink times the camera saw and, when the
session file carries it, the user's enrolled image. :func:`palmjax.face.check_session` takes the
enrolled image as a separate argument.

This module holds only the types, the kind/region names and the validation; it imports
neither JAX nor the renderer, so readers of session data stay light:

* :mod:`palmjax.face.simulate`: the procedural 3D-face session simulator;
* :mod:`palmjax.face.session_io`: frame folders, videos and ``.npz`` session files.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from palmjax.errors import InputError, check_finite

KINDS = ("live", "print", "replay", "mask", "impostor")
ATTACK_KINDS = ("print", "replay", "mask")
ECHO_KIND = {"live": "live", "print": "photo", "replay": "screen", "mask": "mask",
             "impostor": "live"}
REGIONS = ("nose", "eyes", "cheeks", "forehead", "chin")  # = palmjax.echo.REGIONS


@dataclasses.dataclass(frozen=True)
class SessionConfig:
  """Static settings of simulated sessions (sizes, timing, physics of each kind).

  Attributes:
    size: frame side in pixels (frames are ``size x size`` colour face crops).
    n_frames: frames per session.
    fps: nominal frame rate; timestamps get ``timestamp_jitter_s`` uniform jitter.
    metres_per_unit: physical size of one normalised unit (the frame spans 2 units).
    head_rotation: amplitude (rad) of the live head's yaw/pitch sway.
    head_shift_px: amplitude of the live head's translation.
    micro_motion_px: amplitude of the non-rigid mouth/cheek motion of a live face.
    pulse_amplitude: relative skin-colour modulation by the pulse.
    noise_std: sensor noise standard deviation (on [0, 1] values).
    handheld_rotation, handheld_shift_px, perspective: homography motion of a print/screen.
    print_saturation, halftone_period_px, halftone_depth: print gamut and halftone.
    screen_gamma, moire_contrast, flicker_depth: screen artefacts.
    echo: also simulate the ultrasonic echo with the face's region depths.
    echo_depth_quantum_m: region depths for the echo are rounded to this step (the echo
      simulator compiles once per geometry; 2 mm is below its own 2 mm depth jitter and a
      20 kHz chirp's 8.6 mm range resolution).
    max_blinks, blink_rate_hz, blink_s: blinks when no echo is simulated.
  """
  size: int = 64
  n_frames: int = 12
  fps: float = 12.0
  timestamp_jitter_s: float = 0.004
  metres_per_unit: float = 0.1
  head_rotation: float = 0.08
  head_shift_px: float = 1.5
  micro_motion_px: float = 0.6
  pulse_amplitude: float = 0.02
  noise_std: float = 0.012
  handheld_rotation: float = 0.03
  handheld_shift_px: float = 1.5
  perspective: float = 0.04
  print_saturation: tuple[float, float] = (0.45, 0.7)
  halftone_period_px: tuple[float, float] = (2.2, 3.2)
  halftone_depth: tuple[float, float] = (0.08, 0.16)
  screen_gamma: tuple[float, float] = (1.3, 1.8)
  moire_contrast: tuple[float, float] = (0.03, 0.07)
  flicker_depth: tuple[float, float] = (0.02, 0.06)
  echo: bool = False
  echo_depth_quantum_m: float = 0.002
  max_blinks: int = 4
  blink_rate_hz: float = 0.25
  blink_s: float = 0.25

  @property
  def capture_s(self) -> float:
    return self.n_frames / self.fps


@dataclasses.dataclass
class Session:
  """One capture: frames ``[T, H, W, 3]`` in [0, 1], timestamps ``[T]`` (s), optional echo.

  ``kind``/``identity`` are ground truth of simulated sessions (``None`` for real ones);
  ``enrolled`` is the enrolled image stored with the session (``.npz``), else ``None``.
  """
  frames: Any
  timestamps: Any | None
  recording: Any | None = None          # palmjax.echo.Recording
  blink_times: Any | None = None        # seconds from the capture start
  kind: str | None = None
  identity: int | None = None
  source: str = ""
  enrolled: Any | None = None           # [H, W, 3] enrolled image, when the file has one

  @property
  def n_frames(self) -> int:
    return int(np.shape(self.frames)[0]) if np.ndim(self.frames) >= 1 else 0


def validate_config(cfg: SessionConfig) -> None:
  """Raises :class:`InputError` for a :class:`SessionConfig` the renderer cannot use."""
  if cfg.size < 24:
    raise InputError(f"size must be >= 24 pixels, got {cfg.size}")
  if cfg.n_frames < 1:
    raise InputError(f"n_frames must be >= 1, got {cfg.n_frames}")
  if not cfg.fps > 0:
    raise InputError(f"fps must be > 0, got {cfg.fps}")


def check_frames(frames: Any, name: str = "session.frames") -> np.ndarray:
  """``[T, H, W, 3]`` float32 in [0, 1]; a list of frames of different sizes is an error."""
  if isinstance(frames, (list, tuple)):
    if not frames:
      raise InputError(f"{name}: no frames")
    shapes = {np.shape(f) for f in frames}
    if len(shapes) > 1:
      raise InputError(f"{name}: frames have different sizes {sorted(shapes)}; all frames "
                       "of a session must have one size")
    frames = np.stack([np.asarray(f) for f in frames])
  x = np.asarray(frames)
  if x.dtype == object:
    raise InputError(f"{name}: frames have different sizes (ragged array)")
  if x.ndim != 4 or x.shape[-1] != 3:
    raise InputError(f"{name}: expected colour frames [T, H, W, 3], got shape {x.shape}")
  if x.dtype.kind in "iu":
    x = x.astype(np.float32) / np.iinfo(x.dtype).max
  if x.dtype.kind != "f":
    raise InputError(f"{name}: dtype {x.dtype} is not numeric")
  check_finite(x, name)
  if x.min() < 0 or x.max() > 1:
    raise InputError(f"{name}: float pixel values must lie in [0, 1]")
  return x.astype(np.float32)
