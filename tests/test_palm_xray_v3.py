"""Simulator style v3 (framing, window and background calibrated against real radiographs
as the clinical loader crops them); v2 kept as it was."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from palmjax.data import palm_xray as px
from palmjax.palm import realism as R
from radiographs import assert_deterministic_per_key_and_start, assert_sample_sums

pytestmark = pytest.mark.slow  # compiles the simulator (see BUILD.md, Tests)

V3 = px.PalmXrayConfig(size=64, style="v3")
KINDS = np.repeat(np.arange(len(px.ATTACK_NAMES)), 4).astype(np.int32)


@pytest.fixture(scope="module")
def v3():
  return jax.device_get(px.sample(jax.random.key(3), len(KINDS), V3, attacks=KINDS))


def test_v2_look_is_unchanged_by_v3():
  # Sums of sample(key(5), 5, size 64, style v2, one of each kind) before style v3 existed.
  assert_sample_sums(
      V3.replace(style="v2"),
      hr=[433.63139663171023, 450.2117886939086, 540.9412079378963, 452.619631011039,
          603.7059115618467],
      lr=[108.81177048012614, 113.07451588194817, 135.57647801563144, 112.49412341788411,
          149.31765419617295])


def test_v3_shapes_ranges_8bit_no_clipping(v3):
  n = len(KINDS)
  assert v3["hr"].shape == (n, 64, 64, 1) and v3["lr"].shape == (n, 32, 32, 1)
  np.testing.assert_array_equal(v3["attack"], KINDS)
  np.testing.assert_array_equal(v3["label"], (KINDS == px.LIVE).astype(np.int32))
  assert set(v3["params"]) == set(px.PARAM_NAMES)
  for k in ("hr", "lr"):
    x = v3[k]
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() < R.CLIP_LEVEL
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)
    assert (x.reshape(n, -1).std(1) > 0.02).all()


def test_v3_deterministic_per_key_and_start(v3):
  assert_deterministic_per_key_and_start(V3, v3, KINDS, tail=4)


def _extent(mask):
  rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
  return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def test_v3_frames_the_hand_as_the_clinical_crop(monkeypatch):
  # Calibrated: the object's bounding box (the forearm cut by the radiograph's lower edge)
  # fills the frame but for the loader's margin (V3_MARGIN of the box's longer side on
  # every side), centred; the lower edge is a horizontal cut through the forearm (a wide
  # bottom row) with only background (the loader's padding) below it. Every object kind
  # is framed alike (same code path). Zoomed-out crops (V3_ZOOMED) are switched off here.
  monkeypatch.setattr(px, "V3_ZOOMED", 0.0)
  monkeypatch.setattr(px, "V3_ZOOM", (1.0, 1.0, 1.0))
  cfg = V3.replace(fov_mm=221.5)   # a config no other test traced: the patch takes effect
  v3 = jax.device_get(px.sample(jax.random.key(3), len(KINDS), cfg, attacks=KINDS))
  n = v3["attenuation"].shape[-1]
  fill = 1.0 / (1.0 + 2.0 * px.V3_MARGIN)          # box side / frame side
  pad = n * px.V3_MARGIN * fill                       # rows of padding below the cut
  for i in range(len(KINDS)):
    obj = v3["attenuation"][i] > 0.02
    top, bottom, left, right = _extent(obj)
    assert 0.5 * pad <= n - bottom <= 1.5 * pad, (i, bottom)
    assert not obj[bottom:].any()
    if KINDS[i] == px.PRINTED_RADIOGRAPH:   # a plate over the whole field, cut alike
      assert top == 0 and obj[:bottom].all(), i
      continue
    side = max(bottom - top, right - left) / n
    assert fill - 0.04 <= side <= fill + 0.05, (i, side, fill)
    assert abs((top + bottom) / 2 - n / 2) <= 0.06 * n, (i, top, bottom)
    assert abs((left + right) / 2 - n / 2) <= 0.06 * n, (i, left, right)
    assert obj[bottom - 1].mean() > 0.15, (i, obj[bottom - 1].mean())

def test_v3_background_level_follows_the_calibrated_quantiles():
  # The unmasked background level is drawn from the table V3_BG at levels V3_BG_Q (the
  # real train split's 10th-percentile quantiles): its median is the table's median.
  q = jax.vmap(lambda k: px._draw_v3(k, {"hand_scale": jnp.ones(())}, V3))(
      jax.random.split(jax.random.key(0), 2000))
  med = float(np.median(np.asarray(q["bg_level"])))
  assert abs(med - px.V3_BG[px.V3_BG_Q.index(0.5)]) < 0.004, med
  assert np.mean(np.asarray(q["masked"])) == pytest.approx(px.V3_MASKED, abs=0.03)
  assert (np.asarray(q["soft_level"]) > np.asarray(q["bg_level"])).all()
  assert (np.asarray(q["top_level"]) >= np.asarray(q["soft_level"]) + 0.1 - 1e-6).all()
  zoomed = np.asarray(q["zoom"]) > px.V3_ZOOM[1]
  assert zoomed.mean() == pytest.approx(px.V3_ZOOMED, abs=0.03)

