"""``palmjax quickstart``: the main job on embedded data, a few minutes on a laptop CPU.

Stages (each prints a table and writes its files under ``--out``):

* ``sr``: a short SRCNN training run on scikit-image's bundled images (checkpointed and
  resumable), then the shipped x2/x3/x4 checkpoints evaluated against bicubic on embedded
  images never used for training, and one image up-scaled to PNG.
* ``palm``: simulated palm bone-joint captures (live and the four spoof kinds, from a seed
  the shipped models never saw) through the whole pipeline (quality gate -> palm SRCNN ->
  classifier): the ISO/IEC 30107-3 metrics table, ROC/DET curves and a contact sheet (with
  the ``plot`` extra, matplotlib; skipped with a note without it), and a few captures as
  JSON records, one of them blurred to show a re-capture request.
* ``face``: simulated face-terminal sessions (live, print, mask, a replay on a terminal
  without acoustic hardware, a live session whose echo is missing) through F1-F8 with the
  shipped cue classifiers: proceed / reject / paused / recapture records.
"""

from __future__ import annotations

import argparse
import os
import time

STAGES = ("sr", "palm", "face")


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("quickstart", help="run the main job end to end on embedded data",
                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--out", default="quickstart_out", help="output folder (default: %(default)s)")
  p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                 help="stages to run (default: all)")
  p.add_argument("--sr-steps", type=int, default=200,
                 help="steps of the demonstration SRCNN training run (default: %(default)s)")
  p.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
  p.add_argument("--palm-n", type=int, default=400,
                 help="simulated palm test captures (default: %(default)s)")
  p.set_defaults(func=run)


def _sr_stage(args: argparse.Namespace) -> None:
  import numpy as np

  from palmjax.data import images
  from palmjax.io import load_image
  from palmjax.sr.evaluate import format_table, summarize, evaluate_pool
  from palmjax.sr.inference import default_checkpoint, load_model, upscale_file
  from palmjax.sr.train import SRTrainConfig, train_srcnn

  out = os.path.join(args.out, "sr")
  os.makedirs(out, exist_ok=True)
  print("\n== SRCNN super-resolution (palm patent P2-P3) ==")
  cfg = SRTrainConfig(scale=3, num_steps=args.sr_steps, eval_every=max(args.sr_steps // 2, 1),
                      save_every=max(args.sr_steps // 4, 1), seed=args.seed,
                      warmup_steps=min(100, max(args.sr_steps // 4, 1)))
  _, summary = train_srcnn(cfg, os.path.join(out, "run_x3"), log=lambda s: print("  " + s))
  print(f"  demonstration run: {summary['final_step']} steps, stopped by "
        f"{summary['stopped_by']} (the shipped checkpoints trained far longer)")

  paths = images.embedded_image_paths(images.EMBEDDED_VALID)
  lines = ["| scale | bicubic PSNR | SRCNN PSNR | gain | bicubic SSIM | SRCNN SSIM |",
           "|---:|---:|---:|---:|---:|---:|"]
  for scale in (2, 3, 4):
    if not default_checkpoint(scale).exists():
      print(f"  (no shipped checkpoint for x{scale}; skipped)")
      continue
    model = load_model(scale=scale)
    s = summarize(evaluate_pool(model.params, model.config,
                                images.load_pool(paths, scale, model.config.channels)))
    lines.append(f"| x{scale} | {s['psnr_bicubic']:.2f} | {s['psnr_sr']:.2f} | "
                 f"{s['psnr_gain']:+.2f} | {s['ssim_bicubic']:.4f} | {s['ssim_sr']:.4f} |")
  print("\n  Shipped SRCNN checkpoints on embedded held-out images "
        f"({', '.join(os.path.basename(p) for p in paths)}; Y channel, border = scale):\n")
  print("\n".join("  " + l for l in lines))
  if default_checkpoint(3).exists():
    src = os.path.join(out, "coins_lowres.png")
    coins = load_image(paths[1]).pixels
    from palmjax.kernels import bicubic_resize
    from palmjax.io import save_image
    low = np.asarray(bicubic_resize(coins, coins.shape[0] // 3, coins.shape[1] // 3))
    save_image(src, np.clip(low, 0, 1))
    dst = os.path.join(out, "coins_srcnn_x3.png")
    h, w = upscale_file(src, dst, load_model(scale=3))
    print(f"\n  up-scaled {src} -> {dst} ({w}x{h})")


def _palm_stage(args: argparse.Namespace) -> None:
  import json

  import jax
  import numpy as np

  from palmjax.data import palm_xray
  from palmjax.errors import InputError
  from palmjax.extras import require
  from palmjax.kernels import gaussian_blur
  from palmjax.metrics import pad_report, plot_roc_det
  from palmjax.palm.detector import PalmLivenessDetector, default_classifier_path
  from palmjax.palm.train import simulate

  out = os.path.join(args.out, "palm")
  os.makedirs(out, exist_ok=True)
  print("\n== Palm bone-joint liveness (palm patent P1-P7) ==")
  if not default_classifier_path().exists():
    print("  (no shipped palm classifier; train one with `palmjax palm train --export "
          f"{default_classifier_path()}`)")
    return
  det = PalmLivenessDetector()
  sim = det.train_config.sim_config()
  test = simulate(jax.random.key(90_000 + args.seed), args.palm_n, sim, progress=True,
                  desc="simulating palm captures")
  try:
    require("matplotlib", "the quickstart's plots")
    plots = None
  except InputError as e:  # the core install runs the quickstart; plots need [plot]
    plots = str(e)
  if plots is None:
    sheet = palm_xray.sample(jax.random.key(args.seed), 10, sim,
                             attacks=np.repeat(np.arange(5, dtype=np.int32), 2))
    palm_xray.contact_sheet(sheet, os.path.join(out, "palm_xray_sheet.png"), per_kind=2)
  p = det.probabilities(test["lr"])
  names = [palm_xray.ATTACK_NAMES[a] for a in test["attack"]]
  rep = pad_report(p, test["label"], names, threshold=det.threshold)
  print(f"  classifier input: {det.train_config.input}; threshold {det.threshold:.3f} "
        "(chosen at the validation EER)\n")
  print("\n".join("  " + l for l in rep.markdown(
      f"{args.palm_n} simulated captures, seed {90_000 + args.seed}").splitlines()))
  if plots is None:
    plot_roc_det(os.path.join(out, "palm_roc_det.png"),
                 {det.train_config.input: (p, test["label"])},
                 title="palm liveness, simulated captures")
  demo = test["lr"][:4].copy()
  demo[3] = np.asarray(gaussian_blur(demo[3], 2.5))  # a shaken capture
  print("\n  pipeline records (the last capture blurred on purpose):")
  for r, name in zip(det.detect(demo), names[:3] + [names[3] + " (blurred)"]):
    rec = {"truth": name, **{k: v for k, v in r.to_dict().items() if k != "quality"}}
    print("  " + json.dumps(rec))
  print(f"\n  plots: {out}/palm_roc_det.png, {out}/palm_xray_sheet.png" if plots is None
        else f"\n  plots skipped: {plots}")


def _face_stage(args: argparse.Namespace) -> None:
  import dataclasses
  import json

  import jax

  from palmjax import face

  print("\n== Face-terminal liveness (face patent F1-F8) ==")
  # The demo sessions are simulated whole-frame faces: the simulator-trained cue models
  # score them (the default, real-face models expect detected face crops).
  if not face.sim_models_path().exists():
    print(f"  (no shipped simulator cue models; train them with `palmjax face train --out "
          f"{face.sim_models_path()}`)")
    return
  models = face.load_models(face.sim_models_path())
  cfg = face.FaceCheckConfig()
  scfg = face.SessionConfig(echo=True)
  no_hw = dataclasses.replace(cfg, acoustic_hardware=False)
  short = face.SessionConfig(echo=False, n_frames=3)  # too few frames: F5 corrects lighting
  # (kind, terminal config, note, session config, index of the key/identity)
  demo = [("live", cfg, None, scfg, 0), ("print", cfg, None, scfg, 1),
          ("mask", cfg, None, scfg, 2), ("replay", no_hw, None, scfg, 3),
          ("live", no_hw, "3 frames only", short, 1),
          ("live", cfg, "drop the echo", scfg, 4)]
  for kind, c, note, sc, i in demo:
    sess, enrolled = face.simulate_session(jax.random.key(4_000 + args.seed + i), kind, sc,
                                           identity=60_000 + i)
    if note == "drop the echo":
      sess = dataclasses.replace(sess, recording=None)
    rec = face.check_session(sess, enrolled, models, c)
    keep = ("outcome", "stage", "reason", "similarity", "cue_probabilities",
            "image_probability", "acoustic_probability", "fused_probability")
    what = kind + ("" if c.acoustic_hardware else " (terminal without acoustic hardware)") + \
        (f" ({note})" if note else "")
    print(f"  {what}: " + json.dumps({k: rec.to_dict()[k] for k in keep}, default=float))


def run(args: argparse.Namespace) -> int:
  t0 = time.time()
  os.makedirs(args.out, exist_ok=True)
  if "sr" in args.stages:
    _sr_stage(args)
  if "palm" in args.stages:
    _palm_stage(args)
  if "face" in args.stages:
    _face_stage(args)
  print(f"\nquickstart finished in {time.time() - t0:.0f} s; outputs in {args.out}/")
  return 0
