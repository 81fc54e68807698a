"""Colour-space conversions: ITU-R BT.601 luma/YCbCr and HSV (skimage semantics).

Inputs are float RGB in [0, 1] with channels last; any leading batch dimensions are kept.
Integer inputs are converted with their dtype's full range (uint8 / 255, uint16 / 65535).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from palmjax.errors import InputError

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
    raise InputError(f"expected RGB with 3 channels last, got shape {x.shape}")


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


def rgb_to_hsv(image: ArrayLike) -> jax.Array:
  """RGB in [0, 1] -> HSV in [0, 1]^3, as ``skimage.color.rgb2hsv``.

  Hue is 0 where the pixel is grey (max == min), saturation is 0 where it is black; where
  two channels tie for the maximum, blue wins over green over red (skimage's order).
  """
  x = _as_float(image)
  _check_rgb(x)
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  v = jnp.max(x, axis=-1)
  delta = v - jnp.min(x, axis=-1)
  grey = delta == 0
  # NaN guard: grey pixels (delta == 0) would divide 0/0; their hue and saturation are 0.
  safe_delta = jnp.where(grey, 1, delta)
  safe_v = jnp.where(v == 0, 1, v)  # v == 0 implies delta == 0 (black): s = 0 anyway
  s = jnp.where(grey, 0, delta / safe_v)
  h = jnp.where(r == v, (g - b) / safe_delta, 0)
  h = jnp.where(g == v, 2.0 + (b - r) / safe_delta, h)
  h = jnp.where(b == v, 4.0 + (r - g) / safe_delta, h)
  h = jnp.where(grey, 0, jnp.mod(h / 6.0, 1.0))
  return jnp.stack([h, s, v], axis=-1).astype(x.dtype)


def hsv_to_rgb(image: ArrayLike) -> jax.Array:
  """HSV in [0, 1]^3 -> RGB in [0, 1], as ``skimage.color.hsv2rgb``."""
  x = _as_float(image)
  _check_rgb(x)
  h, s, v = x[..., 0], x[..., 1], x[..., 2]
  hi = jnp.floor(h * 6)
  f = h * 6 - hi
  p = v * (1 - s)
  q = v * (1 - f * s)
  t = v * (1 - (1 - f) * s)
  sector = jnp.mod(hi.astype(jnp.int32), 6)
  table = ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))
  out = jnp.stack(table[0], axis=-1)
  for k in range(1, 6):
    out = jnp.where((sector == k)[..., None], jnp.stack(table[k], axis=-1), out)
  return out
