"""``palmjax quickstart``: the main job on embedded data, a few minutes on a laptop CPU.

Stages (each prints a table and writes its files under ``--out``):

* ``sr``: a short SRCNN training run on scikit-image's bundled images (checkpointed and
  resumable), then the shipped x2/x3/x4 checkpoints evaluated against bicubic on embedded
  images never used for training, and one image up-scaled to PNG.
"""

from __future__ import annotations

import argparse
import os
import time

STAGES = ("sr",)


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("quickstart", help="run the main job end to end on embedded data",
                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--out", default="quickstart_out", help="output folder (default: %(default)s)")
  p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                 help="stages to run (default: all)")
  p.add_argument("--sr-steps", type=int, default=200,
                 help="steps of the demonstration SRCNN training run (default: %(default)s)")
  p.add_argument("--seed", type=int, default=0, help="PRNG seed (default: %(default)s)")
  p.set_defaults(func=run)


def _sr_stage(args: argparse.Namespace) -> None:
  import numpy as np

  from palmjax.data import images
  from palmjax.io import load_image
  from palmjax.sr.evaluate import format_table, summarize, evaluate_pool
  from palmjax.sr.inference import default_checkpoint, load_model, upscale_file
  from palmjax.sr.train import SRTrainConfig, train

  out = os.path.join(args.out, "sr")
  os.makedirs(out, exist_ok=True)
  print("\n== SRCNN super-resolution (palm patent P2-P3) ==")
  cfg = SRTrainConfig(scale=3, num_steps=args.sr_steps, eval_every=max(args.sr_steps // 2, 1),
                      save_every=max(args.sr_steps // 4, 1), seed=args.seed,
                      warmup_steps=min(100, max(args.sr_steps // 4, 1)))
  _, summary = train(cfg, os.path.join(out, "run_x3"), log=lambda s: print("  " + s))
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


def run(args: argparse.Namespace) -> int:
  t0 = time.time()
  os.makedirs(args.out, exist_ok=True)
  if "sr" in args.stages:
    _sr_stage(args)
  print(f"\nquickstart finished in {time.time() - t0:.0f} s; outputs in {args.out}/")
  return 0
