"""``palmjax palm ...``: palm bone-joint liveness (pipeline P).

Sub-commands are registered from ``_SUBCOMMANDS`` (name -> function adding a parser);
later stages (train / eval / detect / feedback / tune) add their own entry there.
"""

from __future__ import annotations

import argparse
import csv
import os


def _add_simulate(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser(
      "simulate", help="simulate palm X-ray images (live and spoof) as 16-bit PNGs",
      description="Simulate palm bone-joint radiographs with palmjax.data.palm_xray and "
      "write hr/NNNNNN.png and lr/NNNNNN.png (16-bit grey) plus manifest.csv and "
      "manifest.json (label, attack kind, generating parameters) into --out.")
  p.add_argument("--n", type=int, required=True, help="number of samples")
  p.add_argument("--out", required=True, help="output directory (created)")
  p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
  p.add_argument("--size", type=int, default=128, help="HR image size (default 128)")
  p.add_argument("--scale", type=int, default=2, help="LR factor (default 2)")
  p.add_argument("--batch", type=int, default=64, help="samples per call (default 64)")
  p.add_argument("--live-fraction", type=float, default=0.5,
                 help="probability of a live sample (default 0.5)")
  p.add_argument("--sheet", metavar="PNG",
                 help="also write a contact sheet (each attack kind at HR and LR)")
  p.set_defaults(func=_simulate)


_SUBCOMMANDS = {"simulate": _add_simulate}


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("palm", help="palm bone-joint liveness: simulate data, ...",
                     description=__doc__)
  palm_sub = p.add_subparsers(dest="palm_command", metavar="PALM_COMMAND", required=True)
  for add in _SUBCOMMANDS.values():
    add(palm_sub)


def _simulate(args: argparse.Namespace) -> int:
  import jax
  import numpy as np

  from palmjax.checkpointing import write_json
  from palmjax.data import palm_xray
  from palmjax.errors import InputError
  from palmjax.io import atomic_path, save_image

  if args.n < 1:
    raise InputError(f"--n must be >= 1, got {args.n}")
  if args.batch < 1:
    raise InputError(f"--batch must be >= 1, got {args.batch}")
  cfg = palm_xray.PalmXrayConfig(size=args.size, scale=args.scale,
                                 live_fraction=args.live_fraction)
  out = os.path.abspath(args.out)
  if os.path.exists(out) and not os.path.isdir(out):
    raise InputError(f"--out {out}: exists and is not a directory")
  for sub in ("hr", "lr"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
  key = jax.random.key(args.seed)
  batch = min(args.batch, args.n)
  rows = []
  for start in range(0, args.n, batch):
    b = jax.device_get(palm_xray.sample(key, batch, cfg, start=start))
    for j in range(min(batch, args.n - start)):
      i = start + j
      name = f"{i:06d}.png"
      save_image(os.path.join(out, "hr", name), b["hr"][j], bit_depth=16)
      save_image(os.path.join(out, "lr", name), b["lr"][j], bit_depth=16)
      row = {"index": i, "hr": f"hr/{name}", "lr": f"lr/{name}",
             "label": int(b["label"][j]), "attack": int(b["attack"][j]),
             "attack_name": palm_xray.ATTACK_NAMES[int(b["attack"][j])]}
      row.update({k: float(b["params"][k][j]) for k in palm_xray.PARAM_NAMES
                  if k not in ("attack", "label")})
      rows.append(row)
  with atomic_path(os.path.join(out, "manifest.csv")) as tmp:
    with open(tmp, "w", newline="") as f:
      w = csv.DictWriter(f, fieldnames=list(rows[0]))
      w.writeheader()
      w.writerows(rows)
  write_json(os.path.join(out, "manifest.json"), {
      "seed": args.seed, "n": args.n, "config": _config_dict(cfg),
      "attack_names": list(palm_xray.ATTACK_NAMES), "bit_depth": 16, "samples": rows})
  counts = np.bincount([r["attack"] for r in rows], minlength=len(palm_xray.ATTACK_NAMES))
  print(f"wrote {args.n} samples to {out}: " + ", ".join(
      f"{name} {c}" for name, c in zip(palm_xray.ATTACK_NAMES, counts)))
  if args.sheet:
    # One sample of every attack kind, forced, two per kind.
    kinds = np.repeat(np.arange(len(palm_xray.ATTACK_NAMES)), 2).astype(np.int32)
    sheet = palm_xray.sample(jax.random.fold_in(key, 10**6), len(kinds), cfg,
                             attacks=kinds)
    palm_xray.contact_sheet(jax.device_get(sheet), args.sheet, per_kind=2,
                            title=f"palmjax palm_xray (seed {args.seed}): HR {cfg.size} px, "
                            f"LR x{cfg.scale}")
    print(f"wrote contact sheet {args.sheet}")
  return 0


def _config_dict(cfg) -> dict:
  import dataclasses
  return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
