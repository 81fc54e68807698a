"""Face-echo simulator: what the terminal's microphone records for a live face or a spoof.

Physics (SPEC F6): the face is a set of regions (nose tip, eyes, cheeks, forehead, chin) at
different depths, so each returns the chirp with its own delay ``2 d / c`` and strength
(reflectivity x 1/d^2 two-way spreading). A live face moves: breathing (0.1-0.5 Hz,
sub-mm, different amplitude per region), pulse (0.8-2.5 Hz, tens of um, per-region
amplitude and phase), a small common head sway, and blinks that disturb the eye region.
The transducers band-limit the signal; the microphone also hears the speaker directly
(leakage) and static room multipath; white noise sets the echo SNR.

Spoofs:

* ``photo`` / ``screen``: one flat surface, every region at the same depth (no time
  differences), moving rigidly with the hand or stand; a screen replaying a video shows
  blinks to the camera (so blink times exist) but nothing moves acoustically.
* ``mask`` (hand-held rigid 3D mask) and ``mannequin`` (on a stand): the face's depth
  profile, but all regions still or moving rigidly together, no pulse, no breathing.

The core is one jitted function of ``(key, geometry, config)``; geometry and config are
frozen (hashable, static) dataclasses, per-session randomness (depth jitter, rhythm
frequencies, amplitudes, phases, blink times, multipath, noise) comes from the key, so
``jax.vmap(lambda k: simulate_capture(k, geometry, config))(keys)`` makes a batch of sessions.
Rendering is per frame in the frequency domain, so fractional delays are exact.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from palmjax.echo.signal import SPEED_OF_SOUND, ProbeConfig, chirp, validate_probe
from palmjax.errors import InputError

REGIONS = ("nose", "eyes", "cheeks", "forehead", "chin")
KINDS = ("live", "photo", "screen", "mask", "mannequin")
SPOOF_KINDS = KINDS[1:]


@dataclasses.dataclass(frozen=True)
class FaceGeometry:
  """Nominal face: nose-tip distance, region depths behind it, and echo strengths.

  Attributes:
    distance_m: distance from the terminal to the nose tip.
    offsets_m: depth of each region of :data:`REGIONS` behind the nose tip.
    reflectivity: relative echo strength of each region (area x reflectance).
    distance_jitter_m: per-session uniform jitter of ``distance_m`` (+-).
    offset_jitter_m: per-session Gaussian jitter (std) of each region's depth.
  """
  distance_m: float = 0.45
  offsets_m: tuple[float, ...] = (0.0, 0.030, 0.026, 0.022, 0.018)
  reflectivity: tuple[float, ...] = (0.6, 0.5, 1.0, 0.9, 0.6)
  distance_jitter_m: float = 0.03
  offset_jitter_m: float = 0.002


@dataclasses.dataclass(frozen=True)
class SimConfig:
  """Everything else about a simulated session (amplitudes in metres, rates in Hz).

  Per-region tuples follow :data:`REGIONS`; per-session values are drawn uniformly from
  ``(low, high)`` ranges and per-region amplitudes get a log-normal spread ``amp_spread``.
  """
  probe: ProbeConfig = ProbeConfig()
  kind: str = "live"
  snr_db: float = 20.0
  breathing_hz: tuple[float, float] = (0.15, 0.45)
  breathing_amp_m: tuple[float, ...] = (3e-4, 1.2e-4, 2e-4, 0.8e-4, 4e-4)
  pulse_hz: tuple[float, float] = (0.9, 2.0)
  pulse_amp_m: tuple[float, ...] = (25e-6, 30e-6, 60e-6, 45e-6, 35e-6)
  amp_spread: float = 0.3
  sway_amp_m: float = 5e-5          # common head sway of a live person (rigid)
  sway_hz: tuple[float, float] = (0.1, 0.6)
  handheld_sway_m: float = 3e-4     # rigid motion of a hand-held photo / screen / mask
  tremor_hz: tuple[float, float] = (0.8, 2.5)
  tremor_amp_m: float = 4e-5        # hand tremor of a hand-held spoof (rigid)
  blink_rate_hz: float = 0.25       # mean blinks per second (live face, replayed video)
  max_blinks: int = 4
  blink_s: float = 0.25
  blink_amp_m: float = 2e-3         # eyelid travel seen by the eye region
  leakage: float = 3.0              # direct-path amplitude / face echo amplitude
  speaker_mic_m: float = 0.05
  n_multipath: int = 3
  multipath_range_m: tuple[float, float] = (0.8, 1.4)
  multipath_gain: float = 0.3
  band_hz: tuple[float, float] = (18_000.0, 42_000.0)  # speaker x microphone response
  band_order: int = 4
  full_scale: float = 1.0           # recordings are scaled so the leakage peaks at 0.3


class Simulation(NamedTuple):
  """One simulated session (batch dims lead when vmapped)."""
  samples: jax.Array          # microphone stream [n_frames * frame_len]
  blink_times: jax.Array      # [max_blinks] seconds (only where blink_valid)
  blink_valid: jax.Array      # [max_blinks] bool
  depths_m: jax.Array         # [R] region depths (nose first)
  displacement_m: jax.Array   # [n_frames, R] true region motion


def validate_sim(geometry: FaceGeometry, config: SimConfig) -> None:
  """Raises :class:`InputError` on an inconsistent geometry or configuration."""
  validate_probe(config.probe, "config.probe")
  r = len(REGIONS)
  for name, v in (("geometry.offsets_m", geometry.offsets_m),
                  ("geometry.reflectivity", geometry.reflectivity),
                  ("config.breathing_amp_m", config.breathing_amp_m),
                  ("config.pulse_amp_m", config.pulse_amp_m)):
    if len(v) != r:
      raise InputError(f"{name} needs {r} values ({', '.join(REGIONS)}), got {len(v)}")
  if config.kind not in KINDS:
    raise InputError(f"config.kind must be one of {KINDS}, got {config.kind!r}")
  if not np.isfinite(config.snr_db):
    raise InputError(f"config.snr_db must be a finite number of dB, got {config.snr_db}")
  far = geometry.distance_m + geometry.distance_jitter_m + max(geometry.offsets_m) + 0.01
  if far > config.probe.max_range_m or geometry.distance_m <= 0.05:
    raise InputError(f"geometry.distance_m = {geometry.distance_m} m is outside the probe's "
                     f"unambiguous range (0.05, {config.probe.max_range_m:.2f}) m")
  if config.multipath_range_m[1] > config.probe.max_range_m:
    raise InputError(f"config.multipath_range_m reaches beyond the unambiguous range "
                     f"{config.probe.max_range_m:.2f} m of chirp_rate {config.probe.chirp_rate}")


def _sines(key: jax.Array, t: jax.Array, freq: tuple[float, float], amp: float,
           n: int = 2) -> jax.Array:
  """Sum of ``n`` sinusoids with random frequency/phase; rms about ``amp / sqrt(2)``."""
  kf, kp = jax.random.split(key)
  f = jax.random.uniform(kf, (n,), minval=freq[0], maxval=freq[1])
  ph = jax.random.uniform(kp, (n,), maxval=2 * jnp.pi)
  return amp / jnp.sqrt(n) * jnp.sum(jnp.sin(2 * jnp.pi * f * t[:, None] + ph), axis=-1)


def transducer_response(freqs: jax.Array, band_hz: tuple[float, float], order: int) -> jax.Array:
  """Butterworth-like band-pass magnitude of speaker x microphone at ``freqs`` (Hz)."""
  f = jnp.maximum(freqs, 1.0)
  hp = 1.0 / jnp.sqrt(1.0 + (band_hz[0] / f) ** (2 * order))
  lp = 1.0 / jnp.sqrt(1.0 + (f / band_hz[1]) ** (2 * order))
  return hp * lp


@partial(jax.jit, static_argnums=(1, 2))
def _simulate(key: jax.Array, geometry: FaceGeometry, config: SimConfig) -> Simulation:
  p = config.probe
  nf, fl, r = p.n_frames, p.frame_len, len(REGIONS)
  kind = config.kind
  flat = kind in ("photo", "screen")
  keys = jax.random.split(key, 12)
  t = jnp.arange(nf, dtype=jnp.float32) / p.chirp_rate

  # Geometry: nose-tip distance and region depths for this session.
  d0 = geometry.distance_m + jax.random.uniform(
      keys[0], (), minval=-geometry.distance_jitter_m, maxval=geometry.distance_jitter_m)
  offs = jnp.asarray(geometry.offsets_m, jnp.float32)
  offs = offs + geometry.offset_jitter_m * jax.random.normal(keys[1], (r,))
  offs = offs.at[0].set(0.0)
  if flat:
    offs = jnp.zeros((r,), jnp.float32)  # one surface: no inter-region time differences
  depths = d0 + offs
  refl = jnp.asarray(geometry.reflectivity, jnp.float32)

  # Motion of every region over slow time [nf, R].
  spread = lambda k: jnp.exp(config.amp_spread * jax.random.normal(k, (r,)))
  if kind == "live":
    fb = jax.random.uniform(keys[2], (), minval=config.breathing_hz[0],
                            maxval=config.breathing_hz[1])
    fp = jax.random.uniform(keys[3], (), minval=config.pulse_hz[0], maxval=config.pulse_hz[1])
    pb, pp = jax.random.uniform(keys[4], (2,), maxval=2 * jnp.pi)
    db = 0.3 * jax.random.normal(keys[5], (r,))           # breathing phase per region
    dp = jax.random.uniform(keys[6], (r,), maxval=1.0)     # pulse transit phase per region
    ab = jnp.asarray(config.breathing_amp_m) * spread(keys[7])
    ap = jnp.asarray(config.pulse_amp_m) * spread(keys[8])
    wb = 2 * jnp.pi * fb * t[:, None] + pb + db
    wp = 2 * jnp.pi * fp * t[:, None] + pp + dp
    pulse = jnp.sin(wp) + 0.35 * jnp.sin(2 * wp + 0.7)  # dicrotic second harmonic
    motion = ab * jnp.sin(wb) + ap * pulse
    motion = motion + _sines(keys[9], t, config.sway_hz, config.sway_amp_m)[:, None]
  elif kind == "mannequin":
    motion = jnp.zeros((nf, r), jnp.float32)
  else:  # hand-held photo, screen or mask: rigid sway + tremor, the same for all regions
    ks, kt = jax.random.split(keys[9])
    rigid = (_sines(ks, t, config.sway_hz, config.handheld_sway_m)
             + _sines(kt, t, config.tremor_hz, config.tremor_amp_m))
    motion = jnp.broadcast_to(rigid[:, None], (nf, r))

  # Blinks: random times; the eye region's eyelid moves toward the probe and back, and its
  # echo strength dips. Visible (to the camera) for a live face and a replayed video.
  kb1, kb2 = jax.random.split(keys[10])
  margin = min(0.3, 0.25 * p.capture_s)
  bt = jnp.sort(jax.random.uniform(kb1, (config.max_blinks,), minval=margin,
                                   maxval=p.capture_s - margin))
  prob = min(1.0, config.blink_rate_hz * p.capture_s / max(config.max_blinks, 1))
  bvalid = jax.random.uniform(kb2, (config.max_blinks,)) < prob
  if kind not in ("live", "screen"):
    bvalid = jnp.zeros_like(bvalid)
  pulse_b = jnp.exp(-0.5 * ((t[:, None] - bt) / (config.blink_s / 4)) ** 2)
  blink = jnp.sum(jnp.where(bvalid, pulse_b, 0.0), axis=-1)  # [nf]
  eye = REGIONS.index("eyes")
  eye_gain = jnp.ones((nf, r)).at[:, eye].set(1.0 - 0.5 * jnp.clip(blink, 0, 1))
  if kind == "live":
    motion = motion.at[:, eye].add(-config.blink_amp_m * blink)
  else:
    eye_gain = jnp.ones((nf, r))

  # Echo synthesis in the frequency domain of one frame.
  freqs = jnp.fft.rfftfreq(fl, 1.0 / p.fs).astype(jnp.float32)
  c = chirp(p)
  spec_c = jnp.fft.rfft(c, fl) * transducer_response(freqs, config.band_hz, config.band_order)
  x = depths + motion                                          # [nf, R]
  amp = refl * (geometry.distance_m / x) ** 2 * eye_gain       # two-way spreading
  tau = 2 * x / SPEED_OF_SOUND
  phase = -2j * jnp.pi * freqs * tau[..., None]                # [nf, R, F]
  face = jnp.einsum("tr,trf->tf", amp.astype(jnp.complex64), jnp.exp(phase))
  # Static paths: speaker -> microphone leakage and room multipath.
  km1, km2 = jax.random.split(keys[11])
  mp_range = jax.random.uniform(km1, (config.n_multipath,), minval=config.multipath_range_m[0],
                                maxval=config.multipath_range_m[1])
  mp_gain = config.multipath_gain * jax.random.uniform(km2, (config.n_multipath,), minval=0.3)
  face_level = jnp.sum(refl)
  static = (config.leakage * face_level
            * jnp.exp(-2j * jnp.pi * freqs * config.speaker_mic_m / SPEED_OF_SOUND))
  static = static + jnp.sum(mp_gain[:, None] * face_level
                            * jnp.exp(-4j * jnp.pi * freqs * mp_range[:, None] / SPEED_OF_SOUND),
                            axis=0)
  echo = jnp.fft.irfft(face * spec_c, fl)                      # [nf, fl]
  clutter = jnp.fft.irfft(static * spec_c, fl)                 # [fl]
  # Noise relative to the mean face-echo power over the echo's duration.
  p_echo = jnp.sum(echo[0] ** 2) / p.chirp_len
  sigma = jnp.sqrt(p_echo / 10 ** (config.snr_db / 10))
  kn = jax.random.fold_in(key, 99)
  rec = echo + clutter + sigma * jax.random.normal(kn, (nf, fl))
  scale = 0.3 * config.full_scale / (config.leakage * face_level)
  return Simulation(
      samples=(rec * scale).reshape(-1).astype(jnp.float32), blink_times=bt,
      blink_valid=bvalid, depths_m=depths, displacement_m=motion)


def simulate_capture(key: jax.Array, geometry: FaceGeometry = FaceGeometry(),
                     config: SimConfig = SimConfig()) -> Simulation:
  """Simulates one capture session (vmappable over ``key``).

  Args:
    key: PRNG key (the session's randomness).
    geometry: nominal face geometry (static).
    config: probe, spoof kind, SNR and physiology (static).

  Returns:
    :class:`Simulation` with the microphone stream and the ground truth (blink times for
    the caller to pass on as frame times, region depths, region motion).
  """
  validate_sim(geometry, config)
  return _simulate(key, geometry, config)


def blink_times_of(sim: Simulation) -> np.ndarray:
  """The valid blink times (seconds) of one (un-batched) simulation, as NumPy."""
  bt, ok = np.asarray(sim.blink_times), np.asarray(sim.blink_valid)
  return bt[ok]
