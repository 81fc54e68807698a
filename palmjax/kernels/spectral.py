"""1-D spectral kernels along the last axis: windows, FFT correlation, peaks, periodograms.

Shared by the ultrasonic echo pipeline (pulse compression of chirps, slow-time period
estimation) and any other pipeline that needs a matched filter or a sub-bin frequency
estimate (e.g. rPPG-style periodicity of image signals). All functions take leading batch
dimensions, are jittable (sizes and option strings are static) and follow SciPy's
conventions where SciPy has the same function:

* :func:`fft_correlate` = ``scipy.signal.correlate(x, y, mode, method="fft")``;
* :func:`get_window` = ``scipy.signal.get_window(name, n)`` (periodic, "DFT-even");
* :func:`periodogram` = ``scipy.signal.periodogram(x, fs, window, nfft)`` (one-sided
  density, constant detrend).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

_WINDOWS = ("boxcar", "hann", "hamming", "blackman")


def _as_float(x: ArrayLike) -> jax.Array:
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.inexact):
    x = x.astype(jnp.float32)
  return x


def _real_dtype(x: jax.Array):
  return jnp.finfo(x.dtype).dtype


def _fast_len(n: int) -> int:
  """Smallest 2^a 3^b 5^c >= n (sizes that every FFT backend handles quickly)."""
  best = 1 << max(0, (n - 1).bit_length())
  p5 = 1
  while p5 < best:
    p35 = p5
    while p35 < best:
      p = p35
      while p < n:
        p *= 2
      best = min(best, p)
      p35 *= 3
    p5 *= 5
  return best


def get_window(name: str, n: int, dtype=jnp.float32) -> jax.Array:
  """Periodic window of length ``n`` as ``scipy.signal.get_window(name, n)``.

  Args:
    name: ``boxcar``, ``hann``, ``hamming`` or ``blackman``.
    n: window length (> 0).
  """
  if name not in _WINDOWS:
    raise ValueError(f"window must be one of {_WINDOWS}, got {name!r}")
  if n < 1:
    raise ValueError(f"window length must be >= 1, got {n}")
  k = jnp.arange(n, dtype=dtype)
  t = 2 * jnp.pi * k / n
  if name == "boxcar" or n == 1:
    w = jnp.ones((n,), dtype)
  elif name == "hann":
    w = 0.5 - 0.5 * jnp.cos(t)
  elif name == "hamming":
    w = 0.54 - 0.46 * jnp.cos(t)
  else:
    w = 0.42 - 0.5 * jnp.cos(t) + 0.08 * jnp.cos(2 * t)
  return w.astype(dtype)


def fft_correlate(x: ArrayLike, y: ArrayLike, *, mode: str = "full") -> jax.Array:
  """Cross-correlation of ``x [..., N]`` with ``y [..., M]`` by FFT along the last axis.

  Same numbers as ``scipy.signal.correlate(x, y, mode, method="fft")`` for 1-D signals
  (``z[k] = sum_m x[m + k - (M - 1)] * conj(y[m])`` in ``full`` mode); leading dimensions
  broadcast.

  Args:
    x: signal ``[..., N]``, real or complex.
    y: template ``[..., M]``, real or complex.
    mode: ``full`` (N + M - 1 lags), ``same`` (N, centred as SciPy) or ``valid``
      (max(N, M) - min(N, M) + 1).
  """
  if mode not in ("full", "same", "valid"):
    raise ValueError(f"mode must be full, same or valid, got {mode!r}")
  x, y = _as_float(x), _as_float(y)
  n, m = x.shape[-1], y.shape[-1]
  if n < 1 or m < 1:
    raise ValueError(f"empty input: x has {n} and y has {m} samples")
  full = n + m - 1
  nfft = _fast_len(full)
  yr = jnp.conj(y[..., ::-1])
  if jnp.iscomplexobj(x) or jnp.iscomplexobj(yr):
    z = jnp.fft.ifft(jnp.fft.fft(x, nfft) * jnp.fft.fft(yr, nfft), nfft)[..., :full]
  else:
    z = jnp.fft.irfft(jnp.fft.rfft(x, nfft) * jnp.fft.rfft(yr, nfft), nfft)[..., :full]
  if mode == "full":
    return z
  if mode == "same":
    start = (full - n) // 2
    return z[..., start:start + n]
  size = max(n, m) - min(n, m) + 1
  return z[..., min(n, m) - 1:min(n, m) - 1 + size]


def matched_filter(x: ArrayLike, template: ArrayLike, *, analytic: bool = False) -> jax.Array:
  """Pulse compression: ``z[k] = sum_m x[k + m] * template[m]`` for ``k = 0 .. N - 1``.

  The causal lags of :func:`fft_correlate` (``full`` mode from lag 0), so ``z[k]`` peaks
  where a copy of ``template`` starts at sample ``k`` of ``x``.

  Args:
    x: recording ``[..., N]`` (real).
    template: transmitted pulse ``[..., M]`` (real).
    analytic: also return the quadrature part: ``z`` becomes the complex analytic signal
      of the correlation (one-sided spectrum), whose modulus is the echo envelope and
      whose angle is the carrier phase.
  """
  x, t = _as_float(x), _as_float(template)
  n, m = x.shape[-1], t.shape[-1]
  nfft = _fast_len(n + m - 1)
  spec = jnp.fft.fft(x, nfft) * jnp.conj(jnp.fft.fft(t, nfft))
  if analytic:
    # Analytic signal: keep DC and Nyquist, double positive frequencies, drop negative.
    h = jnp.zeros((nfft,), _real_dtype(spec))
    h = h.at[0].set(1.0).at[1:(nfft + 1) // 2].set(2.0)
    if nfft % 2 == 0:
      h = h.at[nfft // 2].set(1.0)
    return jnp.fft.ifft(spec * h, nfft)[..., :n]
  return jnp.real(jnp.fft.ifft(spec, nfft))[..., :n]


def parabolic_interpolate(y: ArrayLike, index: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Vertex of the parabola through ``y[i-1], y[i], y[i+1]`` at integer peaks ``index``.

  Args:
    y: samples ``[..., N]`` (real).
    index: integer peak positions ``[...]`` (one per signal) or ``[..., K]`` (K per
      signal); edges are clamped (no interpolation at sample 0 or N - 1).

  Returns:
    ``(position, value)``: sub-sample position in samples and the vertex value.
  """
  y = _as_float(y)
  n = y.shape[-1]
  i = jnp.clip(jnp.asarray(index), 0, n - 1)
  squeeze = i.ndim == y.ndim - 1  # one peak per signal, else [..., K] peaks per signal

  def take(j):
    j = jnp.clip(j, 0, n - 1)
    if squeeze:
      return jnp.take_along_axis(y, j[..., None], axis=-1)[..., 0]
    return jnp.take_along_axis(y, j, axis=-1)

  y0, y1, y2 = take(i - 1), take(i), take(i + 1)
  den = y0 - 2 * y1 + y2
  inside = (i > 0) & (i < n - 1) & (den < 0)
  # Guard 0/0 on flat tops and edges: use the integer peak there.
  delta = jnp.where(inside, 0.5 * (y0 - y2) / jnp.where(inside, den, 1.0), 0.0)
  delta = jnp.clip(delta, -0.5, 0.5)
  value = y1 - 0.25 * (y0 - y2) * delta
  return i.astype(y.dtype) + delta, value


class Peaks(NamedTuple):
  """Fixed-size peak list (sorted by height, highest first); ``valid`` marks real peaks."""
  position: jax.Array  # sub-sample positions [..., K]
  value: jax.Array     # interpolated heights [..., K]
  valid: jax.Array     # bool [..., K]


def find_peaks(y: ArrayLike, *, num_peaks: int, threshold: ArrayLike = 0.0) -> Peaks:
  """The ``num_peaks`` highest local maxima of ``y [..., N]`` above ``threshold``.

  A local maximum is an interior sample strictly above its left neighbour and not below
  its right one (plateaus count once, at their left end; SciPy takes their middle). Positions are refined by
  :func:`parabolic_interpolate`.

  Args:
    y: samples ``[..., N]`` (real, e.g. an echo envelope).
    num_peaks: K, the fixed output length (static).
    threshold: minimum height, scalar or ``[...]``.
  """
  y = _as_float(y)
  n = y.shape[-1]
  # The first and last samples are never peaks (as scipy.signal.find_peaks).
  left = jnp.concatenate([jnp.full(y.shape[:-1] + (1,), jnp.inf, y.dtype), y[..., :-1]], -1)
  right = jnp.concatenate([y[..., 1:], jnp.full(y.shape[:-1] + (1,), jnp.inf, y.dtype)], -1)
  thr = jnp.asarray(threshold, y.dtype)[..., None]
  is_peak = (y > left) & (y >= right) & (y > thr)
  score = jnp.where(is_peak, y, -jnp.inf)
  k = min(num_peaks, n)
  top, idx = jax.lax.top_k(score, k)
  pos, val = parabolic_interpolate(y, idx)
  valid = jnp.isfinite(top)
  pad = num_peaks - k
  if pad:
    padw = [(0, 0)] * (y.ndim - 1) + [(0, pad)]
    pos, val, valid = jnp.pad(pos, padw), jnp.pad(val, padw), jnp.pad(valid, padw)
  return Peaks(pos, jnp.where(valid, val, 0.0), valid)


def _nfft(n: int, zero_pad: int | None, nfft: int | None) -> int:
  if nfft is not None:
    if nfft < n:
      raise ValueError(f"nfft={nfft} is shorter than the signal ({n} samples)")
    return nfft
  if zero_pad is None or zero_pad < 1:
    raise ValueError(f"zero_pad must be an integer >= 1, got {zero_pad}")
  return n * int(zero_pad)


def periodogram(x: ArrayLike, fs: float = 1.0, *, window: str = "hann",
                nfft: int | None = None) -> tuple[jax.Array, jax.Array]:
  """One-sided power spectral density of real ``x [..., N]``.

  Same as ``scipy.signal.periodogram(x, fs, window=window, nfft=nfft)`` (constant
  detrend, ``density`` scaling; periodic window).

  Returns:
    ``(frequencies [F], psd [..., F])`` with ``F = nfft // 2 + 1``.
  """
  x = _as_float(x)
  n = x.shape[-1]
  nfft = _nfft(n, 1, nfft)
  w = get_window(window, n, x.dtype)
  xd = (x - jnp.mean(x, axis=-1, keepdims=True)) * w
  spec = jnp.abs(jnp.fft.rfft(xd, nfft)) ** 2 / (fs * jnp.sum(w * w))
  scale = jnp.full((nfft // 2 + 1,), 2.0, x.dtype).at[0].set(1.0)
  if nfft % 2 == 0:
    scale = scale.at[-1].set(1.0)
  return jnp.fft.rfftfreq(nfft, 1.0 / fs).astype(x.dtype), spec * scale


class FrequencyEstimate(NamedTuple):
  """Result of :func:`estimate_frequency` (each ``[...]``, the input's batch shape)."""
  frequency: jax.Array   # Hz, sub-bin interpolated
  amplitude: jax.Array   # amplitude of the sinusoid at that frequency (input units)
  prominence: jax.Array  # peak power / median power in the search band (>= 1 for peaks)


def estimate_frequency(x: ArrayLike, fs: float, *, window: str = "hann", zero_pad: int = 4,
                       fmin: float | None = None, fmax: float | None = None,
                       detrend: str = "linear") -> FrequencyEstimate:
  """Dominant frequency and amplitude of ``x [..., N]`` by a windowed, zero-padded FFT.

  The peak of the magnitude spectrum within ``[fmin, fmax]`` is refined by a parabola
  through the log-magnitudes of the three bins around it (Gaussian interpolation), which
  for Hann/Blackman windows and ``zero_pad >= 2`` has negligible bias; the amplitude is
  ``2 |X(f)| / sum(w)`` at the interpolated peak.

  Args:
    x: real signal ``[..., N]`` sampled at ``fs``.
    fs: sampling rate in Hz.
    window: window name (:func:`get_window`).
    zero_pad: FFT length as a multiple of N (static integer >= 1).
    fmin, fmax: search band in Hz (default: one native bin above DC to Nyquist).
    detrend: ``none``, ``constant`` (remove the mean) or ``linear`` (least-squares line).

  Returns:
    :class:`FrequencyEstimate` (frequency in Hz, amplitude, prominence).
  """
  if detrend not in ("none", "constant", "linear"):
    raise ValueError(f"detrend must be none, constant or linear, got {detrend!r}")
  x = _as_float(x)
  n = x.shape[-1]
  if n < 4:
    raise ValueError(f"need at least 4 samples, got {n}")
  nfft = _nfft(n, zero_pad, None)
  if detrend != "none":
    x = x - jnp.mean(x, axis=-1, keepdims=True)
  if detrend == "linear":
    t = jnp.arange(n, dtype=x.dtype) - (n - 1) / 2
    slope = jnp.sum(x * t, axis=-1, keepdims=True) / jnp.sum(t * t)
    x = x - slope * t
  w = get_window(window, n, x.dtype)
  mag = jnp.abs(jnp.fft.rfft(x * w, nfft))
  freqs = np.arange(nfft // 2 + 1) * (fs / nfft)
  lo = fs / n if fmin is None else fmin
  hi = fs / 2 if fmax is None else fmax
  if not lo < hi:
    raise ValueError(f"empty search band [{lo}, {hi}] Hz")
  band_np = (freqs >= lo) & (freqs <= hi)
  if not band_np.any():
    raise ValueError(f"search band [{lo}, {hi}] Hz holds no FFT bin (nfft={nfft}, fs={fs})")
  band = jnp.asarray(band_np)
  i = jnp.argmax(jnp.where(band, mag, -1.0), axis=-1)
  tiny = jnp.finfo(x.dtype).tiny
  # log of 0 on silent inputs: floor the magnitudes at the smallest normal number.
  logmag = jnp.log(jnp.maximum(mag, tiny))
  pos, logpeak = parabolic_interpolate(logmag, i)
  amp = 2.0 * jnp.exp(logpeak) / jnp.sum(w)
  power = jnp.where(band, mag * mag, jnp.nan)
  med = jnp.nanmedian(power, axis=-1)
  # Silent input: median power 0; report prominence 1 (no peak) instead of 0/0.
  prom = jnp.where(med > 0, jnp.exp(2 * logpeak) / jnp.where(med > 0, med, 1.0), 1.0)
  return FrequencyEstimate(pos * (fs / nfft), amp, prom)
