"""Pyramidal Lucas–Kanade against OpenCV on warped real textures; flow statistics."""

import cv2
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given
from hypothesis import strategies as st
from skimage import color, data

from palmjax.errors import InputError
from palmjax.kernels import flow_statistics, lucas_kanade

WINDOW, LEVELS = 21, 3


@pytest.fixture(scope="module")
def textures():
  astro = color.rgb2gray(data.astronaut())[96:352, 160:416] * 255  # 256x256 face+suit
  camera = data.camera()[128:384, 128:384].astype(np.float64)
  return {"astronaut": astro, "camera": camera}


def _points(img):
  pts = cv2.goodFeaturesToTrack(img.astype(np.uint8), 80, 0.01, 8)[:, 0, :]
  keep = np.all((pts > 40) & (pts < img.shape[0] - 40), axis=1)
  return pts[keep].astype(np.float32)


def _warp(img, matrix, offset):
  """next(y) = img(matrix @ y + offset) in (row, col); returns next and the true flow fn."""
  nxt = ndi.affine_transform(img, matrix, offset=offset, order=3, mode="reflect")
  inv = np.linalg.inv(matrix)

  def true_flow(pts_xy):
    yx = pts_xy[:, ::-1].astype(np.float64)
    moved = (yx - offset) @ inv.T
    return (moved - yx)[:, ::-1]
  return nxt, true_flow


MOTIONS = {
    "shift(1.7,-0.8)": (np.eye(2), np.array([0.8, -1.7])),       # (dx, dy) = (1.7, -0.8)
    "rot1deg+scale": (np.array([[np.cos(.017), -np.sin(.017)], [np.sin(.017),
                                                                np.cos(.017)]]) / 1.01,
                      np.array([2.1, -0.6])),
    "shear": (np.array([[1.0, 0.01], [-0.008, 1.0]]), np.array([-1.3, 0.4])),
}


@pytest.mark.parametrize("name", ["astronaut", "camera"])
@pytest.mark.parametrize("motion", list(MOTIONS))
@pytest.mark.slow
def test_sparse_matches_opencv_accuracy(textures, name, motion):
  img = textures[name]
  nxt, true_flow = _warp(img, *MOTIONS[motion])
  a, b = [np.clip(np.round(x), 0, 255).astype(np.uint8) for x in (img, nxt)]
  pts = _points(a)
  truth = true_flow(pts)
  p1, st_cv, _ = cv2.calcOpticalFlowPyrLK(a, b, pts[:, None], None,
                                          winSize=(WINDOW, WINDOW), maxLevel=LEVELS)
  err_cv = np.median(np.linalg.norm(p1[:, 0] - pts - truth, axis=1))
  res = lucas_kanade(a, b, pts, window=WINDOW, levels=LEVELS)
  err = np.median(np.linalg.norm(np.asarray(res.flow) - truth, axis=1))
  assert err <= err_cv + 0.01, (err, err_cv)
  assert np.asarray(res.status).mean() >= 0.95
  # float frames (no 8-bit quantisation): palmjax only, must be at least as good
  res_f = lucas_kanade(img / 255, nxt / 255, pts, window=WINDOW, levels=LEVELS)
  err_f = np.median(np.linalg.norm(np.asarray(res_f.flow) - truth, axis=1))
  assert err_f <= err_cv + 0.01


@pytest.mark.slow
def test_dense_and_grid_on_translation(textures):
  img = textures["astronaut"][:128, :128]
  nxt, _ = _warp(img, *MOTIONS["shift(1.7,-0.8)"])
  dense = lucas_kanade(img / 255, nxt / 255, window=15, levels=2)
  assert dense.flow.shape == (128, 128, 2) and dense.status.shape == (128, 128)
  inner = np.asarray(dense.flow)[24:-24, 24:-24].reshape(-1, 2)
  assert np.median(np.linalg.norm(inner - [1.7, -0.8], axis=1)) < 0.06
  grid = lucas_kanade(img / 255, nxt / 255, grid=16, window=15, levels=2)
  assert grid.flow.shape == (8, 8, 2)
  inner = np.asarray(grid.flow)[2:-2, 2:-2].reshape(-1, 2)
  assert np.median(np.linalg.norm(inner - [1.7, -0.8], axis=1)) < 0.06


@pytest.mark.slow
def test_batch_jit_vmap_consistent(textures):
  img = textures["astronaut"][:96, :96]
  shifts = [(0.6, 0.3), (-1.2, 0.9)]
  prev = np.stack([img, img]) / 255
  nxt = np.stack([ndi.shift(img, (dy, dx), order=3, mode="reflect") for dx, dy in shifts])
  nxt = nxt / 255
  pts = np.array([[40.0, 40.0], [50.5, 45.25], [60.0, 38.0]], np.float32)
  kw = dict(window=15, levels=1, iterations=8)
  batched = lucas_kanade(prev, nxt, pts, **kw)
  assert batched.flow.shape == (2, 3, 2)
  for k, (dx, dy) in enumerate(shifts):
    np.testing.assert_allclose(np.asarray(batched.flow[k]), [[dx, dy]] * 3, atol=0.1)
    single = lucas_kanade(prev[k], nxt[k], pts, **kw)
    np.testing.assert_allclose(np.asarray(single.flow), np.asarray(batched.flow[k]),
                               atol=1e-4)
  f = lambda a, b: lucas_kanade(a, b, pts, **kw).flow
  pj, nj = jnp.asarray(prev, jnp.float32), jnp.asarray(nxt, jnp.float32)
  np.testing.assert_allclose(np.asarray(jax.jit(f)(pj, nj)), np.asarray(batched.flow),
                             atol=1e-4)
  np.testing.assert_allclose(np.asarray(jax.vmap(f)(pj, nj)), np.asarray(batched.flow),
                             atol=1e-4)
  # early stop (default epsilon, OpenCV's criterion) vs all iterations: same answer
  fixed = lucas_kanade(prev, nxt, pts, **kw, epsilon=0.0)
  np.testing.assert_allclose(np.asarray(fixed.flow), np.asarray(batched.flow), atol=0.02)
  per_pair = lucas_kanade(prev, nxt, np.stack([pts, pts + 1]), **kw)  # [B, N, 2] points
  np.testing.assert_allclose(np.asarray(per_pair.flow[0]), np.asarray(batched.flow[0]),
                             atol=1e-4)


@pytest.mark.slow
def test_status_flat_and_lost_points():
  flat = np.full((64, 64), 0.5, np.float32)
  res = lucas_kanade(flat, flat, np.array([[32.0, 32.0]]), window=11, levels=1)
  assert not bool(res.status[0])
  tex = np.random.default_rng(0).random((64, 64)).astype(np.float32)
  res = lucas_kanade(tex, tex, np.array([[32.0, 32.0], [-40.0, 10.0]]), window=11, levels=1)
  assert bool(res.status[0]) and not bool(res.status[1])
  np.testing.assert_allclose(np.asarray(res.flow[0]), [0, 0], atol=1e-5)
  assert float(res.error[0]) < 1e-3


@pytest.mark.parametrize("kwargs, match", [
    (dict(window=10), "odd"), (dict(window=99), "larger"), (dict(levels=-1), "levels"),
    (dict(iterations=0), "iterations"), (dict(grid=0), "grid"),
    (dict(epsilon=-0.1), "epsilon"), (dict(epsilon=np.nan), "epsilon"),
    (dict(points=np.zeros((3, 3))), "points"), (dict(points=[[np.nan, 1.0]]), "NaN"),
])
def test_bad_arguments_raise(kwargs, match):
  a = np.zeros((32, 32), np.float32)
  with pytest.raises(InputError, match=match):
    lucas_kanade(a, a, **kwargs)


def test_bad_frames_raise():
  a = np.zeros((32, 32), np.float32)
  with pytest.raises(InputError, match="does not match"):
    lucas_kanade(a, np.zeros((32, 30), np.float32))
  with pytest.raises(InputError, match="NaN"):
    lucas_kanade(a, np.full((32, 32), np.nan, np.float32))
  with pytest.raises(InputError, match="numeric"):
    lucas_kanade(a.astype(str), a)
  with pytest.raises(InputError, match="grey frame"):
    lucas_kanade(np.zeros(32), np.zeros(32))


def _stats_reference(flow, status):
  mag = np.linalg.norm(flow, axis=-1)
  w = status.astype(float)
  wm = lambda x, wt, ax: (x * wt).sum(ax) / np.maximum(wt.sum(ax), 1)
  mean = wm(mag, w, (-2, -1))
  std = np.sqrt(wm((mag - mean[..., None, None]) ** 2, w, (-2, -1)))
  fm = wm(mag, w, -1)
  fs = np.sqrt(wm((mag - fm[..., None]) ** 2, w, -1))
  fw = (w.sum(-1) > 0).astype(float)
  tm = wm(fm, fw, -1)
  temporal = np.sqrt(wm((fm - tm[..., None]) ** 2, fw, -1))
  pw = w[..., 1:, :] * w[..., :-1, :]
  change = wm(np.abs(mag[..., 1:, :] - mag[..., :-1, :]), pw, (-2, -1))
  return mean, std, wm(fs, fw, -1), temporal, change


_stats_jit = jax.jit(lambda f, s: flow_statistics(f, s))     # built once: one compile
_stats_vmap = jax.jit(jax.vmap(lambda f, s: flow_statistics(f, s)))


@given(hnp.arrays(np.float32, (2, 4, 6, 2), elements=st.floats(-5, 5, width=32, allow_subnormal=False)),
       hnp.arrays(np.bool_, (2, 4, 6)))
def test_flow_statistics_matches_numpy(flow, status):
  out = flow_statistics(flow, status)
  for got, ref in zip(out, _stats_reference(flow, status)):
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-4, atol=1e-5)
  jitted = _stats_jit(jnp.asarray(flow), jnp.asarray(status))
  vmapped = _stats_vmap(jnp.asarray(flow), jnp.asarray(status))
  for a, b, c in zip(out, jitted, vmapped):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(c), np.asarray(a), rtol=1e-5, atol=1e-6)


def test_flow_statistics_dense_and_known_values():
  flow = np.zeros((3, 4, 5, 2), np.float32)
  flow[..., 0] = np.array([1.0, 2.0, 3.0])[:, None, None]  # uniform per frame
  s = flow_statistics(flow, dense=True)
  np.testing.assert_allclose([float(v) for v in s],
                             [2.0, np.sqrt(2 / 3), 0.0, np.sqrt(2 / 3), 1.0], rtol=1e-6)
  with pytest.raises(InputError, match="flow"):
    flow_statistics(np.zeros((4, 3), np.float32))
  with pytest.raises(InputError, match="status"):
    flow_statistics(np.zeros((2, 4, 2), np.float32), np.ones((2, 5), bool))
  with pytest.raises(InputError, match="NaN"):
    flow_statistics(np.full((2, 4, 2), np.nan, np.float32))
