"""Dataclass configs as command-line flags: one ``--field-name`` per scalar field.

Every command that builds a config dataclass gets its flags from here, so a new field is a
new flag without touching the CLI. Nested dataclass fields (and ``Any``) have no flag; the
command builds them and passes them to :func:`dataclass_from_args` as overrides.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from palmjax.config import field_type

_SCALARS = (bool, int, float, str)


def _parse_bool(s: str) -> bool:
  v = s.strip().lower()
  if v in ("1", "true", "yes", "on"):
    return True
  if v in ("0", "false", "no", "off"):
    return False
  raise argparse.ArgumentTypeError(f"expected a boolean, got {s!r}")


def flag_fields(cls: type, skip: tuple[str, ...] = ()) -> list[dataclasses.Field]:
  """The fields of ``cls`` that get a flag: scalar or tuple-of-scalar ones not in ``skip``."""
  hints = typing.get_type_hints(cls)
  return [f for f in dataclasses.fields(cls)
          if f.name not in skip and field_type(hints[f.name])[0] in _SCALARS]


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type,
                            skip: tuple[str, ...] = (), *,
                            defaults: dict[str, Any] | None = None,
                            helps: dict[str, str] | None = None) -> None:
  """Adds ``--name`` for each scalar field of the dataclass ``cls``.

  A flag not given keeps the field's default, or this command's ``defaults[name]`` (shown in
  the help); ``helps[name]`` adds a description. Fields in ``skip`` get no flag.
  """
  hints = typing.get_type_hints(cls)
  defaults, helps = defaults or {}, helps or {}
  unknown = (set(defaults) | set(helps)) - {f.name for f in dataclasses.fields(cls)}
  if unknown:
    raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
  group = parser.add_argument_group(f"{cls.__name__} (defaults shown)")
  for f in flag_fields(cls, skip):
    tp, _, is_tuple = field_type(hints[f.name])
    conv = _parse_bool if tp is bool else tp
    flag = "--" + f.name.replace("_", "-")
    if f.name in defaults:
      default, arg_default = defaults[f.name], defaults[f.name]
    else:  # absent from the namespace: the dataclass fills in its own default
      default = f.default if f.default is not dataclasses.MISSING else None
      arg_default = argparse.SUPPRESS
    text = f"{helps[f.name]} " if f.name in helps else ""
    kw: dict[str, Any] = dict(dest=f.name, default=arg_default,
                              help=f"{text}(default: {default})".replace("%", "%%"))
    if is_tuple:
      kw["nargs"] = "*"  # "--highpass-sigmas" with no value: the empty tuple
    group.add_argument(flag, type=conv, metavar=tp.__name__.upper(), **kw)
  # None stays reachable through a field's default only.


def dataclass_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
  """Builds ``cls`` from the flags given on the command line (others keep defaults);
  ``overrides`` (e.g. nested configs the command built) win over flags."""
  names = {f.name for f in flag_fields(cls)}
  given = {k: v for k, v in vars(args).items() if k in names}
  for k, v in given.items():
    if isinstance(v, list):
      given[k] = tuple(v)
  given.update(overrides)
  return cls(**given)
