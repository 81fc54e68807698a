"""Failure to acquire (re-capture rate of the quality gate) on real and simulated live hands.

Real: every radiograph of the ``hand_radiographs`` builder (all splits), read from the
manual directory ``--real`` (``<dir>/<source>/...``, see
:mod:`palmjax.data.hand_radiographs_tfds`) through the clinical input path, so the gate
sees exactly what ``palmjax palm detect`` would. Simulated: ``--n-sim`` live captures of the
simulator for each style of ``--sim-styles`` (seed ``--seed``). FTA is reported per
source with its count and the gate's reasons; it is not part of BPCER.

    python experiments/palm_fta.py --real /work/data/hand_xray --n-sim 512
"""

from __future__ import annotations

import argparse
import collections

import jax
import numpy as np
import tensorflow_datasets as tfds

from palmjax.data.hand_radiographs_tfds import HandRadiographs
from palmjax.palm.quality import check_quality
from palmjax.palm.train import PalmTrainConfig, simulate


def fta(images: np.ndarray) -> dict:
  res = check_quality(images)
  failed = [r for r in res if not r.ok]
  reasons = collections.Counter(r.reason.split(" (")[0] for r in failed)
  return {"n": len(res), "recapture": len(failed), "fta": len(failed) / max(len(res), 1),
          "reasons": dict(reasons)}


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--real", help="manual directory of real radiographs (<dir>/<source>/...)")
  ap.add_argument("--data-dir", default="/tmp/palmjax_tfds", help="TFDS data_dir")
  ap.add_argument("--n-sim", type=int, default=512, help="simulated live captures")
  ap.add_argument("--seed", type=int, default=77)
  ap.add_argument("--sim-styles", default="v1,v2",
                  help="simulator styles to measure, comma-separated (palm_xray.STYLES)")
  ap.add_argument("--json", help="write the figures here")
  args = ap.parse_args()
  out = {}
  if args.real:
    b = HandRadiographs(data_dir=args.data_dir)
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=args.real))
    by_source: dict[str, list] = collections.defaultdict(list)
    split_counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for split in b.info.splits:
      ds = b.as_data_source(split=split)
      for i in range(len(ds)):
        ex = ds[i]
        src = ex["source"].decode()
        by_source[src].append(ex["image"].astype(np.float32) / 65535.0)
        split_counts[src][split] += 1
    for src, imgs in sorted(by_source.items()):
      out[f"real:{src}"] = {**fta(np.stack(imgs)), "splits": dict(split_counts[src])}
  for style in filter(None, args.sim_styles.split(",")) if args.n_sim > 0 else ():
    sim = simulate(jax.random.key(args.seed), args.n_sim,
                   PalmTrainConfig(sim_style=style).sim_config(), only="live")
    out[f"simulated live ({style})"] = fta(sim["lr"])
  print("| captures | n | re-capture | FTA | reasons |")
  print("|---|---:|---:|---:|---|")
  for name, r in out.items():
    reasons = ", ".join(f"{k}: {v}" for k, v in r["reasons"].items()) or "-"
    print(f"| {name} | {r['n']} | {r['recapture']} | {100 * r['fta']:.2f}% | {reasons} |")
  for name, r in out.items():
    if "splits" in r:
      print(f"{name} splits: {r['splits']}")
  if args.json:
    from palmjax.checkpointing import write_json
    write_json(args.json, out)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
