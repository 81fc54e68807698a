"""F8 decision and the auditable :class:`DecisionRecord`.

Outcomes: ``proceed`` (the credit application continues), ``reject`` (stopped: not the
enrolled user, or not live), ``paused`` (image liveness failed on a terminal without
acoustic hardware: the application waits for another check), ``recapture`` (the capture
cannot be judged: no / silent / clipped echo, or a borderline acoustic result).

After the acoustic stage (F6-F7, :func:`palmjax.echo.acoustic_liveness`):

* echo "cannot decide" -> recapture;
* an F6 rule failed (flat target, no deviation between regions, a region failing) -> reject;
* fused probability >= the echo's ``live_threshold`` -> proceed;
* otherwise (the patent's F8): with ``n`` regions below the fusion preset and the combined
  score ``w_f * fused + w_a * acoustic + w_i * image``: ``n <= max_failing_regions`` and
  score >= ``proceed_score`` -> proceed; ``n <= recapture_max_failing_regions`` and score
  >= ``recapture_score`` -> recapture; else reject.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

OUTCOMES = ("proceed", "reject", "paused", "recapture")


@dataclasses.dataclass(frozen=True)
class DecisionConfig:
  """F8 presets."""
  max_failing_regions: int = 1
  recapture_max_failing_regions: int = 2
  weight_fused: float = 0.5
  weight_acoustic: float = 0.3
  weight_image: float = 0.2
  proceed_score: float = 0.6
  recapture_score: float = 0.45


@dataclasses.dataclass
class DecisionRecord:
  """Everything the terminal decided and why (JSON via :meth:`to_json`)."""
  outcome: str
  reason: str
  stage: str                                   # input | similarity | image | acoustic | f8
  similarity: float | None = None
  similarity_threshold: float | None = None
  cue_probabilities: dict[str, float] = dataclasses.field(default_factory=dict)
  image: dict[str, Any] | None = None           # ImageFusion.to_dict()
  image_probability: float | None = None
  acoustic: dict[str, Any] | None = None        # palmjax.echo.LivenessRecord.to_dict()
  acoustic_probability: float | None = None
  fused_probability: float | None = None
  failing_regions: list[str] = dataclasses.field(default_factory=list)
  combined_score: float | None = None
  acoustic_hardware: bool = True
  frame_count: int = 0
  capture_s: float | None = None
  source: str = ""
  face_box: list[float] | None = None           # [x0, y0, x1, y1] of the cropped face
  config: dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def live_score(self) -> float:
    """A continuous score for ROC curves: 1 for proceed, else the best evidence < 1."""
    if self.outcome == "proceed":
      return 1.0
    vals = [v for v in (self.combined_score, self.image_probability) if v is not None]
    return 0.99 * max(vals) if vals else 0.0

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self, **kwargs) -> str:
    return json.dumps(self.to_dict(), default=float, **kwargs)


def decide_acoustic(rec: DecisionRecord, echo_record: Any, image_probability: float,
                    live_threshold: float, fusion_preset: float, cfg: DecisionConfig
                    ) -> DecisionRecord:
  """Fills ``rec`` from the acoustic record (F6-F7) and applies F8."""
  rec.acoustic = echo_record.to_dict()
  rec.acoustic_probability = echo_record.acoustic_probability
  rec.fused_probability = echo_record.fused_probability
  if echo_record.decision == "cannot_decide":
    rec.outcome, rec.stage = "recapture", "acoustic"
    rec.reason = f"image liveness failed and the echo cannot be judged: {echo_record.reason}"
    return rec
  if echo_record.fused_probability is None:  # an F6 rule failed
    rec.outcome, rec.stage = "reject", "acoustic"
    rec.reason = f"image liveness failed; acoustic check failed: {echo_record.reason}"
    return rec
  fused = float(echo_record.fused_probability)
  if fused >= live_threshold:
    rec.outcome, rec.stage = "proceed", "acoustic"
    rec.reason = (f"image liveness failed but the acoustic check passed: fused "
                  f"{fused:.3f} >= {live_threshold}")
    return rec
  periods = echo_record.period_probabilities or {}
  rec.failing_regions = sorted(r for r, p in periods.items() if p < fusion_preset)
  n = len(rec.failing_regions)
  ac = float(echo_record.acoustic_probability or 0.0)
  score = (cfg.weight_fused * fused + cfg.weight_acoustic * ac
           + cfg.weight_image * image_probability) / (
               cfg.weight_fused + cfg.weight_acoustic + cfg.weight_image)
  rec.combined_score = float(score)
  rec.stage = "f8"
  tail = (f"fused {fused:.3f} < {live_threshold}; {n} failing region(s) "
          f"[{', '.join(rec.failing_regions)}]; combined score {score:.3f} (fused "
          f"{fused:.3f}, acoustic {ac:.3f}, image {image_probability:.3f})")
  if n <= cfg.max_failing_regions and score >= cfg.proceed_score:
    rec.outcome, rec.reason = "proceed", f"{tail} >= {cfg.proceed_score}"
  elif n <= cfg.recapture_max_failing_regions and score >= cfg.recapture_score:
    rec.outcome, rec.reason = "recapture", f"borderline: {tail} >= {cfg.recapture_score}"
  else:
    rec.outcome, rec.reason = "reject", f"not live: {tail}"
  return rec
