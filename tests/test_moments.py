"""Colour moments against NumPy (mean, population std) and scipy.stats.skew."""

import warnings

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from palmjax.errors import InputError
from palmjax.kernels import color_moment_features, color_moments


@st.composite
def images(draw):
  shape = draw(st.sampled_from([(6, 5, 3), (2, 4, 7, 3)]))
  dtype = draw(st.sampled_from([np.float32, np.uint8]))
  if dtype == np.uint8:
    x = draw(hnp.arrays(dtype, shape))
  else:
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=32, allow_subnormal=False)))
  if draw(st.booleans()):  # a constant channel
    x[..., draw(st.integers(0, 2))] = x.flat[0]
  return x


def _reference(x, axis=(-3, -2)):
  xf = x.astype(np.float64)
  with np.errstate(all="ignore"), warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    skew = scipy.stats.skew(xf, axis=axis, bias=True)
  return xf.mean(axis=axis), xf.std(axis=axis), skew


@given(images())
def test_matches_numpy_scipy(x):
  m = color_moments(x)
  mean, std, skew = _reference(x)
  np.testing.assert_allclose(np.asarray(m.mean), mean, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(np.asarray(m.std), std, rtol=1e-4, atol=1e-5 * (1 + mean.max()))
  out = np.asarray(m.skewness)
  finite = np.isfinite(skew) & (std > 1e-3 * (1 + np.abs(mean)))
  np.testing.assert_allclose(out[finite], skew[finite], rtol=1e-4, atol=1e-4)
  const = np.ptp(x.astype(np.float64), axis=(-3, -2)) == 0
  assert np.all(out[const] == 0) and np.all(np.isfinite(out))


def test_known_values_and_axis():
  x = np.array([0., 0., 0., 1.], np.float32)  # mean .25, std .4330, skew 1.1547
  m = color_moments(x, axis=0)
  np.testing.assert_allclose([m.mean, m.std, m.skewness], [.25, np.sqrt(3) / 4,
                                                           2 / np.sqrt(3)], rtol=1e-6)
  y = np.random.default_rng(0).gamma(2.0, size=(5, 40, 2)).astype(np.float32)
  m = color_moments(y, axis=1)
  np.testing.assert_allclose(np.asarray(m.skewness), scipy.stats.skew(y, axis=1), rtol=1e-4)


def test_features_jit_vmap_batch():
  x = np.random.default_rng(1).random((3, 8, 9, 3), dtype=np.float32)
  mean, std, skew = _reference(x)
  ref = np.concatenate([mean, std, skew], -1)
  np.testing.assert_allclose(np.asarray(color_moment_features(x)), ref, rtol=1e-4,
                             atol=1e-6)
  for f in (jax.jit(color_moment_features), jax.vmap(color_moment_features)):
    np.testing.assert_allclose(np.asarray(f(jnp.asarray(x))), ref, rtol=1e-4, atol=1e-6)
  m = jax.vmap(lambda a: color_moments(a))(jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(m.skewness), skew, rtol=1e-4, atol=1e-6)


def test_float64_under_x64():
  with jax.enable_x64(True):
    x = np.random.default_rng(2).random((7, 6, 3))
    m = color_moments(x)
    assert m.std.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(m.skewness),
                               scipy.stats.skew(x, axis=(0, 1)), rtol=1e-10)


@pytest.mark.parametrize("bad, match", [
    (np.array([[[np.nan, 0, 0]]], np.float32), "NaN"),
    (np.array([["a", "b", "c"]]), "not numeric"),
    (np.zeros((0, 3), np.float32), "non-empty"),
])
def test_bad_input_raises(bad, match):
  with pytest.raises(InputError, match=match):
    color_moments(bad, axis=0)


def test_bad_axis_raises():
  with pytest.raises(InputError, match="axis"):
    color_moments(np.zeros((4, 4, 3), np.float32), axis=(0, 5))
  with pytest.raises(InputError, match="repeated"):
    color_moments(np.zeros((4, 4, 3), np.float32), axis=(0, -3))
