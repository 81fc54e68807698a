"""Ultrasonic echo liveness (SPEC F6, F7).

* :mod:`~palmjax.echo.signal`: the probe (linear chirp > 20 kHz, repeated at a chirp rate);
* :mod:`~palmjax.echo.simulate`: face geometry, echo simulator, spoofs (photo, screen,
  mask, mannequin);
* :mod:`~palmjax.echo.analysis`: matched filter, range profile, echo peaks, time
  differences, per-region slow-time features (FFT period estimator);
* :mod:`~palmjax.echo.fusion`: the patent's rules and multi-period fusion, named presets;
* :mod:`~palmjax.echo.liveness`: ``acoustic_liveness(recording, config) -> record``;
* :mod:`~palmjax.echo.calibrate`: choosing the presets on a development split.
"""

from palmjax.echo.calibrate import CalibrationResult, calibrate_presets
from palmjax.echo.analysis import AnalysisConfig, EchoFeatures, echo_features, fill_gaps
from palmjax.echo.fusion import (FusionConfig, acoustic_probability, deviation, fuse,
                                 period_probability, region_probability)
from palmjax.echo.liveness import (LivenessConfig, LivenessRecord, Recording,
                                   acoustic_liveness)
from palmjax.echo.signal import ProbeConfig, chirp, probe_signal, validate_probe
from palmjax.echo.simulate import (KINDS, REGIONS, SPOOF_KINDS, FaceGeometry, SimConfig,
                                   Simulation, blink_times_of, simulate_capture)
from palmjax.kernels.spectral import FrequencyEstimate, estimate_frequency

__all__ = [
    "AnalysisConfig", "CalibrationResult", "EchoFeatures", "FaceGeometry", "FrequencyEstimate", "FusionConfig",
    "KINDS", "LivenessConfig", "LivenessRecord", "ProbeConfig", "REGIONS", "Recording",
    "SPOOF_KINDS", "SimConfig", "Simulation", "acoustic_liveness", "acoustic_probability",
    "blink_times_of", "calibrate_presets", "chirp", "deviation", "echo_features",
    "estimate_frequency", "fill_gaps", "fuse", "period_probability", "probe_signal", "region_probability",
    "simulate_capture", "validate_probe",
]
