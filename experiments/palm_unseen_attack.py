"""Leave-one-attack-out: how well does the palm classifier catch a spoof kind it never saw?

For each spoof kind, trains on live captures and the other three kinds, then measures APCER
of the held-out kind (threshold chosen at the validation EER, validation without the kind)
and BPCER on a fresh simulated test split. With ``--real DIR`` (the ``hand_radiographs``
manual directory) the real train split's live radiographs join training
(:func:`palmjax.palm.train.add_real_lives`: with their print-and-recapture copies as spoofs,
except when ``printed_radiograph`` is the held-out kind) and each row also reports BPCER on
the real **test** split (subjects never trained on), failure to acquire apart.

    python experiments/palm_unseen_attack.py --steps 600 [--sim-style v2 --real /data/hand_xray]
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
  ap.add_argument("--steps", type=int, default=600)
  ap.add_argument("--n-train", type=int, default=1024)
  ap.add_argument("--n-test", type=int, default=400)
  ap.add_argument("--n-val", type=int, default=512,
                  help="validation captures (checkpoint and threshold choice; the README's "
                       "CPU tables used 512)")
  ap.add_argument("--input", default="bicubic", choices=palm_train.INPUTS)
  ap.add_argument("--kinds", nargs="+", default=list(ATTACK_NAMES[1:]))
  ap.add_argument("--pseudo-spoofs", action="store_true",
                  help="add generic re-captured copies of live captures as spoofs "
                       "(palmjax.palm.augment)")
  ap.add_argument("--workdir", default="runs/palm_unseen")
  ap.add_argument("--real", default=None, help="hand_radiographs manual directory")
  ap.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"),
                  help="TFDS data_dir for --real")
  args = ap.parse_args()

  real = None
  if args.real:
    from palmjax.data.hand_radiographs_tfds import load_splits
    real = load_splits(args.real, args.data_dir, config="shared")  # as palm_real.py
  rows = []
  for kind in args.kinds:
    cfg = palm_train.PalmTrainConfig(input=args.input, n_train=args.n_train, n_val=args.n_val,
                                     num_steps=args.steps, exclude_attacks=(kind,),
                                     pseudo_spoofs=args.pseudo_spoofs, eval_every=args.steps,
                                     sim_style=args.sim_style)
    splits = palm_train.make_splits(cfg, progress=True)
    extra = (palm_train.add_real_lives(cfg, splits, real, jax.random.key(cfg.data_seed + 7),
                                       recaptures=kind != "printed_radiograph")
             if real else None)
    params, summary = palm_train.train(cfg, os.path.join(args.workdir, kind), splits=splits,
                                       extra_train=extra, progress=True, log=lambda s: None)
    sr = palm_train.load_sr_for(cfg)
    test = palm_train.simulate(jax.random.key(777), args.n_test, cfg.sim_config(),
                               progress=True, desc=f"test: live + {kind}")
    keep = (test["attack"] == 0) | (test["attack"] == ATTACK_NAMES.index(kind))
    # Top the split up with forced samples of the held-out kind.
    extra = palm_train.simulate(jax.random.key(778), args.n_test // 2, cfg.sim_config(),
                                only=kind)
    data = {k: np.concatenate([test[k][keep], extra[k]]) for k in ("lr", "label", "attack")}
    p = palm_train.batched_proba(params, palm_train.classifier_inputs(data["lr"], cfg, sr),
                                 cfg.model_config())
    rep = pad_report(p, data["label"], [ATTACK_NAMES[a] for a in data["attack"]],
                     threshold=summary["threshold"])
    r = (palm_train.evaluate_real_lives(params, cfg, summary["threshold"], real["test"]["lr"],
                                        sr) if real else None)
    rows.append((kind, rep.apcer[kind], rep.bpcer, rep.auc, rep.n_attack[kind], r))
    print(f"held out {kind}: APCER {100 * rep.apcer[kind]:.2f}%  BPCER {100 * rep.bpcer:.2f}%"
          + (f"  real BPCER {r['rejected']}/{r['n_judged']}" if r else ""))

  print("\n| held-out kind | APCER (unseen) | BPCER (sim) | ROC AUC | n attacks |"
        + (" real BPCER [95% CI] | real FTA |" if real else ""))
  print("|---|---:|---:|---:|---:|" + ("---:|---:|" if real else ""))
  for kind, apcer, bpcer, auc, n, r in rows:
    print(f"| {kind} | {100 * apcer:.2f}% | {100 * bpcer:.2f}% | {auc:.4f} | {n} |"
          + (f" {r['rejected']}/{r['n_judged']} [{100 * r['bpcer_ci95'][0]:.1f}-"
             f"{100 * r['bpcer_ci95'][1]:.1f}%] | {100 * r['fta']:.1f}% |" if r else ""))
  print(f"| **worst** | **{100 * max(r[1] for r in rows):.2f}%** | | | |")


if __name__ == "__main__":
  main()
