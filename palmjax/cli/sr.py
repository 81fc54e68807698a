"""``palmjax sr``: SRCNN super-resolution (palm patent P2-P3): train, eval, upscale."""

from __future__ import annotations

import argparse
import os

from palmjax.cli._config import add_dataclass_arguments, dataclass_from_args


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("sr", help="SRCNN super-resolution: train, eval, upscale",
                     description=__doc__)
  cmds = p.add_subparsers(dest="sr_command", metavar="ACTION", required=True)

  from palmjax.sr.train import SRTrainConfig  # light: no jax work at import
  t = cmds.add_parser(
      "train", help="train an SRCNN (resumes if WORKDIR holds a run)",
      description="Train SRCNN on random patches of image folders (default: scikit-image's "
      "bundled samples). Stops at --num-steps or when the mean loss falls to "
      "--loss-threshold. Checkpoints (latest + best) go to WORKDIR; rerunning the same "
      "command resumes exactly where an interrupted run stopped.")
  t.add_argument("--workdir", default="runs/srcnn", help="run directory (default: %(default)s)")
  t.add_argument("--export", metavar="DIR",
                 help="export the best model there when done (e.g. checkpoints/srcnn_x3)")
  t.add_argument("--no-progress", action="store_true", help="no progress bar")
  add_dataclass_arguments(t, SRTrainConfig)
  from palmjax.parallel import add_distributed_arguments
  add_distributed_arguments(t)
  t.set_defaults(func=_train)

  x = cmds.add_parser("export", help="export a run's best (or latest) model",
                      description="Export the best (or latest) parameters of a training run "
                      "as a deployable model directory (params + config + metrics).")
  x.add_argument("--workdir", required=True, help="training run directory")
  x.add_argument("--out", required=True, help="destination (e.g. checkpoints/srcnn_x3)")
  x.add_argument("--which", choices=("best", "latest"), default="best")
  x.set_defaults(func=_export)

  e = cmds.add_parser("eval", help="PSNR/SSIM (Y, border crop) vs bicubic on a folder",
                      description="Evaluate an SRCNN on a folder of HR images under the SR "
                      "protocol (modcrop, bicubic down/up, Y channel BT.601, border crop = "
                      "scale), next to bicubic.")
  e.add_argument("--data", required=True, help="folder of high-resolution images")
  e.add_argument("--scale", type=int, required=True, help="up-scaling factor (2, 3, 4, ...)")
  e.add_argument("--checkpoint", help="exported model (default: the shipped one for --scale)")
  e.add_argument("--per-image", action="store_true", help="print a row per image")
  e.add_argument("--json", metavar="PATH", help="also write results as JSON")
  e.set_defaults(func=_eval)

  u = cmds.add_parser("upscale", help="super-resolve one image to exactly SCALE x its size",
                      description="Bicubic + SRCNN up-scaling of IN to a PNG of exactly "
                      "SCALE x the input size (16-bit grey input stays 16-bit).")
  u.add_argument("--scale", type=int, required=True, help="up-scaling factor")
  u.add_argument("--checkpoint", help="exported model (default: the shipped one for --scale)")
  u.add_argument("--tile", type=int, metavar="N",
                 help="run the network on N x N output tiles (same result, memory bounded "
                 "by the tile; default: palmjax.sr.inference.DEFAULT_TILE = 256); 0: the "
                 "whole image at once (the 9-5-5 64/32 network then needs about 400 bytes "
                 "per output pixel)")
  u.add_argument("input", metavar="IN", help="input image (PNG/JPEG/BMP/TIFF/NPY)")
  u.add_argument("output", metavar="OUT", help="output PNG path")
  u.set_defaults(func=_upscale)


def _check_scale(scale: int) -> None:
  from palmjax.errors import InputError
  if scale < 2:
    raise InputError(f"--scale must be an integer >= 2, got {scale}")


def _train(args: argparse.Namespace) -> int:
  from palmjax.parallel import initialize_distributed
  from palmjax.sr.train import SRTrainConfig, train_srcnn
  initialize_distributed(args)  # multi-host when flags/env name a coordinator; else no-op
  cfg = dataclass_from_args(SRTrainConfig, args)
  _, summary = train_srcnn(cfg, args.workdir, export_to=args.export,
                     progress=not args.no_progress)
  print(f"stopped by {summary['stopped_by']} at step {summary['final_step']}; best "
        f"validation PSNR {summary['best_val_psnr']:.2f} dB")
  return 0


def _export(args: argparse.Namespace) -> int:
  from palmjax.sr.train import export_run
  export_run(args.workdir, args.out, which=args.which)
  return 0


def _eval(args: argparse.Namespace) -> int:
  import json

  from palmjax.data.images import load_pool
  from palmjax.io import atomic_path, check_output_path, list_images
  from palmjax.sr.evaluate import format_table, summarize, evaluate_pool
  from palmjax.sr.inference import load_model
  _check_scale(args.scale)
  if args.json:
    check_output_path(args.json)
  model = load_model(args.checkpoint, scale=args.scale)
  pool = load_pool(list_images(args.data), args.scale, model.config.channels)
  rows = evaluate_pool(model.params, model.config, pool)
  s = summarize(rows)
  title = (f"{os.path.basename(os.path.normpath(args.data))} x{args.scale} "
           f"(Y channel, border {args.scale})")
  if args.per_image:
    print(format_table(rows, title))
  else:
    print(f"{title}: bicubic {s['psnr_bicubic']:.2f} dB / {s['ssim_bicubic']:.4f}   "
          f"SRCNN {s['psnr_sr']:.2f} dB / {s['ssim_sr']:.4f}   "
          f"gain {s['psnr_gain']:+.2f} dB over {s['images']} images")
  if args.json:
    with atomic_path(args.json) as tmp, open(tmp, "w") as f:
      json.dump({"summary": s, "rows": [r.__dict__ for r in rows]}, f, indent=2)
  return 0


def _upscale(args: argparse.Namespace) -> int:
  from palmjax.errors import InputError
  from palmjax.io import check_output_path
  from palmjax.sr.inference import load_model, upscale_file
  _check_scale(args.scale)
  if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
    raise InputError(f"{args.output}: is the input image; write the result to another file")
  check_output_path(args.output)
  model = load_model(args.checkpoint, scale=args.scale)
  if args.tile is not None and args.tile < 0:
    raise InputError(f"--tile must be >= 0, got {args.tile}")
  tile = {} if args.tile is None else {"tile": args.tile or None}
  h, w = upscale_file(args.input, args.output, model, scale=args.scale, **tile)
  print(f"wrote {args.output} ({w}x{h})")
  return 0
