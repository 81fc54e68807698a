"""Colour moments (Stricker & Orengo 1995): per-channel mean, standard deviation, skewness.

The colour cue of the face terminal (SPEC F2) describes each channel of an HSV (or RGB)
face crop by its first three moments. Standard deviation is the population one
(``ddof=0``), skewness is the biased Fisher-Pearson coefficient ``m3 / m2**1.5`` of
``scipy.stats.skew`` (``bias=True``); a constant channel has skewness 0 (SciPy says NaN).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import InputError, checked_array


class ColorMoments(NamedTuple):
  """Per-channel moments; each field has the input's shape without the reduced axes."""
  mean: jax.Array
  std: jax.Array
  skewness: jax.Array


def _normalise_axes(axis: int | Sequence[int], ndim: int) -> tuple[int, ...]:
  axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
  if not axes:
    raise InputError("axis: at least one axis to reduce is needed")
  out = []
  for a in axes:
    if not -ndim <= int(a) < ndim:
      raise InputError(f"axis: {a} is out of range for an array with {ndim} dimension(s)")
    out.append(int(a) % ndim)
  if len(set(out)) != len(out):
    raise InputError(f"axis: repeated axis in {axis}")
  return tuple(sorted(out))


def _color_moments(x: jax.Array, axes: tuple[int, ...]) -> ColorMoments:
  # Shift by one sample first: a constant channel then gives exact zeros, and the sums
  # lose less precision when the mean is large against the spread.
  shift = x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))]
  xs = x - shift
  mean_s = jnp.mean(xs, axis=axes, keepdims=True)
  d = xs - mean_s
  m2 = jnp.mean(d * d, axis=axes)
  m3 = jnp.mean(d * d * d, axis=axes)
  mean = jnp.squeeze(mean_s + shift, axis=axes)
  # A channel is constant when its variance is below the resolution of its mean (the
  # test of scipy.stats.skew, which returns NaN there).
  res = float(jnp.finfo(x.dtype).resolution)
  flat = m2 <= (res * jnp.abs(mean)) ** 2
  # NaN guard: m2 == 0 (constant channel) would give 0/0; its skewness is defined as 0.
  safe_m2 = jnp.where(flat, 1, m2)
  skew = jnp.where(flat, 0, m3 / (safe_m2 * jnp.sqrt(safe_m2)))
  return ColorMoments(mean, jnp.sqrt(m2), skew)


_color_moments_jit = jax.jit(_color_moments, static_argnums=1)


def color_moments(image: ArrayLike, *, axis: int | Sequence[int] = (-3, -2)) -> ColorMoments:
  """Mean, population standard deviation and skewness of ``image`` along ``axis``.

  Args:
    image: e.g. ``[..., H, W, C]`` (HSV or RGB, any leading batch dims). Integer images are
      taken as their raw values (cast to float32).
    axis: the axes to reduce; the default ``(-3, -2)`` gives one triple per channel.

  Returns:
    :class:`ColorMoments` ``(mean, std, skewness)``, each ``[..., C]`` for the default axis.
    Matches ``np.mean``, ``np.std`` and ``scipy.stats.skew`` (0 where SciPy gives NaN for a
    constant channel).
  """
  x = checked_array(image, "image")
  if x.ndim < 1 or x.size == 0:
    raise InputError(f"image: expected a non-empty array, got shape {x.shape}")
  if not jnp.issubdtype(x.dtype, jnp.floating) or x.dtype == jnp.float16:
    x = x.astype(jnp.float32)
  axes = _normalise_axes(axis, x.ndim)
  return _color_moments_jit(x, axes)


def color_moment_features(image: ArrayLike, *, axis: int | Sequence[int] = (-3, -2)
                          ) -> jax.Array:
  """``[mean_c..., std_c..., skew_c...]`` concatenated on the last axis (e.g. ``[..., 3C]``)."""
  m = color_moments(image, axis=axis)
  return jnp.concatenate([m.mean, m.std, m.skewness], axis=-1)
