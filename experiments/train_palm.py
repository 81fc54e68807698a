"""Reproduce the shipped palm checkpoints: palm SRCNN x2 and the liveness classifier.

1. SRCNN x2 fine-tuned (from the shipped natural-image x2 model) on simulated pairs of
   low- and high-resolution captures of the same hand (P3).
2. The liveness classifier (``PalmTrainConfig`` defaults: 16-32-64-128 conv blocks with the
   forensic residual stem and mean/max/std pooling, mirror test-time averaging, 96,000
   simulated captures, 32,000 steps of batch 32, 2,048 validation captures) trained on
   simulated live/spoof captures, seeing the SRCNN output (P4-P5; the patent's main
   embodiment), decision threshold at the validation EER. On one H100 about 5 min (the
   shipped model: simulating ~8,000 captures/s, SR ~8,000 images/s, ~200 steps/s); on a
   2-core CPU about 6 h (~40 min simulating, ~2 h super-resolving, ~3 h training).
3. ISO/IEC 30107-3 metrics on a fresh simulated test split (a seed training never saw).

    python experiments/train_palm.py                       # full recipe
    python experiments/train_palm.py --sr-steps 0          # classifier only (shipped SRCNN)
    python experiments/train_palm.py --sr-steps 0 --no-progress --n-test 4000 --test-seed 4048
                                                           # how the shipped one was made
    python experiments/train_palm.py --sr-steps 20 --clf-steps 20 --n-train 64 --out /tmp/x
"""

from __future__ import annotations

import argparse
import os
import pathlib

import jax

from palmjax.data.palm_xray import ATTACK_NAMES, STYLES
from palmjax.metrics import pad_report, plot_roc_det
from palmjax.palm.detector import PalmLivenessDetector
from palmjax.palm.sr import PalmSRConfig, train_palm_sr
from palmjax.palm.train import PalmTrainConfig, simulate, train

REPO = pathlib.Path(__file__).resolve().parents[1]


def comma_separated_ints(text: str) -> tuple[int, ...]:
  return tuple(int(f) for f in text.split(","))


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--sim-style", default="v1", choices=STYLES,
                  help="simulator look (v1: the shipped classifier's, v2: calibrated against "
                  "real radiographs; default v1)")
  ap.add_argument("--workdir", default="runs/palm_recipe")
  ap.add_argument("--out", default=str(REPO / "checkpoints"))
  ap.add_argument("--input", default="srcnn", choices=("lr", "bicubic", "srcnn"))
  ap.add_argument("--sr-steps", type=int, default=600)
  ap.add_argument("--clf-steps", type=int, default=PalmTrainConfig.num_steps)
  ap.add_argument("--n-train", type=int, default=PalmTrainConfig.n_train)
  ap.add_argument("--n-val", type=int, default=PalmTrainConfig.n_val)
  ap.add_argument("--features", default=PalmTrainConfig.features,
                  type=comma_separated_ints,
                  help="conv block widths, comma-separated (default 16,32,64,128)")
  ap.add_argument("--hidden", type=int, default=PalmTrainConfig.hidden)
  ap.add_argument("--n-test", type=int, default=1000)
  ap.add_argument("--no-progress", action="store_true",
                  help="log lines at each evaluation instead of progress bars (batch jobs)")
  ap.add_argument("--test-seed", type=int, default=2024)
  args = ap.parse_args()

  sr_path = os.path.join(args.out, "palm_srcnn_x2")
  if args.input == "srcnn" and args.sr_steps > 0:  # --sr-steps 0: keep the palm SRCNN there
    train_palm_sr(os.path.join(args.workdir, "sr"), PalmSRConfig(num_steps=args.sr_steps),
                  export_to=sr_path, log=lambda m: print(m, flush=True))
  clf_path = os.path.join(args.out, "palm_classifier")
  # The shipped classifier names no SRCNN path (it uses the shipped palm_srcnn_x2, found
  # relative to the checkpoints folder wherever the repository lives).
  shipped = os.path.realpath(args.out) == os.path.realpath(REPO / "checkpoints")
  cfg = PalmTrainConfig(input=args.input, n_train=args.n_train, num_steps=args.clf_steps,
                        n_val=args.n_val, hidden=args.hidden,
                        features=tuple(args.features),
                        sr_checkpoint=(None if shipped or args.input != "srcnn"
                                       or args.sr_steps == 0 else sr_path),
                        sim_style=args.sim_style)
  train(cfg, os.path.join(args.workdir, "classifier"), export_to=clf_path,
        progress=not args.no_progress, log=lambda m: print(m, flush=True))

  det = PalmLivenessDetector(clf_path, quality=None)
  test = simulate(jax.random.key(args.test_seed), args.n_test, det.train_config.sim_config(),
                  progress=True, desc="simulating test split")
  p = det.probabilities(test["lr"])
  rep = pad_report(p, test["label"], [ATTACK_NAMES[a] for a in test["attack"]],
                   threshold=det.threshold)
  print(rep.markdown(f"palm liveness on {args.n_test} fresh simulated captures "
                     f"(seed {args.test_seed}, input={args.input})"))
  plot_roc_det(os.path.join(args.workdir, "palm_roc_det.png"),
               {args.input: (p, test["label"])}, title="palm liveness, simulated test split")


if __name__ == "__main__":
  main()
