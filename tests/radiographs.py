"""Generated radiographs for the tests (no real images in the repository): a hand-like
radiograph and a DICOM writer."""

import os

import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage


def hand(h, w, top, left, side, *, background=0.0, ramp=0.0, seed=0, noise=0.01):
  """A hand-like radiograph [h, w] in [0, 1]: soft tissue (palm, five fingers, forearm
  down to the bottom edge) with brighter bone rods, on a dark (optionally graded)
  background. The hand lies in the square ``top, left, side``; its forearm runs to the
  image's bottom edge."""
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
  u, v = (xx - left) / side, (yy - top) / side  # hand coordinates, 0..1 over the square
  soft = ((u - 0.5) / 0.32) ** 2 + ((v - 0.62) / 0.2) ** 2 <= 1  # palm
  soft |= (np.abs(u - 0.5) <= 0.15) & (v >= 0.7) & (yy <= h)  # forearm, to the bottom
  bone = np.zeros_like(soft)
  for k, (x0, top_v) in enumerate([(0.22, 0.3), (0.36, 0.05), (0.5, 0.0), (0.64, 0.05),
                                   (0.78, 0.15)]):
    finger = (np.abs(u - x0) <= 0.045) & (v >= top_v) & (v <= 0.6)
    soft |= finger
    bone |= (np.abs(u - x0) <= 0.02) & (v >= top_v + 0.03) & (v <= 0.75)
  bone |= (np.abs(u - 0.45) <= 0.04) & (v >= 0.78)
  bone |= (np.abs(u - 0.56) <= 0.03) & (v >= 0.78)
  bone &= soft
  x = background + ramp * (xx / w) + 0.3 * soft + 0.35 * bone
  x = ndimage.gaussian_filter(x, 1.0)
  x = x + np.random.default_rng(seed).normal(0, noise, x.shape) * soft
  return np.clip(x, 0, 1).astype(np.float32), soft


def save_u8(path, x):
  Image.fromarray(np.round(x * 255).astype(np.uint8)).save(path)


def save_dicom(path, stored, *, photometric="MONOCHROME2", slope=1.0, intercept=0.0,
               bits=16, window=None):
  meta = FileMetaDataset()
  meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
  meta.MediaStorageSOPInstanceUID = generate_uid()
  meta.TransferSyntaxUID = ExplicitVRLittleEndian
  ds = FileDataset(os.fspath(path), {}, file_meta=meta, preamble=b"\0" * 128)
  ds.PatientID, ds.Modality = "p1", "DX"
  ds.SOPClassUID = meta.MediaStorageSOPClassUID
  ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
  ds.Rows, ds.Columns = stored.shape[:2]
  if stored.ndim == 3:  # RGB, 8 bit, interleaved
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = stored.astype(np.uint8).tobytes()
    ds.save_as(os.fspath(path), enforce_file_format=True)
    return
  ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
  ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
  ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
  if window is not None:
    ds.WindowCenter, ds.WindowWidth = window
  ds.PixelData = stored.astype(np.uint16).tobytes()
  ds.save_as(os.fspath(path), enforce_file_format=True)


def assert_sample_sums(cfg, hr, lr):
  """``palm_xray.sample(key(5), 5, cfg)``, one capture of each kind, still sums per image to
  ``hr`` / ``lr`` (pins a simulator style's look against later changes)."""
  import jax

  from palmjax.data import palm_xray as px
  b = px.sample(jax.random.key(5), 5, cfg, attacks=np.arange(5, dtype=np.int32))
  np.testing.assert_allclose(np.asarray(b["hr"], np.float64).sum((1, 2, 3)), hr, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(b["lr"], np.float64).sum((1, 2, 3)), lr, rtol=1e-6)


def assert_deterministic_per_key_and_start(cfg, batch, kinds, tail):
  """``batch`` (``sample(key(3), len(kinds), cfg, attacks=kinds)``) is drawn again bit for
  bit, its last ``tail`` captures alone with ``start=``, and another key differs."""
  import jax

  from palmjax.data import palm_xray as px
  again = px.sample(jax.random.key(3), len(kinds), cfg, attacks=kinds)
  np.testing.assert_array_equal(np.asarray(again["hr"]), batch["hr"])
  end = px.sample(jax.random.key(3), tail, cfg, start=len(kinds) - tail, attacks=kinds[-tail:])
  np.testing.assert_array_equal(np.asarray(end["lr"]), batch["lr"][-tail:])
  other = px.sample(jax.random.key(4), tail, cfg, attacks=kinds[:tail])
  assert not np.array_equal(np.asarray(other["hr"]), batch["hr"][:tail])
