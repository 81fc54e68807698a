"""PSNR and SSIM for batches of images ``[..., H, W, C]``; one value per image.

SSIM follows Wang et al. (2004) exactly as ``skimage.metrics.structural_similarity``: with
``gaussian=True`` (the default, the SR literature's setting) an 11x11 Gaussian window of
sigma 1.5 and population covariances; with ``gaussian=False`` a uniform ``win_size`` window
and sample covariances (skimage's own default). Statistics are taken over the valid region
only (skimage filters with reflection and then crops ``(win-1)/2`` pixels; same numbers).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.kernels.filters import gaussian_kernel1d, separable_filter


def crop_border(image: ArrayLike, border: int) -> jax.Array:
  """Removes ``border`` pixels from each side of ``[..., H, W, C]``."""
  x = jnp.asarray(image)
  if border <= 0:
    return x
  if x.shape[-3] <= 2 * border or x.shape[-2] <= 2 * border:
    raise ValueError(f"image {x.shape[-3]}x{x.shape[-2]} is too small to crop {border} px")
  return x[..., border:-border, border:-border, :]


def psnr(a: ArrayLike, b: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image (reduces H, W, C). Equal images give inf."""
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  if a.shape != b.shape:
    raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
  mse = jnp.mean(jnp.square(a - b), axis=(-3, -2, -1))
  return 10.0 * jnp.log10(data_range**2 / mse)


def ssim(a: ArrayLike, b: ArrayLike, *, data_range: float = 1.0, gaussian: bool = True,
         sigma: float = 1.5, win_size: int = 7, k1: float = 0.01,
         k2: float = 0.03) -> jax.Array:
  """Mean structural similarity per image of ``[..., H, W, C]`` (channels averaged)."""
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  if a.shape != b.shape or a.ndim < 3:
    raise ValueError(f"need two images of equal shape [..., H, W, C]: {a.shape} vs {b.shape}")
  batch = a.shape[:-3]
  a = a.reshape((-1,) + a.shape[-3:])
  b = b.reshape((-1,) + b.shape[-3:])
  if gaussian:
    w = gaussian_kernel1d(sigma, truncate=3.5)
    cov_norm = 1.0
  else:
    if win_size % 2 == 0 or win_size < 3:
      raise ValueError(f"win_size must be odd and >= 3, got {win_size}")
    w = np.full((win_size,), 1.0 / win_size)
    npix = win_size**2
    cov_norm = npix / (npix - 1.0)
  if a.shape[1] < w.shape[0] or a.shape[2] < w.shape[0]:
    raise ValueError(f"images {a.shape[1]}x{a.shape[2]} are smaller than the SSIM window "
                     f"{w.shape[0]}")
  filt = lambda x: separable_filter(x, w, mode="valid")
  ux, uy = filt(a), filt(b)
  vx = cov_norm * (filt(a * a) - ux * ux)
  vy = cov_norm * (filt(b * b) - uy * uy)
  vxy = cov_norm * (filt(a * b) - ux * uy)
  c1 = (k1 * data_range) ** 2
  c2 = (k2 * data_range) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
  return jnp.mean(s, axis=(-3, -2, -1)).reshape(batch)
