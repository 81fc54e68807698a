"""Dataclass configs as command-line flags: one ``--field-name`` per field."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from palmjax.config import field_type


def _parse_bool(s: str) -> bool:
  v = s.strip().lower()
  if v in ("1", "true", "yes", "on"):
    return True
  if v in ("0", "false", "no", "off"):
    return False
  raise argparse.ArgumentTypeError(f"expected a boolean, got {s!r}")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type,
                            skip: tuple[str, ...] = ()) -> None:
  """Adds ``--name`` for each field of the dataclass ``cls`` (default: the field's)."""
  hints = typing.get_type_hints(cls)
  group = parser.add_argument_group(f"{cls.__name__} (defaults shown)")
  for f in dataclasses.fields(cls):
    if f.name in skip:
      continue
    tp, optional, is_tuple = field_type(hints[f.name])
    conv = _parse_bool if tp is bool else tp
    flag = "--" + f.name.replace("_", "-")
    default = f.default if f.default is not dataclasses.MISSING else None
    kw: dict[str, Any] = dict(dest=f.name, default=argparse.SUPPRESS,
                              help=f"(default: {default})")
    if is_tuple:
      kw["nargs"] = "*"  # "--highpass-sigmas" with no value: the empty tuple
    group.add_argument(flag, type=conv, metavar=tp.__name__.upper(), **kw)
    del optional  # None stays reachable through the default only


def dataclass_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
  """Builds ``cls`` from the flags given on the command line (others keep defaults)."""
  names = {f.name for f in dataclasses.fields(cls)}
  given = {k: v for k, v in vars(args).items() if k in names}
  for k, v in given.items():
    if isinstance(v, list):
      given[k] = tuple(v)
  given.update(overrides)
  return cls(**given)
