"""Suite ``echo``: palmjax spectral kernels vs SciPy on the echo pipeline's shapes.

FFT cross-correlation (pulse compression of every frame of a capture with the chirp),
periodogram (slow-time spectra of many region signals) and the sub-bin frequency estimate
(``estimate_frequency`` vs SciPy's 8x zero-padded periodogram peak, the same linear detrend
and Hann window, float32 in both), same inputs, one run; figures in signals per second,
the two sides timed in alternating rounds (:func:`palmjax.bench.time_pair`).
"""

from __future__ import annotations

import argparse
import inspect

DESCRIPTION = "echo: FFT correlation and periodogram vs SciPy (signals/s)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--frames", type=int, default=500, help="frames (signals) per batch")
  parser.add_argument("--frame-len", type=int, default=960, help="samples per frame")
  parser.add_argument("--chirp-len", type=int, default=96, help="template length")
  parser.add_argument("--series", type=int, default=256, help="slow-time series per batch")
  parser.add_argument("--series-len", type=int, default=500, help="samples per series")
  parser.add_argument("--zero-pad", type=int, default=8,
                      help="periodogram nfft / series length, and SciPy's padding for the peak")
  parser.add_argument("--peak-series-len", type=int, default=1000,
                      help="samples per series for the frequency estimate (fs 100 Hz)")


def run(args: argparse.Namespace) -> list[dict]:
  import jax
  import numpy as np
  import scipy.signal

  from palmjax.bench import time_pair
  from palmjax.kernels import spectral

  r = np.random.default_rng(0)
  rows = []
  x = r.normal(size=(args.frames, args.frame_len)).astype(np.float32)
  t = r.normal(size=(args.chirp_len,)).astype(np.float32)
  xj, tj = jax.device_put(x), jax.device_put(t)
  corr = jax.jit(lambda a, b: spectral.fft_correlate(a, b[None, :], mode="full"))
  np.testing.assert_allclose(np.asarray(corr(xj, tj))[0],
                             scipy.signal.correlate(x[0], t, "full", method="fft"), atol=1e-3)
  tp, ts = time_pair(lambda: corr(xj, tj),
                     lambda: scipy.signal.correlate(x, t[None, :], mode="full", method="fft"))
  rows.append({"kernel": "fft_correlate (full)",
               "input": f"{args.frames}x{args.frame_len} * {args.chirp_len}",
               "palmjax signals/s": args.frames / tp, "peer": "scipy.signal.correlate(fft)",
               "peer signals/s": args.frames / ts, "speedup": ts / tp})

  y = r.normal(size=(args.series, args.series_len)).astype(np.float32)
  yj = jax.device_put(y)
  nfft = args.zero_pad * args.series_len
  pg = jax.jit(lambda a: spectral.periodogram(a, 50.0, window="hann", nfft=nfft)[1])
  tp, ts = time_pair(lambda: pg(yj),
                     lambda: scipy.signal.periodogram(y, 50.0, window="hann", nfft=nfft))
  rows.append({"kernel": "periodogram (hann)",
               "input": f"{args.series}x{args.series_len}, nfft {nfft}",
               "palmjax signals/s": args.series / tp, "peer": "scipy.signal.periodogram",
               "peer signals/s": args.series / ts, "speedup": ts / tp})

  # Frequency estimate: palmjax's default 4x padding (log-parabola refinement) and the
  # peer's 8x padding, then both at 8x; whole band (one native bin above DC to Nyquist).
  fs, n = 100.0, args.peak_series_len
  t = np.arange(n) / fs
  f0 = r.uniform(fs / n * 2, fs / 2 * 0.9, size=(args.series, 1))
  z = (np.sin(2 * np.pi * f0 * t + r.uniform(0, 2 * np.pi, size=f0.shape))
       + r.normal(size=(args.series, n))).astype(np.float32)  # 3 dB SNR sinusoids
  zj = jax.device_put(z)
  nfft_peer = args.zero_pad * n

  def scipy_peak():
    f, p = scipy.signal.periodogram(z, fs, window="hann", nfft=nfft_peer, detrend="linear")
    band = f >= fs / n
    return f[band][np.argmax(p[:, band], axis=-1)]
  f_peer = scipy_peak()
  default_pad = inspect.signature(spectral.estimate_frequency).parameters["zero_pad"].default
  for pad in (None, args.zero_pad):
    kw = {} if pad is None else {"zero_pad": pad}
    ef = jax.jit(lambda a, kw=kw: spectral.estimate_frequency(a, fs, **kw))
    dev = np.abs(np.asarray(ef(zj).frequency) - f_peer).max() / (fs / nfft_peer)
    tp, ts = time_pair(lambda: ef(zj), scipy_peak)
    label = f"default {default_pad}" if pad is None else str(pad)
    rows.append({"kernel": f"estimate_frequency ({label}x pad)",
                 "input": f"{args.series}x{n} f32",
                 "palmjax signals/s": args.series / tp,
                 "peer": f"periodogram(nfft {nfft_peer}) + argmax",
                 "peer signals/s": args.series / ts, "speedup": ts / tp,
                 "note": f"max deviation from the peer {dev:.2f} peer bins"})
  return rows
