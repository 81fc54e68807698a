"""P5 ablation: does super-resolution help the liveness classifier?

Trains the same classifier, with the same budget (steps, batch, data), on three inputs: the
raw low-resolution capture (``lr``), its bicubic up-scaling (``bicubic``) and the palm SRCNN
output (``srcnn``), over several seeds; reports ACER (threshold chosen at the validation
EER) and ROC AUC on a fresh simulated test split as mean +- std. The patent claims SR helps;
this measures it. ``--oracle-hr`` adds an upper-bound row: the same classifier on the
simulator's true high-resolution capture (what a perfect SR model would hand it), which shows
how much of the liveness evidence the low-resolution capture has lost.

With ``--real DIR`` (the ``hand_radiographs`` manual directory) the real train split's live
radiographs and their print-and-recapture copies join training
(:func:`palmjax.palm.train.add_real_lives`) and each row also reports BPCER on the real
**test** split (subjects never trained on; the oracle row has no real high-resolution image).

    python experiments/palm_sr_ablation.py --seeds 0 1 2 --steps 600 [--sim-style v2 --real DIR]
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from palmjax.data.palm_xray import ATTACK_NAMES, STYLES
from palmjax.metrics import pad_report
from palmjax.palm import train as palm_train


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--sim-style", default="v1", choices=STYLES,
                  help="simulator look (v1: the shipped classifier's, v2: calibrated against "
                  "real radiographs; default v1)")
  ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  ap.add_argument("--steps", type=int, default=600)
  ap.add_argument("--n-train", type=int, default=1024)
  ap.add_argument("--n-test", type=int, default=600)
  ap.add_argument("--n-val", type=int, default=512,
                  help="validation captures (checkpoint and threshold choice; the README's "
                       "CPU tables used 512)")
  ap.add_argument("--inputs", nargs="+", default=list(palm_train.INPUTS))
  ap.add_argument("--oracle-hr", action="store_true",
                  help="also train on the true high-resolution capture (upper bound)")
  ap.add_argument("--workdir", default="runs/palm_sr_ablation")
  ap.add_argument("--real", default=None, help="hand_radiographs manual directory")
  ap.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"),
                  help="TFDS data_dir for --real")
  args = ap.parse_args()
  real = None
  if args.real:
    from palmjax.data.hand_radiographs_tfds import load_splits
    real = load_splits(args.real, args.data_dir, config="shared")  # as palm_real.py

  rows = list(args.inputs) + (["hr (oracle)"] if args.oracle_hr else [])
  results: dict[str, list[tuple[float, float]]] = {k: [] for k in rows}
  real_rows: dict[str, list[dict]] = {k: [] for k in rows}
  for seed in args.seeds:
    base = palm_train.PalmTrainConfig(n_train=args.n_train, num_steps=args.steps,
                                      n_val=args.n_val,
                                      data_seed=seed, seed=seed, eval_every=args.steps,
                                      sim_style=args.sim_style)
    # One simulated split per seed, shared by the three inputs (same data, same budget).
    raw = palm_train.make_splits(base, progress=True, keep_hr=args.oracle_hr)
    test = palm_train.simulate(jax.random.key(10_000 + seed), args.n_test, base.sim_config(),
                               progress=True, desc="simulating test split")
    for row in rows:
      oracle = row == "hr (oracle)"
      # The oracle reuses the bicubic run's config (same image size); only its images differ.
      cfg = palm_train.PalmTrainConfig(**{**base.to_dict(),
                                          "input": "bicubic" if oracle else row})
      sr = palm_train.load_sr_for(cfg)
      inputs = ((lambda d: d["hr"]) if oracle else
                (lambda d: palm_train.classifier_inputs(d["lr"], cfg, sr)))
      splits = {k: {**v, "image": inputs(v)} for k, v in raw.items()}
      name = "hr_oracle" if oracle else row
      extra = (palm_train.add_real_lives(cfg, splits, real, jax.random.key(seed + 7))
               if real and not oracle else None)
      params, summary = palm_train.train(cfg, os.path.join(args.workdir, f"{name}_s{seed}"),
                                         splits=splits, extra_train=extra, progress=True,
                                         log=lambda s: None)
      p = palm_train.batched_proba(params, inputs(test), cfg.model_config())
      rep = pad_report(p, test["label"], [ATTACK_NAMES[a] for a in test["attack"]],
                       threshold=summary["threshold"])
      results[row].append((rep.acer, rep.auc))
      if real and not oracle:
        real_rows[row].append(palm_train.evaluate_real_lives(
            params, cfg, summary["threshold"], real["test"]["lr"], sr))
      print(f"seed {seed} input {row}: ACER {100 * rep.acer:.2f}%  AUC {rep.auc:.4f}"
            + (f"  real BPCER {real_rows[row][-1]['bpcer']:.2%}" if real_rows[row] else ""))

  print(f"\n| input | ACER (sim; mean ± std, {len(args.seeds)} seeds) | ROC AUC |"
        + (" real BPCER (rejected / judged, all seeds) |" if real else ""))
  print("|---|---:|---:|" + ("---:|" if real else ""))
  for row, r in results.items():
    a = np.array(r)
    rr = real_rows[row]
    k, n = sum(x["rejected"] for x in rr), sum(x["n_judged"] for x in rr)
    print(f"| {row} | {100 * a[:, 0].mean():.2f} ± {100 * a[:, 0].std():.2f}% | "
          f"{a[:, 1].mean():.4f} ± {a[:, 1].std():.4f} |"
          + ((f" {k}/{n} ({100 * k / max(n, 1):.1f}%) |" if rr else " - |") if real else ""))


if __name__ == "__main__":
  main()
