"""Errors raised on bad input.

Every check in palmjax raises :class:`InputError` (a ``ValueError``) with a message that
names the offending file or argument and the problem, before any array reaches XLA.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class InputError(ValueError):
  """Bad input: a corrupt/empty image, a wrong dtype, shape or range, NaN, ..."""


def _where(name: str | None) -> str:
  return f"{name}: " if name else ""


def check_finite(x: Any, name: str | None = None) -> np.ndarray:
  """Returns ``x`` as a NumPy array; raises if it holds NaN or infinity."""
  arr = np.asarray(x)
  if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    raise InputError(f"{_where(name)}array holds {bad} NaN/inf value(s)")
  return arr


def check_image_array(
    x: Any,
    name: str | None = None,
    *,
    channels: tuple[int, ...] = (1, 3),
    min_size: int = 1,
    batched: bool = False,
) -> np.ndarray:
  """Validates an image array ``[..., H, W, C]`` (or ``[H, W]`` when not batched).

  Checks rank, channel count, minimum spatial size, a numeric dtype and finiteness.
  Returns the array (as NumPy) unchanged.
  """
  arr = np.asarray(x)
  if arr.dtype.kind not in "biuf":
    raise InputError(f"{_where(name)}image dtype {arr.dtype} is not numeric")
  want = 4 if batched else 3
  if not batched and arr.ndim == 2:
    arr = arr[..., None]
  if arr.ndim != want:
    shape = "[N, H, W, C]" if batched else "[H, W] or [H, W, C]"
    raise InputError(f"{_where(name)}expected an image of shape {shape}, got {arr.shape}")
  if arr.shape[-1] not in channels:
    raise InputError(
        f"{_where(name)}image has {arr.shape[-1]} channels; expected one of {channels}")
  h, w = arr.shape[-3], arr.shape[-2]
  if h < min_size or w < min_size:
    raise InputError(
        f"{_where(name)}image is {h}x{w} pixels; at least {min_size}x{min_size} is needed")
  check_finite(arr, name)
  return arr


def checked_array(x: Any, name: str = "array"):
  """``x`` as a JAX array, checked when its values are known.

  Concrete inputs must have a numeric dtype and hold no NaN/inf; under ``jax.jit`` (a
  tracer) the values are unknown and ``x`` passes through unchecked, so public kernels can
  call this first and stay jittable.
  """
  import jax
  import jax.numpy as jnp
  if isinstance(x, jax.core.Tracer):
    return x
  arr = np.asarray(x)
  if arr.dtype.kind not in "biuf":
    raise InputError(f"{_where(name)}dtype {arr.dtype} is not numeric")
  check_finite(arr, name)
  return jnp.asarray(arr)
