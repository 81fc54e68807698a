"""Per-image quantiles by selection against NumPy's (nan)quantile."""

import warnings

import hypothesis.extra.numpy as hnp
import jax
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from palmjax.kernels import image_quantiles

_BIG = float(np.float32(1e30))  # interpolating between +-1e30 stays finite in float32
_QS = (0.0, 0.02, 0.33, 0.5, 0.98, 1.0)
_quantiles = jax.jit(image_quantiles, static_argnums=1)


@st.composite
def batches(draw):
  # A few shapes, so that the jitted function compiles a few times only.
  n, h, w = draw(st.sampled_from([(1, 1, 1), (1, 3, 7), (3, 12, 5), (2, 8, 8)]))
  # Any finite float32 (negative, -0.0, huge, subnormal) and many ties.
  elements = draw(st.sampled_from([
      st.floats(-_BIG, _BIG, width=32),
      st.sampled_from([-1.5, -0.0, 0.0, 0.25, 1.0]),
      st.floats(0, 1, width=32)]))
  x = draw(hnp.arrays(np.float32, (n, h, w), elements=elements))
  valid = draw(hnp.arrays(np.bool_, (n, h, w)))
  return x, valid


def _reference(x, valid=None):
  xf = x.astype(np.float64)
  if valid is not None:
    xf = np.where(valid, xf, np.nan)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # an image with no valid pixel
    return np.nanquantile(xf, _QS, axis=(1, 2))


def _close(got, ref, x):
  # Exact order statistics; only the interpolation between two of them rounds in float32
  # (its position q (n - 1) too), so the error is relative to the image's magnitude.
  scale = np.abs(x.astype(np.float64)).reshape(len(x), -1).max(axis=1)[None] + 1e-30
  np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
  err = np.nan_to_num(np.abs(got - ref) / scale)
  assert err.max() <= 1e-5, (got, ref)


@settings(deadline=None, max_examples=150)
@given(batches())
def test_matches_numpy_quantile(batch):
  x, valid = batch
  _close(np.asarray(_quantiles(x, _QS)), _reference(x), x)
  _close(np.asarray(_quantiles(x, _QS, valid)), _reference(x, valid), x)


def test_order_statistics_are_exact_values_of_the_image():
  # At q (n - 1) integral no interpolation happens: the result is a pixel, bit for bit.
  x = np.random.default_rng(0).normal(size=(2, 5, 5)).astype(np.float32) * 1e3
  got = np.asarray(_quantiles(x, (0.0, 0.25, 0.5, 1.0)))
  ref = np.sort(x.reshape(2, -1), axis=1)[:, [0, 6, 12, 24]].T
  np.testing.assert_array_equal(got, ref)


def test_integer_images_and_no_valid_pixel():
  x = np.arange(2 * 16, dtype=np.uint8).reshape(2, 4, 4)
  valid = np.ones_like(x, bool)
  valid[1] = False
  got = np.asarray(_quantiles(x, (0.5,), valid))
  assert got[0, 0] == np.median(x[0]) and np.isnan(got[0, 1])
