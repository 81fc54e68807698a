"""Config dataclasses: strict JSON rebuilding, generated CLI flags, no module shadowing."""

import argparse
import dataclasses
import importlib
import json
import pkgutil
import types

import pytest

import palmjax
from palmjax.cli import build_parser
from palmjax.cli._config import dataclass_from_args, flag_fields
from palmjax.config import from_dict
from palmjax.errors import InputError


def _modules():
  for m in pkgutil.walk_packages(palmjax.__path__, "palmjax."):
    if not m.name.endswith("__main__"):
      yield m.name


def _config_classes():
  """Every dataclass in palmjax with a ``from_dict`` (the configs saved as JSON)."""
  seen = {}
  for name in _modules():
    for obj in vars(importlib.import_module(name)).values():
      if (isinstance(obj, type) and dataclasses.is_dataclass(obj) and "from_dict" in vars(obj)
          and obj.__module__.startswith("palmjax")):
        seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
  return [seen[k] for k in sorted(seen)]


CONFIGS = _config_classes()


def test_config_classes_found():
  names = {c.__name__ for c in CONFIGS}
  assert {"SRTrainConfig", "PalmTrainConfig", "FaceTrainConfig", "SRCNNConfig"} <= names


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_from_dict_round_trip_and_unknown_keys(cls):
  cfg = cls()
  d = cfg.to_dict() if hasattr(cfg, "to_dict") else dataclasses.asdict(cfg)
  d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}  # as JSON has it
  assert cls.from_dict(d) == cfg
  with pytest.raises(InputError) as e:
    cls.from_dict({**d, "no_such_key": 1, "alsobad": 2})
  msg = str(e.value)
  assert "'alsobad', 'no_such_key'" in msg and cls.__name__ in msg
  for f in dataclasses.fields(cls):  # the valid keys are listed
    assert f.name in msg.split("valid keys:")[1]


def test_from_dict_names_the_source_and_rejects_non_objects():
  from palmjax.sr.train import SRTrainConfig
  with pytest.raises(InputError, match=r"^run/config\.json: unknown SRTrainConfig key\(s\) 'lr'"):
    from_dict(SRTrainConfig, {"scale": 2, "lr": 1e-3}, "run/config.json")
  with pytest.raises(InputError, match="SRTrainConfig must be a JSON object, got list"):
    from_dict(SRTrainConfig, [1, 2])
  assert from_dict(SRTrainConfig, {"train_dirs": ["a", "b"]}).train_dirs == ("a", "b")


def test_shipped_checkpoints_load_strictly():
  """Every shipped export's configs are rebuilt with no key left over."""
  from palmjax.face.check import load_models, sim_models_path
  from palmjax.palm.detector import default_classifier_path
  from palmjax.palm.train import load_classifier
  from palmjax.sr.inference import load_model
  for s in (2, 3, 4):
    assert load_model(scale=s).config.scale == s
  path = default_classifier_path()
  _, cfg, threshold, _ = load_classifier(path)
  saved = json.loads((path / "config.json").read_text())
  assert threshold == saved["threshold"] and cfg.to_dict()["scale"] == saved["train"]["scale"]
  assert load_models().fusion.image_threshold > 0.5
  assert load_models(sim_models_path()).lighting is not None


def _subparser(parser, path):
  for name in path:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices[name]
  return parser


def _all_commands(parser, prefix=()):
  subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
  if not subs:
    yield prefix, parser
  for sub in subs:
    for name, p in sub.choices.items():
      yield from _all_commands(p, prefix + (name,))


def test_generated_flags_build_the_config():
  from palmjax.echo import FaceGeometry, ProbeConfig, SimConfig
  from palmjax.palm.sr import PalmSRConfig
  from palmjax.palm.tune import TuneConfig
  from palmjax.sr.train import SRTrainConfig
  p = build_parser()
  a = p.parse_args(["palm", "train-sr", "--num-steps", "7", "--n-val", "3"])
  assert dataclass_from_args(PalmSRConfig, a) == PalmSRConfig(num_steps=7, n_val=3)
  a = p.parse_args(["palm", "tune", "--store", "s.db", "--learning-rate", "0.01"])
  assert dataclass_from_args(TuneConfig, a) == TuneConfig(learning_rate=0.01)
  a = p.parse_args(["sr", "train", "--augment", "no", "--train-dirs", "a", "b", "--val-dir", "v"])
  assert dataclass_from_args(SRTrainConfig, a) == SRTrainConfig(
      augment=False, train_dirs=("a", "b"), val_dir="v")
  a = p.parse_args(["sr", "train", "--train-dirs"])  # a tuple flag with no value: ()
  assert dataclass_from_args(SRTrainConfig, a).train_dirs == ()
  # echo: the command's own probe default (50 chirps/s) and tuple fields.
  a = p.parse_args(["echo", "simulate", "o.npz", "--kind", "mask", "--band-hz", "1e4", "3e4",
                    "--distance-m", "0.3"])
  probe = dataclass_from_args(ProbeConfig, a)
  assert probe == ProbeConfig(chirp_rate=50.0)
  assert dataclass_from_args(SimConfig, a, probe=probe) == SimConfig(
      probe=probe, kind="mask", band_hz=(1e4, 3e4))
  assert dataclass_from_args(FaceGeometry, a) == FaceGeometry(distance_m=0.3)
  with pytest.raises(SystemExit):
    p.parse_args(["sr", "train", "--augment", "maybe"])


def test_no_hand_written_flag_duplicates_a_config_field():
  """A command that takes a config dataclass has one flag per field, all generated."""
  for path, parser in _all_commands(build_parser()):
    groups = [g for g in parser._action_groups if g.title.endswith("(defaults shown)")]
    if not groups:
      continue
    generated = {a.dest for g in groups for a in g._group_actions}
    others = {a.dest for a in parser._actions} - generated
    assert not generated & others, (path, generated & others)
    assert len(generated) == sum(len(g._group_actions) for g in groups), path


def test_flag_fields_skip_nested_configs():
  from palmjax.face.check import FaceCheckConfig
  names = {f.name for f in flag_fields(FaceCheckConfig)}
  assert names == {"similarity_threshold", "acoustic_hardware", "model_size"}


def test_no_package_attribute_shadows_its_submodule():
  """``palmjax.x.y`` is the module ``y`` however it is reached (no function named after it)."""
  for name in _modules():
    importlib.import_module(name)
  for name in _modules():
    pkg, _, leaf = name.rpartition(".")
    attr = getattr(importlib.import_module(pkg), leaf)
    assert isinstance(attr, types.ModuleType), f"{pkg}.{leaf} is {attr!r}, not the module"
