"""Local binary patterns (Ojala et al. 2002) with scikit-image's exact semantics.

``local_binary_pattern`` reproduces ``skimage.feature.local_binary_pattern`` (methods
``default``, ``ror``, ``uniform``, ``nri_uniform``, ``var``): neighbour ``i`` of ``P`` sits at
``(r - R sin(2 pi i / P), c + R cos(2 pi i / P))`` with both offsets rounded to 5 decimals,
is sampled bilinearly with skimage's floor/ceil weights, and reads 0 outside the image
(skimage's ``mode='C', cval=0``); bit ``i`` is ``sample - centre >= 0``.

Speed: the sampling geometry only depends on ``(P, R)`` and the image size, so it is worked
out once in NumPy (float64, the same arithmetic as skimage's Cython loop) and becomes a
fixed set of shifted slices of a zero-padded image with constant bilinear weights: no
gathers, one fused elementwise loop under XLA.

Numerics: the sample-minus-centre difference is interpolated (as ``a + w (b - a)``) from
the corner-minus-centre differences (exact for integer-valued images), so a plateau (all
corners equal to the centre) gives exactly 0 -> bit 1, and a ring of equal samples has
variance exactly 0 (NaN for ``var``), as skimage gives for integer images. Codes differ from
skimage's float64 loop only at near-ties closer than the compute dtype's rounding (random
uint8/float images: identical in our tests) and on plateaus of non-dyadic float values
(e.g. a constant 7.7), where skimage's bits are its own float64 rounding noise
(``(1-w)*v + w*v != v``) and ours are the clean 1.

``lbp_histogram`` turns codes into normalised per-cell histograms on a spatial grid, and
``color_lbp_features`` is the colour-texture descriptor of Boulkenafet et al. (2016): LBP
histograms of each channel of HSV and YCbCr, concatenated (SPEC F3).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import InputError, checked_array
from palmjax.kernels.color import rgb_to_hsv, rgb_to_ycbcr

METHODS = ("default", "ror", "uniform", "nri_uniform", "var")


def lbp_n_bins(P: int, method: str = "uniform") -> int:
  """Number of distinct codes of ``local_binary_pattern(..., P, R, method)`` (histogram length)."""
  if method in ("default", "ror"):
    return 2 ** P
  if method == "uniform":
    return P + 2
  if method == "nri_uniform":
    return P * (P - 1) + 3
  raise InputError(f"method: {method!r} has no integer codes to count (one of "
                   "'default', 'ror', 'uniform', 'nri_uniform')")


@functools.lru_cache(maxsize=64)
def _geometry(P: int, R: float, h: int, w: int):
  """Per-neighbour corner offsets and bilinear weights, as skimage computes them.

  Returns ``(pad, taps)`` where each tap is ``(r0, r1, c0, c1, dr[h], dc[w])``: the
  floor/ceil row and column offsets from the centre and the float64 fractional parts
  (which vary in the last bits with the row/column index, exactly as in skimage).
  """
  k = np.arange(P, dtype=np.double)
  rp = np.round(-R * np.sin(2 * np.pi * k / P), 5)
  cp = np.round(R * np.cos(2 * np.pi * k / P), 5)
  rows, cols = np.arange(h, dtype=np.double), np.arange(w, dtype=np.double)
  taps = []
  for i in range(P):
    rr, cc = rows + rp[i], cols + cp[i]
    r0, r1 = np.floor(rr), np.ceil(rr)
    c0, c1 = np.floor(cc), np.ceil(cc)
    off = [np.unique(a - b) for a, b in ((r0, rows), (r1, rows), (c0, cols), (c1, cols))]
    assert all(o.size == 1 for o in off), "offsets must not depend on the position"
    taps.append((int(off[0][0]), int(off[1][0]), int(off[2][0]), int(off[3][0]),
                 rr - r0, cc - c0))
  pad = int(np.ceil(R)) + 1
  return pad, taps


def _neighbour_differences(x: jax.Array, P: int, R: float) -> list[jax.Array]:
  """``sample_i - centre`` for each of the ``P`` neighbours of every pixel of ``[..., H, W]``."""
  h, w = x.shape[-2:]
  pad, taps = _geometry(P, R, h, w)
  xp = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)])

  def window(dy, dx):
    return xp[..., pad + dy:pad + dy + h, pad + dx:pad + dx + w]

  diffs = []
  for r0, r1, c0, c1, dr, dc in taps:
    dr = jnp.asarray(dr[:, None], x.dtype)
    dc = jnp.asarray(dc[None, :], x.dtype)

    def row(dy):
      # corner - centre first (exact for integer-valued images), then a + w (b - a): equal
      # corners give their value exactly, so plateaus give 0 and flat rings equal samples
      left = window(dy, c0) - x
      if c1 == c0:
        return left
      return left + dc * ((window(dy, c1) - x) - left)

    top = row(r0)
    diffs.append(top if r1 == r0 else top + dr * (row(r1) - top))
  return diffs


def _lbp_core(x: jax.Array, P: int, R: float, method: str) -> jax.Array:
  d = _neighbour_differences(x, P, R)
  bits = [di >= 0 for di in d]
  if method == "var":
    # Biased (ddof=0) variance of the P samples, taken about the centre for accuracy; the
    # centre offset cancels. skimage returns NaN where the variance is exactly 0.
    mean = sum(d) / P
    var = sum((di - mean) ** 2 for di in d) / P
    return jnp.where(var == 0, jnp.nan, var)
  if method in ("default", "ror"):
    code = sum(b.astype(jnp.uint32) << k for k, b in enumerate(bits))
    if method == "ror":
      mask = jnp.uint32((1 << P) - 1)
      best = code
      for k in range(1, P):
        rot = ((code >> k) | (code << (P - k))) & mask
        best = jnp.minimum(best, rot)
      code = best
    return code.astype(jnp.int32)
  ints = [b.astype(jnp.int32) for b in bits]
  n_ones = sum(ints)
  changes = sum((bits[k] != bits[k + 1]).astype(jnp.int32) for k in range(P - 1))
  if method == "uniform":
    return jnp.where(changes <= 2, n_ones, P + 1)
  # nri_uniform: uniform patterns indexed by (number of ones, rotation), as skimage.
  first_one = jnp.full(x.shape, -1, jnp.int32)
  first_zero = jnp.full(x.shape, -1, jnp.int32)
  for k in reversed(range(P)):
    first_one = jnp.where(bits[k], k, first_one)
    first_zero = jnp.where(bits[k], first_zero, k)
  rot = jnp.where(first_one == 0, n_ones - first_zero, P - first_one)
  code = jnp.where(n_ones == 0, 0, jnp.where(n_ones == P, P * (P - 1) + 1,
                                             1 + (n_ones - 1) * P + rot))
  return jnp.where(changes <= 2, code, P * (P - 1) + 2)


_lbp_jit = jax.jit(_lbp_core, static_argnums=(1, 2, 3))


def _compute_dtype(dtype) -> jnp.dtype:
  if jnp.issubdtype(dtype, jnp.floating) and dtype != jnp.float16 and dtype != jnp.bfloat16:
    return jnp.dtype(dtype)
  return jnp.dtype(jnp.float32)


def _check_params(P, R, method) -> tuple[int, float, str]:
  if isinstance(P, bool) or not isinstance(P, (int, np.integer)) or P < 1:
    raise InputError(f"P: the number of neighbours must be an integer >= 1, got {P!r}")
  if isinstance(R, bool) or not isinstance(R, (int, float, np.integer, np.floating)) or \
      not np.isfinite(R) or R <= 0:
    raise InputError(f"R: the radius must be a finite number > 0, got {R!r}")
  if method not in METHODS:
    raise InputError(f"method: must be one of {METHODS}, got {method!r}")
  if method in ("default", "ror") and P > 31:
    raise InputError(f"P: method {method!r} codes need P <= 31 bits, got {P}")
  return int(P), float(R), method


def _as_image(image: ArrayLike, name: str = "image") -> jax.Array:
  x = checked_array(image, name)
  if x.ndim < 2:
    raise InputError(f"{name}: expected a 2-D image [..., H, W], got shape {x.shape}")
  if x.shape[-1] < 1 or x.shape[-2] < 1:
    raise InputError(f"{name}: image is empty, shape {x.shape}")
  return x.astype(_compute_dtype(x.dtype))


def local_binary_pattern(image: ArrayLike, P: int = 8, R: float = 1.0,
                         method: str = "default") -> jax.Array:
  """Local binary pattern codes of a grey image, as ``skimage.feature.local_binary_pattern``.

  Args:
    image: ``[..., H, W]`` grey image(s); any numeric dtype, raw values (no rescaling).
    P: number of circularly symmetric neighbours (static).
    R: radius of the circle in pixels (static).
    method: ``default`` (2^P codes), ``ror`` (rotation-invariant minimum), ``uniform``
      (rotation-invariant uniform, P + 2 codes), ``nri_uniform`` (non-rotation-invariant
      uniform, P (P - 1) + 3 codes) or ``var`` (local variance of the P samples; NaN where
      it is exactly 0, as skimage).

  Returns:
    ``[..., H, W]`` int32 codes (float variance for ``var``).
  """
  P, R, method = _check_params(P, R, method)
  return _lbp_jit(_as_image(image), P, R, method)


@functools.lru_cache(maxsize=64)
def _cells(n: int, g: int) -> np.ndarray:
  edges = (np.arange(g + 1) * n) // g
  return np.searchsorted(edges, np.arange(n), side="right") - 1


def _histogram_core(codes: jax.Array, n_bins: int, grid: tuple[int, int]) -> jax.Array:
  h, w = codes.shape[-2:]
  gy, gx = grid
  batch = codes.shape[:-2]
  if jnp.issubdtype(codes.dtype, jnp.floating):
    # NaN guard: NaN codes (var on flat patches) are dropped, like any out-of-range code.
    codes = jnp.where(jnp.isnan(codes), -1, codes)
  c = codes.astype(jnp.int32).reshape((-1, h * w))
  cell = jnp.asarray((_cells(h, gy)[:, None] * gx + _cells(w, gx)[None, :]).reshape(-1))
  n_seg = gy * gx * n_bins
  valid = (c >= 0) & (c < n_bins)
  seg = jnp.where(valid, cell * n_bins + c, n_seg)  # out-of-range codes go to a dump bin
  nb = c.shape[0]
  flat = (jnp.arange(nb, dtype=jnp.int32)[:, None] * (n_seg + 1) + seg).reshape(-1)
  counts = jnp.zeros(nb * (n_seg + 1), jnp.float32).at[flat].add(1.0)
  hist = counts.reshape(nb, n_seg + 1)[:, :n_seg].reshape(nb, gy, gx, n_bins)
  total = jnp.sum(hist, axis=-1, keepdims=True)
  # NaN guard: a cell without any in-range code gets an all-zero histogram, not 0/0.
  hist = hist / jnp.where(total == 0, 1, total)
  return hist.reshape(batch + (gy, gx, n_bins))


_histogram_jit = jax.jit(_histogram_core, static_argnums=(1, 2))


def _check_grid(grid, h: int, w: int) -> tuple[int, int]:
  try:
    gy, gx = (int(g) for g in grid)
  except (TypeError, ValueError):
    raise InputError(f"grid: expected two integers (gy, gx), got {grid!r}") from None
  if gy < 1 or gx < 1 or gy > h or gx > w:
    raise InputError(f"grid: ({gy}, {gx}) cells must be >= 1 and fit a {h}x{w} image")
  return gy, gx


def lbp_histogram(codes: ArrayLike, n_bins: int, *, grid: Sequence[int] = (1, 1)
                  ) -> jax.Array:
  """Normalised histograms of LBP codes on a ``gy x gx`` grid of cells.

  Args:
    codes: ``[..., H, W]`` integer codes (e.g. from :func:`lbp`); codes outside
      ``[0, n_bins)`` (and NaN) are not counted.
    n_bins: number of bins (see :func:`lbp_n_bins`).
    grid: ``(gy, gx)`` cells; cell boundaries at ``floor(i * H / gy)``.

  Returns:
    ``[..., gy, gx, n_bins]`` float32, each cell summing to 1 (0 for a cell without codes).
  """
  x = codes if isinstance(codes, jax.core.Tracer) else jnp.asarray(np.asarray(codes))
  if x.ndim < 2:
    raise InputError(f"codes: expected [..., H, W], got shape {x.shape}")
  if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
    raise InputError(f"n_bins: must be an integer >= 1, got {n_bins!r}")
  gy, gx = _check_grid(grid, *x.shape[-2:])
  return _histogram_jit(x, int(n_bins), (gy, gx))


def _color_lbp_core(rgb: jax.Array, P: int, R: float, method: str, grid: tuple[int, int],
                    spaces: tuple[str, ...]) -> jax.Array:
  chans = []
  for space in spaces:
    if space == "hsv":
      chans.append(rgb_to_hsv(rgb))
    elif space == "ycbcr":
      chans.append(rgb_to_ycbcr(rgb) / 255.0)
    else:  # rgb
      chans.append(rgb)
  x = jnp.concatenate(chans, axis=-1)
  x = jnp.round(jnp.clip(x, 0, 1) * 255)  # 8-bit levels, as the MATLAB/uint8 pipelines
  x = jnp.moveaxis(x, -1, -3)  # [..., C, H, W]
  hist = _histogram_core(_lbp_core(x, P, R, method), lbp_n_bins(P, method), grid)
  return hist.reshape(hist.shape[:-4] + (-1,))


_color_lbp_jit = jax.jit(_color_lbp_core, static_argnums=(1, 2, 3, 4, 5))


def color_lbp_features(image: ArrayLike, *, P: int = 8, R: float = 1.0,
                       method: str = "uniform", grid: Sequence[int] = (1, 1),
                       spaces: Sequence[str] = ("hsv", "ycbcr")) -> jax.Array:
  """Colour-texture descriptor: LBP histograms of every channel of HSV and YCbCr.

  Following Boulkenafet, Komulainen & Hadid (2016, "Face spoofing detection using
  colour texture analysis"): the RGB face crop is converted to each colour space in
  ``spaces`` (``hsv``, ``ycbcr``, ``rgb``), every channel is quantised to 8-bit levels,
  coded with ``local_binary_pattern(P, R, method)`` and histogrammed per grid cell; all
  histograms are concatenated.

  Args:
    image: ``[..., H, W, 3]`` RGB in [0, 1] (integer images are scaled by their range).

  Returns:
    ``[..., 3 * len(spaces) * gy * gx * n_bins]`` float32 (channel-major, then cells).
  """
  P, R, method = _check_params(P, R, method)
  if method == "var":
    raise InputError("method: 'var' gives real values, not codes to histogram")
  spaces = tuple(spaces)
  if not spaces or any(s not in ("hsv", "ycbcr", "rgb") for s in spaces):
    raise InputError(f"spaces: each must be 'hsv', 'ycbcr' or 'rgb', got {spaces!r}")
  x = checked_array(image, "image")
  if x.ndim < 3 or x.shape[-1] != 3:
    raise InputError(f"image: expected RGB [..., H, W, 3], got shape {x.shape}")
  if jnp.issubdtype(x.dtype, jnp.integer):
    x = x.astype(jnp.float32) / jnp.iinfo(x.dtype).max
  x = x.astype(_compute_dtype(x.dtype))
  grid = _check_grid(grid, *x.shape[-3:-1])
  return _color_lbp_jit(x, P, R, method, grid, spaces)
