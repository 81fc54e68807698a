"""Reproduce the shipped SRCNN checkpoints and their Set5/Set14 table.

Recipe: x3 from scratch on T91 + BSD68 (validation on Set5), then x2 and x4 fine-tuned from
the x3 weights (same architecture; only the degradation changes). Every run is resumable:
rerun the script after an interruption and it continues where it stopped.

    python experiments/train_srcnn.py --data ../shared/data --workdir runs/srcnn
    python experiments/train_srcnn.py --data ../shared/data --steps-x3 200 --steps-ft 50  # smoke

Prints the evaluation table (Y channel, border = scale, bicubic computed the same way).
"""

from __future__ import annotations

import argparse
import os
import pathlib

from palmjax.data.images import load_pool
from palmjax.io import list_images
from palmjax.sr import SRTrainConfig, evaluate_pool, load_model, summarize
from palmjax.sr.train import train_srcnn

REPO = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"),
                  help="folder with T91/, BSD68/, Set5/, Set14/ (default: %(default)s)")
  ap.add_argument("--workdir", default="runs/srcnn", help="run directories go here")
  ap.add_argument("--out", default=str(REPO / "checkpoints"), help="export destination")
  ap.add_argument("--steps-x3", type=int, default=8000)
  ap.add_argument("--steps-ft", type=int, default=3000, help="fine-tuning steps for x2, x4")
  ap.add_argument("--scales", type=int, nargs="+", default=[3, 2, 4])
  ap.add_argument("--batch-size", type=int, default=16)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args()

  data = pathlib.Path(args.data)
  train_dirs = (str(data / "T91"), str(data / "BSD68"))
  for scale in args.scales:
    scratch = scale == 3
    cfg = SRTrainConfig(
        scale=scale, train_dirs=train_dirs, val_dir=str(data / "Set5"),
        num_steps=args.steps_x3 if scratch else args.steps_ft,
        learning_rate=1e-3 if scratch else 3e-4, batch_size=args.batch_size,
        warmup_steps=100 if scratch else 10, seed=args.seed, eval_every=500, save_every=250,
        init_from=None if scratch else os.path.join(args.out, "srcnn_x3"))
    train_srcnn(cfg, os.path.join(args.workdir, f"x{scale}"),
                export_to=os.path.join(args.out, f"srcnn_x{scale}"), log=print)

  print("\n| set | scale | bicubic PSNR / SSIM | SRCNN PSNR / SSIM | gain (dB) |")
  print("|---|---:|---:|---:|---:|")
  for name in ("Set5", "Set14"):
    for scale in sorted(args.scales):
      model = load_model(os.path.join(args.out, f"srcnn_x{scale}"))
      s = summarize(evaluate_pool(model.params, model.config,
                                  load_pool(list_images(data / name), scale)))
      print(f"| {name} | x{scale} | {s['psnr_bicubic']:.2f} / {s['ssim_bicubic']:.4f} | "
            f"{s['psnr_sr']:.2f} / {s['ssim_sr']:.4f} | {s['psnr_gain']:+.2f} |")


if __name__ == "__main__":
  main()
