"""Echo analysis (SPEC F6, F7): range profiles, face echoes, per-region slow-time features.

Steps, all in one jitted function of the microphone stream (batch dims lead):

1. cut the stream into frames (one chirp each) and pulse-compress every frame with a
   matched filter (FFT cross-correlation with the chirp, amplitude-weighted by a window to
   keep range sidelobes low) into the complex *range–slow-time map*;
2. average the envelope over slow time (range profile), find the echo peaks inside the
   face range window with sub-sample interpolation; the first one is the nose tip and the
   spread of the face echoes is the *time difference* of the patent;
3. place one range gate per region at the local echo maximum nearest the template offset
   behind the nose echo and read the carrier phase over slow time in a small range window
   around it: the window's bins are combined coherently against their mean echo
   (``angle(sum_k z_k[t] conj(mean_t z_k))``, weighted by the static echo), so a bin in an interference null (the regions lie within one range-resolution cell)
   cannot inject noise-like phase -> region displacement (phase x lambda / 4 pi); the eye
   region's blink frames (given by the caller) are dropped and bridged;
4. per region, the displacement is split into a breathing part (centred moving average)
   and a pulse part (the rest); FFT period estimates (window, zero-padding, sub-bin
   interpolation) in separate bands give the pulse frequency, vibration amplitude and
   spectral prominence over the whole capture (F6) and over overlapping preset periods
   (F7), and the breathing amplitude; a robust per-frame noise level (second differences)
   gives the noise floor of every amplitude (for noise-aware tolerances).
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
    rhythm_band_hz: the slowest rhythm searched: the capture must hold two periods of its
      lower edge.
    pulse_band_hz: search band of the whole-capture fluctuation (pulse) frequency (F6),
      applied after the breathing part is removed.
    breathing_band_hz: band of the breathing estimate (whole capture, F6).
    period_band_hz: search band inside each preset period (F7).
    period_s, period_hop_s: length and hop of the preset periods (F7).
    window, zero_pad: FFT period estimator settings.
    blink_guard_s: eye frames within this time of a blink are dropped.
    gate_search_m: each gate moves to the local echo maximum nearest its template
      position within this distance (avoids interference nulls, where the phase is noise).
    gate_halfwidth_m: half-width of the range window whose bins are combined coherently
      into the region's phase (0 = the single gate bin).
    period_highpass_s: a centred moving average of this length is the breathing part; the
      rest is the pulse part (whole capture and F7 periods); 0 disables.
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
  pulse_band_hz: tuple[float, float] = (0.8, 3.0)
  breathing_band_hz: tuple[float, float] = (0.1, 0.7)
  period_band_hz: tuple[float, float] = (0.8, 3.0)
  period_s: float = 2.5
  period_hop_s: float = 1.25
  window: str = "hann"
  zero_pad: int = 8
  blink_guard_s: float = 0.2
  gate_search_m: float = 0.004
  gate_halfwidth_m: float = 0.004
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
  frequency_hz: jax.Array     # [R] whole-capture fluctuation (pulse) frequency (F6)
  amplitude_m: jax.Array      # [R] vibration (pulse) amplitude (F6)
  prominence: jax.Array       # [R] spectral peak / median power (F6)
  period_frequency_hz: jax.Array  # [W, R] per preset period (F7)
  period_amplitude_m: jax.Array   # [W, R]
  period_prominence: jax.Array    # [W, R]
  breathing_frequency_hz: jax.Array  # [R] breathing-band frequency (coarse: few cycles)
  breathing_amplitude_m: jax.Array   # [R] breathing-band amplitude
  noise_m: jax.Array          # [R] per-frame displacement noise (robust, 2nd differences)
  noise_amplitude_m: jax.Array  # [R] noise std of a whole-capture amplitude estimate
  period_noise_amplitude_m: jax.Array  # [R] the same inside one preset period


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


def gate_displacement(z: ArrayLike, centre: ArrayLike, *, halfwidth: int,
                      wavelength_m: float) -> jax.Array:
  """Slow-time displacement ``[T, R]`` at range bins ``centre [R]`` of ``z [T, L]``.

  The bins ``centre +- halfwidth`` are combined coherently against their slow-time mean
  (the static echo profile ``m_k``): ``c[t] = sum_k z[t, k] conj(m_k)``. Every bin is
  weighted by its mean echo, so a bin in an interference null (small, noise-like phase)
  barely counts; a rigid motion (the same phase rotation in every bin) is reproduced
  exactly; the noise stays white (no accumulation, unlike summed phase steps).
  ``displacement = -unwrap(angle(c)) x wavelength / (4 pi)`` (toward the probe is
  negative range), relative to the first frame.
  """
  z = jnp.asarray(z)
  fl = z.shape[-1]
  k = jnp.arange(-halfwidth, halfwidth + 1)
  bins = jnp.clip(jnp.asarray(centre)[:, None] + k, 0, fl - 1)   # [R, K]
  zb = z[:, bins]                                                   # [T, R, K]
  c = jnp.sum(zb * jnp.conj(jnp.mean(zb, axis=0)), axis=-1)        # [T, R]
  phase = jnp.unwrap(jnp.angle(c), axis=0)
  return -(phase - phase[:1]) * wavelength_m / (4 * jnp.pi)


def displacement_noise(disp: ArrayLike) -> jax.Array:
  """Robust per-sample noise std of slow-time signals ``[T, ...]`` (axis 0).

  From third differences (``[1, -3, 3, -1]``, variance ``20 sigma^2`` for white noise),
  which suppress breathing and pulse (smooth at the chirp rate) by their cube of
  ``2 pi f / chirp_rate``; median absolute deviation x 1.4826 for robustness to blinks.
  """
  d = jnp.asarray(disp)
  d3 = d[3:] - 3 * d[2:-1] + 3 * d[1:-2] - d[:-3]
  mad = jnp.median(jnp.abs(d3 - jnp.median(d3, axis=0)), axis=0)
  return 1.4826 * mad / jnp.sqrt(20.0)


def amplitude_noise_gain(window: str, n: int) -> float:
  """Std of :func:`estimate_frequency`'s amplitude on unit white noise of ``n`` samples.

  ``2 sqrt(sum w^2) / sum w`` for the analysis window ``w``.
  """
  with jax.ensure_compile_time_eval():  # a constant, also when called under jit
    w = np.asarray(get_window(window, n), np.float64)
  return float(2 * np.sqrt(np.sum(w * w)) / np.sum(w))


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

  # Region gates: the local echo maximum nearest each template position.
  gates = first + jnp.asarray(config.region_offsets_m, jnp.float32)
  centre = jnp.round(gates / m_per_sample).astype(jnp.int32)
  sw = int(round(config.gate_search_m / m_per_sample))
  if sw > 0:
    off = jnp.arange(-sw, sw + 1)
    cand = jnp.clip(centre[:, None] + off, 1, fl - 2)
    val = profile[cand]
    is_max = (val >= profile[cand - 1]) & (val >= profile[cand + 1])
    near = jnp.where(is_max, -jnp.abs(off).astype(jnp.float32), -jnp.inf)
    # No local maximum in reach: fall back to the strongest bin of the search window.
    best = jnp.where(jnp.any(is_max, axis=-1), jnp.argmax(near, axis=-1),
                     jnp.argmax(val, axis=-1))
    centre = jnp.take_along_axis(cand, best[:, None], axis=-1)[:, 0]
  gates = centre.astype(jnp.float32) * m_per_sample
  disp = gate_displacement(z, centre, halfwidth=int(round(config.gate_halfwidth_m /
                                                          m_per_sample)),
                           wavelength_m=p.wavelength_m)
  eye = REGIONS.index("eyes")
  disp = disp.at[:, eye].set(fill_gaps(disp[:, eye], eye_keep))

  # Breathing (slow) and pulse (the rest) parts, estimated in separate bands.
  breath = moving_average(disp, int(round(config.period_highpass_s * p.chirp_rate)))
  pulse = disp - breath
  est = partial(estimate_frequency, fs=p.chirp_rate, window=config.window,
                zero_pad=config.zero_pad)
  whole = est(pulse.T, fmin=config.pulse_band_hz[0], fmax=config.pulse_band_hz[1])
  src = breath if config.period_highpass_s * p.chirp_rate >= 2 else disp
  brth = est(src.T, fmin=config.breathing_band_hz[0], fmax=config.breathing_band_hz[1],
             detrend="constant")
  nw, lw, hop = config.n_periods(nf), config.period_frames, config.hop_frames
  if nw > 0:
    idx = jnp.arange(nw)[:, None] * hop + jnp.arange(lw)[None, :]
    wins = jnp.moveaxis(pulse[idx], -1, -2)                  # [W, R, lw]
    per = est(wins, fmin=config.period_band_hz[0], fmax=config.period_band_hz[1])
  else:
    empty = jnp.zeros((0, len(config.region_offsets_m)), jnp.float32)
    per = (empty, empty, empty)
  sigma = displacement_noise(disp)
  amp_noise = lambda n: sigma * amplitude_noise_gain(config.window, max(n, 1))
  return EchoFeatures(
      range_m=rng, profile=profile, rt_map=env, peak_range_m=pr, peak_valid=peaks.valid,
      face_peak=face, time_difference_s=tdiff, echo_level=level, gate_range_m=gates,
      displacement_m=disp, frequency_hz=whole.frequency, amplitude_m=whole.amplitude,
      prominence=whole.prominence, period_frequency_hz=per[0], period_amplitude_m=per[1],
      period_prominence=per[2], breathing_frequency_hz=brth.frequency,
      breathing_amplitude_m=brth.amplitude, noise_m=sigma, noise_amplitude_m=amp_noise(nf),
      period_noise_amplitude_m=amp_noise(lw))
