"""palmjax.echo: probe, simulator, analysis, the patent's rules by constructed inputs, bad input."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from palmjax import echo
from palmjax.errors import InputError

# Short captures at a low chirp rate keep the tests fast (one compile per kind).
PROBE = echo.ProbeConfig(chirp_rate=50.0, capture_s=5.0)
CFG = echo.LivenessConfig(analysis=echo.AnalysisConfig(probe=PROBE))
GEOM = echo.FaceGeometry()


def sim(kind, seed=0, **kw):
  return echo.simulate_capture(jax.random.key(seed), GEOM,
                               echo.SimConfig(probe=PROBE, kind=kind, **kw))


def analyse(s, **kw):
  return echo.acoustic_liveness(echo.Recording(s.samples, PROBE.fs), CFG,
                                blink_times=echo.blink_times_of(s), **kw)


# --- probe ---------------------------------------------------------------------------------

def test_chirp_band_and_validation():
  c = np.asarray(echo.chirp(PROBE))
  assert c.shape == (PROBE.chirp_len,) and abs(np.abs(c).max() - 1) < 0.05
  spec = np.abs(np.fft.rfft(c, 4096))
  f = np.fft.rfftfreq(4096, 1 / PROBE.fs)
  inband = (spec[(f > 20e3) & (f < 40e3)] ** 2).sum() / (spec ** 2).sum()
  assert inband > 0.95                                                # energy in band
  assert np.asarray(echo.probe_signal(PROBE)).shape == (PROBE.n_samples,)
  with pytest.raises(InputError, match="audible"):
    echo.validate_probe(echo.ProbeConfig(f_start=18_000.0))
  with pytest.raises(InputError, match="Nyquist"):
    echo.validate_probe(echo.ProbeConfig(fs=48_000.0))
  with pytest.raises(InputError, match="below f_stop"):
    echo.validate_probe(echo.ProbeConfig(f_start=30e3, f_stop=25e3))


# --- simulator -----------------------------------------------------------------------------

@pytest.mark.slow
def test_simulator_geometry_vmap_and_spoof_physics():
  keys = jax.random.split(jax.random.key(1), 2)
  cfg = echo.SimConfig(probe=PROBE, kind="live")
  sims = jax.vmap(lambda k: echo.simulate_capture(k, GEOM, cfg))(keys)
  assert sims.samples.shape == (2, PROBE.n_samples)
  d = np.asarray(sims.depths_m)
  assert np.all((d > 0.3) & (d < 0.6))
  eyes_minus_nose = d[:, echo.REGIONS.index("eyes")] - d[:, 0]
  assert np.all((eyes_minus_nose > 0.02) & (eyes_minus_nose < 0.04))
  one = echo.simulate_capture(keys[1], GEOM, cfg)
  np.testing.assert_allclose(one.samples, sims.samples[1], atol=1e-5)
  assert np.isfinite(np.asarray(sims.samples)).all() and np.abs(sims.samples).max() < 1.0
  photo = sim("photo")
  assert np.ptp(np.asarray(photo.depths_m)) == 0.0                    # one flat surface
  mask = np.asarray(sim("mask").displacement_m)
  np.testing.assert_allclose(mask, mask[:, :1].repeat(5, 1))         # rigid: all alike
  assert np.abs(np.asarray(sim("mannequin").displacement_m)).max() == 0.0
  live = np.asarray(sims.displacement_m[0])
  assert np.std(live[:, 0] - live[:, 2]) > 1e-5                       # regions differ


def test_echo_peaks_and_time_differences():
  s = sim("live", seed=3)
  keep = np.ones(PROBE.n_frames, bool)
  f = echo.echo_features(s.samples, keep, config=CFG.analysis)
  first = float(f.gate_range_m[0])
  assert abs(first - float(s.depths_m[0])) < 0.005                   # nose echo found
  assert float(f.time_difference_s) > 2 * 0.012 / 343.0
  fp = echo.echo_features(sim("photo", seed=3).samples, keep, config=CFG.analysis)
  assert float(fp.time_difference_s) == 0.0


# --- end to end ----------------------------------------------------------------------------

def test_flat_targets_score_zero_and_rigid_mask_has_no_deviation():
  for kind in ("photo", "screen"):
    rec = analyse(sim(kind, seed=2))
    assert rec.acoustic_probability == 0.0 and rec.stage == "time_difference"
    assert rec.decision == "not_live" and rec.score == 0.0
  rec = analyse(sim("mask", seed=2))
  assert rec.time_difference_s > 3.5e-5
  assert rec.stage == "deviation" and rec.acoustic_probability == 0.0
  assert rec.frequency_deviation_hz < CFG.fusion.min_frequency_deviation_hz
  assert rec.amplitude_deviation < CFG.fusion.min_amplitude_deviation
  rec = analyse(sim("mannequin", seed=2))
  assert rec.decision == "not_live" and rec.stage in ("region", "deviation")
  assert rec.score < 0.5


def test_live_face_passes_and_record_is_json():
  rec = analyse(sim("live", seed=0))
  assert rec.decision == "live", rec.reason
  assert rec.fused_probability >= CFG.fusion.live_threshold
  assert set(rec.region_probabilities) == set(echo.REGIONS)
  # Every region's breathing period of a live face is trusted: claim 10's trusted mean.
  fused = echo.fuse(rec.period_probabilities, CFG.fusion)
  assert rec.fusion_branch == fused.branch == "mean_of_trusted"
  assert rec.fused_probability == pytest.approx(fused.probability)
  back = json.loads(rec.to_json())
  assert back["decision"] == "live" and back["periods"]["nose"]["steady_s"] >= 0


def test_blink_exclusion_restores_eye_region():
  """Eye-region motion with blinks passed as frame times tracks the blink-free motion."""
  s = sim("live", seed=5, blink_rate_hz=1.0)
  bt = echo.blink_times_of(s)
  assert bt.size >= 2
  a = CFG.analysis
  eye = echo.REGIONS.index("eyes")
  keep = echo.analysis.blink_keep_mask(bt, PROBE.n_frames, PROBE.chirp_rate, a.blink_guard_s)
  with_b = echo.echo_features(s.samples, np.ones_like(keep), config=a)
  without = echo.echo_features(s.samples, keep, config=a)
  clean = echo.simulate_capture(jax.random.key(5), GEOM, echo.SimConfig(probe=PROBE, kind="live",
                                                                blink_rate_hz=1.0,
                                                                blink_amp_m=0.0))
  ref = echo.echo_features(clean.samples, keep, config=a)
  err = lambda f: abs(float(f.amplitude_m[eye]) - float(ref.amplitude_m[eye]))
  assert err(without) < err(with_b)
  rec = analyse(s)
  assert rec.blink_frames_dropped == int((~keep).sum()) > 0


# --- the rules by constructed inputs -------------------------------------------------------

# Constructed-input tests pin the presets they reason about (the defaults are calibrated).
FC = echo.FusionConfig(min_frequency_deviation_hz=0.1, min_amplitude_deviation=0.25,
                       min_breathing_deviation=0.25, period_frequency_tolerance_hz=0.4,
                       period_amplitude_tolerance=0.75, period_prominence_floor=4.0,
                       fusion_preset=0.5)


def test_rules_time_difference_and_deviation():
  f = np.full(5, 1.2)
  a = np.full(5, 50e-6)
  q = np.full(5, 100.0)
  r = echo.acoustic_probability(0.0, f, a * [1, 2, 1, 1, 1], q, FC)
  assert r.probability == 0.0 and r.stage == "time_difference"
  r = echo.acoustic_probability(1e-4, f, a, q, FC)
  assert r.probability == 0.0 and r.stage == "deviation"
  assert echo.deviation(f + [0, 0.2, 0, 0, 0], a, FC).present
  assert echo.deviation(f, a * [1, 1.3, 1, 1, 1], FC).present


def test_rules_region_order_and_stop():
  f = np.array([1.2, 1.0, 1.1, 1.3, 1.2])
  good, weak = 80e-6, 2e-6
  q = np.full(5, 200.0)
  r = echo.acoustic_probability(1e-4, f, np.array([good, weak, good, weak, good]), q, FC)
  # Nose passes, eyes fail: the check stops at the eyes (forehead never evaluated).
  assert r.stage == "region" and list(r.region_probabilities) == ["nose", "eyes"]
  assert "eyes" in r.reason and not r.passed
  r = echo.acoustic_probability(1e-4, f, np.array([weak, good, good, good, good]), q, FC)
  assert list(r.region_probabilities) == ["nose"]
  r = echo.acoustic_probability(1e-4, f, np.array([good, good, good, weak, good]), q, FC)
  assert list(r.region_probabilities) == ["nose", "eyes", "cheeks", "forehead"]
  r = echo.acoustic_probability(1e-4, f, np.full(5, good) * [1, 1.5, 1, 1, 1], q, FC)
  assert r.passed and r.probability == min(r.region_probabilities.values())
  # Low prominence (no periodic peak) fails like low amplitude.
  assert echo.region_probability(good, 1.5, FC) < 0.5 < echo.region_probability(good, 50.0, FC)
  assert echo.region_probability(1e-2, 50.0, FC) < 0.5                # gross motion


def test_fusion_branches():
  c = dataclasses.replace(FC, fusion_preset=0.6, low_region_limit=1)
  r = echo.fuse({"a": 0.2, "b": 0.5, "c": 0.9}, c)           # mean 0.533 < 0.6
  assert r.branch == "minimum" and r.probability == pytest.approx(0.2)
  r = echo.fuse({"a": 0.5, "b": 0.55, "c": 0.95, "d": 0.95, "e": 0.95}, c)  # 2 low > 1
  assert r.branch == "mean_of_low" and r.probability == pytest.approx(0.525)
  assert r.low_regions == ["a", "b"]
  r = echo.fuse({"a": 0.5, "b": 0.8, "c": 0.9}, c)           # 1 low <= 1: trusted mean
  assert r.branch == "mean_of_trusted" and r.probability == pytest.approx(0.85)
  assert r.trusted_regions == ["b", "c"]
  r = echo.fuse([0.6, 0.6], c)                                # all on the preset
  assert r.branch == "mean_of_trusted" and r.probability == pytest.approx(0.6)


def test_period_probability_steady_vs_varying():
  q = np.full(4, 50.0)
  steady = echo.period_probability([1.2, 1.21, 1.19, 1.2], np.full(4, 60e-6), q, 1.25, FC)
  assert steady.steady_periods == 3 and steady.varying_periods == 0
  assert steady.steady_s == pytest.approx(3.75)
  vary = echo.period_probability([1.2, 2.4, 0.9, 2.8], np.full(4, 60e-6), q, 1.25, FC)
  assert vary.varying_periods == 3 and vary.varying_s == pytest.approx(3.75)
  assert vary.probability < 0.5 * steady.probability
  amp = echo.period_probability([1.2] * 4, [60e-6, 300e-6, 60e-6, 60e-6], q, 1.25, FC)
  assert amp.varying_periods == 2 and amp.steady_periods == 1


def test_deviation_is_noise_aware_and_sees_breathing():
  f = np.full(5, 1.2)
  a = np.full(5, 50e-6) * [1, 1.4, 1, 1, 1]                 # 40 % spread
  assert echo.deviation(f, a, FC).present
  # The same spread inside the noise (std 10 um per estimate) is no deviation ...
  noisy = echo.deviation(f, a, FC, noise_amplitude_m=np.full(5, 10e-6))
  assert not noisy.present and noisy.amplitude_rel == pytest.approx(0.4 / 1.08)
  # ... but well above it, it is.
  assert echo.deviation(f, a, FC, noise_amplitude_m=np.full(5, 1e-6)).present
  # Breathing amplitudes that differ count as a deviation; alike ones do not.
  same = np.full(5, 50e-6)
  kw = dict(noise_amplitude_m=np.full(5, 1e-6), breathing_noise_m=np.full(5, 1e-6))
  assert not echo.deviation(f, same, FC, breathing_amplitude_m=np.full(5, 2e-4), **kw).present
  assert echo.deviation(f, same, FC, breathing_amplitude_m=[3e-4, 1e-4, 2e-4, 1e-4, 4e-4],
                        **kw).present
  # A frequency spread only counts between regions with a prominent peak.
  f2 = f + [0, 0.5, 0, 0, 0]
  assert echo.deviation(f2, same, FC).present
  assert not echo.deviation(f2, same, FC, prominence=[50, 2, 50, 50, 50]).present


def test_region_probability_breathing_evidence():
  # No pulse peak, but a breathing motion well above floor and noise: passes.
  p = echo.region_probability(5e-6, 1.5, FC, breathing_amplitude_m=2e-4,
                              noise_amplitude_m=2e-6)
  assert p > 0.9
  assert echo.region_probability(5e-6, 1.5, FC) < 0.1                 # pulse alone fails
  # Breathing-band "motion" that is only noise (mannequin) fails.
  p = echo.region_probability(5e-6, 1.5, FC, breathing_amplitude_m=6e-6,
                              noise_amplitude_m=2e-6)
  assert p < 0.1
  p = echo.region_probability(5e-6, 1.5, FC, breathing_amplitude_m=4e-5,
                              noise_amplitude_m=2e-5)                  # 2 noise stds
  assert p < 0.1


def test_gate_displacement_coherent_and_robust_to_null_bins():
  """A rigid motion is recovered exactly; a null bin's noisy phase does not leak in."""
  rng = np.random.default_rng(0)
  t = np.arange(200) / 50.0
  x = 80e-6 * np.sin(2 * np.pi * 1.3 * t)
  lam = PROBE.wavelength_m
  amp = np.array([1.0, 0.8, 0.02, 0.9, 1.0])        # bin 2 sits in an interference null
  z = amp * np.exp(-4j * np.pi * x[:, None] / lam) * np.exp(1j * rng.uniform(0, 6, 5))
  z = z + 0.002 * (rng.normal(size=z.shape) + 1j * rng.normal(size=z.shape))
  d = np.asarray(echo.analysis.gate_displacement(z, np.array([2]), halfwidth=2,
                                                 wavelength_m=lam))[:, 0]
  np.testing.assert_allclose(d - d.mean(), x - x.mean(), atol=5e-6)
  single = np.asarray(echo.analysis.gate_displacement(z, np.array([2]), halfwidth=0,
                                                      wavelength_m=lam))[:, 0]
  assert np.std(single - x) > 3 * np.std(d - x)
  n = np.asarray(echo.analysis.displacement_noise(rng.normal(size=(4000, 2)) * 3e-6))
  np.testing.assert_allclose(n, 3e-6, rtol=0.1)


def test_calibrate_picks_a_spoof_free_setting():
  s = {k: [echo.echo_features(sim(k, seed=i).samples, np.ones(PROBE.n_frames, bool),
                              config=CFG.analysis) for i in range(2)]
       for k in ("live", "mask")}
  r = echo.calibrate_presets(s, {"deviation_noise_factor": [0.0, 3.0]}, CFG)
  assert len(r.table) == 2 and r.apcer == 0.0
  assert r.config.fusion.deviation_noise_factor in (0.0, 3.0)
  best = [row for row in r.table if row["deviation_noise_factor"]
          == r.config.fusion.deviation_noise_factor][0]
  assert best["bpcer"] == r.bpcer
  with pytest.raises(InputError, match="unknown"):
    echo.calibrate_presets(s, {"no_such_field": [1]}, CFG)


# --- bad input -----------------------------------------------------------------------------

def test_bad_input_errors_and_cannot_decide():
  s = sim("live", seed=0)
  x = np.asarray(s.samples)
  with pytest.raises(InputError, match="fs"):
    echo.acoustic_liveness(echo.Recording(x, 48_000.0), CFG)
  with pytest.raises(InputError, match="at least"):
    echo.acoustic_liveness(echo.Recording(x[:PROBE.frame_len * 100], PROBE.fs), CFG)
  bad = x.copy()
  bad[123] = np.nan
  with pytest.raises(InputError, match="NaN"):
    echo.acoustic_liveness(echo.Recording(bad, PROBE.fs), CFG)
  with pytest.raises(InputError, match="1-D"):
    echo.acoustic_liveness(echo.Recording(x.reshape(PROBE.n_frames, -1), PROBE.fs), CFG)
  with pytest.raises(InputError, match="blink_times"):
    echo.acoustic_liveness(echo.Recording(x, PROBE.fs), CFG, blink_times=[99.0])
  rec = echo.acoustic_liveness(echo.Recording(np.zeros_like(x), PROBE.fs), CFG)
  assert rec.decision == "cannot_decide" and "silent" in rec.reason
  clipped = np.clip(x * 20, -0.5, 0.5)
  rec = echo.acoustic_liveness(echo.Recording(clipped, PROBE.fs), CFG)
  assert rec.decision == "cannot_decide" and "clipped" in rec.reason
  noise = np.random.default_rng(0).normal(size=x.shape).astype(np.float32) * 0.01
  rec = echo.acoustic_liveness(echo.Recording(noise, PROBE.fs), CFG)
  assert rec.decision == "cannot_decide" and rec.stage == "echo"
  with pytest.raises(InputError, match="kind"):
    echo.simulate_capture(jax.random.key(0), GEOM, echo.SimConfig(probe=PROBE, kind="wax"))
  with pytest.raises(InputError, match="range"):
    echo.simulate_capture(jax.random.key(0), echo.FaceGeometry(distance_m=5.0),
                  echo.SimConfig(probe=PROBE))
