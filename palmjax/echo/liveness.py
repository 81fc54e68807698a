"""``acoustic_liveness(recording, config)``: a recording in, an auditable record out.

Checks the input (sample rate, length, NaN -> :class:`InputError`; silent, clipped or no
face echo -> a ``cannot_decide`` record), extracts features with
:func:`palmjax.echo.analysis.echo_features`, applies the patent's F6 rules and, when they
pass, the F7 multi-period fusion (:mod:`palmjax.echo.fusion`). The record carries every
intermediate number and the reason for the decision (SPEC F8 keeps it for audit).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
from jax.typing import ArrayLike

from palmjax.echo.analysis import AnalysisConfig, EchoFeatures, blink_keep_mask, echo_features
from palmjax.echo.fusion import (FusionConfig, acoustic_probability, deviation, fuse,
                                 period_probability)
from palmjax.echo.simulate import REGIONS
from palmjax.errors import InputError, check_finite

DECISIONS = ("live", "not_live", "cannot_decide")


@dataclasses.dataclass(frozen=True)
class Recording:
  """A microphone stream and its sample rate (Hz); ``samples`` is ``[N]``."""
  samples: Any
  fs: float


@dataclasses.dataclass(frozen=True)
class LivenessConfig:
  """Analysis settings (incl. the probe) and fusion presets."""
  analysis: AnalysisConfig = AnalysisConfig()
  fusion: FusionConfig = FusionConfig()


@dataclasses.dataclass
class LivenessRecord:
  """Auditable result of :func:`acoustic_liveness` (JSON-serialisable via ``to_json``)."""
  decision: str
  reason: str
  stage: str
  acoustic_probability: float | None = None
  fused_probability: float | None = None
  fusion_branch: str | None = None
  region_probabilities: dict[str, float] = dataclasses.field(default_factory=dict)
  period_probabilities: dict[str, float] = dataclasses.field(default_factory=dict)
  periods: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
  features: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
  time_difference_s: float | None = None
  frequency_deviation_hz: float | None = None
  amplitude_deviation: float | None = None
  echo_level: float | None = None
  blink_frames_dropped: int = 0

  @property
  def live(self) -> bool:
    return self.decision == "live"

  @property
  def score(self) -> float:
    """A continuous liveness score for ROC curves: fused, else acoustic, else 0."""
    if self.fused_probability is not None:
      return self.fused_probability
    return self.acoustic_probability or 0.0

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self, **kwargs) -> str:
    return json.dumps(self.to_dict(), **kwargs)


def check_recording(recording: Recording, config: LivenessConfig) -> np.ndarray:
  """Structural checks (raise :class:`InputError`); returns the samples as float32."""
  a = config.analysis
  p = a.probe
  if not isinstance(recording, Recording):
    raise InputError(f"recording must be a palmjax.echo.Recording, got {type(recording)}")
  if abs(float(recording.fs) - p.fs) > 1e-6 * p.fs:
    raise InputError(f"recording.fs = {recording.fs} Hz, but the probe was designed for "
                     f"fs = {p.fs} Hz (resample or pass a matching config)")
  x = np.asarray(recording.samples)
  if x.ndim != 1:
    raise InputError(f"recording.samples must be 1-D [N], got shape {x.shape}")
  if x.dtype.kind not in "iuf":
    raise InputError(f"recording.samples dtype {x.dtype} is not numeric")
  if x.dtype.kind in "iu":
    x = x.astype(np.float32) / np.iinfo(x.dtype).max
  check_finite(x, "recording.samples")
  n_frames = x.shape[0] // p.frame_len
  dur = n_frames / p.chirp_rate
  need = 2.0 / a.rhythm_band_hz[0]
  if dur < need:
    raise InputError(
        f"recording is {dur:.2f} s long; at least {need:.2f} s (two periods of the slowest "
        f"rhythm, {a.rhythm_band_hz[0]} Hz) is needed")
  if n_frames < a.period_frames:
    raise InputError(f"recording ({n_frames} frames) is shorter than one preset period "
                     f"({a.period_frames} frames)")
  return x.astype(np.float32)


def _quality(x: np.ndarray, cfg: FusionConfig) -> str | None:
  rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
  if rms < cfg.silence_rms:
    return f"recording is silent (rms {rms:.2e} < {cfg.silence_rms:.0e})"
  peak = float(np.max(np.abs(x)))
  frac = float(np.mean(np.abs(x) >= 0.999 * peak))
  if frac > cfg.clip_fraction:
    return (f"recording is clipped ({100 * frac:.2f}% of samples at the peak "
            f"{peak:.3g}, limit {100 * cfg.clip_fraction:.2f}%)")
  return None


def features_to_record(f: EchoFeatures, config: LivenessConfig, *,
                       blink_frames_dropped: int = 0) -> LivenessRecord:
  """Applies the F6 rules and F7 fusion to the (un-batched) features of one recording."""
  fc, a = config.fusion, config.analysis
  g = lambda v: np.asarray(v, np.float64)
  freq, amp, prom = g(f.frequency_hz), g(f.amplitude_m), g(f.prominence)
  noise_amp, breath = g(f.noise_amplitude_m), g(f.breathing_amplitude_m)
  # The breathing part is a low-pass (moving average) of the displacement; white noise
  # keeps its spectral density in the breathing band, so its amplitude noise is the same.
  breath_noise = noise_amp
  noisy = dict(noise_amplitude_m=noise_amp, breathing_amplitude_m=breath,
               breathing_noise_m=breath_noise)
  rec = LivenessRecord(
      decision="not_live", reason="", stage="", time_difference_s=float(f.time_difference_s),
      echo_level=float(f.echo_level), blink_frames_dropped=blink_frames_dropped,
      features={r: {"frequency_hz": float(freq[i]), "amplitude_m": float(amp[i]),
                    "prominence": float(prom[i]), "gate_range_m": float(f.gate_range_m[i]),
                    "breathing_amplitude_m": float(breath[i]),
                    "breathing_frequency_hz": float(f.breathing_frequency_hz[i]),
                    "noise_m": float(f.noise_m[i]),
                    "noise_amplitude_m": float(noise_amp[i])}
                for i, r in enumerate(REGIONS)})
  if rec.echo_level < fc.min_echo_level:
    rec.decision, rec.stage = "cannot_decide", "echo"
    rec.reason = (f"no usable face echo in range {a.min_range_m}-{a.max_range_m} m (echo "
                  f"level {rec.echo_level:.1f} < {fc.min_echo_level}: no face, or too noisy "
                  f"to decide)")
    return rec
  dev = deviation(freq, amp, fc, prominence=prom, **noisy)
  rec.frequency_deviation_hz, rec.amplitude_deviation = dev.frequency_hz, dev.amplitude_rel
  ac = acoustic_probability(rec.time_difference_s, freq, amp, prom, fc, REGIONS, **noisy)
  rec.acoustic_probability = ac.probability
  rec.region_probabilities = ac.region_probabilities
  if not ac.passed:
    rec.stage, rec.reason = ac.stage, ac.reason
    return rec
  hop = a.period_hop_s
  pf, pa, pq = g(f.period_frequency_hz), g(f.period_amplitude_m), g(f.period_prominence)
  for i, r in enumerate(REGIONS):
    pr = period_probability(pf[:, i], pa[:, i], pq[:, i], hop, fc)
    rec.period_probabilities[r] = pr.probability
    rec.periods[r] = {"steady_periods": pr.steady_periods, "steady_s": pr.steady_s,
                      "varying_periods": pr.varying_periods, "varying_s": pr.varying_s}
  fu = fuse(rec.period_probabilities, fc)
  rec.fused_probability, rec.fusion_branch = fu.probability, fu.branch
  rec.stage = "fusion"
  if fu.probability >= fc.live_threshold:
    rec.decision = "live"
    rec.reason = (f"fused probability {fu.probability:.3f} >= {fc.live_threshold} "
                  f"({fu.branch})")
  else:
    rec.reason = (f"fused probability {fu.probability:.3f} < {fc.live_threshold} "
                  f"({fu.branch}; {len(fu.low_regions)} region(s) below "
                  f"{fc.fusion_preset}: {', '.join(fu.low_regions) or 'none'})")
  return rec


def acoustic_liveness(recording: Recording, config: LivenessConfig = LivenessConfig(), *,
                      blink_times: ArrayLike | None = None,
                      return_features: bool = False):
  """Acoustic liveness of one capture (SPEC F6 + F7).

  Args:
    recording: microphone stream and its sample rate.
    config: analysis settings and fusion presets.
    blink_times: times (s from the capture start) at which the camera saw a blink; the
      eye region's frames around them are dropped.
    return_features: also return the :class:`EchoFeatures` (for plots).

  Returns:
    :class:`LivenessRecord` (and the features when asked).

  Raises:
    InputError: wrong sample rate, a capture shorter than two periods of the slowest
      rhythm, NaN/inf, a non-1-D or non-numeric array.
  """
  x = check_recording(recording, config)
  a = config.analysis
  n_frames = x.shape[0] // a.probe.frame_len
  if blink_times is not None:
    bt = check_finite(np.atleast_1d(np.asarray(blink_times, np.float64)), "blink_times")
    if bt.size and (bt.min() < 0 or bt.max() > n_frames / a.probe.chirp_rate):
      raise InputError(f"blink_times must lie within the capture (0-"
                       f"{n_frames / a.probe.chirp_rate:.2f} s), got {bt.min()}-{bt.max()}")
  keep = blink_keep_mask(blink_times, n_frames, a.probe.chirp_rate, a.blink_guard_s)
  bad = _quality(x, config.fusion)
  if bad is not None:
    rec = LivenessRecord(decision="cannot_decide", reason=bad, stage="quality")
    return (rec, None) if return_features else rec
  f = echo_features(x, keep, config=a)
  rec = features_to_record(f, config, blink_frames_dropped=int((~keep).sum()))
  return (rec, f) if return_features else rec
