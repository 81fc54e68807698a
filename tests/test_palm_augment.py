"""Re-capture pseudo-spoofs (palmjax.palm.augment) against a SciPy/NumPy reference."""

import dataclasses

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given

from palmjax.errors import InputError
from palmjax.palm import augment


def test_recapture_one_case_matches_the_scipy_reference():
  """The fast tier's check of this module: one fixed case of the property below."""
  _check_recapture(seed=0, n=2, shape=(16, 24))


@pytest.mark.slow
@given(seed=st.integers(0, 2**31), n=st.integers(1, 4),
       shape=st.sampled_from([(8, 8), (16, 24), (21, 13)]))
def test_recapture_matches_the_scipy_reference(seed, n, shape):
  _check_recapture(seed, n, shape)


def _check_recapture(seed, n, shape):
  rng = np.random.default_rng(seed)
  x = rng.random((n,) + shape + (1,)).astype(np.float32)
  params = {"gamma": rng.uniform(0.6, 1.65, n).astype(np.float32),
            "sigma_index": rng.integers(0, len(augment.SIGMAS), n).astype(np.int32),
            "noise_std": rng.uniform(0.005, 0.04, n).astype(np.float32)}
  noise = rng.standard_normal(x.shape).astype(np.float32)
  got = np.asarray(augment.recapture(jnp.asarray(x), {k: jnp.asarray(v) for k, v in
                                                     params.items()}, jnp.asarray(noise)))
  for i in range(n):
    s = augment.SIGMAS[params["sigma_index"][i]]
    ref = ndi.gaussian_filter(x[i, ..., 0].astype(np.float64) ** params["gamma"][i], s,
                              mode="reflect", truncate=3.0)
    ref = np.clip(ref + params["noise_std"][i] * noise[i, ..., 0], 0, 1)
    # 8-bit levels: equal up to a rounding tie flipped by float32 (at most one level).
    lev_got, lev_ref = np.round(got[i, ..., 0] * 255), np.round(ref * 255)
    assert np.max(np.abs(lev_got - lev_ref)) <= 1
    assert np.mean(lev_got == lev_ref) >= 0.97


@pytest.mark.slow
def test_pseudo_spoofs_are_keyed_per_capture_and_valid():
  x = np.random.default_rng(0).random((7, 16, 16, 1)).astype(np.float32)
  key = jax.random.key(3)
  a = augment.pseudo_spoofs(key, x, chunk=3)
  b = augment.pseudo_spoofs(key, x, chunk=512)
  np.testing.assert_array_equal(a, b)  # the chunk does not change the copies
  np.testing.assert_array_equal(augment.pseudo_spoofs(key, x[:4]), a[:4])
  assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
  np.testing.assert_allclose(a * 255, np.round(a * 255), atol=1e-4)  # 8-bit levels
  assert np.mean(np.abs(a - x)) > 0.01  # a different image, not a copy
  assert not np.array_equal(augment.pseudo_spoofs(jax.random.key(4), x), a)
  with pytest.raises(InputError, match="channels"):
    augment.pseudo_spoofs(key, np.zeros((2, 8, 8, 3), np.float32))
  with pytest.raises(InputError, match="NaN|finite"):
    augment.pseudo_spoofs(key, np.full((2, 8, 8, 1), np.nan, np.float32))


@pytest.mark.slow
def test_training_with_pseudo_spoofs_adds_one_spoof_per_live_capture(tmp_path):
  from palmjax.palm import train as palm_train
  cfg = palm_train.PalmTrainConfig(input="bicubic", image_size=32, scale=2, n_train=16,
                                   n_val=8, num_steps=2, eval_every=2, save_every=2,
                                   batch_size=4, features=(4,), hidden=4, warmup_steps=1)
  splits = palm_train.make_splits(cfg, progress=False)
  n_live = int(splits["train"]["label"].sum())
  _, plain = palm_train.train(cfg, tmp_path / "a", splits=splits, progress=False,
                              log=lambda s: None)
  _, aug = palm_train.train(dataclasses.replace(cfg, pseudo_spoofs=True), tmp_path / "b",
                            splits=splits, progress=False, log=lambda s: None)
  assert plain["n_train_samples"] == 16 and aug["n_train_samples"] == 16 + n_live
