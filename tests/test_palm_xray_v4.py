"""Simulator style v4 (v3 plus the film / cassette plate behind the hand, more faint
captures, a longer forearm); v3 kept as it was."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from palmjax.data import palm_xray as px
from palmjax.palm import realism as R
from radiographs import assert_deterministic_per_key_and_start, assert_sample_sums

V4 = px.PalmXrayConfig(size=64, style="v4")
KINDS = np.repeat(np.arange(len(px.ATTACK_NAMES)), 4).astype(np.int32)


def _rect_coverage(n, left, right, top, bottom):
  """Exact area fraction of every pixel of an ``n x n`` frame (centre 0, side 1, y up)
  inside the axis-aligned rectangle: a product of 1-D interval overlaps."""
  edges = np.arange(n + 1) / n - 0.5
  lo, hi = edges[:-1], edges[1:]
  cx = np.clip(np.minimum(hi, right) - np.maximum(lo, left), 0, None) * n
  # Row i spans y in [0.5 - (i + 1) / n, 0.5 - i / n].
  ylo, yhi = 0.5 - (np.arange(n) + 1) / n, 0.5 - np.arange(n) / n
  cy = np.clip(np.minimum(yhi, top) - np.maximum(ylo, bottom), 0, None) * n
  return cy[:, None] * cx[None, :]


edge = st.floats(0.05, 0.7)


@settings(max_examples=60, deadline=None)
@given(n=st.sampled_from([16, 32, 64]), left=edge, right=edge, top=edge, bottom=edge)
def test_plate_mask_is_the_rectangles_pixel_coverage(n, left, right, top, bottom):
  # Untilted, the area-sampled mask is the exact coverage of each pixel wherever the
  # rectangle is at least a pixel wide; an edge beyond the frame leaves that side full.
  q = dict(plate_left=-left, plate_right=right, plate_top=top, plate_bottom=-bottom,
           plate_angle=0.0)
  got = np.asarray(px._plate(n, {k: jnp.float32(v) for k, v in q.items()}))
  want = _rect_coverage(n, -left, right, top, -bottom)
  np.testing.assert_allclose(got, want, atol=2e-5)


@settings(max_examples=30, deadline=None)
@given(angle=st.floats(-px.V4_PLATE_DEG, px.V4_PLATE_DEG),
       side=st.floats(*px.V4_PLATE_SIDE), top=st.floats(*px.V4_PLATE_TOP),
       bottom=st.floats(*px.V4_PLATE_BOTTOM))
def test_tilted_plate_mask_matches_supersampled_polygon(angle, side, top, bottom):
  # Tilted: the mask is the rectangle rotated by ``angle`` about the frame's centre, compared
  # with 32 x 32 supersampled point-in-rectangle coverage; they differ only along edges.
  n, ss = 32, 32
  q = dict(plate_left=-side, plate_right=side, plate_top=top, plate_bottom=-bottom,
           plate_angle=angle)
  got = np.asarray(px._plate(n, {k: jnp.float32(v) for k, v in q.items()}))
  c = (np.arange(n * ss) + 0.5) / (n * ss) - 0.5
  xx, yy = c[None, :], -c[:, None]
  th = np.deg2rad(angle)
  x = np.cos(th) * xx + np.sin(th) * yy
  y = -np.sin(th) * xx + np.cos(th) * yy
  inside = (x > -side) & (x < side) & (y < top) & (y > -bottom)
  want = inside.reshape(n, ss, n, ss).mean((1, 3))
  assert np.abs(got - want).max() < 0.2
  assert abs(got.mean() - want.mean()) < 3e-3


def test_v4_draw_follows_its_tables():
  q = jax.vmap(lambda k: px._draw_v4(k, {"hand_scale": jnp.ones(())}, V4))(
      jax.random.split(jax.random.key(0), 4000))
  q = {k: np.asarray(v) for k, v in q.items()}
  # A plate in V4_PLATE of the unmasked captures, never in masked ones (exact black).
  assert not q["plate"][q["masked"] > 0.5].any()
  assert q["plate"][q["masked"] < 0.5].mean() == pytest.approx(px.V4_PLATE, abs=0.03)
  lo, hi = px.V4_PLATE_LEVEL
  assert lo <= q["plate_level"].min() and q["plate_level"].max() <= hi
  for k, (a, b) in (("plate_right", px.V4_PLATE_SIDE), ("plate_top", px.V4_PLATE_TOP)):
    assert a <= q[k].min() and q[k].max() <= b
  assert (q["plate_left"] < 0).all() and (q["plate_bottom"] < 0).all()
  # v4's own window tops (median of V4_TOP unless soft tissue forces it up) and forearm.
  med = float(np.median(q["top_level"]))
  assert abs(med - px.V4_TOP[px.V3_BG_Q.index(0.5)]) < 0.02, med
  assert (q["top_level"] >= q["soft_level"] + 0.1 - 1e-6).all()
  assert px.V4_FOREARM_MM[0] <= q["forearm_mm"].min() <= q["forearm_mm"].max() \
      <= px.V4_FOREARM_MM[1]
  # The rest is v3's draw from the same key.
  v3 = jax.vmap(lambda k: px._draw_v3(k, {"hand_scale": jnp.ones(())}, V4))(
      jax.random.split(jax.random.key(0), 4000))
  for k in ("bg_level", "soft_level", "masked", "gamma", "rotation_deg", "zoom"):
    np.testing.assert_array_equal(q[k], np.asarray(v3[k]))


@pytest.mark.slow   # compiles the simulator (see BUILD.md, Tests)
def test_v3_look_is_unchanged_by_v4():
  # Sums of sample(key(5), 5, size 64, style v3, one of each kind) before style v4 existed.
  assert_sample_sums(
      V4.replace(style="v3"),
      hr=[545.4588554240763, 1168.0902434661984, 670.7568977354094, 277.2313865441829,
          1887.9138522744179],
      lr=[136.89020404405892, 293.3255024552345, 168.7019698685035, 70.56470945198089,
          476.0117960572243])


@pytest.mark.slow
def test_v4_shapes_ranges_8bit_no_clipping_and_determinism():
  b = jax.device_get(px.sample(jax.random.key(3), len(KINDS), V4, attacks=KINDS))
  n = len(KINDS)
  assert b["hr"].shape == (n, 64, 64, 1) and b["lr"].shape == (n, 32, 32, 1)
  np.testing.assert_array_equal(b["attack"], KINDS)
  for k in ("hr", "lr"):
    x = b[k]
    assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() < R.CLIP_LEVEL
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)
    assert (x.reshape(n, -1).std(1) > 0.02).all()
  assert_deterministic_per_key_and_start(V4, b, KINDS, tail=4)


@pytest.mark.slow
def test_v4_plate_lightens_the_background_inside_it(monkeypatch):
  # Every capture gets a plate (V4_PLATE = 1, none masked); with a plate level L the
  # background just inside the plate's edge is about L brighter than just outside it.
  monkeypatch.setattr(px, "V4_PLATE", 1.0)
  monkeypatch.setattr(px, "V3_MASKED", 0.0)
  monkeypatch.setattr(px, "V4_PLATE_LEVEL", (0.1, 0.1))
  monkeypatch.setattr(px, "V4_PLATE_SIDE", (0.4, 0.4))
  monkeypatch.setattr(px, "V4_PLATE_DEG", 0.0)
  monkeypatch.setattr(px, "V3_COLLIMATOR", 0.0)
  monkeypatch.setattr(px, "V3_BG_RAMP", 0.0)
  cfg = V4.replace(fov_mm=223.5)   # a config no other test traced: the patch takes effect
  b = jax.device_get(px.sample(jax.random.key(9), 6, cfg,
                               attacks=np.zeros(6, np.int32)))
  n = 64
  inside, outside = int(n * 0.1) + 1, int(n * 0.1) - 2   # columns either side of the edge
  for i in range(6):
    img = b["hr"][i, 4:-4, :, 0]
    step = np.median(img[:, inside]) - np.median(img[:, outside])
    assert 0.05 < step < 0.16, (i, step)
