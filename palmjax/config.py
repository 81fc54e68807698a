"""Frozen-dataclass configs: one way to rebuild them from JSON (saved run configs, exports)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from palmjax.errors import InputError, _where

T = TypeVar("T")


def field_type(tp: Any) -> tuple[Any, bool, bool]:
  """``(scalar type, optional?, tuple?)`` of a config field's annotation."""
  optional = False
  origin = typing.get_origin(tp)
  if origin in (typing.Union, types.UnionType):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    optional = len(args) < len(typing.get_args(tp))
    tp = args[0]
    origin = typing.get_origin(tp)
  if origin is tuple:
    return typing.get_args(tp)[0], optional, True
  return tp, optional, False


def check_keys(cls: type, keys: Any, what: str = "") -> None:
  """Raises ``InputError`` naming any of ``keys`` that is not a field of the dataclass ``cls``."""
  names = [f.name for f in dataclasses.fields(cls)]
  unknown = sorted(set(keys) - set(names))
  if unknown:
    raise InputError(f"{_where(what)}unknown {cls.__name__} key(s) "
                     f"{', '.join(map(repr, unknown))}; valid keys: {', '.join(names)}")


def from_dict(cls: type[T], d: dict[str, Any], what: str = "") -> T:
  """Builds the dataclass ``cls`` from a JSON-like dict.

  A key that is not a field is an ``InputError`` naming it and the valid ones (``what``, e.g.
  the file it came from, prefixes the message); missing keys take the field's default. JSON
  lists become tuples for tuple-typed fields, so the rebuilt config compares equal to the one
  that was saved.
  """
  if not isinstance(d, dict):
    raise InputError(f"{_where(what)}{cls.__name__} must be a JSON object, "
                     f"got {type(d).__name__}")
  check_keys(cls, d, what)
  hints = typing.get_type_hints(cls)
  kwargs = {}
  for f in dataclasses.fields(cls):
    if f.name not in d:
      continue
    v = d[f.name]
    if field_type(hints[f.name])[2] and v is not None:
      v = tuple(v)
    kwargs[f.name] = v
  return cls(**kwargs)
