"""The tuning loop (P6) when a new attack kind appears in the field.

1. Train the classifier without one spoof kind (default: printed_radiograph) and deploy it.
2. In the field, captures arrive (live and the new kind); reviewed mistakes are recorded in
   a FieldStore, as ``palmjax palm feedback`` does.
3. ``tune`` fine-tunes on the stored mistakes mixed with the original data.
4. APCER on the new kind, and BPCER, before and after, on a held-out split.

    python experiments/palm_tuning.py --new-kind printed_radiograph
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from palmjax.data.palm_xray import ATTACK_NAMES, STYLES
from palmjax.metrics import pad_report
from palmjax.palm import train as palm_train
from palmjax.palm.detector import PalmLivenessDetector
from palmjax.palm.store import FieldStore
from palmjax.palm.tune import TuneConfig, tune


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--sim-style", default="v1", choices=STYLES,
                  help="simulator look (v1: the shipped classifier's, v2: calibrated against "
                  "real radiographs; default v1)")
  ap.add_argument("--new-kind", default="printed_radiograph", choices=ATTACK_NAMES[1:])
  ap.add_argument("--steps", type=int, default=600)
  ap.add_argument("--tune-steps", type=int, default=300)
  ap.add_argument("--n-train", type=int, default=1024)
  ap.add_argument("--n-val", type=int, default=512,
                  help="validation captures (checkpoint and threshold choice; the README's "
                       "CPU tables used 512)")
  ap.add_argument("--n-field", type=int, default=200)
  ap.add_argument("--n-test", type=int, default=300)
  ap.add_argument("--input", default="bicubic", choices=palm_train.INPUTS)
  ap.add_argument("--workdir", default="runs/palm_tuning")
  args = ap.parse_args()
  kind = args.new_kind

  cfg = palm_train.PalmTrainConfig(input=args.input, n_train=args.n_train, n_val=args.n_val,
                                   num_steps=args.steps, exclude_attacks=(kind,),
                                   eval_every=args.steps,
                                   sim_style=args.sim_style)
  model = os.path.join(args.workdir, "deployed")
  palm_train.train(cfg, os.path.join(args.workdir, "train"), export_to=model, progress=True,
                   log=lambda s: None)

  sim = cfg.sim_config()
  def split(seed, n):
    live = palm_train.simulate(jax.random.key(seed), n, sim, only="live")
    new = palm_train.simulate(jax.random.key(seed + 1), n, sim, only=kind)
    return {k: np.concatenate([live[k], new[k]]) for k in ("lr", "label", "attack")}

  def measure(path, data):
    det = PalmLivenessDetector(path, quality=None)
    p = det.probabilities(data["lr"])
    return pad_report(p, data["label"], [ATTACK_NAMES[a] for a in data["attack"]],
                      threshold=det.threshold)

  test = split(9001, args.n_test // 2)
  before = measure(model, test)
  field = split(5001, args.n_field // 2)
  det = PalmLivenessDetector(model, quality=None)
  p = det.probabilities(field["lr"])
  store_path = os.path.join(args.workdir, "field.sqlite")
  if os.path.exists(store_path):
    os.remove(store_path)
  with FieldStore(store_path) as store:
    for i in range(len(p)):
      store.add(field["lr"][i], label=int(field["label"][i]),
                verdict=int(p[i] >= det.threshold), probability=float(p[i]),
                device_id="field-terminal-1")
    counts = store.counts()
  print(f"field: {counts['records']} reviewed captures, {counts['mistakes']} mistakes stored")
  tune(store_path, model, os.path.join(args.workdir, "tune"),
       config=TuneConfig(num_steps=args.tune_steps, n_original=args.n_train), log=print)
  after = measure(model, test)
  print(f"\n| new kind in the field: {kind} | APCER({kind}) | BPCER | ACER |")
  print("|---|---:|---:|---:|")
  for name, r in (("before tuning", before), ("after tuning", after)):
    print(f"| {name} | {100 * r.apcer[kind]:.2f}% | {100 * r.bpcer:.2f}% | "
          f"{100 * r.acer:.2f}% |")


if __name__ == "__main__":
  main()
