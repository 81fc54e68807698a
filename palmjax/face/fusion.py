"""F5 image fusion: colour, texture and lighting probabilities -> image probability.

The patent (claims 4-6): each cue below its preset -> non-live (with that cue as the
reason). When frame count and capture time both meet their requirements, the image
probability is the minimum of the three (a clearly aberrant low one may be discarded,
behind ``discard_aberrant``). Otherwise an *accuracy* of the lighting probability is
derived from frame count and time, the lighting probability is corrected by it (shrunk
toward an uninformative prior), and the corrected lighting, colour and texture
probabilities are combined (``min`` or an accuracy-weighted ``mean``).

When the accuracy is 0 (one frame: a still image has no motion) or there is no lighting
probability at all (``lighting=None``: the models have no lighting cue), the lighting cue
carries no weight: it is left out of the combination and of the preset checks, and the
branch says so (``no_lighting_min`` / ``no_lighting_mean``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class ImageFusionConfig:
  """Every preset of F2-F5.

  Attributes:
    colour_preset, texture_preset, lighting_preset: a cue below its preset -> non-live.
    image_threshold: image probability needed for "live" (no acoustic stage).
    min_frames, min_capture_s: requirements on frame count and capture time.
    discard_aberrant: drop a clearly aberrant low cue from the minimum (patent option).
    aberrant_gap: the lowest cue is aberrant when it lies this far below both others ...
    aberrant_others_min: ... and both others are at least this.
    lighting_prior: the corrected lighting probability shrinks toward this value.
    insufficient_combine: ``min`` or ``mean`` (accuracy-weighted) when the requirements
      are not met.
  """
  colour_preset: float = 0.3
  texture_preset: float = 0.3
  lighting_preset: float = 0.2
  image_threshold: float = 0.5
  min_frames: int = 8
  min_capture_s: float = 0.5
  discard_aberrant: bool = False
  aberrant_gap: float = 0.6
  aberrant_others_min: float = 0.9
  lighting_prior: float = 0.5
  insufficient_combine: str = "min"


@dataclasses.dataclass
class ImageFusion:
  """The F2-F5 outcome with every intermediate value."""
  passed: bool
  probability: float
  branch: str                 # "min" | "min_discarded" | "corrected_min" | "corrected_mean"
  reason: str
  failed_cue: str | None
  accuracy: float
  corrected_lighting: float | None
  discarded: str | None
  frame_count: int
  capture_s: float

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def lighting_accuracy(frame_count: int, capture_s: float, cfg: ImageFusionConfig) -> float:
  """Accuracy in [0, 1] of the lighting probability from frame count and capture time:
  the product of the fractions of each requirement met (1 when both are met)."""
  a = min(1.0, frame_count / max(cfg.min_frames, 1))
  b = min(1.0, capture_s / cfg.min_capture_s) if cfg.min_capture_s > 0 else 1.0
  return float(max(0.0, a) * max(0.0, b))


def fuse_image(colour: float, texture: float, lighting: float | None, frame_count: int,
               capture_s: float, cfg: ImageFusionConfig = ImageFusionConfig()) -> ImageFusion:
  """Applies F2-F5 to the three cue probabilities (see the module docstring)."""
  if cfg.insufficient_combine not in ("min", "mean"):
    from palmjax.errors import InputError
    raise InputError(f"insufficient_combine must be 'min' or 'mean', got "
                     f"{cfg.insufficient_combine!r}")
  sufficient = frame_count >= cfg.min_frames and capture_s >= cfg.min_capture_s
  acc = 1.0 if sufficient else lighting_accuracy(frame_count, capture_s, cfg)
  if lighting is None:
    acc = 0.0
  discarded = None
  corrected = None
  if acc <= 0.0:  # the lighting cue carries no weight (see the module docstring)
    probs = {"colour": colour, "texture": texture}
    discarded = "lighting"
    if cfg.insufficient_combine == "min":
      branch, p = "no_lighting_min", min(colour, texture)
    else:  # mean log-odds (probabilities are never exactly 0 or 1: see face.cues)
      branch = "no_lighting_mean"
      p = sigmoid(mean_log_odds(logit(colour), logit(texture)))
  elif sufficient:
    probs = {"colour": colour, "texture": texture, "lighting": lighting}
    branch = "min"
    ordered = sorted(probs, key=probs.get)
    low, others = ordered[0], ordered[1:]
    if (cfg.discard_aberrant and all(probs[o] >= cfg.aberrant_others_min for o in others)
        and all(probs[o] - probs[low] >= cfg.aberrant_gap for o in others)):
      discarded, branch = low, "min_discarded"
      p = min(probs[o] for o in others)
    else:
      p = min(probs.values())
    corrected = lighting
  else:
    corrected = acc * lighting + (1 - acc) * cfg.lighting_prior
    probs = {"colour": colour, "texture": texture, "lighting": corrected}
    if cfg.insufficient_combine == "min":
      branch, p = "corrected_min", min(probs.values())
    else:
      branch = "corrected_mean"
      p = (colour + texture + acc * corrected) / (2 + acc)
  presets = {"colour": cfg.colour_preset, "texture": cfg.texture_preset,
             "lighting": cfg.lighting_preset}
  failed = None
  for cue in ("colour", "texture", "lighting"):  # the patent's order
    if cue != discarded and cue in probs and probs[cue] < presets[cue]:
      failed = cue
      break
  timing = (f"{frame_count} frames in {capture_s:.2f} s "
            f"({'meets' if sufficient else 'misses'} {cfg.min_frames} frames / "
            f"{cfg.min_capture_s} s; lighting accuracy {acc:.2f})")
  if failed is not None:
    return ImageFusion(False, float(p), branch,
                       f"{failed} probability {probs[failed]:.3f} < preset {presets[failed]}"
                       f"; {timing}", failed, acc, _opt(corrected), discarded,
                       frame_count, capture_s)
  ok = p >= cfg.image_threshold
  reason = (f"image probability {p:.3f} {'>=' if ok else '<'} {cfg.image_threshold} "
            f"({branch}{', discarded ' + discarded if discarded else ''}); {timing}")
  return ImageFusion(bool(ok), float(p), branch, reason, None, acc, _opt(corrected),
                     discarded, frame_count, capture_s)


def logit(p: float) -> float:
  """``log(p / (1 - p))`` (``p`` clipped into (0, 1) so 0 and 1 stay finite)."""
  p = min(max(float(p), 1e-300), 1.0 - 1e-16)
  return math.log(p) - math.log1p(-p)


def sigmoid(z: float) -> float:
  """``1 / (1 + exp(-z))`` of a (bounded, see :func:`palmjax.face.cues.bound_log_odds`)
  log-odds value."""
  return 1.0 / (1.0 + math.exp(-float(z)))


def mean_log_odds(colour: Any, texture: Any) -> Any:
  """F5 for a still (the lighting cue weightless): the mean of the colour and texture
  log-odds (floats or arrays)."""
  return (colour + texture) / 2


def _opt(v: float | None) -> float | None:
  return None if v is None else float(v)
