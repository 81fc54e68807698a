"""palmjax.kernels.spectral vs SciPy/NumPy: correlation, windows, periodogram, peaks, f-estimator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st

from palmjax.kernels import spectral

SHAPES = [(64, 9), (100, 17), (33, 40)]


@given(shape=st.sampled_from(SHAPES), mode=st.sampled_from(["full", "same", "valid"]),
       seed=st.integers(0, 2**31 - 1), cplx=st.booleans())
def test_fft_correlate_matches_scipy(shape, mode, seed, cplx):
  r = np.random.default_rng(seed)
  n, m = shape
  x = r.normal(size=(2, n)).astype(np.float32)
  y = r.normal(size=(2, m)).astype(np.float32)
  if cplx:
    x = (x + 1j * r.normal(size=x.shape)).astype(np.complex64)
  got = np.asarray(spectral.fft_correlate(x, y, mode=mode))
  want = np.stack([scipy.signal.correlate(x[i], y[i], mode=mode, method="direct")
                   for i in range(2)])
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()))


def test_matched_filter_is_causal_correlation_and_analytic():
  r = np.random.default_rng(0)
  t = r.normal(size=24).astype(np.float32)
  x = np.zeros((3, 200), np.float32)
  for i, d in enumerate([10, 57, 150]):
    x[i, d:d + 24] = t
  x += 0.01 * r.normal(size=x.shape).astype(np.float32)
  z = np.asarray(jax.jit(spectral.matched_filter)(x, t))
  want = np.stack([scipy.signal.correlate(x[i], t, "full")[23:223] for i in range(3)])
  np.testing.assert_allclose(z, want, atol=1e-4 * np.abs(want).max())
  assert list(np.argmax(z, -1)) == [10, 57, 150]
  za = np.asarray(spectral.matched_filter(x, t, analytic=True))
  np.testing.assert_allclose(za.real, want, atol=1e-4 * np.abs(want).max())
  # Quadrature part: SciPy's Hilbert transform of the (circular, nfft-long) correlation.
  nfft = spectral._fast_len(200 + 24 - 1)
  circ = np.real(np.fft.ifft(np.fft.fft(x, nfft) * np.conj(np.fft.fft(t, nfft))))
  np.testing.assert_allclose(za.imag, scipy.signal.hilbert(circ)[:, :200].imag,
                             atol=2e-4 * np.abs(want).max())


@pytest.mark.parametrize("name", ["boxcar", "hann", "hamming", "blackman"])
def test_windows_match_scipy(name):
  for n in (1, 8, 33):
    np.testing.assert_allclose(spectral.get_window(name, n), scipy.signal.get_window(name, n),
                               atol=1e-6)


@given(seed=st.integers(0, 2**31 - 1), window=st.sampled_from(["hann", "boxcar", "blackman"]),
       nfft=st.sampled_from([None, 256]))
def test_periodogram_matches_scipy(seed, window, nfft):
  x = np.random.default_rng(seed).normal(size=(3, 128)).astype(np.float32) + 2.0
  f, p = spectral.periodogram(x, 50.0, window=window, nfft=nfft)
  f2, p2 = scipy.signal.periodogram(x, 50.0, window=window, nfft=nfft)
  np.testing.assert_allclose(f, f2, rtol=1e-6)
  np.testing.assert_allclose(p, p2, atol=1e-4 * p2.max())


@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([128, 256]),
       cycles=st.floats(4.0, 60.0), amp=st.floats(0.1, 10.0))
def test_estimate_frequency_sub_bin_at_10db(seed, n, cycles, amp):
  """Frequency error <= 0.1 native FFT bin for a sinusoid at 10 dB SNR; amplitude ~5%;
  and the estimate sits within half a (zero-padded) bin of SciPy's periodogram peak."""
  r = np.random.default_rng(seed)
  fs = 50.0
  f0 = cycles * fs / n
  t = np.arange(n) / fs
  sigma = np.sqrt(amp**2 / 2 / 10.0)  # SNR = (A^2 / 2) / sigma^2 = 10 dB
  x = amp * np.sin(2 * np.pi * f0 * t + r.uniform(0, 2 * np.pi)) + sigma * r.normal(size=n)
  est = spectral.estimate_frequency(x.astype(np.float32), fs, zero_pad=4)
  err_bins = abs(float(est.frequency) - f0) / (fs / n)
  assert err_bins <= 0.1
  assert abs(float(est.amplitude) - amp) <= 0.15 * amp
  fp, pp = scipy.signal.periodogram(x, fs, window="hann", nfft=4 * n, detrend="linear")
  band = fp >= fs / n
  f_scipy = fp[band][np.argmax(pp[band])]
  assert abs(float(est.frequency) - f_scipy) <= 0.5 * fs / (4 * n) + 1e-6
  assert float(est.prominence) > 10



_estimate_jit = jax.jit(spectral.estimate_frequency, static_argnames=("fs", "detrend"))


@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([200, 257, 1000]),
       cycles=st.floats(2.0, 200.0), snr_db=st.floats(0.0, 30.0),
       detrend=st.sampled_from(["linear", "constant"]))
def test_estimate_frequency_default_padding_matches_scipy_8x_peak(seed, n, cycles, snr_db,
                                                                  detrend):
  """Documented tolerance: with the default 4x padding (a 5-smooth FFT length) the refined
  peak is within half an 8x-padded bin + 0.01 native bin of SciPy's 8x periodogram peak;
  amplitude and prominence as the same sums in float64 (NumPy's rfft at that length)."""
  r = np.random.default_rng(seed)
  fs = 100.0
  f0 = min(cycles, n / 2 - 2) * fs / n
  t = np.arange(n) / fs
  sigma = np.sqrt(0.5 / 10 ** (snr_db / 10))
  x = (np.sin(2 * np.pi * f0 * t + r.uniform(0, 2 * np.pi)) + sigma * r.normal(size=n)
       + 0.3 * r.normal() + 0.01 * r.normal() * t)
  x = x.astype(np.float32)
  est = _estimate_jit(x, fs, detrend=detrend)
  fp, pp = scipy.signal.periodogram(x.astype(np.float64), fs, window="hann", nfft=8 * n,
                                    detrend=detrend)
  band = fp >= fs / n
  f_scipy = fp[band][np.argmax(pp[band])]
  assert abs(float(est.frequency) - f_scipy) <= 0.5 * fs / (8 * n) + 0.01 * fs / n
  # Reference amplitude/prominence: the float64 spectrum at the same FFT length.
  nfft = spectral._fast_len(4 * n)
  xd = scipy.signal.detrend(x.astype(np.float64), type=detrend)
  w = scipy.signal.get_window("hann", n)
  p = np.abs(np.fft.rfft(xd * w, nfft)) ** 2
  f_bins = np.arange(nfft // 2 + 1) * fs / nfft
  k = int(np.argmax(np.where(f_bins >= fs / n, p, -1)))
  lp = np.log(p[k - 1:k + 2])
  delta = 0.5 * (lp[0] - lp[2]) / (lp[0] - 2 * lp[1] + lp[2])
  peak = lp[1] - 0.25 * (lp[0] - lp[2]) * delta
  np.testing.assert_allclose(float(est.frequency), (k + delta) * fs / nfft, rtol=1e-4)
  np.testing.assert_allclose(float(est.amplitude), 2 * np.exp(peak / 2) / w.sum(), rtol=1e-3)
  np.testing.assert_allclose(float(est.prominence),
                             np.exp(peak) / np.median(p[f_bins >= fs / n]), rtol=2e-3)


_kth_jit, _median_jit = jax.jit(spectral.kth_smallest), jax.jit(spectral.median)


@given(seed=st.integers(0, 2**31 - 1), m=st.sampled_from([1, 2, 7, 64, 301]), ties=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float16]))
def test_kth_smallest_and_median_match_numpy(seed, m, ties, dtype):
  r = np.random.default_rng(seed)
  x = r.normal(size=(3, m)) * 10.0 ** r.integers(-3, 4, size=(3, 1))
  if ties:
    x = np.round(x)  # repeated values and signed zeros
  x = x.astype(dtype)
  x[0, 0] = -0.0
  k = int(r.integers(0, m))
  np.testing.assert_array_equal(_kth_jit(x, k), np.sort(x, axis=-1)[:, k])
  np.testing.assert_allclose(_median_jit(x), np.median(x, axis=-1), rtol=1e-3)
  np.testing.assert_array_equal(spectral.kth_smallest(np.array([np.inf, -np.inf, 1.0]), 2),
                                np.inf)
  with pytest.raises(ValueError, match="outside"):
    spectral.kth_smallest(x, m)

def test_estimate_frequency_batched_jit_vmap_and_band():
  fs, n = 50.0, 200
  t = np.arange(n) / fs
  x = np.stack([np.sin(2 * np.pi * 1.3 * t) + 3 * np.sin(2 * np.pi * 0.3 * t),
                0.5 * np.sin(2 * np.pi * 2.2 * t)]).astype(np.float32)
  f = jax.jit(lambda v: spectral.estimate_frequency(v, fs, fmin=0.8, fmax=3.0))
  e = f(x)
  np.testing.assert_allclose(e.frequency, [1.3, 2.2], atol=0.1 * fs / n)
  np.testing.assert_allclose(e.amplitude, [1.0, 0.5], rtol=0.05)
  v = jax.vmap(lambda v: spectral.estimate_frequency(v, fs, fmin=0.8, fmax=3.0))(x)
  np.testing.assert_allclose(v.frequency, e.frequency, rtol=1e-6)
  # Whole band: the strong slow component wins.
  assert abs(float(spectral.estimate_frequency(x[0], fs).frequency) - 0.3) < 0.02
  # Silent input: finite output, prominence 1 (no peak).
  s = spectral.estimate_frequency(np.zeros(n, np.float32), fs)
  assert np.isfinite(float(s.frequency)) and float(s.prominence) == 1.0
  with pytest.raises(ValueError, match="band"):
    spectral.estimate_frequency(x, fs, fmin=30.0, fmax=40.0)


@given(seed=st.integers(0, 2**31 - 1))
def test_find_peaks_matches_scipy_with_subsample_vertex(seed):
  r = np.random.default_rng(seed)
  y = np.convolve(r.normal(size=80), np.hanning(7), "same").astype(np.float32)
  pk = spectral.find_peaks(y, num_peaks=40, threshold=0.0)
  idx, _ = scipy.signal.find_peaks(y, height=1e-12)
  got = np.sort(np.round(np.asarray(pk.position)[np.asarray(pk.valid)]).astype(int))
  # Parabolic refinement moves by < 0.5 sample, so rounding recovers the integer peaks.
  np.testing.assert_array_equal(got, np.sort(idx))
  # Vertex of an exact parabola is exact.
  q = -(np.arange(20, dtype=np.float32) - 7.3) ** 2
  pos, val = spectral.parabolic_interpolate(q, jnp.argmax(q))
  assert abs(float(pos) - 7.3) < 1e-4 and abs(float(val)) < 1e-3


def test_bad_arguments():
  with pytest.raises(ValueError, match="mode"):
    spectral.fft_correlate(np.ones(4), np.ones(2), mode="nope")
  with pytest.raises(ValueError, match="window"):
    spectral.get_window("kaiser", 8)
  with pytest.raises(ValueError, match="zero_pad"):
    spectral.estimate_frequency(np.ones(16), 1.0, zero_pad=0)
