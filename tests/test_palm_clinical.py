"""Clinical input (palmjax.palm.clinical), the quality gate on real-looking captures, and the
``hand_radiographs`` TFDS builder, on small generated radiographs."""

import json
import os

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from radiographs import hand, save_dicom, save_u8
from scipy import ndimage

from palmjax.data.hand_radiographs_tfds import (HandRadiographs, HandRadiographsConfig,
                                                list_radiographs, split_of)
from palmjax.errors import InputError
from palmjax.palm import clinical, quality
from palmjax.palm.quality import check_quality


# ---------------------------------------------------------------------------------------
# Decoding.

def test_dicom_rescale_window_and_monochrome1(tmp_path):
  x, _ = hand(200, 160, 20, 10, 150, background=0.05)
  values = 300.0 + 3000.0 * x  # modality values (e.g. log exposure), bone high
  slope, intercept = 2.0, -100.0
  stored = np.round((values - intercept) / slope)
  save_dicom(tmp_path / "m2.dcm", stored, slope=slope, intercept=intercept, bits=12)
  got, rec = clinical.read_radiograph(tmp_path / "m2.dcm")
  assert rec["format"] == "dicom" and rec["rescale"] == [slope, intercept]
  assert rec["inverted"] is False and rec["bit_depth"] == 12
  modality = stored * slope + intercept  # NumPy reference of the Modality LUT
  lo, hi = np.percentile(modality, (0.5, 99.5))
  assert rec["window"]["low"] == pytest.approx(lo) and rec["window"]["high"] == pytest.approx(hi)
  np.testing.assert_allclose(got, np.clip((modality - lo) / (hi - lo), 0, 1), atol=1e-6)
  # MONOCHROME1 (bone dark, stored inverted) reads back as the same picture, inverted.
  save_dicom(tmp_path / "m1.dcm", 4095 - stored, photometric="MONOCHROME1", bits=12)
  got1, rec1 = clinical.read_radiograph(tmp_path / "m1.dcm")
  assert rec1["inverted"] is True and rec1["rescale"] == [1.0, 0.0]
  np.testing.assert_allclose(got1, got, atol=1e-6)
  # A VOI window in the file is used as it is.
  save_dicom(tmp_path / "w.dcm", stored, window=(2000, 1000))
  gw, rw = clinical.read_radiograph(tmp_path / "w.dcm")
  assert rw["window"] == {"low": 1500.0, "high": 2500.0, "from": "dicom VOI"}
  np.testing.assert_allclose(gw, np.clip((stored - 1500) / 1000, 0, 1), atol=1e-6)
  # RGB DICOM: grey stored as RGB is read as grey; a colour one is refused.
  rgb = np.repeat(np.round(255 * x)[..., None], 3, -1)
  save_dicom(tmp_path / "rgb.dcm", rgb)
  grey, rrgb = clinical.read_radiograph(tmp_path / "rgb.dcm")
  assert rrgb["colour"] == "grey stored as RGB" and rrgb["photometric"] == "RGB"
  np.testing.assert_allclose(grey, np.round(255 * x) / 255, atol=1e-6)
  rgb[..., 2] = 255 - rgb[..., 2]
  save_dicom(tmp_path / "colour.dcm", rgb)
  with pytest.raises(InputError, match="colour.dcm: a colour image"):
    clinical.read_radiograph(tmp_path / "colour.dcm")
  # A file without the .dcm suffix is recognised by its DICM magic.
  os.rename(tmp_path / "m2.dcm", tmp_path / "m2")
  np.testing.assert_array_equal(clinical.read_radiograph(tmp_path / "m2")[0], got)
  cap, crec = clinical.load_radiograph(tmp_path / "m2")
  assert cap.shape == (64, 64, 1) and crec["hand_found"] and crec["original_size"] == [200, 160]


def test_corrupt_empty_and_non_image_dicom_are_one_clear_error(tmp_path):
  x, _ = hand(64, 64, 4, 4, 56)
  save_dicom(tmp_path / "ok.dcm", np.round(4095 * x))
  data = (tmp_path / "ok.dcm").read_bytes()
  (tmp_path / "trunc.dcm").write_bytes(data[:len(data) // 2])
  (tmp_path / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x07" * 50)
  (tmp_path / "empty.dcm").write_bytes(b"")
  for name, msg in (("trunc.dcm", "corrupt or unreadable DICOM"),
                    ("junk.dcm", "corrupt or unreadable DICOM"), ("empty.dcm", "empty file"),
                    ("missing.dcm", "no such file")):
    with pytest.raises(InputError, match=msg) as e:
      clinical.load_capture(tmp_path / name)
    assert "\n" not in str(e.value) and name in str(e.value)


def test_png_8_and_16_bit_and_grey_as_rgb(tmp_path):
  x, _ = hand(300, 240, 30, 20, 220, background=0.02)
  save_u8(tmp_path / "g8.png", x)
  Image.fromarray(np.round(x * 65535).astype(np.uint16)).save(tmp_path / "g16.png")
  # 12-bit detector data in a 16-bit container: scaled by its significant bits.
  Image.fromarray(np.round(x * 4095).astype(np.uint16)).save(tmp_path / "g12.png")
  rgb = np.repeat(np.round(x * 255).astype(np.uint8)[..., None], 3, -1)
  Image.fromarray(rgb).save(tmp_path / "rgb.png")
  Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
  ref = clinical.read_radiograph(tmp_path / "g16.png")[0]
  np.testing.assert_allclose(ref, x, atol=1 / 65535)
  for name, atol, depth in (("g8.png", 0.5 / 255 + 1e-6, 8), ("g12.png", 0.5 / 4095 + 1e-6, 16),
                            ("rgb.png", 0.5 / 255 + 1e-6, 8), ("rgb.jpg", 0.03, 8)):
    got, rec = clinical.read_radiograph(tmp_path / name)
    assert rec["bit_depth"] == depth
    np.testing.assert_allclose(got, x, atol=atol, err_msg=name)
  assert clinical.read_radiograph(tmp_path / "g12.png")[1]["significant_bits"] == 12
  assert clinical.read_radiograph(tmp_path / "rgb.png")[1]["colour"] == "grey stored as RGB"
  caps = [clinical.load_radiograph(tmp_path / n)[0] for n in ("g8.png", "g16.png", "rgb.jpg")]
  np.testing.assert_allclose(caps[0], caps[1], atol=1 / 255)
  np.testing.assert_allclose(caps[2], caps[1], atol=0.02)
  # A true colour photo is refused, naming the problem.
  photo = rgb.copy()
  photo[..., 0] = np.clip(photo[..., 0].astype(int) + 60, 0, 255)
  Image.fromarray(photo).save(tmp_path / "photo.png")
  with pytest.raises(InputError, match="photo.png: a colour image"):
    clinical.load_capture(tmp_path / "photo.png")


# ---------------------------------------------------------------------------------------
# Finding the hand.

def _mask_box(mask):
  ys, xs = np.nonzero(mask)
  return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1


def test_wide_frame_small_hand_with_marker_and_collimator_edge(tmp_path):
  h, w = 480, 1200
  x, soft = hand(h, w, 200, 700, 260, background=0.0)
  clean = x.copy()
  x[40:90, 100:140] = 0.95  # a lead side marker ("L"), well away from the hand
  x[300:310, 150:200] = 0.9  # burnt-in text
  x[:, 3:6] = 0.8  # a collimator edge along the left border
  save_u8(tmp_path / "wide.png", x)
  cap, rec = clinical.load_capture(tmp_path / "wide.png")
  assert rec["clinical"] and rec["hand_found"] and rec["blobs_ignored"] >= 1  # the marker
  top, left, bottom, right = _mask_box(soft)
  tol = 0.02 * w  # the working copy is 256 px wide: ~5 input px per working px
  assert abs(rec["hand_box"][1] - left) <= tol and abs(rec["hand_box"][3] - right) <= tol
  assert abs(rec["hand_box"][0] - top) <= tol and rec["hand_box"][2] == h
  # The crop: a square of the hand's long side plus the margin, centred on the hand.
  side = rec["crop_box"][2] - rec["crop_box"][0]
  assert side == rec["crop_box"][3] - rec["crop_box"][1]
  assert side == pytest.approx((rec["hand_box"][2] - rec["hand_box"][0]) * 1.12, abs=2)
  assert rec["scale"] == pytest.approx(64 / side)
  # Same capture as without marker, text and edge (they lie outside the crop).
  cap_clean, _ = clinical.preprocess(np.round(clean * 255) / 255)
  np.testing.assert_allclose(cap, cap_clean, atol=1e-5)
  # Reference for the resampling: the crop, padded below with the background, area-
  # averaged by an integer factor where the crop side is a multiple of 64.
  y0, x0, y1, x1 = rec["crop_box"]
  q = np.round(clean * 255) / 255
  padded = np.pad(q, ((0, max(0, y1 - h)), (0, 0)))[y0:y1, x0:x1]
  if side % 64 == 0:
    k = side // 64
    ref = padded.reshape(64, k, 64, k).mean(axis=(1, 3))
    np.testing.assert_allclose(cap[..., 0], ref, atol=1e-5)
  # The hand spans most of the capture and passes the gate.
  r = check_quality(cap)[0]
  assert r.ok, r.reason
  assert r.measures["extent"] > 0.8


@settings(max_examples=25, deadline=None)
@given(h=st.integers(20, 90), w=st.integers(20, 90), top=st.integers(-10, 60),
       left=st.integers(-10, 60), bh=st.integers(16, 50), bw=st.integers(16, 50),
       size=st.sampled_from([8, 16]), bg=st.floats(0, 0.5))
def test_crop_is_a_padded_square_area_average(h, w, top, left, bh, bw, size, bg):
  # Down-sampling (the crop side >= the capture side), as for any real radiograph.
  rng = np.random.default_rng(h * 1000 + w)
  x = rng.random((h, w)).astype(np.float32)
  cfg = clinical.ClinicalConfig(size=size, margin=0.0)
  box = (top, left, top + bh, left + bw)
  out, rec = clinical.crop_to_capture(x, box, bg, cfg)
  y0, x0, y1, x1 = rec["crop_box"]
  side = max(bh, bw)
  assert y1 - y0 == x1 - x0 == side and rec["scale"] == pytest.approx(size / side)
  assert y0 <= top and x0 <= left and y1 >= top + bh and x1 >= left + bw
  # Reference: the square cut from the image padded with bg (NumPy), resampled by
  # OpenCV's exact area interpolation.
  big = np.full((h + 2 * 200, w + 2 * 200), bg, np.float32)
  big[200:200 + h, 200:200 + w] = x
  sq = big[y0 + 200:y1 + 200, x0 + 200:x1 + 200]
  np.testing.assert_allclose(out, cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA),
                             atol=1e-5)
  assert rec["padded"] == (y0 < 0 or x0 < 0 or y1 > h or x1 > w)


def test_no_hand_keeps_the_whole_frame_and_the_gate_refuses_it(tmp_path):
  save_u8(tmp_path / "flat.png", np.full((50, 80), 0.3, np.float32))
  cap, rec = clinical.load_capture(tmp_path / "flat.png")
  assert not rec["hand_found"] and rec["crop_box"] == [-15, 0, 65, 80] and rec["padded"]
  assert check_quality(cap)[0].reason.startswith("empty")


def test_capture_sized_file_is_used_as_it_is(tmp_path):
  x = np.random.default_rng(0).random((64, 64)).astype(np.float32) * 0.4
  Image.fromarray(np.round(x * 65535).astype(np.uint16)).save(tmp_path / "c.png")
  cap, rec = clinical.load_capture(tmp_path / "c.png")
  assert rec == {"clinical": False, "format": "png", "bit_depth": 16, "colour": "grey",
                 "original_size": [64, 64]}
  np.testing.assert_allclose(cap[..., 0], x, atol=1 / 65535)  # no re-scaling of its bits


# ---------------------------------------------------------------------------------------
# Quality gate on real-looking captures.

def _capture(**kw):
  x, soft = hand(64, 64, kw.pop("top", 6), kw.pop("left", 6), kw.pop("side", 52), **kw)
  return x[..., None], soft


def test_gate_black_background_is_not_saturation():
  x, soft = _capture(background=0.0, noise=0.0)
  x = np.where(x < 0.02, 0.0, x).astype(np.float32)  # masked to black, as clinical exports
  assert np.mean(x == 0) > 0.5
  r = check_quality(x)[0]
  assert r.ok, r.reason
  assert r.measures["saturated"] == 0.0
  # Bright clipping inside the hand still counts: as a share of the hand's pixels.
  y = x.copy()
  y[soft] = 1.0
  r = check_quality(y)[0]
  assert not r.ok and "over-exposed" in r.reason
  mask = np.asarray(quality.hand_mask(y[None], quality.field_of_view(y[None])))[0]
  assert r.measures["saturated"] == pytest.approx(np.mean(y[..., 0][mask] >= 1 - 1e-3))


def test_gate_border_survives_a_background_gradient_but_sees_a_cut_hand():
  x, _ = _capture(background=0.05, ramp=0.3)  # one side of the background brighter
  assert x[0, -1, 0] > x[30, 20, 0]  # ... than the hand's soft tissue on the other side
  r = check_quality(x)[0]
  assert r.ok, r.reason
  assert r.measures["border"] == 0.0
  # Cut through the palm (the top border runs across it).
  cut, _ = _capture(background=0.05, ramp=0.3, top=-40, left=-8, side=80)
  r = check_quality(cut)[0]
  assert not r.ok and "incomplete" in r.reason


def test_gate_coverage_is_the_hands_extent():
  # A thin hand (few pixels: two bony rays) spanning the frame is in view; a tiny one is not.
  thin = np.zeros((64, 64, 1), np.float32)
  thin[6:60, 20] = 0.6
  thin[10:60, 40] = 0.5
  m = quality.quality_measures(thin[None])
  assert float(m["coverage"][0]) < 0.08 and float(m["extent"][0]) == pytest.approx(54 / 64, abs=2 / 64)
  assert "no hand" not in check_quality(thin)[0].reason
  small, _ = _capture(background=0.0, top=50, left=4, side=12)
  r = check_quality(small)[0]
  assert not r.ok and "no hand in view" in r.reason


def test_plane_fit_and_opening_match_numpy_scipy():
  rng = np.random.default_rng(0)
  g = rng.normal(0, 0.01, (2, 20, 30)) + np.linspace(0, 1, 30)[None, None] * [[[0.3]], [[-0.2]]]
  w = (rng.random(g.shape) > 0.3).astype(np.float32)
  got = np.asarray(quality._plane_fit(jnp.asarray(g, jnp.float32), jnp.asarray(w)))
  v, u = np.meshgrid(np.linspace(-1, 1, 20), np.linspace(-1, 1, 30), indexing="ij")
  for i in range(2):
    a = np.stack([np.ones(u.size), u.ravel(), v.ravel()], 1)
    sw = np.sqrt(w[i].ravel())
    coef = np.linalg.lstsq(a * sw[:, None], g[i].ravel() * sw, rcond=None)[0]
    np.testing.assert_allclose(got[i], (a @ coef).reshape(20, 30), atol=1e-4)
  m = rng.random((3, 24, 24)) > 0.35
  ref = np.stack([ndimage.binary_dilation(ndimage.binary_erosion(k, np.ones((3, 3)),
                                                                 border_value=1),
                                          np.ones((3, 3))) for k in m])
  np.testing.assert_array_equal(np.asarray(quality._open3(jnp.asarray(m))), ref)


# ---------------------------------------------------------------------------------------
# The hand_radiographs builder.

def _fixture_tree(root):
  """Two sources: ``clinic_a`` (PNG, one per subject) and ``clinic_b`` (DICOM, TIFF)."""
  os.makedirs(root / "clinic_a" / "images")
  os.makedirs(root / "clinic_b")
  for i in range(10):
    x, _ = hand(120 + 4 * i, 100, 10, 5, 90, background=0.02, seed=i)
    save_u8(root / "clinic_a" / "images" / f"{1000 + i}.png", x)
  for i in range(3):
    x, _ = hand(96, 128, 8, 20, 80, seed=20 + i)
    save_dicom(root / "clinic_b" / f"b{i}.dcm", np.round(4095 * x), bits=12)
  x, _ = hand(100, 100, 5, 5, 90, seed=30)
  Image.fromarray(np.round(x * 65535).astype(np.uint16)).save(root / "clinic_b" / "b3.tif")
  (root / "clinic_b" / "notes.txt").write_text("not an image")


def test_split_is_a_deterministic_hash_with_the_documented_fractions():
  names = [split_of("s", f"{i}") for i in range(4000)]
  assert names == [split_of("s", f"{i}") for i in range(4000)]
  share = {k: names.count(k) / len(names) for k in ("train", "validation", "test")}
  assert share["train"] == pytest.approx(0.70, abs=0.03)
  assert share["validation"] == pytest.approx(0.15, abs=0.03)
  assert share["test"] == pytest.approx(0.15, abs=0.03)
  held = [split_of("s", f"{i}", holdout_source="s") for i in range(50)]
  assert set(held) == {"test"}
  assert "test" not in {split_of("t", f"{i}", holdout_source="s") for i in range(300)}


def test_hand_radiographs_builder_on_a_fixture(tmp_path):
  root = tmp_path / "manual"
  _fixture_tree(root)
  items = list_radiographs(root)
  assert len(items) == 14 and {s for _, s, _ in items} == {"clinic_a", "clinic_b"}
  dl = tfds.download.DownloadConfig(manual_dir=str(root))
  b = HandRadiographs(data_dir=str(tmp_path / "d1"))
  b.download_and_prepare(download_config=dl)
  seen = {}
  for split in b.info.splits:
    ds = b.as_data_source(split=split)
    for i in range(len(ds)):
      ex = ds[i]
      key = (ex["source"].decode(), ex["subject"].decode())
      assert key not in seen  # one file per subject here: each exactly once
      seen[key] = split
      assert split == split_of(*key)
      assert ex["label"] == 1 and ex["image"].dtype == np.uint16
      assert ex["image"].shape == (64, 64, 1)
      rec = json.loads(ex["record"].decode())
      ref, ref_rec = clinical.load_radiograph(root / ex["path"].decode())
      np.testing.assert_array_equal(ex["image"], np.round(ref * 65535).astype(np.uint16))
      assert list(ex["original_size"]) == ref_rec["original_size"] == rec["original_size"]
      assert list(ex["crop_box"]) == rec["crop_box"]
  assert len(seen) == 14
  # Deterministic: a second build elsewhere gives the same splits and pixels.
  b2 = HandRadiographs(data_dir=str(tmp_path / "d2"))
  b2.download_and_prepare(download_config=dl)
  for split in b.info.splits:
    d1, d2 = b.as_data_source(split=split), b2.as_data_source(split=split)
    assert len(d1) == len(d2)
    by_path = {d2[i]["path"]: d2[i]["image"] for i in range(len(d2))}
    for i in range(len(d1)):
      np.testing.assert_array_equal(d1[i]["image"], by_path[d1[i]["path"]])
  # A whole source held out as the test split.
  cfg = HandRadiographsConfig(name="holdout_b", holdout_source="clinic_b")
  b3 = HandRadiographs(config=cfg, data_dir=str(tmp_path / "d3"))
  b3.download_and_prepare(download_config=dl)
  test = b3.as_data_source(split="test")
  assert {test[i]["source"] for i in range(len(test))} == {b"clinic_b"} and len(test) == 4
  # Sources sharing patient ids: a held-out patient seen through another source stays out
  # of train / validation.
  x, _ = hand(120, 100, 10, 5, 90, seed=40)
  save_dicom(root / "clinic_b" / "1003.dcm", np.round(4095 * x), bits=12)
  cfg = HandRadiographsConfig(name="holdout_b_shared", holdout_source="clinic_b",
                              shared_subjects=True)
  b5 = HandRadiographs(config=cfg, data_dir=str(tmp_path / "d5"))
  b5.download_and_prepare(download_config=dl)
  rest = [b5.as_data_source(split=s) for s in b5.info.splits if s != "test"]
  subjects = {d[i]["subject"] for d in rest for i in range(len(d))}
  assert len(subjects) == 9 and b"1003" not in subjects
  assert len(b5.as_data_source(split="test")) == 5
  assert split_of("a", "7", shared_subjects=True) == split_of("b", "7", shared_subjects=True)
  bad = HandRadiographs(config=HandRadiographsConfig(name="x", holdout_source="nope"),
                        data_dir=str(tmp_path / "d4"))
  with pytest.raises(InputError, match="'nope' is not among the sources"):
    bad.download_and_prepare(download_config=dl)


def _collimate(x, top, left, right, level):
  """Shutter bands at ``level`` along the top, left and right edges of ``x [H, W, 1]``."""
  y = x.copy()
  y[:top], y[:, :left] = level, level
  y[:, y.shape[1] - right:] = level
  return y


@settings(max_examples=12, deadline=None)
@given(top=st.integers(0, 8), left=st.integers(0, 12), right=st.integers(0, 12),
       field=st.floats(0.12, 0.3), band=st.sampled_from([0.0, 1.0]))
def test_gate_collimated_field_is_measured_inside_the_field(top, left, right, field, band):
  # A whole hand on a grey open field, the shutters as uniform bands (black, or white as
  # unexposed film is displayed): the field is background, the bands are not hand.
  x, _ = _capture(background=field, top=top + 4, left=left + 2,
                  side=min(64 - left - right - 4, 64 - top - 6))
  y = _collimate(x, top, left, right, band)
  fov = np.asarray(quality.field_of_view(y[None]))[0]
  expect = np.zeros((64, 64), bool)
  expect[top:, left:64 - right] = True
  np.testing.assert_array_equal(fov, expect)
  r = check_quality(y)[0]
  assert r.ok, r.reason
  assert r.measures["border"] < 0.6
  # The same field with the palm cut by the top shutter (black) is incomplete.
  cut, _ = _capture(background=field, top=-44, left=-8, side=80)
  r = check_quality(_collimate(cut, max(top, 4), left, right, 0.0))[0]
  assert not r.ok and "incomplete" in r.reason


@pytest.mark.parametrize("band", [0.0, 1.0])
def test_gate_palm_cut_by_a_top_shutter_alone_is_incomplete(band):
  # No side shutters: the grey background beside a hand that fills the field's middle is
  # the frame's darkest level and ends in the palm's straight edge, but it is not at the
  # top band's level (one collimator, one display), so it is not taken for side bands.
  cut, _ = _capture(background=0.2, top=-44, left=-8, side=80)
  y = _collimate(cut, 4, 0, 0, band)
  fov = np.asarray(quality.field_of_view(y[None]))[0]
  expect = np.zeros((64, 64), bool)
  expect[4:] = True
  np.testing.assert_array_equal(fov, expect)
  r = check_quality(y)[0]
  assert not r.ok and "incomplete" in r.reason


def _on_plate(x, left, right, bottom, plate, surround, angle, seed=0):
  """``x`` (a capture whose background is the plate's level ``plate``) on a plate tilted by
  ``angle`` degrees, the frame outside it at ``surround``: the plate runs off the top edge,
  about ``left`` / ``right`` / ``bottom`` px of the frame show around it. Everything on the
  plate keeps its brightness relative to the plate (the plate adds a level where it lies)."""
  h, w = x.shape[:2]
  yy, xx = np.mgrid[0:h, 0:w] + 0.5
  t = np.deg2rad(angle)
  u = (xx - w / 2) * np.cos(t) + (yy - h / 2) * np.sin(t)   # plate coordinates
  v = -(xx - w / 2) * np.sin(t) + (yy - h / 2) * np.cos(t)
  on = (u > left - w / 2) & (u < w / 2 - right) & (v < h / 2 - bottom)
  y = x + np.where(on, 0.0, surround - plate)[..., None].astype(np.float32)
  y += np.random.default_rng(seed).normal(0, 0.004, y.shape).astype(np.float32)
  return np.clip(y, 0, 1)


@settings(max_examples=20, deadline=None)
@given(left=st.integers(5, 10), right=st.integers(5, 10), bottom=st.integers(0, 8),
       plate=st.floats(0.12, 0.3), surround=st.floats(0.0, 0.05),
       angle=st.floats(-4.0, 4.0).filter(lambda a: abs(a) > 1.5), seed=st.integers(0, 99))
def test_gate_hand_on_a_plate_is_measured_on_the_hand(left, right, bottom, plate, surround,
                                                      angle, seed):
  # A hand on a tilted film / cassette plate lighter than the frame around it, the plate
  # running off the top edge: the plate is background, not a hand touching the border or
  # filling the view.
  side = min(64 - left - right - 12, 64 - bottom - 14)
  x, _ = _capture(background=plate, top=6, left=left + 6, side=side, seed=seed)
  y = _on_plate(x, left, right, bottom, plate, surround, angle, seed)
  r = check_quality(y)[0]
  assert r.ok, r.reason
  assert r.measures["border"] < 0.6 and r.measures["coverage"] < 0.5
  # The hand's mask (in the open field, as the gate takes it) holds the hand found without
  # the frame around the plate; with the coverage above, not the plate. (Part of the plate
  # may stay in it where the frame shows on two sides only: a plane is a poor model of
  # that background, and the plate rule needs the whole plate in the first mask.)
  got = np.asarray(quality.hand_mask(y[None], quality.field_of_view(y[None])))[0]
  ref = np.asarray(quality.hand_mask(x[None]))[0]
  assert np.sum(got & ref) / np.sum(ref) > 0.9
  # An empty plate is refused ("no hand in view" when the plate rule takes it, else as a
  # plate filling the view or touching the border).
  empty = _on_plate(np.full_like(x, plate), left, right, bottom, plate, surround, angle, seed)
  assert not check_quality(empty)[0].ok
  # A hand cut by the top edge on a plate is incomplete.
  cut, _ = _capture(background=plate, top=-44, left=-8, side=80, seed=seed)
  r = check_quality(_on_plate(cut, left, right, bottom, plate, surround, angle, seed))[0]
  assert not r.ok and "incomplete" in r.reason, r.reason


def test_gate_empty_tilted_plate_holds_no_hand():
  # A tilted empty plate whose margins are narrow enough to be taken for collimator
  # bands: inside that field, the plate is flat and nothing stands above it.
  empty = _on_plate(np.full((64, 64, 1), 0.25, np.float32), 5, 5, 0, 0.25, 0.0, 3.0, 8)
  assert not np.asarray(quality.field_of_view(empty[None])).all()
  r = check_quality(empty)[0]
  assert not r.ok and "no hand in view" in r.reason, r.reason


@pytest.mark.parametrize("band", [0.0, 1.0])
def test_gate_empty_collimated_field_is_empty(band):
  # The shutters' contrast with the field is not the capture's: an empty open field is
  # "empty or uniform" however sharp the bands around it.
  field = 0.2 + np.random.default_rng(0).normal(0, 0.004, (64, 64, 1)).astype(np.float32)
  y = _collimate(field, 6, 8, 8, band)
  r = check_quality(y)[0]
  assert not r.ok and r.reason.startswith("empty"), r.reason
  assert r.measures["contrast"] == pytest.approx(np.std(field[6:, 8:56]), rel=1e-4)


def test_masked_black_background_is_not_a_collimator_band():
  x, _ = _capture(background=0.0, noise=0.0, top=10, left=10, side=44)
  x = np.where(x < 0.02, 0.0, x).astype(np.float32)
  assert np.asarray(quality.field_of_view(x[None])).all()


def test_load_splits_and_real_lives_in_the_data_path(tmp_path):
  from palmjax.data.hand_radiographs_tfds import load_splits
  from palmjax.data.palm_xray import LIVE, PRINTED_RADIOGRAPH
  from palmjax.palm import train as palm_train
  root = tmp_path / "manual"
  _fixture_tree(root)
  real = load_splits(root, tmp_path / "d", config="shared")
  b = HandRadiographs(config="shared", data_dir=str(tmp_path / "d"))
  for split, d in real.items():
    ds = b.as_data_source(split=split)
    assert len(d["lr"]) == len(ds) and d["lr"].dtype == np.float32
    np.testing.assert_array_equal(d["lr"][0], ds[0]["image"] / np.float32(65535))
    for s, subj in zip(d["source"], d["subject"]):
      assert split == split_of(s, subj, shared_subjects=True)
  if "validation" not in real:  # the 14 fixture subjects may leave a split empty
    real["validation"] = {k: v[:1] for k, v in real["train"].items()}
  cfg = palm_train.PalmTrainConfig(input="lr")
  n_tr, n_va = len(real["train"]["lr"]), len(real["validation"]["lr"])
  splits = {"train": {"label": np.zeros(5, np.int32)},
            "validation": {"image": np.zeros((4, 64, 64, 1), np.float32),
                           "label": np.zeros(4, np.int32), "attack": np.ones(4, np.int32)}}
  extra = palm_train.add_real_lives(cfg, splits, real, jax.random.key(0), repeat=2)
  assert extra["image"].shape == (3 * n_tr, 64, 64, 1)
  np.testing.assert_array_equal(extra["label"], [1] * (2 * n_tr) + [0] * n_tr)
  np.testing.assert_array_equal(extra["image"][:n_tr], real["train"]["lr"])  # lr input
  assert not np.allclose(extra["image"][2 * n_tr:], real["train"]["lr"])  # re-captured
  va = splits["validation"]
  np.testing.assert_array_equal(va["label"], [0] * 4 + [1] * n_va + [0] * n_va)
  np.testing.assert_array_equal(va["attack"][4:], [LIVE] * n_va + [PRINTED_RADIOGRAPH] * n_va)
  lives_only = palm_train.add_real_lives(cfg, {"train": splits["train"], "validation": {
      "image": va["image"][:4], "label": va["label"][:4], "attack": va["attack"][:4]}}, real,
      jax.random.key(0), repeat=1, recaptures=False)
  np.testing.assert_array_equal(lives_only["label"], [1] * n_tr)
