"""Packaging: the package list, declared dependencies, optional imports, shipped-file lookup.

The wheel itself (built, installed outside the checkout, run) is checked in test_wheel.py.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys
import tomllib

import pytest

import palmjax
from palmjax import assets, extras
from palmjax.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Import name -> distribution, for the modules whose names differ.
DIST_OF = {"PIL": "pillow", "cv2": "opencv-python-headless", "skimage": "scikit-image",
           "orbax": "orbax-checkpoint", "tensorflow_datasets": "tensorflow-datasets",
           "array_record": "array-record", "jaxlib": "jax"}


def _dist(requirement: str) -> str:
  return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()


def _imports(path: pathlib.Path) -> set[str]:
  """Top-level names of the absolute imports in one file (statements only)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names |= {a.name.split(".")[0] for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.add(node.module.split(".")[0])
  return names


def test_listed_packages_are_the_package_folders():
  listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
  found = {".".join(p.parent.relative_to(REPO).parts)
           for p in (REPO / "palmjax").rglob("__init__.py")}
  assert listed == found | {"palmjax.checkpoints"}, "update [tool.setuptools] packages"
  assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"palmjax.checkpoints": "checkpoints"}


def test_every_library_import_is_declared_and_optional_ones_go_through_require():
  core = {_dist(r) for r in PYPROJECT["project"]["dependencies"]}
  opt = PYPROJECT["project"]["optional-dependencies"]
  for module, (extra, dist) in extras.EXTRAS.items():
    assert dist in {_dist(r) for r in opt[extra]}, (module, extra)
    assert dist not in core, f"{dist} is optional yet a core dependency"
  undeclared, direct = [], []
  for path in sorted((REPO / "palmjax").rglob("*.py")):
    for name in _imports(path) - set(sys.stdlib_module_names) - {"palmjax", "__future__"}:
      if name in extras.EXTRAS:
        direct.append(f"{path.relative_to(REPO)}: import {name}")
      elif DIST_OF.get(name, name).lower() not in core:
        undeclared.append(f"{path.relative_to(REPO)}: {name}")
  assert not undeclared, "imports missing from [project] dependencies: " + ", ".join(undeclared)
  # matplotlib goes through palmjax.plotting, TFDS through palmjax.data._tfds, torch through
  # require.
  assert not direct, direct


def test_test_and_all_extras_pull_in_the_others():
  opt = PYPROJECT["project"]["optional-dependencies"]
  pulled = {e: set(re.search(r"palmjax\[(.*)\]", " ".join(opt[e])).group(1).split(","))
            for e in ("test", "all")}
  assert pulled["all"] == set(opt) - {"test", "all"}
  assert pulled["test"] == set(opt) - {"test", "all", "bench"}  # no torch in CI


@pytest.mark.parametrize("module,extra", [("matplotlib", "plot"), ("matplotlib.figure", "plot"),
                                          ("tensorflow_datasets", "tfds"), ("torch", "bench")])
def test_missing_optional_dependency_is_one_line_naming_the_extra(monkeypatch, module, extra):
  monkeypatch.delitem(sys.modules, module, raising=False)
  monkeypatch.setitem(sys.modules, module.split(".")[0], None)
  with pytest.raises(InputError) as e:
    extras.require(module, "the thing")
  msg = str(e.value)
  assert msg == (f"the thing: {extras.EXTRAS[module.split('.')[0]][1]} is not installed; "
                 f"pip install 'palmjax[{extra}]'")
  with pytest.raises(KeyError):
    extras.require("numpy")


def test_an_optional_package_missing_its_own_dependency_names_both(monkeypatch, tmp_path):
  (tmp_path / "fake_optional.py").write_text("import palmjax_test_missing_dependency\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setitem(extras.EXTRAS, "fake_optional", ("plot", "fake-optional"))
  with pytest.raises(InputError) as e:
    extras.require("fake_optional")
  assert str(e.value) == ("fake_optional: palmjax_test_missing_dependency (needed by "
                          "fake-optional) is not installed; pip install 'palmjax[plot]'")


def test_tfds_builder_without_tfds_is_one_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  for m in ("palmjax.data._tfds", "palmjax.data.palm_xray_tfds"):
    monkeypatch.delitem(sys.modules, m, raising=False)
  with pytest.raises(InputError, match=r"tensorflow-datasets is not installed; "
                     r"pip install 'palmjax\[tfds\]'"):
    import palmjax.data.palm_xray_tfds  # noqa: F401


def test_checkpoints_resolve_in_the_source_checkout(monkeypatch, tmp_path):
  monkeypatch.delenv("PALMJAX_CHECKPOINTS", raising=False)
  if (pathlib.Path(palmjax.__file__).parent / "checkpoints").is_dir():
    pytest.skip("palmjax is imported from an installed wheel")
  assert assets.checkpoints_dir() == REPO / "checkpoints"
  assert (assets.checkpoint_path("srcnn_x3") / "config.json").is_file()
  from palmjax.face import default_models_path
  from palmjax.palm.detector import default_classifier_path
  from palmjax.sr.inference import default_checkpoint
  assert default_checkpoint(2) == REPO / "checkpoints" / "srcnn_x2"
  assert default_classifier_path() == REPO / "checkpoints" / "palm_classifier"
  assert default_models_path() == REPO / "checkpoints" / "face_cues"
  monkeypatch.setenv("PALMJAX_CHECKPOINTS", str(tmp_path))
  assert default_checkpoint(3) == tmp_path / "srcnn_x3"
  for bad in ("", "../x", str(tmp_path)):
    with pytest.raises(InputError, match="plain folder names"):
      assets.checkpoint_path(bad)
  assert assets.asset_path("NOTICE").read_text().strip()
  with pytest.raises(InputError, match="missing from the installed package"):
    assets.asset_path("nope.bin")
