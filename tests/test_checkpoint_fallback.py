"""Damaged checkpoints (issue #18.3): a resume walks back to the newest step that restores,
names what it skipped in one line; a damaged exported model is one clear InputError."""

import pathlib
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from palmjax import checkpointing
from palmjax.cli import main
from palmjax.errors import InputError
from palmjax.models import SRCNNConfig
from palmjax.sr.inference import abstract_params

from test_train_loop import _problem, _run, _state

REPO = pathlib.Path(__file__).resolve().parents[1]


def _data_files(step_dir: pathlib.Path) -> list[pathlib.Path]:
  """The array data files of one saved state (OCDBT ``d/`` files), largest first."""
  files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
  assert files, f"no data files under {step_dir}"
  return sorted(files, key=lambda p: -p.stat().st_size)


def _truncate(d: pathlib.Path) -> None:
  for f in _data_files(d):
    with open(f, "r+b") as fh:
      fh.truncate(f.stat().st_size // 2)


def _garble_metadata(d: pathlib.Path) -> None:
  (next(d.rglob("_METADATA"))).write_text('{"tree_metadata": garbage')


def _delete_shard(d: pathlib.Path) -> None:
  for f in _data_files(d):
    f.unlink()


CORRUPTIONS = {"truncate": _truncate, "garble-metadata": _garble_metadata,
               "delete-shard": _delete_shard}


def _leaves_equal(a, b) -> None:
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
  """A run stopped at step 7 (latest keeps 6 and 7) and the uninterrupted run's result."""
  x, y = _problem()
  root = tmp_path_factory.mktemp("runs")
  full = _run(x, y)
  part = _run(x, y, root / "run", stop_after=7)
  assert part.final_step == 7
  assert sorted(int(p.name) for p in (root / "run" / "latest").iterdir()) == [6, 7]
  return x, y, root / "run", full


def _copy(src: pathlib.Path, dst: pathlib.Path, *, best: bool) -> pathlib.Path:
  shutil.copytree(src, dst)
  if not best:
    shutil.rmtree(dst / "best")
  return dst


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_resume_skips_a_damaged_newest_step_and_ends_identical(interrupted, tmp_path, how):
  x, y, run, full = interrupted
  work = _copy(run, tmp_path / "run", best=False)
  CORRUPTIONS[how](work / "latest" / "7" / "state")
  msgs = []
  res = _run(x, y, work, log=msgs.append)
  skipped = [m for m in msgs if m.startswith("skipped")]
  assert len(skipped) == 1 and "\n" not in skipped[0]
  assert "latest checkpoint step 7" in skipped[0] and str(work) in skipped[0]
  assert "Traceback" not in skipped[0] and len(skipped[0]) < 600
  assert any("resumed from step 6" in m for m in msgs)
  assert res.start_step == 6 and res.final_step == 12
  # The damaged step was moved aside (so step 7 could be saved again) and kept for a look.
  assert (work / "corrupt" / "latest-7").is_dir()
  # Resuming from the older step is still exact: the parameters of an uninterrupted run.
  _leaves_equal(full.state.params, res.state.params)
  assert [h["step"] for h in res.history] == [3, 6, 9, 12]


def test_reason_names_the_damaged_file(interrupted, tmp_path):
  _, _, run, _ = interrupted
  work = _copy(run, tmp_path / "run", best=False)
  files = _data_files(work / "latest" / "7" / "state")
  _truncate(work / "latest" / "7" / "state")
  with checkpointing.RunCheckpoints(work, save_every=3, best_metric="acc") as ck:
    msgs = []
    state, history = ck.resume(_state(), msgs.append)
  assert int(state.step) == 6 and [h["step"] for h in history] == [3, 6]
  assert any(f"{f}: Requested byte range" in msgs[0] for f in files), msgs[0]
  assert "tensorstore_spec" not in msgs[0] and "..." not in msgs[0]


def test_a_damaged_latest_step_falls_back_to_the_best_of_the_same_step(tmp_path):
  with checkpointing.RunCheckpoints(tmp_path, save_every=1, best_metric="acc") as ck:
    for step in (3, 6):
      s = _state().replace(step=step)
      ck.save_latest(step, s, [{"step": step}])
      ck.save_best(step, s, {"acc": float(step)}, [{"step": step}])
    ck.wait()
  _garble_metadata(tmp_path / "latest" / "6" / "state")
  with checkpointing.RunCheckpoints(tmp_path, save_every=1, best_metric="acc") as ck:
    msgs = []
    state, history = ck.resume(_state(), msgs.append)
    assert int(state.step) == 6 and history == [{"step": 6}]
    assert "resumed from step 6 (the best checkpoint)" in msgs[-1]
  # Read-only restores skip a damaged step without moving anything.
  _garble_metadata(tmp_path / "best" / "6" / "state")
  with checkpointing.RunCheckpoints(tmp_path, save_every=1, best_metric="acc") as ck:
    assert int(ck.restore_latest(_state()).step) == 3
    assert ck.history(_state()) == [{"step": 3}]
    with pytest.raises(InputError, match=r"best step 6: JSONDecodeError"):
      ck.restore_best(_state())
  assert (tmp_path / "best" / "6").is_dir()


def test_nothing_restores_is_one_input_error_naming_the_workdir(interrupted, tmp_path):
  x, y, run, _ = interrupted
  work = _copy(run, tmp_path / "run", best=True)
  for d in [*(work / "latest").iterdir(), *(work / "best").iterdir()]:
    _delete_shard(d / "state")
  with pytest.raises(InputError) as e:
    _run(x, y, work, log=lambda m: None)
  text = str(e.value)
  assert "\n" not in text and str(work) in text and "no checkpoint restores" in text
  assert "latest step 7" in text and "latest step 6" in text and "best step" in text
  assert not (work / "corrupt").exists()  # nothing is moved when nothing restores


# --- exported models ------------------------------------------------------------------

TINY = SRCNNConfig(f1=3, f2=1, f3=3, n1=4, n2=2, scale=2)


def _export(directory: pathlib.Path) -> pathlib.Path:
  import dataclasses
  params = jax.tree.map(lambda a: jnp.full(a.shape, 0.01, a.dtype), abstract_params(TINY))
  checkpointing.export_model(directory, params, dataclasses.asdict(TINY))
  return directory


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_damaged_export_is_one_input_error(tmp_path, how):
  model = _export(tmp_path / "m")
  CORRUPTIONS[how](model / "params")
  with pytest.raises(InputError) as e:
    checkpointing.load_exported(model, lambda c: abstract_params(SRCNNConfig.from_dict(c)))
  text = str(e.value)
  assert text.startswith(f"{model}: damaged exported model") and "\n" not in text
  assert len(text) < 600


@pytest.mark.parametrize("how", ["truncate", "delete-shard"])
def test_cli_upscale_with_a_damaged_model_exits_2_with_one_line(tmp_path, how):
  # A real process: Orbax's asyncio/tensorstore echoes of the failure would reach stderr.
  model = _export(tmp_path / "m")
  CORRUPTIONS[how](model / "params")
  img = tmp_path / "a.png"
  Image.fromarray(np.full((12, 10), 100, np.uint8)).save(img)
  r = subprocess.run([sys.executable, "-m", "palmjax", "sr", "upscale", "--scale", "2",
                      "--checkpoint", str(model), str(img), str(tmp_path / "b.png")],
                     capture_output=True, text=True, cwd=REPO, timeout=120)
  assert r.returncode == 2, r.stderr
  assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
  assert r.stderr.startswith(f"palmjax: error: {model}: damaged exported model")
  assert not (tmp_path / "b.png").exists()


@pytest.mark.slow  # three short training sessions through the CLI (~40 s)
def test_cli_train_resumes_past_a_damaged_step_and_fails_cleanly_without_one(tmp_path,
                                                                          capsys):
  imgs = tmp_path / "imgs"
  imgs.mkdir()
  rng = np.random.default_rng(0)
  for i in range(2):
    Image.fromarray((rng.random((30, 32)) * 255).astype(np.uint8)).save(imgs / f"{i}.png")
  work = tmp_path / "run"
  args = ["sr", "train", "--workdir", str(work), "--no-progress", "--scale", "2",
          "--f1", "3", "--f2", "1", "--f3", "3", "--n1", "4", "--n2", "2",
          "--train-dirs", str(imgs), "--val-dir", str(imgs), "--patch-size", "8",
          "--batch-size", "2", "--num-steps", "4", "--save-every", "2", "--eval-every", "2",
          "--log-every", "2", "--warmup-steps", "1"]
  assert main(args) == 0
  capsys.readouterr()
  _truncate(work / "latest" / "4" / "state")
  shutil.rmtree(work / "best")
  assert main(args) == 0
  out = capsys.readouterr().out
  assert "skipped latest checkpoint step 4" in out and "resumed from step 2" in out
  for d in (work / "latest").iterdir():
    _delete_shard(d / "state")
  shutil.rmtree(work / "best")
  assert main(args) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "Traceback" not in err
  assert f"{work}: no checkpoint restores" in err
