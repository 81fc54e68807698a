"""``palmjax bench SUITE``: benchmark suites from :mod:`palmjax.bench`, peers side by side."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil


def _suites() -> list[str]:
  import palmjax.bench
  return sorted(m.name for m in pkgutil.iter_modules(palmjax.bench.__path__)
                if not m.name.startswith("_"))


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("bench", help="benchmarks against peers (skimage, OpenCV, SciPy, torch)",
                     description=__doc__)
  suites = p.add_subparsers(dest="suite", metavar="SUITE", required=True)
  for name in _suites():
    mod = importlib.import_module(f"palmjax.bench.{name}")
    sp = suites.add_parser(name, help=mod.DESCRIPTION, description=mod.DESCRIPTION)
    sp.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    mod.add_arguments(sp)
    sp.set_defaults(func=_run, module=mod)


def _run(args: argparse.Namespace) -> int:
  from palmjax import bench
  from palmjax.io import atomic_path
  env = bench.environment()
  rows = args.module.run(args)
  header = ", ".join(f"{k} {v}" for k, v in env.items())
  print(f"## palmjax bench {args.suite}\n\n{header}\n")
  print(bench.markdown_table(rows))
  if args.json:
    with atomic_path(args.json) as tmp, open(tmp, "w") as f:
      json.dump({"suite": args.suite, "environment": env, "rows": rows}, f, indent=2)
  return 0
