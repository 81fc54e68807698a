"""The face input path measured: detector comparison and streamed-video memory.

    python experiments/face_input.py detectors --manual-dir /path/to/NUAA [--every 10]
    python experiments/face_input.py video [--seconds 10] [--width 1920 --height 1080]

``detectors``: BlazeFace (default) and the Haar frontal cascade on every ``--every``-th NUAA
image — as captured, as a tight crop where the face fills the frame (the detected box
without margin), under-exposed (gamma 2.5, x0.4) and back-lit (the face darkened to 35 %
inside a bright surround) — reporting the share of images with a face found and the
milliseconds per image on this machine.

``video``: writes a synthetic clip (a moving textured pattern, MJPG) of the given length
and size to a temporary folder, then decodes it in a fresh process with
:func:`palmjax.face.session_io.load_video`'s defaults, reporting the peak resident memory
of that process and the wall time, then runs ``palmjax face liveness`` on it in a fresh
process (the same figures for the whole command).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def _variants(img, box):
  from palmjax.face import detect as D
  x0, y0, side = D.crop_box(box, 0.0)
  h, w = img.shape[:2]
  x0, y0 = max(x0, 0), max(y0, 0)
  tight = img[y0:min(y0 + side, h), x0:min(x0 + side, w)]
  f = img.astype(np.float32) / 255
  dark = (255 * np.clip(f ** 2.5 * 0.4, 0, 1)).astype(np.uint8)
  yy, xx = np.mgrid[:h, :w]
  cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
  r = max(box.x1 - box.x0, box.y1 - box.y0) * 0.75
  inside = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)[..., None]
  back = np.where(inside, f * 0.35, np.clip(0.6 + 0.6 * f, 0, 1))
  return {"as captured": img, "tight crop": tight, "under-exposed": dark,
          "back-lit": (255 * back).astype(np.uint8)}


def detectors(args) -> int:
  from palmjax.data.nuaa_tfds import list_images
  from palmjax.face import detect as D
  from palmjax.io import load_image
  items, _ = list_images(args.manual_dir)
  items = items[::args.every]
  found: dict = {}
  times: dict = {b: [] for b in D.DETECTORS}
  n_ref = 0
  for path, _, _ in items:
    img = D.to_uint8_rgb(load_image(path, channels=3).pixels)
    ref = D.detect(img)              # variants are built around BlazeFace's box
    if ref is None:
      for b in D.DETECTORS:
        found.setdefault((b, "as captured"), []).append(False)
      continue
    n_ref += 1
    for name, v in _variants(img, ref.box).items():
      for b in D.DETECTORS:
        t = time.perf_counter()
        d = D.detect(v, D.DetectorConfig(backend=b))
        if name == "as captured":
          times[b].append(time.perf_counter() - t)
        found.setdefault((b, name), []).append(d is not None)
  names = ["as captured", "tight crop", "under-exposed", "back-lit"]
  print(f"{len(items)} NUAA images (every {args.every}th; variants of the {n_ref} where "
        "BlazeFace found a face)\n")
  print("| detector | " + " | ".join(names) + " | ms / image (640x480) |")
  print("|---|" + "---:|" * (len(names) + 1))
  for b in D.DETECTORS:
    cells = [f"{100 * np.mean(found[(b, n)]):.1f}%" for n in names]
    print(f"| {b} | " + " | ".join(cells) + f" | {1000 * np.median(times[b]):.1f} |")
  return 0


_DECODE = """
import resource, sys, time
t = time.perf_counter()
from palmjax.face.session_io import load_video
s = load_video(sys.argv[1])
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{s.frames.shape[0]} {s.frames.shape[2]} {s.frames.shape[1]} {dt:.2f} {peak:.0f}")
"""


_CLI = """
import contextlib, io, resource, sys
from palmjax.cli import main
with contextlib.redirect_stdout(io.StringIO()):
  main(["face", "liveness", sys.argv[1]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def video(args) -> int:
  import cv2
  n = int(round(args.seconds * args.fps))
  with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "clip.avi")
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), args.fps,
                         (args.width, args.height))
    rng = np.random.default_rng(0)
    base = (rng.random((args.height // 8, args.width // 8, 3)) * 255).astype(np.uint8)
    base = cv2.resize(base, (args.width, args.height), interpolation=cv2.INTER_CUBIC)
    for i in range(n):
      vw.write(np.roll(base, 3 * i, axis=1))
    vw.release()
    size = os.path.getsize(path) / 2 ** 20
    out = subprocess.run([sys.executable, "-c", _DECODE, path], check=True,
                         capture_output=True, text=True).stdout.split()
    t = time.perf_counter()
    cli = subprocess.run([sys.executable, "-c", _CLI, path], check=True, capture_output=True,
                         text=True).stdout.split()
    cli_s = time.perf_counter() - t
  frames, w, h, dt, peak = int(out[0]), int(out[1]), int(out[2]), float(out[3]), float(out[4])
  print(f"clip: {args.seconds:g} s, {args.width}x{args.height} at {args.fps:g} fps ({n} frames, "
        f"{size:.0f} MiB MJPG)")
  print(f"load_video defaults: kept {frames} frames of {w}x{h}, {dt:.2f} s (incl. imports), "
        f"peak resident memory {peak:.0f} MiB")
  print(f"`palmjax face liveness` on the clip (whole process: imports, model loading, "
        f"detection, cues): {cli_s:.1f} s, peak resident memory {float(cli[0]):.0f} MiB")
  return 0


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = ap.add_subparsers(dest="what", required=True)
  a = sub.add_parser("detectors")
  a.add_argument("--manual-dir", required=True)
  a.add_argument("--every", type=int, default=10)
  v = sub.add_parser("video")
  v.add_argument("--seconds", type=float, default=10.0)
  v.add_argument("--fps", type=float, default=30.0)
  v.add_argument("--width", type=int, default=1920)
  v.add_argument("--height", type=int, default=1080)
  args = ap.parse_args(argv)
  return detectors(args) if args.what == "detectors" else video(args)


if __name__ == "__main__":
  sys.exit(main())
