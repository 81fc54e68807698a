"""Real-face liveness: the NUAA builder on a generated fixture, training on face crops, the
shipped real-face bundle, ``palmjax face liveness`` (stills, folders, videos, bad input)
and ``face check`` with detection.

Fixtures are made from scikit-image's bundled ``astronaut`` photograph (one real face) and
a smooth colour ramp (no face); no real biometric data set is read.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import skimage.data

from palmjax import face
from palmjax.cli import main as cli_main
from palmjax.errors import InputError
from palmjax.io import save_image


@pytest.fixture(scope="module")
def astronaut():
  return skimage.data.astronaut()


def _variant(img, rng, spoof=False):
  """A capture of the face: random brightness and shift; a 'spoof' is desaturated and
  blurred like a print."""
  x = img.astype(np.float32) / 255
  x = np.roll(x, rng.integers(-8, 9, 2), axis=(0, 1)) * rng.uniform(0.85, 1.1)
  if spoof:
    import cv2
    grey = x.mean(-1, keepdims=True)
    x = cv2.GaussianBlur(0.5 * x + 0.5 * grey, (0, 0), 1.5) * 0.9 + 0.05
  return np.clip(x, 0, 1)


def _ramp(size=256):
  """A smooth colour ramp: an image without a face."""
  r = np.linspace(0.2, 0.8, size, dtype=np.float32)
  return np.stack([np.tile(r, (size, 1)), np.tile(r[:, None], (1, size)),
                   np.full((size, size), 0.5, np.float32)], -1)


def _nuaa_fixture(root, astronaut):
  """ClientRaw/ImposterRaw layout: subjects 1-4, sessions 1 and 3, 3 frames each; one
  no-face image; one byte-identical '(1)' copy that must be skipped."""
  rng = np.random.default_rng(0)
  for cls, spoof in (("ClientRaw", False), ("ImposterRaw", True)):
    for subj in (1, 2, 3, 4):
      d = os.path.join(root, cls, f"{subj:04d}")
      os.makedirs(d, exist_ok=True)
      for sess in (1, 3):
        for fr in range(3):
          name = f"{subj:04d}_00_00_{sess:02d}_{fr}.jpg"
          save_image(os.path.join(d, name), _variant(astronaut, rng, spoof))
  nf = os.path.join(root, "ClientRaw", "0001", "0001_00_00_03_9.jpg")
  save_image(nf, _ramp())
  import shutil
  shutil.copy(os.path.join(root, "ClientRaw", "0001", "0001_00_00_01_0.jpg"),
              os.path.join(root, "ClientRaw", "0001", "0001_00_00_01_0(1).jpg"))


def test_nuaa_builder_on_fixture(tmp_path, astronaut):
  import tensorflow_datasets as tfds

  from palmjax.data.nuaa_tfds import NuaaConfig, NuaaImposter, list_images, parse_name
  root = tmp_path / "nuaa"
  _nuaa_fixture(str(root), astronaut)
  items, skipped = list_images(root)
  assert skipped == 1 and len(items) == 2 * 4 * 2 * 3 + 1
  assert parse_name("0012_01_07_03_115.jpg") == {"subject": 12, "glasses": 1, "place": 7,
                                                  "session": 3, "frame": 115}
  assert parse_name("0012_01_07_03_115(1).jpg") is None
  dl = tfds.download.DownloadConfig(manual_dir=str(root))
  for cfg, n_train in ((NuaaConfig(name="t_session", size=32), 24),
                       (NuaaConfig(name="t_subject", size=32, split_by="subject",
                                   train_subjects=(1, 2)), 25)):
    b = NuaaImposter(config=cfg, data_dir=str(tmp_path / "tfds"))
    b.download_and_prepare(download_config=dl)
    tr, te = b.as_data_source(split="train"), b.as_data_source(split="test")
    assert len(tr) == n_train and len(tr) + len(te) == 49
    ex_tr = [tr[i] for i in range(len(tr))]
    ex_te = [te[i] for i in range(len(te))]
    assert ex_tr[0]["face"].shape == (32, 32, 3) and ex_tr[0]["face"].dtype == np.uint8
    if cfg.split_by == "session":
      assert {e["session"] for e in ex_tr} == {1} and {e["session"] for e in ex_te} == {3}
    else:
      assert {e["subject"] for e in ex_tr} == {1, 2}
      assert {e["subject"] for e in ex_te} == {3, 4}
    found = {(e["label"], e["subject"], e["session"], e["frame"]): e["face_found"]
             for e in ex_tr + ex_te}
    assert len(found) == 49 and found[(1, 1, 3, 9)] == 0                     # the ramp
    assert sum(found.values()) == 48                 # every astronaut capture
    assert {e["label"] for e in ex_tr} == {0, 1}


def test_nuaa_builder_missing_layout(tmp_path):
  from palmjax.data.nuaa_tfds import list_images
  with pytest.raises(InputError, match="ClientRaw"):
    list_images(tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, astronaut):
  """A bundle trained on generated crops: live = the face, spoof = a print-like copy."""
  from palmjax.face import detect as D
  from palmjax.face import train_real as T
  rng = np.random.default_rng(1)
  det = D.detect(astronaut)
  faces, labels, subjects = [], [], []
  for subj in range(8):
    for spoof in (False, True):
      for _ in range(6):
        img = _variant(astronaut, rng, spoof)
        faces.append((255 * D.crop_face(img, det.box, 96, T.CROP_MARGIN)).round().astype(np.uint8))
        labels.append(int(not spoof))
        subjects.append(subj)
  out = tmp_path_factory.mktemp("bundle") / "face_cues"
  res = T.train_real(np.stack(faces), np.array(labels), np.array(subjects),
                     T.RealTrainConfig(steps=200), out)
  return out, res


@pytest.mark.slow
def test_train_real_bundle(trained, astronaut):
  out, res = trained
  assert res["dev"]["subjects"] == [3, 7]
  assert res["dev"]["auc"] > 0.9
  m = face.load_models(out)
  assert m.lighting is None and m.face_size == 96 and m.cues == ("colour", "texture")
  assert m.fusion.insufficient_combine == "mean"
  assert m.fusion.image_threshold == pytest.approx(
      1 / (1 + np.exp(-res["dev"]["threshold_log_odds"])))
  from palmjax.face.liveness import assess
  live = assess(astronaut, None, m)
  rng = np.random.default_rng(5)
  spoof = assess((255 * _variant(astronaut, rng, True)).astype(np.uint8), None, m)
  assert live.log_odds > spoof.log_odds
  assert live.cues["lighting"] is None and live.image["branch"] == "no_lighting_mean"
  assert 0 < spoof.probability < 1


def test_train_real_needs_both_classes_in_dev():
  from palmjax.face import train_real as T
  faces = np.zeros((8, 96, 96, 3), np.uint8)
  labels = np.array([1, 0, 1, 0, 1, 1, 1, 1])
  subjects = np.array([0, 0, 1, 1, 3, 3, 7, 7])   # dev subjects 3, 7: live only
  with pytest.raises(InputError, match="development"):
    T.train_real(faces, labels, subjects)


def test_shipped_real_bundle(astronaut):
  m = face.load_models()
  assert m.face_size == 96 and m.lighting is None
  assert m.info["source"]["dataset"] == "nuaa_imposter"
  from palmjax.face.liveness import assess
  r = assess(astronaut, None, m)       # a real, live face photographed directly
  assert r.decision == "live" and r.face_box is not None
  assert r.log_odds == pytest.approx(np.log(r.probability / (1 - r.probability)), rel=1e-6)


def _write_video(path, frames, fps=25.0):
  import cv2
  h, w = frames[0].shape[:2]
  vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
  assert vw.isOpened()
  for f in frames:
    vw.write(np.ascontiguousarray(f[..., ::-1]))
  vw.release()


def test_video_is_streamed_with_caps(tmp_path, astronaut):
  from palmjax.face.session_io import load_video
  frames = [np.roll(astronaut, i, axis=1) for i in range(12)]
  p = tmp_path / "clip.avi"
  _write_video(p, frames)
  s = load_video(p, max_frames=5, max_side=128)
  assert s.frames.shape == (5, 128, 128, 3)
  assert np.all(np.diff(s.timestamps) > 0)
  full = load_video(p, max_frames=None, max_side=None)
  assert full.frames.shape == (12, 512, 512, 3)
  with pytest.raises(InputError, match="max_frames"):
    load_video(p, max_frames=0)
  bad = tmp_path / "bad.mp4"
  bad.write_bytes(b"not a video at all" * 10)
  with pytest.raises(InputError, match="bad.mp4"):
    load_video(bad)


def test_liveness_cli(tmp_path, astronaut, capsys):
  still = tmp_path / "face.png"
  save_image(str(still), astronaut.astype(np.float32) / 255)
  nothing = tmp_path / "ramp.png"
  save_image(str(nothing), _ramp())
  empty = tmp_path / "empty.png"
  empty.write_bytes(b"")
  folder = tmp_path / "frames"
  folder.mkdir()
  for i in range(3):
    save_image(str(folder / f"{i:02d}.png"), np.roll(astronaut, i, 1).astype(np.float32) / 255)
  clip = tmp_path / "clip.avi"
  _write_video(clip, [np.roll(astronaut, i, axis=1) for i in range(10)])
  rc = cli_main(["face", "liveness", str(still), str(empty), str(nothing), str(folder),
                 str(clip), "--max-frames", "4", "--max-side", "256"])
  assert rc == 2                                   # one input failed
  lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
  assert [x["source"] for x in lines] == [str(still), str(empty), str(nothing), str(folder),
                                          str(clip)]
  s, e, n, f, v = lines
  assert s["decision"] in ("live", "spoof") and s["cues"]["lighting"] is None
  assert 0 < s["probability"] < 1 and len(s["face_box"]) == 4
  assert "empty" in e["error"]
  assert n["decision"] == "recapture" and "no face" in n["reason"]
  assert f["frame_count"] == 3 and f["decision"] in ("live", "spoof")
  assert v["frame_count"] == 4
  assert cli_main(["face", "liveness", str(still)]) == 0


def test_check_uses_detection(tmp_path, astronaut):
  from palmjax.face import Session
  frames = np.stack([np.roll(astronaut, i, 1) for i in range(4)]).astype(np.float32) / 255
  sess = Session(frames=frames, timestamps=np.arange(4) * 0.04)
  m = face.load_models()
  cfg = face.FaceCheckConfig(acoustic_hardware=False, similarity_threshold=0.0)
  rec = face.check_session(sess, astronaut, m, cfg)
  assert rec.face_box is not None and rec.stage == "image"
  assert rec.cue_probabilities["lighting"] is None
  empty = Session(frames=np.stack([_ramp()] * 2),
                  timestamps=np.array([0.0, 0.04]))
  rec = face.check_session(empty, astronaut, m, cfg)
  assert rec.outcome == "recapture" and "no face" in rec.reason


def test_bad_session_files(tmp_path):
  from palmjax.face import session_io
  d = tmp_path / "s"
  d.mkdir()
  for i in range(2):
    save_image(str(d / f"{i}.png"), np.full((16, 16, 3), 0.5, np.float32))
  (d / "echo.npy").write_text("not an array\n")
  (d / "session.json").write_text(json.dumps({"fps": 25, "echo": {"file": "echo.npy",
                                                                   "fs": 192000}}))
  with pytest.raises(InputError, match="echo.npy: not a readable NumPy"):
    session_io.load_session(d)
  np.save(d / "echo.npy", np.zeros(64, np.float32))
  (d / "session.json").write_text(json.dumps({"fps": 25, "echo": {"file": "echo.npy"}}))
  with pytest.raises(InputError, match="sample rate"):
    session_io.load_session(d)
  (d / "session.json").write_text(json.dumps({"fps": 25, "echo": {"file": "echo.npy",
                                                                   "fs": -1}}))
  with pytest.raises(InputError, match="positive"):
    session_io.load_session(d)
  z = tmp_path / "x.npz"
  np.savez(z, frames=np.zeros((2, 16, 16, 3), np.float32), echo=np.zeros(8, np.float32))
  with pytest.raises(InputError, match="echo_fs"):
    session_io.load_session(z)


def test_face_simulate_bad_arguments(tmp_path, capsys):
  f = tmp_path / "file"
  f.write_text("x")
  assert cli_main(["face", "simulate", "--out", str(f), "--n", "1"]) == 2
  assert cli_main(["face", "simulate", "--out", str(tmp_path / "o"), "--n", "0"]) == 2
  err = capsys.readouterr().err
  assert "not a directory" in err and "--n must be >= 1" in err
