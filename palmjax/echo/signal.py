"""Ultrasonic probe design (SPEC F6): a linear chirp above 20 kHz, repeated at a chirp rate.

The terminal's speaker emits one chirp at the start of every *frame* (``fs / chirp_rate``
samples); the microphone records continuously. Fast time (samples inside a frame) is
range; slow time (frame index, sampled at ``chirp_rate``) carries the movements of the
face: breathing, pulse, blinks.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from palmjax.errors import InputError

SPEED_OF_SOUND = 343.0  # m/s in air at 20 degC
AUDIBLE_LIMIT_HZ = 20_000.0  # the patent: the signal lies above 20000 Hz


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
  """The transmitted probe: band, sampling, chirp length and repetition, capture length.

  Attributes:
    fs: sampling rate of speaker and microphone (Hz).
    f_start, f_stop: chirp band (Hz); both must lie in [20 kHz, fs / 2].
    chirp_s: duration of one chirp (s).
    chirp_rate: chirps per second (Hz) = slow-time sampling rate.
    capture_s: capture length (s) = the slow-time observation window.
    taper: Tukey taper fraction of the chirp (0 = rectangular, 1 = Hann).
  """
  fs: float = 96_000.0
  f_start: float = 20_000.0
  f_stop: float = 40_000.0
  chirp_s: float = 1e-3
  chirp_rate: float = 100.0
  capture_s: float = 5.0
  taper: float = 0.2

  @property
  def frame_len(self) -> int:
    """Samples per frame (one chirp period)."""
    return int(round(self.fs / self.chirp_rate))

  @property
  def chirp_len(self) -> int:
    return int(round(self.fs * self.chirp_s))

  @property
  def n_frames(self) -> int:
    return int(round(self.capture_s * self.chirp_rate))

  @property
  def n_samples(self) -> int:
    return self.n_frames * self.frame_len

  @property
  def center_hz(self) -> float:
    return 0.5 * (self.f_start + self.f_stop)

  @property
  def wavelength_m(self) -> float:
    """Wavelength at the band centre (the slow-time phase scale)."""
    return SPEED_OF_SOUND / self.center_hz

  @property
  def max_range_m(self) -> float:
    """Unambiguous range: an echo must return within one frame."""
    return SPEED_OF_SOUND * (self.frame_len - self.chirp_len) / self.fs / 2


def validate_probe(config: ProbeConfig, name: str = "probe") -> ProbeConfig:
  """Checks a probe configuration; raises :class:`InputError` naming the bad field."""
  c = config
  if not c.fs > 0:
    raise InputError(f"{name}.fs must be > 0 Hz, got {c.fs}")
  if not c.f_start < c.f_stop:
    raise InputError(f"{name}: f_start ({c.f_start} Hz) must be below f_stop ({c.f_stop} Hz)")
  if c.f_start < AUDIBLE_LIMIT_HZ:
    raise InputError(f"{name}.f_start = {c.f_start} Hz reaches into the audible band; the "
                     f"probe must stay above {AUDIBLE_LIMIT_HZ:.0f} Hz")
  if c.f_stop > c.fs / 2:
    raise InputError(f"{name}.f_stop = {c.f_stop} Hz is above the Nyquist frequency "
                     f"{c.fs / 2} Hz of fs = {c.fs} Hz")
  if not c.chirp_rate > 0 or not c.capture_s > 0 or not c.chirp_s > 0:
    raise InputError(f"{name}: chirp_s, chirp_rate and capture_s must be > 0")
  if c.chirp_len < 8:
    raise InputError(f"{name}: a chirp of {c.chirp_s} s is only {c.chirp_len} samples")
  if c.chirp_len * 2 > c.frame_len:
    raise InputError(f"{name}: chirp ({c.chirp_len} samples) takes more than half of a frame "
                     f"({c.frame_len} samples at chirp_rate {c.chirp_rate} Hz)")
  if not 0 <= c.taper <= 1:
    raise InputError(f"{name}.taper must lie in [0, 1], got {c.taper}")
  return c


def tukey(n: int, alpha: float, dtype=jnp.float32) -> jax.Array:
  """Symmetric Tukey window (``scipy.signal.windows.tukey(n, alpha)``)."""
  if alpha <= 0:
    return jnp.ones((n,), dtype)
  t = np.arange(n) / (n - 1)
  w = np.ones(n)
  edge = alpha / 2
  lo, hi = t < edge, t > 1 - edge
  w[lo] = 0.5 * (1 + np.cos(np.pi * (t[lo] / edge - 1)))
  w[hi] = 0.5 * (1 + np.cos(np.pi * ((t[hi] - 1) / edge + 1)))
  return jnp.asarray(w, dtype)


def chirp(config: ProbeConfig = ProbeConfig(), *, dtype=jnp.float32) -> jax.Array:
  """One linear chirp ``[chirp_len]`` from ``f_start`` to ``f_stop``, Tukey-tapered, peak 1."""
  validate_probe(config)
  n = config.chirp_len
  t = np.arange(n) / config.fs
  k = (config.f_stop - config.f_start) / config.chirp_s
  s = np.sin(2 * np.pi * (config.f_start * t + 0.5 * k * t * t))
  return jnp.asarray(s, dtype) * tukey(n, config.taper, dtype)


def probe_signal(config: ProbeConfig = ProbeConfig(), *, dtype=jnp.float32) -> jax.Array:
  """The whole transmitted stream ``[n_frames * frame_len]``: one chirp per frame."""
  c = chirp(config, dtype=dtype)
  frame = jnp.zeros((config.frame_len,), dtype).at[:config.chirp_len].set(c)
  return jnp.tile(frame, config.n_frames)
