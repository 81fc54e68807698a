"""TFDS builder ``hand_radiographs``: real hand radiographs from a manual directory (live).

Real radiographs cannot ship with the project (research-use licences); a user points the
builder at a folder tree of PNG / JPEG / TIFF / DICOM files they obtained::

    <manual_dir>/<source>/.../<subject>.png      e.g. rsna/images/10009.png
    <manual_dir>/<source>/<patient>/.../*.dcm    with subject_depth=1

* **source**: the first-level subfolder's name (files directly in ``manual_dir`` get
  ``config.source``, default the manual directory's own name);
* **subject**: the file stem (``subject_depth=0``, one radiograph per patient as in RSNA
  Bone Age), or the name of the folder ``subject_depth`` levels below the source folder
  (DICOM trees ``<source>/<patient>/<study>/...``); all radiographs of a subject land in
  the same split.

Each file is decoded and cropped to the hand by the clinical input path
(:func:`palmjax.palm.clinical.load_radiograph`) at the palm model's capture size
(``size``, 64 px: ``PalmTrainConfig.image_size // scale``) and stored as ``uint16``
(area resampling makes values between the 8-bit levels of the source). Every example is
``label = live`` (a real radiograph of a real hand); ``source``, ``subject``, ``path``,
``original_size``, ``bit_depth``, ``crop_box``, ``scale`` and the full preprocessing
``record`` (JSON) come with it.

**Split** (deterministic, subject-disjoint): ``u = sha256("<source>/<subject>")`` read as
a number in [0, 1); train if ``u < 0.70``, validation if ``u < 0.85``, test otherwise
(``fractions``). With ``holdout_source`` set, that whole source is the test split (an unseen
source) and the other sources are split train / validation in the ratio 70 : 15.
``shared_subjects=True`` says the sources share one patient-id space (e.g. two
collections cut from the same RSNA Bone Age set): the hash is then of ``subject`` alone, so
a patient lands in one split whatever source holds them, and with ``holdout_source`` the
held-out source's patients are left out of train and validation altogether.

Stored as array_record with ``Tensor`` / ``Scalar`` / ``ClassLabel`` features; read with
``as_data_source`` (no TensorFlow)::

    from palmjax.data.hand_radiographs_tfds import HandRadiographs
    b = HandRadiographs(data_dir="~/tensorflow_datasets")
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir="/data/hand_xray"))
    test = b.as_data_source(split="test")
    ex = test[0]   # image uint16 [64, 64, 1], label 1, source b"rsna", subject b"10009", ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from typing import Sequence

import numpy as np

from palmjax.data._tfds import tfds
from palmjax.errors import InputError

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom")
_SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class HandRadiographsConfig(tfds.core.BuilderConfig):
  """Capture size, split fractions and the source / subject rules (module docstring)."""

  size: int = 64
  fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
  holdout_source: str = ""
  subject_depth: int = 0
  source: str = ""
  shared_subjects: bool = False


def split_of(source: str, subject: str, fractions=(0.70, 0.15, 0.15),
             holdout_source: str = "", shared_subjects: bool = False) -> str:
  """The split of a subject: a pure function of ``(source, subject)`` (module docstring)."""
  if holdout_source:
    if source == holdout_source:
      return "test"
    fractions = (fractions[0], fractions[1], 0.0)
  total = float(sum(fractions))
  if total <= 0 or min(fractions) < 0:
    raise InputError(f"split fractions must be >= 0 with a positive sum, got {fractions}")
  key = subject if shared_subjects else f"{source}/{subject}"
  digest = hashlib.sha256(key.encode()).digest()
  u = int.from_bytes(digest[:8], "big") / 2.0**64
  edge = 0.0
  for name, f in zip(_SPLITS, fractions):
    edge += f / total
    if u < edge:
      return name
  return _SPLITS[-1] if fractions[-1] > 0 else _SPLITS[1]


def list_radiographs(root: str | os.PathLike, *, subject_depth: int = 0, source: str = ""
                     ) -> list[tuple[str, str, str]]:
  """``(path, source, subject)`` of every radiograph under ``root``, sorted by path."""
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise InputError(f"{root}: the manual directory does not exist")
  out = []
  for d, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
      if f.startswith(".") or pathlib.Path(f).suffix.lower() not in SUFFIXES:
        continue
      rel = pathlib.Path(os.path.relpath(os.path.join(d, f), root))
      folders = rel.parts[:-1]
      src = folders[0] if folders else (source or os.path.basename(os.path.abspath(root)))
      below = folders[1:]
      if subject_depth == 0:
        subject = rel.stem
      elif len(below) >= subject_depth:
        subject = below[subject_depth - 1]
      else:
        raise InputError(f"{os.path.join(d, f)}: subject_depth={subject_depth} needs "
                         f"{subject_depth} folder level(s) below the source folder")
      out.append((os.path.join(d, f), src, subject))
  if not out:
    raise InputError(f"{root}: holds no radiographs ({', '.join(SUFFIXES)}); see "
                     "HandRadiographs.MANUAL_DOWNLOAD_INSTRUCTIONS")
  return out


class HandRadiographs(tfds.core.GeneratorBasedBuilder):
  """Real hand radiographs (all live), cropped to the palm model's capture size."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: manual folder of PNG/JPEG/TIFF/DICOM."}
  BUILDER_CONFIGS = [
      HandRadiographsConfig(name="default", description="64 px captures, 70/15/15 by "
                            "subject hash."),
      HandRadiographsConfig(name="shared", shared_subjects=True,
                            description="64 px, 70/15/15 by subject hash; the sources share "
                            "one patient-id space (e.g. RSNA PNGs and a second export of "
                            "the same patients), so a patient is in one split everywhere."),
      HandRadiographsConfig(name="dicom_tree", subject_depth=1,
                            description="64 px; subject = the folder below the source "
                            "(<source>/<patient>/.../*.dcm)."),
  ]
  DEFAULT_CONFIG_NAME = "default"
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put the radiographs under <manual_dir>/<source>/... (PNG, JPEG, TIFF or DICOM); "
      "one source per first-level folder, the file stem is the subject id (or set "
      "subject_depth). E.g. the RSNA Pediatric Bone Age PNGs of GitHub "
      "ajayduraisamy/Bone-detection-using-x-ray-images (folder images/) as "
      "<manual_dir>/rsna/images/*.png.")

  def __init__(self, *args, file_format: str = "array_record", **kwargs):
    super().__init__(*args, file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.size
    text = lambda: tfds.features.Tensor(shape=(), dtype=np.str_)  # noqa: E731
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(s, s, 1), dtype=np.uint16),
            "label": tfds.features.ClassLabel(names=["spoof", "live"]),
            "source": text(),
            "subject": text(),
            "path": text(),
            "original_size": tfds.features.Tensor(shape=(2,), dtype=np.int32),
            "bit_depth": tfds.features.Scalar(dtype=np.int32),
            "crop_box": tfds.features.Tensor(shape=(4,), dtype=np.int32),
            "scale": tfds.features.Scalar(dtype=np.float32),
            "record": text(),
        }),
        supervised_keys=("image", "label"),
        homepage="https://github.com/palmjax/palmjax",
    )

  def _split_generators(self, dl_manager):
    c = self.builder_config
    root = os.fspath(dl_manager.manual_dir)
    items = list_radiographs(root, subject_depth=c.subject_depth, source=c.source)
    if c.holdout_source and c.holdout_source not in {s for _, s, _ in items}:
      raise InputError(f"holdout_source {c.holdout_source!r} is not among the sources "
                       f"{sorted({s for _, s, _ in items})} of {root}")
    held = ({subject for _, source, subject in items if source == c.holdout_source}
            if c.holdout_source and c.shared_subjects else set())
    by_split: dict[str, list] = {s: [] for s in _SPLITS}
    for path, source, subject in items:
      if source != c.holdout_source and subject in held:
        continue  # a held-out patient, seen through another source: kept out of training
      by_split[split_of(source, subject, c.fractions, c.holdout_source,
                        c.shared_subjects)].append((path, source, subject))
    return {s: self._generate_examples(root, v) for s, v in by_split.items() if v}

  def _generate_examples(self, root, items):
    from palmjax.palm.clinical import ClinicalConfig, load_radiograph
    cfg = ClinicalConfig(size=self.builder_config.size)
    for path, source, subject in items:
      x, rec = load_radiograph(path, cfg)
      rel = os.path.relpath(path, root)
      yield rel, {
          "image": np.round(x * 65535).astype(np.uint16),
          "label": 1,
          "source": source,
          "subject": subject,
          "path": rel,
          "original_size": np.asarray(rec["original_size"], np.int32),
          "bit_depth": int(rec["bit_depth"]),
          "crop_box": np.asarray(rec["crop_box"], np.int32),
          "scale": np.float32(rec["scale"]),
          "record": json.dumps(rec, sort_keys=True),
      }


def load_splits(manual_dir: str | os.PathLike, data_dir: str | os.PathLike, *,
                config: HandRadiographsConfig | str = "default",
                splits: Sequence[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
  """Builds (once) and reads every split (or only ``splits``) as arrays: ``{split: {"lr",
  "source", "subject"}}``, ``lr`` float32 ``[N, s, s, 1]`` in [0, 1]. ``config``: a builder
  config name or a :class:`HandRadiographsConfig` (e.g. ``shared_subjects=True``). A split
  the builder does not have is an :class:`~palmjax.errors.InputError` naming the ones it
  has."""
  b = HandRadiographs(config=config, data_dir=os.fspath(data_dir))
  b.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)))
  have = list(b.info.splits)
  missing = [s for s in (splits or ()) if s not in have]
  if missing:
    raise InputError(f"hand_radiographs ({os.fspath(manual_dir)}) has no split "
                     f"{', '.join(map(repr, missing))}; it has {sorted(have)}")
  out = {}
  for split in (have if splits is None else splits):
    ds = b.as_data_source(split=split)
    ex = [ds[i] for i in range(len(ds))]
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
    out[split] = {
        "lr": np.stack([e["image"] for e in ex]).astype(np.float32) / 65535.0,
        "source": np.array([text(e["source"]) for e in ex]),
        "subject": np.array([text(e["subject"]) for e in ex]),
    }
  return out
