"""Image loading/saving: formats, bit depths, and clear errors on bad files."""

import os

import numpy as np
import pytest
from PIL import Image

from palmjax.errors import InputError
from palmjax.io import atomic_path, list_images, load_image, save_image


def test_png_8bit_rgb_roundtrip(tmp_path):
  rng = np.random.default_rng(0)
  u8 = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
  Image.fromarray(u8).save(tmp_path / "a.png")
  img = load_image(tmp_path / "a.png")
  assert img.bit_depth == 8 and img.pixels.dtype == np.float32
  np.testing.assert_array_equal(np.round(img.pixels * 255).astype(np.uint8), u8)
  save_image(tmp_path / "b.png", img.pixels)
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), u8)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grey_roundtrip(tmp_path, suffix):
  rng = np.random.default_rng(1)
  u16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
  Image.fromarray(u16).save(tmp_path / f"a{suffix}")
  img = load_image(tmp_path / f"a{suffix}")
  assert img.bit_depth == 16 and img.pixels.shape == (9, 11, 1)
  np.testing.assert_array_equal(np.round(img.pixels[..., 0] * 65535).astype(np.uint16), u16)
  save_image(tmp_path / "b.png", img.pixels, bit_depth=16)
  back = np.asarray(Image.open(tmp_path / "b.png"))
  np.testing.assert_array_equal(back.astype(np.uint16), u16)


def test_npy_and_channel_conversion(tmp_path):
  x = np.linspace(0, 1, 24, dtype=np.float32).reshape(2, 4, 3)
  np.save(tmp_path / "a.npy", x)
  img = load_image(tmp_path / "a.npy", channels=1)
  expect = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
  np.testing.assert_allclose(img.pixels[..., 0], expect, rtol=1e-6)
  grey = load_image(tmp_path / "a.npy", channels=1)
  np.save(tmp_path / "g.npy", grey.pixels[..., 0])
  assert load_image(tmp_path / "g.npy", channels=3).pixels.shape == (2, 4, 3)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello, not an image"), "not an image"),
    (lambda p: np.save(p.with_suffix(".npy"), np.array([[np.nan, 0.5]], np.float32)), "NaN"),
    (lambda p: np.save(p.with_suffix(".npy"), np.array([[2.0, 0.5]], np.float32)), "[0, 1]"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((0, 3), np.uint8)), "zero size"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((2, 3, 5), np.uint8)), "grey or colour"),
])
def test_bad_files_name_file_and_problem(tmp_path, make, message):
  p = tmp_path / "bad.png"
  make(p)
  target = p if p.exists() else p.with_suffix(".npy")
  with pytest.raises(InputError) as e:
    load_image(target)
  assert str(target) in str(e.value) and message in str(e.value)


def test_truncated_png(tmp_path):
  rng = np.random.default_rng(2)
  Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "a.png")
  data = (tmp_path / "a.png").read_bytes()
  (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
  with pytest.raises(InputError, match="corrupt or truncated"):
    load_image(tmp_path / "t.png")


def test_missing_small_and_directory(tmp_path):
  with pytest.raises(InputError, match="no such file"):
    load_image(tmp_path / "nope.png")
  with pytest.raises(InputError, match="is a directory"):
    load_image(tmp_path)
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "s.png")
  with pytest.raises(InputError, match="at least 17x17"):
    load_image(tmp_path / "s.png", min_size=17)
  with pytest.raises(InputError, match="unsupported file type"):
    (tmp_path / "x.gifx").write_bytes(b"123")
    load_image(tmp_path / "x.gifx")
  with pytest.raises(InputError, match="holds no image files"):
    list_images(_empty_dir(tmp_path))


def _empty_dir(tmp_path):
  d = tmp_path / "empty"
  d.mkdir()
  return d


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
  target = tmp_path / "f.txt"
  target.write_text("old")
  with pytest.raises(RuntimeError):
    with atomic_path(target) as tmp:
      with open(tmp, "w") as f:
        f.write("half")
      raise RuntimeError("crash while writing")
  assert target.read_text() == "old"
  assert sorted(os.listdir(tmp_path)) == ["f.txt"]
  with atomic_path(target) as tmp:
    with open(tmp, "w") as f:
      f.write("new")
  assert target.read_text() == "new"


def test_atomic_writes_respect_the_umask(tmp_path):
  import os

  from palmjax.io import save_image
  old = os.umask(0o027)
  try:
    save_image(str(tmp_path / "a.png"), np.zeros((4, 4, 1), np.float32))
  finally:
    os.umask(old)
  assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o640
