"""palmjax.palm.realism: features vs NumPy/SciPy references, the two-sample AUC, the CLI."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import scipy.optimize
import scipy.signal

from palmjax.errors import InputError
from palmjax.palm import realism as R
from radiographs import hand, save_u8


def _rng(seed=0):
  return np.random.default_rng(seed)


def _slope_ref(img: np.ndarray) -> float:
  n = img.shape[0]
  p = np.abs(np.fft.fft2(img - img.mean())) ** 2
  f = np.fft.fftfreq(n) * n
  r = np.rint(np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)).astype(int)
  radii = np.arange(2, n // 2)
  ring = np.array([p[r == k].mean() for k in radii])
  return float(np.polyfit(np.log(radii), np.log(ring), 1)[0])


def test_spectrum_slope_matches_numpy_reference():
  rng = _rng(1)
  white = rng.normal(size=(2, 32, 32))
  # Brown-ish noise: integrated white noise has a steep spectrum.
  brown = np.cumsum(np.cumsum(rng.normal(size=(2, 32, 32)), 1), 2)
  x = np.concatenate([white, brown]).astype(np.float32)
  got = np.asarray(R.spectrum_slope(x))
  ref = np.array([_slope_ref(i.astype(np.float64)) for i in x])
  np.testing.assert_allclose(got, ref, atol=2e-3)
  assert abs(got[0]) < 0.5 and got[2] < -2.5


def test_noise_level_matches_immerkaer_reference_and_recovers_sigma():
  rng = _rng(2)
  x = (0.5 + 0.04 * rng.normal(size=(3, 64, 64))).astype(np.float32)
  m = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
  ref = [math.sqrt(math.pi / 2) / (6 * 62 * 62)
         * np.abs(scipy.signal.convolve2d(i.astype(np.float64), m, mode="valid")).sum()
         for i in x]
  got = np.asarray(R.noise_level(x))
  np.testing.assert_allclose(got, ref, rtol=1e-4)
  np.testing.assert_allclose(got, 0.04, rtol=0.05)
  # A smooth ramp has (almost) no noise.
  ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (1, 64, 1))
  assert float(R.noise_level(ramp)[0]) < 1e-5


def test_image_stats_match_numpy():
  rng = _rng(3)
  x = rng.uniform(0, 1, size=(4, 32, 32)).astype(np.float32)
  x[0, :8] = 0.0
  x[1, :4] = 1.0
  st = np.asarray(R.image_stats(x))
  assert st.shape == (4, len(R.STAT_NAMES))
  for i in range(4):
    h, _ = np.histogram(np.minimum(x[i], 1 - 1e-7), bins=R.HIST_BINS, range=(0, 1))
    np.testing.assert_allclose(st[i, :R.HIST_BINS], h / x[i].size, atol=1e-6)
    col = dict(zip(R.STAT_NAMES, st[i]))
    np.testing.assert_allclose(col["mean"], x[i].mean(), rtol=1e-5)
    np.testing.assert_allclose(col["std"], x[i].std(), rtol=1e-4)
    np.testing.assert_allclose(col["background"], np.mean(x[i] <= R.BACKGROUND_LEVEL))
    np.testing.assert_allclose(col["clipped"], np.mean(x[i] >= R.CLIP_LEVEL))
  assert st[0, R.STAT_NAMES.index("background")] >= 0.25
  assert st[1, R.STAT_NAMES.index("clipped")] >= 0.125


def test_downsampled_pixels_are_block_means():
  x = _rng(4).uniform(size=(2, 32, 32)).astype(np.float32)
  got = np.asarray(R.downsampled_pixels(x, 16)).reshape(2, 16, 16)
  ref = np.array([[[x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(16)]
                   for i in range(16)] for n in range(2)])
  np.testing.assert_allclose(got, ref, atol=1e-6)
  with pytest.raises(InputError, match="multiple"):
    R.downsampled_pixels(np.zeros((1, 20, 20)), 16)


def test_fit_logistic_matches_scipy_minimiser():
  rng = _rng(5)
  x = rng.normal(size=(200, 3))
  y = (x @ np.array([1.5, -1.0, 0.3]) + 0.4 + rng.logistic(size=200) > 0).astype(float)
  w, b = R.fit_logistic(x, y, l2=2.0)

  def loss(t):
    z = x @ t[:3] + t[3]
    return np.sum(np.logaddexp(0, z) - y * z) + 1.0 * np.sum(t[:3] ** 2)

  ref = scipy.optimize.minimize(loss, np.zeros(4), method="BFGS", options={"gtol": 1e-9}).x
  np.testing.assert_allclose(np.r_[w, b], ref, atol=1e-4)


def test_cross_validated_auc_same_vs_different_distributions():
  rng = _rng(6)
  same = rng.normal(size=(600, 10))
  y = np.r_[np.ones(300), np.zeros(300)]
  a = R.cross_validated_auc(same, y, seed=1)["auc"]
  assert abs(a - 0.5) < 0.08, a
  diff = same + y[:, None] * 1.5
  assert R.cross_validated_auc(diff, y, seed=1)["auc"] > 0.99
  with pytest.raises(InputError, match="each class"):
    R.cross_validated_auc(same[:6], np.r_[np.ones(3), np.zeros(3)])


def test_cross_validated_log_loss_is_the_held_out_cross_entropy_and_does_not_saturate():
  import scipy.special
  rng = _rng(16)
  x = rng.normal(size=(400, 8))
  y = np.r_[np.ones(200), np.zeros(200)]
  near, far = x + y[:, None] * 1.5, x + y[:, None] * 3.0
  cv = {k: R.cross_validated_auc(v, y, seed=2) for k, v in (("near", near), ("far", far),
                                                            ("same", x))}
  for v in cv.values():   # the mean cross-entropy of the held-out logits (SciPy's log_expit)
    z = v["scores"]
    ref = -np.mean(y * scipy.special.log_expit(z) + (1 - y) * scipy.special.log_expit(-z))
    assert v["log_loss"] == pytest.approx(ref, rel=1e-9)
  # Both shifts separate almost perfectly (the AUC saturates); the log-loss tells them
  # apart, and one distribution against itself is no better than a constant guess.
  assert cv["near"]["auc"] > 0.99 and cv["far"]["auc"] > 0.99
  assert cv["far"]["log_loss"] < 0.5 * cv["near"]["log_loss"] < 0.1
  assert cv["same"]["log_loss"] > 0.9 * math.log(2)


def _blobs(rng, n, sigma):
  from scipy.ndimage import gaussian_filter
  x = rng.uniform(size=(n, 32, 32))
  return np.clip(np.stack([gaussian_filter(i, sigma) for i in x]) * 1.5 - 0.25, 0, 1)


def test_realism_aucs_on_images():
  rng = _rng(7)
  a, b = _blobs(rng, 150, 1.0), _blobs(rng, 150, 1.0)
  same = R.realism_aucs(a, b, seed=0)
  assert set(same) == {"stats", "pixels", "layout"}
  for v in same.values():
    assert abs(v - 0.5) < 0.12, same
  # Blurrier and with a brighter top band: the statistics see the blur, the pixels the band.
  other = _blobs(rng, 150, 2.5)
  other[:, :8] = np.clip(other[:, :8] + 0.3, 0, 1)
  diff = R.realism_aucs(a, other, seed=0)
  assert min(diff["stats"], diff["pixels"]) > 0.95, diff
  scores = R.realism_scores(a, other, seed=0)
  assert {k: v["auc"] for k, v in scores.items()} == diff
  assert scores["pixels"]["log_loss"] < 0.3 < R.realism_scores(a, b)["pixels"]["log_loss"]
  with pytest.raises(InputError, match="one size"):
    R.realism_aucs(a, b[:, :16, :16])


def _hands_at(rng, n, x0, level=(0.5, 0.9), blur=(0.5, 1.5)):
  """Bright upright "hands" (a palm block and three fingers) at column ``x0`` (+-2 px) on a
  dark noisy background, 32 px; brightness and blur drawn per image."""
  from scipy.ndimage import gaussian_filter
  out = np.empty((n, 32, 32), np.float32)
  for i in range(n):
    m = np.zeros((32, 32))
    c = x0 + rng.integers(-2, 3)
    m[14:30, c - 5:c + 5] = 1.0
    for f in (-4, 0, 4):
      m[4 + abs(f) // 2:14, c + f - 1:c + f + 1] = 1.0
    img = 0.05 + rng.uniform(*level) * m
    img = gaussian_filter(img, rng.uniform(*blur)) + rng.normal(0, 0.01, (32, 32))
    out[i] = np.clip(img, 0, 1)
  return out


def test_layout_features_see_where_the_hand_is_not_how_it_looks():
  rng = _rng(17)
  left = _hands_at(rng, 120, 11)
  # The same layout, other looks (brighter and sharper): the layout does not see it.
  looks = R.realism_aucs(left, _hands_at(rng, 120, 11, level=(0.9, 1.0), blur=(0.3, 0.5)))
  assert looks["stats"] > 0.9 and abs(looks["layout"] - 0.5) < 0.15, looks
  # The same looks, moved right: the layout sees it.
  moved = R.realism_aucs(left, _hands_at(rng, 120, 20))
  assert moved["layout"] > 0.95, moved
  # The layout features are the gate's mask, cell by cell.
  from palmjax.palm.quality import hand_mask
  m = np.asarray(hand_mask(left[:4, ..., None]), np.float32)
  np.testing.assert_allclose(np.asarray(R.layout_pixels(left[:4])),
                             m.reshape(4, 16, 2, 16, 2).mean((2, 4)).reshape(4, -1))


def test_region_scores_find_where_the_samples_differ():
  rng = _rng(18)
  a, b = _blobs(rng, 150, 1.0), _blobs(rng, 150, 1.0)
  b[:, :4] = np.clip(b[:, :4] + 0.3, 0, 1)   # brighter in the top two cells of the grid
  reg = R.region_scores(a, b, seed=0)
  assert set(reg) == {"pixels", "layout"} and set(reg["pixels"]) == set(R.REGIONS)
  px = {k: v["auc"] for k, v in reg["pixels"].items()}
  for region in ("top 2 rows", "outer ring (3 cells)", "row profile", "whole grid"):
    assert px[region] > 0.95, px
  for region in ("bottom 2 rows", "centre (inside the ring)"):
    assert abs(px[region] - 0.5) < 0.12, px
  # Hands moved sideways: the column profile sees it, the row profile does not.
  left, right = _hands_at(rng, 120, 11), _hands_at(rng, 120, 20)
  lay = {k: v["auc"] for k, v in R.region_scores(left, right, seed=0)["layout"].items()}
  assert lay["column profile"] > 0.95 and abs(lay["row profile"] - 0.5) < 0.15, lay
  # Each region is the plain test on that part of the grid.
  grid = np.asarray(R.downsampled_pixels(np.r_[a, b])).reshape(-1, 16, 16)
  y = np.r_[np.ones(150), np.zeros(150)]
  assert px["top 2 rows"] == R.cross_validated_auc(grid[:, :2].reshape(300, -1), y)["auc"]
  assert R.REGIONS["outer ring (3 cells)"](grid).shape == (300, 256 - 100)
  with pytest.raises(InputError, match="one size"):
    R.region_scores(a, b[:, :16, :16])


def test_reference_aucs_floor_and_layout_sensitivity():
  rng = _rng(8)
  x = _blobs(rng, 240, 1.0)
  x[:, :, :6] = np.clip(x[:, :, :6] + 0.3, 0, 1)   # a brighter left edge: an asymmetric layout
  ref = R.reference_aucs(x, seed=0)
  assert set(ref) == {"halves", "mirrored"}
  for v in ref["halves"].values():
    assert abs(v - 0.5) < 0.12, ref   # two halves of one distribution
  # The same images mirrored: the pixels see the moved band; the statistics are (up to the
  # one-pixel crop of the gradient measures) mirror-invariant.
  assert ref["mirrored"]["pixels"] > 0.95, ref
  assert abs(ref["mirrored"]["stats"] - ref["halves"]["stats"]) < 0.1, ref
  # The halves are disjoint and the seed picks them.
  assert R.reference_aucs(x, seed=0) == ref
  assert R.reference_aucs(x, seed=1) != ref
  with pytest.raises(InputError, match="N >= 10"):
    R.reference_aucs(x[:9])


def test_load_real_reads_what_the_detector_reads(tmp_path):
  # A wide frame with a bright lead marker far from the hand: the clinical loader crops
  # to the hand (the marker is a separate blob), exactly as palmjax palm detect does.
  from palmjax.palm.clinical import ClinicalConfig, load_capture
  x, _ = hand(200, 360, 20, 150, 170, background=0.03)
  x[30:70, 20:50] = 0.95   # marker
  save_u8(tmp_path / "a.png", x)
  cap = np.zeros((16, 16), np.float32)
  cap[4:12, 4:12] = 0.5
  save_u8(tmp_path / "b.png", cap)       # already capture-sized: used as it is
  got, paths = R.load_real(str(tmp_path), 16)
  assert [os.path.basename(p) for p in paths] == ["a.png", "b.png"]
  ref = load_capture(tmp_path / "a.png", ClinicalConfig(size=16))[0][..., 0]
  np.testing.assert_array_equal(got[0], ref)
  np.testing.assert_allclose(got[1], np.round(cap * 255) / 255, atol=1e-6)
  # The marker is cropped away: the capture's left third is background, not 0.95.
  assert got[0][:, :3].max() < 0.2


def _write_fixture(d, n, seed=0):
  for i in range(n):
    x, _ = hand(100 + 3 * i, 90, 6, 4, 80, background=0.02 * (i % 3), seed=seed + i)
    save_u8(d / f"{i:03d}.png", x)


def _manual_dir(root, n=24):
  os.makedirs(root / "clinic" / "images")
  _write_fixture(root / "clinic" / "images", n)


def test_load_real_split_reads_the_builder(tmp_path):
  from palmjax.data.hand_radiographs_tfds import load_splits
  _manual_dir(tmp_path / "m")
  x, names = R.load_real_split(str(tmp_path / "m"), str(tmp_path / "d"), "train", 64)
  ref = load_splits(tmp_path / "m", tmp_path / "d")["train"]
  np.testing.assert_array_equal(x, ref["lr"][..., 0])
  assert names == [f"clinic/{s}" for s in ref["subject"]] and len(names) >= 10
  sub, sub_names = R.load_real_split(str(tmp_path / "m"), str(tmp_path / "d"), "train", 64,
                                     limit=5, seed=1)
  assert len(sub) == 5 and set(sub_names) <= set(names)
  np.testing.assert_array_equal(sub[0], x[names.index(sub_names[0])])
  with pytest.raises(InputError, match="capture"):
    R.load_real_split(str(tmp_path / "m"), str(tmp_path / "d"), "train", 32)
  with pytest.raises(InputError, match="unknown"):
    R.load_real_split(str(tmp_path / "m"), str(tmp_path / "d"), "train", 64, config="nope")
  with pytest.raises(InputError, match="no split 'tset'.*'test', 'train', 'validation'"):
    R.load_real_split(str(tmp_path / "m"), str(tmp_path / "d"), "tset", 64)
  # One split is read alone, and equals the same split read with the others.
  one = load_splits(tmp_path / "m", tmp_path / "d", splits=["validation"])
  assert list(one) == ["validation"]
  np.testing.assert_array_equal(one["validation"]["lr"],
                                load_splits(tmp_path / "m", tmp_path / "d")["validation"]["lr"])


def test_realism_split_needs_a_data_dir_and_one_source(tmp_path):
  # Checked by realism_test before anything is read (the CLI relies on it).
  with pytest.raises(InputError, match="--manual-dir needs --data-dir"):
    R.realism_test(manual_dir=str(tmp_path))
  with pytest.raises(InputError, match="either as a folder"):
    R.realism_test(str(tmp_path), manual_dir=str(tmp_path), data_dir=str(tmp_path))
  with pytest.raises(InputError, match="either as a folder"):
    R.realism_test()


@pytest.mark.slow
def test_realism_cli_on_a_folder_and_on_a_split(tmp_path, capsys):
  from palmjax.cli import main
  _write_fixture(tmp_path, 12)
  rc = main(["palm", "realism", "--real", str(tmp_path), "--n-sim", "12", "--style", "v3",
             "--folds", "3"])
  assert rc == 0
  out = capsys.readouterr().out.strip().splitlines()
  rec = json.loads(out[-1])
  assert rec["n_real"] == 12 and rec["n_sim"] == 12 and rec["size"] == 64
  assert rec["style"] == "v3" and rec["real"] == str(tmp_path)
  assert set(rec["aucs"]) == set(rec["log_loss"]) == {"stats", "pixels", "layout"}
  assert all(0.0 <= v <= 1.0 for v in rec["aucs"].values())
  assert all(v > 0.0 for v in rec["log_loss"].values())
  assert "| stats |" in "\n".join(out) and rec["reference"] is None
  rc = main(["palm", "realism", "--real", str(tmp_path), "--n-sim", "12", "--style", "v3",
             "--folds", "3", "--reference"])
  assert rc == 0
  out = capsys.readouterr().out.strip().splitlines()
  ref = json.loads(out[-1])["reference"]
  assert set(ref) == {"halves", "mirrored"}
  assert set(ref["halves"]) == {"stats", "pixels", "layout"}
  assert "real vs real: halves (6 vs 6)" in out[1]
  rc = main(["palm", "realism", "--real", str(tmp_path), "--n-sim", "12", "--style", "v3",
             "--folds", "3", "--regions"])
  assert rc == 0
  out = capsys.readouterr().out.strip().splitlines()
  reg = json.loads(out[-1])["regions"]
  assert set(reg) == {"pixels", "layout"} and set(reg["layout"]) == set(R.REGIONS)
  assert any(line.startswith("| row profile | ") for line in out)
  _manual_dir(tmp_path / "m")
  n_train = len(R.load_real_split(str(tmp_path / "m"), str(tmp_path / "d"), "train", 64)[0])
  rc = main(["palm", "realism", "--manual-dir", str(tmp_path / "m"), "--data-dir",
             str(tmp_path / "d"), "--split", "train", "--n-sim", "8", "--style", "v3",
             "--folds", "3"])
  assert rc == 0
  rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert rec["n_real"] == n_train and rec["n_sim"] == 8
  assert rec["real"] == "hand_radiographs/default:train"
  assert main(["palm", "realism", "--real", str(tmp_path / "nope")]) == 2
  assert "not a directory" in capsys.readouterr().err
  assert main(["palm", "realism", "--manual-dir", str(tmp_path / "m")]) == 2
  assert "--data-dir" in capsys.readouterr().err
