"""Palm pipeline (P1, P1b, P4-P7): quality gate, classifier training, detector, store, tuning."""

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from palmjax.errors import InputError
from palmjax.kernels import gaussian_blur
from palmjax.palm import FieldStore, PalmLivenessDetector, PalmTrainConfig, check_quality
from palmjax.palm import train as palm_train
from palmjax.palm.tune import TuneConfig, tune

# A small, fast configuration: 64 px HR, 32 px LR captures.
CFG = PalmTrainConfig(input="bicubic", image_size=64, scale=2, n_train=32, n_val=32,
                      num_steps=12, eval_every=6, save_every=4, batch_size=8,
                      features=(4, 8, 8), hidden=8, learning_rate=3e-3, warmup_steps=1)


@pytest.fixture(scope="module")
def splits():
  return palm_train.make_splits(CFG, progress=False)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, splits):
  d = tmp_path_factory.mktemp("clf")
  palm_train.train(CFG, d / "run", splits=splits, export_to=str(d / "model"),
                   progress=False, log=lambda s: None)
  return d / "model"


@pytest.mark.slow
def test_a_non_finite_loss_stops_training_naming_its_step(splits, tmp_path, monkeypatch):
  # Losses are read back in blocks (the loop does not wait for every step): a NaN must still
  # be reported with the step it appeared at, before anything is evaluated or saved after it.
  real_step = palm_train.train_step

  def step_with_nan_at_7(state, batch):
    state, m = real_step(state, batch)
    bad = state.step == 7
    return state, {**m, "loss": jnp.where(bad, jnp.nan, m["loss"])}

  monkeypatch.setattr(palm_train, "train_step", step_with_nan_at_7)
  with pytest.raises(FloatingPointError,
                     match=r"loss became nan at step 7: the run diverged"):
    palm_train.train(CFG, tmp_path / "run", splits=splits, progress=False, log=lambda s: None)
  # Checkpoints up to step 6 (the last evaluation, "best") were saved; none at or after 7.
  saved = {int(p.name) for sub in ("latest", "best") for p in (tmp_path / "run" / sub).iterdir()
           if p.name.isdigit()}
  assert 6 in saved and max(saved) == 6


@pytest.mark.slow
def test_quality_gate_passes_captures_and_names_each_failure(splits):
  lr = splits["train"]["lr"]
  ok = [r.ok for r in check_quality(lr)]
  assert np.mean(ok) >= 0.8  # some simulated hands reach beyond the field of view
  blurred = np.clip(np.asarray(gaussian_blur(lr[:8], 2.5)) +
                    np.random.default_rng(0).normal(0, 0.01, lr[:8].shape), 0, 1)
  res = check_quality(blurred)
  assert sum("blurred" in r.reason for r in res) >= 6
  assert check_quality(np.full((32, 32, 1), 0.4, np.float32))[0].reason.startswith("empty")
  cut = np.zeros((32, 32, 1), np.float32)
  cut[:, 4:28] = 0.5  # a hand crossing the whole field of view from top to bottom:
  cut[:, [7, 13, 19, 24]] = 0.85  # soft tissue with bones in it (a flat slab alone is
  # an empty plate to the gate: no hand)
  cut += np.random.default_rng(1).normal(0, 0.02, cut.shape).astype(np.float32)
  assert "incomplete" in check_quality(np.clip(cut, 0, 1))[0].reason
  with pytest.raises(InputError, match="NaN"):
    check_quality(np.full((32, 32, 1), np.nan, np.float32))
  with pytest.raises(InputError, match="channels"):
    check_quality(np.zeros((32, 32, 3), np.float32))


@pytest.mark.slow
def test_classifier_learns_and_resume_is_exact(splits, tmp_path):
  x, y = splits["train"]["image"], splits["train"]["label"]
  import dataclasses
  # A long schedule so the learning rate stays up while it fits one fixed batch.
  state = palm_train.create_train_state(jax.random.key(0),
                                        dataclasses.replace(CFG, num_steps=1000,
                                                            learning_rate=1e-2))
  batch = {"image": x[:16], "label": y[:16].astype(np.int32)}
  losses = []
  for i in range(40):
    if i == 39:  # the step donates its state: keep the last pre-step logits
      logits = np.asarray(state.apply_fn({"params": state.params}, batch["image"]))
    state, m = palm_train.train_step_jit(state, batch)
    losses.append(float(m["loss"]))
  assert np.mean(losses[-5:]) < 0.6 * losses[0]
  # The 0/1 loss is the misclassified share of the batch under the pre-step parameters.
  assert float(m["zero_one"]) == pytest.approx(
      np.mean(logits.argmax(-1) != batch["label"]), abs=1e-6)
  # Interrupted + resumed == uninterrupted.
  pa, _ = palm_train.train(CFG, tmp_path / "a", splits=splits, progress=False,
                           log=lambda s: None)
  palm_train.train(CFG, tmp_path / "b", splits=splits, progress=False, log=lambda s: None,
                   stop_after=5)
  from palmjax.checkpointing import RunCheckpoints
  template = palm_train.create_train_state(jax.random.key(0), CFG)
  palm_train.train(CFG, tmp_path / "b", splits=splits, progress=False, log=lambda s: None)
  la = RunCheckpoints(tmp_path / "a").restore_latest(template)
  lb = RunCheckpoints(tmp_path / "b").restore_latest(template)
  for u, v in zip(jax.tree.leaves(la.params), jax.tree.leaves(lb.params)):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.slow
def test_export_without_stem_fields_loads_with_its_own_architecture(classifier, tmp_path):
  # Exports written before the forensic stem existed have no highpass/pooling fields in
  # their "train" section; the architecture must come from the "model" section, not from
  # today's training defaults.
  import shutil
  old = tmp_path / "old"
  shutil.copytree(classifier, old)
  c = json.loads((old / "config.json").read_text())
  assert tuple(c["model"]["highpass_sigmas"]) == CFG.highpass_sigmas == (1.0,)
  c["train"] = {k: v for k, v in c["train"].items()
                if k not in ("highpass_sigmas", "pooling")}
  (old / "config.json").write_text(json.dumps(c))
  params, cfg, _, _ = palm_train.load_classifier(old)
  assert cfg.highpass_sigmas == (1.0,) and cfg.pooling == CFG.pooling
  assert cfg.model_config() == CFG.model_config()
  assert PalmLivenessDetector(old).model_config == CFG.model_config()
  # Exports from before mirror averaging lack the field in both sections: they keep their
  # single-view inference (and their threshold, chosen without it).
  assert CFG.mirror_tta
  for section in ("train", "model"):
    c[section].pop("mirror_tta")
  (old / "config.json").write_text(json.dumps(c))
  assert not palm_train.load_classifier(old)[1].mirror_tta
  assert not PalmLivenessDetector(old).model_config.mirror_tta


@pytest.mark.slow
def test_detector_results_and_bad_input(classifier, splits, tmp_path):
  det = PalmLivenessDetector(classifier)
  lr = splits["validation"]["lr"][:6]
  res = det.detect(lr)
  assert len(res) == 6
  p = det.probabilities(lr)
  # The gate, computed apart, decides re-capture; otherwise P(live) vs the threshold does.
  from palmjax.palm import quality as quality_lib
  gate = quality_lib.judge(quality_lib.quality_measures(lr, border_px=det.quality.border_px),
                           det.quality)
  for r, g, pi in zip(res, gate, p):
    want = "recapture" if not g.ok else ("live" if pi >= det.threshold else "spoof")
    assert r.decision == want, (r.reason, g.reason)
    assert r.action == {"live": "pass to identity recognition", "spoof": "recognition error",
                        "recapture": "re-capture the palm"}[want]
  np.testing.assert_allclose([r.probability for r in res if r.probability is not None],
                             p[[r.decision != "recapture" for r in res]], rtol=1e-6)
  assert all(r.probability in (0.0, 1.0) for r in PalmLivenessDetector(
      classifier, binary=True).detect(lr) if r.probability is not None)
  # Files: 16-bit PNG works; RGB, wrong size, truncated and NaN inputs are clear errors.
  u16 = (lr[0, ..., 0] * 65535).astype(np.uint16)
  Image.fromarray(u16).save(tmp_path / "c.png")
  r = det.detect_files([tmp_path / "c.png"])[0]
  assert r.source.endswith("c.png") and r.decision in ("live", "spoof", "recapture")
  assert r.input == {"clinical": False, "format": "png", "bit_depth": 16, "colour": "grey",
                     "original_size": [32, 32]}
  # Grey stored as RGB is a capture too (same verdict); a colour photo is refused.
  Image.fromarray(np.repeat((lr[0] * 255).round().astype(np.uint8), 3, -1)).save(
      tmp_path / "rgb.png")
  r_rgb = det.detect_files([tmp_path / "rgb.png"])[0]
  assert r_rgb.input["colour"] == "grey stored as RGB" and r_rgb.decision == r.decision
  colour = np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(np.uint8)
  Image.fromarray(colour).save(tmp_path / "colour.png")
  with pytest.raises(InputError, match="colour image"):
    det.detect_files([tmp_path / "colour.png"])
  # Any other size is a full radiograph: cropped to the hand and resampled (clinical input);
  # a flat one has no hand and is sent to re-capture.
  Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "big.png")
  r_big = det.detect_files([tmp_path / "big.png"])[0]
  assert r_big.input["clinical"] and not r_big.input["hand_found"]
  assert r_big.decision == "recapture" and r_big.reason.startswith("empty")
  big = np.kron(lr[0, ..., 0], np.ones((5, 5)))  # the capture at 5x, in a wide black frame
  wide = np.zeros((200, 420), np.float32)
  wide[20:180, 200:360] = big
  Image.fromarray((wide * 65535).round().astype(np.uint16)).save(tmp_path / "wide.png")
  r_wide = det.detect_files([tmp_path / "wide.png"])[0]
  assert r_wide.input["clinical"] and r_wide.input["original_size"] == [200, 420]
  assert r_wide.input["crop_box"][1] >= 180 and r_wide.to_dict()["input"] == r_wide.input
  data = (tmp_path / "c.png").read_bytes()
  (tmp_path / "t.png").write_bytes(data[:len(data) // 3])
  with pytest.raises(InputError, match="truncated"):
    det.detect_files([tmp_path / "t.png"])
  np.save(tmp_path / "n.npy", np.full((32, 32), np.nan, np.float32))
  with pytest.raises(InputError, match="NaN"):
    det.detect_files([tmp_path / "n.npy"])
  with pytest.raises(InputError, match="no classifier"):
    PalmLivenessDetector(tmp_path / "missing")


def test_store_roundtrip_and_mistakes(tmp_path):
  rng = np.random.default_rng(0)
  imgs = [rng.random((8, 9, 1)).astype(np.float32) for _ in range(4)]
  with FieldStore(tmp_path / "s.sqlite") as s:
    ids = [s.add(imgs[0], label="live", verdict=1, device_id="d1"),
           s.add(imgs[1], label="live", verdict=0, probability=0.2),
           s.add(imgs[2], label=0, verdict=1, probability=0.9),
           s.add(imgs[3], label="spoof", verdict=None)]
    assert ids == sorted(ids)
    assert s.counts() == {"records": 4, "mistakes": 2}
    m = s.mistakes()
    assert [x.id for x in m] == ids[1:3]
    np.testing.assert_array_equal(m[0].pixels, imgs[1])
    assert [x.device_id for x in s.all()][0] == "d1"
    with pytest.raises(InputError, match="label"):
      s.add(imgs[0], label="maybe", verdict=1)
    with pytest.raises(InputError, match="NaN"):
      s.add(np.full((4, 4, 1), np.nan, np.float32), label=1, verdict=1)
  (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 100)
  with pytest.raises(InputError, match="not a palmjax field store"):
    FieldStore(tmp_path / "junk.sqlite")


def _writer(path, n, tag):
  with FieldStore(path) as s:
    for i in range(n):
      s.add(np.full((4, 4, 1), i / n, np.float32), label=i % 2, verdict=0, device_id=tag)


@pytest.mark.slow
def test_store_concurrent_writers_lose_nothing(tmp_path):
  path = str(tmp_path / "c.sqlite")
  FieldStore(path).close()
  ctx = mp.get_context("spawn")
  procs = [ctx.Process(target=_writer, args=(path, 25, f"w{k}")) for k in range(4)]
  for p in procs:
    p.start()
  for p in procs:
    p.join(120)
    assert p.exitcode == 0
  with FieldStore(path) as s:
    rows = s.all()
    assert len(rows) == 100 and s.integrity_ok()
    assert sorted({r.device_id for r in rows}) == ["w0", "w1", "w2", "w3"]
    assert s.counts()["mistakes"] == 4 * 12  # label 1 (odd i) with verdict 0


def test_store_survives_a_killed_writer(tmp_path):
  path = str(tmp_path / "k.sqlite")
  code = ("import sys, numpy as np\n"
          "from palmjax.palm.store import FieldStore\n"
          "s = FieldStore(sys.argv[1])\n"
          "i = 0\n"
          "while True:\n"
          "  s.add(np.random.rand(64, 64, 1).astype(np.float32), label=1, verdict=0)\n"
          "  i += 1\n"
          "  if i == 5: print('ready', flush=True)\n")
  p = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE)
  assert p.stdout.readline().strip() == b"ready"
  time.sleep(0.3)
  os.kill(p.pid, signal.SIGKILL)
  p.wait()
  with FieldStore(path) as s:
    assert s.integrity_ok()
    rows = s.all()  # every committed record reads back with a valid checksum
    assert len(rows) >= 5 and all(r.pixels.shape == (64, 64, 1) for r in rows)


@pytest.mark.slow
def test_tuning_loop_publishes_atomically_and_keeps_old(classifier, splits, tmp_path):
  import shutil
  model = tmp_path / "model"
  shutil.copytree(classifier, model)
  det = PalmLivenessDetector(model)
  va = splits["validation"]
  p = det.probabilities(va["lr"])
  wrong = np.where((p >= det.threshold) != (va["label"] == 1))[0]
  if len(wrong) == 0:  # make one mistake by hand if the tiny model happens to be perfect
    wrong = np.array([0])
  with FieldStore(tmp_path / "f.sqlite") as s:
    for i in wrong[:4]:
      s.add(va["lr"][i], label=int(va["label"][i]), verdict=int(1 - va["label"][i]))
  r = tune(tmp_path / "f.sqlite", model, str(tmp_path / "run"), progress=False,
           log=lambda s: None, config=TuneConfig(num_steps=6, n_original=32, n_holdout=32,
                                                 n_val=32))
  assert r["mistakes"] == min(len(wrong), 4)
  assert r["previous"] and os.path.isdir(r["previous"])
  assert {"holdout", "field_mistakes_now_correct"} <= set(r["after"])
  h = r["after"]["holdout"]
  assert h["acer"] == pytest.approx((h["apcer_worst"] + h["bpcer"]) / 2)  # ISO/IEC 30107-3
  tuned = PalmLivenessDetector(model)
  assert tuned.metrics["tuned_on_mistakes"] == r["mistakes"]
  with pytest.raises(InputError, match="no mistakes"):
    FieldStore(tmp_path / "empty.sqlite").close()
    tune(tmp_path / "empty.sqlite", model, str(tmp_path / "run2"), progress=False)


@pytest.mark.slow
def test_cli_detect_and_feedback(classifier, splits, tmp_path, capsys):
  from palmjax.cli import main
  lr = splits["validation"]["lr"]
  for i in range(2):
    Image.fromarray((lr[i, ..., 0] * 65535).astype(np.uint16)).save(tmp_path / f"{i}.png")
  assert main(["palm", "detect", "--classifier", str(classifier), str(tmp_path / "0.png"),
               str(tmp_path / "1.png")]) == 0
  lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
  assert len(lines) == 2 and {"probability", "decision", "quality", "reason"} <= set(lines[0])
  assert main(["palm", "feedback", "--classifier", str(classifier), "--store",
               str(tmp_path / "s.sqlite"), "--label", "spoof", str(tmp_path / "0.png")]) == 0
  rec = json.loads(capsys.readouterr().out)
  assert rec["records"] == 1 and rec["label"] == "spoof"
  assert main(["palm", "eval", "--classifier", str(classifier), "--n", "16", "--seed", "3",
               "--json", str(tmp_path / "e.json"), "--plot", str(tmp_path / "roc.png")]) == 0
  rep = json.loads((tmp_path / "e.json").read_text())
  assert rep["n_bona_fide"] + sum(rep["n_attack"].values()) == 16
  assert rep["acer"] == pytest.approx((rep["apcer_worst"] + rep["bpcer"]) / 2)
  n_rejected = rep["bpcer"] * rep["n_bona_fide"]  # a count of bona fide captures
  assert n_rejected == pytest.approx(round(n_rejected))
  assert (tmp_path / "roc.png").stat().st_size > 1000
  capsys.readouterr()
  (tmp_path / "bad.png").write_bytes(b"")
  assert main(["palm", "detect", "--classifier", str(classifier),
               str(tmp_path / "bad.png")]) == 2
  assert "empty file" in capsys.readouterr().err
  # A DICOM radiograph (any size) is read through the clinical path; a corrupt one is one
  # clear error line.
  from radiographs import save_dicom
  px = np.kron(lr[0, ..., 0], np.ones((3, 3)))
  save_dicom(tmp_path / "x.dcm", np.round(4095 * (1 - px)), photometric="MONOCHROME1", bits=12)
  assert main(["palm", "detect", "--classifier", str(classifier), str(tmp_path / "x.dcm")]) == 0
  rec = json.loads(capsys.readouterr().out)
  assert rec["input"]["format"] == "dicom" and rec["input"]["inverted"] is True
  data = (tmp_path / "x.dcm").read_bytes()
  (tmp_path / "bad.dcm").write_bytes(data[:400])
  assert main(["palm", "detect", "--classifier", str(classifier),
               str(tmp_path / "bad.dcm")]) == 2
  err = capsys.readouterr().err
  assert "corrupt or unreadable DICOM" in err and len(err.strip().splitlines()) == 1
  # Many inputs: the good ones are judged, the bad one gets an error record, order is kept.
  assert main(["palm", "detect", "--classifier", str(classifier), str(tmp_path / "x.dcm"),
               str(tmp_path / "bad.png"), str(tmp_path / "x.dcm")]) == 2
  recs = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
  assert [r["source"] for r in recs] == [str(tmp_path / n) for n in ("x.dcm", "bad.png",
                                                                      "x.dcm")]
  assert "empty file" in recs[1]["error"] and recs[0]["probability"] == recs[2]["probability"]


def test_store_refuses_a_damaged_file(tmp_path):
  from palmjax.palm.store import FieldStore
  path = tmp_path / "field.sqlite"
  rng = np.random.default_rng(0)
  with FieldStore(path) as s:
    for i in range(30):
      s.add(rng.random((32, 32, 1)).astype(np.float32), label=i % 2, verdict=0)
  size = path.stat().st_size
  assert size > 4 * 4096
  with open(path, "r+b") as f:         # scribble over pages 2 and 3 (b-tree pages)
    f.seek(4096 + 16)
    f.write(rng.integers(0, 256, 2 * 4096, dtype=np.uint8).tobytes())
  with pytest.raises(InputError, match="damaged|not a palmjax field store"):
    FieldStore(path)
  with pytest.raises(InputError, match="is not a file"):
    FieldStore(tmp_path)


def test_log_odds_match_the_probability_and_stay_finite(classifier, splits):
  det = PalmLivenessDetector(classifier)
  inputs = palm_train.classifier_inputs(splits["validation"]["lr"][:16], det.train_config,
                                        det.sr_model)
  p = np.asarray(palm_train.predict_proba(det.params, jnp.asarray(inputs), det.model_config),
                 np.float64)
  z = np.asarray(palm_train.predict_log_odds(det.params, jnp.asarray(inputs),
                                             det.model_config), np.float64)
  # Where float32 keeps both P(live) and P(spoof) away from 0, z = log(p / (1 - p)).
  clear = (p > 1e-4) & (p < 1 - 1e-4)
  np.testing.assert_allclose(z[clear], np.log(p[clear] / (1 - p[clear])), atol=2e-3)
  # Scaling the output layer by 1e4 drives the probabilities to 0 / 1 in float32; the
  # log-odds stay finite and equal a float64 reference from the two views' logits.
  from scipy.special import log_softmax, logsumexp

  from palmjax.models import PalmClassifier
  params = dict(det.params)
  params["logits"] = jax.tree_util.tree_map(lambda a: 1e4 * a, params["logits"])
  x = jnp.asarray(inputs)
  p_big = np.asarray(palm_train.predict_proba(params, x, det.model_config))
  z_big = np.asarray(palm_train.predict_log_odds(params, x, det.model_config), np.float64)
  model = PalmClassifier(det.model_config)
  views = [np.asarray(model.apply({"params": params}, v), np.float64)
           for v in (x, x[:, :, ::-1])]
  logp = logsumexp(np.stack([log_softmax(v, axis=-1) for v in views]), axis=0) - np.log(2)
  assert np.any((p_big == 0.0) | (p_big == 1.0))
  assert np.all(np.isfinite(z_big))
  np.testing.assert_allclose(z_big, logp[:, 1] - logp[:, 0], rtol=1e-4, atol=1e-3)
  res = det.detect(splits["validation"]["lr"][:16])
  for r in res:
    if r.decision != "recapture":
      assert r.log_odds == pytest.approx(z[res.index(r)], abs=1e-4)
      assert r.probability == pytest.approx(1 / (1 + np.exp(-r.log_odds)), rel=1e-9)
