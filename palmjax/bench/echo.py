"""Suite ``echo``: palmjax spectral kernels vs SciPy on the echo pipeline's shapes.

FFT cross-correlation (pulse compression of every frame of a capture with the chirp) and
periodogram (slow-time spectra of many region signals), same inputs, one run; figures in
signals per second.
"""

from __future__ import annotations

import argparse

DESCRIPTION = "echo: FFT correlation and periodogram vs SciPy (signals/s)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--frames", type=int, default=500, help="frames (signals) per batch")
  parser.add_argument("--frame-len", type=int, default=960, help="samples per frame")
  parser.add_argument("--chirp-len", type=int, default=96, help="template length")
  parser.add_argument("--series", type=int, default=256, help="slow-time series per batch")
  parser.add_argument("--series-len", type=int, default=500, help="samples per series")
  parser.add_argument("--zero-pad", type=int, default=8)


def run(args: argparse.Namespace) -> list[dict]:
  import jax
  import numpy as np
  import scipy.signal

  from palmjax.bench import time_call
  from palmjax.kernels import spectral

  r = np.random.default_rng(0)
  rows = []
  x = r.normal(size=(args.frames, args.frame_len)).astype(np.float32)
  t = r.normal(size=(args.chirp_len,)).astype(np.float32)
  xj, tj = jax.device_put(x), jax.device_put(t)
  corr = jax.jit(lambda a, b: spectral.fft_correlate(a, b[None, :], mode="full"))
  np.testing.assert_allclose(np.asarray(corr(xj, tj))[0],
                             scipy.signal.correlate(x[0], t, "full", method="fft"), atol=1e-3)
  tp = time_call(lambda: corr(xj, tj))
  ts = time_call(lambda: scipy.signal.correlate(x, t[None, :], mode="full", method="fft"))
  rows.append({"kernel": "fft_correlate (full)",
               "input": f"{args.frames}x{args.frame_len} * {args.chirp_len}",
               "palmjax signals/s": args.frames / tp, "peer": "scipy.signal.correlate(fft)",
               "peer signals/s": args.frames / ts, "speedup": ts / tp})

  y = r.normal(size=(args.series, args.series_len)).astype(np.float32)
  yj = jax.device_put(y)
  nfft = args.zero_pad * args.series_len
  pg = jax.jit(lambda a: spectral.periodogram(a, 50.0, window="hann", nfft=nfft)[1])
  tp = time_call(lambda: pg(yj))
  ts = time_call(lambda: scipy.signal.periodogram(y, 50.0, window="hann", nfft=nfft))
  rows.append({"kernel": "periodogram (hann)",
               "input": f"{args.series}x{args.series_len}, nfft {nfft}",
               "palmjax signals/s": args.series / tp, "peer": "scipy.signal.periodogram",
               "peer signals/s": args.series / ts, "speedup": ts / tp})
  ef = jax.jit(lambda a: spectral.estimate_frequency(a, 50.0, zero_pad=args.zero_pad,
                                                     fmin=0.4, fmax=3.0))
  tp = time_call(lambda: ef(yj))

  def scipy_peak():
    f, p = scipy.signal.periodogram(y, 50.0, window="hann", nfft=nfft, detrend="linear")
    band = (f >= 0.4) & (f <= 3.0)
    return f[band][np.argmax(p[:, band], axis=-1)]
  ts = time_call(scipy_peak)
  rows.append({"kernel": "estimate_frequency (sub-bin)",
               "input": f"{args.series}x{args.series_len}, nfft {nfft}",
               "palmjax signals/s": args.series / tp, "peer": "periodogram + argmax",
               "peer signals/s": args.series / ts, "speedup": ts / tp})
  return rows
