"""``palmjax face ...``: the face-terminal pipeline (SPEC F1-F8).

* ``simulate``: write simulated sessions (``.npz``: frames, timestamps, echo, enrolled);
* ``train``: train the colour / texture / lighting cue classifiers on simulated sessions;
* ``check SESSION --enrolled IMG``: run F1-F8 on a session (folder of frames, video or
  ``.npz``) and print the decision record as JSON;
* ``liveness INPUT...``: image liveness (face detection, F2-F5) of stills, frame folders
  or videos; one JSON line per input.
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
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.face.session import SessionConfig
  add_dataclass_arguments(q, SessionConfig, skip=("echo",))  # --no-echo
  q.set_defaults(func=_simulate)

  t = s.add_parser("train", help="train the three cue classifiers on simulated sessions "
                   "(real faces: experiments/face_nuaa.py)",
                   description="Train and calibrate the colour (F2), texture (F3) and "
                   "lighting (F4) classifiers; export them to --out.")
  t.add_argument("--out", required=True,
                 help="export directory (e.g. checkpoints/face_cues_sim)")
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
  c.add_argument("--models", help="cue model directory (default: the shipped real-face "
                 "models; for an .npz from `face simulate`, the shipped simulator models)")
  c.add_argument("--no-acoustic", action="store_true",
                 help="the terminal has no acoustic hardware")
  c.add_argument("--indent", type=int, default=2)
  from palmjax.face.check import FaceCheckConfig
  add_dataclass_arguments(c, FaceCheckConfig, skip=("acoustic_hardware",))  # --no-acoustic
  c.set_defaults(func=_check)

  v = s.add_parser("liveness", help="image liveness of stills, frame folders or videos "
                   "(one JSON line each)",
                   description="Find the face, crop it and score it with the colour (F2), "
                   "texture (F3) and, with motion, lighting (F4) cues fused by F5. One JSON "
                   "line per INPUT: source, probability, log_odds, decision (live | spoof | "
                   "recapture), reason, cues, face_box. A bad input prints an error record "
                   "and the others go on; the exit code is 2 if any input failed.")
  v.add_argument("inputs", nargs="+", metavar="INPUT",
                 help="image file (PNG/JPEG/BMP/TIFF/NPY), folder of frames or video")
  v.add_argument("--models", help="cue model directory (default: shipped, trained on NUAA)")
  v.add_argument("--detector", choices=("blazeface", "haar"), default="blazeface")
  v.add_argument("--threshold", type=float, default=None,
                 help="image probability needed for 'live' (default: the models' own, "
                      "chosen on development data)")
  from palmjax.face.liveness import LivenessConfig
  add_dataclass_arguments(v, LivenessConfig, helps={
      "max_frames": "frames kept from a video or folder",
      "max_side": "frames are downscaled on decode to this longer side",
      "fps": "frame rate of a frame folder without session.json"})
  v.set_defaults(func=_liveness)


def _simulate(args: argparse.Namespace) -> int:
  import jax

  from palmjax.errors import InputError
  from palmjax.cli._config import dataclass_from_args
  from palmjax.face import session as S
  from palmjax.face.session_io import save_npz
  from palmjax.face.simulate import simulate_session
  from palmjax.io import check_output_path, save_image
  bad = set(args.kinds) - set(S.KINDS)
  if bad:
    raise InputError(f"--kinds: unknown kinds {sorted(bad)}; choose from {S.KINDS}")
  if args.n < 1:
    raise InputError(f"--n must be >= 1 (sessions per kind), got {args.n}")
  check_output_path(args.out, folder=True)
  os.makedirs(args.out, exist_ok=True)
  cfg = dataclass_from_args(S.SessionConfig, args, echo=not args.no_echo)
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
  from palmjax.errors import InputError
  from palmjax.cli._config import dataclass_from_args
  from palmjax.face import FaceCheckConfig, check_session, load_models, load_session
  sess = load_session(args.session)
  enrolled = sess.enrolled
  if args.enrolled:
    from palmjax.io import load_image
    enrolled = load_image(args.enrolled, channels=3).pixels
  if enrolled is None:
    raise InputError(f"{args.session}: no enrolled image; pass --enrolled IMG")
  cfg = dataclass_from_args(FaceCheckConfig, args, acoustic_hardware=not args.no_acoustic)
  models = args.models
  if models is None and str(args.session).lower().endswith(".npz"):
    from palmjax.face import sim_models_path
    models = sim_models_path()
  rec = check_session(sess, enrolled, load_models(models), cfg)
  print(rec.to_json(indent=args.indent or None))
  return 0


def _liveness(args: argparse.Namespace) -> int:
  import dataclasses
  import json
  import sys

  from palmjax.cli._config import dataclass_from_args
  from palmjax.errors import InputError
  from palmjax.face import load_models
  from palmjax.face.detect import DetectorConfig
  from palmjax.face.liveness import LivenessConfig, assess, load_frames
  cfg = dataclass_from_args(LivenessConfig, args, detector=DetectorConfig(backend=args.detector))
  if cfg.max_frames < 1:
    raise InputError(f"--max-frames must be >= 1, got {cfg.max_frames}")
  if cfg.max_side < 16:
    raise InputError(f"--max-side must be >= 16 pixels, got {cfg.max_side}")
  models = load_models(args.models)
  if not models.face_size:
    raise InputError(f"{args.models}: these cue models were trained on simulated whole-"
                     "frame sessions (no face crop size); use models trained on face crops")
  fusion = models.fusion
  if args.threshold is not None:
    if not 0.0 < args.threshold < 1.0:
      raise InputError(f"--threshold must lie in (0, 1), got {args.threshold}")
    fusion = dataclasses.replace(fusion, image_threshold=args.threshold)
  cfg = dataclasses.replace(cfg, fusion=fusion)
  failed = 0
  for path in args.inputs:
    try:
      frames, ts = load_frames(path, cfg)
      rec = assess(frames, ts, models, cfg, source=path).to_json()
    except InputError as e:
      failed += 1
      rec = json.dumps({"source": path, "error": str(e)})
      print(f"palmjax: error: {e}", file=sys.stderr)
    print(rec, flush=True)
  return 2 if failed else 0
