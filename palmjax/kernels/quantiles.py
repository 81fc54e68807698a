"""Per-image quantiles by selection, not sorting, optionally over a mask.

``jnp.quantile`` sorts; XLA's sort on a CPU costs about half a millisecond for one
64 x 64 image, more than the rest of the palm quality gate together. A quantile needs only
two order statistics (the ranks around ``q (n - 1)``), and an order statistic of float32
values can be found exactly without sorting: float32 bit patterns, mapped to unsigned
integers that sort as the floats do, are bisected bit by bit (32 rounds, each a compare and a
count over the image). :func:`image_quantiles` does that for every level at once and
interpolates as NumPy's default (``method="linear"``) does, so it equals
``np.nanquantile(np.where(valid, x, nan), q, axis=...)`` up to float32 rounding of the
interpolation.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def _ordered_bits(x: jax.Array) -> jax.Array:
  """float32 -> uint32 whose unsigned order is the float order (-0.0 just below +0.0)."""
  b = jax.lax.bitcast_convert_type(x, jnp.uint32)
  sign = (b >> 31) == 1
  return jnp.where(sign, ~b, b | jnp.uint32(0x80000000))


def _from_ordered_bits(u: jax.Array) -> jax.Array:
  sign = (u >> 31) == 0
  return jax.lax.bitcast_convert_type(jnp.where(sign, ~u, u & jnp.uint32(0x7FFFFFFF)),
                                      jnp.float32)


def _select(keys: jax.Array, rank: jax.Array) -> jax.Array:
  """The ``rank``-th smallest (0-based) of ``keys [N, P]`` (uint32) per row, for every
  ``rank [Q, N]``: the least ``t`` with ``count(keys <= t) > rank``, found bit by bit."""
  def step(i, t):
    bit = jnp.uint32(1) << (jnp.uint32(31) - i.astype(jnp.uint32))
    trial = t | bit                                     # [Q, N]: try leaving this bit 0
    below = jnp.sum(keys[None] <= (trial - 1)[..., None], axis=-1, dtype=jnp.int32)
    return jnp.where(below > rank, t, trial)            # enough below: the bit stays 0
  return jax.lax.fori_loop(0, 32, step, jnp.zeros(rank.shape, jnp.uint32))


def image_quantiles(images: ArrayLike, qs: Sequence[float],
                    valid: ArrayLike | None = None) -> jax.Array:
  """Quantiles ``qs`` of each image of a batch ``[N, ...]`` over all its other axes.

  ``valid`` (bool, the shape of ``images``): only those pixels count (``nanquantile`` of
  the image with the others set to NaN); an image with no valid pixel gives NaN. Returns
  float32 ``[len(qs), N]``. Jittable and vmappable; the input must be free of NaN (mask
  such pixels with ``valid``).
  """
  x = jnp.asarray(images, jnp.float32)
  n_img = x.shape[0]
  flat = x.reshape(n_img, -1)
  keys = _ordered_bits(flat)
  if valid is None:
    count = jnp.full((n_img,), flat.shape[1], jnp.int32)
  else:
    ok = jnp.asarray(valid, bool).reshape(n_img, -1)
    keys = jnp.where(ok, keys, jnp.uint32(0xFFFFFFFF))  # invalid pixels rank last
    count = jnp.sum(ok, axis=1, dtype=jnp.int32)
  q = jnp.asarray(qs, jnp.float32)[:, None]                           # [Q, 1]
  pos = q * (jnp.maximum(count, 1) - 1).astype(jnp.float32)[None, :]  # [Q, N]
  low = jnp.floor(pos)
  hi_w = pos - low
  low_i = low.astype(jnp.int32)
  high_i = jnp.minimum(low_i + 1, jnp.maximum(count - 1, 0)[None, :])
  k_low = _select(keys, low_i)                                        # [Q, N]
  # The next rank: the same value when it repeats, else the next larger key (two passes,
  # not another 32).
  repeats = jnp.sum(keys[None] <= k_low[..., None], axis=-1, dtype=jnp.int32) > high_i
  above = jnp.min(jnp.where(keys[None] > k_low[..., None], keys[None],
                            jnp.uint32(0xFFFFFFFF)), axis=-1)
  k_high = jnp.where(repeats, k_low, above)
  v_low, v_high = _from_ordered_bits(k_low), _from_ordered_bits(k_high)
  out = v_low + (v_high - v_low) * hi_w
  return jnp.where(count[None, :] > 0, out, jnp.nan)
