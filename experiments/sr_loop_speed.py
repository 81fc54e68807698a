"""Marginal SR training speed of ``palmjax.sr.train.train_srcnn`` (BUILD.md before/after table).

Runs the whole training function (draws, steps, metric read-back, one evaluation and one
checkpoint at the end) for two run lengths on the same in-memory pools and reports
``(n2 - n1) / (t2 - t1)``: the fixed costs (compilation, evaluation, orbax) cancel. Also
reports the process CPU time per step, which is steadier than wall time on a shared machine.

    PYTHONPATH=. python experiments/sr_loop_speed.py --data ../shared/data --size small
    PYTHONPATH=. python experiments/sr_loop_speed.py --data ../shared/data --size default \\
        --steps 10 110

(``PYTHONPATH=.``: a script's folder, not the working directory, starts ``sys.path``.)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from palmjax.data import images
from palmjax.sr.train import SRTrainConfig, train_srcnn

SIZES = {
    "default": {},  # SRCNN 9-5-5 64/32, 32x32 target patches, batch 16
    "small": dict(f1=5, f2=1, f3=3, n1=16, n2=8, patch_size=16),  # loop overhead dominates
}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--data", required=True, help="folder holding T91/ and Set5/")
  ap.add_argument("--size", choices=sorted(SIZES), default="small")
  ap.add_argument("--steps", type=int, nargs=2, default=(20, 4020), metavar=("N1", "N2"))
  ap.add_argument("--images", type=int, default=24, help="T91 images in the pool")
  args = ap.parse_args()
  pool = images.load_pool(images.folder_paths(os.path.join(args.data, "T91"))[:args.images],
                          3, 1, min_size=64)
  val = images.load_pool(images.folder_paths(os.path.join(args.data, "Set5"))[:1], 3, 1)

  def run(n: int) -> tuple[float, float]:
    cfg = SRTrainConfig(scale=3, num_steps=n, eval_every=n, save_every=n, log_every=50,
                        train_dirs=("T91",), **SIZES[args.size])
    with tempfile.TemporaryDirectory() as d:
      t, c = time.perf_counter(), time.process_time()
      train_srcnn(cfg, d, progress=False, log=lambda s: None, train_pool=pool, val_pool=val)
      return time.perf_counter() - t, time.process_time() - c

  n1, n2 = args.steps
  run(n1)  # compilation
  (t1, c1), (t2, c2) = run(n1), run(n2)
  print(f"{args.size}: {n1} steps {t1:.1f} s, {n2} steps {t2:.1f} s -> "
        f"{(n2 - n1) / (t2 - t1):.1f} steps/s wall, "
        f"{1e3 * (c2 - c1) / (n2 - n1):.2f} ms CPU/step")


if __name__ == "__main__":
  main()
