"""``palmjax serve``: the liveness server (palm patent P7); ``palmjax keys add``: its API keys.

``palmjax keys add --keys keys.toml --role terminal NAME`` prints the new key once, as the
last line (only its hash is stored). ``palmjax serve --store audit.sqlite --keys keys.toml``
serves both pipelines over HTTP (see :mod:`palmjax.serve.app` for the endpoints).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("serve", help="HTTP liveness server: both pipelines, keys, audit store",
                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
  p.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
  p.add_argument("--store", default="audit.sqlite",
                 help="audit store: a SQLite file or postgresql://... (default %(default)s)")
  p.add_argument("--keys", default="keys.toml", help="API keys file (palmjax keys add)")
  p.add_argument("--field-store", default="field_store.sqlite",
                 help="P6 field store that /v1/feedback writes (default %(default)s)")
  p.add_argument("--classifier", help="palm classifier (default: shipped)")
  p.add_argument("--threshold", type=float, help="override the palm classifier's threshold")
  p.add_argument("--no-quality-gate", action="store_true")
  p.add_argument("--face-models", help="face cue models (default: the shipped simulator "
                 "models, as `palmjax face check` uses for an .npz session)")
  p.add_argument("--rate", type=float, default=20.0,
                 help="requests per second per key (default %(default)s)")
  p.add_argument("--burst", type=int, default=50,
                 help="requests one key may send at once (default %(default)s)")
  p.add_argument("--max-body-mb", type=float, default=32.0,
                 help="request size limit in MiB (default %(default)s)")
  p.add_argument("--max-batch", type=int, default=16,
                 help="micro-batch size; 1 turns batching off (default %(default)s)")
  p.add_argument("--compute-batch", type=int, default=None,
                 help="largest batch of one model call; a gathered batch runs as calls of "
                 "1, 2, 4, ... up to this (default: measured at start-up: every size up to "
                 "--max-batch is timed and the one cheapest per capture is the largest "
                 "used; on a CPU, where the palm classifier is compute-bound, larger calls "
                 "can cost more per capture; with --lazy: --max-batch)")
  p.add_argument("--max-wait-ms", type=float, default=2.0,
                 help="how long a batch waits for more requests (default %(default)s)")
  p.add_argument("--tune-dir", default="runs/serve_tune",
                 help="where the review page's tune runs go; the tuned classifier is published "
                 "to <tune-dir>/classifier (default %(default)s)")
  p.add_argument("--tune-steps", type=int, default=300,
                 help="steps of a tune run started from the review page (default %(default)s)")
  p.add_argument("--lazy", action="store_true",
                 help="compile the models on first use, not at start (a faster start; the "
                 "first requests of each batch size are slow)")
  p.set_defaults(func=_serve)

  k = sub.add_parser("keys", help="API keys of `palmjax serve`",
                     description="Manage the API keys file of `palmjax serve`.")
  ks = k.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)
  a = ks.add_parser("add", help="add a key; prints it once, as the last line",
                    description="Add a key NAME with --role to --keys (created). The key is "
                    "printed once, as the last line; only its SHA-256 is stored.")
  a.add_argument("name", metavar="NAME")
  a.add_argument("--keys", default="keys.toml", help="keys file (default %(default)s)")
  a.add_argument("--role", required=True, choices=("terminal", "reviewer"))
  a.set_defaults(func=_keys_add)


def buckets(max_batch: int) -> tuple[int, ...]:
  """Padded batch sizes up to ``max_batch``: powers of two, then ``max_batch`` itself."""
  out, b = [], 1
  while b < max_batch:
    out.append(b)
    b *= 2
  return tuple(out + [max_batch])


def _serve(args: argparse.Namespace) -> int:
  import logging

  from palmjax.errors import InputError
  from palmjax.extras import require
  from palmjax.serve.app import ServerConfig, create_app
  from palmjax.serve.engine import Engine, EngineConfig
  from palmjax.serve.keys import KeyRing
  from palmjax.serve.store import open_store
  uvicorn = require("uvicorn", "palmjax serve")
  if args.max_batch < 1 or args.max_wait_ms < 0 or args.max_body_mb <= 0 or \
      (args.compute_batch is not None and args.compute_batch < 1):
    raise InputError("--max-batch and --compute-batch must be >= 1, --max-wait-ms >= 0 and "
                     "--max-body-mb > 0")
  compute = args.max_batch if args.compute_batch is None else args.compute_batch
  keyring = KeyRing.from_file(args.keys)
  eng = Engine(EngineConfig(classifier=args.classifier, threshold=args.threshold,
                            quality_gate=not args.no_quality_gate,
                            face_models=args.face_models,
                            buckets=buckets(min(compute, args.max_batch)),
                            autotune=args.compute_batch is None))
  store = open_store(args.store)
  cfg = ServerConfig(rate=args.rate, burst=args.burst,
                     max_body_bytes=int(args.max_body_mb * (1 << 20)),
                     max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                     field_store=args.field_store, tune_dir=args.tune_dir,
                     tune_steps=args.tune_steps)
  app = create_app(eng, store, keyring, cfg, warm=not args.lazy)
  logging.getLogger("palmjax").info(
      f"palmjax serve: http://{args.host}:{args.port} (store {store.location}, "
      f"{len(keyring.keys)} keys, batches up to {args.max_batch})")
  try:
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                timeout_graceful_shutdown=30)
  finally:
    store.close()
  return 0


def _keys_add(args: argparse.Namespace) -> int:
  from palmjax.serve.keys import add_key
  token = add_key(args.keys, args.name, args.role)
  print(f"added {args.role} key {args.name!r} to {args.keys}; it is shown only now:")
  print(token)
  return 0
