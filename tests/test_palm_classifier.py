"""Palm liveness classifier (P4): forensic stem against SciPy, pooling, config checks."""

import dataclasses

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given

from palmjax.models import PalmClassifier, PalmClassifierConfig
from palmjax.models.palm_classifier import forensic_stem


@given(seed=st.integers(0, 2**31), n=st.integers(1, 3),
       shape=st.sampled_from([(16, 16), (24, 40), (33, 17)]),
       sigmas=st.lists(st.sampled_from([0.7, 1.0, 1.5, 2.5]), min_size=0, max_size=3),
       gain=st.sampled_from([1.0, 8.0]))
@pytest.mark.slow
def test_forensic_stem_matches_scipy_residuals(seed, n, shape, sigmas, gain):
  x = np.random.default_rng(seed).random((n,) + shape + (1,)).astype(np.float32)
  got = np.asarray(forensic_stem(jnp.asarray(x), sigmas, gain))
  assert got.shape == (n,) + shape + (1 + len(sigmas),)
  np.testing.assert_allclose(got[..., 0], 2.0 * x[..., 0] - 1.0, atol=1e-6)
  for i, s in enumerate(sigmas):
    blur = ndi.gaussian_filter(x[..., 0], sigma=(0, s, s), mode="reflect", truncate=3.0)
    np.testing.assert_allclose(got[..., 1 + i], gain * (x[..., 0] - blur), atol=2e-5 * gain)


@pytest.mark.slow
def test_stem_and_std_pooling_shape_the_parameters():
  cfg = PalmClassifierConfig(features=(4, 8), hidden=6, input_size=16,
                             highpass_sigmas=(1.0, 2.0), pooling="mean_max_std")
  x = jnp.zeros((2, 16, 16, 1))
  params = PalmClassifier(cfg).init(jax.random.key(0), x)["params"]
  assert params["conv0_0"]["kernel"].shape == (3, 3, 3, 4)  # image + 2 residual channels
  assert params["hidden"]["kernel"].shape == (3 * 8, 6)  # mean, max and std of 8 maps
  plain = PalmClassifier(PalmClassifierConfig(features=(4, 8), hidden=6, input_size=16))
  plain_params = plain.init(jax.random.key(0), x)["params"]
  assert plain_params["conv0_0"]["kernel"].shape == (3, 3, 1, 4)
  assert plain_params["hidden"]["kernel"].shape == (2 * 8, 6)


def test_std_pooling_is_the_spread_of_the_pooled_maps():
  # One identity-like conv (+1 bias), 2x2 max pooling, and only the std feature wired to the
  # live logit: the logit is then exactly the std of the pooled map.
  cfg = PalmClassifierConfig(features=(1,), hidden=1, input_size=8, pooling="mean_max_std")
  model = PalmClassifier(cfg)
  params = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
  k = np.zeros((3, 3, 1, 1), np.float32)
  k[1, 1] = 1.0
  params = jax.tree_util.tree_map(jnp.asarray, {
      "conv0_0": {"kernel": k, "bias": np.ones((1,), np.float32)},
      # Only the std feature (index 2) reaches the logits.
      "hidden": {"kernel": np.array([[0.0], [0.0], [1.0]], np.float32),
                 "bias": np.zeros((1,), np.float32)},
      "logits": {"kernel": np.array([[0.0, 1.0]], np.float32),
                 "bias": np.zeros((2,), np.float32)}})
  flat = np.full((1, 8, 8, 1), 0.5, np.float32)
  checker = np.indices((8, 8)).sum(0) % 2 * 1.0
  fine = (0.25 + 0.5 * checker)[None, :, :, None].astype(np.float32)
  logit = lambda x: np.asarray(model.apply({"params": params}, jnp.asarray(x)))[0, 1]
  assert logit(flat) == pytest.approx(0.0, abs=1e-6)
  # A pixel checkerboard is flat after the 2x2 max pool (std 0); 2x2 blocks survive it.
  blocks = (np.indices((8, 8)) // 2).sum(0) % 2 * 1.0
  coarse = (0.25 + 0.5 * blocks)[None, :, :, None].astype(np.float32)
  # Centred input (2x - 1) gives maps of -0.5 / 0.5, +1 bias, ReLU: 0.5 / 1.5 -> std 0.5.
  assert logit(coarse) == pytest.approx(0.5, abs=1e-5)
  assert logit(fine) == pytest.approx(0.0, abs=1e-6)


@given(seed=st.integers(0, 2**31), n=st.integers(1, 4))
@pytest.mark.slow
def test_mirror_tta_is_the_mean_over_the_mirror_and_invariant(seed, n):
  from palmjax.palm.train import predict_proba
  cfg = PalmClassifierConfig(features=(4, 8), hidden=6, input_size=16, highpass_sigmas=(1.0,))
  tta = dataclasses.replace(cfg, mirror_tta=True)
  params = PalmClassifier(cfg).init(jax.random.key(seed % 7), jnp.zeros((1, 16, 16, 1)))
  x = np.random.default_rng(seed).random((n, 16, 16, 1)).astype(np.float32)
  mirrored = x[:, :, ::-1].copy()
  plain = np.asarray(predict_proba(params["params"], x, cfg))
  plain_m = np.asarray(predict_proba(params["params"], mirrored, cfg))
  assert not np.allclose(plain, plain_m, atol=1e-6)  # the plain network is not invariant
  got = np.asarray(predict_proba(params["params"], x, tta))
  np.testing.assert_allclose(got, 0.5 * (plain + plain_m), atol=1e-6)
  np.testing.assert_allclose(np.asarray(predict_proba(params["params"], mirrored, tta)), got,
                             atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(highpass_sigmas=(0.0,)), "highpass_sigmas"),
    (dict(highpass_sigmas=(float("nan"),)), "highpass_sigmas"),
    (dict(pooling="median"), "pooling"),
    (dict(features=()), "features"),
    (dict(input_size=4), "too small"),
])
def test_bad_classifier_config_is_named(kwargs, match):
  with pytest.raises(ValueError, match=match):
    PalmClassifierConfig(**kwargs)


def _fresh_capture_report(det, style):
  from palmjax.data.palm_xray import ATTACK_NAMES
  from palmjax.metrics import pad_report
  from palmjax.palm.train import simulate
  sim = det.train_config.sim_config()
  assert sim.style == style
  d = simulate(jax.random.key(31_337), 160, sim)
  p = det.probabilities(d["lr"])
  return pad_report(p, d["label"], [ATTACK_NAMES[a] for a in d["attack"]],
                    threshold=det.threshold)


# The shipped classifiers on 160 fresh captures of their own simulator style (key 31337):
# (checkpoint, style, min AUC, max BPCER, max worst APCER).
# - palm_classifier (shipped): v3 then v4 simulator + real live radiographs (and their
#   re-captures as spoofs), bicubic input; on held-out real hands BPCER 4/200, on 1,000
#   fresh v4 captures ACER 0.50% with the gate (README). Here (81 live, 16-24 per spoof
#   kind, no gate) it gives AUC 1.0, one live hand just under its threshold (0.82) and no
#   spoof accepted; the bounds allow about one capture more per class.
# - palm_classifier_v2 (the previous default: v2 simulator + real live radiographs): no
#   mistake on these v2 captures; at most one miss per spoof kind and two live hands are
#   allowed. (It calls most v3 phantoms live: README, "Real live radiographs in training".)
# - palm_classifier_sim (the default before that, v1 simulator alone, SRCNN input; ACER
#   0.57% on 4,000 v1 captures, README): it calls every real hand spoof; this pins its
#   simulated figures.
_SHIPPED = [("palm_classifier", "v4", 0.995, 2 / 81, 1 / 16),
            ("palm_classifier_v2", "v2", 0.999, 2 / 81, 1 / 15),
            ("palm_classifier_sim", "v1", 0.999, 2 / 75, 1 / 15)]


@pytest.mark.slow
@pytest.mark.parametrize("name, style, auc, bpcer, apcer", _SHIPPED)
def test_shipped_classifiers_on_fresh_captures(name, style, auc, bpcer, apcer):
  from palmjax.assets import checkpoint_path
  from palmjax.palm import PalmLivenessDetector
  from palmjax.palm.detector import default_classifier_path
  det = PalmLivenessDetector(checkpoint_path(name), quality=None)
  if name == "palm_classifier":
    assert checkpoint_path(name) == default_classifier_path()
    assert det.model_config.highpass_sigmas == (1.0,) and det.model_config.mirror_tta
  rep = _fresh_capture_report(det, style)
  assert rep.auc >= auc
  assert rep.bpcer <= bpcer and rep.apcer_worst <= apcer


@given(seed=st.integers(0, 2**31), start=st.integers(0, 50), count=st.integers(1, 12),
       block=st.integers(1, 8), batch=st.integers(1, 5))
@pytest.mark.slow
def test_training_batches_drawn_in_blocks_equal_step_by_step(seed, start, count, block, batch):
  from palmjax.palm.train import training_data

  def one_step(step):  # the loop's definition of a step's batch, drawn on its own
    k_idx, k_aug = jax.random.split(jax.random.fold_in(key, step))
    idx = np.asarray(jax.random.randint(k_idx, (batch,), 0, len(x)))
    flips = np.asarray(jax.random.bernoulli(k_aug, 0.5, (batch,)))
    return {"image": np.where(flips[:, None, None, None], x[idx][:, :, ::-1], x[idx]),
            "label": y[idx]}

  rng = np.random.default_rng(seed)
  x = rng.random((7, 4, 6, 1)).astype(np.float32)
  y = rng.integers(0, 2, 7)
  key = jax.random.key(seed)
  data = training_data(x, y, batch)
  got = []
  for b in range(start, start + count, block):  # the loop's blocks
    blk = data.draw_block(key, b, min(block, start + count - b))
    got += [{k: np.asarray(v[i]) for k, v in blk.items()} for i in range(len(blk["label"]))]
  assert len(got) == count
  for step, b in zip(range(start, start + count), got):
    want = one_step(step)
    np.testing.assert_array_equal(b["image"], want["image"])
    np.testing.assert_array_equal(b["label"], want["label"])
    assert b["label"].dtype == np.int32
    # Every image is a training image or its mirror, with that image's label.
    for img, lab in zip(b["image"], b["label"]):
      hits = [i for i in range(len(x))
              if np.array_equal(img, x[i]) or np.array_equal(img, x[i, :, ::-1])]
      assert hits and lab in y[hits]


@pytest.mark.slow  # ~20 s on the 2-core CPU (simulation + the detector twice)
def test_evaluate_simulated_agrees_with_the_detector_records():
  """The experiments' simulated figure (palm.train.evaluate_simulated) against the
  detector's own records on the same captures: re-captures fail live captures, reject
  attacks; ACER = (worst APCER + BPCER) / 2."""
  from palmjax.data import palm_xray
  from palmjax.palm import train as palm_train
  from palmjax.palm.detector import PalmLivenessDetector, default_classifier_path
  params, cfg, thr, _ = palm_train.load_classifier(default_classifier_path())
  n, seed = 48, 4049
  got = palm_train.evaluate_simulated(params, cfg, thr, n, seed)
  d = palm_train.simulate(jax.random.key(seed), n, cfg.sim_config())
  recs = PalmLivenessDetector().detect(d["lr"])
  live = d["label"] == 1
  dec = np.array([r.decision for r in recs])
  assert got["fta_live"] == pytest.approx(np.mean(dec[live] == "recapture"))
  assert got["bpcer"] == pytest.approx(np.mean(dec[live] != "live"))
  kinds = np.array([palm_xray.ATTACK_NAMES[a] for a in d["attack"]])
  for k, v in got["apcer"].items():
    assert v == pytest.approx(np.mean(dec[~live & (kinds == k)] == "live"))
  assert got["acer"] == pytest.approx((max(got["apcer"].values()) + got["bpcer"]) / 2)
