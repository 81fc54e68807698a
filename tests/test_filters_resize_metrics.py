"""Filters, bicubic resize and PSNR/SSIM against SciPy, Pillow and scikit-image."""

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from palmjax.kernels import bicubic_degrade, bicubic_resize, gaussian_blur, modcrop
from palmjax.metrics import crop_border, psnr, ssim

SHAPES = st.sampled_from([(16, 16), (23, 31), (40, 29)])


def _img(seed, shape, c=1):
  return np.random.default_rng(seed).random(shape + (c,)).astype(np.float32)


@given(seed=st.integers(0, 2**31), shape=SHAPES,
       sigma=st.sampled_from([0.6, 1.0, 1.7, 2.5]),
       mode=st.sampled_from(["reflect", "mirror", "nearest", "wrap", "zero"]))
@pytest.mark.slow
def test_gaussian_blur_matches_scipy(seed, shape, sigma, mode):
  x = _img(seed, shape, 2)
  ref = ndi.gaussian_filter(x, sigma=(sigma, sigma, 0),
                            mode="constant" if mode == "zero" else mode)
  np.testing.assert_allclose(np.asarray(gaussian_blur(x, sigma, mode=mode)), ref, atol=2e-6)


@given(seed=st.integers(0, 2**31), shape=SHAPES, factor=st.sampled_from([2, 3, 4]),
       up=st.booleans())
def test_bicubic_resize_matches_pillow(seed, shape, factor, up):
  x = _img(seed, shape)[..., 0]
  h, w = shape
  out = (h * factor, w * factor) if up else (max(h // factor, 1), max(w // factor, 1))
  ref = np.asarray(Image.fromarray(x, mode="F").resize(out[::-1], Image.BICUBIC))
  got = np.asarray(bicubic_resize(x[..., None], *out))[..., 0]
  # Pillow and jax differ only in float rounding and Pillow's f32 accumulation.
  np.testing.assert_allclose(got, ref, atol=2e-4)


def test_bicubic_degrade_protocol():
  x = _img(0, (30, 24))
  low, up = bicubic_degrade(x, 3)
  assert low.shape == (10, 8, 1) and up.shape == x.shape
  assert float(up.min()) >= 0 and float(up.max()) <= 1
  assert modcrop(np.zeros((31, 25, 1)), 3).shape == (30, 24, 1)
  with pytest.raises(ValueError, match="not divisible"):
    bicubic_degrade(_img(0, (31, 24)), 3)


@given(seed=st.integers(0, 2**31), shape=SHAPES, noise=st.floats(0.001, 0.3),
       channels=st.sampled_from([1, 3]))
@pytest.mark.slow
def test_psnr_ssim_match_skimage(seed, shape, noise, channels):
  rng = np.random.default_rng(seed)
  a = rng.random(shape + (channels,)).astype(np.float32)
  b = np.clip(a + noise * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
  np.testing.assert_allclose(float(psnr(a, b)), peak_signal_noise_ratio(a, b, data_range=1),
                             rtol=1e-4)
  kw = dict(channel_axis=-1, data_range=1.0)
  ref_g = structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, **kw)
  ref_u = structural_similarity(a, b, **kw)
  np.testing.assert_allclose(float(ssim(a, b)), ref_g, atol=2e-5)
  np.testing.assert_allclose(float(ssim(a, b, gaussian=False)), ref_u, atol=2e-5)


def test_metrics_batched_jit_vmap_and_edge_cases():
  rng = np.random.default_rng(3)
  a = rng.random((4, 20, 20, 1)).astype(np.float32)
  b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
  batched = np.asarray(ssim(a, b))
  per = np.array([float(ssim(a[i], b[i])) for i in range(4)])
  np.testing.assert_allclose(batched, per, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(jax.jit(psnr)(a, b)),
                             np.asarray(jax.vmap(psnr)(a, b)), rtol=1e-6)
  assert float(ssim(a[0], a[0])) == pytest.approx(1.0, abs=1e-6)
  assert np.isinf(float(psnr(a[0], a[0])))
  assert crop_border(a, 3).shape == (4, 14, 14, 1)
  with pytest.raises(ValueError, match="too small"):
    crop_border(a, 10)
  with pytest.raises(ValueError, match="smaller than the SSIM window"):
    ssim(a[:, :8, :8], b[:, :8, :8])
  with pytest.raises(ValueError, match="shapes differ"):
    psnr(a, b[:, :10])
  assert jnp.asarray(psnr(a, b)).shape == (4,)
