"""palmjax.palm.realism: features vs NumPy/SciPy references, the two-sample AUC, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.optimize
import scipy.signal
from PIL import Image

from palmjax.errors import InputError
from palmjax.palm import realism as R


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


def _blobs(rng, n, sigma):
  from scipy.ndimage import gaussian_filter
  x = rng.uniform(size=(n, 32, 32))
  return np.clip(np.stack([gaussian_filter(i, sigma) for i in x]) * 1.5 - 0.25, 0, 1)


def test_realism_aucs_on_images():
  rng = _rng(7)
  a, b = _blobs(rng, 150, 1.0), _blobs(rng, 150, 1.0)
  same = R.realism_aucs(a, b, seed=0)
  assert set(same) == {"stats", "pixels"}
  for v in same.values():
    assert abs(v - 0.5) < 0.12, same
  # Blurrier and with a brighter top band: the statistics see the blur, the pixels the band.
  other = _blobs(rng, 150, 2.5)
  other[:, :8] = np.clip(other[:, :8] + 0.3, 0, 1)
  diff = R.realism_aucs(a, other, seed=0)
  assert min(diff.values()) > 0.95, diff
  with pytest.raises(InputError, match="one size"):
    R.realism_aucs(a, b[:, :16, :16])


def test_otsu_matches_skimage():
  skf = pytest.importorskip("skimage.filters")
  rng = _rng(8)
  v = np.clip(np.r_[rng.normal(0.1, 0.03, 4000), rng.normal(0.6, 0.1, 2000)], 0, 1)
  assert abs(R.otsu_threshold(v) - skf.threshold_otsu(v, nbins=256)) < 2.0 / 256


def test_prepare_real_crops_pads_and_resizes():
  img = np.zeros((100, 300), np.float32)
  img[20:80, 200:240] = 0.8      # the "hand": 60 x 40 px, far right in a wide frame
  out = R.prepare_real(img, 32)
  assert out.shape == (32, 32) and out.dtype == np.float32
  # Cropped to 60 (+5% margins) tall, 40 wide: padded left/right with exact black.
  assert out[:, 0].max() == 0.0 and out[:, -1].max() == 0.0
  assert out[10:22, 12:20].min() > 0.75
  fill = (out > 0.4).mean()
  assert 0.45 < fill < 0.7, fill
  with pytest.raises(InputError, match="8 x 8"):
    R.prepare_real(np.zeros((4, 40)), 32)


def _write_fixture(d, n, seed=0):
  rng = _rng(seed)
  for i in range(n):
    h, w = rng.integers(90, 130, size=2)
    a = (rng.uniform(0, 0.05, (h, w)) * 255).astype(np.uint8)
    a[h // 5:-h // 8, w // 4:-w // 4] = rng.integers(60, 200)
    Image.fromarray(a).save(d / f"{i:03d}.png")


@pytest.mark.slow
def test_load_real_and_cli(tmp_path, capsys):
  from palmjax.cli import main
  _write_fixture(tmp_path, 12)
  x, paths = R.load_real(str(tmp_path), 16, limit=10)
  assert x.shape == (10, 16, 16) and len(paths) == 10 and 0 <= x.min() and x.max() <= 1
  rc = main(["palm", "realism", "--real", str(tmp_path), "--n-sim", "12", "--style", "v2",
             "--folds", "3"])
  assert rc == 0
  out = capsys.readouterr().out.strip().splitlines()
  rec = json.loads(out[-1])
  assert rec["n_real"] == 12 and rec["n_sim"] == 12 and rec["size"] == 64
  assert rec["style"] == "v2"
  assert set(rec["aucs"]) == {"stats", "pixels"}
  assert all(0.0 <= v <= 1.0 for v in rec["aucs"].values())
  assert "| stats |" in "\n".join(out)
  assert main(["palm", "realism", "--real", str(tmp_path / "nope")]) == 2
  assert "not a directory" in capsys.readouterr().err
