"""The ``palmjax`` command: help everywhere, SR sub-commands, clean errors."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from palmjax.cli import build_parser, main
from test_bad_input import _bomb  # a PNG header claiming 30000 x 30000 pixels


def _all_subcommand_paths(parser, prefix=()):
  import argparse
  for action in parser._actions:
    if isinstance(action, argparse._SubParsersAction):
      for name, sub in action.choices.items():
        yield prefix + (name,)
        yield from _all_subcommand_paths(sub, prefix + (name,))


def test_help_everywhere(capsys):
  paths = list(_all_subcommand_paths(build_parser()))
  assert ("sr", "train") in paths and ("sr", "upscale") in paths and ("quickstart",) in paths
  for path in [()] + paths:
    with pytest.raises(SystemExit) as e:
      main(list(path) + ["--help"])
    assert e.value.code == 0
    assert "usage: palmjax" in capsys.readouterr().out


def test_console_entry_point_runs():
  out = subprocess.run([sys.executable, "-m", "palmjax", "--version"], capture_output=True,
                       text=True, check=True)
  assert out.stdout.startswith("palmjax ")


def test_sr_upscale_and_errors(tmp_path, capsys):
  rng = np.random.default_rng(0)
  Image.fromarray((rng.random((20, 25)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
  assert main(["sr", "upscale", "--scale", "3", str(tmp_path / "a.png"),
               str(tmp_path / "b.png")]) == 0
  assert Image.open(tmp_path / "b.png").size == (75, 60)
  (tmp_path / "bad.png").write_text("not an image")
  assert main(["sr", "upscale", "--scale", "3", str(tmp_path / "bad.png"),
               str(tmp_path / "c.png")]) == 2
  err = capsys.readouterr().err
  assert "bad.png" in err and "not an image" in err and "Traceback" not in err
  assert not (tmp_path / "c.png").exists()
  assert main(["sr", "upscale", "--scale", "1", str(tmp_path / "a.png"),
               str(tmp_path / "d.png")]) == 2
  assert "scale must be an integer >= 2" in capsys.readouterr().err


def test_sr_eval_prints_gain_next_to_bicubic(tmp_path, capsys):
  from skimage import data
  Image.fromarray(data.camera()[:120, :150]).save(tmp_path / "cam.png")
  assert main(["sr", "eval", "--data", str(tmp_path), "--scale", "3", "--per-image",
               "--json", str(tmp_path / "r.json")]) == 0
  out = capsys.readouterr().out
  assert "bicubic PSNR" in out and "cam.png" in out
  import json
  r = json.loads((tmp_path / "r.json").read_text())
  assert r["summary"]["psnr_sr"] > r["summary"]["psnr_bicubic"]


@pytest.mark.parametrize("flags, message", [
    (["--pooling", "median"], "pooling must be one of"),
    (["--highpass-sigmas", "0"], "highpass_sigmas must be finite and > 0"),
    (["--input", "jpeg"], "input must be one of"),
])
def test_palm_train_bad_model_flags_are_named(tmp_path, capsys, flags, message):
  assert main(["palm", "train", "--workdir", str(tmp_path / "run")] + flags) == 2
  err = capsys.readouterr().err
  assert message in err and "Traceback" not in err
  assert not (tmp_path / "run").exists()


def test_error_boundary(tmp_path, capsys, monkeypatch):
  bomb = tmp_path / "bomb.png"
  _bomb(bomb)
  assert main(["sr", "upscale", "--scale", "2", str(bomb), str(tmp_path / "o.png")]) == 2
  err = capsys.readouterr().err
  assert "bomb.png" in err and ("decompression bomb" in err or "megapixel limit" in err)
  monkeypatch.setenv("PALMJAX_MAX_PIXELS", "1000")
  small = tmp_path / "small.png"
  Image.fromarray(np.zeros((40, 40), np.uint8)).save(small)
  assert main(["sr", "upscale", "--scale", "2", str(small), str(tmp_path / "o.png")]) == 2
  assert "40x40 pixels" in capsys.readouterr().err  # over the configured limit
  monkeypatch.delenv("PALMJAX_MAX_PIXELS")

  def broken(args):
    raise RuntimeError("something nobody expected")

  def no_space(args):
    raise OSError(28, "No space left on device", str(tmp_path / "out.png"))

  import palmjax.cli as cli_mod
  original = cli_mod.build_parser
  for fn, code, text in ((broken, 1, "internal error: RuntimeError: something nobody "
                          "expected (run with --debug"),
                         (no_space, 2, "out.png: No space left on device")):
    parser = original()
    monkeypatch.setattr(cli_mod, "build_parser", lambda p=parser: p)
    args = parser.parse_args(["face", "simulate", "--out", str(tmp_path / "s")])
    monkeypatch.setattr(parser, "parse_args", lambda argv=None, a=args: a)
    args.func = fn
    assert main([]) == code
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err
    args.debug = True
    with pytest.raises((RuntimeError, OSError)):
      main([])


def test_sr_upscale_refuses_to_overwrite_its_input(tmp_path, capsys):
  src = tmp_path / "in.png"
  Image.fromarray((np.random.default_rng(0).random((24, 24)) * 255).astype(np.uint8)).save(src)
  before = src.read_bytes()
  assert main(["sr", "upscale", "--scale", "2", str(src), str(src)]) == 2
  assert "is the input image" in capsys.readouterr().err
  assert src.read_bytes() == before
  assert main(["sr", "upscale", "--scale", "2", str(src), str(tmp_path)]) == 2
  assert "is a directory" in capsys.readouterr().err
