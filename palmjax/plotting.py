"""Matplotlib figures without global state (the ``plot`` extra).

Library plots use matplotlib's object API: a :class:`matplotlib.figure.Figure` with its own
Agg canvas, never ``pyplot`` or ``matplotlib.use``, so plotting changes nothing in the
caller's matplotlib session (backend, open figures) and needs no display.
"""

from __future__ import annotations

import os
from typing import Any

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
