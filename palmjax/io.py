"""Image and file I/O: loading 8/16-bit images with clear errors, atomic writes.

All loaders return ``float32`` arrays ``[H, W, C]`` scaled to ``[0, 1]`` by the file's bit
depth, together with that bit depth so a writer can keep it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import tempfile
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from palmjax.errors import InputError, check_image_array

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
ARRAY_SUFFIXES = (".npy",)


@dataclasses.dataclass(frozen=True)
class LoadedImage:
  """A decoded image: pixels in [0, 1] as float32 ``[H, W, C]`` and the source bit depth."""

  pixels: np.ndarray
  bit_depth: int
  path: str


def _scale_integer(arr: np.ndarray, path: str) -> tuple[np.ndarray, int]:
  if arr.dtype == np.uint8:
    return arr.astype(np.float32) / 255.0, 8
  if arr.dtype in (np.uint16, np.int32, np.int64, np.int16) and arr.dtype != np.uint8:
    if arr.min() < 0 or arr.max() > 65535:
      raise InputError(f"{path}: integer pixel values outside 0..65535 "
                       f"(min {arr.min()}, max {arr.max()})")
    return arr.astype(np.float32) / 65535.0, 16
  if arr.dtype == bool:
    return arr.astype(np.float32), 1
  raise InputError(f"{path}: unsupported pixel dtype {arr.dtype}; expected 8- or 16-bit")


def _check_unit_float(arr: np.ndarray, path: str) -> np.ndarray:
  """Float images must hold finite values in [0, 1]."""
  if arr.size == 0:
    raise InputError(f"{path}: image has zero size {arr.shape}")
  if not np.all(np.isfinite(arr)):
    raise InputError(f"{path}: image holds NaN/inf values")
  if arr.min() < 0 or arr.max() > 1:
    raise InputError(f"{path}: float image values must lie in [0, 1] "
                     f"(min {arr.min():.4g}, max {arr.max():.4g})")
  return arr


def max_pixels() -> int:
  """Largest image (width x height) any loader decodes: ``PALMJAX_MAX_PIXELS`` in the
  environment, default 100 million (a 10000 x 10000 image, 400 MB as float32)."""
  v = os.environ.get("PALMJAX_MAX_PIXELS", "")
  try:
    return int(float(v)) if v else 100_000_000
  except ValueError:
    raise InputError(f"PALMJAX_MAX_PIXELS={v!r} is not a number") from None


def _decode_pil(path: str) -> tuple[np.ndarray, int]:
  limit = max_pixels()
  try:
    with Image.open(path) as im:
      w, h = im.size
      if w * h > limit:
        raise InputError(f"{path}: image is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), "
                         f"more than the {limit / 1e6:.0f} megapixel limit (set "
                         "PALMJAX_MAX_PIXELS to raise it)")
      im.load()
      mode = im.mode
      if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.int64 if mode == "I" else np.uint16)
        if mode == "I":
          # PIL opens 16-bit PNGs as mode "I"; values fit in 16 bits.
          arr = arr.astype(np.int64)
        return _scale_integer(arr, path)
      if mode == "F":
        return _check_unit_float(np.asarray(im, dtype=np.float32), path), 32
      if mode in ("1",):
        return np.asarray(im.convert("L"), dtype=np.uint8).astype(np.float32) / 255.0, 8
      if mode not in ("L", "RGB"):
        im = im.convert("RGBA" if "A" in mode or mode == "P" else "RGB")
        if im.mode == "RGBA":
          im = im.convert("RGB")
      arr = np.asarray(im)
      return _scale_integer(arr, path)
  except FileNotFoundError:
    raise InputError(f"{path}: no such file") from None
  except UnidentifiedImageError:
    raise InputError(f"{path}: not an image file (or an unsupported format)") from None
  except Image.DecompressionBombError as e:
    raise InputError(f"{path}: refused as a decompression bomb ({e})") from None
  except InputError:
    raise
  except (OSError, SyntaxError, ValueError) as e:
    raise InputError(f"{path}: corrupt or truncated image ({e})") from None


def _decode_npy(path: str) -> tuple[np.ndarray, int]:
  arr = load_arrays(path, "an image array")
  if not isinstance(arr, np.ndarray):
    raise InputError(f"{path}: an .npz archive, not an .npy image array")
  if arr.dtype.kind == "f":
    return _check_unit_float(arr.astype(np.float32), path), 32
  return _scale_integer(arr, path)


def check_file(path: str | os.PathLike, what: str = "an image") -> str:
  """``path`` as a string if it names a non-empty regular file; else an :class:`InputError`
  naming it (missing, a directory, empty); ``what`` the file should hold, for the message."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise InputError(f"{path}: no such file")
  if os.path.isdir(path):
    raise InputError(f"{path}: is a directory, not {what}")
  if os.path.getsize(path) == 0:
    raise InputError(f"{path}: empty file (expected {what})")
  return path


def load_arrays(path: str | os.PathLike, what: str) -> "np.ndarray | np.lib.npyio.NpzFile":
  """A ``.npy`` array or an ``.npz`` archive, loaded without pickles.

  Raises an :class:`InputError` naming the file and ``what`` it should hold (e.g. "an echo
  recording") for a missing, empty, text, pickled or corrupt file.
  """
  path = check_file(path, what)
  kind = ".npz archive" if path.lower().endswith(".npz") else ".npy array"
  try:
    return np.load(path, allow_pickle=False)
  except Exception:  # noqa: BLE001 - text, pickles, bad zips, bad headers: all bad input
    raise InputError(f"{path}: not a readable NumPy {kind} (corrupt, truncated, text or "
                     f"pickled; expected {what})") from None


def load_image(path: str | os.PathLike, *, channels: int | None = None,
               min_size: int = 1) -> LoadedImage:
  """Loads a PNG/JPEG/BMP/TIFF/NPY image as float32 ``[H, W, C]`` in [0, 1].

  Args:
    path: file to read.
    channels: ``1`` converts colour to grey (BT.601 luma), ``3`` repeats grey into three
      channels, ``None`` keeps what the file has.
    min_size: smallest accepted height/width (e.g. a model's receptive field).

  Raises:
    InputError: naming the file, for a missing, empty, corrupt or truncated file, an
      unsupported format or bit depth, NaN, or an image smaller than ``min_size``.
  """
  path = check_file(path)
  suffix = pathlib.Path(path).suffix.lower()
  if suffix in ARRAY_SUFFIXES:
    arr, depth = _decode_npy(path)
  elif suffix in IMAGE_SUFFIXES or suffix == "":
    arr, depth = _decode_pil(path)
  else:
    raise InputError(f"{path}: unsupported file type {suffix!r}; expected one of "
                     f"{IMAGE_SUFFIXES + ARRAY_SUFFIXES}")
  if arr.ndim == 2:
    arr = arr[..., None]
  if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
    raise InputError(f"{path}: expected a grey or colour image, got array of shape {arr.shape}")
  if arr.shape[-1] == 4:
    arr = arr[..., :3]
  if arr.size == 0:
    raise InputError(f"{path}: image has zero size {arr.shape}")
  check_image_array(arr, path, min_size=min_size)
  if channels == 1 and arr.shape[-1] == 3:
    from palmjax.kernels.color import rgb_to_luma
    arr = np.asarray(rgb_to_luma(arr))
  elif channels == 3 and arr.shape[-1] == 1:
    arr = np.repeat(arr, 3, axis=-1)
  elif channels not in (None, 1, 3):
    raise InputError(f"channels must be 1, 3 or None, got {channels}")
  return LoadedImage(np.ascontiguousarray(arr, dtype=np.float32), depth, path)


def list_images(directory: str | os.PathLike, *, suffixes=IMAGE_SUFFIXES) -> list[str]:
  """Sorted image files in ``directory`` (not recursive); raises if there are none."""
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    raise InputError(f"{directory}: not a directory")
  files = sorted(
      os.path.join(directory, f) for f in os.listdir(directory)
      if pathlib.Path(f).suffix.lower() in suffixes and not f.startswith("."))
  if not files:
    raise InputError(f"{directory}: holds no image files ({', '.join(suffixes)})")
  return files


def _umask() -> int:
  """The process umask (read by setting and restoring it; no other way in Python)."""
  mask = os.umask(0)
  os.umask(mask)
  return mask


def check_output_path(path: str | os.PathLike, *, folder: bool = False) -> str:
  """``path`` as a string if a command can write it; else an :class:`InputError` naming it.

  Refused (before any work is done): an output file that is an existing folder, an output
  folder (``folder=True``) that is an existing file, and a path under a regular file. Call
  it on every output a command will write, before the long part of its work.
  """
  path = os.fspath(path)
  if folder and os.path.exists(path) and not os.path.isdir(path):
    raise InputError(f"{path}: exists and is not a directory")
  if not folder and os.path.isdir(path):
    raise InputError(f"{path}: is a directory; give a file name")
  up = os.path.dirname(os.path.abspath(path))
  while not os.path.exists(up):
    up = os.path.dirname(up)
  if not os.path.isdir(up):
    raise InputError(f"{path}: cannot create it, {up} is a file, not a folder")
  return path


def make_parent_dirs(path: str | os.PathLike) -> str:
  """Checks the output file ``path`` (:func:`check_output_path`), creates the folders above
  it and returns that folder."""
  directory = os.path.dirname(os.path.abspath(check_output_path(path)))
  os.makedirs(directory, exist_ok=True)
  return directory


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
  """Yields a temporary path beside ``path``; renames it onto ``path`` on success.

  A crash or exception leaves ``path`` as it was (never half-written). The file gets the
  permissions any new file gets (``0o666`` less the umask), not ``mkstemp``'s private
  ``0o600``. ``path`` naming a folder, or lying under a regular file, is an
  :class:`InputError` (:func:`make_parent_dirs`).
  """
  path = os.fspath(path)
  directory = make_parent_dirs(path)
  try:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-",
                               suffix=pathlib.Path(path).suffix)
  except OSError as e:  # name the file asked for, not the temporary one
    raise type(e)(e.errno, e.strerror, path) from None
  os.close(fd)
  try:
    yield tmp
    with open(tmp, "rb") as f:
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def _quantize(arr: np.ndarray, dtype: type, rows: int = 256) -> np.ndarray:
  """``round(clip(arr, 0, 1) * max)`` as ``dtype`` (computed in float64), a band of
  ``rows`` rows at a time so that a large image needs no full-size float64 copies."""
  out = np.empty(arr.shape, dtype)
  top = float(np.iinfo(dtype).max)
  for y in range(0, arr.shape[0], rows):
    band = np.clip(arr[y:y + rows].astype(np.float64), 0.0, 1.0)
    out[y:y + rows] = np.round(band * top)
  return out


def save_image(path: str | os.PathLike, pixels: np.ndarray, *, bit_depth: int = 8) -> None:
  """Writes ``pixels`` (float in [0, 1], ``[H, W]`` or ``[H, W, 1|3]``) atomically.

  PNG/TIFF support 8-bit grey/colour and 16-bit grey; 16-bit colour is written as 8-bit.
  """
  arr = check_image_array(pixels, os.fspath(path))
  grey = arr.shape[-1] == 1
  if bit_depth == 16 and grey:
    im = Image.fromarray(_quantize(arr, np.uint16)[..., 0])
  elif bit_depth in (1, 8, 16, 32):
    u8 = _quantize(arr, np.uint8)
    im = Image.fromarray(u8[..., 0] if grey else u8)
  else:
    raise InputError(f"bit_depth must be 8 or 16, got {bit_depth}")
  fmt = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
         ".jpg": "JPEG", ".jpeg": "JPEG"}.get(pathlib.Path(path).suffix.lower())
  if fmt is None:
    raise InputError(f"{path}: cannot write this file type; use .png, .tif, .bmp or .jpg")
  with atomic_path(path) as tmp:
    im.save(tmp, format=fmt)
