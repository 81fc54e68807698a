"""Palm liveness with real live radiographs in training, judged on held-out real hands.

    python experiments/palm_real.py --manual-dir /data/hand_xray --workdir runs/palm_real \
        [--sim-style v2] [--n-train 6000 --num-steps 3000] [--export DIR] [--report out.json]

``--manual-dir`` is the ``hand_radiographs`` layout (``<dir>/<source>/...``; see
:mod:`palmjax.data.hand_radiographs_tfds`), read with ``shared_subjects=True`` (the sources
may share patient ids). Steps:

1. simulated train / validation captures (``--sim-style``: ``v2`` is the simulator
   calibrated against real radiographs) as in :func:`palmjax.palm.train.make_splits`;
2. the real **train** split's live captures join training (repeated ``--real-repeat``
   times), each with one re-captured copy labelled spoof (:func:`palmjax.palm.augment.
   pseudo_spoofs`: print-and-recapture of a real radiograph: tone curve, blur, new noise,
   requantisation); the real **validation** split (and its re-captures) joins validation,
   so the EER threshold is chosen on real and simulated captures together — never on test;
3. report on the real **test** split (subjects never seen): BPCER with a 95% Wilson
   interval and failure to acquire (the quality gate) reported apart; the same for the
   shipped classifier (before); and on fresh simulated captures of the chosen style: ACER
   with re-captures counted as failures for live captures, worst attack kind as APCER.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np


def load_real(manual_dir: str, data_dir: str) -> dict[str, dict[str, np.ndarray]]:
  from palmjax.data.hand_radiographs_tfds import load_splits
  return load_splits(manual_dir, data_dir, config="shared")


def eval_only(args) -> int:
  """Judges an exported classifier without training (``--eval-only``)."""
  from palmjax.palm import detector as det_lib
  from palmjax.palm import train as T
  path = det_lib.default_classifier_path() if args.eval_only == "shipped" else args.eval_only
  params, cfg, thr, _ = T.load_classifier(path)
  cfg = dataclasses.replace(cfg, sim_style=args.sim_style)
  real = load_real(args.manual_dir, args.data_dir)
  sr_model = T.load_sr_for(cfg)
  report = {"model": str(path), "threshold": thr, "sim_style": args.sim_style,
            "real_test": T.evaluate_real_lives(params, cfg, thr, real["test"]["lr"],
                                               sr_model),
            "sim_test": T.evaluate_simulated(params, cfg, thr, args.n_sim_test, 4048,
                                             sr_model)}
  print(json.dumps(report, indent=1, default=float))
  if args.report:
    from palmjax.checkpointing import write_json
    write_json(args.report, report)
  return 0


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--manual-dir", required=True)
  ap.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"))
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--sim-style", default="v2")
  ap.add_argument("--input", default="bicubic", choices=("lr", "bicubic", "srcnn"))
  ap.add_argument("--n-train", type=int, default=6000)
  ap.add_argument("--n-val", type=int, default=512)
  ap.add_argument("--num-steps", type=int, default=3000)
  ap.add_argument("--real-repeat", type=int, default=3)
  ap.add_argument("--learning-rate", type=float, default=1e-3)
  ap.add_argument("--data-seed", type=int, default=0,
                  help="seed of the simulated train / validation captures (the simulated "
                       "test captures have their own fixed seed)")
  ap.add_argument("--init-from", default=None, metavar="MODEL",
                  help="start from this exported classifier (fine-tuning; a new "
                       "learning-rate schedule of --num-steps)")
  ap.add_argument("--n-sim-test", type=int, default=1000)
  ap.add_argument("--export", default=None)
  ap.add_argument("--report", default=None)
  ap.add_argument("--eval-only", default=None, metavar="MODEL",
                  help="no training: judge this exported classifier ('shipped' = the "
                       "package's default) on the real test split and fresh simulated "
                       "captures of --sim-style (the quality gate as it is now)")
  args = ap.parse_args(argv)
  if args.eval_only:
    return eval_only(args)
  import jax

  from palmjax.palm import detector as det_lib
  from palmjax.palm import train as T
  t0 = time.time()
  cfg = T.PalmTrainConfig(input=args.input, n_train=args.n_train, n_val=args.n_val,
                          num_steps=args.num_steps, sim_style=args.sim_style,
                          learning_rate=args.learning_rate, data_seed=args.data_seed,
                          init_from=args.init_from, eval_every=250, save_every=250)
  real = load_real(args.manual_dir, args.data_dir)
  sr_model = T.load_sr_for(cfg)
  splits = T.make_splits(cfg, progress=False)
  extra = T.add_real_lives(cfg, splits, real, jax.random.key(cfg.data_seed + 7),
                           repeat=args.real_repeat)
  params, summary = T.train(cfg, args.workdir, splits=splits, extra_train=extra,
                            export_to=args.export, progress=False)
  thr = summary["threshold"]
  report = {"config": dataclasses.asdict(cfg), "threshold": thr,
            "real_counts": {k: int(len(v["lr"])) for k, v in real.items()}}
  test = real["test"]
  report["after"] = {"real_test": T.evaluate_real_lives(params, cfg, thr, test["lr"], sr_model),
                     "sim_test": T.evaluate_simulated(params, cfg, thr, args.n_sim_test,
                                                      4048, sr_model)}
  sp, scfg, sthr, _ = T.load_classifier(det_lib.default_classifier_path())
  report["before"] = {"real_test": T.evaluate_real_lives(sp, scfg, sthr, test["lr"],
                                                         T.load_sr_for(scfg)),
                      "sim_test": T.evaluate_simulated(sp, scfg, sthr, args.n_sim_test, 4048)}
  if scfg.sim_style != args.sim_style:
    report["before"]["sim_test_new_style"] = T.evaluate_simulated(
        sp, dataclasses.replace(scfg, sim_style=args.sim_style), sthr, args.n_sim_test, 4048)
  report["seconds"] = time.time() - t0
  print(json.dumps(report, indent=1, default=float))
  if args.report:
    from palmjax.checkpointing import write_json
    write_json(args.report, report)
  return 0


if __name__ == "__main__":
  sys.exit(main())
