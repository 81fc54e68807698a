"""Files that ship inside the ``palmjax`` package, found through :mod:`importlib.resources`.

* ``face_detection_short_range.tflite`` — MediaPipe's BlazeFace short-range face detector
  (Apache-2.0, © Google LLC; see ``NOTICE``), run through OpenCV's DNN module by
  :mod:`palmjax.face.detect`. SHA-256
  ``3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633``.

Nothing here is downloaded at run time: the files are package data (``pyproject.toml``).
"""

from __future__ import annotations

import importlib.resources
import pathlib

from palmjax.errors import InputError


def asset_path(name: str) -> pathlib.Path:
  """Path of a shipped asset file (raises :class:`InputError` naming it if it is missing)."""
  p = importlib.resources.files(__name__) / name
  if not p.is_file():
    raise InputError(f"palmjax asset {name!r} is missing from the installed package "
                     f"({p}); reinstall palmjax")
  return pathlib.Path(str(p))
