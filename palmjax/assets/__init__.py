"""Files that ship with the ``palmjax`` package, found through :mod:`importlib.resources`.

The one place every pipeline looks for a shipped file:

* :func:`asset_path` — files in this folder:
  ``face_detection_short_range.tflite``, MediaPipe's BlazeFace short-range face detector
  (Apache-2.0, © Google LLC; see ``NOTICE``), run through OpenCV's DNN module by
  :mod:`palmjax.face.detect`. SHA-256
  ``3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633``.
* :func:`checkpoint_path` — the shipped exported models (``srcnn_x3``, ``palm_classifier``,
  ``face_cues``, ...). They live in the repository's top-level ``checkpoints/`` folder, which
  the wheel carries as ``palmjax/checkpoints`` (``pyproject.toml``: package ``palmjax.checkpoints``
  mapped to ``checkpoints``). :func:`checkpoints_dir` looks, in this order, at
  ``$PALMJAX_CHECKPOINTS``, the installed package's ``checkpoints`` (a wheel) and the
  ``checkpoints/`` beside the package's source folder (a source checkout or an editable
  install, where ``palmjax/`` is the repository's own folder).

Nothing here is downloaded at run time: the files are package data. Installs must be unpacked
(a wheel installed by pip is): orbax reads the checkpoint folders from the file system.
"""

from __future__ import annotations

import importlib.resources
import os
import pathlib

from palmjax.errors import InputError


def asset_path(name: str) -> pathlib.Path:
  """Path of a shipped asset file (raises :class:`InputError` naming it if it is missing)."""
  p = importlib.resources.files(__name__) / name
  if not p.is_file():
    raise InputError(f"palmjax asset {name!r} is missing from the installed package "
                     f"({p}); reinstall palmjax")
  return pathlib.Path(str(p))


def checkpoints_dir() -> pathlib.Path:
  """The folder of shipped models: ``$PALMJAX_CHECKPOINTS``, the installed package's
  ``palmjax/checkpoints`` or the source checkout's ``checkpoints/`` (see the module doc)."""
  env = os.environ.get("PALMJAX_CHECKPOINTS")
  if env:
    return pathlib.Path(env)
  package = importlib.resources.files("palmjax")
  installed = package / "checkpoints"
  if installed.is_dir():
    return pathlib.Path(str(installed))
  return pathlib.Path(str(package)).parent / "checkpoints"


def checkpoint_path(name: str) -> pathlib.Path:
  """Path of the shipped exported model ``name`` (e.g. ``"srcnn_x3"``, ``"face_cues"``).

  The path may not exist (a model that is not shipped); loaders say so with their own
  advice (which command trains it).
  """
  if not name or pathlib.Path(name).is_absolute() or ".." in pathlib.Path(name).parts:
    raise InputError(f"shipped model names are plain folder names, got {name!r}")
  return checkpoints_dir() / name
