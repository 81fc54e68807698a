"""Optional dependencies: the pyproject extras and the one way library code imports them.

The core install (``pip install palmjax``) runs every pipeline (SR, palm, face, echo) and the
quickstart. Extras add:

* ``tfds`` — the TFDS builders in :mod:`palmjax.data` (tensorflow-datasets, array-record,
  importlib-resources; no TensorFlow);
* ``plot`` — matplotlib for ROC/DET plots, contact sheets and echo maps;
* ``bench`` — torch, the PyTorch peer of ``palmjax bench sr`` (skipped when absent);
* ``serve`` - starlette, uvicorn, python-multipart and httpx: ``palmjax serve`` and ``palmjax bench serve``;
* ``postgres`` - psycopg, the PostgreSQL audit store of ``palmjax serve``;
* ``test`` (tfds + plot + serve + postgres + pytest, hypothesis) and ``all``.

Every import of an optional module goes through :func:`require`, so a missing one is a
single :class:`~palmjax.errors.InputError` line naming the extra to install (the CLI prints
it as ``palmjax: error: ...``) rather than a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from palmjax.errors import InputError

# Import name -> (extra, distribution). Keep in step with [project.optional-dependencies]
# in pyproject.toml (tests/test_packaging.py checks it).
EXTRAS: dict[str, tuple[str, str]] = {
    "tensorflow_datasets": ("tfds", "tensorflow-datasets"),
    "array_record": ("tfds", "array-record"),
    "matplotlib": ("plot", "matplotlib"),
    "torch": ("bench", "torch"),
    "starlette": ("serve", "starlette"),
    "uvicorn": ("serve", "uvicorn"),
    "httpx": ("serve", "httpx"),
    "python_multipart": ("serve", "python-multipart"),
    "psycopg": ("postgres", "psycopg"),
}


def require(module: str, purpose: str | None = None) -> ModuleType:
  """Imports the optional ``module`` (a key of :data:`EXTRAS` or one of its submodules).

  Raises :class:`InputError` naming the extra (``pip install 'palmjax[plot]'``) when it, or
  a module it needs, is not installed.
  """
  top = module.split(".")[0]
  if top not in EXTRAS:
    raise KeyError(f"{top!r} is not an optional dependency of palmjax (see EXTRAS)")
  extra, dist = EXTRAS[top]
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    missing = e.name or top
    what = dist if missing.split(".")[0] == top else f"{missing} (needed by {dist})"
    raise InputError(f"{purpose or module}: {what} is not installed; "
                     f"pip install 'palmjax[{extra}]'") from e
