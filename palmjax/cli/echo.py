"""``palmjax echo simulate|analyze``: ultrasonic echo liveness (SPEC F6, F7).

``simulate`` writes a simulated capture (``.npz`` with ``samples``, ``fs``,
``blink_times``); ``analyze`` reads one (``.npz`` or a 1-D ``.npy`` plus ``--fs``), prints
the liveness record as JSON and can plot the range-slow-time map and per-region spectra.
"""

from __future__ import annotations

import argparse


# The CLI's probe repeats its chirp at 50 Hz (the library default is 100 Hz).
_PROBE_DEFAULTS = {"chirp_rate": 50.0}


def _probe_args(p: argparse.ArgumentParser) -> None:
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.echo import ProbeConfig
  add_dataclass_arguments(p, ProbeConfig, defaults=_PROBE_DEFAULTS, helps={
      "fs": "sampling rate (Hz)", "f_start": "chirp start (Hz), above 20 kHz",
      "f_stop": "chirp stop (Hz), at most fs / 2", "chirp_rate": "chirps per second (Hz)",
      "capture_s": "capture length (s)"})


def _probe(args):
  from palmjax.cli._config import dataclass_from_args
  from palmjax.echo import ProbeConfig, validate_probe
  return validate_probe(dataclass_from_args(ProbeConfig, args))


def register(sub: argparse._SubParsersAction) -> None:
  p = sub.add_parser("echo", help="ultrasonic echo liveness: simulate and analyze captures",
                     description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
  cmds = p.add_subparsers(dest="echo_command", metavar="CMD", required=True)
  s = cmds.add_parser("simulate", help="simulate a capture of a live face or a spoof",
                      description="Simulate one capture session and write it as .npz.")
  s.add_argument("output", help="output .npz path")
  s.add_argument("--seed", type=int, default=0)
  from palmjax.cli._config import add_dataclass_arguments
  from palmjax.echo import KINDS, FaceGeometry, SimConfig
  add_dataclass_arguments(s, SimConfig, helps={
      "kind": f"what faces the terminal: {', '.join(KINDS)}", "snr_db": "echo SNR (dB)"})
  add_dataclass_arguments(s, FaceGeometry, helps={"distance_m": "nose-tip distance (m)"})
  _probe_args(s)
  s.set_defaults(func=_simulate)
  a = cmds.add_parser("analyze", help="acoustic liveness of a capture (JSON record)",
                      description="Run acoustic_liveness on a capture and print the record.")
  a.add_argument("input", help=".npz from 'echo simulate' or a 1-D .npy stream")
  a.add_argument("--blink-times", type=float, nargs="*", default=None,
                 help="blink times (s) seen by the camera (default: from the .npz)")
  a.add_argument("--plot", metavar="PNG", help="write the range-slow-time map and spectra")
  a.add_argument("--json", metavar="PATH", help="also write the record as JSON")
  _probe_args(a)
  a.set_defaults(func=_analyze)


def _simulate(args) -> int:
  import jax
  import numpy as np
  from palmjax import echo
  from palmjax.cli._config import dataclass_from_args
  from palmjax.io import atomic_path, check_output_path
  probe = _probe(args)
  check_output_path(args.output)
  cfg = dataclass_from_args(echo.SimConfig, args, probe=probe)
  sim = echo.simulate_capture(jax.random.key(args.seed),
                              dataclass_from_args(echo.FaceGeometry, args), cfg)
  bt = echo.blink_times_of(sim)
  with atomic_path(args.output) as tmp:
    with open(tmp, "wb") as f:
      np.savez(f, samples=np.asarray(sim.samples), fs=probe.fs, blink_times=bt,
               kind=cfg.kind)
  print(f"wrote {args.output}: {cfg.kind}, {probe.n_samples} samples at {probe.fs:.0f} Hz, "
        f"{bt.size} blink(s)")
  return 0


def _load(path: str, fs: float):
  import numpy as np
  from palmjax.errors import InputError
  from palmjax.io import load_arrays
  data = load_arrays(path, "an echo capture (.npz from 'echo simulate' or a 1-D .npy)")
  if isinstance(data, np.ndarray):
    return data, fs, None
  if "samples" not in data:
    raise InputError(f"{path}: .npz has no 'samples' array")
  try:
    file_fs = float(data["fs"]) if "fs" in data else fs
  except (TypeError, ValueError):
    raise InputError(f"{path}: 'fs' must be one number (the sample rate, Hz)") from None
  bt = data["blink_times"] if "blink_times" in data else None
  return data["samples"], file_fs, bt


def _analyze(args) -> int:
  from palmjax import echo
  from palmjax.echo.liveness import check_recording
  from palmjax.errors import InputError
  from palmjax.io import atomic_path, check_output_path
  probe = _probe(args)
  for path in (args.json, args.plot):
    if path:
      check_output_path(path)
  samples, fs, bt = _load(args.input, probe.fs)
  if args.blink_times is not None:
    bt = args.blink_times
  cfg = echo.LivenessConfig(analysis=echo.AnalysisConfig(probe=probe))
  recording = echo.Recording(samples, fs)
  try:  # the probe flags are checked above: what fails here is the file's content
    check_recording(recording, cfg)
  except InputError as e:
    raise InputError(f"{args.input}: {e}") from None
  rec, feats = echo.acoustic_liveness(recording, cfg, blink_times=bt, return_features=True)
  text = rec.to_json(indent=2)
  print(text)
  if args.json:
    with atomic_path(args.json) as tmp, open(tmp, "w") as f:
      f.write(text)
  if args.plot and feats is not None:
    plot(feats, cfg, args.plot, title=f"{args.input}: {rec.decision}")
    print(f"wrote {args.plot}")
  return 0


def plot(feats, cfg, path: str, *, title: str = "") -> None:
  """Range-slow-time map (dB) with region gates, and per-region slow-time spectra."""
  import numpy as np
  from palmjax.echo import REGIONS
  from palmjax.kernels.spectral import periodogram
  from palmjax.plotting import figure, save_png
  p = cfg.analysis.probe
  env = np.asarray(feats.rt_map)
  rng = np.asarray(feats.range_m)
  sel = (rng >= cfg.analysis.min_range_m) & (rng <= cfg.analysis.max_range_m)
  fig, ax = figure(1, 2, figsize=(12, 4.5), purpose="the echo plot")
  db = 20 * np.log10(np.maximum(env[:, sel], 1e-12) / env[:, sel].max())
  t_end = env.shape[0] / p.chirp_rate
  ax[0].imshow(db.T, aspect="auto", origin="lower", vmin=-40, vmax=0, cmap="viridis",
               extent=[0, t_end, rng[sel][0], rng[sel][-1]])
  for g, name in zip(np.asarray(feats.gate_range_m), REGIONS):
    ax[0].axhline(g, lw=0.6, ls="--", color="w")
    ax[0].text(t_end, g, f" {name}", fontsize=7, va="center")
  ax[0].set(xlabel="slow time (s)", ylabel="range (m)", title="range-slow-time map (dB)")
  disp = np.asarray(feats.displacement_m)
  f, pxx = periodogram(disp.T, p.chirp_rate, window="hann", nfft=8 * disp.shape[0])
  f, pxx = np.asarray(f), np.asarray(pxx)
  band = (f > 0.2) & (f < 4.0)
  for i, name in enumerate(REGIONS):
    ax[1].semilogy(f[band], pxx[i, band] * 1e12, label=name, lw=1)
  ax[1].set(xlabel="fluctuation frequency (Hz)", ylabel="PSD (um^2/Hz)",
            title="per-region slow-time spectra")
  ax[1].legend(fontsize=8)
  fig.suptitle(title)
  fig.tight_layout()
  save_png(fig, path, dpi=110)
