"""The wheel carries the shipped models: build it, install it outside the checkout, run it.

Offline: the wheel is built without build isolation (the setuptools of this environment,
declared in the ``test`` extra) from a copy of the sources, installed with ``--no-deps
--no-index`` into a fresh virtual environment, which then reaches this environment's
already-installed dependencies through a ``.pth`` file (added after the install, so pip never
sees this environment's own palmjax). The commands run from a temporary folder outside the
repository, with ``$PALMJAX_CHECKPOINTS`` unset: only the wheel's own files can be found.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import site
import subprocess
import sys
import zipfile

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def _run(cmd, cwd, env, timeout=600):
  r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                     timeout=timeout)
  assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
  return r.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
  """(venv palmjax console script, venv python, a clean environment for them)."""
  tmp = tmp_path_factory.mktemp("wheel")
  env = {k: v for k, v in os.environ.items()
         if k not in ("PYTHONPATH", "PALMJAX_CHECKPOINTS", "PYTHONHOME", "VIRTUAL_ENV")}
  env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
  src = tmp / "src"
  ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
  for name in ("palmjax", "checkpoints"):
    shutil.copytree(REPO / name, src / name, ignore=ignore)
  for name in ("pyproject.toml", "README.md"):
    shutil.copy2(REPO / name, src / name)
  _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--no-index", "-w", tmp / "dist", src], tmp, env)
  (wheel,) = (tmp / "dist").glob("palmjax-*.whl")
  with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
  for f in ("palmjax/checkpoints/srcnn_x3/config.json",
            "palmjax/checkpoints/palm_classifier/config.json",
            "palmjax/checkpoints/palm_srcnn_x2/config.json",
            "palmjax/checkpoints/face_cues/bundle.json",
            "palmjax/assets/face_detection_short_range.tflite"):
    assert f in names, f
  on_disk = {p.relative_to(REPO).as_posix() for p in (REPO / "checkpoints").rglob("*")
             if p.is_file()}
  assert {"palmjax/" + f for f in on_disk} <= names      # every shipped model file travels
  venv = tmp / "venv"
  _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
  py = venv / "bin" / "python"
  _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index",
        wheel], tmp, env)
  purelib = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                 tmp, env).strip()
  deps = [p for p in site.getsitepackages() if os.path.isdir(p)]
  pathlib.Path(purelib, "_palmjax_test_deps.pth").write_text("\n".join(deps) + "\n")
  run_dir = tmp / "run"
  run_dir.mkdir()
  where = _run([py, "-c", "import palmjax, palmjax.assets as a; print(palmjax.__file__); "
                "print(a.checkpoints_dir())"], run_dir, env).split()
  assert all(pathlib.Path(w).is_relative_to(purelib) for w in where), where
  return venv / "bin" / "palmjax", run_dir, env


@pytest.mark.slow
def test_wheel_sr_upscale_matches_the_checkout(installed, tmp_path):
  from PIL import Image
  import skimage.data

  from palmjax.io import save_image
  from palmjax.sr.inference import load_model, upscale_file
  exe, run_dir, env = installed
  low = skimage.data.astronaut()[160:208:2, 180:240:2].astype(np.float32) / 255  # 24x30
  save_image(str(run_dir / "low.png"), low)
  out = _run([exe, "sr", "upscale", "--scale", "3", "low.png", "up.png"], run_dir, env)
  assert out.strip() == "wrote up.png (90x72)"
  upscale_file(run_dir / "low.png", tmp_path / "ref.png", load_model(scale=3))
  with Image.open(run_dir / "up.png") as a, Image.open(tmp_path / "ref.png") as b:
    got, ref = np.asarray(a).astype(int), np.asarray(b).astype(int)
  assert got.shape == (72, 90, 3) and np.abs(got - ref).max() <= 1


@pytest.mark.slow
def test_wheel_palm_detect_and_face_liveness(installed):
  import jax
  import skimage.data

  from palmjax.io import save_image
  from palmjax.palm.train import PalmTrainConfig, simulate
  exe, run_dir, env = installed
  cfg = json.loads((REPO / "checkpoints" / "palm_classifier" / "config.json").read_text())
  sim = PalmTrainConfig.from_dict(cfg["train"]).sim_config()
  for kind in ("live", "printed_radiograph"):
    lr = simulate(jax.random.key(7), 1, sim, only=kind)["lr"][0]
    save_image(str(run_dir / f"{kind}.png"), lr, bit_depth=16)
  out = _run([exe, "palm", "detect", "live.png", "printed_radiograph.png"], run_dir, env)
  live, spoof = [json.loads(line) for line in out.strip().splitlines()]
  assert live["decision"] == "live" and live["probability"] > 0.9, live
  assert spoof["decision"] == "spoof" and spoof["probability"] < 0.1, spoof
  assert live["threshold"] == pytest.approx(cfg["threshold"])
  save_image(str(run_dir / "astronaut.png"), skimage.data.astronaut().astype(np.float32) / 255)
  out = _run([exe, "face", "liveness", "astronaut.png"], run_dir, env)
  (rec,) = [json.loads(line) for line in out.strip().splitlines()]
  assert rec["decision"] == "live" and 0.5 < rec["probability"] < 1, rec
  x0, y0, x1, y1 = rec["face_box"]
  assert x0 < 215 < x1 and y0 < 110 < y1, rec["face_box"]    # around the astronaut's face
