"""The patent's acoustic rules (SPEC F6) and multi-period fusion (SPEC F7), every threshold named.

F6 (acoustic liveness probability), in the patent's order:

1. the echoes show no time differences (a flat target) -> acoustic probability 0;
2. the regions' fluctuation frequencies and vibration amplitudes show no deviation from
   each other (everything moves together or nothing moves) -> 0;
3. nose region, then eye region (blink moments dropped by the caller), then every other
   region gets a probability from its features; the first region below
   ``region_threshold`` stops the check: not live.

F7 (multi-period fusion): per region, the features of consecutive preset periods are
compared; a period whose frequency and amplitude stay within tolerance of the previous one
is *steady*, otherwise *varying*. The region probability is the mean per-period feature
probability times the steady share of the time (varying time counts with a weight that
falls with the size of the change). Then, exactly as claim 10:

* mean of region probabilities < ``fusion_preset`` -> fused = minimum;
* else, number of regions below the preset > ``low_region_limit`` -> fused = mean of the
  low ones;
* else fused = mean of the trusted regions (those above the preset).

The functions here work on plain feature arrays, so every branch can be tested with
constructed inputs; :mod:`palmjax.echo.liveness` applies them to a recording.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import numpy as np
from jax.typing import ArrayLike

from palmjax.echo.simulate import REGIONS


@dataclasses.dataclass(frozen=True)
class FusionConfig:
  """Every preset of the acoustic rules.

  The defaults of the deviation, breathing and F7 presets were chosen with
  :func:`palmjax.echo.calibrate.calibrate_presets` on a development split of simulated sessions
  (seed 1000, 24 per kind at 20 and 10 dB SNR; disjoint from the experiment's seed 0).
  On that split the regions' pulse *frequency* spread was estimation noise only (a live
  face has one heart rate), so ``min_frequency_deviation_hz`` sits above the width of the
  pulse band: the deviation rule is decided by the (noise-aware) amplitude spreads. A
  rigid mask shows a systematic relative spread of up to 0.35 between the gates (the
  regions share range-resolution cells), so both relative tolerances sit at 0.4.

  Attributes:
    min_echo_level: strongest face echo / median envelope; below it no face is in range
      or the echo is too noisy for the rules (cannot decide; the dev split: <= 8 at 0 dB
      echo SNR, >= 13.8 at 10 dB).
    min_time_difference_s: face echoes spread less than this (round trip) -> flat target.
    min_frequency_deviation_hz: region frequencies spread (max - min) at least this ...
    min_amplitude_deviation: ... or region amplitudes spread ((max - min) / mean) at least
      this, else "no deviation" -> 0. Amplitudes are compared in the pulse band and, when
      given, in the breathing band.
    min_breathing_deviation: the relative spread needed in the breathing band (there the
      rigid sway of a hand-held mask dominates and the estimate spans few cycles).
    deviation_prominence_floor: only regions whose spectral prominence reaches this count
      in the frequency spread (a noise peak has an arbitrary frequency).
    deviation_noise_factor: an amplitude spread must also exceed this many standard
      deviations of the difference of two amplitude estimates (``sqrt(2)`` x their noise
      std), so noise alone (at low SNR) never makes a deviation.
    amplitude_floor_m: vibration amplitude where a region's amplitude score is 0.5.
    amplitude_ceiling_m: above it the motion is gross (not physiological): score 0.5.
    amplitude_softness_dec: width (decades) of both amplitude transitions.
    prominence_floor: spectral peak / median power where the periodicity score is 0.5.
    prominence_softness_dec: width (decades) of that transition.
    breathing_floor_m: breathing-band amplitude where a region's breathing score is 0.5
      (a region passes on pulse evidence or on breathing evidence).
    breathing_snr_floor: breathing amplitude / its noise std where that score is 0.5.
    breathing_ceiling_m: above it breathing-band motion is not breathing (a gate on noise,
      whose unwrapped phase wanders by millimetres): score 0.5.
    region_threshold: a region (nose, eyes, each other one) below it fails -> not live.
    acoustic_combine: ``min`` or ``mean`` of the region probabilities -> acoustic one.
    acoustic_threshold: acoustic probability needed to continue to F7.
    period_frequency_tolerance_hz: frequency change between consecutive periods that
      still counts as steady.
    period_amplitude_tolerance: relative amplitude change that still counts as steady.
    period_prominence_floor: ``prominence_floor`` inside one (short) preset period, whose
      spectrum has fewer independent bins.
    fusion_preset: the preset region probability of claim 10.
    low_region_limit: the count limit of claim 10.
    live_threshold: fused probability needed for "live".
    clip_fraction: more samples than this fraction at the recording's peak -> clipped.
    silence_rms: recording rms below this -> silent.
  """
  min_echo_level: float = 10.0
  min_time_difference_s: float = 3.5e-5
  min_frequency_deviation_hz: float = 2.5
  min_amplitude_deviation: float = 0.4
  min_breathing_deviation: float = 0.4
  deviation_prominence_floor: float = 6.0
  deviation_noise_factor: float = 3.0
  amplitude_floor_m: float = 15e-6
  amplitude_ceiling_m: float = 3e-3
  amplitude_softness_dec: float = 0.15
  prominence_floor: float = 6.0
  prominence_softness_dec: float = 0.2
  breathing_floor_m: float = 30e-6
  breathing_snr_floor: float = 8.0
  breathing_ceiling_m: float = 1.5e-3
  region_threshold: float = 0.5
  acoustic_combine: str = "min"
  acoustic_threshold: float = 0.5
  period_frequency_tolerance_hz: float = 0.8
  period_amplitude_tolerance: float = 1.5
  period_prominence_floor: float = 3.0
  fusion_preset: float = 0.4
  low_region_limit: int = 1
  live_threshold: float = 0.5
  clip_fraction: float = 0.01
  silence_rms: float = 1e-7


def _sigmoid(z: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def region_probability(amplitude_m: ArrayLike, prominence: ArrayLike,
                       config: FusionConfig = FusionConfig(), *,
                       breathing_amplitude_m: ArrayLike | None = None,
                       noise_amplitude_m: ArrayLike | None = None) -> np.ndarray:
  """Liveness probability of region(s) from vibration amplitude and spectral prominence.

  Pulse evidence: a product of three soft gates on log scales: amplitude above
  ``amplitude_floor_m``, below ``amplitude_ceiling_m``, and a periodic peak
  (``prominence`` above ``prominence_floor``). With ``breathing_amplitude_m`` and
  ``noise_amplitude_m`` given, breathing evidence (amplitude above ``breathing_floor_m``
  and ``breathing_snr_floor`` noise stds, below ``breathing_ceiling_m``) counts too: the region's
  probability is the larger of the two.
  """
  a = np.log10(np.maximum(np.asarray(amplitude_m, np.float64), 1e-12))
  q = np.log10(np.maximum(np.asarray(prominence, np.float64), 1e-12))
  s_a, s_q = config.amplitude_softness_dec, config.prominence_softness_dec
  lo = _sigmoid((a - np.log10(config.amplitude_floor_m)) / s_a)
  hi = _sigmoid((np.log10(config.amplitude_ceiling_m) - a) / s_a)
  per = _sigmoid((q - np.log10(config.prominence_floor)) / s_q)
  p = lo * hi * per
  if breathing_amplitude_m is not None and noise_amplitude_m is not None:
    b = np.log10(np.maximum(np.asarray(breathing_amplitude_m, np.float64), 1e-12))
    n = np.log10(np.maximum(np.asarray(noise_amplitude_m, np.float64), 1e-12))
    pb = (_sigmoid((b - np.log10(config.breathing_floor_m)) / s_a)
          * _sigmoid((b - n - np.log10(config.breathing_snr_floor)) / s_a)
          * _sigmoid((np.log10(config.breathing_ceiling_m) - b) / s_a))
    p = np.maximum(p, pb)
  return p


class Deviation(NamedTuple):
  frequency_hz: float   # max - min of the region frequencies
  amplitude_rel: float  # (max - min) / mean of the region amplitudes
  present: bool


def _spread(a: np.ndarray, noise: np.ndarray | None, rel: float,
            config: FusionConfig) -> tuple[float, bool]:
  """Relative spread ``(max - min) / mean`` and whether it beats both tolerances."""
  mean = float(a.mean())
  if not mean > 0:
    return 0.0, False
  d = float(a.max() - a.min())
  need = rel * mean
  if noise is not None:
    need = max(need, config.deviation_noise_factor * np.sqrt(2) * float(np.max(noise)))
  return d / mean, d >= need


def deviation(frequency_hz: ArrayLike, amplitude_m: ArrayLike,
              config: FusionConfig = FusionConfig(), *, prominence: ArrayLike | None = None,
              noise_amplitude_m: ArrayLike | None = None,
              breathing_amplitude_m: ArrayLike | None = None,
              breathing_noise_m: ArrayLike | None = None) -> Deviation:
  """Whether the regions' fluctuation frequencies or vibration amplitudes deviate.

  Args:
    frequency_hz, amplitude_m: per-region fluctuation (pulse) frequency and amplitude.
    config: the tolerances.
    prominence: per-region spectral prominence; when given, only regions reaching
      ``deviation_prominence_floor`` enter the frequency spread.
    noise_amplitude_m: per-region noise std of the amplitude estimates; when given, an
      amplitude spread must also exceed ``deviation_noise_factor`` x sqrt(2) x the noise.
    breathing_amplitude_m, breathing_noise_m: the same comparison in the breathing band.

  Returns:
    :class:`Deviation` (frequency spread in Hz, the larger relative amplitude spread, and
    whether either shows a deviation).
  """
  f = np.asarray(frequency_hz, np.float64)
  a = np.asarray(amplitude_m, np.float64)
  ok = np.ones(f.shape, bool)
  if prominence is not None:
    ok = np.asarray(prominence, np.float64) >= config.deviation_prominence_floor
  df = float(f[ok].max() - f[ok].min()) if ok.sum() >= 2 else 0.0
  nz = lambda v: None if v is None else np.asarray(v, np.float64)
  da, present = _spread(a, nz(noise_amplitude_m), config.min_amplitude_deviation, config)
  if breathing_amplitude_m is not None:
    db, pb = _spread(np.asarray(breathing_amplitude_m, np.float64), nz(breathing_noise_m),
                     config.min_breathing_deviation, config)
    da, present = max(da, db), present or pb
  present = present or df >= config.min_frequency_deviation_hz
  return Deviation(df, da, bool(present))


class AcousticResult(NamedTuple):
  probability: float
  region_probabilities: dict[str, float]
  passed: bool
  stage: str      # "time_difference", "deviation", "region", "acoustic" or "passed"
  reason: str


def acoustic_probability(time_difference_s: float, frequency_hz: ArrayLike,
                         amplitude_m: ArrayLike, prominence: ArrayLike,
                         config: FusionConfig = FusionConfig(),
                         regions: Sequence[str] = REGIONS, *,
                         noise_amplitude_m: ArrayLike | None = None,
                         breathing_amplitude_m: ArrayLike | None = None,
                         breathing_noise_m: ArrayLike | None = None) -> AcousticResult:
  """SPEC F6 on whole-capture features ``[R]`` (eye features already without blinks).

  The optional keyword arrays (noise std of the amplitude estimates, breathing-band
  amplitudes and their noise) make the deviation rule noise-aware (:func:`deviation`).
  """
  if time_difference_s < config.min_time_difference_s:
    return AcousticResult(0.0, {}, False, "time_difference",
                          f"echoes show no time difference ({time_difference_s * 1e6:.1f} us "
                          f"< {config.min_time_difference_s * 1e6:.1f} us): flat target")
  dev = deviation(frequency_hz, amplitude_m, config, prominence=prominence,
                  noise_amplitude_m=noise_amplitude_m,
                  breathing_amplitude_m=breathing_amplitude_m,
                  breathing_noise_m=breathing_noise_m)
  if not dev.present:
    return AcousticResult(0.0, {}, False, "deviation",
                          f"regions move alike (frequency spread {dev.frequency_hz:.3f} Hz, "
                          f"amplitude spread {dev.amplitude_rel:.2f}): no deviation")
  probs = region_probability(amplitude_m, prominence, config,
                             breathing_amplitude_m=breathing_amplitude_m,
                             noise_amplitude_m=noise_amplitude_m)
  order = [regions.index("nose"), regions.index("eyes")]
  order += [i for i in range(len(regions)) if i not in order]
  out: dict[str, float] = {}
  for i in order:  # nose, eyes, then the others; the first failure stops the check
    out[regions[i]] = float(probs[i])
    if probs[i] < config.region_threshold:
      return AcousticResult(float(probs[i]), out, False, "region",
                            f"{regions[i]} region fails ({probs[i]:.3f} < "
                            f"{config.region_threshold})")
  vals = np.array(list(out.values()))
  if config.acoustic_combine == "min":
    p = float(vals.min())
  elif config.acoustic_combine == "mean":
    p = float(vals.mean())
  else:
    raise ValueError(f"acoustic_combine must be min or mean, got {config.acoustic_combine!r}")
  if p < config.acoustic_threshold:
    return AcousticResult(p, out, False, "acoustic",
                          f"acoustic probability {p:.3f} < {config.acoustic_threshold}")
  return AcousticResult(p, out, True, "passed", "all regions pass the acoustic check")


class PeriodResult(NamedTuple):
  probability: float
  steady_periods: int
  steady_s: float
  varying_periods: int
  varying_s: float


def period_probability(frequency_hz: ArrayLike, amplitude_m: ArrayLike, prominence: ArrayLike,
                       hop_s: float, config: FusionConfig = FusionConfig()) -> PeriodResult:
  """SPEC F7 for one region from its per-period features ``[W]``.

  Period ``w >= 1`` is steady when its frequency is within
  ``period_frequency_tolerance_hz`` and its amplitude within
  ``period_amplitude_tolerance`` (relative) of period ``w - 1``; each period accounts for
  ``hop_s`` seconds of new time. Probability = mean per-period
  :func:`region_probability` (with ``period_prominence_floor``) x (steady time + sum over varying periods of
  ``hop_s * exp(-(excess change))``) / total time; with a single period the stability
  factor is 1.
  """
  f = np.asarray(frequency_hz, np.float64)
  a = np.asarray(amplitude_m, np.float64)
  per = dataclasses.replace(config, prominence_floor=config.period_prominence_floor)
  base = float(np.mean(region_probability(a, prominence, per))) if f.size else 0.0
  if f.size < 2:
    return PeriodResult(base, 0, 0.0, 0, 0.0)
  df = np.abs(np.diff(f)) / config.period_frequency_tolerance_hz
  prev = np.maximum(a[:-1], 1e-12)
  da = np.abs(np.diff(a)) / prev / config.period_amplitude_tolerance
  change = np.maximum(df, da)
  steady = change <= 1.0
  weight = np.where(steady, 1.0, np.exp(-(change - 1.0)))
  stability = float(np.sum(weight * hop_s) / (hop_s * change.size))
  return PeriodResult(base * stability, int(steady.sum()), float(steady.sum() * hop_s),
                      int((~steady).sum()), float((~steady).sum() * hop_s))


class FusionResult(NamedTuple):
  probability: float
  branch: str              # "minimum", "mean_of_low" or "mean_of_trusted"
  low_regions: list[str]
  trusted_regions: list[str]


def fuse(probabilities: dict[str, float] | Sequence[float],
         config: FusionConfig = FusionConfig()) -> FusionResult:
  """Claim 10's fusion of region probabilities (dict name -> p, or a sequence)."""
  if not isinstance(probabilities, dict):
    probabilities = {str(i): float(p) for i, p in enumerate(probabilities)}
  if not probabilities:
    raise ValueError("fuse needs at least one region probability")
  names = list(probabilities)
  p = np.array([probabilities[n] for n in names], np.float64)
  preset = config.fusion_preset
  low = [n for n, v in zip(names, p) if v < preset]
  trusted = [n for n, v in zip(names, p) if v > preset]
  if p.mean() < preset:
    return FusionResult(float(p.min()), "minimum", low, trusted)
  if len(low) > config.low_region_limit:
    return FusionResult(float(np.mean([probabilities[n] for n in low])), "mean_of_low", low,
                        trusted)
  # Trusted regions: above the preset. If every region sits exactly on the preset there
  # are none; their mean is then the preset itself.
  val = float(np.mean([probabilities[n] for n in trusted])) if trusted else float(p.mean())
  return FusionResult(val, "mean_of_trusted", low, trusted)
