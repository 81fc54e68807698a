"""Face sessions I/O: TFDS builders (generated + folder corpora), frame folders, video, CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from palmjax.errors import InputError
from palmjax.face import session as S
from palmjax.face import session_io
from palmjax.io import save_image


def _frames_dir(path, n=3, size=16, seed=0, ts=True):
  os.makedirs(path, exist_ok=True)
  rng = np.random.default_rng(seed)
  for i in range(n):
    save_image(os.path.join(path, f"{i:03d}.png"), rng.random((size, size, 3)).astype(np.float32))
  if ts:
    with open(os.path.join(path, "session.json"), "w") as f:
      json.dump({"timestamps": [0.1 * i for i in range(n)]}, f)


def test_frames_dir_and_errors(tmp_path):
  d = tmp_path / "s"
  _frames_dir(d)
  sess = session_io.load_session(d)
  assert sess.frames.shape == (3, 16, 16, 3)
  np.testing.assert_allclose(sess.timestamps, [0.0, 0.1, 0.2])
  save_image(str(d / "003.png"), np.zeros((8, 8, 3), np.float32))
  with pytest.raises(InputError, match="one size"):
    session_io.load_session(d)
  with pytest.raises(InputError, match="no such"):
    session_io.load_session(tmp_path / "missing")
  e = tmp_path / "e"
  _frames_dir(e, ts=False)
  assert session_io.load_session(e).timestamps is None


def test_video(tmp_path):
  cv2 = pytest.importorskip("cv2")
  p = str(tmp_path / "v.avi")
  w = cv2.VideoWriter(p, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
  for i in range(5):
    w.write(np.full((32, 32, 3), 40 * i, np.uint8))
  w.release()
  sess = session_io.load_session(p)
  assert sess.frames.shape == (5, 32, 32, 3)
  assert np.all(np.diff(sess.timestamps) > 0)
  np.testing.assert_allclose(sess.frames[:, 0, 0, 0] * 255, 40 * np.arange(5), atol=6)


@pytest.mark.slow
def test_tfds_builders(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  from palmjax.data import face_sessions_tfds as F
  cfg = F.FaceSessionsConfig(name="t", size=32, n_frames=4, per_kind=(2, 1, 1), chunk=2)
  b = F.FaceTerminalSessions(config=cfg, data_dir=str(tmp_path / "tfds"))
  b.download_and_prepare()
  ds = b.as_data_source(split="train")
  assert len(ds) == 2 * len(F.KINDS)
  ex = ds[0]
  assert ex["frames"].shape == (4, 32, 32, 3) and ex["frames"].dtype == np.uint8
  assert ex["enrolled"].shape == (32, 32, 3)
  kinds = sorted({int(ds[i]["kind"]) for i in range(len(ds))})
  assert kinds == list(range(len(F.KINDS)))
  labels = {F.KINDS[int(ds[i]["kind"])]: int(ds[i]["label"]) for i in range(len(ds))}
  assert labels == {"live": 1, "print": 0, "replay": 0, "mask": 0, "impostor": 1}

  # Replay-Attack look-alike tree.
  ra = tmp_path / "ra"
  _frames_dir(ra / "train" / "real" / "client001_session01", seed=1)
  _frames_dir(ra / "train" / "attack" / "hand" / "attack_print_client001", seed=2)
  _frames_dir(ra / "train" / "attack" / "fixed" / "attack_mobile_client001", seed=3)
  _frames_dir(ra / "test" / "real" / "client002", seed=4)
  small = F.FolderCorpusConfig(name="small", size=16, n_frames=3)
  b = F.ReplayAttackFolders(config=small, data_dir=str(tmp_path / "tfds"))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(ra)))
  tr = b.as_data_source(split="train")
  got = sorted((F.KINDS[int(tr[i]["kind"])], int(tr[i]["label"])) for i in range(len(tr)))
  assert got == [("live", 1), ("print", 0), ("replay", 0)]
  assert len(b.as_data_source(split="test")) == 1

  # OULU-NPU look-alike tree.
  ou = tmp_path / "ou"
  for name, seed in (("1_1_01_1", 1), ("1_1_01_2", 2), ("1_1_01_5", 3)):
    _frames_dir(ou / "Train_files" / name, seed=seed)
  b = F.OuluNpuFolders(config=small, data_dir=str(tmp_path / "tfds"))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(ou)))
  tr = b.as_data_source(split="train")
  assert sorted(F.KINDS[int(tr[i]["kind"])] for i in range(len(tr))) == ["live", "print",
                                                                          "replay"]
  assert tr[0]["frames"].shape == (3, 16, 16, 3)


def test_cli(tmp_path, capsys):
  from palmjax.cli import main
  with pytest.raises(SystemExit) as e:
    main(["face", "--help"])
  assert e.value.code == 0
  assert "check" in capsys.readouterr().out
  # A constructed session as .npz, checked on a terminal without acoustic hardware.
  rng = np.random.default_rng(0)
  base = rng.random((64, 64, 3)).astype(np.float32)
  sess = S.Session(frames=np.stack([base] * 8), timestamps=np.arange(8) / 12.0)
  p = str(tmp_path / "s.npz")
  session_io.save_npz(p, sess, enrolled=base)
  np.testing.assert_array_equal(session_io.load_session(p).enrolled, base)  # declared field
  assert main(["face", "check", p, "--no-acoustic"]) == 0
  rec = json.loads(capsys.readouterr().out)
  assert rec["outcome"] in ("proceed", "paused", "reject") and rec["outcome"] != "recapture"
  assert set(rec["cue_probabilities"]) == {"colour", "texture", "lighting"}
  # Missing echo on an acoustic terminal -> recapture, never proceed.
  assert main(["face", "check", p]) == 0
  assert json.loads(capsys.readouterr().out)["outcome"] == "recapture"
  # Bad input: a one-frame session -> clean error, exit code 2.
  session_io.save_npz(p, S.Session(frames=base[None], timestamps=np.zeros(1)),
                      enrolled=base)
  assert main(["face", "check", p]) == 2
  assert "frame" in capsys.readouterr().err
