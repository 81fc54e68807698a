"""Choosing the acoustic presets on a development split of sessions (SPEC F6, F7).

:func:`calibrate` grid-searches named :class:`~palmjax.echo.fusion.FusionConfig` fields on
precomputed per-session :class:`~palmjax.echo.analysis.EchoFeatures` (the expensive part,
computed once) and keeps the setting with the fewest rejected live sessions among those
that accept no spoof; ties go to the larger margin (lowest live score minus highest spoof
score). The sessions must come from seeds disjoint from any test split. The chosen
values are frozen as the ``FusionConfig`` defaults; the function stays for re-tuning on
real recordings.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Mapping, Sequence

import numpy as np

from palmjax.echo.analysis import EchoFeatures
from palmjax.echo.liveness import LivenessConfig, features_to_record
from palmjax.errors import InputError


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
  """The chosen configuration and the dev-split numbers of every grid point."""
  config: LivenessConfig
  bpcer: float
  apcer: float
  margin: float
  table: list[dict[str, Any]]


def calibrate_presets(sessions: Mapping[str, Sequence[EchoFeatures]],
                      grid: Mapping[str, Sequence[Any]],
                      config: LivenessConfig = LivenessConfig()) -> CalibrationResult:
  """Chooses ``FusionConfig`` fields on a development split.

  Args:
    sessions: ``{"live": [...], "<spoof kind>": [...]}``, un-batched features of one
      session each (from :func:`palmjax.echo.echo_features`); must hold ``live`` and at
      least one spoof kind.
    grid: ``{field name: candidate values}`` of :class:`FusionConfig` fields.
    config: the starting configuration (analysis settings and the other presets).

  Returns:
    :class:`CalibrationResult`: the best configuration (fewest live rejections with no
    spoof accepted, if any grid point achieves that; else the lowest APCER), its BPCER,
    APCER and margin, and a table of all grid points.
  """
  if "live" not in sessions or len(sessions) < 2:
    raise InputError("sessions needs 'live' and at least one spoof kind")
  fields = {f.name for f in dataclasses.fields(config.fusion)}
  bad = [k for k in grid if k not in fields]
  if bad:
    raise InputError(f"grid names unknown FusionConfig fields: {bad}")
  names = list(grid)
  table, best, best_key = [], None, None
  for values in itertools.product(*(grid[n] for n in names)):
    fc = dataclasses.replace(config.fusion, **dict(zip(names, values)))
    cfg = dataclasses.replace(config, fusion=fc)
    recs = {k: [features_to_record(f, cfg) for f in v] for k, v in sessions.items()}
    live = recs["live"]
    spoof = [r for k, v in recs.items() if k != "live" for r in v]
    bpcer = float(np.mean([not r.live for r in live]))
    apcer = max(float(np.mean([r.live for r in v])) for k, v in recs.items() if k != "live")
    margin = float(np.sort([r.score for r in live])[len(live) // 10]
                   - max(r.score for r in spoof))
    row = dict(zip(names, values), bpcer=bpcer, apcer=apcer, margin=margin)
    table.append(row)
    key = (apcer, bpcer, -margin)
    if best_key is None or key < best_key:
      best, best_key = (cfg, bpcer, apcer, margin), key
  return CalibrationResult(best[0], best[1], best[2], best[3], table)
