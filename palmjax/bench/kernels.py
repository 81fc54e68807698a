"""Image-liveness kernels (SPEC F2–F4) next to scikit-image / SciPy / OpenCV, same inputs.

LBP (P8R1 every method, P16R2 uniform) vs ``skimage.feature.local_binary_pattern``,
RGB->HSV vs ``skimage.color.rgb2hsv``, colour moments vs NumPy + ``scipy.stats.skew``,
sparse pyramidal LK vs ``cv2.calcOpticalFlowPyrLK`` (points/s and median endpoint error
on a known sub-pixel shift) and dense LK vs ``cv2.calcOpticalFlowFarneback`` (Mpix/s).
palmjax inputs are device arrays placed before timing; compile time is excluded (warm-up);
sparse LK is timed in rounds alternating with OpenCV's (:func:`palmjax.bench.time_pair`).
"""

from __future__ import annotations

import argparse
import warnings

DESCRIPTION = "LBP, HSV, colour moments, Lucas-Kanade vs skimage/SciPy/OpenCV"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--size", type=int, default=256,
                      help="side of the square test images (default 256)")
  parser.add_argument("--points", type=int, default=400,
                      help="points tracked by sparse LK (default 400)")
  parser.add_argument("--quick", action="store_true",
                      help="fewer timing rounds (rougher numbers, ~3x faster)")


def _row(kernel, inp, ours, peer, theirs, unit="Mpix/s", note=""):
  return {"kernel": kernel, "input": inp, "palmjax": ours, "peer": peer,
          "peer value": theirs, "unit": unit, "speedup": ours / theirs, "note": note}


def run(args: argparse.Namespace) -> list[dict]:
  import cv2
  import jax
  import jax.numpy as jnp
  import numpy as np
  import scipy.ndimage as ndi
  import scipy.stats
  from skimage import color, data
  from skimage.feature import local_binary_pattern as sk_local_binary_pattern

  from palmjax.bench import time_call, time_pair
  from palmjax.kernels import color_moments, local_binary_pattern, lucas_kanade, rgb_to_hsv

  n = int(args.size)
  timing = dict(repeats=3, min_time=0.1) if args.quick else dict(repeats=5, min_time=0.25)
  rgb_full = data.astronaut()
  rgb = cv2.resize(rgb_full, (n, n), interpolation=cv2.INTER_AREA)
  grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
  mpix = n * n / 1e6
  rows = []

  # --- LBP
  dev_grey = jax.device_put(jnp.asarray(grey, jnp.float32))
  configs = [(8, 1, m) for m in ("default", "ror", "uniform", "nri_uniform", "var")]
  configs.append((16, 2, "uniform"))
  for P, R, method in configs:
    ours = time_call(lambda: local_binary_pattern(dev_grey, P, R, method), **timing)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      theirs = time_call(lambda: sk_local_binary_pattern(grey, P, R, method), **timing)
    rows.append(_row(f"lbp P{P} R{R:g} {method}", f"{n}x{n} u8", mpix / ours,
                     "skimage local_binary_pattern", mpix / theirs))

  # --- colour
  rgbf = rgb.astype(np.float32) / 255
  dev_rgb = jax.device_put(jnp.asarray(rgbf))
  ours = time_call(lambda: rgb_to_hsv(dev_rgb), **timing)
  theirs = time_call(lambda: color.rgb2hsv(rgbf), **timing)
  rows.append(_row("rgb_to_hsv", f"{n}x{n}x3 f32", mpix / ours, "skimage rgb2hsv",
                   mpix / theirs))
  hsv = color.rgb2hsv(rgbf).astype(np.float32)
  dev_hsv = jax.device_put(jnp.asarray(hsv))
  ours = time_call(lambda: color_moments(dev_hsv), **timing)
  theirs = time_call(lambda: (hsv.mean((0, 1)), hsv.std((0, 1)),
                              scipy.stats.skew(hsv, axis=(0, 1))), **timing)
  rows.append(_row("color_moments", f"{n}x{n}x3 f32", mpix / ours,
                   "numpy mean/std + scipy skew", mpix / theirs))

  # --- Lucas-Kanade: astronaut shifted by (1.7, -0.8) px
  shift = np.array([1.7, -0.8])
  g = grey.astype(np.float64)
  nxt = np.clip(np.round(ndi.shift(g, (shift[1], shift[0]), order=3, mode="reflect")),
                0, 255).astype(np.uint8)
  pts = cv2.goodFeaturesToTrack(grey, args.points, 0.001, 3)[:, 0, :]
  m = 32
  pts = pts[np.all((pts > m) & (pts < n - m), axis=1)].astype(np.float32)
  # OpenCV's defaults on both sides: 21x21 window, 3 levels, criteria (COUNT | EPS, 30,
  # 0.01); palmjax measures epsilon in level-0 pixels (module docstring of kernels.flow)
  win, lev, its, eps = 21, 3, 30, 0.01
  dev_a = jax.device_put(jnp.asarray(grey, jnp.float32) / 255)
  dev_b = jax.device_put(jnp.asarray(nxt, jnp.float32) / 255)
  dev_p = jax.device_put(jnp.asarray(pts))
  lk = lambda: lucas_kanade(dev_a, dev_b, dev_p, window=win, levels=lev, iterations=its,
                            epsilon=eps)
  criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, its, eps)
  cv_call = lambda: cv2.calcOpticalFlowPyrLK(grey, nxt, pts[:, None], None,
                                             winSize=(win, win), maxLevel=lev,
                                             criteria=criteria)
  # alternating rounds: both sides under the same background load
  ours, theirs = time_pair(lambda: lk().flow, cv_call, **timing)
  flow = np.asarray(lk().flow)
  p1 = cv_call()[0][:, 0]
  epe = np.median(np.linalg.norm(flow - shift, axis=1))
  epe_cv = np.median(np.linalg.norm(p1 - pts - shift, axis=1))
  rows.append(_row(f"lucas_kanade sparse w{win} L{lev} it{its}", f"{n}x{n} u8, {len(pts)} pts",
                   len(pts) / ours, "cv2.calcOpticalFlowPyrLK", len(pts) / theirs,
                   unit="points/s", note=f"median EPE {epe:.4f} vs {epe_cv:.4f} px"))

  ours = time_call(lambda: lucas_kanade(dev_a, dev_b, window=15, levels=lev,
                                        iterations=5).flow, **timing)
  fb = lambda: cv2.calcOpticalFlowFarneback(grey, nxt, None, 0.5, 3, 15, 3, 5, 1.2, 0)
  theirs = time_call(fb, **timing)
  dense = np.asarray(lucas_kanade(dev_a, dev_b, window=15, levels=lev, iterations=5).flow)
  inner = (slice(m, n - m), slice(m, n - m))
  epe = np.median(np.linalg.norm(dense[inner] - shift, axis=-1))
  epe_fb = np.median(np.linalg.norm(fb()[inner] - shift, axis=-1))
  rows.append(_row("lucas_kanade dense w15 L3 it5", f"{n}x{n} u8", mpix / ours,
                   "cv2.calcOpticalFlowFarneback", mpix / theirs,
                   note=f"median EPE {epe:.4f} vs {epe_fb:.4f} px"))
  return rows
