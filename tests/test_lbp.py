"""LBP codes, histograms and colour-texture features against scikit-image."""

import warnings

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from skimage import color as skcolor
from skimage.feature import local_binary_pattern as sk_local_binary_pattern

from palmjax.errors import InputError
from palmjax.kernels import (color_lbp_features, lbp_histogram, lbp_n_bins,
                             local_binary_pattern)

METHODS = ("default", "ror", "uniform", "nri_uniform", "var")


def _sk(image, P, R, method):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # skimage warns about float images
    return sk_local_binary_pattern(image, P, R, method)


def _agreement(out, ref, method):
  out = np.asarray(out)
  if method == "var":
    scale = np.nanmax(np.abs(ref)) if np.any(np.isfinite(ref)) else 1.0
    ok = np.isclose(out, ref, rtol=1e-4, atol=1e-6 * scale) | (np.isnan(out) & np.isnan(ref))
  else:
    ok = out == ref
  return ok.mean()


@pytest.mark.parametrize("P", [4, 8, 16, 24])
@pytest.mark.parametrize("R", [1, 1.5, 2, 3])
def test_all_methods_match_skimage(P, R):
  rng = np.random.default_rng(P * 10 + int(2 * R))
  u8 = rng.integers(0, 256, (23, 26)).astype(np.uint8)
  f32 = rng.random((23, 26), dtype=np.float32)
  # both dtypes share one compiled kernel (float32); one batch computes both
  batch = np.stack([u8.astype(np.float32), f32])
  for method in METHODS:
    out = local_binary_pattern(batch, P, R, method)
    for k, img in enumerate((u8, f32)):
      assert _agreement(out[k], _sk(img, P, R, method), method) >= 0.999, (method, k)
  assert out.dtype == jnp.float32  # var
  assert local_binary_pattern(u8, P, R, "uniform").dtype == jnp.int32


@st.composite
def grey_images(draw):
  shape = draw(st.sampled_from([(9, 11), (16, 16)]))
  kind = draw(st.sampled_from(["uint8", "float", "constant", "steps", "binary"]))
  if kind == "uint8":
    return draw(hnp.arrays(np.uint8, shape))
  if kind == "float":
    # Values below ~1e-30 times the interpolation weights underflow to subnormals, which
    # XLA flushes to zero and skimage (float64) does not: they become 0 here.
    tiny_to_zero = st.floats(0, 1, width=32, allow_subnormal=False).map(
        lambda v: v if v >= 1e-30 else 0.0)
    return draw(hnp.arrays(np.float32, shape, elements=tiny_to_zero))
  if kind == "constant":
    return np.full(shape, draw(st.integers(0, 255)), np.uint8)
  if kind == "binary":  # plateaus and edges everywhere: many exact ties
    return (draw(hnp.arrays(np.bool_, shape)) * 255).astype(np.uint8)
  x = np.zeros(shape, np.uint8)
  x[:, shape[1] // 2:] = draw(st.integers(1, 255))
  return x


@given(grey_images(), st.sampled_from([(8, 1), (8, 1.5), (16, 2)]),
       st.sampled_from(METHODS))
def test_hypothesis_images(image, PR, method):
  P, R = PR
  ref = _sk(image, P, R, method)
  out = local_binary_pattern(image, P, R, method)
  frac = _agreement(out, ref, method)
  if image.dtype == np.uint8:
    assert frac == 1.0  # integer images, plateaus included: identical codes
  else:
    assert frac >= 0.99  # at most one near-tie pixel on these small images


def test_jit_vmap_and_leading_batch():
  rng = np.random.default_rng(3)
  x = rng.integers(0, 256, (2, 3, 12, 14)).astype(np.uint8)
  ref = np.stack([_sk(a, 8, 1, "nri_uniform") for a in x.reshape(-1, 12, 14)])
  ref = ref.reshape(x.shape)
  np.testing.assert_array_equal(np.asarray(local_binary_pattern(x, 8, 1, "nri_uniform")), ref)
  f = lambda a: local_binary_pattern(a, 8, 1, "nri_uniform")
  np.testing.assert_array_equal(np.asarray(jax.jit(f)(jnp.asarray(x))), ref)
  np.testing.assert_array_equal(np.asarray(jax.vmap(jax.vmap(f))(jnp.asarray(x))), ref)


def test_float64_under_x64():
  with jax.enable_x64(True):
    x = np.random.default_rng(4).random((15, 13))
    out = local_binary_pattern(x, 8, 1.5, "var")
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out), _sk(x, 8, 1.5, "var"), rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(local_binary_pattern(x, 16, 2, "ror")),
                                  _sk(x, 16, 2, "ror"))


def _hist_reference(codes, n_bins, gy, gx):
  h, w = codes.shape
  ey, ex = (np.arange(gy + 1) * h) // gy, (np.arange(gx + 1) * w) // gx
  out = np.zeros((gy, gx, n_bins))
  for i in range(gy):
    for j in range(gx):
      cell = codes[ey[i]:ey[i + 1], ex[j]:ex[j + 1]].ravel()
      cnt = np.bincount(cell[(cell >= 0) & (cell < n_bins)].astype(int), minlength=n_bins)
      out[i, j] = cnt / max(cnt.sum(), 1)
  return out


@given(hnp.arrays(np.int32, (2, 13, 10), elements=st.integers(-2, 11)),
       st.sampled_from([(1, 1), (2, 3), (3, 2)]))
def test_histogram_matches_numpy(codes, grid):
  out = np.asarray(lbp_histogram(codes, 10, grid=grid))
  for b in range(2):
    np.testing.assert_allclose(out[b], _hist_reference(codes[b], 10, *grid), atol=1e-6)
  f = jax.jit(jax.vmap(lambda c: lbp_histogram(c, 10, grid=grid)))
  np.testing.assert_allclose(np.asarray(f(jnp.asarray(codes))), out, atol=1e-7)


def test_color_lbp_features_match_skimage_pipeline():
  rgb = np.random.default_rng(5).random((2, 16, 18, 3), dtype=np.float32)
  P, R, grid = 8, 1, (2, 2)
  nb = lbp_n_bins(P, "uniform")
  out = np.asarray(color_lbp_features(rgb, P=P, R=R, grid=grid))
  assert out.shape == (2, 6 * 4 * nb)
  for b in range(2):
    chans = np.concatenate([skcolor.rgb2hsv(rgb[b]), skcolor.rgb2ycbcr(rgb[b]) / 255], -1)
    q = np.round(np.clip(chans, 0, 1) * 255).astype(np.uint8)
    ref = np.concatenate([_hist_reference(_sk(q[..., c], P, R, "uniform"), nb, *grid).ravel()
                          for c in range(6)])
    # rounding to 8-bit levels can flip a value lying on .5 between the two pipelines
    assert np.abs(out[b] - ref).sum() < 0.05
  f = jax.vmap(lambda a: color_lbp_features(a, P=P, R=R, grid=grid))
  np.testing.assert_allclose(np.asarray(f(jnp.asarray(rgb))), out, atol=1e-7)


def test_n_bins():
  assert [lbp_n_bins(8, m) for m in METHODS[:4]] == [256, 256, 10, 59]
  with pytest.raises(InputError):
    lbp_n_bins(8, "var")


@pytest.mark.parametrize("kwargs, match", [
    (dict(P=0), "P"), (dict(P=2.5), "P"), (dict(R=0), "R"), (dict(R=-1.0), "R"),
    (dict(R=float("nan")), "R"), (dict(method="bogus"), "method"),
    (dict(P=32, method="default"), "31"),
])
def test_bad_parameters_raise(kwargs, match):
  args = dict(P=8, R=1.0, method="default") | kwargs
  with pytest.raises(InputError, match=match):
    local_binary_pattern(np.zeros((8, 8), np.uint8), **args)


@pytest.mark.parametrize("image, match", [
    (np.zeros(8, np.uint8), "2-D"),
    (np.array([[0.0, np.nan], [1.0, 2.0]], np.float32), "NaN"),
    (np.array([["a", "b"], ["c", "d"]]), "numeric"),
    (np.zeros((0, 4), np.uint8), "empty"),
])
def test_bad_images_raise(image, match):
  with pytest.raises(InputError, match=match):
    local_binary_pattern(image, 8, 1)


def test_bad_histogram_and_feature_args_raise():
  with pytest.raises(InputError, match="grid"):
    lbp_histogram(np.zeros((4, 4), np.int32), 10, grid=(5, 1))
  with pytest.raises(InputError, match="n_bins"):
    lbp_histogram(np.zeros((4, 4), np.int32), 0)
  with pytest.raises(InputError, match="RGB"):
    color_lbp_features(np.zeros((4, 4), np.float32))
  with pytest.raises(InputError, match="spaces"):
    color_lbp_features(np.zeros((4, 4, 3), np.float32), spaces=("lab",))
