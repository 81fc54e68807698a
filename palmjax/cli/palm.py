"""``palmjax palm ...``: palm bone-joint liveness (pipeline P).

Sub-commands are registered from ``_SUBCOMMANDS`` (name -> function adding a parser);
later stages (train / eval / detect / feedback / tune) add their own entry there.
"""

from __future__ import annotations

import argparse
import csv
import os


def _add_simulate(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser(
      "simulate", help="simulate palm X-ray images (live and spoof) as 16-bit PNGs",
      description="Simulate palm bone-joint radiographs with palmjax.data.palm_xray and "
      "write hr/NNNNNN.png and lr/NNNNNN.png (16-bit grey) plus manifest.csv and "
      "manifest.json (label, attack kind, generating parameters) into --out.")
  p.add_argument("--n", type=int, required=True, help="number of samples")
  p.add_argument("--out", required=True, help="output directory (created)")
  p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
  p.add_argument("--batch", type=int, default=64, help="samples per call (default 64)")
  p.add_argument("--sheet", metavar="PNG",
                 help="also write a contact sheet (each attack kind at HR and LR)")
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.data.palm_xray import PalmXrayConfig
  add_dataclass_arguments(p, PalmXrayConfig, helps={
      "size": "HR image size", "scale": "LR factor",
      "live_fraction": "probability of a live sample",
      "style": "simulator look: v1 (the original), v2 (anatomy and display chain of real "
               "radiographs), v3 (v2 framed and displayed as the real train split) or v4 "
               "(v3 with the film plate, faint captures and a longer forearm; the closest "
               "to real radiographs by `palmjax palm realism`)"})
  p.set_defaults(func=_simulate)


def _add_train(sub: argparse._SubParsersAction) -> None:
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.palm.train import PalmTrainConfig
  p = sub.add_parser(
      "train", help="train the liveness classifier on simulated captures (resumable)",
      description="Train the palm liveness classifier (P4-P5) on simulated live/spoof "
      "captures. --input chooses what it sees: the raw LR capture, its bicubic up-scaling "
      "or the SRCNN output (P5 'raw or SR'). Rerunning the same command resumes.")
  p.add_argument("--workdir", default="runs/palm", help="run directory (default: %(default)s)")
  p.add_argument("--export", metavar="DIR", help="export the best classifier there")
  p.add_argument("--no-progress", action="store_true")
  add_dataclass_arguments(p, PalmTrainConfig)
  p.set_defaults(func=_train)


def _add_train_sr(sub: argparse._SubParsersAction) -> None:
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.palm.sr import PalmSRConfig
  p = sub.add_parser("train-sr", help="train the palm SRCNN on simulated capture pairs",
                     description="Fine-tune SRCNN (from the shipped natural-image model of "
                     "the same scale) on simulated (LR capture, HR capture) pairs (P3).")
  p.add_argument("--workdir", default="runs/palm_sr", help="run directory (default: %(default)s)")
  p.add_argument("--export", metavar="DIR", help="export the best model there")
  add_dataclass_arguments(p, PalmSRConfig)
  p.set_defaults(func=_train_sr)


def _add_eval(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("eval", help="PAD metrics (APCER per kind, BPCER, ACER, EER, AUC)",
                     description="Evaluate a classifier on a fresh simulated test split "
                     "(seeds never used in training): ISO/IEC 30107-3 metrics and ROC/DET.")
  p.add_argument("--classifier", help="exported classifier (default: shipped)")
  p.add_argument("--n", type=int, default=1000, help="test samples (default: %(default)s)")
  p.add_argument("--seed", type=int, default=2024, help="test split seed")
  p.add_argument("--only", choices=("model_no_bones", "model_simple_bones",
                                     "model_other_bones", "printed_radiograph"),
                 help="evaluate bona fide + this attack kind only")
  p.add_argument("--threshold", type=float, help="override the saved threshold")
  p.add_argument("--plot", metavar="PNG", help="write ROC/DET curves")
  p.add_argument("--json", metavar="PATH", help="write the report as JSON")
  p.set_defaults(func=_eval)


def _add_detect(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("detect", help="run the pipeline on captures; JSON lines out",
                     description="Quality gate -> SR -> classifier on each IMAGE: a "
                     "low-resolution capture (8/16-bit grey PNG/TIFF/NPY of the model's "
                     "capture size) or a full radiograph of any size (PNG/JPEG/TIFF, 8 or "
                     "16 bit, grey or grey stored as RGB, or DICOM), which is cropped to the "
                     "hand and resampled first. One JSON object per line; its 'input' "
                     "records what loading did (format, bit depth, inversion, crop box, "
                     "scale).")
  p.add_argument("images", nargs="+", metavar="IMAGE")
  p.add_argument("--classifier", help="exported classifier (default: shipped)")
  p.add_argument("--threshold", type=float, help="override the saved threshold")
  p.add_argument("--binary", action="store_true", help="report 0/1 instead of P(live)")
  p.add_argument("--no-quality-gate", action="store_true")
  p.set_defaults(func=_detect)


def _add_feedback(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("feedback", help="record a reviewed field capture for tuning (P6)",
                     description="Run the detector on IMAGE and record it with its reviewed "
                     "true --label in the field store (all records kept; mismatches are the "
                     "tuning samples).")
  p.add_argument("image", metavar="IMAGE")
  p.add_argument("--label", required=True, choices=("live", "spoof"))
  p.add_argument("--store", default="field_store.sqlite", help="SQLite store path")
  p.add_argument("--device-id", default="unknown")
  p.add_argument("--classifier", help="exported classifier (default: shipped)")
  p.set_defaults(func=_feedback)


def _add_tune(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("tune", help="fine-tune the classifier on stored field mistakes (P6)",
                     description="Fine-tune on the store's mistakes mixed with the original "
                     "training data; report before/after metrics on a held-out split; "
                     "publish atomically (previous model kept).")
  p.add_argument("--store", required=True, help="SQLite field store")
  p.add_argument("--classifier", help="classifier to tune (default: shipped)")
  p.add_argument("--publish-to", help="destination (default: --classifier itself)")
  p.add_argument("--workdir", default="runs/palm_tune")
  p.add_argument("--json", metavar="PATH")
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.palm.tune import TuneConfig
  add_dataclass_arguments(p, TuneConfig)
  p.set_defaults(func=_tune)


def _add_realism(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser(
      "realism", help="real-vs-simulated two-sample test (cross-validated AUC)",
      description="Tell real radiographs from as many simulated live captures with a "
      "cross-validated logistic regression on simple image statistics, on 16x16 pixels and "
      "on the 16x16 hand mask (layout), at the capture size. The real radiographs are a "
      "folder (--real DIR: PNG/JPEG/TIFF/DICOM, read by the detector's clinical loader) or "
      "a split of the hand_radiographs "
      "TFDS builder (--manual-dir DIR --data-dir DIR --split S). ROC AUC 0.5 = "
      "indistinguishable, 1 = perfectly separable; the held-out log-loss beside it (0.693 = "
      "a constant guess). Prints a table and one JSON line.")
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--real", metavar="DIR", help="folder of real radiographs")
  src.add_argument("--manual-dir", metavar="DIR",
                   help="hand_radiographs manual directory (<DIR>/<source>/...)")
  p.add_argument("--data-dir", metavar="DIR",
                 help="TFDS data directory of the hand_radiographs builder (with --manual-dir)")
  p.add_argument("--split", default="test", choices=("train", "validation", "test"),
                 help="hand_radiographs split (default test)")
  p.add_argument("--config", default="default",
                 help="hand_radiographs builder config (default, shared, dicom_tree; "
                 "default: default)")
  p.add_argument("--n-sim", type=int, help="simulated captures (default: as many as real)")
  p.add_argument("--seed", type=int, default=0, help="PRNG / fold seed (default 0)")
  p.add_argument("--limit", type=int, help="use a random subset of this many real images")
  p.add_argument("--style", default="v1", help="simulator style (v1, v2, v3, v4; default v1)")
  p.add_argument("--which", choices=("lr", "hr"), default="lr",
                 help="compare the LR capture (the detector's input; default) or the HR one")
  p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
  p.add_argument("--reference", action="store_true",
                 help="also the real-only controls: one random half of the real images "
                 "against the other (the floor, about 0.5) and against the other mirrored "
                 "left-right (how sharply each feature set sees layout)")
  p.add_argument("--regions", action="store_true",
                 help="also where in the frame the samples differ: the pixel and layout "
                 "tests on parts of the 16x16 grid (top / bottom rows, outer ring, centre, "
                 "row and column profiles, a 2x2 grid)")
  p.set_defaults(func=_realism)


def _realism(args: argparse.Namespace) -> int:
  import json

  from palmjax.errors import InputError
  from palmjax.palm import realism

  if args.limit is not None and args.limit < args.folds:
    raise InputError(f"--limit must be >= --folds ({args.folds}), got {args.limit}")
  if args.folds < 2:
    raise InputError(f"--folds must be >= 2, got {args.folds}")
  rep = realism.realism_test(args.real, manual_dir=args.manual_dir, data_dir=args.data_dir,
                             split=args.split, config=args.config, n_sim=args.n_sim,
                             seed=args.seed, limit=args.limit, style=args.style,
                             which=args.which, folds=args.folds,
                             reference=args.reference, regions=args.regions)
  print(realism.summary_table(rep))
  print(json.dumps(rep.to_dict()))
  return 0


_SUBCOMMANDS = {"simulate": _add_simulate, "train": _add_train, "train-sr": _add_train_sr,
                "eval": _add_eval, "detect": _add_detect, "feedback": _add_feedback,
                "tune": _add_tune, "realism": _add_realism}


def _train(args: argparse.Namespace) -> int:
  from palmjax.cli._config import dataclass_from_args
  from palmjax.palm.train import PalmTrainConfig, train
  cfg = dataclass_from_args(PalmTrainConfig, args)
  _, s = train(cfg, args.workdir, export_to=args.export, progress=not args.no_progress)
  h = s["history"][-1] if s["history"] else {}
  print(f"done at step {s['final_step']}: validation ACER {100 * h.get('val_acer', 0):.2f}%, "
        f"AUC {h.get('val_auc', 0):.4f}; threshold {s['threshold']:.3f}")
  return 0


def _train_sr(args: argparse.Namespace) -> int:
  from palmjax.cli._config import dataclass_from_args
  from palmjax.palm.sr import PalmSRConfig, train_palm_sr
  _, s = train_palm_sr(args.workdir, dataclass_from_args(PalmSRConfig, args),
                       export_to=args.export)
  print(f"best validation PSNR {s['best_val_psnr']:.2f} dB")
  return 0


def _eval(args: argparse.Namespace) -> int:
  import json

  import jax

  from palmjax.data.palm_xray import ATTACK_NAMES
  from palmjax.errors import InputError
  from palmjax.io import atomic_path, check_output_path
  from palmjax.metrics import pad_report, plot_roc_det
  from palmjax.palm.detector import PalmLivenessDetector
  from palmjax.palm.train import simulate

  if args.n < 2:
    raise InputError(f"--n must be >= 2, got {args.n}")
  for path in (args.plot, args.json):
    if path:
      check_output_path(path)
  det = PalmLivenessDetector(args.classifier, threshold=args.threshold, quality=None)
  data = simulate(jax.random.key(args.seed), args.n, det.train_config.sim_config(),
                  progress=True, desc="simulating test split")
  if args.only:
    keep = (data["attack"] == 0) | (data["attack"] == ATTACK_NAMES.index(args.only))
    data = {k: v[keep] for k, v in data.items()}
  p = det.probabilities(data["lr"])
  rep = pad_report(p, data["label"], [ATTACK_NAMES[a] for a in data["attack"]],
                   threshold=det.threshold)
  print(rep.markdown(f"palm liveness, {len(p)} simulated test captures (seed {args.seed}), "
                     f"input={det.train_config.input}"))
  if args.plot:
    plot_roc_det(args.plot, {det.train_config.input: (p, data["label"])},
                 title="palm liveness (simulated test split)")
    print(f"wrote {args.plot}")
  if args.json:
    with atomic_path(args.json) as tmp, open(tmp, "w") as f:
      json.dump(rep.to_dict(), f, indent=2)
  return 0


def _detect(args: argparse.Namespace) -> int:
  import json

  from palmjax.palm.detector import PalmLivenessDetector
  import sys

  det = PalmLivenessDetector(args.classifier, threshold=args.threshold, binary=args.binary,
                             quality=None if args.no_quality_gate else _quality())
  # Every input gets a line, in order: a result, or {"source", "error"} for a file that
  # cannot be read (the others are still judged); exit code 2 if any input failed.
  results, errors = det.detect_each(args.images)
  for message in errors.values():
    print(f"palmjax: error: {message}", file=sys.stderr)
  for i, path in enumerate(args.images):
    rec = results[i].to_dict() if i in results else {"source": path, "error": errors[i]}
    print(json.dumps(rec))
  return 2 if errors else 0


def _quality():
  from palmjax.palm.quality import QualityConfig
  return QualityConfig()


def _feedback(args: argparse.Namespace) -> int:
  import json

  from palmjax.io import load_image
  from palmjax.palm.detector import PalmLivenessDetector
  from palmjax.palm.store import FieldStore
  img = load_image(args.image)  # a bad image, then a bad store, before the model runs
  with FieldStore(args.store) as store:
    det = PalmLivenessDetector(args.classifier)
    r = det.detect_files([args.image])[0]
    verdict = {"live": 1, "spoof": 0}.get(r.decision)
    rid = store.add(img.pixels, label=args.label, verdict=verdict, probability=r.probability,
                    device_id=args.device_id, bit_depth=img.bit_depth, source=args.image,
                    model=str(args.classifier or "shipped"))
    counts = store.counts()
  print(json.dumps({"id": rid, "verdict": r.decision, "label": args.label,
                    "mistake": verdict is not None and verdict != (args.label == "live"),
                    **counts}))
  return 0


def _tune(args: argparse.Namespace) -> int:
  import json

  from palmjax.errors import InputError
  from palmjax.io import atomic_path, check_output_path
  from palmjax.palm.detector import default_classifier_path
  from palmjax.cli._config import dataclass_from_args
  from palmjax.palm.tune import TuneConfig, tune
  tcfg = dataclass_from_args(TuneConfig, args)
  if tcfg.num_steps < 1:
    raise InputError(f"--num-steps must be >= 1, got {tcfg.num_steps}")
  if args.json:
    check_output_path(args.json)
  clf = args.classifier or str(default_classifier_path())
  r = tune(args.store, clf, args.workdir, config=tcfg, publish_to=args.publish_to)
  b, a = r["before"], r["after"]
  print("| | ACER | APCER worst | BPCER | field mistakes now correct |")
  print("|---|---:|---:|---:|---:|")
  for name, m in (("before", b), ("after", a)):
    h = m["holdout"]
    print(f"| {name} | {100 * h['acer']:.2f}% | {100 * h['apcer_worst']:.2f}% | "
          f"{100 * h['bpcer']:.2f}% | {100 * m['field_mistakes_now_correct']:.0f}% |")
  if args.json:
    with atomic_path(args.json) as tmp, open(tmp, "w") as f:
      json.dump({k: v for k, v in r.items() if k != "train"}, f, indent=2, default=str)
  return 0


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("palm", help="palm bone-joint liveness: simulate, train, eval, detect, feedback, tune",
                     description=__doc__)
  palm_sub = p.add_subparsers(dest="palm_command", metavar="PALM_COMMAND", required=True)
  for add in _SUBCOMMANDS.values():
    add(palm_sub)


def _simulate(args: argparse.Namespace) -> int:
  import jax
  import numpy as np

  from palmjax.checkpointing import write_json
  from palmjax.data import palm_xray
  from palmjax.errors import InputError
  from palmjax.io import atomic_path, check_output_path, save_image

  if args.n < 1:
    raise InputError(f"--n must be >= 1, got {args.n}")
  if args.batch < 1:
    raise InputError(f"--batch must be >= 1, got {args.batch}")
  from palmjax.cli._config import dataclass_from_args
  cfg = dataclass_from_args(palm_xray.PalmXrayConfig, args)
  out = os.path.abspath(check_output_path(args.out, folder=True))
  if args.sheet:
    check_output_path(args.sheet)
  for sub in ("hr", "lr"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
  key = jax.random.key(args.seed)
  batch = min(args.batch, args.n)
  rows = []
  for start in range(0, args.n, batch):
    b = jax.device_get(palm_xray.sample(key, batch, cfg, start=start))
    for j in range(min(batch, args.n - start)):
      i = start + j
      name = f"{i:06d}.png"
      save_image(os.path.join(out, "hr", name), b["hr"][j], bit_depth=16)
      save_image(os.path.join(out, "lr", name), b["lr"][j], bit_depth=16)
      row = {"index": i, "hr": f"hr/{name}", "lr": f"lr/{name}",
             "label": int(b["label"][j]), "attack": int(b["attack"][j]),
             "attack_name": palm_xray.ATTACK_NAMES[int(b["attack"][j])]}
      row.update({k: float(b["params"][k][j]) for k in palm_xray.PARAM_NAMES
                  if k not in ("attack", "label")})
      rows.append(row)
  with atomic_path(os.path.join(out, "manifest.csv")) as tmp:
    with open(tmp, "w", newline="") as f:
      w = csv.DictWriter(f, fieldnames=list(rows[0]))
      w.writeheader()
      w.writerows(rows)
  write_json(os.path.join(out, "manifest.json"), {
      "seed": args.seed, "n": args.n, "config": _config_dict(cfg),
      "attack_names": list(palm_xray.ATTACK_NAMES), "bit_depth": 16, "samples": rows})
  counts = np.bincount([r["attack"] for r in rows], minlength=len(palm_xray.ATTACK_NAMES))
  print(f"wrote {args.n} samples to {out}: " + ", ".join(
      f"{name} {c}" for name, c in zip(palm_xray.ATTACK_NAMES, counts)))
  if args.sheet:
    # One sample of every attack kind, forced, two per kind.
    kinds = np.repeat(np.arange(len(palm_xray.ATTACK_NAMES)), 2).astype(np.int32)
    sheet = palm_xray.sample(jax.random.fold_in(key, 10**6), len(kinds), cfg,
                             attacks=kinds)
    palm_xray.contact_sheet(jax.device_get(sheet), args.sheet, per_kind=2,
                            title=f"palmjax palm_xray (seed {args.seed}): HR {cfg.size} px, "
                            f"LR x{cfg.scale}")
    print(f"wrote contact sheet {args.sheet}")
  return 0


def _config_dict(cfg) -> dict:
  import dataclasses
  return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
