"""The bad-input table (issue #18): every row drives the ``palmjax`` CLI with one bad input
and asserts the exit code and the one ``palmjax: ...`` line on stderr (naming the file and
the problem, never a traceback).

A row is ``(id, argv, expected exit code, regex)``. In ``argv`` a token ``{name}`` becomes
``tmp_path / name``; when ``name`` is a key of :data:`FIXTURES` that file (or folder) is
built first from a small generated fixture. Rows run in-process (``main(argv)``); a few run
``python -m palmjax`` to check the real process. Rows that check more than the message
(nothing written, the input unchanged, the file mode) have their own tests below the table.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from palmjax.cli import main

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --- fixture builders (each writes `path`) ------------------------------------------------

def _grey(path, h=32, w=32, seed=0):
  rng = np.random.default_rng(seed)
  Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8)).save(path)


def _bomb(path, side=30000):
  """A valid PNG header claiming ``side`` x ``side`` pixels, with a tiny body."""
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
  ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                   + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def _truncated(path):
  _grey(path, 64, 64)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


def _colour_photo(path):
  """A true-colour image (distinct channels), as a phone photo would be."""
  y, x = np.mgrid[0:96, 0:96] / 95.0
  rgb = np.stack([x, y, 1 - x * y], -1)
  Image.fromarray((rgb * 255).astype(np.uint8)).save(path)


def _frames_dir(path, n=3, meta=None, echo=None):
  path.mkdir()
  for i in range(n):
    _grey(path / f"{i:03d}.png", 48, 48, seed=i)
  if meta is not None:
    (path / "session.json").write_text(json.dumps(meta))
  if echo is not None:
    (path / "echo.npy").write_text(echo)


def _session_npz(path, **overrides):
  rng = np.random.default_rng(0)
  arrays = {"frames": rng.random((4, 32, 32, 3)).astype(np.float32),
            "timestamps": np.arange(4) / 10.0,
            "echo": rng.standard_normal(4800).astype(np.float32), "echo_fs": np.float64(96e3),
            "enrolled": rng.random((32, 32, 3)).astype(np.float32)}
  arrays.update(overrides)
  np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


def _store(path):
  from palmjax.palm.store import FieldStore
  with FieldStore(path) as s:
    for i in range(3):
      s.add(np.full((8, 8, 1), i / 4, np.float32), label="live", verdict=1,
            probability=0.9, device_id="t", bit_depth=8, source=f"{i}.png", model="m")


def _damaged_store(path):
  """A store whose records table is overwritten in place: ``PRAGMA quick_check`` fails."""
  _store(path)
  db = sqlite3.connect(path)
  db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
  db.close()
  data = bytearray(path.read_bytes())
  page = 4096
  data[page + 8:2 * page] = b"\xff" * (page - 8)  # page 2: garbage cells
  path.write_bytes(bytes(data))


FIXTURES = {
    "good.png": _grey,
    "good2.png": lambda p: _grey(p, seed=1),
    "tiny1.png": lambda p: _grey(p, 1, 1),
    "tiny2.png": lambda p: _grey(p, 2, 2),
    "bomb.png": _bomb,
    "empty.png": lambda p: p.write_bytes(b""),
    "text.png": lambda p: p.write_text("not an image"),
    "trunc.png": _truncated,
    "photo.png": _colour_photo,
    "nan.npy": lambda p: np.save(p, np.full((32, 32), np.nan, np.float32)),
    "range.npy": lambda p: np.save(p, np.full((32, 32), 7.0, np.float32)),
    "complex.npy": lambda p: np.save(p, np.ones((32, 32), np.complex64)),
    "shape.npy": lambda p: np.save(p, np.zeros((2, 3, 32, 32), np.float32)),
    "corrupt.dcm": lambda p: p.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage" * 20),
    "a_file": lambda p: p.write_text("a regular file"),
    "a_dir": lambda p: p.mkdir(),
    "empty.npy": lambda p: p.write_bytes(b""),
    "text.npy": lambda p: p.write_text("0.1 0.2 0.3\n"),
    "echo_2d.npy": lambda p: np.save(p, np.zeros((4, 4800), np.float32)),
    "echo_nan.npz": lambda p: np.savez(p, samples=np.full(48000, np.nan, np.float32),
                                       fs=96e3),
    "echo_slow.npz": lambda p: np.savez(p, samples=np.zeros(48000, np.float32), fs=8000.0),
    "echo_nosamples.npz": lambda p: np.savez(p, fs=96e3),
    "sess_text_echo": lambda p: _frames_dir(
        p, meta={"fps": 10, "echo": {"file": "echo.npy", "fs": 96000}}, echo="1 2 3"),
    "sess_no_fs": lambda p: _frames_dir(p, meta={"fps": 10, "echo": {"file": "echo.npy"}},
                                        echo="1 2 3"),
    "sess_bad_json": lambda p: (_frames_dir(p), (p / "session.json").write_text("{fps: 10")),
    "sess_empty_dir": lambda p: p.mkdir(),
    "no_fs.npz": lambda p: _session_npz(p, echo_fs=None),
    "zero_fs.npz": lambda p: _session_npz(p, echo_fs=np.float64(0)),
    "nan_frames.npz": lambda p: _session_npz(
        p, frames=np.full((4, 32, 32, 3), np.nan, np.float32)),
    "one_frame.npz": lambda p: _session_npz(
        p, frames=np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32),
        timestamps=np.zeros(1)),
    "no_frames.npz": lambda p: _session_npz(p, frames=None),
    "text.npz": lambda p: p.write_text("not an archive"),
    "mixed_dir": lambda p: (p.mkdir(), _grey(p / "a.png"), (p / "b.png").write_text("x")),
    "damaged.sqlite": _damaged_store,
    "text.sqlite": lambda p: p.write_text("not a database, just text " * 200),
}

SR = ["sr", "upscale", "--scale", "2"]
ECHO = ["echo", "analyze"]
FACE_CHECK = ["face", "check"]
FEEDBACK = ["palm", "feedback", "--label", "live", "{good.png}", "--store"]

# (id, argv, exit code, regex for the one "palmjax: ..." line on stderr)
ROWS = [
    # images, through `sr upscale` (one model, fast)
    ("sr-bomb", SR + ["{bomb.png}", "{o.png}"], 2,
     r"bomb\.png: .*(decompression bomb|megapixel limit)"),
    ("sr-empty", SR + ["{empty.png}", "{o.png}"], 2, r"empty\.png: empty file"),
    ("sr-not-image", SR + ["{text.png}", "{o.png}"], 2, r"text\.png: not an image"),
    ("sr-truncated", SR + ["{trunc.png}", "{o.png}"], 2, r"trunc\.png: corrupt or truncated"),
    ("sr-missing", SR + ["{nothere.png}", "{o.png}"], 2, r"nothere\.png: no such file"),
    ("sr-input-dir", SR + ["{a_dir}", "{o.png}"], 2, r"a_dir: is a directory"),
    ("sr-nan", SR + ["{nan.npy}", "{o.png}"], 2, r"nan\.npy: .*NaN"),
    ("sr-range", SR + ["{range.npy}", "{o.png}"], 2, r"range\.npy: .*\[0, 1\]"),
    ("sr-dtype", SR + ["{complex.npy}", "{o.png}"], 2, r"complex\.npy: .*dtype complex64"),
    ("sr-shape", SR + ["{shape.npy}", "{o.png}"], 2, r"shape\.npy: .*shape \(2, 3, 32, 32\)"),
    ("sr-text-npy", SR + ["{text.npy}", "{o.png}"], 2,
     r"text\.npy: not a readable NumPy \.npy array \(corrupt, truncated, text or pickled"),
    ("sr-1x1", SR + ["{tiny1.png}", "{o.png}"], 2, r"tiny1\.png: image is 1x1 pixels"),
    ("sr-2x2", SR + ["{tiny2.png}", "{o.png}"], 2, r"tiny2\.png: image is 2x2 pixels"),
    ("sr-scale-1", ["sr", "upscale", "--scale", "1", "{good.png}", "{o.png}"], 2,
     r"--scale must be an integer >= 2"),
    ("sr-out-is-in", SR + ["{good.png}", "{good.png}"], 2, r"good\.png: is the input image"),
    ("sr-out-is-dir", SR + ["{good.png}", "{a_dir}"], 2, r"a_dir: is a directory"),
    ("sr-out-under-file", SR + ["{good.png}", "{a_file}/o.png"], 2,
     r"a_file/o\.png: cannot create it, .*a_file is a file, not a folder"),
    ("sr-bad-checkpoint", SR + ["--checkpoint", "{a_dir}", "{good.png}", "{o.png}"], 2,
     r"a_dir"),
    # palm detect: a bad input among good ones gets an error record (tested below); alone:
    ("palm-bomb", ["palm", "detect", "{bomb.png}"], 2,
     r"bomb\.png: .*(decompression bomb|megapixel limit)"),
    ("palm-colour-photo", ["palm", "detect", "{photo.png}"], 2, r"photo\.png: .*colour"),
    ("palm-corrupt-dicom", ["palm", "detect", "{corrupt.dcm}"], 2,
     r"corrupt\.dcm: corrupt or unreadable DICOM"),
    ("palm-empty", ["palm", "detect", "{empty.png}"], 2, r"empty\.png: empty file"),
    # field store
    ("store-damaged", FEEDBACK + ["{damaged.sqlite}"], 2, r"damaged\.sqlite: .*damaged"),
    ("store-text", FEEDBACK + ["{text.sqlite}"], 2, r"text\.sqlite: not a palmjax field store"),
    ("store-is-dir", FEEDBACK + ["{a_dir}"], 2, r"a_dir: is not a file"),
    ("store-under-file", FEEDBACK + ["{a_file}/new/store.sqlite"], 2,
     r"store\.sqlite: cannot create it, .*a_file is a file, not a folder"),
    ("tune-store-missing", ["palm", "tune", "--store", "{nothere.sqlite}"], 2,
     r"nothere\.sqlite: no such field store"),
    # other palm commands
    ("palm-simulate-n0", ["palm", "simulate", "--n", "0", "--out", "{s}"], 2, r"--n must be >= 1"),
    ("palm-simulate-out-file", ["palm", "simulate", "--n", "1", "--out", "{a_file}"], 2,
     r"a_file: exists and is not a directory"),
    ("palm-eval-plot-dir", ["palm", "eval", "--n", "10", "--plot", "{a_dir}"], 2,
     r"a_dir: is a directory; give a file name"),
    ("palm-simulate-out-under-file", ["palm", "simulate", "--n", "1", "--out",
                                      "{a_file}/sub"], 2,
     r"a_file/sub: cannot create it, .*a_file is a file, not a folder"),
    ("palm-tune-steps0", ["palm", "tune", "--store", "{damaged.sqlite}", "--num-steps", "0"],
     2, r"--num-steps must be >= 1"),
    ("sr-eval-json-dir", ["sr", "eval", "--data", "{a_dir}", "--scale", "2", "--json",
                          "{a_dir}"], 2, r"a_dir: is a directory; give a file name"),
    # a folder of inputs feeds one statistic: a bad file in it is refused by name, not skipped
    ("sr-eval-bad-file", ["sr", "eval", "--data", "{mixed_dir}", "--scale", "2"], 2,
     r"mixed_dir/b\.png: not an image"),
    ("palm-realism-bad-file", ["palm", "realism", "--real", "{mixed_dir}", "--n-sim", "5"], 2,
     r"mixed_dir/b\.png: not an image"),
    ("quickstart-out-file", ["quickstart", "--out", "{a_file}"], 2,
     r"a_file: exists and is not a directory"),
    ("palm-eval-n0", ["palm", "eval", "--n", "0"], 2, r"--n must be >= 2"),
    ("palm-realism-no-dir", ["palm", "realism", "--real", "{nothere}"], 2,
     r"nothere: not a directory"),
    ("quickstart-palm-n0", ["quickstart", "--palm-n", "0", "--out", "{q}"], 2,
     r"--palm-n must be >= 20"),
    ("quickstart-sr-steps0", ["quickstart", "--sr-steps", "0", "--out", "{q}"], 2,
     r"--sr-steps must be >= 1"),
    # face
    ("face-liveness-max-side", ["face", "liveness", "--max-side", "0", "{good.png}"], 2,
     r"--max-side must be >= 16"),
    ("face-simulate-n0", ["face", "simulate", "--n", "0", "--out", "{s}"], 2,
     r"--n must be >= 1"),
    ("face-simulate-out-file", ["face", "simulate", "--out", "{a_file}"], 2,
     r"a_file: exists and is not a directory"),
    ("face-simulate-kind", ["face", "simulate", "--kinds", "hologram", "--out", "{s}"], 2,
     r"--kinds: unknown kinds \['hologram'\]"),
    ("face-echo-text", FACE_CHECK + ["{sess_text_echo}", "--enrolled", "{good.png}"], 2,
     r"echo\.npy: not a readable NumPy \.npy array"),
    ("face-echo-no-fs", FACE_CHECK + ["{sess_no_fs}", "--enrolled", "{good.png}"], 2,
     r"session\.json: 'echo' must be .*sample rate"),
    ("face-session-json", FACE_CHECK + ["{sess_bad_json}", "--enrolled", "{good.png}"], 2,
     r"session\.json: .*(JSON|json)"),
    ("face-session-no-frames", FACE_CHECK + ["{sess_empty_dir}"], 2,
     r"sess_empty_dir: holds no image files"),
    ("face-npz-no-fs", FACE_CHECK + ["{no_fs.npz}"], 2, r"no_fs\.npz: .*no 'echo_fs'"),
    ("face-npz-zero-fs", FACE_CHECK + ["{zero_fs.npz}"], 2,
     r"zero_fs\.npz: echo sample rate must be a positive"),
    ("face-npz-no-frames", FACE_CHECK + ["{no_frames.npz}"], 2,
     r"no_frames\.npz: no 'frames'"),
    ("face-npz-text", FACE_CHECK + ["{text.npz}"], 2, r"text\.npz: not a readable NumPy \.npz archive"),
    ("face-npz-nan", FACE_CHECK + ["{nan_frames.npz}"], 2, r"nan_frames\.npz: .*NaN"),
    ("face-one-frame", FACE_CHECK + ["{one_frame.npz}"], 2, r"one_frame\.npz: .*frame"),
    ("face-enrolled-empty", FACE_CHECK + ["{one_frame.npz}", "--enrolled", "{empty.png}"], 2,
     r"empty\.png: empty file"),
    ("face-liveness-max-frames", ["face", "liveness", "--max-frames", "0", "{good.png}"], 2,
     r"--max-frames must be >= 1"),
    # echo
    ("echo-empty", ECHO + ["{empty.npy}"], 2, r"empty\.npy: empty file"),
    ("echo-text", ECHO + ["{text.npy}"], 2, r"text\.npy: not a readable NumPy \.npy array \(corrupt, truncated, text"),
    ("echo-missing", ECHO + ["{nothere.npz}"], 2, r"nothere\.npz: no such file"),
    ("echo-2d", ECHO + ["{echo_2d.npy}"], 2, r"echo_2d\.npy: .*1-D"),
    ("echo-nan", ECHO + ["{echo_nan.npz}"], 2, r"echo_nan\.npz: .*NaN"),
    ("echo-wrong-fs", ECHO + ["{echo_slow.npz}"], 2, r"echo_slow\.npz: .*8000"),
    ("echo-no-samples", ECHO + ["{echo_nosamples.npz}"], 2,
     r"echo_nosamples\.npz: \.npz has no 'samples'"),
    ("echo-bad-fs-flag", ECHO + ["--fs", "0", "{echo_2d.npy}"], 2, r"fs"),
    ("echo-simulate-snr-nan", ["echo", "simulate", "--snr-db", "nan", "{e.npz}"], 2,
     r"snr_db must be a finite number"),
    ("echo-analyze-json-dir", ECHO + ["--json", "{a_dir}", "{echo_2d.npy}"], 2,
     r"a_dir: is a directory; give a file name"),
    ("echo-simulate-out-dir", ["echo", "simulate", "{a_dir}"], 2, r"a_dir: is a directory"),
    ("echo-simulate-under-file", ["echo", "simulate", "{a_file}/x.npz"], 2,
     r"a_file/x\.npz: cannot create it, .*a_file is a file, not a folder"),
    # training
    ("sr-train-lr", ["sr", "train", "--workdir", "{run}", "--learning-rate", "1e6",
                     "--num-steps", "30", "--batch-size", "4", "--patch-size", "24",
                     "--eval-every", "30", "--save-every", "30", "--no-progress"], 2,
     r"training loss became (inf|nan) at step \d+: the run diverged \(lower the learning rate"),
]

# rows that need a model run or training and take more than a few seconds
SLOW = {"sr-train-lr"}


def _materialize(argv, tmp_path):
  out = []
  for tok in argv:
    def sub(m):
      name = m.group(1)
      head = name.split("/")[0]
      if head in FIXTURES and not (tmp_path / head).exists():
        FIXTURES[head](tmp_path / head)
      return str(tmp_path / name)
    out.append(re.sub(r"\{([^}]+)\}", sub, tok))
  return out


def _error_line(err: str) -> str:
  lines = [l for l in err.splitlines() if l.startswith("palmjax:")]
  assert len(lines) == 1, f"expected one 'palmjax:' line on stderr, got:\n{err}"
  return lines[0]


@pytest.mark.parametrize("argv, code, pattern", [
    pytest.param(a, c, p, id=i, marks=[pytest.mark.slow] if i in SLOW else [])
    for i, a, c, p in ROWS])
def test_bad_input_row(argv, code, pattern, tmp_path, capsys):
  argv = _materialize(argv, tmp_path)
  rc = main(argv)
  err = capsys.readouterr().err
  assert "Traceback" not in err
  line = _error_line(err)
  assert rc == code, line
  assert re.search(pattern, line), line
  assert line.startswith("palmjax: error: ") == (code == 2), line


# --- rows that run the real process --------------------------------------------------------

def _run(argv, tmp_path):
  env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1])}
  return subprocess.run([sys.executable, "-m", "palmjax", *argv], capture_output=True,
                        text=True, env=env, cwd=tmp_path, timeout=120)


def test_process_exit_code_and_debug(tmp_path):
  argv = _materialize(ECHO + ["{empty.npy}"], tmp_path)
  r = _run(argv, tmp_path)
  assert r.returncode == 2 and "Traceback" not in r.stderr
  assert re.search(r"empty\.npy: empty file", _error_line(r.stderr))
  # --debug changes nothing for an expected error; an unexpected one shows the traceback
  r = _run(["--debug"] + argv, tmp_path)
  assert r.returncode == 2 and "Traceback" not in r.stderr


# --- permission rows -----------------------------------------------------------------------
# Root ignores file permissions, so as root these rows run the command with the effective
# uid of `nobody` (restored after), in a world-readable folder; modules the command imports
# lazily are imported first, as root.

NOBODY = 65534


@pytest.fixture
def unprivileged(tmp_path):
  """(folder, context manager): the folder to build in and a context that drops root."""
  import contextlib
  if not ROOT:
    yield tmp_path, contextlib.nullcontext
    return
  import tempfile

  import palmjax.palm.detector  # noqa: F401 - lazy imports, done while root
  import palmjax.palm.store  # noqa: F401
  import palmjax.sr.inference  # noqa: F401
  d = pathlib.Path(tempfile.mkdtemp(prefix="palmjax-perm-"))
  d.chmod(0o755)

  @contextlib.contextmanager
  def drop():
    os.seteuid(NOBODY)
    try:
      yield
    finally:
      os.seteuid(0)
  try:
    yield d, drop
  finally:
    shutil.rmtree(d, ignore_errors=True)


def test_unwritable_output_folder(unprivileged, capsys):
  d, drop = unprivileged
  _grey(d / "in.png")
  ro = d / "ro"
  ro.mkdir()
  ro.chmod(0o555)
  assert main(SR + [str(d / "in.png"), str(d / "warm.png")]) == 0  # as root: loads the model
  capsys.readouterr()
  with drop():
    rc = main(SR + [str(d / "in.png"), str(ro / "o.png")])
  line = _error_line(capsys.readouterr().err)
  assert rc == 2 and re.search(r"ro/o\.png: Permission denied", line), line


@pytest.mark.parametrize("where", ["file", "file-in-writable-folder", "folder",
                                   "new-subfolder"])
def test_read_only_field_store(where, unprivileged, capsys):
  d, drop = unprivileged
  _grey(d / "in.png")
  ro = d / "ro"
  ro.mkdir(mode=0o777)
  ro.chmod(0o777)
  store = ro / "store.sqlite"
  if where.startswith("file"):
    _store(store)
    for f in ro.iterdir():
      f.chmod(0o444)
  elif where == "new-subfolder":
    store = ro / "new" / "store.sqlite"
  if where != "file-in-writable-folder":
    ro.chmod(0o555)
  with drop():
    rc = main(["palm", "feedback", "--label", "live", str(d / "in.png"), "--store",
               str(store)])
  line = _error_line(capsys.readouterr().err)
  assert rc == 2 and "not a palmjax field store" not in line
  pattern = (r"ro/new: Permission denied" if where == "new-subfolder" else
             r"store\.sqlite: cannot write the field store \(read-only")
  assert re.search(pattern, line), line


# --- rows that check more than the message -------------------------------------------------

def test_sr_upscale_keeps_its_input_and_respects_the_umask(tmp_path, capsys):
  src = tmp_path / "in.png"
  _grey(src)
  before = src.read_bytes()
  assert main(SR + [str(src), str(src)]) == 2
  assert src.read_bytes() == before
  old = os.umask(0o027)
  try:
    assert main(SR + [str(src), str(tmp_path / "o.png")]) == 0
  finally:
    os.umask(old)
  assert (tmp_path / "o.png").stat().st_mode & 0o777 == 0o640
  for bad in ("tiny1.png", "tiny2.png"):
    FIXTURES[bad](tmp_path / bad)
    assert main(SR + [str(tmp_path / bad), str(tmp_path / "t.png")]) == 2
  assert not (tmp_path / "t.png").exists()
  capsys.readouterr()


def test_damaged_store_takes_no_record(tmp_path, capsys):
  store = tmp_path / "damaged.sqlite"
  _damaged_store(store)
  before = store.read_bytes()
  _grey(tmp_path / "in.png")
  assert main(["palm", "feedback", "--label", "live", str(tmp_path / "in.png"), "--store",
               str(store)]) == 2
  assert store.read_bytes() == before
  capsys.readouterr()


def test_face_simulate_n0_writes_nothing(tmp_path, capsys):
  assert main(["face", "simulate", "--n", "0", "--out", str(tmp_path / "s")]) == 2
  assert not (tmp_path / "s").exists()
  capsys.readouterr()


def test_quickstart_palm_n0_is_refused_before_any_work(tmp_path, capsys):
  assert main(["quickstart", "--palm-n", "0", "--out", str(tmp_path / "q")]) == 2
  out, err = capsys.readouterr()
  assert "==" not in out  # no stage started
  assert not (tmp_path / "q").exists()


def _records(out: str) -> list[dict]:
  return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def test_palm_detect_batch_goes_on(tmp_path, capsys):
  argv = _materialize(["palm", "detect", "{good.png}", "{empty.png}", "{good2.png}",
                       "{bomb.png}"], tmp_path)
  assert main(argv) == 2
  out, err = capsys.readouterr()
  recs = _records(out)
  assert [r["source"] for r in recs] == argv[2:]
  assert [("error" in r) for r in recs] == [False, True, False, True]
  assert "empty.png: empty file" in recs[1]["error"]
  assert 0.0 <= recs[0]["probability"] <= 1.0 and 0.0 <= recs[2]["probability"] <= 1.0
  assert len([l for l in err.splitlines() if l.startswith("palmjax: error:")]) == 2
  assert "Traceback" not in err


def test_face_liveness_batch_goes_on(tmp_path, capsys):
  argv = _materialize(["face", "liveness", "--detector", "haar", "{good.png}", "{text.png}",
                       "{sess_empty_dir}"], tmp_path)
  assert main(argv) == 2
  out, err = capsys.readouterr()
  recs = _records(out)
  assert [r["source"] for r in recs] == argv[4:]
  assert "error" not in recs[0] and recs[0]["decision"] in ("live", "spoof", "recapture")
  assert "text.png: not an image" in recs[1]["error"]
  assert "sess_empty_dir" in recs[2]["error"]
  assert "Traceback" not in err


def test_every_multi_input_command_is_covered():
  """The commands taking many inputs (nargs '+' or '*' positionals) are those whose batch
  behaviour is tested above; a new one must be added here and get a test."""
  import argparse

  from palmjax.cli import build_parser

  def walk(parser, prefix=()):
    for a in parser._actions:
      if isinstance(a, argparse._SubParsersAction):
        for name, sub in a.choices.items():
          yield from walk(sub, prefix + (name,))
      elif not a.option_strings and a.nargs in ("+", "*"):
        yield prefix
  assert set(walk(build_parser())) == {("palm", "detect"), ("face", "liveness")}
