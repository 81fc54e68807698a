"""Palm X-ray simulator, its TFDS builder and ``palmjax palm simulate``.

Two compiled shapes are shared by all tests (compilation dominates): the default config
with n=400 (statistics) and a 64-px config with n=8 (everything else; the TFDS ``tiny``
train split and the CLI call below use the same config, so they hit the jit cache).
"""

from __future__ import annotations

import csv
import json
import os

import jax
import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from palmjax.data import palm_xray as px
from palmjax.errors import InputError

SMALL = px.PalmXrayConfig(size=64, scale=2)
N_SMALL = 8
N_BIG = 400


@pytest.fixture(scope="module")
def big():
  return jax.device_get(px.sample(jax.random.key(7), N_BIG, px.PalmXrayConfig()))


@pytest.fixture(scope="module")
def small():
  return jax.device_get(px.sample(jax.random.key(1), N_SMALL, SMALL))


def _features(hr: np.ndarray) -> np.ndarray:
  """Image mean, std and a 16-bin intensity histogram (fractions)."""
  flat = hr.reshape(len(hr), -1)
  hist = np.stack([np.histogram(h, 16, (0.0, 1.0))[0] / h.size for h in flat])
  return np.concatenate([flat.mean(1, keepdims=True), flat.std(1, keepdims=True), hist], 1)


def _logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> np.ndarray:
  x1 = np.c_[x, np.ones(len(x))]

  def loss(w):
    z = x1 @ w
    reg = np.r_[w[:-1], 0.0]
    value = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * reg @ reg
    grad = x1.T @ (scipy.special.expit(z) - y) / len(y) + l2 * reg
    return value, grad

  return scipy.optimize.minimize(loss, np.zeros(x1.shape[1]), jac=True,
                                 method="L-BFGS-B").x


def _auc(score: np.ndarray, y: np.ndarray) -> float:
  r = scipy.stats.rankdata(score)
  pos, neg = y.sum(), len(y) - y.sum()
  return float((r[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def test_auc_helper_matches_definition():
  y = np.array([0, 0, 1, 1, 0, 1])
  s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
  pairs = [(a > b) + 0.5 * (a == b) for a in s[y == 1] for b in s[y == 0]]
  assert _auc(s, y) == pytest.approx(np.mean(pairs))


@pytest.mark.slow
def test_shapes_dtypes_ranges(big):
  n, s = N_BIG, 128
  assert big["hr"].shape == (n, s, s, 1) and big["hr"].dtype == np.float32
  assert big["lr"].shape == (n, s // 2, s // 2, 1)
  assert big["attenuation"].shape == (n, s, s)
  for k in ("bone_mask", "joint_mask", "soft_mask"):
    assert big[k].shape == (n, s, s) and big[k].dtype == bool
  for k in ("hr", "lr"):
    assert np.isfinite(big[k]).all() and big[k].min() >= 0.0 and big[k].max() <= 1.0
    # Quantised to 16 bits exactly.
    np.testing.assert_allclose(big[k] * 65535, np.round(big[k] * 65535), atol=2e-3)
  assert np.isfinite(big["attenuation"]).all() and big["attenuation"].min() >= 0.0
  assert set(np.unique(big["label"])) == {0, 1}
  np.testing.assert_array_equal(big["label"], (big["attack"] == 0).astype(np.int32))
  assert set(big["params"]) >= set(px.PARAM_NAMES)
  for k, v in big["params"].items():
    assert v.shape == (n,) and np.isfinite(v).all(), k
  age = big["params"]["age"]
  assert age.min() >= 4.0 and age.max() <= 85.0 and (age < 14).any()  # children too
  # Images use the dynamic range (not a constant grey) and LR is a separate noisy capture.
  assert (big["hr"].reshape(n, -1).std(1) > 0.05).all()


@pytest.mark.slow
def test_each_attack_kind_appears(big):
  counts = np.bincount(big["attack"], minlength=len(px.ATTACK_NAMES))
  assert len(counts) == len(px.ATTACK_NAMES) and (counts > 10).all(), counts
  assert 0.35 < counts[0] / N_BIG < 0.65  # live_fraction 0.5


@pytest.mark.slow
def test_global_statistics_do_not_separate_live_from_spoof(big):
  """Logistic regression on mean, std, 16-bin histogram: held-out ROC AUC <= 0.75."""
  x, y = _features(big["hr"][..., 0]), big["label"].astype(np.float64)
  n_train = 240
  mu, sd = x[:n_train].mean(0), x[:n_train].std(0) + 1e-9
  z = (x - mu) / sd
  w = _logistic_fit(z[:n_train], y[:n_train])
  score = np.c_[z[n_train:], np.ones(len(z) - n_train)] @ w
  auc = _auc(score, y[n_train:])
  assert auc <= 0.75, auc
  # The classifier does learn something on its training data (the features are not void).
  assert _auc(np.c_[z[:n_train], np.ones(n_train)] @ w, y[:n_train]) > 0.55


@pytest.mark.slow
def test_bone_attenuates_more_than_soft_tissue(big):
  live = np.flatnonzero(big["attack"] == 0)
  assert len(live) > 50
  a, hr = big["attenuation"], big["hr"][..., 0]
  bone_a, soft_a, bone_v, soft_v = [], [], [], []
  for i in live:
    bone, soft = big["bone_mask"][i], big["soft_mask"][i]
    assert bone.sum() > 100 and soft.sum() > 100
    assert big["joint_mask"][i].sum() > 0  # joint soft tissue rendered
    bone_a.append(a[i][bone].mean())
    soft_a.append(a[i][soft].mean())
    bone_v.append(hr[i][bone].mean())
    soft_v.append(hr[i][soft].mean())
  bone_a, soft_a = np.array(bone_a), np.array(soft_a)
  assert (bone_a > soft_a).all()
  assert np.median(bone_a / soft_a) > 1.3
  # In the displayed image (bone bright) too, for nearly every sample.
  assert np.mean(np.array(bone_v) > np.array(soft_v)) > 0.95
  # Spoofs: casts without bones have no bone mask; printed sheets have no soft tissue.
  assert not big["bone_mask"][big["attack"] == 1].any()
  assert not big["soft_mask"][big["attack"] == 4].any()
  assert big["bone_mask"][big["attack"] == 3].any()


@pytest.mark.slow
def test_determinism_and_start_offset(small):
  key = jax.random.key(1)
  again = jax.device_get(px.sample(key, N_SMALL, SMALL))
  for k in ("hr", "lr", "attack", "attenuation"):
    np.testing.assert_array_equal(small[k], again[k])
  # Sample i depends only on (key, start + i): a shifted batch overlaps exactly.
  shifted = jax.device_get(px.sample(key, N_SMALL, SMALL, start=4))
  np.testing.assert_array_equal(shifted["hr"][:4], small["hr"][4:])
  np.testing.assert_array_equal(shifted["params"]["age"][:4], small["params"]["age"][4:])
  other = jax.device_get(px.sample(jax.random.key(2), N_SMALL, SMALL))
  assert not np.array_equal(other["hr"], small["hr"])


@pytest.mark.slow
def test_forced_attacks_and_jit(small):
  kinds = np.array([0, 1, 2, 3, 4, 0, 4, 2], np.int32)
  b = jax.device_get(px.sample(jax.random.key(3), N_SMALL, SMALL, attacks=kinds))
  np.testing.assert_array_equal(b["attack"], kinds)
  np.testing.assert_array_equal(b["label"], (kinds == 0).astype(np.int32))
  # Under an outer jit (n, config static) the result is the same.
  f = jax.jit(lambda k: px.sample(k, N_SMALL, SMALL, attacks=kinds)["hr"])
  np.testing.assert_allclose(np.asarray(f(jax.random.key(3))), b["hr"], atol=1e-6)


@pytest.mark.parametrize("changes", [
    dict(size=100), dict(size=8), dict(scale=3), dict(scale=0), dict(energy_kev=100.0),
    dict(bit_depth=12), dict(live_fraction=1.5), dict(attack_weights=(1.0, 1.0)),
    dict(attack_weights=(0.0, 0.0, 0.0, 0.0)), dict(age_range=(50.0, 10.0)),
    dict(exposure_range=(0.0, 10.0)), dict(psf_sigma_px=float("nan")),
    dict(max_rotation_deg=-1.0), dict(vmap_chunk=-1)])
def test_bad_config_raises(changes):
  with pytest.raises(InputError, match="PalmXrayConfig"):
    px.PalmXrayConfig(**changes)


def test_bad_arguments_raise():
  key = jax.random.key(0)
  with pytest.raises(InputError, match="n:"):
    px.sample(key, 0, SMALL)
  with pytest.raises(InputError, match="config"):
    px.sample(key, 2, {"size": 64})
  with pytest.raises(InputError, match="key"):
    px.sample(np.zeros(3), 2, SMALL)
  with pytest.raises(InputError, match="attacks"):
    px.sample(key, 2, SMALL, attacks=np.array([0, 7]))
  with pytest.raises(InputError, match="energy_kev"):
    px.attenuation("soft_tissue", 80.0)
  with pytest.raises(InputError, match="material"):
    px.attenuation("unobtainium", 50.0)


def test_attenuation_table_orders_materials():
  mu = {m: px.attenuation(m, 50.0) for m in px.MATERIALS}
  assert mu["soft_tissue"] == pytest.approx(1.06 * 0.226)
  assert mu["adipose"] < mu["soft_tissue"] < mu["cartilage"] < mu["cortical_bone"]
  assert mu["wood"] < mu["pmma_resin"] < mu["silicone"] < mu["aluminium"] < mu["steel"]
  # Attenuation falls with energy for every material.
  assert all(px.attenuation(m, 40.0) > px.attenuation(m, 60.0) for m in px.MATERIALS)
  assert len(px.bone_names()) == px.N_HAND_BONES + 2


def test_tfds_builder_builds_and_reads_without_tensorflow(tmp_path):
  import sys

  from palmjax.data.palm_xray_tfds import PalmXray

  builder = PalmXray(config="tiny", data_dir=str(tmp_path))
  builder.download_and_prepare()
  sizes = {"train": 16, "validation": 8, "test": 8}
  for split, n in sizes.items():
    ds = builder.as_data_source(split=split)
    assert len(ds) == n
  ex = builder.as_data_source(split="train")[0]
  assert ex["hr"].shape == (64, 64, 1) and ex["hr"].dtype == np.uint16
  assert ex["lr"].shape == (32, 32, 1) and ex["lr"].dtype == np.uint16
  assert ex["params"].shape == (len(px.PARAM_NAMES),)
  assert ex["label"] in (0, 1) and 0 <= ex["attack"] < len(px.ATTACK_NAMES)
  assert ex["label"] == int(ex["attack"] == 0)
  # Stored pixels equal the simulator's output for the same key and index.
  direct = jax.device_get(px.sample(jax.random.fold_in(jax.random.key(0), 0), N_SMALL,
                                    SMALL))
  train = builder.as_data_source(split="train")
  got = {int(train[i]["params"][px.PARAM_NAMES.index("age")] * 1e4) for i in range(16)}
  assert int(direct["params"]["age"][0] * 1e4) in got
  assert "tensorflow" not in sys.modules
  configs = {c.name for c in PalmXray.BUILDER_CONFIGS}
  assert {f"loao_{k}" for k in px.ATTACK_NAMES[1:]} <= configs


def test_loao_configs_hold_out_one_kind():
  from palmjax.data.palm_xray_tfds import PalmXray

  for c in PalmXray.BUILDER_CONFIGS:
    if c.holdout > 0:
      assert c.sim_config("train").attack_weights[c.holdout - 1] == 0.0
      test_w = c.sim_config("test").attack_weights
      assert test_w[c.holdout - 1] == 1.0 and sum(test_w) == 1.0


@pytest.mark.slow
def test_cli_simulate_writes_16bit_pngs_and_manifest(tmp_path, capsys):
  from PIL import Image

  from palmjax.cli import main

  out = tmp_path / "sim"
  rc = main(["palm", "simulate", "--n", "5", "--out", str(out), "--size", "64",
             "--batch", str(N_SMALL), "--seed", "4"])
  assert rc == 0
  rows = list(csv.DictReader(open(out / "manifest.csv")))
  meta = json.load(open(out / "manifest.json"))
  assert len(rows) == 5 and len(meta["samples"]) == 5
  assert meta["attack_names"] == list(px.ATTACK_NAMES)
  for row in rows:
    with Image.open(out / row["hr"]) as im:
      assert im.mode in ("I;16", "I") and im.size == (64, 64)
      arr = np.asarray(im)
      assert arr.max() > 255  # really 16-bit content
    with Image.open(out / row["lr"]) as im:
      assert im.size == (32, 32)
    assert row["attack_name"] == px.ATTACK_NAMES[int(row["attack"])]
  assert not [f for f in os.listdir(out) if f.startswith(".tmp")]
  # Bad input: a clean error, exit code 2.
  assert main(["palm", "simulate", "--n", "0", "--out", str(out)]) == 2
  assert "--n" in capsys.readouterr().err
