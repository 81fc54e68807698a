"""Frozen-dataclass configs: one way to rebuild them from JSON (saved run configs, exports)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

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


def from_dict(cls: type[T], d: dict[str, Any]) -> T:
  """Builds the dataclass ``cls`` from a JSON-like dict.

  Keys that are not fields are ignored (older or newer files); JSON lists become tuples for
  tuple-typed fields, so the rebuilt config compares equal to the one that was saved.
  """
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
