"""Face liveness on real faces: train the cue bundle on NUAA and report on held-out data.

    python experiments/face_nuaa.py --manual-dir /path/to/NUAA --data-dir ~/tensorflow_datasets \
        --out checkpoints/face_cues --report runs/face_nuaa.json

``--manual-dir`` holds ``ClientRaw/`` and ``ImposterRaw/`` (see
:mod:`palmjax.data.nuaa_tfds`). Steps:

1. build the ``nuaa_imposter`` TFDS configs (``protocol``: sessions 1-2 / 3;
   ``subjects``: subjects 1-8 / 9-16) — face detection and crops by the pipeline itself;
2. ``protocol``: train on sessions 1-2 (:func:`palmjax.face.train_real.train_real`; the
   threshold comes from development subjects inside the training part), export the bundle
   to ``--out``, and report on session 3; the simulator-only models on the same crops for
   comparison;
3. ``subjects``: the same recipe trained on subjects 1-8, reported on subjects 9-16;
4. optional ``--extra-spoof-dir``: a folder of attack images from another source (e.g. the
   ``17phonespoof`` phone replays that ship with the public NUAA copy) — APCER only.

Prints markdown tables; ``--report`` writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np


def _load(builder, split):
  ds = builder.as_data_source(split=split)
  ex = [ds[i] for i in range(len(ds))]
  return {k: np.stack([e[k] for e in ex]) for k in ("face", "label", "subject", "session",
                                                    "face_found")}


def _row(name, z, y, thr_z):
  from palmjax.metrics.pad import pad_report
  r = pad_report(z, y, threshold=thr_z)
  return {"name": name, "n_live": int(r.n_bona_fide), "n_attack": int(sum(r.n_attack.values())),
          "auc": r.auc, "apcer": r.apcer_worst, "bpcer": r.bpcer, "acer": r.acer,
          "hter": r.hter, "eer": r.eer}


def _table(rows, title):
  out = [f"**{title}**", "", "| model | live / attack | AUC | APCER | BPCER | ACER | HTER | EER |",
         "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    out.append(f"| {r['name']} | {r['n_live']} / {r['n_attack']} | {r['auc']:.4f} | "
               f"{100 * r['apcer']:.2f}% | {100 * r['bpcer']:.2f}% | {100 * r['acer']:.2f}% | "
               f"{100 * r['hter']:.2f}% | {100 * r['eer']:.2f}% |")
  return "\n".join(out)


def _evaluate(res, test, prefix):
  from palmjax.face import train_real as T
  f = T.crop_features(test["face"], res["features"])
  zc = res["colour"].log_odds(f["colour"])
  zt = res["texture"].log_odds(f["texture"])
  thr_z = res["dev"]["threshold_log_odds"]
  y = test["label"]
  fused = T.fused_log_odds(zc, zt)
  return [_row(f"{prefix}colour (F2)", zc, y, thr_z), _row(f"{prefix}texture (F3)", zt, y, thr_z),
          _row(f"{prefix}**fused (F5)**", fused, y, thr_z)], fused


def _sim_baseline(test):
  """The simulator-only cue models on the same crops (resized to their 64 px frames)."""
  import jax
  import jax.numpy as jnp

  from palmjax import face
  from palmjax.face import train_real as T
  m = face.load_models(face.sim_models_path())
  x = np.asarray(jax.image.resize(jnp.asarray(test["face"], jnp.float32) / 255,
                                  (len(test["face"]), 64, 64, 3), "linear")).clip(0, 1)
  zs = {}
  for c in ("colour", "texture"):
    feats = np.concatenate([face.cue_features(x[i:i + 256, None], m.features,
                                              cues=(c,))[c] for i in range(0, len(x), 256)])
    zs[c] = getattr(m, c).log_odds(feats)
  fused = T.fused_log_odds(zs["colour"], zs["texture"])
  from palmjax.face.fusion import logit
  thr = logit(m.fusion.image_threshold)
  return [_row("simulator-only models, fused (before)", fused, test["label"], thr)]


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--manual-dir", required=True, help="folder with ClientRaw/ and ImposterRaw/")
  ap.add_argument("--data-dir", default=os.path.expanduser("~/tensorflow_datasets"))
  ap.add_argument("--out", default=None, help="export the protocol-trained bundle here")
  ap.add_argument("--report", default=None, help="write all figures as JSON here")
  ap.add_argument("--extra-spoof-dir", default=None,
                  help="attack images of another source (APCER only)")
  ap.add_argument("--source", default="",
                  help="where the manual directory came from (recorded in bundle.json)")
  ap.add_argument("--configs", nargs="+", default=["protocol", "subjects"],
                  choices=["protocol", "subjects"])
  args = ap.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(message)s")
  import tensorflow_datasets as tfds

  from palmjax.data.nuaa_tfds import NuaaImposter
  from palmjax.face import train_real as T
  t0 = time.time()
  report: dict = {"manual_dir": args.manual_dir, "tables": {}}
  for cname in args.configs:
    b = NuaaImposter(config=cname, data_dir=args.data_dir)
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=args.manual_dir))
    train, test = _load(b, "train"), _load(b, "test")
    fta = {s: float(1 - d["face_found"].mean()) for s, d in (("train", train), ("test", test))}
    out = args.out if cname == "protocol" else None
    res = T.train_real(train["face"], train["label"], train["subject"], T.RealTrainConfig(), out,
                       source={"dataset": "nuaa_imposter", "config": cname,
                               "split": "train", "origin": args.source})
    rows, fused = _evaluate(res, test, "")
    f1 = _f1(res, test)
    if cname == "protocol":
      rows += _sim_baseline(test)
      if args.extra_spoof_dir:
        rows.append(_extra_spoofs(res, args.extra_spoof_dir))
    title = {"protocol": "NUAA session 3 (trained on sessions 1-2)",
             "subjects": "NUAA subjects 9-16 (trained on subjects 1-8)"}[cname]
    print("\n" + _table([r for r in rows if "auc" in r], title))
    if any("apcer_only" in r for r in rows):
      r = [r for r in rows if "apcer_only" in r][0]
      print(f"\n{r['name']}: APCER {100 * r['apcer_only']:.2f}% ({r['accepted']} of {r['n']} "
            f"accepted; {r['no_face']} without a face -> recapture)")
    print(f"failure to acquire (no face): train {100 * fta['train']:.2f}%, "
          f"test {100 * fta['test']:.2f}%; threshold {T.RealTrainConfig().dev_bpcer:.0%} "
          f"BPCER on development subjects {res['dev']['subjects']}: "
          f"log-odds {res['dev']['threshold_log_odds']:.2f}")
    print(f"F1 similarity gate (recalibrated on training subjects), test pairs of live faces: "
          f"genuine accepted {100 * f1['genuine_accept']:.1f}%, impostors accepted "
          f"{100 * f1['impostor_accept']:.1f}% at similarity {f1['threshold']} "
          f"({f1['n']} pairs each); before (simulator calibration): "
          f"{100 * f1['genuine_accept_sim']:.1f}% / {100 * f1['impostor_accept_sim']:.1f}%")
    report["tables"][cname] = {"rows": rows, "fta": fta, "dev": res["dev"], "f1": f1,
                               "n_train": int(len(train["label"])),
                               "n_test": int(len(test["label"]))}
  report["seconds"] = time.time() - t0
  if args.report:
    from palmjax.checkpointing import write_json
    write_json(args.report, report)
  return 0


def _f1(res, test, n=400, threshold=0.5):
  """Genuine / impostor acceptance of the F1 gate on live test faces."""
  from palmjax.face import train_real as T
  from palmjax.face.similarity import DEFAULT_CALIBRATION
  gp, ip = T.face_pairs(test["label"], test["subject"], n, seed=1)
  dg, di = T.pair_distances(test["face"], gp), T.pair_distances(test["face"], ip)
  out = {"n": n, "threshold": threshold}
  for suffix, cal in (("", res["similarity"]), ("_sim", DEFAULT_CALIBRATION)):
    out["genuine_accept" + suffix] = float(np.mean([cal(d) >= threshold for d in dg]))
    out["impostor_accept" + suffix] = float(np.mean([cal(d) >= threshold for d in di]))
  return out


def _extra_spoofs(res, folder):
  """APCER on attack images from another source (each detected and cropped like NUAA)."""
  from palmjax.data.nuaa_tfds import face_crop
  from palmjax.face import train_real as T
  from palmjax.io import list_images
  paths = list_images(folder)
  crops, no_face = [], 0
  for p in paths:
    c, found, _, _ = face_crop(p, res["features"].face_size, res["features"].crop_margin)
    if found:
      crops.append(c)
    else:
      no_face += 1
  f = T.crop_features(np.stack(crops), res["features"])
  z = T.fused_log_odds(res["colour"].log_odds(f["colour"]), res["texture"].log_odds(f["texture"]))
  acc = int((z >= res["dev"]["threshold_log_odds"]).sum())
  return {"name": f"other-source attacks ({os.path.basename(os.path.normpath(folder))})",
          "apcer_only": acc / len(z), "accepted": acc, "n": len(z), "no_face": no_face}


if __name__ == "__main__":
  sys.exit(main())
