"""``palmjax face ...``: the face-terminal pipeline (SPEC F1-F8).

* ``simulate``: write simulated sessions (``.npz``: frames, timestamps, echo, enrolled);
* ``train``: train the colour / texture / lighting cue classifiers on simulated sessions;
* ``check SESSION --enrolled IMG``: run F1-F8 on a session (folder of frames, video or
  ``.npz``) and print the decision record as JSON.
"""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("face", help="face-terminal liveness: simulate, train, check",
                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  s = p.add_subparsers(dest="face_command", metavar="SUBCOMMAND", required=True)

  q = s.add_parser("simulate", help="write simulated sessions as .npz files",
                   description="Simulate face-terminal sessions (live, print, replay, mask, "
                   "impostor) from procedural 3D faces; one .npz per session (frames, "
                   "timestamps, echo recording, enrolled image) plus enrolled PNGs.")
  q.add_argument("--out", required=True, help="output directory (created)")
  q.add_argument("--kinds", nargs="+", default=["live", "print", "replay", "mask", "impostor"])
  q.add_argument("--n", type=int, default=1, help="sessions per kind (default 1)")
  q.add_argument("--seed", type=int, default=0)
  q.add_argument("--identity", type=int, default=0, help="first identity number")
  q.add_argument("--no-echo", action="store_true", help="do not simulate the echo")
  q.set_defaults(func=_simulate)

  t = s.add_parser("train", help="train the three cue classifiers on simulated sessions",
                   description="Train and calibrate the colour (F2), texture (F3) and "
                   "lighting (F4) classifiers; export them to --out.")
  t.add_argument("--out", required=True, help="export directory (e.g. checkpoints/face_cues)")
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.face.train import FaceTrainConfig
  add_dataclass_arguments(t, FaceTrainConfig)
  t.set_defaults(func=_train)

  c = s.add_parser("check", help="run F1-F8 on a session; prints a JSON decision record",
                   description="Run the face-terminal pipeline on SESSION (a folder of "
                   "frames with session.json, a video file, or an .npz from `face "
                   "simulate`) against the enrolled image.")
  c.add_argument("session", metavar="SESSION")
  c.add_argument("--enrolled", metavar="IMG", help="enrolled face image (PNG/TIFF/NPY); "
                 "default: the one stored in an .npz session")
  c.add_argument("--models", help="cue model directory (default: shipped)")
  c.add_argument("--no-acoustic", action="store_true",
                 help="the terminal has no acoustic hardware")
  c.add_argument("--similarity-threshold", type=float, default=None)
  c.add_argument("--indent", type=int, default=2)
  c.set_defaults(func=_check)


def _simulate(args: argparse.Namespace) -> int:
  import jax

  from palmjax.errors import InputError
  from palmjax.face import session as S
  from palmjax.face.session_io import save_npz
  from palmjax.face.simulate import simulate_session
  from palmjax.io import save_image
  bad = set(args.kinds) - set(S.KINDS)
  if bad:
    raise InputError(f"--kinds: unknown kinds {sorted(bad)}; choose from {S.KINDS}")
  os.makedirs(args.out, exist_ok=True)
  cfg = S.SessionConfig(echo=not args.no_echo)
  for kind in args.kinds:
    for i in range(args.n):
      key = jax.random.fold_in(jax.random.fold_in(jax.random.key(args.seed),
                                                  S.KINDS.index(kind)), i)
      sess, enrolled = simulate_session(key, kind, cfg, identity=args.identity + i)
      path = os.path.join(args.out, f"{kind}_{i:04d}.npz")
      save_npz(path, sess, enrolled)
      save_image(os.path.join(args.out, f"{kind}_{i:04d}_enrolled.png"), enrolled)
      print(path)
  return 0


def _train(args: argparse.Namespace) -> int:
  from palmjax.cli._config import dataclass_from_args
  from palmjax.face.train import FaceTrainConfig, train
  train(dataclass_from_args(FaceTrainConfig, args), args.out)
  return 0


def _check(args: argparse.Namespace) -> int:
  import dataclasses

  from palmjax.errors import InputError
  from palmjax.face import FaceCheckConfig, check, load_models, load_session
  sess = load_session(args.session)
  enrolled = sess.enrolled
  if args.enrolled:
    from palmjax.io import load_image
    enrolled = load_image(args.enrolled, channels=3).pixels
  if enrolled is None:
    raise InputError(f"{args.session}: no enrolled image; pass --enrolled IMG")
  cfg = FaceCheckConfig(acoustic_hardware=not args.no_acoustic)
  if args.similarity_threshold is not None:
    cfg = dataclasses.replace(cfg, similarity_threshold=args.similarity_threshold)
  rec = check(sess, enrolled, load_models(args.models), cfg)
  print(rec.to_json(indent=args.indent or None))
  return 0
