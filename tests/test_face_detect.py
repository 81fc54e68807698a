"""Face detection and cropping (palmjax.face.detect) and real-face liveness plumbing.

The face images are scikit-image's bundled photographs (``astronaut``: one face;
``coffee``: none), so the tests need no downloads and no real biometric data.
"""

from __future__ import annotations

import decimal
import math

import hypothesis.strategies as st
import numpy as np
import pytest
import skimage.data
from hypothesis import given

from palmjax.errors import InputError
from palmjax.face import cues as cues_lib
from palmjax.face import detect as D
from palmjax.face.fusion import ImageFusionConfig, fuse_image

# The astronaut's face lies around x 180-275, y 70-180 in the 512x512 image.
FACE_CENTRE = (228.0, 125.0)


def _centre(box):
  return ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)


@pytest.fixture(scope="module")
def astronaut():
  return skimage.data.astronaut()


@pytest.mark.parametrize("backend", D.DETECTORS)
def test_finds_the_face(astronaut, backend):
  det = D.detect(astronaut, D.DetectorConfig(backend=backend))
  assert det is not None and det.n_faces == 1 and not det.fallback
  cx, cy = _centre(det.box)
  assert abs(cx - FACE_CENTRE[0]) < 25 and abs(cy - FACE_CENTRE[1]) < 30
  side = det.box.x1 - det.box.x0
  assert 70 < side < 130


@pytest.mark.parametrize("backend", D.DETECTORS)
def test_no_face(backend):
  assert D.detect(skimage.data.coffee(), D.DetectorConfig(backend=backend)) is None
  flat = np.full((120, 160, 3), 128, np.uint8)
  assert D.detect(flat, D.DetectorConfig(backend=backend)) is None


def test_several_faces_take_the_largest(astronaut):
  head = astronaut[25:225, 128:328]                 # 200x200 around the face
  import cv2
  small = cv2.resize(head, (140, 140), interpolation=cv2.INTER_AREA)
  canvas = np.zeros((200, 360, 3), np.uint8)
  canvas[:, 160:] = head
  canvas[30:170, :140] = small
  det = D.detect(canvas)
  assert det is not None and det.n_faces == 2
  cx, _ = _centre(det.box)
  assert cx > 200                                   # the larger face, on the right


def test_frame_filling_and_dark_faces(astronaut):
  det = D.detect(astronaut)
  x0, y0, side = D.crop_box(det.box, 0.0)
  tight = astronaut[y0:y0 + side, x0:x0 + side]   # the face fills the frame
  d2 = D.detect(tight)
  assert d2 is not None
  # The box covers most of the frame (found directly or through the padded fallback pass).
  assert (d2.box.x1 - d2.box.x0) > 0.6 * side
  dark = (255 * (astronaut / 255.0) ** 2.5 * 0.4).astype(np.uint8)  # under-exposed
  assert D.detect(dark) is not None


def test_crop_face_keeps_aspect_and_replicates_edges():
  img = np.zeros((40, 100, 3), np.uint8)
  img[:, :50] = 200                                 # left half bright
  box = D.FaceBox(-10.0, 5.0, 30.0, 35.0, 1.0)      # runs off the left edge
  out = D.crop_face(img, box, 32, margin=0.0)
  assert out.shape == (32, 32, 3) and out.dtype == np.float32
  # 40x40 square from x=-10: the part left of the image is the replicated bright edge.
  np.testing.assert_allclose(out, 200 / 255, atol=1e-6)
  x0, y0, side = D.crop_box(D.FaceBox(10, 20, 30, 60, 1.0), 0.5)
  assert side == 80 and (x0, y0) == (-20, 0)


@given(st.lists(st.tuples(st.floats(0, 0.8), st.floats(0, 0.8), st.floats(0.05, 0.5),
                          st.floats(0.05, 0.5), st.floats(0.01, 1.0)), min_size=1, max_size=12),
       st.floats(0.1, 0.9))
def test_nms_matches_bruteforce(boxes, iou):
  b = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in boxes])
  s = np.array([sc for *_, sc in boxes]) + np.arange(len(boxes)) * 1e-6  # no ties

  def overlap(i, j):
    lt = np.maximum(b[i, :2], b[j, :2])
    rb = np.minimum(b[i, 2:], b[j, 2:])
    inter = np.prod(np.maximum(rb - lt, 0))
    a = lambda k: np.prod(b[k, 2:] - b[k, :2])  # noqa: E731
    return inter / (a(i) + a(j) - inter)

  ref = []
  for i in np.argsort(-s):
    if all(overlap(i, j) <= iou for j in ref):
      ref.append(int(i))
  assert D.nms(b, s, iou).tolist() == ref


def test_blazeface_anchor_layout():
  a = D._blazeface_anchors()
  assert a.shape == (896, 2)
  # stride 8: 16x16 cells x 2 anchors, then stride 16: 8x8 cells x 6 anchors
  np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
  np.testing.assert_allclose(a[1], a[0])
  np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])
  np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])


@pytest.mark.parametrize("bad,match", [
    (np.zeros((8, 8, 3), np.uint8), "at least 16x16"),
    (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
    (np.full((32, 32, 3), 2.0, np.float32), r"\[0, 1\]"),
    (np.zeros((32, 32, 4), np.uint8), "RGB"),
])
def test_bad_images(bad, match):
  with pytest.raises(InputError, match=match):
    D.detect(bad)


def test_uint16_and_grey_inputs(astronaut):
  grey16 = (astronaut.mean(-1) * 257).astype(np.uint16)
  assert D.detect(grey16) is not None


@given(st.lists(st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False).filter(
    lambda v: v == 0 or abs(v) > 1e-30), min_size=2,
                max_size=40, unique=True))
def test_log_odds_never_collapse_and_keep_order(zs):
  z = np.sort(np.asarray(zs, np.float64))
  b = np.asarray(cues_lib.bound_log_odds(z.astype(np.float32)), np.float64)
  p = 1.0 / (1.0 + np.exp(-b))
  assert np.all((p > 0) & (p < 1))
  assert np.all(np.abs(b) <= cues_lib.LOG_ODDS_BOUND)
  # non-decreasing everywhere; strictly increasing where float32 resolves the step (the
  # bound's slope falls to 0.05 at |z| = 60)
  assert np.all(np.diff(b) >= 0)
  z32 = z.astype(np.float64)
  resolved = (np.diff(z32) > 1e-3 * np.maximum(1.0, np.abs(z32[1:]))) & (np.abs(z32[1:]) < 60)
  assert np.all(np.diff(b)[resolved] > 0)


@given(st.floats(-25, 25), st.floats(-25, 25))
def test_still_fusion_ignores_lighting(zc, zt):
  pc, pt = 1 / (1 + math.exp(-zc)), 1 / (1 + math.exp(-zt))
  cfg = ImageFusionConfig(insufficient_combine="mean", colour_preset=0.0, texture_preset=0.0)
  a = fuse_image(pc, pt, None, 1, 0.0, cfg)
  b = fuse_image(pc, pt, 0.001, 1, 0.0, cfg)  # one frame: lighting accuracy 0
  assert a.branch == b.branch == "no_lighting_mean" and a.discarded == "lighting"
  assert a.probability == pytest.approx(b.probability)
  # Reference: the mean of the exact log-odds of the float probabilities passed in (pc, pt
  # are roundings of sigmoid(zc), sigmoid(zt): near 0 or 1 their log-odds differ from zc, zt
  # by far more than 1e-9, so the reference is computed from them in 50-digit decimals).
  with decimal.localcontext() as ctx:
    ctx.prec = 50
    lo = [(decimal.Decimal(q) / (1 - decimal.Decimal(q))).ln() for q in (pc, pt)]
    ref = 1 / (1 + ((-(lo[0] + lo[1]) / 2).exp()))
  assert a.probability == pytest.approx(float(ref), rel=1e-9)
  assert 0 < a.probability < 1
  m = fuse_image(pc, pt, None, 1, 0.0, ImageFusionConfig(colour_preset=0.0, texture_preset=0.0))
  assert m.branch == "no_lighting_min" and m.probability == pytest.approx(min(pc, pt))
