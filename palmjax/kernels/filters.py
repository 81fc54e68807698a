"""Linear filters on images ``[N, H, W, C]``: Gaussian windows and separable correlation.

Shared by SSIM, image pyramids (optical flow), detector blur (simulators) and sharpness
measures, so that every Gaussian in palmjax is the same Gaussian.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=jnp.float32) -> jax.Array:
  """Normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)``.

  Same taps as ``scipy.ndimage.gaussian_filter`` (and skimage's SSIM with
  ``truncate=3.5``). Computed with NumPy, so the taps stay concrete under ``jax.jit`` and
  :func:`separable_filter` can unroll them.
  """
  return jnp.asarray(_gaussian_taps(sigma, truncate), dtype)


def _gaussian_taps(sigma: float, truncate: float) -> np.ndarray:
  if not sigma > 0:
    raise ValueError(f"sigma must be > 0, got {sigma}")
  radius = int(truncate * sigma + 0.5)
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  w = np.exp(-0.5 * (t / sigma) ** 2)
  return w / w.sum()


_PAD_MODES = {"valid": None, "zero": "constant", "reflect": "symmetric", "mirror": "reflect",
              "nearest": "edge", "wrap": "wrap"}


def correlate1d(x: ArrayLike, taps: ArrayLike, axis: int, *, mode: str = "reflect",
                step: int = 1) -> jax.Array:
  """Correlates ``x`` along ``axis`` with the concrete 1-D kernel ``taps``.

  Border handling uses scipy.ndimage's words (see :func:`separable_filter`). Written as a
  weighted sum of shifted slices: XLA fuses it into one loop, which on CPU is about 20x
  faster than ``conv_general_dilated`` with one channel, and it is exact for integer-valued
  taps. ``step`` > 1 keeps every ``step``-th output (decimation, as in ``pyrDown``).
  """
  if mode not in _PAD_MODES:
    raise ValueError(f"mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
  w = np.asarray(taps, np.float64).reshape(-1)
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  k = len(w)
  if _PAD_MODES[mode] is not None:
    lo = (k - 1) // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (lo, k - 1 - lo)
    x = jnp.pad(x, pad, mode=_PAD_MODES[mode])
  n_out = (x.shape[axis] - k) // step + 1
  if n_out < 1:
    raise ValueError(f"axis {axis} of length {x.shape[axis]} is shorter than the kernel {k}")
  out = None
  for i, t in enumerate(w):
    if t == 0:
      continue
    term = jax.lax.slice_in_dim(x, i, i + step * (n_out - 1) + 1, step, axis) * \
        jnp.asarray(t, x.dtype)
    out = term if out is None else out + term
  if out is None:  # an all-zero kernel
    shape = list(x.shape)
    shape[axis] = n_out
    out = jnp.zeros(shape, x.dtype)
  return out


def separable_filter(image: ArrayLike, kernel_h: ArrayLike, kernel_w: ArrayLike | None = None,
                     *, mode: str = "reflect") -> jax.Array:
  """Correlates each channel of ``[..., H, W, C]`` with ``kernel_h`` (rows) and ``kernel_w``.

  ``mode`` names the border handling with scipy.ndimage's words: ``reflect`` (d c b a | a b
  c d), ``mirror`` (d c b | a b c d), ``nearest``, ``wrap``, ``zero``; or ``valid`` to
  return only the interior (no padding; output shrinks by the kernel size - 1). The kernels
  must be concrete (NumPy arrays, lists, or JAX arrays computed outside ``jit``).
  """
  x = jnp.asarray(image)
  if x.ndim < 3:
    raise ValueError(f"expected [..., H, W, C], got shape {x.shape}")
  kh = _concrete(kernel_h, "kernel_h")
  kw = kh if kernel_w is None else _concrete(kernel_w, "kernel_w")
  return correlate1d(correlate1d(x, kh, -3, mode=mode), kw, -2, mode=mode)


def _concrete(k: ArrayLike, name: str) -> np.ndarray:
  if isinstance(k, jax.core.Tracer):
    raise ValueError(f"{name}: filter taps must be concrete (not traced inside jit)")
  return np.asarray(k, np.float64)


def gaussian_blur(image: ArrayLike, sigma: float, *, truncate: float = 4.0,
                  mode: str = "reflect") -> jax.Array:
  """Gaussian blur of ``[..., H, W, C]`` as ``scipy.ndimage.gaussian_filter`` per channel."""
  return separable_filter(image, _gaussian_taps(sigma, truncate), mode=mode)
