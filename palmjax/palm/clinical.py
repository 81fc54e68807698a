"""Clinical input: a full hand radiograph of any size -> one palm capture (palm step P1).

Real radiographs come as display exports (8-bit PNG / JPEG, often grey stored as RGB),
16-bit PNG / TIFF, or DICOM straight from the modality, with a black (masked) or graded
background, lead side markers, burnt-in text, collimator edges and a smallish hand in a
landscape frame. :func:`load_radiograph` turns any of them into what the palm detector
expects, a grey capture of the model's capture size in [0, 1] with bone bright:

1. **decode** (:func:`read_radiograph`): PNG / JPEG / TIFF, 8 or 16 bit (a 16-bit file
   whose values use fewer bits, e.g. 12-bit detector data, is scaled by its significant
   bits); grey, or grey stored as RGB (channels equal within ``grey_tolerance``; a true
   colour photo is refused). DICOM through pydicom: Modality LUT (``RescaleSlope`` /
   ``RescaleIntercept``) applied, then the VOI window (``WindowCenter`` / ``WindowWidth``)
   if the file has one, else the robust window of the 0.5th to 99.5th percentile;
   ``MONOCHROME1`` (bone dark) is inverted. Image files are display values already and are
   not re-windowed.
2. **find the hand** (:func:`find_hand`): the gate's background-plane hand mask
   (:func:`palmjax.palm.quality.hand_mask`, robust to a black or graded background) on a
   ``work_size`` copy, a morphological opening that cuts thin collimator edges and text
   strokes, then the largest connected component: lead markers, labels and other bright
   blobs are separate components and are ignored, as are components that are thin bands
   along an image edge (collimator blades).
3. **crop** a square around the hand's bounding box with ``margin`` on every side (the
   aspect ratio is kept; where the square leaves the image it is padded with the
   background level, the median of the non-hand pixels), and **resample** it to ``size``
   by exact area averaging (:func:`area_resize`: every output pixel integrates its input
   footprint, as a detector pixel does).

The record returned with the pixels says what was done: format, bit depth, colour,
inversion, rescale, window, original size, crop box and scale. A file with no hand found
is kept whole (padded square) and the record says so; the quality gate then decides.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import numpy as np

from palmjax.errors import InputError

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")


@dataclasses.dataclass(frozen=True)
class ClinicalConfig:
  """Settings of the clinical input path.

  Attributes:
    size: output capture side in pixels (the model's capture size).
    margin: crop margin on each side, as a share of the hand's longer bounding-box side.
    grey_tolerance: largest channel spread (in [0, 1] units, 99th percentile over pixels)
      for an RGB file to count as grey stored as RGB.
    work_size: side of the copy the hand is searched on.
    window_percentiles: robust VOI window for DICOM without a window of its own.
  """

  size: int = 64
  margin: float = 0.06
  grey_tolerance: float = 0.04
  work_size: int = 256
  window_percentiles: tuple[float, float] = (0.5, 99.5)

  def __post_init__(self):
    if not isinstance(self.size, int) or self.size < 8:
      raise InputError(f"ClinicalConfig.size: an integer >= 8 is needed, got {self.size!r}")
    if not 0.0 <= self.margin <= 1.0:
      raise InputError(f"ClinicalConfig.margin must lie in [0, 1], got {self.margin!r}")
    if not isinstance(self.work_size, int) or self.work_size < 32:
      raise InputError(f"ClinicalConfig.work_size: an integer >= 32 is needed, "
                       f"got {self.work_size!r}")


def _is_dicom(path: str) -> bool:
  if pathlib.Path(path).suffix.lower() in DICOM_SUFFIXES:
    return True
  with open(path, "rb") as f:
    head = f.read(132)
  return len(head) == 132 and head[128:132] == b"DICM"


def _read_dicom(path: str, cfg: ClinicalConfig) -> tuple[np.ndarray, dict[str, Any]]:
  import pydicom
  from pydicom.pixels import apply_modality_lut
  try:
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array
  except Exception as e:  # pydicom raises many kinds for a corrupt file  # noqa: BLE001
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise InputError(f"{path}: corrupt or unreadable DICOM ({msg})") from None
  photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
  if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
    raise InputError(f"{path}: multi-frame DICOM ({ds.NumberOfFrames} frames); export the "
                     "radiograph as a single frame")
  rec: dict[str, Any] = {"format": "dicom", "photometric": photometric,
                         "bit_depth": int(getattr(ds, "BitsStored", raw.dtype.itemsize * 8))}
  if raw.ndim == 3:
    if not photometric.startswith(("RGB", "YBR")):
      raise InputError(f"{path}: DICOM pixel data of shape {raw.shape} is not a grey image")
    if photometric.startswith("YBR"):
      from pydicom.pixels import convert_color_space
      raw = convert_color_space(raw, photometric, "RGB")
    full = float(2 ** int(getattr(ds, "BitsStored", 8)) - 1)
    grey, rec["colour"] = _grey(raw.astype(np.float64) / full, path, cfg)
    v = grey
    rec.update(rescale=None, window=None, inverted=False)
  elif raw.ndim == 2:
    if not photometric.startswith("MONOCHROME"):
      raise InputError(f"{path}: unsupported PhotometricInterpretation {photometric!r}")
    x = np.asarray(apply_modality_lut(raw, ds), np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    rec["rescale"] = [slope, intercept]
    center, width = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if center is not None and width is not None:
      c = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
      w = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
      lo, hi, how = c - w / 2, c + w / 2, "dicom VOI"
    else:
      lo, hi = (float(p) for p in np.percentile(x, cfg.window_percentiles))
      how = f"percentiles {cfg.window_percentiles[0]}-{cfg.window_percentiles[1]}"
    if not hi > lo:
      raise InputError(f"{path}: the DICOM image is uniform (window {lo}..{hi}); no "
                       "radiograph in it")
    v = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    rec["window"] = {"low": lo, "high": hi, "from": how}
    rec["inverted"] = photometric == "MONOCHROME1"
    if rec["inverted"]:
      v = 1.0 - v
    rec["colour"] = "grey"
  else:
    raise InputError(f"{path}: DICOM pixel data of shape {raw.shape} is not an image")
  if not np.all(np.isfinite(v)):
    raise InputError(f"{path}: DICOM pixel data holds NaN/inf values")
  return v.astype(np.float32), rec


def _grey(rgb: np.ndarray, path: str, cfg: ClinicalConfig) -> tuple[np.ndarray, str]:
  """Grey from grey stored as RGB (R = G = B within tolerance); a colour image is refused."""
  spread = np.max(rgb, axis=-1) - np.min(rgb, axis=-1)
  s = float(np.percentile(spread, 99))
  if s > cfg.grey_tolerance:
    raise InputError(f"{path}: a colour image (channels differ by up to {s:.2f} in 1% of "
                     "pixels); a radiograph is grey: export it as grey, or as RGB with "
                     "R = G = B")
  return np.mean(rgb, axis=-1), "grey stored as RGB"


def read_radiograph(path: str | os.PathLike, config: ClinicalConfig = ClinicalConfig()
                    ) -> tuple[np.ndarray, dict[str, Any]]:
  """Decodes a radiograph file to grey float32 ``[H, W]`` in [0, 1], bone bright.

  Returns the pixels and a record (format, bit depth, colour, inversion, rescale, window).
  Raises :class:`InputError` naming the file for a missing, empty, corrupt or colour file.
  """
  from palmjax.io import check_file, load_image
  path = check_file(path)
  if _is_dicom(path):
    return _read_dicom(path, config)
  img = load_image(path)
  x = img.pixels
  rec: dict[str, Any] = {"format": pathlib.Path(path).suffix.lower().lstrip(".") or "image",
                         "bit_depth": img.bit_depth, "inverted": False, "rescale": None,
                         "window": None}
  if x.shape[-1] == 3:
    grey, rec["colour"] = _grey(x, path, config)
  else:
    grey, rec["colour"] = x[..., 0], "grey"
  if img.bit_depth == 16:
    # 10/12/14-bit detector data in a 16-bit container: scale by the significant bits.
    top = int(round(float(grey.max()) * 65535))
    bits = max(8, int(np.ceil(np.log2(top + 1)))) if top > 0 else 16
    rec["significant_bits"] = bits
    if bits < 16:
      grey = np.clip(grey * (65535.0 / (2**bits - 1)), 0.0, 1.0)
  return np.ascontiguousarray(grey, np.float32), rec


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
  """``[n_out, n_in]`` weights of exact area resampling: output pixel ``i`` covers input
  ``[i, i + 1) * n_in / n_out``; each input pixel counts with its overlap (rows sum to 1)."""
  edges = np.arange(n_out + 1) * (n_in / n_out)
  j = np.arange(n_in)
  w = np.clip(np.minimum(edges[1:, None], j + 1) - np.maximum(edges[:-1, None], j), 0, None)
  return w / w.sum(axis=1, keepdims=True)


def area_resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
  """Exact area resampling of float ``[H, W]`` to ``[h, w]`` (a detector pixel integrates
  its footprint): separable, ``Wy @ x @ Wx.T``; equals OpenCV's ``INTER_AREA`` when
  down-sampling."""
  x = np.asarray(x, np.float64)
  return (_area_weights(x.shape[0], h) @ x @ _area_weights(x.shape[1], w).T).astype(
      np.float32)


def _resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
  """Fast box-filter resize of float ``[H, W]`` (PIL), for the hand search only."""
  from PIL import Image
  im = Image.fromarray(np.ascontiguousarray(x, np.float32), mode="F")
  return np.asarray(im.resize((w, h), Image.Resampling.BOX), np.float32)


def _hand_box_once(image: np.ndarray, config: ClinicalConfig
                   ) -> tuple[tuple[int, int, int, int] | None, float, int]:
  """One pass of :func:`find_hand` on ``image`` at ``config.work_size``."""
  from scipy import ndimage

  from palmjax.palm.quality import hand_mask
  h, w = image.shape
  n = config.work_size
  # The working copy keeps the aspect ratio (fingers stay fingers in a wide frame): the
  # long side is n, the copy sits top-left in an n x n canvas (edge-padded, marked invalid)
  # so every radiograph shares one compiled mask.
  sh, sw = max(1, round(h * n / max(h, w))), max(1, round(w * n / max(h, w)))
  small = np.clip(_resize(image, sh, sw), 0.0, 1.0)
  canvas = np.pad(small, ((0, n - sh), (0, n - sw)), mode="edge")
  valid = np.zeros((n, n), bool)
  valid[:sh, :sw] = True
  mask = np.asarray(hand_mask(canvas[None, ..., None], valid[None]))[0, :sh, :sw]
  background = float(np.median(small[~mask])) if (~mask).any() else 0.0
  # Opening by a disc of ~1.2% of the frame cuts thin strokes (text, collimator lines) and
  # the necks that join a marker to the hand's outline.
  r = max(1, round(0.012 * n))
  yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
  opened = ndimage.binary_opening(mask, structure=xx**2 + yy**2 <= r * r)
  labels, count = ndimage.label(opened)
  if count == 0:
    return None, background, 0
  areas = ndimage.sum_labels(opened, labels, index=np.arange(1, count + 1))
  slices = ndimage.find_objects(labels)
  keep = []
  for k, (sy, sx) in enumerate(slices):
    bh, bw = sy.stop - sy.start, sx.stop - sx.start
    # A collimator blade: a thin band (< 6% of the long side) along an image edge.
    edge_band = ((bw < 0.06 * n and (sx.start == 0 or sx.stop == sw)) or
                 (bh < 0.06 * n and (sy.start == 0 or sy.stop == sh)))
    if not edge_band:
      keep.append(k)
  if not keep:
    return None, background, count
  best = max(keep, key=lambda k: areas[k])
  if areas[best] < 0.005 * sh * sw:  # a speck: nothing hand-sized in the frame
    return None, background, count
  sy, sx = slices[best]
  # Back to full-resolution coordinates.
  box = (int(np.floor(sy.start * h / sh)), int(np.floor(sx.start * w / sw)),
         min(h, int(np.ceil(sy.stop * h / sh))), min(w, int(np.ceil(sx.stop * w / sw))))
  return box, background, count - 1


def find_hand(image: np.ndarray, config: ClinicalConfig = ClinicalConfig()
              ) -> tuple[tuple[int, int, int, int] | None, float, int]:
  """Bounding box ``(top, left, bottom, right)`` of the hand in ``image [H, W]``.

  Two passes: the whole frame first, then (when the hand is small in the frame) the
  region around it, enlarged by half the hand's longer side on every side, again at
  ``work_size``: a small hand's fingers, a few working pixels wide in the first pass, are
  resolved in the second. Returns the box (``None`` when no hand is found), the
  background level (median of the non-hand pixels of the whole frame) and the number of
  other bright blobs ignored (markers, labels, collimator edges) in the whole frame.
  """
  h, w = image.shape
  box, background, ignored = _hand_box_once(image, config)
  if box is None:
    return None, background, ignored
  top, left, bottom, right = box
  grow = max(bottom - top, right - left) // 2
  ry0, rx0 = max(0, top - grow), max(0, left - grow)
  ry1, rx1 = min(h, bottom + grow), min(w, right + grow)
  if max(ry1 - ry0, rx1 - rx0) < 0.8 * max(h, w):
    fine, _, _ = _hand_box_once(image[ry0:ry1, rx0:rx1], config)
    if fine is not None:
      box = (fine[0] + ry0, fine[1] + rx0, fine[2] + ry0, fine[3] + rx0)
  return box, background, ignored


def crop_to_capture(image: np.ndarray, box: tuple[int, int, int, int] | None,
                    background: float, config: ClinicalConfig = ClinicalConfig()
                    ) -> tuple[np.ndarray, dict[str, Any]]:
  """Square crop around ``box`` with the margin, padded with ``background``, resampled.

  ``box=None`` (no hand found) takes the whole frame, padded to a square, with no margin.

  Returns float32 ``[size, size]`` in [0, 1] and the crop record (box in input pixels, may
  reach beyond the image where it was padded; scale = output px per input px).
  """
  h, w = image.shape
  margin = config.margin
  if box is None:  # no hand found: the whole frame, padded to a square
    box, margin = (0, 0, h, w), 0.0
  top, left, bottom, right = box
  side = max(bottom - top, right - left)
  side = max(1, int(round(side * (1 + 2 * margin))))
  cy, cx = (top + bottom) / 2, (left + right) / 2
  y0, x0 = int(round(cy - side / 2)), int(round(cx - side / 2))
  y1, x1 = y0 + side, x0 + side
  pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
  src = image
  if any(pad):
    src = np.pad(image, ((pad[0], pad[1]), (pad[2], pad[3])), constant_values=background)
  crop = src[y0 + pad[0]:y1 + pad[0], x0 + pad[2]:x1 + pad[2]]
  out = np.clip(area_resize(crop, config.size, config.size), 0.0, 1.0)
  return out, {"crop_box": [y0, x0, y1, x1], "padded": bool(any(pad)),
               "scale": config.size / side}


def preprocess(image: np.ndarray, config: ClinicalConfig = ClinicalConfig()
               ) -> tuple[np.ndarray, dict[str, Any]]:
  """Finds the hand in a decoded radiograph ``[H, W]`` and crops / resamples it.

  Returns ``[size, size, 1]`` float32 in [0, 1] and a record of what was done.
  """
  from palmjax.errors import check_image_array
  x = check_image_array(image, "radiograph", channels=(1,), min_size=8)[..., 0]
  box, background, ignored = find_hand(x, config)
  out, rec = crop_to_capture(x, box, background, config)
  rec = {"hand_found": box is not None, "hand_box": list(box) if box else None,
         "blobs_ignored": ignored, "background": round(background, 4), **rec,
         "size": config.size}
  return out[..., None], rec


def load_radiograph(path: str | os.PathLike, config: ClinicalConfig = ClinicalConfig()
                    ) -> tuple[np.ndarray, dict[str, Any]]:
  """A radiograph file -> capture ``[size, size, 1]`` float32 in [0, 1] and its record.

  The record holds ``format``, ``bit_depth``, ``colour``, ``inverted``, ``rescale``,
  ``window``, ``original_size`` ``[H, W]``, ``hand_found``, ``hand_box``,
  ``blobs_ignored``, ``crop_box`` ``[top, left, bottom, right]``, ``padded``, ``scale`` and
  ``size``. Raises :class:`InputError` (one line naming the file) for bad input.
  """
  x, rec = read_radiograph(path, config)
  if min(x.shape) < 8:
    raise InputError(f"{os.fspath(path)}: image is {x.shape[0]}x{x.shape[1]} pixels; a "
                     "radiograph of at least 8x8 is needed")
  out, crop = preprocess(x, config)
  return out, {**rec, "original_size": list(x.shape), **crop}


def load_capture(path: str | os.PathLike, config: ClinicalConfig = ClinicalConfig()
                 ) -> tuple[np.ndarray, dict[str, Any]]:
  """What the palm detector reads: a capture file or a full radiograph -> ``[size, size, 1]``.

  An image file that already has the capture size is a capture: it is used as it is (grey,
  or grey stored as RGB), with no cropping and no re-scaling of its bit depth. Anything
  else (any other size, or DICOM) goes through :func:`load_radiograph`. The record's
  ``clinical`` says which path was taken.
  """
  from palmjax.io import load_image
  path = os.fspath(path)
  if os.path.isfile(path) and os.path.getsize(path) > 0 and not _is_dicom(path):
    img = load_image(path)
    if img.pixels.shape[:2] == (config.size, config.size):
      x = img.pixels
      colour = "grey"
      if x.shape[-1] == 3:
        g, colour = _grey(x, path, config)
        x = g[..., None]
      if img.bit_depth not in (8, 16, 32):
        raise InputError(f"{path}: unsupported bit depth {img.bit_depth}; expected 8 or 16")
      return np.ascontiguousarray(x, np.float32), {
          "clinical": False, "format": pathlib.Path(path).suffix.lower().lstrip("."),
          "bit_depth": img.bit_depth, "colour": colour, "original_size": list(x.shape[:2])}
  x, rec = load_radiograph(path, config)
  return x, {"clinical": True, **rec}
