"""Face-terminal liveness (SPEC F1-F8) on simulated sessions: image-only, acoustic-only and
the full cascade, per attack kind (ISO/IEC 30107-3 APCER, BPCER, ACER).

Test sessions use identities and seeds the shipped cue classifiers never saw (training:
identities 0..n, data seed 0; here identities from 50_000, seed 777). Every session gets
frames, an enrolled image and an echo from the same procedural face.

    python experiments/face_terminal.py --n-per-kind 40
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--n-per-kind", type=int, default=40, help="sessions per kind (default 40)")
  ap.add_argument("--seed", type=int, default=777)
  ap.add_argument("--identity-offset", type=int, default=50_000)
  ap.add_argument("--models", default=None, help="cue model directory (default: shipped)")
  ap.add_argument("--out", default=None, help="write records.jsonl and results.json here")
  args = ap.parse_args(argv)

  import jax
  import numpy as np

  from palmjax import face
  from palmjax.echo import acoustic_liveness
  from palmjax.metrics import pad_report

  t0 = time.time()
  models = face.load_models(args.models or face.sim_models_path())
  cfg = face.FaceCheckConfig()
  scfg = face.SessionConfig(echo=True)
  rows = []
  for kind in face.KINDS:
    for i in range(args.n_per_kind):
      ident = args.identity_offset + i
      key = jax.random.fold_in(jax.random.fold_in(jax.random.key(args.seed),
                                                  face.KINDS.index(kind)), i)
      sess, enrolled = face.simulate_session(key, kind, scfg, identity=ident)
      rec = face.check_session(sess, enrolled, models, cfg)
      # Image-only and acoustic-only verdicts on the same session.
      probs = rec.cue_probabilities or models.cue_probabilities(np.asarray(sess.frames))
      fu = face.fuse_image(probs["colour"], probs["texture"], probs["lighting"],
                           rec.frame_count, rec.capture_s, cfg.image)
      er = acoustic_liveness(sess.recording, cfg.echo_config(),
                             blink_times=sess.blink_times if len(sess.blink_times) else None)
      rows.append({"kind": kind, "identity": ident, "outcome": rec.outcome,
                   "stage": rec.stage, "similarity": rec.similarity,
                   "image_p": fu.probability, "image_pass": fu.passed,
                   "acoustic_live": er.live, "acoustic_score": er.score,
                   "record": rec.to_dict()})
    print(f"  {kind}: {args.n_per_kind} sessions ({time.time() - t0:.0f} s)", file=sys.stderr)

  live_like = ("live",)
  pa = [r for r in rows if r["kind"] != "impostor"]
  labels = np.array([r["kind"] in live_like for r in pa], int)
  kinds = [r["kind"] for r in pa]
  systems = {
      "image only (F2-F5)": np.array([float(r["image_pass"]) for r in pa]),
      "acoustic only (F6-F7)": np.array([float(r["acoustic_live"]) for r in pa]),
      "cascade (F1-F8)": np.array([float(r["outcome"] == "proceed") for r in pa]),
  }
  lines = ["| system | " + " | ".join(f"APCER {k}" for k in face.ATTACK_KINDS)
           + " | APCER worst | BPCER | ACER |", "|---|" + "---:|" * (len(face.ATTACK_KINDS) + 3)]
  results = {}
  for name, s in systems.items():
    rep = pad_report(s, labels, kinds, threshold=0.5)
    results[name] = rep.to_dict()
    lines.append(f"| {name} | " + " | ".join(f"{100 * rep.apcer[k]:.1f}%"
                                             for k in face.ATTACK_KINDS)
                 + f" | {100 * rep.apcer_worst:.1f}% | {100 * rep.bpcer:.1f}% | "
                 f"{100 * rep.acer:.1f}% |")
  imp = [r for r in rows if r["kind"] == "impostor"]
  imp_acc = np.mean([r["outcome"] == "proceed" for r in imp])
  imp_gate = np.mean([r["stage"] == "similarity" for r in imp])
  live_gate = np.mean([r["stage"] == "similarity" for r in rows if r["kind"] == "live"])
  out_counts = {k: dict(collections.Counter(r["outcome"] for r in rows if r["kind"] == k))
                for k in face.KINDS}
  print(f"\n**Face terminal, {args.n_per_kind} simulated sessions per kind "
        f"(seed {args.seed}, unseen identities {args.identity_offset}+)**\n")
  print("\n".join(lines))
  print(f"\nImpostors (a different live face): {100 * imp_acc:.1f}% proceed, "
        f"{100 * imp_gate:.1f}% stopped by the F1 similarity gate "
        f"(live users stopped by F1: {100 * live_gate:.1f}%).")
  print("\nOutcomes per kind: " + "; ".join(f"{k}: {v}" for k, v in out_counts.items()))
  print(f"\n({time.time() - t0:.0f} s)")
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "records.jsonl"), "w") as f:
      for r in rows:
        f.write(json.dumps(r, default=float) + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
      json.dump({"table": results, "impostor_proceed": imp_acc, "outcomes": out_counts},
                f, indent=2, default=float)
  return 0


if __name__ == "__main__":
  sys.exit(main())
