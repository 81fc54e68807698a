"""``palmjax quickstart``: progress lines, the side-by-side PNG, the glossary, the face
stage's three outcomes, and bad arguments refused before any long work."""

import json
import pathlib
import re
import time

import numpy as np
import pytest
from PIL import Image

from palmjax.cli import main
from palmjax.cli.quickstart import Progress
from palmjax.errors import InputError
from palmjax.metrics.pad import GLOSSARY, glossary_markdown
from palmjax.plotting import side_by_side

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("argv, what", [(["--palm-n", "0"], "--palm-n must be >= 20"),
                                        (["--sr-steps", "0"], "--sr-steps must be >= 1")])
def test_bad_arguments_fail_at_once(tmp_path, capsys, monkeypatch, argv, what):
  from palmjax.cli import quickstart

  def never(*_):
    raise AssertionError("a stage ran")

  for stage in ("_sr_stage", "_palm_stage", "_face_stage"):
    monkeypatch.setattr(quickstart, stage, never)
  assert main(["quickstart", "--out", str(tmp_path / "q")] + argv) == 2
  err = capsys.readouterr().err
  assert what in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
  assert not (tmp_path / "q").exists()


def test_progress_prints_heartbeats_with_detail(capsys):
  prog = Progress(every=0.05)
  with prog.step("waiting"):
    prog.detail = "half way"
    time.sleep(0.35)
  lines = capsys.readouterr().out.splitlines()
  assert lines[0].endswith("] waiting ...") and "waiting: done in 0." in lines[-1]
  beats = [l for l in lines if "s into this step: half way" in l]
  assert 3 <= len(beats) <= 8
  stamps = [float(re.match(r"\[\s*([\d.]+) s\]", l).group(1)) for l in lines]
  assert stamps == sorted(stamps) and stamps[-1] >= 0.35


def test_side_by_side_layout():
  rng = np.random.default_rng(0)
  a, b = rng.random((30, 41, 1)), rng.random((30, 41, 1))
  row = side_by_side([a, b], ["left", "right"], gap=8, strip=16)
  assert row.shape == (16 + 30, 2 * 41 + 8, 1) and row.dtype == np.float32
  np.testing.assert_allclose(row[16:, :41], a, atol=1e-6)
  np.testing.assert_allclose(row[16:, 49:], b, atol=1e-6)
  assert np.all(row[:, 41:49] == 1.0)                 # the gap is white
  assert row[:16, :41].min() < 0.5 and row[:16, 49:].min() < 0.5  # labels drawn
  rgb = side_by_side([rng.random((5, 6, 3))] * 3, ["a", "b", "c"], gap=2, strip=4)
  assert rgb.shape == (9, 3 * 6 + 2 * 2, 3)
  with pytest.raises(InputError, match="share one shape"):
    side_by_side([a, rng.random((30, 40, 1))], ["x", "y"])
  with pytest.raises(InputError, match="2 images for 1 labels"):
    side_by_side([a, b], ["x"])


def test_glossary_table_is_in_the_readme():
  assert [k for k, _ in GLOSSARY] == ["APCER", "BPCER", "ACER", "HTER", "EER", "FTA"]
  assert glossary_markdown() in README.read_text()


@pytest.mark.slow
def test_quickstart_end_to_end_small(tmp_path, capsys):
  out = tmp_path / "q"
  assert main(["quickstart", "--workdir", str(out), "--sr-steps", "4", "--palm-n", "40"]) == 0
  text = capsys.readouterr().out
  # Progress: timestamped lines, none more than a few seconds apart inside or between steps.
  stamps = [float(m) for m in re.findall(r"^\[\s*([\d.]+) s\]", text, re.M)]
  assert len(stamps) > 10 and max(np.diff(stamps)) < 20
  assert "**" not in text  # no raw markdown emphasis
  for term, _ in GLOSSARY:
    assert f"    {term} " in text
  # SR: bicubic | SRCNN in one PNG, 8 px apart, under a 16 px label strip.
  sr = Image.open(out / "sr" / "coins_srcnn_x3.png")
  pair = Image.open(out / "sr" / "coins_bicubic_vs_srcnn_x3.png")
  assert pair.size == (2 * sr.size[0] + 8, sr.size[1] + 16)
  # Face: proceed, an attack past F1 rejected by liveness, paused, each with its reason.
  recs = [json.loads(l) for l in (out / "face" / "records.jsonl").read_text().splitlines()]
  got = [(r["outcome"], r["stage"]) for r in recs]
  assert got[0] == ("proceed", "image") and got[1] == ("reject", "similarity")
  assert got[2][0] == "reject" and got[2][1] in ("acoustic", "f8")
  assert recs[2]["similarity"] >= recs[2]["similarity_threshold"]
  assert recs[2]["image_probability"] is not None and recs[2]["reason"]
  assert got[3] == ("paused", "image") and "paused" in recs[3]["reason"]
  assert got[4] == ("recapture", "input")
  for r in recs:
    assert f"{r['outcome'].upper()} at stage {r['stage']}: {r['reason']}" in text
  assert "These figures and the README's" in text
  # A rerun with other settings in the same folder: one clear line naming --out.
  assert main(["quickstart", "--out", str(out), "--stages", "sr", "--sr-steps", "5"]) == 2
  err = capsys.readouterr().err
  assert "another --out folder" in err and len(err.strip().splitlines()) == 1
