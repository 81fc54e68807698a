"""PAD metrics against brute-force definitions and scikit-learn-free references."""

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from scipy.stats import mannwhitneyu

from palmjax.errors import InputError
from palmjax.metrics import eer, pad_report, plot_roc_det, roc_auc, roc_curve, threshold_for


def _data(seed, n, ties):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  y[:2] = [0, 1]
  s = rng.normal(y * 1.0, 1.0)
  if ties:
    s = np.round(s, 1)
  return s, y


@given(seed=st.integers(0, 10**6), n=st.integers(4, 200), ties=st.booleans())
def test_auc_equals_mann_whitney(seed, n, ties):
  s, y = _data(seed, n, ties)
  u = mannwhitneyu(s[y == 1], s[y == 0]).statistic
  assert roc_auc(s, y) == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), abs=1e-12)


@given(seed=st.integers(0, 10**6), n=st.integers(4, 120), ties=st.booleans())
def test_roc_curve_brute_force_and_eer_bracketed(seed, n, ties):
  s, y = _data(seed, n, ties)
  apcer, bpcer, thr = roc_curve(s, y)
  for a, b, t in zip(apcer, bpcer, thr):
    assert a == pytest.approx(np.mean(s[y == 0] >= t))
    assert b == pytest.approx(np.mean(s[y == 1] < t))
  rate, t = eer(s, y)
  # The EER lies between the best achievable max(APCER, BPCER) and min of the two there.
  best = np.min(np.maximum(apcer, bpcer))
  assert rate <= best + 1e-12
  assert rate >= np.min((apcer + bpcer) / 2) - 1e-12


def test_pad_report_by_hand():
  scores = [0.9, 0.8, 0.3, 0.7, 0.2, 0.6, 0.1, 0.4]
  labels = [1, 1, 1, 0, 0, 0, 0, 0]
  types = ["", "", "", "mask", "mask", "photo", "photo", "photo"]
  r = pad_report(scores, labels, types, threshold=0.5)
  assert r.bpcer == pytest.approx(1 / 3)          # 0.3 rejected
  assert r.apcer == {"mask": 0.5, "photo": pytest.approx(1 / 3)}
  assert r.apcer_worst == 0.5 and r.acer == pytest.approx((0.5 + 1 / 3) / 2)
  assert r.apcer_all == pytest.approx(2 / 5) and r.hter == pytest.approx((0.4 + 1 / 3) / 2)
  assert r.zero_one_error == pytest.approx(3 / 8)
  assert r.n_attack == {"mask": 2, "photo": 3} and r.n_bona_fide == 3
  assert "ACER" in r.markdown("t")


def test_perfect_separation_and_thresholds(tmp_path):
  s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
  y = np.array([0, 0, 0, 1, 1])
  assert roc_auc(s, y) == 1.0 and eer(s, y)[0] == 0.0
  t = threshold_for(s, y, criterion="bpcer", target=0.0)
  assert 0.3 < t <= 0.8
  assert pad_report(s, y, threshold=t).acer == 0.0
  assert threshold_for(s, y, criterion="acer") in (0.8,)
  plot_roc_det(str(tmp_path / "roc.png"), {"a": (s, y)})
  assert (tmp_path / "roc.png").stat().st_size > 1000


def test_plot_uses_its_own_figure_and_needs_the_plot_extra(tmp_path, monkeypatch):
  import sys

  import matplotlib
  from PIL import Image
  pyplot = "matplotlib.pyplot" in sys.modules
  backend = dict.__getitem__(matplotlib.rcParams, "backend")  # raw: resolving imports pyplot
  s, y = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
  plot_roc_det(str(tmp_path / "roc.png"), {"a": (s, y), "b": (1 - s, y)}, title="t")
  with Image.open(tmp_path / "roc.png") as im:
    assert im.size == (1000, 450)                  # figsize 10 x 4.5 in at 100 dpi
    assert len(np.unique(np.asarray(im.convert("L")))) > 20   # drawn, not blank
  # No global state: the backend is unchanged and pyplot was not pulled in.
  assert dict.__getitem__(matplotlib.rcParams, "backend") == backend
  assert ("matplotlib.pyplot" in sys.modules) == pyplot
  for m in [m for m in sys.modules if m.startswith("matplotlib")]:
    monkeypatch.delitem(sys.modules, m)
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  with pytest.raises(InputError, match=r"ROC/DET plots: matplotlib is not installed; "
                     r"pip install 'palmjax\[plot\]'"):
    plot_roc_det(str(tmp_path / "x.png"), {"a": (s, y)})
  assert not (tmp_path / "x.png").exists()


def test_bad_inputs():
  with pytest.raises(InputError, match="differ in length"):
    roc_auc([0.1, 0.2], [1])
  with pytest.raises(InputError, match="NaN"):
    roc_auc([np.nan, 0.2], [1, 0])
  with pytest.raises(InputError, match="both"):
    pad_report([0.1, 0.2], [1, 1])
  with pytest.raises(InputError, match="labels must be"):
    roc_auc([0.1, 0.2], [2, 0])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 2000), frac=st.floats(0, 1))
def test_wilson_interval_matches_scipy(n, frac):
  from scipy.stats import binomtest

  from palmjax.metrics import wilson_interval
  k = int(round(frac * n))
  ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
  lo, hi = wilson_interval(k, n)
  assert lo == pytest.approx(ref.low, abs=1e-12) and hi == pytest.approx(ref.high, abs=1e-12)
  assert wilson_interval(0, 0) == (0.0, 1.0)
  with pytest.raises(ValueError, match="0 <= k <= n"):
    wilson_interval(n + 1, n)


@settings(deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(6, 150), log_odds=st.booleans())
def test_gated_report_counts_recaptures_as_live_failures_and_attack_rejections(seed, n,
                                                                              log_odds):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  y[:2] = [0, 1]
  kinds = np.where(y == 1, "live", rng.choice(["print", "model"], n))
  s = rng.normal(size=n) * 4 if log_odds else rng.random(n)
  ok = rng.random(n) < 0.8
  thr = 0.0 if log_odds else 0.5
  rep = pad_report(s, y, kinds, threshold=thr, accepted=ok)
  accept = (s >= thr) & ok  # by hand: a re-capture is never an acceptance
  assert rep.bpcer == pytest.approx(np.mean(~accept[y == 1]))
  for k in set(kinds[y == 0]):
    assert rep.apcer[k] == pytest.approx(np.mean(accept[(y == 0) & (kinds == k)]))
  # Threshold-free figures: re-captures rank below every accepted presentation.
  low = min(s.min(), thr) - 1.0
  ref = roc_auc(np.where(ok, s, low), y)
  assert rep.auc == pytest.approx(ref)
  if ok.all():
    assert rep == pad_report(s, y, kinds, threshold=thr)
  with pytest.raises(InputError, match="accepted"):
    pad_report(s, y, kinds, threshold=thr, accepted=ok[1:])
