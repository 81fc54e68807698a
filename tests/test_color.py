"""HSV/YCbCr conversions against scikit-image (greys, saturated colours, uint8, batches)."""

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from skimage import color as skcolor

from palmjax.kernels import (hsv_to_rgb, rgb_to_hsv, rgb_to_luma, rgb_to_y, rgb_to_ycbcr,
                             ycbcr_to_rgb)

_LEVELS = st.sampled_from([0.0, 1.0, 0.5, 0.25, 1 / 3, 0.999])


@st.composite
def rgb_images(draw, shape=(4, 5, 3)):
  """Random RGB in [0, 1] with forced greys (r = g = b), ties and saturated values."""
  x = draw(hnp.arrays(np.float32, shape, elements=st.one_of(
      st.floats(0, 1, width=32, allow_subnormal=False), _LEVELS)))
  grey = draw(hnp.arrays(np.bool_, shape[:-1]))
  x[grey] = x[grey][:, :1]
  tie = draw(hnp.arrays(np.bool_, shape[:-1]))
  x[tie, 2] = x[tie, 0]  # red == blue ties
  return x


def _hue_close(a, b, atol):
  d = np.abs(a - b)
  return np.minimum(d, 1 - d) <= atol


@given(rgb_images())
def test_rgb_to_hsv_matches_skimage(x):
  ref = skcolor.rgb2hsv(x)
  out = np.asarray(rgb_to_hsv(x))
  assert out.shape == ref.shape and out.dtype == np.float32
  assert np.all(_hue_close(out[..., 0], ref[..., 0], 1e-5))
  np.testing.assert_allclose(out[..., 1:], ref[..., 1:], atol=1e-5)


def test_rgb_to_hsv_greys_and_primaries():
  x = np.array([[0, 0, 0], [1, 1, 1], [.4, .4, .4], [1, 0, 0], [0, 1, 0], [0, 0, 1],
                [1, 1, 0], [0, 1, 1], [1, 0, 1], [1, .2, 1]], np.float32)
  np.testing.assert_allclose(np.asarray(rgb_to_hsv(x)), skcolor.rgb2hsv(x), atol=1e-6)


@given(hnp.arrays(np.uint8, (3, 6, 3)))
def test_rgb_to_hsv_uint8(x):
  np.testing.assert_allclose(np.asarray(rgb_to_hsv(x)), skcolor.rgb2hsv(x), atol=1e-5)


@given(hnp.arrays(np.float32, (4, 5, 3), elements=st.floats(0, 1, width=32, exclude_max=True, allow_subnormal=False)))
def test_hsv_to_rgb_matches_skimage(hsv):
  np.testing.assert_allclose(np.asarray(hsv_to_rgb(hsv)), skcolor.hsv2rgb(hsv), atol=1e-5)


@given(rgb_images())
def test_hsv_round_trip(x):
  np.testing.assert_allclose(np.asarray(hsv_to_rgb(rgb_to_hsv(x))), x, atol=1e-5)


@given(rgb_images())
def test_ycbcr_matches_skimage(x):
  ref = skcolor.rgb2ycbcr(x)
  np.testing.assert_allclose(np.asarray(rgb_to_ycbcr(x)), ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(np.asarray(ycbcr_to_rgb(ref)), skcolor.ycbcr2rgb(ref),
                             atol=1e-5)
  np.testing.assert_allclose(np.asarray(rgb_to_y(x))[..., 0], ref[..., 0] / 255, atol=1e-6)
  luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
  np.testing.assert_allclose(np.asarray(rgb_to_luma(x))[..., 0], luma, atol=1e-6)


def test_jit_vmap_and_batch():
  x = np.random.default_rng(0).random((2, 3, 4, 5, 3), dtype=np.float32)
  ref = skcolor.rgb2hsv(x.reshape(-1, 5, 3)).reshape(x.shape)
  for f in (jax.jit(rgb_to_hsv), jax.vmap(rgb_to_hsv), jax.vmap(jax.vmap(rgb_to_hsv))):
    out = np.asarray(f(jnp.asarray(x)))
    assert np.all(_hue_close(out[..., 0], ref[..., 0], 1e-5))
    np.testing.assert_allclose(out[..., 1:], ref[..., 1:], atol=1e-5)
  back = jax.jit(jax.vmap(hsv_to_rgb))(jnp.asarray(ref, jnp.float32))
  np.testing.assert_allclose(np.asarray(back), x, atol=1e-5)


def test_float64_kept_under_x64():
  with jax.enable_x64(True):
    x = np.random.default_rng(1).random((3, 4, 3))
    out = rgb_to_hsv(x)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out), skcolor.rgb2hsv(x), atol=1e-12)


@pytest.mark.parametrize("fn", [rgb_to_hsv, hsv_to_rgb, rgb_to_ycbcr])
def test_wrong_channels_raise(fn):
  with pytest.raises(ValueError, match="3 channels"):
    fn(np.zeros((4, 4, 4), np.float32))
