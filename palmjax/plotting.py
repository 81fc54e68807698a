"""Figures: matplotlib without global state (the ``plot`` extra), and labelled image rows
with Pillow/NumPy only (core install).

Library plots use matplotlib's object API: a :class:`matplotlib.figure.Figure` with its own
Agg canvas, never ``pyplot`` or ``matplotlib.use``, so plotting changes nothing in the
caller's matplotlib session (backend, open figures) and needs no display.
:func:`side_by_side` needs no matplotlib.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from palmjax.errors import InputError
from palmjax.extras import require


def figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float],
           purpose: str = "plotting", **subplots: Any):
  """A new ``(Figure, axes)`` on an Agg canvas; ``subplots`` go to ``Figure.subplots``.

  Raises :class:`~palmjax.errors.InputError` naming ``palmjax[plot]`` without matplotlib.
  """
  Figure = require("matplotlib.figure", purpose).Figure
  FigureCanvasAgg = require("matplotlib.backends.backend_agg", purpose).FigureCanvasAgg
  fig = Figure(figsize=figsize)
  FigureCanvasAgg(fig)
  return fig, fig.subplots(nrows, ncols, **subplots)


def save_png(fig, path: str | os.PathLike, *, dpi: int = 100) -> None:
  """Writes ``fig`` to ``path`` as PNG, atomically."""
  from palmjax.io import atomic_path
  with atomic_path(path) as tmp:
    fig.savefig(tmp, format="png", dpi=dpi)


def side_by_side(images: list[Any], labels: list[str], *, gap: int = 8,
                 strip: int = 16) -> np.ndarray:
  """Images of one size ``[H, W, C]`` in [0, 1] in a row, ``gap`` white pixels apart, each
  labelled in a white strip of ``strip`` pixels above it (Pillow's default font, black).

  Returns ``[strip + H, n W + (n - 1) gap, C]`` float32 in [0, 1] (write it with
  :func:`palmjax.io.save_image`). No matplotlib needed.
  """
  from PIL import Image, ImageDraw

  if not images or len(images) != len(labels):
    raise InputError(f"side_by_side: {len(images)} images for {len(labels)} labels")
  xs = [np.asarray(x, np.float32) for x in images]
  xs = [x[..., None] if x.ndim == 2 else x for x in xs]
  if any(x.shape != xs[0].shape or x.ndim != 3 for x in xs):
    raise InputError("side_by_side: images must share one shape [H, W, C], got "
                     f"{[x.shape for x in xs]}")
  h, w, c = xs[0].shape
  row = np.ones((strip + h, len(xs) * w + (len(xs) - 1) * gap, c), np.float32)
  for i, (x, label) in enumerate(zip(xs, labels)):
    x0 = i * (w + gap)
    row[strip:, x0:x0 + w] = np.clip(x, 0.0, 1.0)
    text = Image.new("L", (w, strip), 255)
    ImageDraw.Draw(text).text((2, max(strip - 12, 0) // 2), label, fill=0)
    row[:strip, x0:x0 + w] = (np.asarray(text, np.float32) / 255.0)[..., None]
  return row
