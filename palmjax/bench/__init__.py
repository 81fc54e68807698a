"""Benchmarks: palmjax next to its peers (scikit-image, OpenCV, SciPy, PyTorch), one run.

Each module ``palmjax/bench/<suite>.py`` defines::

    DESCRIPTION: str
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> list[dict]   # one row per measurement

``palmjax bench <suite>`` discovers them, prints a markdown table (device and library
versions in the header) and optionally writes JSON. Timing lives here, never in tests.
"""

from __future__ import annotations

import platform
import statistics
import time
from typing import Any, Callable

import numpy as np


def block(x: Any) -> Any:
  """Waits for JAX arrays in ``x`` (any pytree) to be computed."""
  import jax
  return jax.block_until_ready(x)


def _round(fn: Callable[[], Any], min_time: float) -> float:
  """Seconds per call of ``fn``, looping until at least ``min_time`` seconds pass."""
  n, t0 = 0, time.perf_counter()
  while True:
    block(fn())
    n += 1
    dt = time.perf_counter() - t0
    if dt >= min_time:
      return dt / n


def time_call(fn: Callable[[], Any], *, warmup: int = 1, repeats: int = 5,
              min_time: float = 0.2) -> float:
  """Median seconds per call of ``fn`` (JAX results are waited for).

  Runs ``warmup`` untimed calls (compilation), then ``repeats`` timed rounds; each round
  loops until at least ``min_time`` seconds pass so short kernels are timed accurately.
  """
  for _ in range(warmup):
    block(fn())
  return statistics.median(_round(fn, min_time) for _ in range(repeats))


def time_pair(ours: Callable[[], Any], peer: Callable[[], Any], *, warmup: int = 1,
              repeats: int = 7, min_time: float = 0.2) -> tuple[float, float]:
  """Median seconds per call of ``ours`` and ``peer``, timed in alternating rounds.

  As :func:`time_call`, but the rounds of the two sides interleave (ours, peer, ours, ...),
  so both see the same background load on a shared machine; the speedup is
  ``peer / ours``.
  """
  for _ in range(warmup):
    block(ours())
    block(peer())
  a, b = [], []
  for _ in range(repeats):
    a.append(_round(ours, min_time))
    b.append(_round(peer, min_time))
  return statistics.median(a), statistics.median(b)


def environment() -> dict[str, str]:
  """Device and library versions for the table header."""
  import jax
  env = {"python": platform.python_version(), "jax": jax.__version__,
         "backend": jax.default_backend(),
         "devices": ", ".join(sorted({d.device_kind for d in jax.devices()})),
         "device_count": str(jax.device_count()), "cpu": platform.processor() or
         platform.machine(), "numpy": np.__version__}
  for mod in ("flax", "skimage", "cv2", "scipy", "torch"):
    try:
      env[mod] = __import__(mod).__version__
    except Exception:  # noqa: BLE001 - optional peers
      pass
  return env


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
  """Rows (dicts) as a markdown table; floats get 4 significant digits."""
  if not rows:
    return "(no rows)"
  columns = columns or list(dict.fromkeys(k for r in rows for k in r))
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
  return "\n".join(lines)
