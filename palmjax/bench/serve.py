"""Suite ``serve``: ``palmjax serve`` under a bounded load on loopback, micro-batching off
(``--max-batch 1``) vs on, in one run.

For each mode a real server process is started (uvicorn, SQLite audit store in a temporary
folder, models compiled before the clock starts; both stay up, the idle one waits). In
``--rounds`` rounds that alternate the modes, K concurrent clients send N requests per mode
in all: a mix of palm captures (simulated, 16-bit PNG) and face sessions (simulated
``.npz``, no echo, ``no_acoustic=1``). Reported: requests/s, latency percentiles, errors (any answer
but 200, or no answer) and lost records (answered request ids missing from the audit store
after the server has shut down). Each input is sent once before the clock starts.
"""

from __future__ import annotations

import argparse
import os

DESCRIPTION = "serve: HTTP server load test, micro-batching on vs off (requests/s, latency)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--clients", type=int, default=16, help="concurrent clients (K)")
  parser.add_argument("--requests", type=int, default=400, help="requests per mode (N)")
  parser.add_argument("--face-every", type=int, default=4,
                      help="every n-th request is a face session, the others palm captures "
                      "(default 4; 0: palm only)")
  parser.add_argument("--max-batch", type=int, default=16, help="batch size when on")
  parser.add_argument("--max-wait-ms", type=float, default=2.0)
  parser.add_argument("--compute-batch", type=int, default=None,
                      help="the server's --compute-batch when batching is on (default: its "
                      "own, measured at start-up)")
  parser.add_argument("--rounds", type=int, default=4,
                      help="the modes alternate in this many rounds of requests/rounds each")
  parser.add_argument("--ready-timeout", type=float, default=600.0,
                      help="seconds to wait for a server to load and compile")


def _inputs(workdir: str) -> tuple[list[bytes], list[bytes]]:
  import jax

  from palmjax.data import palm_xray
  from palmjax.face import SessionConfig, simulate_session
  from palmjax.face.session_io import save_npz
  from palmjax.io import save_image
  # Captures in the style the shipped classifier was trained on (v4: clinically framed).
  b = jax.device_get(palm_xray.sample(jax.random.key(0), 8,
                                      palm_xray.PalmXrayConfig(style="v4")))
  palm, face = [], []
  for i in range(len(b["lr"])):
    p = os.path.join(workdir, f"palm{i}.png")
    save_image(p, b["lr"][i], bit_depth=16)
    palm.append(open(p, "rb").read())
  for i, kind in enumerate(("live", "print")):
    s, e = simulate_session(jax.random.key(i), kind, SessionConfig(echo=False))
    p = os.path.join(workdir, f"face{i}.npz")
    save_npz(p, s, e)
    face.append(open(p, "rb").read())
  return palm, face


def _free_port() -> int:
  import socket
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


async def _load(httpx, url: str, token: str, palm: list[bytes], face: list[bytes],
                clients: int, n: int, face_every: int) -> tuple[list[float], int, list[str]]:
  import time
  latencies, answered, errors = [], [], 0
  nxt = 0
  headers = {"Authorization": f"Bearer {token}"}

  async def worker(c):
    nonlocal nxt, errors
    while nxt < n:
      i = nxt
      nxt += 1
      is_face = face_every > 0 and i % face_every == face_every - 1
      if is_face:
        req = dict(url="/v1/face/check", content=face[i % len(face)],
                   params={"no_acoustic": "1"},
                   headers={**headers, "Content-Type": "application/x-npz"})
      else:
        req = dict(url="/v1/palm/detect", content=palm[i % len(palm)],
                   headers={**headers, "Content-Type": "image/png"})
      t0 = time.perf_counter()
      try:
        r = await c.post(**req)
        ok = r.status_code == 200
      except httpx.HTTPError:
        ok = False
      latencies.append(time.perf_counter() - t0)
      if ok:
        answered.append(r.json()["request_id"])
      else:
        errors += 1

  import asyncio
  limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
  async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
    await asyncio.gather(*(worker(c) for _ in range(clients)))
  return latencies, errors, answered


def _start(args, workdir: str, keys: str, max_batch: int):
  """A server process with ``--max-batch max_batch``; returns (process, url, store path)."""
  import subprocess
  import sys
  store = os.path.join(workdir, f"audit_b{max_batch}.sqlite")
  port = _free_port()
  cmd = [sys.executable, "-m", "palmjax", "serve", "--port", str(port), "--store", store,
         "--keys", keys, "--max-batch", str(max_batch), "--max-wait-ms", str(args.max_wait_ms),
         "--rate", "1e6", "--burst", str(10 * args.requests),
         "--field-store", os.path.join(workdir, "field.sqlite")]
  if args.compute_batch is not None and max_batch > 1:
    cmd += ["--compute-batch", str(args.compute_batch)]
  proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  return proc, f"http://127.0.0.1:{port}", store


def _wait_ready(httpx, proc, url: str, timeout: float) -> None:
  import time

  from palmjax.errors import InputError
  deadline = time.monotonic() + timeout
  while True:
    if proc.poll() is not None:
      raise InputError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
    try:
      if httpx.get(url + "/readyz", timeout=2).status_code == 200:
        return
    except httpx.HTTPError:
      pass
    if time.monotonic() > deadline:
      raise InputError(f"the server was not ready within {timeout:.0f} s")
    time.sleep(0.5)


def _stop(proc) -> None:
  import signal
  import subprocess
  proc.send_signal(signal.SIGINT)  # graceful: drains, then exits
  try:
    proc.wait(60)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()


def run(args: argparse.Namespace) -> list[dict]:
  import asyncio
  import tempfile
  import time

  import numpy as np

  from palmjax.errors import InputError
  from palmjax.extras import require
  from palmjax.serve.keys import add_key
  from palmjax.serve.store import SQLiteAuditStore
  httpx = require("httpx", "palmjax bench serve")
  if args.clients < 1 or args.requests < args.rounds or args.max_batch < 2 or \
      args.face_every < 0 or args.rounds < 1:
    raise InputError("--clients and --rounds must be >= 1, --requests >= --rounds, "
                     "--max-batch >= 2, --face-every >= 0")
  modes = {"off": 1, f"on (<= {args.max_batch})": args.max_batch}
  with tempfile.TemporaryDirectory(prefix="palmjax-bench-serve-") as d:
    keys = os.path.join(d, "keys.toml")
    token = add_key(keys, "bench", "terminal")
    palm, face = _inputs(d)
    servers = {m: _start(args, d, keys, b) for m, b in modes.items()}
    stats = {m: {"lat": [], "errors": 0, "answered": [], "wall": 0.0} for m in modes}
    compute = {}
    try:
      for m, (proc, url, _) in servers.items():
        _wait_ready(httpx, proc, url, args.ready_timeout)
        compute[m] = max(httpx.get(url + "/readyz", timeout=10).json()["compute"]["buckets"])
        # Warm-up outside the clock: each input once (a session's frame count and size are
        # compiled on first sight; the palm batch sizes were compiled at start-up).
        asyncio.run(_load(httpx, url, token, palm, face, 1,
                          len(palm) * max(1, args.face_every), args.face_every))
      # Rounds alternate the modes (the machine is shared: its load drifts over a run).
      per_round = args.requests // args.rounds
      for r in range(args.rounds):
        order = list(modes) if r % 2 == 0 else list(modes)[::-1]
        for m in order:
          _, url, _ = servers[m]
          t0 = time.perf_counter()
          lat, errors, answered = asyncio.run(_load(httpx, url, token, palm, face,
                                                    args.clients, per_round, args.face_every))
          st = stats[m]
          st["wall"] += time.perf_counter() - t0
          st["lat"] += lat
          st["errors"] += errors
          st["answered"] += answered
    finally:
      for proc, _, _ in servers.values():
        _stop(proc)
    rows = []
    for m, st in stats.items():
      with SQLiteAuditStore(servers[m][2]) as s:
        lost = len(set(st["answered"]) - s.ids())
      n = len(st["lat"])
      ms = np.percentile(np.asarray(st["lat"]) * 1e3, [50, 95, 99])
      rows.append({"batching": m, "compute batch": compute[m], "clients": args.clients,
                   "requests": n,
                   "req/s": n / st["wall"], "p50 ms": float(ms[0]), "p95 ms": float(ms[1]),
                   "p99 ms": float(ms[2]), "errors": st["errors"], "lost records": lost})
  rows[1]["speed-up"] = rows[1]["req/s"] / rows[0]["req/s"]
  return rows
