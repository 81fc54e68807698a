"""Linear filters on images ``[N, H, W, C]``: Gaussian windows and separable correlation.

Shared by SSIM, image pyramids (optical flow), detector blur (simulators) and sharpness
measures, so that every Gaussian in palmjax is the same Gaussian.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=jnp.float32) -> jax.Array:
  """Normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)``.

  Same taps as ``scipy.ndimage.gaussian_filter`` (and skimage's SSIM with
  ``truncate=3.5``).
  """
  if not sigma > 0:
    raise ValueError(f"sigma must be > 0, got {sigma}")
  radius = int(truncate * sigma + 0.5)
  t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
  w = jnp.exp(-0.5 * (t / sigma) ** 2)
  return (w / jnp.sum(w)).astype(dtype)


_PAD_MODES = {"valid": None, "zero": "constant", "reflect": "symmetric", "mirror": "reflect",
              "nearest": "edge", "wrap": "wrap"}


def separable_filter(image: ArrayLike, kernel_h: ArrayLike, kernel_w: ArrayLike | None = None,
                     *, mode: str = "reflect") -> jax.Array:
  """Correlates each channel of ``[..., H, W, C]`` with ``kernel_h`` (rows) and ``kernel_w``.

  ``mode`` names the border handling with scipy.ndimage's words: ``reflect`` (d c b a | a b
  c d), ``mirror`` (d c b | a b c d), ``nearest``, ``wrap``, ``zero``; or ``valid`` to
  return only the interior (no padding; output shrinks by the kernel size - 1).
  """
  if mode not in _PAD_MODES:
    raise ValueError(f"mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
  x = jnp.asarray(image)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.float32)
  if x.ndim < 3:
    raise ValueError(f"expected [..., H, W, C], got shape {x.shape}")
  kh = jnp.asarray(kernel_h, x.dtype)
  kw = kh if kernel_w is None else jnp.asarray(kernel_w, x.dtype)
  batch = x.shape[:-3]
  h, w, c = x.shape[-3:]
  x = x.reshape((-1, h, w, c))
  if _PAD_MODES[mode] is not None:
    ph, pw = (kh.shape[0] - 1) // 2, (kw.shape[0] - 1) // 2
    ph2, pw2 = kh.shape[0] - 1 - ph, kw.shape[0] - 1 - pw
    x = jnp.pad(x, ((0, 0), (ph, ph2), (pw, pw2), (0, 0)), mode=_PAD_MODES[mode])
  n, hp, wp, _ = x.shape
  y = jnp.moveaxis(x, -1, 1).reshape(n * c, 1, hp, wp)
  dn = ("NCHW", "OIHW", "NCHW")
  y = jax.lax.conv_general_dilated(y, kh.reshape(1, 1, -1, 1), (1, 1), "VALID",
                                   dimension_numbers=dn, precision="highest")
  y = jax.lax.conv_general_dilated(y, kw.reshape(1, 1, 1, -1), (1, 1), "VALID",
                                   dimension_numbers=dn, precision="highest")
  oh, ow = y.shape[-2:]
  return jnp.moveaxis(y.reshape(n, c, oh, ow), 1, -1).reshape(batch + (oh, ow, c))


def gaussian_blur(image: ArrayLike, sigma: float, *, truncate: float = 4.0,
                  mode: str = "reflect") -> jax.Array:
  """Gaussian blur of ``[..., H, W, C]`` as ``scipy.ndimage.gaussian_filter`` per channel."""
  return separable_filter(image, gaussian_kernel1d(sigma, truncate), mode=mode)
