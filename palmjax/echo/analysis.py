"""Echo analysis (SPEC F6, F7): range profiles, face echoes, per-region slow-time features.

Steps, all in one jitted function of the microphone stream (batch dims lead):

1. cut the stream into frames (one chirp each) and pulse-compress every frame with a
   matched filter (FFT cross-correlation with the chirp, amplitude-weighted by a window to
   keep range sidelobes low) into the complex *range–slow-time map*;
2. average the envelope over slow time (range profile), find the echo peaks inside the
   face range window with sub-sample interpolation; the first one is the nose tip and the
   spread of the face echoes is the *time difference* of the patent;
3. place one range gate per region at the template offset behind the nose echo and read
   the carrier phase there over slow time -> region displacement (phase x lambda / 4 pi);
   the eye region's blink frames (given by the caller) are dropped and bridged;
4. per region: FFT period estimate (window, zero-padding, sub-bin interpolation) of the
   fluctuation frequency and vibration amplitude, over the whole capture (F6) and over
   overlapping preset periods (F7).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.echo.signal import SPEED_OF_SOUND, ProbeConfig, chirp
from palmjax.echo.simulate import REGIONS, FaceGeometry
from palmjax.kernels.spectral import estimate_frequency, find_peaks, get_window, matched_filter


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
  """How echoes are turned into per-region features.

  Attributes:
    probe: the transmitted probe (must match the recording's sample rate).
    min_range_m, max_range_m: where a face is searched (excludes the direct path).
    face_depth_m: echoes up to this depth behind the first one belong to the face.
    region_offsets_m: range gate of each region of :data:`REGIONS` behind the nose echo.
    reference_window: amplitude weighting of the matched-filter reference chirp.
    peak_threshold: echo peaks count above this fraction of the strongest face echo.
    num_peaks: at most this many echo peaks are considered.
    rhythm_band_hz: search band of the whole-capture fluctuation frequency (F6); the
      capture must hold two periods of its lower edge.
    period_band_hz: search band inside each preset period (F7).
    period_s, period_hop_s: length and hop of the preset periods (F7).
    window, zero_pad: FFT period estimator settings.
    blink_guard_s: eye frames within this time of a blink are dropped.
    gate_search_m: each gate moves to the strongest echo within this distance of its
      template position (avoids interference nulls, where the phase is noise).
    period_highpass_s: before the F7 periods, a centred moving average of this length is
      subtracted (removes breathing drift below the pulse band); 0 disables.
  """
  probe: ProbeConfig = ProbeConfig()
  min_range_m: float = 0.2
  max_range_m: float = 0.9
  face_depth_m: float = 0.06
  region_offsets_m: tuple[float, ...] = FaceGeometry().offsets_m
  reference_window: str = "boxcar"
  peak_threshold: float = 0.2
  num_peaks: int = 8
  rhythm_band_hz: tuple[float, float] = (0.4, 3.0)
  period_band_hz: tuple[float, float] = (0.8, 3.0)
  period_s: float = 2.5
  period_hop_s: float = 1.25
  window: str = "hann"
  zero_pad: int = 8
  blink_guard_s: float = 0.2
  gate_search_m: float = 0.004
  period_highpass_s: float = 1.0

  def n_periods(self, n_frames: int) -> int:
    """Number of preset periods that fit into ``n_frames`` frames."""
    lw, hop = self.period_frames, self.hop_frames
    return 0 if n_frames < lw else 1 + (n_frames - lw) // hop

  @property
  def period_frames(self) -> int:
    return int(round(self.period_s * self.probe.chirp_rate))

  @property
  def hop_frames(self) -> int:
    return max(1, int(round(self.period_hop_s * self.probe.chirp_rate)))


class EchoFeatures(NamedTuple):
  """Output of :func:`echo_features` (leading batch dims when batched)."""
  range_m: jax.Array          # [L] range of each fast-time sample
  profile: jax.Array          # [L] mean echo envelope over slow time
  rt_map: jax.Array           # [T, L] envelope, the range-slow-time map
  peak_range_m: jax.Array     # [K] sub-sample echo peak ranges (sorted by height)
  peak_valid: jax.Array       # [K] bool: a peak above the threshold inside the window
  face_peak: jax.Array        # [K] bool: the peak belongs to the face (near the first)
  time_difference_s: jax.Array  # () spread of the face echoes' round-trip delays
  echo_level: jax.Array       # () strongest face echo / median envelope (echo SNR)
  gate_range_m: jax.Array     # [R] range gate of each region
  displacement_m: jax.Array   # [T, R] slow-time motion at each gate (eye: blinks bridged)
  frequency_hz: jax.Array     # [R] whole-capture fluctuation frequency (F6)
  amplitude_m: jax.Array      # [R] vibration amplitude (F6)
  prominence: jax.Array       # [R] spectral peak / median power (F6)
  period_frequency_hz: jax.Array  # [W, R] per preset period (F7)
  period_amplitude_m: jax.Array   # [W, R]
  period_prominence: jax.Array    # [W, R]


def fill_gaps(x: ArrayLike, keep: ArrayLike) -> jax.Array:
  """Replaces ``x[i]`` where ``keep[i]`` is False by linear interpolation (axis 0).

  Ends are held at the nearest kept sample; with nothing kept ``x`` is returned.
  """
  x = jnp.asarray(x)
  keep = jnp.asarray(keep, bool)
  n = x.shape[0]
  idx = jnp.arange(n)
  prev = jax.lax.cummax(jnp.where(keep, idx, -1), axis=0)
  nxt = jax.lax.cummin(jnp.where(keep, idx, n), axis=0, reverse=True)
  lo = jnp.where(prev < 0, nxt, prev)
  hi = jnp.where(nxt >= n, prev, nxt)
  lo, hi = jnp.clip(lo, 0, n - 1), jnp.clip(hi, 0, n - 1)
  span = hi - lo
  # Guard 0/0 where both neighbours are the same sample (kept samples, held ends).
  frac = jnp.where(span > 0, (idx - lo) / jnp.where(span > 0, span, 1), 0.0)
  shape = (n,) + (1,) * (x.ndim - 1)
  filled = x[lo] + (x[hi] - x[lo]) * frac.reshape(shape).astype(x.dtype)
  out = jnp.where(keep.reshape(shape), x, filled)
  return jnp.where(jnp.any(keep), out, x)


def moving_average(x: ArrayLike, length: int) -> jax.Array:
  """Centred moving average along axis 0 (edges reflected); zeros when ``length < 2``."""
  x = jnp.asarray(x)
  if length < 2:
    return jnp.zeros_like(x)
  lo, hi = (length - 1) // 2, length // 2
  xp = jnp.pad(x, [(lo, hi)] + [(0, 0)] * (x.ndim - 1), mode="reflect")
  c = jnp.cumsum(xp, axis=0)
  c = jnp.concatenate([jnp.zeros_like(c[:1]), c], axis=0)
  return (c[length:] - c[:-length]) / length


def blink_keep_mask(blink_times: ArrayLike | None, n_frames: int, chirp_rate: float,
                    guard_s: float) -> np.ndarray:
  """Bool ``[n_frames]``: False for frames within ``guard_s`` of any blink time (s)."""
  t = np.arange(n_frames) / chirp_rate
  keep = np.ones(n_frames, bool)
  if blink_times is not None:
    for b in np.atleast_1d(np.asarray(blink_times, np.float64)):
      keep &= np.abs(t - b) > guard_s
  return keep


def range_time_map(frames: ArrayLike, config: AnalysisConfig) -> jax.Array:
  """Complex pulse-compressed frames ``[..., T, L]`` (analytic matched-filter output)."""
  c = chirp(config.probe)
  ref = c * get_window(config.reference_window, c.shape[0])
  ref = ref / jnp.sqrt(jnp.sum(ref * c))  # unit response to the chirp itself: peak ~ 1
  return matched_filter(frames, ref, analytic=True)


@partial(jax.jit, static_argnames=("config",))
def echo_features(samples: ArrayLike, eye_keep: ArrayLike, *,
                  config: AnalysisConfig = AnalysisConfig()) -> EchoFeatures:
  """Features of one recording ``[N]`` (``vmap`` for batches).

  Args:
    samples: microphone stream, ``N >= T * frame_len`` (a trailing partial frame is cut).
    eye_keep: bool ``[T]``, False at the eye region's blink frames.
    config: analysis settings (static).
  """
  p = config.probe
  fl = p.frame_len
  x = jnp.asarray(samples, jnp.float32)
  nf = x.shape[-1] // fl
  frames = x[..., :nf * fl].reshape(x.shape[:-1] + (nf, fl))
  z = range_time_map(frames, config)                      # [T, L] complex
  env = jnp.abs(z)
  profile = jnp.mean(env, axis=-2)
  rng = jnp.arange(fl, dtype=jnp.float32) * SPEED_OF_SOUND / p.fs / 2
  window = (rng >= config.min_range_m) & (rng <= config.max_range_m)
  prof_w = jnp.where(window, profile, 0.0)
  top = jnp.max(prof_w)
  peaks = find_peaks(prof_w, num_peaks=config.num_peaks, threshold=config.peak_threshold * top)
  m_per_sample = SPEED_OF_SOUND / p.fs / 2
  pr = peaks.position * m_per_sample
  first = jnp.min(jnp.where(peaks.valid, pr, jnp.inf))
  first = jnp.where(jnp.isfinite(first), first, config.min_range_m)  # no peak: any gate
  face = peaks.valid & (pr <= first + config.face_depth_m)
  last = jnp.max(jnp.where(face, pr, first))
  tdiff = 2 * (last - first) / SPEED_OF_SOUND
  noise = jnp.median(profile)
  # Silent recording: no noise floor; report an echo level of 0 instead of 0/0.
  level = jnp.where(noise > 0, top / jnp.where(noise > 0, noise, 1.0), 0.0)

  # Region gates and their slow-time phase.
  gates = first + jnp.asarray(config.region_offsets_m, jnp.float32)
  sw = int(round(config.gate_search_m / m_per_sample))
  if sw > 0:
    cand = jnp.round(gates / m_per_sample).astype(jnp.int32)[:, None] + jnp.arange(-sw, sw + 1)
    best = jnp.argmax(profile[jnp.clip(cand, 0, fl - 1)], axis=-1)
    gates = jnp.take_along_axis(cand, best[:, None], axis=-1)[:, 0] * m_per_sample
  pos = gates / m_per_sample
  i0 = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, fl - 2)
  fr = (pos - i0).astype(jnp.float32)
  zg = z[:, i0] * (1 - fr) + z[:, i0 + 1] * fr             # [T, R]
  phase = jnp.unwrap(jnp.angle(zg), axis=0)
  disp = -phase * p.wavelength_m / (4 * jnp.pi)
  eye = REGIONS.index("eyes")
  disp = disp.at[:, eye].set(fill_gaps(disp[:, eye], eye_keep))

  est = partial(estimate_frequency, fs=p.chirp_rate, window=config.window,
                zero_pad=config.zero_pad)
  whole = est(disp.T, fmin=config.rhythm_band_hz[0], fmax=config.rhythm_band_hz[1])
  nw, lw, hop = config.n_periods(nf), config.period_frames, config.hop_frames
  if nw > 0:
    hp = moving_average(disp, int(round(config.period_highpass_s * p.chirp_rate)))
    idx = jnp.arange(nw)[:, None] * hop + jnp.arange(lw)[None, :]
    wins = jnp.moveaxis((disp - hp)[idx], -1, -2)           # [W, R, lw]
    per = est(wins, fmin=config.period_band_hz[0], fmax=config.period_band_hz[1])
  else:
    empty = jnp.zeros((0, len(config.region_offsets_m)), jnp.float32)
    per = (empty, empty, empty)
  return EchoFeatures(
      range_m=rng, profile=profile, rt_map=env, peak_range_m=pr, peak_valid=peaks.valid,
      face_peak=face, time_difference_s=tdiff, echo_level=level, gate_range_m=gates,
      displacement_m=disp, frequency_hz=whole.frequency, amplitude_m=whole.amplitude,
      prominence=whole.prominence, period_frequency_hz=per[0], period_amplitude_m=per[1],
      period_prominence=per[2])
