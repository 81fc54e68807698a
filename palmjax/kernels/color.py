"""Colour-space conversions: ITU-R BT.601 luma/YCbCr (HSV lives here too).

Inputs are float RGB in [0, 1] with channels last; any leading batch dimensions are kept.
Integer inputs are converted with their dtype's full range (uint8 / 255, uint16 / 65535).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# BT.601 "studio swing" RGB -> YCbCr, as in MATLAB's rgb2ycbcr and skimage.color.rgb2ycbcr:
# for RGB in [0, 1], Y in [16, 235] and Cb, Cr in [16, 240] (on the 0..255 scale).
_YCBCR_FROM_RGB = jnp.array([[65.481, 128.553, 24.966],
                             [-37.797, -74.203, 112.0],
                             [112.0, -93.786, -18.214]], dtype=jnp.float32)
_YCBCR_OFFSET = jnp.array([16.0, 128.0, 128.0], dtype=jnp.float32)
# BT.601 full-range luma weights (PIL "L", skimage.color.rgb2gray uses BT.709 instead).
_LUMA = jnp.array([0.299, 0.587, 0.114], dtype=jnp.float32)


def _as_float(image: ArrayLike) -> jax.Array:
  x = jnp.asarray(image)
  if jnp.issubdtype(x.dtype, jnp.integer):
    return x.astype(jnp.float32) / jnp.iinfo(x.dtype).max
  if not jnp.issubdtype(x.dtype, jnp.floating):
    return x.astype(jnp.float32)
  return x


def _check_rgb(x: jax.Array) -> None:
  if x.ndim < 1 or x.shape[-1] != 3:
    raise ValueError(f"expected RGB with 3 channels last, got shape {x.shape}")


def rgb_to_ycbcr(image: ArrayLike) -> jax.Array:
  """RGB in [0, 1] -> YCbCr on the 0..255 scale (Y 16..235), as ``skimage.color.rgb2ycbcr``."""
  x = _as_float(image)
  _check_rgb(x)
  m = _YCBCR_FROM_RGB.astype(x.dtype)
  return jnp.einsum("...c,dc->...d", x, m, precision="highest") + _YCBCR_OFFSET.astype(x.dtype)


def ycbcr_to_rgb(image: ArrayLike) -> jax.Array:
  """Inverse of :func:`rgb_to_ycbcr` (not clipped), as ``skimage.color.ycbcr2rgb``."""
  x = _as_float(image)
  _check_rgb(x)
  inv = jnp.linalg.inv(_YCBCR_FROM_RGB).astype(x.dtype)
  return jnp.einsum("...c,dc->...d", x - _YCBCR_OFFSET.astype(x.dtype), inv,
                    precision="highest")


def rgb_to_y(image: ArrayLike) -> jax.Array:
  """BT.601 studio-swing luma of RGB in [0, 1], rescaled to [0, 1]: ``Y / 255``.

  Shape ``[..., 3] -> [..., 1]``. This is the Y channel the SR literature evaluates on
  (values in [16/255, 235/255]).
  """
  return rgb_to_ycbcr(image)[..., :1] / 255.0


def rgb_to_luma(image: ArrayLike) -> jax.Array:
  """Full-range BT.601 luma (``0.299 R + 0.587 G + 0.114 B``), ``[..., 3] -> [..., 1]``."""
  x = _as_float(image)
  _check_rgb(x)
  return jnp.einsum("...c,c->...", x, _LUMA.astype(x.dtype), precision="highest")[..., None]
