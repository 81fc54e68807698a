"""Pyramidal iterative Lucas–Kanade optical flow (Bouguet 2000) and flow statistics.

``lucas_kanade`` follows OpenCV's ``calcOpticalFlowPyrLK``: an image pyramid built with
OpenCV's ``pyrDown`` filter (5-tap binomial ``[1 4 6 4 1] / 16``, reflect-101 border, keep
even pixels), Scharr gradients of the previous frame on every level, a square window of
``window x window`` pixels sampled bilinearly around each point, the 2x2 gradient matrix
``G`` and its minimum eigenvalue as the trackability test, and Newton steps
``d += G^-1 sum (I - J(x + d)) grad I`` from the coarsest level down, the flow doubling at
each finer level. ``G`` and its inverse are computed once per level and point; each step
samples one ``(window + 1)^2`` block per point (one gather) and interpolates it as a 2x2
weighted sum of shifted views. Like OpenCV, a point stops once its step is shorter than
``epsilon`` (measured in full-resolution pixels, so coarse levels stop sooner) or after
``iterations`` steps, and an oscillating step is halved and ends it; the loop over all
points (``lax.while_loop``) ends when every point has stopped. Outside the image the
frames are extended reflect-101 and the gradients are zero (OpenCV's pyramid borders).

Sparse mode tracks points ``[N, 2]`` given as ``(x, y)`` like OpenCV (or a regular grid);
dense mode computes a flow for every pixel with the same window sums written as box
filters of the warped difference (the window of a pixel uses its neighbours' current flow,
the usual dense LK approximation).

Intensities are put on the 8-bit scale (uint8 as is, other integers by ``255 / max``,
floats - assumed in [0, 1] - times 255), so ``min_eigen_threshold`` and ``error`` mean what
they mean in OpenCV: ``min_eig(G) / (1024 * window**2) >= 1e-4`` and the mean absolute
grey-level difference over the window.

``flow_statistics`` summarises a sequence of flow fields (magnitude mean/std, spatial and
temporal variation): the inputs of the lighting/motion liveness probability (SPEC F4).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import InputError, check_finite
from palmjax.kernels.filters import correlate1d

_PYR = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
_SCHARR_SMOOTH = (3 / 16, 10 / 16, 3 / 16)
_CENTRAL_DIFF = (-0.5, 0.0, 0.5)


class FlowResult(NamedTuple):
  """Flow ``(dx, dy)`` per point/pixel, whether it was tracked, and the residual error."""
  flow: jax.Array    # [..., N, 2] (sparse), [..., gh, gw, 2] (grid) or [..., H, W, 2]
  status: jax.Array  # bool, same shape without the last axis
  error: jax.Array   # mean |J(x + d) - I(x)| over the window, grey levels (0..255 scale)


class FlowStatistics(NamedTuple):
  """Summary of flow magnitudes over a sequence (each ``[...]``, batch dims kept)."""
  magnitude_mean: jax.Array       # mean |flow| over frames and points
  magnitude_std: jax.Array        # std of |flow| over frames and points
  spatial_variation: jax.Array    # mean over frames of the spatial std of |flow|
  temporal_variation: jax.Array   # std over frames of the per-frame mean |flow|
  temporal_change: jax.Array      # mean |(|flow_t| - |flow_{t-1}|)| over points and frames


def _filter2d(x: jax.Array, kh, kw) -> jax.Array:
  """Separable correlation of the last two axes of ``x`` (scipy's ``mirror`` border)."""
  return correlate1d(correlate1d(x, kh, -2, mode="mirror"), kw, -1, mode="mirror")


def _box(x: jax.Array, window: int) -> jax.Array:
  """Window sums ``window x window`` (reflect-101 border) of the last two axes."""
  return _filter2d(x, [1.0] * window, [1.0] * window)


def _pyr_down(x: jax.Array) -> jax.Array:
  return correlate1d(correlate1d(x, _PYR, -2, mode="mirror", step=2), _PYR, -1,
                     mode="mirror", step=2)


def _gradients(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Scharr derivatives (OpenCV's ``calcSharrDeriv``) in grey levels per pixel."""
  return (_filter2d(x, _SCHARR_SMOOTH, _CENTRAL_DIFF),
          _filter2d(x, _CENTRAL_DIFF, _SCHARR_SMOOTH))


def _padded_with_gradients(x: jax.Array, pad: int) -> jax.Array:
  """``[H + 2 pad, W + 2 pad, 3]``: ``x`` and its Scharr ``d/dx``, ``d/dy``, padded.

  The image is padded reflect-101 and the derivatives are zero outside it, as OpenCV's
  pyramid (``BORDER_REFLECT_101``) and derivative (``BORDER_CONSTANT``) borders. The
  derivatives are 3x3 stencils on the padded image in one fused pass (same values as
  :func:`_gradients` inside the image).
  """
  h, w = x.shape
  xp = jnp.pad(x, pad + 1, mode="reflect")
  hp, wp = h + 2 * pad, w + 2 * pad
  s = lambda dy, dx: xp[1 + dy:1 + dy + hp, 1 + dx:1 + dx + wp]
  sm = dict(zip((-1, 0, 1), _SCHARR_SMOOTH))
  gx = sum(sm[k] * 0.5 * (s(k, 1) - s(k, -1)) for k in (-1, 0, 1))
  gy = sum(sm[k] * 0.5 * (s(1, k) - s(-1, k)) for k in (-1, 0, 1))
  rows = jax.lax.broadcasted_iota(jnp.int32, (hp, wp), 0) - pad
  cols = jax.lax.broadcasted_iota(jnp.int32, (hp, wp), 1) - pad
  inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
  zero = jnp.zeros((), x.dtype)
  return jnp.stack([s(0, 0), jnp.where(inside, gx, zero), jnp.where(inside, gy, zero)], -1)


def _n_levels(h: int, w: int, window: int, levels: int) -> int:
  """Coarser levels actually used: stop before a level smaller than the window."""
  n = 0
  while n < levels:
    h, w = (h + 1) // 2, (w + 1) // 2
    if h < window or w < window:
      break
    n += 1
  return n


def _pyramid(x: jax.Array, n: int) -> list[jax.Array]:
  pyr = [x]
  for _ in range(n):
    pyr.append(_pyr_down(pyr[-1]))
  return pyr


def _min_eig(a11, a12, a22, n_pix):
  """OpenCV's normalised minimum eigenvalue of G (Scharr units: g * 32, G / 2**20)."""
  scale = 1024.0 / 1048576.0
  a11, a12, a22 = a11 * scale, a12 * scale, a22 * scale
  return (a22 + a11 - jnp.sqrt((a11 - a22) ** 2 + 4 * a12 * a12)) / (2 * n_pix)


def _solve(a11, a12, a22, b1, b2):
  det = a11 * a22 - a12 * a12
  ok = det > jnp.finfo(det.dtype).eps * (a11 + a22) ** 2
  # NaN guard: a singular G (flat window) would divide by 0; its step is 0 instead.
  inv = jnp.where(ok, 1.0 / jnp.where(ok, det, 1), 0)
  return (a12 * b2 - a22 * b1) * inv, (a12 * b1 - a11 * b2) * inv


# ---------------------------------------------------------------- sparse (per point)

def _patch(img: jax.Array, y: jax.Array, x: jax.Array, size: int, pad: int):
  """``size x size`` bilinear patch with top-left ``(y, x)`` of a ``pad``-padded image.

  ``img`` is ``[Hp, Wp, ...]`` (trailing channels are sampled together). One
  ``(size + 1)^2`` block is sliced out (a single gather under ``vmap``) and interpolated as
  a 2x2 weighted sum of its shifted views, so no per-pixel gathers are needed.
  """
  iy, ix = jnp.floor(y), jnp.floor(x)
  ay, ax = y - iy, x - ix
  hp, wp = img.shape[:2]
  iy = jnp.clip(iy.astype(jnp.int32) + pad, 0, hp - size - 1)
  ix = jnp.clip(ix.astype(jnp.int32) + pad, 0, wp - size - 1)
  start = (iy, ix) + (0,) * (img.ndim - 2)
  blk = jax.lax.dynamic_slice(img, start, (size + 1, size + 1) + img.shape[2:])
  top = (1 - ax) * blk[:-1, :-1] + ax * blk[:-1, 1:]
  bot = (1 - ax) * blk[1:, :-1] + ax * blk[1:, 1:]
  return (1 - ay) * top + ay * bot


def _sparse_pair(prev, nxt, pts, window: int, levels: int, iterations: int, thr: float,
                 eps: float):
  h, w = prev.shape
  n_lev = _n_levels(h, w, window, levels)
  half = (window - 1) / 2.0
  pad = window + 1
  n_pix = float(window * window)
  eps2 = eps * eps
  pyr = _pyramid(jnp.stack([prev, nxt]), n_lev)  # both frames in one pass per level

  def track_level(level, d):
    li, lj = pyr[level][0], pyr[level][1]
    lh, lw = li.shape
    # I and its gradients once per level for the whole image, sampled in one gather
    igg = _padded_with_gradients(li, pad)                    # [Hp, Wp, 3]
    lj = jnp.pad(lj, pad, mode="reflect")  # reflect-101, as OpenCV's border
    p = pts / (2.0 ** level)
    y0, x0 = p[:, 1] - half, p[:, 0] - half                      # window top-left [N]
    ipg = jax.vmap(lambda y, x: _patch(igg, y, x, window, pad))(y0, x0)  # [N, w, w, 3]
    ip, ix, iy = ipg[..., 0], ipg[..., 1], ipg[..., 2]
    # Bouguet: G (and its inverse) is fixed per level, only the mismatch b changes
    a11 = jnp.sum(ix * ix, axis=(1, 2))
    a12 = jnp.sum(ix * iy, axis=(1, 2))
    a22 = jnp.sum(iy * iy, axis=(1, 2))
    det = a11 * a22 - a12 * a12
    solvable = det > jnp.finfo(det.dtype).eps * (a11 + a22) ** 2
    # NaN guard: a singular G (flat window) would divide by 0; its step is 0 instead.
    inv_det = jnp.where(solvable, 1.0 / jnp.where(solvable, det, 1), 0)
    sample_j = jax.vmap(lambda y, x: _patch(lj, y, x, window, pad))

    def inside(d):
      qx, qy = jnp.floor(x0 + d[:, 0]), jnp.floor(y0 + d[:, 1])
      return (qx >= -window) & (qx < lw) & (qy >= -window) & (qy < lh)

    def cond(carry):
      k, _, active, _, _ = carry
      return (k < iterations) & jnp.any(active)

    def body(carry):
      k, d, active, ok, prev = carry
      ok = ok & (inside(d) | ~active)  # a point that left the image stops (lost)
      active = active & ok
      diff = sample_j(y0 + d[:, 1], x0 + d[:, 0]) - ip
      b1, b2 = jnp.sum(diff * ix, axis=(1, 2)), jnp.sum(diff * iy, axis=(1, 2))
      step = jnp.stack([(a12 * b2 - a22 * b1) * inv_det,
                        (a12 * b1 - a11 * b2) * inv_det], axis=-1)
      # OpenCV's damping: a step that undoes the previous one (oscillation) is halved
      # and ends the point's iterations
      osc = (k > 0) & jnp.all(jnp.abs(step + prev) < 0.01, axis=-1)
      step = jnp.where(osc[:, None], 0.5 * step, step)
      d = jnp.where(active[:, None], d + step, d)
      # OpenCV's criterion: stop a point once its step is shorter than eps (in level-0
      # pixels, so coarse levels, which finer ones refine anyway, stop sooner)
      active = active & ~osc & (jnp.sum(step * step, axis=-1) > eps2 * 4.0 ** level)
      return k + 1, d, active, ok, step

    n = pts.shape[0]
    init = (jnp.int32(0), d, jnp.ones(n, bool), jnp.ones(n, bool), jnp.zeros_like(d))
    _, d, _, ok, _ = jax.lax.while_loop(cond, body, init)
    if level > 0:
      return d, None, None, None
    # status and error of the finest level only (as OpenCV)
    ok = ok & inside(d)
    err = jnp.mean(jnp.abs(sample_j(y0 + d[:, 1], x0 + d[:, 0]) - ip), axis=(1, 2))
    return d, ok, _min_eig(a11, a12, a22, n_pix), err

  d = jnp.zeros_like(pts)
  for level in range(n_lev, -1, -1):
    d, ok, min_eig, err = track_level(level, d)
    if level > 0:
      d = 2.0 * d
  status = ok & (min_eig >= thr) & jnp.all(jnp.isfinite(d), axis=-1)
  return d, status, err


# ---------------------------------------------------------------- dense (every pixel)

def _bilinear(img: jax.Array, y: jax.Array, x: jax.Array) -> jax.Array:
  """Samples ``img`` [H, W] at float coordinates (edge-clamped)."""
  h, w = img.shape
  y = jnp.clip(y, 0, h - 1)
  x = jnp.clip(x, 0, w - 1)
  y0 = jnp.clip(jnp.floor(y), 0, h - 2 if h > 1 else 0).astype(jnp.int32)
  x0 = jnp.clip(jnp.floor(x), 0, w - 2 if w > 1 else 0).astype(jnp.int32)
  y1, x1 = jnp.minimum(y0 + 1, h - 1), jnp.minimum(x0 + 1, w - 1)
  ay, ax = y - y0, x - x0
  flat = img.reshape(-1)
  g = lambda r, c: jnp.take(flat, r * w + c)
  top = (1 - ax) * g(y0, x0) + ax * g(y0, x1)
  bot = (1 - ax) * g(y1, x0) + ax * g(y1, x1)
  return (1 - ay) * top + ay * bot


def _dense_pair(prev, nxt, window: int, levels: int, iterations: int, thr: float):
  h, w = prev.shape
  n_lev = _n_levels(h, w, window, levels)
  n_pix = float(window * window)
  box = lambda a: _box(a, window)
  pyr_i, pyr_j = _pyramid(prev, n_lev), _pyramid(nxt, n_lev)
  flow = None
  for level in range(n_lev, -1, -1):
    li, lj = pyr_i[level], pyr_j[level]
    lh, lw = li.shape
    yy, xx = jnp.meshgrid(jnp.arange(lh, dtype=li.dtype), jnp.arange(lw, dtype=li.dtype),
                          indexing="ij")
    if flow is None:
      flow = jnp.zeros((lh, lw, 2), li.dtype)
    else:  # upsample the coarser flow: fine pixel (y, x) sits at coarse (y / 2, x / 2)
      flow = 2.0 * jnp.stack([_bilinear(flow[..., k], yy / 2, xx / 2) for k in (0, 1)], -1)
    gx, gy = _gradients(li)
    a11, a12, a22 = box(gx * gx), box(gx * gy), box(gy * gy)

    def step(_, f, li=li, lj=lj, gx=gx, gy=gy, a11=a11, a12=a12, a22=a22, yy=yy, xx=xx):
      # Linearising J(q + d(p)) ~ J(q + d(q)) + grad I(q) . (d(p) - d(q)) makes the window
      # sums box filters that stay consistent when d varies: d(p) <- G(p)^-1 sum_q
      # g g^T d(q) - g (J(q + d(q)) - I(q)); a smoothing fixed point, stable unlike the
      # plain "warp, then step" update.
      u, v = f[..., 0], f[..., 1]
      diff = _bilinear(lj, yy + v, xx + u) - li
      t1 = gx * (gx * u + gy * v - diff)
      t2 = gy * (gx * u + gy * v - diff)
      dx, dy = _solve(a11, a12, a22, -box(t1), -box(t2))
      return jnp.stack([dx, dy], axis=-1)

    flow = jax.lax.fori_loop(0, iterations, step, flow)
  diff = _bilinear(pyr_j[0], yy + flow[..., 1], xx + flow[..., 0]) - pyr_i[0]
  err = box(jnp.abs(diff)) / n_pix
  status = (_min_eig(a11, a12, a22, n_pix) >= thr) & jnp.all(jnp.isfinite(flow), axis=-1)
  return flow, status, err


def _grey255(x: jax.Array) -> jax.Array:
  """Frame on the 8-bit grey scale (see the module docstring), float32 unless f64."""
  if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
    scale = 1.0 if x.dtype == jnp.uint8 else 255.0 if x.dtype == jnp.bool_ else \
        255.0 / float(jnp.iinfo(x.dtype).max)
    return x.astype(jnp.float32) * scale
  dtype = x.dtype if x.dtype in (jnp.float32, jnp.float64) else jnp.float32
  return x.astype(dtype) * 255.0


def _lk_core(prev, nxt, pts, window, levels, iterations, thr, eps, shared_points,
             grid_shape):
  # the intensity conversion happens here, inside jit: eager ops would cost more than
  # the whole sparse tracking of a few hundred points on CPU
  prev, nxt = _grey255(prev), _grey255(nxt)
  dtype = jnp.promote_types(prev.dtype, nxt.dtype)
  prev, nxt = prev.astype(dtype), nxt.astype(dtype)
  batch = prev.shape[:-2]
  h, w = prev.shape[-2:]
  p2, n2 = prev.reshape((-1, h, w)), nxt.reshape((-1, h, w))
  if pts is None:
    f = lambda a, b: _dense_pair(a, b, window, levels, iterations, thr)
    flow, status, err = jax.vmap(f)(p2, n2)
    return FlowResult(flow.reshape(batch + (h, w, 2)), status.reshape(batch + (h, w)),
                      err.reshape(batch + (h, w)))
  pts = pts.astype(dtype)
  n = pts.shape[-2]
  f = lambda a, b, p: _sparse_pair(a, b, p, window, levels, iterations, thr, eps)
  if p2.shape[0] == 1:
    # one pair (the common case): no vmap, whose batched while loop would select every
    # carried array on every step (~5% more CPU time)
    flow, status, err = jax.tree.map(lambda a: a[None], f(p2[0], n2[0], pts.reshape(n, 2)))
  elif shared_points:
    flow, status, err = jax.vmap(f, in_axes=(0, 0, None))(p2, n2, pts)
  else:
    flow, status, err = jax.vmap(f)(p2, n2, pts.reshape((-1, n, 2)))
  shape = batch + (grid_shape or (n,))
  return FlowResult(flow.reshape(shape + (2,)), status.reshape(shape), err.reshape(shape))


_lk_jit = jax.jit(_lk_core, static_argnums=(3, 4, 5, 6, 7, 8, 9))


def _check_frame(x, name: str):
  """Validates a frame without converting it (the conversion runs inside jit)."""
  if not isinstance(x, (jax.Array, np.ndarray)):
    x = np.asarray(x)
  if not isinstance(x, jax.core.Tracer):
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
      raise InputError(f"{name}: dtype {arr.dtype} is not numeric")
    check_finite(arr, name)
  if x.ndim < 2:
    raise InputError(f"{name}: expected a grey frame [..., H, W], got shape {x.shape}")
  return x


def lucas_kanade(prev: ArrayLike, next: ArrayLike, points: ArrayLike | None = None, *,
                 grid: int | None = None, window: int = 21, levels: int = 3,
                 iterations: int = 10, epsilon: float = 0.01,
                 min_eigen_threshold: float = 1e-4) -> FlowResult:
  """Pyramidal iterative Lucas–Kanade flow from ``prev`` to ``next``.

  Args:
    prev, next: grey frames ``[..., H, W]`` of the same shape (leading batch dims = frame
      pairs); see the module docstring for the intensity scale.
    points: optional ``[N, 2]`` (shared by all pairs) or ``[..., N, 2]`` float ``(x, y)``
      pixel positions in ``prev`` to track (OpenCV's convention). Without points (and
      without ``grid``) a dense flow is computed for every pixel.
    grid: track the points of a regular grid with this step (pixel centres
      ``step // 2, step // 2 + step, ...``); the result is shaped ``[..., gh, gw, 2]``.
    window: odd side of the square integration window (OpenCV ``winSize``).
    levels: coarser pyramid levels (OpenCV ``maxLevel``); fewer are used where a level
      would be smaller than the window.
    iterations: Newton steps per level: the most (sparse/grid mode, OpenCV's
      ``criteria.maxCount``) or the exact number (dense mode).
    epsilon: sparse/grid mode: a point stops iterating on a level once its step is
      shorter than this many pixels (OpenCV's ``criteria.epsilon``); 0 runs all
      ``iterations`` steps. The loop ends when every point has stopped.
    min_eigen_threshold: OpenCV's ``minEigThreshold`` (status is False below it).

  Returns:
    :class:`FlowResult` ``(flow, status, error)``; flow is ``(dx, dy)``: the tracked point
    is ``points + flow``.
  """
  p = _check_frame(prev, "prev")
  q = _check_frame(next, "next")
  if p.shape != q.shape:
    raise InputError(f"next: frame shape {q.shape} does not match prev {p.shape}")
  h, w = p.shape[-2:]
  if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or \
      window < 3 or window % 2 == 0:
    raise InputError(f"window: must be an odd integer >= 3, got {window!r}")
  if window > min(h, w):
    raise InputError(f"window: {window} is larger than the {h}x{w} frames")
  for name, v, lo in (("levels", levels, 0), ("iterations", iterations, 1)):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
      raise InputError(f"{name}: must be an integer >= {lo}, got {v!r}")
  if not np.isfinite(epsilon) or epsilon < 0:
    raise InputError(f"epsilon: must be finite and >= 0, got {epsilon!r}")
  if not np.isfinite(min_eigen_threshold) or min_eigen_threshold < 0:
    raise InputError(f"min_eigen_threshold: must be finite and >= 0, got "
                     f"{min_eigen_threshold!r}")
  grid_shape = None
  if grid is not None:
    if points is not None:
      raise InputError("grid: give either points or grid, not both")
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
      raise InputError(f"grid: the step must be an integer >= 1, got {grid!r}")
    ys, xs = np.arange(grid // 2, h, grid), np.arange(grid // 2, w, grid)
    grid_shape = (ys.size, xs.size)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    points = np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)
  shared = True
  if points is not None:
    if not isinstance(points, jax.core.Tracer):
      arr = check_finite(np.asarray(points, dtype=np.float64), "points")
      # device arrays go to jit as they are (no host round trip)
      points = points if isinstance(points, jax.Array) else arr
    if points.ndim < 2 or points.shape[-1] != 2 or points.shape[-2] < 1:
      raise InputError(f"points: expected [N, 2] or [..., N, 2] (x, y), got "
                       f"{points.shape}")
    shared = points.ndim == 2
    if not shared and points.shape[:-2] != p.shape[:-2]:
      raise InputError(f"points: batch dims {points.shape[:-2]} do not match the frames' "
                       f"{p.shape[:-2]}")
  return _lk_jit(p, q, points, int(window), int(levels), int(iterations),
                 float(min_eigen_threshold), float(epsilon), shared, grid_shape)


def _flow_stats_core(flow: jax.Array, weight: jax.Array) -> FlowStatistics:
  # flow [..., T, M, 2] (points flattened), weight [..., T, M] in {0, 1}
  mag = jnp.sqrt(jnp.sum(flow * flow, axis=-1))
  mag = jnp.where(weight > 0, mag, 0)  # lost points (NaN flow allowed) do not count

  def wmean(x, wt, axis):
    s = jnp.sum(wt, axis=axis)
    # NaN guard: no valid point on the reduced axes -> 0 instead of 0/0.
    return jnp.sum(x * wt, axis=axis) / jnp.where(s == 0, 1, s)

  mean = wmean(mag, weight, (-2, -1))
  std = jnp.sqrt(wmean((mag - mean[..., None, None]) ** 2, weight, (-2, -1)))
  frame_mean = wmean(mag, weight, -1)                                   # [..., T]
  frame_std = jnp.sqrt(wmean((mag - frame_mean[..., None]) ** 2, weight, -1))
  frame_w = (jnp.sum(weight, axis=-1) > 0).astype(mag.dtype)
  spatial = wmean(frame_std, frame_w, -1)
  t_mean = wmean(frame_mean, frame_w, -1)
  temporal = jnp.sqrt(wmean((frame_mean - t_mean[..., None]) ** 2, frame_w, -1))
  pair_w = weight[..., 1:, :] * weight[..., :-1, :]
  change = wmean(jnp.abs(mag[..., 1:, :] - mag[..., :-1, :]), pair_w, (-2, -1))
  return FlowStatistics(mean, std, spatial, temporal, change)


_flow_stats_jit = jax.jit(_flow_stats_core)


def flow_statistics(flow: ArrayLike, status: ArrayLike | None = None, *,
                    dense: bool | None = None) -> FlowStatistics:
  """Statistics of flow magnitudes over a sequence of ``T`` flow fields.

  Args:
    flow: ``[..., T, N, 2]`` (sparse) or ``[..., T, H, W, 2]`` (dense/grid) flows between
      consecutive frames (e.g. ``lucas_kanade(frames[:-1], frames[1:], ...)``).
    status: optional bool mask of the same shape without the last axis; points with
      False (lost tracks) are left out of every statistic.
    dense: whether ``flow`` has two spatial axes; by default 5+-D arrays are dense and
      3-D/4-D ones are sparse (``[T, N, 2]`` / ``[B, T, N, 2]``).

  Returns:
    :class:`FlowStatistics`, each ``[...]``: magnitude mean and std over all frames and
    points; spatial variation (mean over frames of the std of |flow| across points);
    temporal variation (std over frames of the per-frame mean |flow|); temporal change
    (mean absolute change of a point's |flow| between consecutive flows, 0 for T = 1).
  """
  if not isinstance(flow, jax.core.Tracer):
    arr = np.asarray(flow)
    if arr.dtype.kind != "f":
      raise InputError(f"flow: expected a float array, got dtype {arr.dtype}")
    if status is None:
      check_finite(arr, "flow")
    flow = jnp.asarray(arr)
  if flow.ndim < 3 or flow.shape[-1] != 2:
    raise InputError(f"flow: expected [..., T, N, 2] or [..., T, H, W, 2], got {flow.shape}")
  if dense is None:
    dense = flow.ndim >= 5
  if dense:
    if flow.ndim < 4:
      raise InputError(f"flow: dense flow needs [..., T, H, W, 2], got {flow.shape}")
    flow = flow.reshape(flow.shape[:-3] + (-1, 2))
  if status is None:
    weight = jnp.ones(flow.shape[:-1], flow.dtype)
  else:
    st = jnp.asarray(status)
    if dense:
      st = st.reshape(st.shape[:-2] + (-1,))
    if st.shape != flow.shape[:-1]:
      raise InputError(f"status: shape {st.shape} does not match the flow's points "
                       f"{flow.shape[:-1]}")
    weight = st.astype(flow.dtype)
  return _flow_stats_jit(flow, weight)
