"""TFDS builder ``nuaa_imposter``: the NUAA Photograph Imposter Database (real faces).

Tan, Li, Liu & Jiang, "Face liveness detection from a single image with sparse low rank
bilinear discriminative model", ECCV 2010. 15 subjects, 3 capture sessions; live faces
(``ClientRaw``) and printed photographs of them held in front of a web camera
(``ImposterRaw``), 640x480 colour JPEGs. NUAA releases the images for research use, so
they never enter this repository: the builder reads a **manual directory** in the corpus'
own layout::

    <manual_dir>/ClientRaw/<subject>/<subject>_<glasses>_<place>_<session>_<frame>.jpg
    <manual_dir>/ImposterRaw/<subject>/<subject>_<glasses>_<place>_<session>_<frame>.jpg

(files whose names do not follow the pattern, e.g. byte-identical ``... (1).jpg`` copies
or folders of other corpora, are skipped and counted). Every image goes through the
pipeline's own face detection and alignment (:mod:`palmjax.face.detect`); the example
holds the aspect-preserving face crop (``size`` x ``size`` uint8 RGB), whether a face was
found (if not, the crop is the centred square of the frame, and the pipeline would answer
``recapture``), the box, and the file-name fields.

Configs (both from the same manual directory):

* ``protocol`` — the published protocol: ``train`` = sessions 1 and 2, ``test`` =
  session 3 (3,491 and 9,123 images in the public copy);
* ``subjects`` — subject-disjoint: ``train`` = subjects 1-8, ``test`` = subjects 9-16,
  all sessions.

Neither config has a validation split: choose thresholds on a subject-held-out part of
``train`` (:func:`palmjax.face.real.subject_folds`), never on ``test``. Read with
``builder.as_data_source(split=...)`` (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from palmjax.data._tfds import tfds

NAME_RE = re.compile(r"^(\d{4})_(\d{2})_(\d{2})_(\d{2})_(\d+)\.jpe?g$", re.IGNORECASE)
CLASS_DIRS = {"ClientRaw": 1, "ImposterRaw": 0}


@dataclasses.dataclass
class NuaaConfig(tfds.core.BuilderConfig):
  size: int = 96
  split_by: str = "session"        # "session" (published) | "subject"
  train_sessions: tuple[int, ...] = (1, 2)
  train_subjects: tuple[int, ...] = tuple(range(1, 9))
  margin: float = 0.25


def parse_name(name: str) -> dict[str, int] | None:
  """File-name fields ``subject, glasses, place, session, frame`` (``None`` if it is not
  a NUAA name)."""
  m = NAME_RE.match(name)
  if m is None:
    return None
  return dict(zip(("subject", "glasses", "place", "session", "frame"),
                  (int(g) for g in m.groups())))


def list_images(root: str | os.PathLike) -> tuple[list[tuple[str, int, dict]], int]:
  """``[(path, label, fields)]`` sorted by path, and the number of skipped files."""
  out, skipped = [], 0
  for cls, label in CLASS_DIRS.items():
    base = os.path.join(os.fspath(root), cls)
    if not os.path.isdir(base):
      continue
    for d, dirs, files in os.walk(base):
      dirs.sort()
      for f in sorted(files):
        if not f.lower().endswith((".jpg", ".jpeg")):
          continue
        fields = parse_name(f)
        if fields is None:
          skipped += 1
          continue
        out.append((os.path.join(d, f), label, fields))
  if not out:
    from palmjax.errors import InputError
    raise InputError(f"{root}: no NUAA images found (expected ClientRaw/<subject>/*.jpg "
                     "and ImposterRaw/<subject>/*.jpg); see NuaaImposter's "
                     "MANUAL_DOWNLOAD_INSTRUCTIONS")
  return sorted(out), skipped


def face_crop(path: str, size: int, margin: float):
  """(crop uint8 [size, size, 3], face found, box [4] float32, (H, W)) of one image."""
  from palmjax.face import detect as D
  from palmjax.io import load_image
  img = load_image(path, channels=3).pixels
  det = D.detect(img, D.DetectorConfig(margin=margin))
  h, w = img.shape[:2]
  if det is None:
    m = min(h, w)
    box = D.FaceBox((w - m) / 2, (h - m) / 2, (w + m) / 2, (h + m) / 2, 0.0)
    crop = D.crop_face(img, box, size, 0.0)
  else:
    box = det.box
    crop = D.crop_face(img, box, size, margin)
  u8 = np.clip(np.round(crop * 255), 0, 255).astype(np.uint8)
  return u8, det is not None, np.asarray(box[:4], np.float32), (h, w)


class NuaaImposter(tfds.core.GeneratorBasedBuilder):
  """NUAA Photograph Imposter Database, face crops (see the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Face crops by palmjax.face.detect (BlazeFace)."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Place the corpus in <manual_dir>: ClientRaw/<subject>/*.jpg and "
      "ImposterRaw/<subject>/*.jpg (the layout of the NUAA release).")
  BUILDER_CONFIGS = [
      NuaaConfig(name="protocol", description="train: sessions 1-2, test: session 3."),
      NuaaConfig(name="subjects", split_by="subject",
                 description="train: subjects 1-8, test: subjects 9-16 (all sessions)."),
  ]
  DEFAULT_CONFIG_NAME = "protocol"

  def __init__(self, *args, file_format: str = "array_record", **kwargs):
    super().__init__(*args, file_format=file_format, **kwargs)

  def _info(self):
    s = self.builder_config.size
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({
            "face": tfds.features.Tensor(shape=(s, s, 3), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=["spoof", "live"]),
            "face_found": tfds.features.Scalar(dtype=np.int32),
            "box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
            "image_size": tfds.features.Tensor(shape=(2,), dtype=np.int32),
            "subject": tfds.features.Scalar(dtype=np.int32),
            "glasses": tfds.features.Scalar(dtype=np.int32),
            "place": tfds.features.Scalar(dtype=np.int32),
            "session": tfds.features.Scalar(dtype=np.int32),
            "frame": tfds.features.Scalar(dtype=np.int32)}),
        homepage="http://parnec.nuaa.edu.cn/xtan/data/nuaaimposterdb.html")

  def _in_train(self, fields: dict[str, int]) -> bool:
    c = self.builder_config
    if c.split_by == "session":
      return fields["session"] in c.train_sessions
    return fields["subject"] in c.train_subjects

  def _split_generators(self, dl_manager):
    items, _ = list_images(dl_manager.manual_dir)
    return {"train": self._generate_examples([i for i in items if self._in_train(i[2])]),
            "test": self._generate_examples([i for i in items if not self._in_train(i[2])])}

  def _generate_examples(self, items):
    c = self.builder_config
    root = os.path.commonpath([p for p, _, _ in items]) if items else ""
    for path, label, fields in items:
      crop, found, box, (h, w) = face_crop(path, c.size, c.margin)
      yield os.path.relpath(path, root), {
          "face": crop, "label": label, "face_found": int(found), "box": box,
          "image_size": np.asarray([h, w], np.int32), **fields}
