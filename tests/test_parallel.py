"""Data parallelism (palmjax.parallel): N devices and 2 processes agree with 1 device; bf16.

The pytest process already initialised JAX with one CPU device, so the multi-device checks
run this file as a script in subprocesses: with ``--xla_force_host_platform_device_count=8``
(8 CPU devices), and as two processes joined by ``jax.distributed`` on the loopback
interface (gloo CPU collectives). Each worker prints one JSON line that the tests check.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the whole file is slow (see BUILD.md, Tests)

HERE = os.path.abspath(__file__)
TIMEOUT = 150  # seconds per subprocess: a hard bound, far above the normal ~20 s

# SR step under test: the paper's 9-5-5 64/32 SRCNN, small patches.
SR_KW = dict(scale=3, patch_size=8, batch_size=16, learning_rate=1e-4, schedule="constant",
             warmup_steps=1, num_steps=10)
STEPS = 3


# ---------------------------------------------------------------------------------------
# Helpers shared by the workers and the tests (JAX imported lazily).

def _sr_batches(n_steps: int, batch: int = 16, patch: int = 8):
  """Deterministic (inputs, targets) batches: smooth images and a sharper target."""
  rng = np.random.default_rng(0)
  size = patch + 16
  out = []
  for _ in range(n_steps):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    f = rng.uniform(2, 6, (batch, 1, 1, 1)).astype(np.float32)
    ph = rng.uniform(0, 6, (batch, 1, 1, 1)).astype(np.float32)
    hr = 0.5 + 0.4 * np.sin(xx[None, ..., None] / f + ph) * np.cos(yy[None, ..., None] / f)
    lr = 0.5 + 0.9 * (hr - 0.5) + 0.01 * rng.standard_normal(hr.shape).astype(np.float32)
    out.append((lr.astype(np.float32), hr[:, 8:8 + patch, 8:8 + patch].astype(np.float32)))
  return out


def _sr_run(num_devices: int, *, compute_dtype: str = "float32", steps: int = STEPS,
            batches=None):
  """Losses and final parameters of ``steps`` data-parallel SR steps."""
  import jax
  from palmjax import parallel
  from palmjax.sr.train import SRTrainConfig, create_train_state, train_step

  cfg = SRTrainConfig(**SR_KW, compute_dtype=compute_dtype)
  state = create_train_state(jax.random.key(0), cfg)
  step = parallel.data_parallel(train_step, parallel.make_mesh(num_devices))
  state = parallel.replicate(state, step.mesh)
  losses = []
  for b in batches or _sr_batches(steps):
    state, m = step(state, b)
    losses.append(float(m["loss"]))
  return losses, parallel.gather(state.params), state


def _max_diff(a, b) -> float:
  import jax
  return float(max(np.max(np.abs(np.asarray(x) - np.asarray(y)))
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))


def _rel_loss_diff(a, b) -> float:
  return float(np.max(np.abs(np.subtract(a, b)) / np.abs(b)))


# ---------------------------------------------------------------------------------------
# Workers (run as subprocesses).

def _worker_multi_device() -> dict:
  import jax
  import jax.numpy as jnp
  from palmjax import parallel
  from palmjax.data.images import PairPool
  from palmjax.models import SRCNN, SRCNNConfig
  from palmjax.sr.train import SRTrainConfig, create_train_state, train_srcnn
  palm_train = importlib.import_module("palmjax.palm.train")

  t0 = time.perf_counter()
  lap = lambda name: out.__setitem__(f"seconds_{name}", round(time.perf_counter() - t0, 1))
  out = {"devices": jax.device_count()}
  # SR train step: 1 and 8 devices on the same global batches.
  l1, p1, _ = _sr_run(1)
  for n in (8,):
    ln, pn, st = _sr_run(n)
    out[f"sr_loss_rel_{n}"] = _rel_loss_diff(ln, l1)
    out[f"sr_param_diff_{n}"] = _max_diff(pn, p1)
    out[f"sr_devices_{n}"] = len(st.params["extract"]["kernel"].sharding.device_set)
  out["sr_losses_1"] = l1
  lap("sr")
  out["sr_param_change"] = _max_diff(p1, jax.tree.map(
      np.asarray, create_train_state(jax.random.key(0), SRTrainConfig(**SR_KW)).params))

  # Palm liveness classifier step: 1 vs 8 devices.
  pcfg = palm_train.PalmTrainConfig(image_size=32, scale=2, features=(4, 8), hidden=8,
                                    batch_size=16, n_train=16, n_val=16)
  rng = np.random.default_rng(1)
  pbatches = [{"image": rng.uniform(0, 1, (16, 32, 32, 1)).astype(np.float32),
               "label": rng.integers(0, 2, 16).astype(np.int32)} for _ in range(STEPS)]
  res = {}
  for n in (1, 8):
    state = palm_train.create_train_state(jax.random.key(0), pcfg)
    step = parallel.data_parallel(palm_train.train_step, parallel.make_mesh(n))
    losses = []
    for b in pbatches:
      state, m = step(state, b)
      losses.append(float(m["loss"]))
    res[n] = (losses, parallel.gather(state.params))
  out["palm_loss_rel_8"] = _rel_loss_diff(res[8][0], res[1][0])
  out["palm_param_diff_8"] = _max_diff(res[8][1], res[1][1])
  lap("palm")

  # Batch-sharded inference (10 rows: padded to a multiple of 8) vs plain apply.
  mcfg = SRCNNConfig()
  model = SRCNN(mcfg)
  x = rng.uniform(0, 1, (10, 20, 20, 1)).astype(np.float32)
  params = model.init(jax.random.key(2), jnp.zeros((1, 17, 17, 1)))["params"]
  fn = lambda p, b: model.apply({"params": p}, b)
  ref = np.asarray(jax.jit(fn)(params, x))
  for n in (1, 8):
    y = parallel.sharded_apply(fn, params, x, parallel.make_mesh(n), chunk=8)
    out[f"infer_shape_{n}"] = list(y.shape)
    out[f"infer_diff_{n}"] = float(np.max(np.abs(y - ref)))
  lap("inference")

  # The training loop itself (sr.train) on 8 devices vs 1 device, in-memory pools.
  yy, xx = np.mgrid[0:40, 0:40].astype(np.float32)
  hr = [(0.5 + 0.4 * np.sin(xx / (2 + i)) * np.cos(yy / (3 + i)))[..., None]
        for i in range(2)]
  pool = PairPool(inputs=[(0.5 + 0.8 * (h - 0.5)).astype(np.float32) for h in hr],
                  targets=[h.astype(np.float32) for h in hr], names=["a", "b"], scale=3)
  import tempfile
  finals = {}
  for n in (1, 8):
    cfg = SRTrainConfig(scale=3, f1=5, f2=3, f3=3, n1=8, n2=4, patch_size=8,
                                 batch_size=8, num_steps=2, eval_every=2, save_every=2,
                                 log_every=1, warmup_steps=1, num_devices=n, augment=False)
    with tempfile.TemporaryDirectory() as d:
      best, summ = train_srcnn(cfg, d, progress=False, log=lambda s: None,
                               train_pool=pool, val_pool=pool)
    finals[n] = (parallel.gather(best.params), summ["history"][-1]["loss"])
  out["loop_param_diff_8"] = _max_diff(finals[8][0], finals[1][0])
  out["loop_loss_rel_8"] = abs(finals[8][1] - finals[1][1]) / finals[1][1]
  lap("loop")
  return out


def _worker_distributed(port: int, process_id: int, out_path: str) -> dict:
  import jax
  from palmjax import parallel

  joined = parallel.initialize_distributed(
      parallel.DistributedConfig(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                                 process_id=process_id, cpu_collectives="gloo"),
      coordinator_bind_address=f"127.0.0.1:{port}", initialization_timeout=60)
  losses, params, _ = _sr_run(0)  # 0: all devices of both processes
  # The same global batch given as per-process halves (an input pipeline per host).
  mesh = parallel.make_mesh()
  x, _ = _sr_batches(1)[0]
  half = len(x) // 2
  local = parallel.shard_batch(x[process_id * half:(process_id + 1) * half], mesh,
                               local=True)
  local_ok = bool(np.array_equal(parallel.gather(local), x))
  if process_id == 0:
    np.savez(out_path, losses=np.asarray(losses),
             **{"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
                for path, v in jax.tree_util.tree_leaves_with_path(params)})
  out = {"joined": joined, "process_count": jax.process_count(),
         "global_devices": jax.device_count(), "local_devices": jax.local_device_count(),
         "losses": losses, "local_batch_ok": local_ok}
  jax.distributed.shutdown()
  return out


# ---------------------------------------------------------------------------------------
# Tests.

def _env(devices: int) -> dict[str, str]:
  env = dict(os.environ)
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                      f" --xla_force_host_platform_device_count={devices}").strip()
  env["JAX_PLATFORMS"] = "cpu"
  for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    env.pop(k, None)
  return env


def _last_json(stdout: str) -> dict:
  return json.loads([ln for ln in stdout.splitlines() if ln.startswith("{")][-1])


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class _Worker:
  """A worker subprocess started now; ``result()`` waits (bounded) for its JSON line."""

  def __init__(self, args: list[str], devices: int):
    self.proc = subprocess.Popen([sys.executable, HERE, *args], env=_env(devices),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    self._result = None

  def result(self) -> dict:
    if self._result is None:
      so, se = self.proc.communicate(timeout=TIMEOUT)
      assert self.proc.returncode == 0, se[-3000:]
      self._result = _last_json(so)
    return self._result

  def stop(self) -> None:
    if self.proc.poll() is None:
      self.proc.kill()
      self.proc.communicate()


@pytest.fixture(scope="module", autouse=True)
def workers(tmp_path_factory):
  """Starts every worker at once (they overlap each other and the in-process tests)."""
  port = _free_port()
  out_path = str(tmp_path_factory.mktemp("dist") / "p0.npz")
  ws = {"multi_device": _Worker(["multi_device"], 8),
        "dist": [_Worker(["distributed", str(port), str(i), out_path], 2) for i in range(2)],
        "dist_out": out_path}
  yield ws
  for w in [ws["multi_device"], *ws["dist"]]:
    w.stop()


@pytest.fixture
def multi_device(workers):
  return workers["multi_device"].result()


def test_bf16_mixed_precision_trains_close_to_f32():
  import jax
  import jax.numpy as jnp
  batches = _sr_batches(1) * 20  # a fixed batch, 20 steps
  l32, _, _ = _sr_run(1, batches=batches)
  l16, _, st16 = _sr_run(1, compute_dtype="bfloat16", batches=batches)
  # Parameters and optimizer moments stay float32; the network computes in bfloat16.
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(st16.params))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(st16.opt_state)
             if jnp.issubdtype(x.dtype, jnp.floating))
  assert st16.apply_fn.__self__.dtype == jnp.bfloat16
  assert l16[-1] < 0.5 * l16[0]  # it trains
  assert l32[-1] < 0.5 * l32[0]
  # Loss quality: after 20 steps within 20% (+ bf16 input rounding) of the f32 loss.
  assert abs(l16[-1] - l32[-1]) < 0.2 * l32[-1] + 1e-5, (l16[-1], l32[-1])


def test_bad_input_errors():
  from palmjax import parallel
  from palmjax.errors import InputError
  from palmjax.sr.train import SRTrainConfig
  mesh = parallel.make_mesh(1)
  with pytest.raises(InputError, match="compute_dtype"):
    SRTrainConfig(compute_dtype="int8")
  with pytest.raises(InputError, match="num_devices"):
    SRTrainConfig(num_devices=-1)
  with pytest.raises(InputError, match="num_devices"):
    parallel.make_mesh(10_000)
  with pytest.raises(InputError, match="scalar"):
    parallel.shard_batch(np.float32(1.0), mesh)
  with pytest.raises(InputError, match="x: expected"):
    parallel.sharded_apply(lambda p, b: b, {}, np.zeros((0, 3)), mesh)
  # Divisibility is checked before anything reaches XLA (mesh of 1 divides everything, so
  # check the message path with a fake 3-device requirement).
  with pytest.raises(InputError, match="not divisible by 3"):
    parallel._check_batch(np.zeros((4, 2)), 3, "batch")


def test_distributed_config_from_flags_and_env():
  import argparse
  from palmjax import parallel
  from palmjax.errors import InputError
  p = argparse.ArgumentParser()
  parallel.add_distributed_arguments(p)
  env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4",
         "JAX_PROCESS_ID": "3"}
  c = parallel.distributed_config(p.parse_args(["--process-id", "1"]), env)
  assert c == parallel.DistributedConfig("10.0.0.1:1234", 4, 1, None)
  assert parallel.distributed_config(p.parse_args([]), {}) == parallel.DistributedConfig()
  # Nothing configured: a single-process run, nothing initialised.
  assert parallel.initialize_distributed(environ={}) is False
  with pytest.raises(InputError, match="JAX_NUM_PROCESSES"):
    parallel.distributed_config(None, {"JAX_NUM_PROCESSES": "two"})
  with pytest.raises(InputError, match="all needed"):
    parallel.initialize_distributed(parallel.DistributedConfig(num_processes=2))
  with pytest.raises(InputError, match="process_id"):
    parallel.initialize_distributed(parallel.DistributedConfig("127.0.0.1:1", 2, 2))


def test_bench_sr_rows_and_roofline_figures():
  import argparse
  from palmjax.bench import sr
  assert sr.FLOP_PER_PIXEL == 114_368  # 2 * (81*64 + 25*64*32 + 25*32)
  # Large outputs: the border context vanishes and the forward tends to 114 kFLOP/px.
  assert abs(sr.conv_flops(4096, train=False) / 4096 ** 2 / 114_368 - 1) < 0.01
  assert sr.conv_flops(8, train=True) > 2.5 * sr.conv_flops(8, train=False)
  args = argparse.Namespace(size=8, batch=2, dtypes="float32", max_devices=-1,
                            no_torch=True, quick=True)
  rows = sr.run(args)
  assert [r["case"] for r in rows] == ["forward", "train step"]
  for r in rows:
    assert r["palmjax Mpix/s"] > 0 and r["peer Mpix/s"] is None and r["peer"] == "--no-torch"
    assert r["input"] == "2x8x8x1"
    # XLA's FLOP count of the compiled program matches the analytic conv count (+ ~1%).
    assert r["XLA kFLOP/px"] is None or abs(r["XLA kFLOP/px"] / r["kFLOP/px"] - 1) < 0.05


# (in-process tests above run while the workers compute; the worker checks follow)

def test_two_processes_on_loopback_agree_with_one_process(workers):
  results = [w.result() for w in workers["dist"]]
  out_path = workers["dist_out"]
  for r in results:
    assert r["joined"] and r["process_count"] == 2
    assert r["global_devices"] == 4 and r["local_devices"] == 2
    assert r["local_batch_ok"]
  # Reference: this (single-device) process on the same global batches.
  import jax
  ref_losses, ref_params, _ = _sr_run(1)
  np.testing.assert_allclose(results[0]["losses"], ref_losses, rtol=1e-5)
  np.testing.assert_allclose(results[1]["losses"], ref_losses, rtol=1e-5)
  saved = np.load(out_path)
  np.testing.assert_allclose(saved["losses"], ref_losses, rtol=1e-5)
  for path, v in jax.tree_util.tree_leaves_with_path(ref_params):
    key = "/".join(str(getattr(k, "key", k)) for k in path)
    np.testing.assert_allclose(saved[key], v, atol=1e-5, err_msg=key)


def test_sr_step_on_n_devices_equals_one_device(multi_device):
  out = multi_device
  assert out["devices"] == 8
  assert out["sr_param_change"] > 1e-4  # the steps really trained
  for n in (8,):
    assert out[f"sr_devices_{n}"] == n  # state replicated on n devices
    assert out[f"sr_loss_rel_{n}"] < 1e-5
    assert out[f"sr_param_diff_{n}"] < 1e-5


def test_palm_step_on_8_devices_equals_one_device(multi_device):
  assert multi_device["palm_loss_rel_8"] < 1e-5
  assert multi_device["palm_param_diff_8"] < 1e-5


def test_batch_sharded_inference_equals_single_device(multi_device):
  for n in (1, 8):
    assert multi_device[f"infer_shape_{n}"] == [10, 20, 20, 1]
    assert multi_device[f"infer_diff_{n}"] < 1e-5


def test_training_loop_on_8_devices_equals_one_device(multi_device):
  assert multi_device["loop_param_diff_8"] < 1e-5
  assert multi_device["loop_loss_rel_8"] < 1e-5


if __name__ == "__main__":
  mode = sys.argv[1]
  if mode == "multi_device":
    result = _worker_multi_device()
  elif mode == "distributed":
    result = _worker_distributed(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
  else:
    raise SystemExit(f"unknown worker mode {mode!r}")
  print(json.dumps(result), flush=True)
