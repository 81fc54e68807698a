"""Data parallelism on ``jax.sharding``: one code path for 1 device, N devices, N hosts.

A :class:`jax.sharding.Mesh` over a single ``data`` axis holds the devices. The train state
is replicated on every device; a batch is split along its leading (batch) dimension. A
pure step ``(state, batch) -> (state, metrics)`` jitted with these in/out shardings computes
exactly the single-device step on the global batch: XLA partitions the computation and
inserts the all-reduce of the gradients itself (the loss is a mean over the global batch),
so no ``pmap``/``psum`` is written by hand and the same function runs on 1 and on N devices.

Multi-host: every process calls :func:`initialize_distributed` (coordinator address,
number of processes and process id from arguments or ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``) before any other JAX call; the mesh then spans
the devices of all processes. Each process may hold the whole global batch (the default:
our batches are drawn from ``fold_in(key, step)``, so every process can draw the same one
and keeps only its rows) or only its own rows (``shard_batch(..., local=True)``).

Example::

    mesh = parallel.make_mesh()                    # all devices
    step = parallel.data_parallel(train_step, mesh)
    state = parallel.replicate(state, mesh)
    for s in range(num_steps):
      state, metrics = step(state, batch_at(s))    # NumPy batch, global
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from palmjax.errors import InputError

DATA_AXIS = "data"

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def compute_dtype(name: str) -> Any:
  """The JAX dtype for a ``compute_dtype`` option ("float32", "bfloat16", "float16")."""
  try:
    return COMPUTE_DTYPES[name]
  except KeyError:
    raise InputError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, "
                     f"got {name!r}") from None


def check_scale_out(num_devices: int, compute_dtype_name: str) -> None:
  """Validates the two scale-out fields every train config carries."""
  compute_dtype(compute_dtype_name)
  if num_devices < 0:
    raise InputError(f"num_devices must be >= 0 (0: all devices), got {num_devices}")


# ---------------------------------------------------------------------------------------
# Mesh and shardings.

def make_mesh(num_devices: int = 0, *, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh over the ``data`` axis.

  Args:
    num_devices: how many devices to use; 0 (default) uses all of them (of all processes
      when running multi-host). In a multi-host run it must be 0 or the global count.
    devices: explicit devices (overrides ``num_devices``).

  Returns:
    ``Mesh(devices, ("data",))``.
  """
  if devices is None:
    avail = jax.devices()
    if num_devices < 0 or num_devices > len(avail):
      raise InputError(f"num_devices must be in [0, {len(avail)}] (0: all), got {num_devices}")
    devices = avail[:num_devices] if num_devices else avail
    if jax.process_count() > 1 and len(devices) != len(avail):
      raise InputError(f"num_devices={num_devices}: a multi-host run uses all "
                       f"{len(avail)} devices (pass 0)")
  devices = list(devices)
  if not devices:
    raise InputError("devices: empty device list")
  return Mesh(np.array(devices), (DATA_AXIS,))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array (train state, metrics)."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """The leading (batch) dimension is split over the ``data`` axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def _place(x: Any, sharding: NamedSharding) -> jax.Array:
  """``x`` (NumPy or jax.Array holding the *global* value) laid out with ``sharding``."""
  if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
    return x
  if jax.process_count() == 1:
    return jax.device_put(x, sharding)
  # Multi-host: each process materialises only the shards of its own devices.
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every array of ``tree`` (e.g. a train state) on every device of ``mesh``."""
  sharding = replicated_sharding(mesh)
  return jax.tree.map(lambda x: _place(x, sharding), tree)


def _check_batch(tree: Any, multiple: int, what: str) -> None:
  for x in jax.tree.leaves(tree):
    if np.ndim(x) == 0:
      raise InputError(f"{what}: batch leaves need a leading batch dimension, got a scalar")
    if np.shape(x)[0] % multiple:
      raise InputError(f"{what}: batch size {np.shape(x)[0]} is not divisible by {multiple} "
                       f"(devices in the mesh); choose a multiple or fewer devices")


def shard_batch(batch: Any, mesh: Mesh, *, local: bool = False) -> Any:
  """Splits every leaf of ``batch`` along its leading dimension over the mesh.

  Args:
    batch: pytree of arrays with a common leading batch dimension.
    mesh: the data mesh.
    local: ``batch`` holds only this process's rows (multi-host input pipelines); the
      global batch is the concatenation over processes in process order. Default: every
      process passes the same global batch.

  Raises:
    InputError: the (global) batch size is not a multiple of the device count.
  """
  sharding = batch_sharding(mesh)
  if local and jax.process_count() > 1:
    n_local = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    _check_batch(batch, n_local, "batch (process-local)")
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)
  _check_batch(batch, mesh.size, "batch")
  return jax.tree.map(lambda x: _place(x, sharding), batch)


def gather(x: Any) -> Any:
  """The global value of (possibly multi-host sharded) arrays as NumPy arrays."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, x)
  from jax.experimental import multihost_utils
  return jax.tree.map(lambda a: np.asarray(multihost_utils.process_allgather(a, tiled=True)),
                      x)


# ---------------------------------------------------------------------------------------
# Steps.

def data_parallel(step_fn: Callable[[Any, Any], tuple[Any, Any]], mesh: Mesh | None = None,
                  *, donate: bool = True) -> Callable[[Any, Any], tuple[Any, Any]]:
  """Jits a pure ``(state, batch) -> (state, metrics)`` step for data parallelism.

  The returned function takes the state (replicated on ``mesh`` by :func:`replicate`; a
  state elsewhere is copied there first) and a batch (NumPy or jax arrays holding the
  global batch, or arrays already sharded by :func:`shard_batch`), and returns the new
  replicated state and replicated metrics. With a 1-device mesh it is the ordinary jitted
  step; with N devices each computes the gradients of its rows and XLA all-reduces them.

  Args:
    step_fn: pure step; its loss must be a mean over the batch (then the N-device step
      equals the 1-device step on the same global batch up to float summation order).
    mesh: the data mesh (default: :func:`make_mesh` over all devices).
    donate: donate the incoming state's buffers (the caller must not reuse that state).
  """
  mesh = mesh if mesh is not None else make_mesh()
  rep = replicated_sharding(mesh)
  jitted = jax.jit(step_fn, in_shardings=(rep, batch_sharding(mesh)),
                   out_shardings=(rep, rep), donate_argnums=(0,) if donate else ())

  @functools.wraps(step_fn)
  def step(state: Any, batch: Any) -> tuple[Any, Any]:
    return jitted(replicate(state, mesh), shard_batch(batch, mesh))

  step.mesh = mesh  # type: ignore[attr-defined]
  step.jitted = jitted  # type: ignore[attr-defined]
  return step


def sharded_apply(fn: Callable[[Any, jax.Array], Any], params: Any, x: jax.typing.ArrayLike,
                  mesh: Mesh | None = None, *, chunk: int | None = None) -> np.ndarray:
  """Batch-sharded inference: ``fn(params, x)`` with ``x``'s rows split over the devices.

  ``x`` is padded (by repeating its last row) to a multiple of the device count and the
  padding is dropped from the result, so any batch size works; ``chunk`` (a multiple of
  the device count is best) bounds the rows per call. Results come back as NumPy (gathered
  from all processes in a multi-host run, where every process passes the same ``x``).

  Args:
    fn: pure ``(params, batch) -> outputs`` with outputs batch-first (a pytree is fine).
    params: replicated on the mesh.
    x: ``[N, ...]`` inputs.
    mesh: the data mesh (default: all devices).
    chunk: rows per call (default: all).
  """
  mesh = mesh if mesh is not None else make_mesh()
  x = np.asarray(x)
  if x.ndim == 0 or len(x) == 0:
    raise InputError(f"x: expected a non-empty batch [N, ...], got shape {x.shape}")
  jitted = _sharded_jit(fn, mesh)
  params = replicate(params, mesh)
  n = len(x)
  chunk = n if chunk is None else max(int(chunk), 1)
  outs = []
  for s in range(0, n, chunk):
    xs = x[s:s + chunk]
    m = len(xs)
    pad = -m % mesh.size
    if pad:
      xs = np.concatenate([xs, np.repeat(xs[-1:], pad, axis=0)])
    y = gather(jitted(params, shard_batch(xs, mesh)))
    outs.append(jax.tree.map(lambda a: a[:m], y))
  return jax.tree.map(lambda *a: np.concatenate(a), *outs)


@functools.lru_cache(maxsize=32)
def _sharded_jit(fn: Callable, mesh: Mesh) -> Callable:
  return jax.jit(fn, in_shardings=(replicated_sharding(mesh), batch_sharding(mesh)),
                 out_shardings=batch_sharding(mesh))


# ---------------------------------------------------------------------------------------
# Multi-host.

@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """Where the coordinator is and who this process is (``None``: not set)."""

  coordinator_address: str | None = None  # "host:port" of process 0
  num_processes: int | None = None
  process_id: int | None = None
  cpu_collectives: str | None = None  # "gloo" (JAX's default) or "mpi", CPU backend only


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds ``--coordinator-address``, ``--num-processes``, ``--process-id`` to ``parser``."""
  g = parser.add_argument_group("multi-host (jax.distributed)")
  g.add_argument("--coordinator-address", metavar="HOST:PORT",
                 help=f"address of process 0's coordinator (env {ENV_COORDINATOR})")
  g.add_argument("--num-processes", type=int, metavar="N",
                 help=f"number of processes (env {ENV_NUM_PROCESSES})")
  g.add_argument("--process-id", type=int, metavar="I",
                 help=f"this process's index in [0, N) (env {ENV_PROCESS_ID})")
  g.add_argument("--cpu-collectives", choices=("gloo", "mpi"),
                 help="cross-process collectives of the CPU backend (default gloo)")


def distributed_config(args: argparse.Namespace | None = None,
                       environ: dict[str, str] | None = None) -> DistributedConfig:
  """Flags (from :func:`add_distributed_arguments`) first, then environment variables."""
  env = os.environ if environ is None else environ

  def get(attr: str, var: str, cast: Callable = str):
    v = getattr(args, attr, None) if args is not None else None
    if v is None and env.get(var, "") != "":
      try:
        v = cast(env[var])
      except ValueError:
        raise InputError(f"{var}={env[var]!r} is not a valid {cast.__name__}") from None
    return v

  return DistributedConfig(
      coordinator_address=get("coordinator_address", ENV_COORDINATOR),
      num_processes=get("num_processes", ENV_NUM_PROCESSES, int),
      process_id=get("process_id", ENV_PROCESS_ID, int),
      cpu_collectives=getattr(args, "cpu_collectives", None) if args is not None else None)


def initialize_distributed(config: DistributedConfig | argparse.Namespace | None = None, *,
                           environ: dict[str, str] | None = None, **kwargs: Any) -> bool:
  """Starts multi-host JAX (``jax.distributed.initialize``) if the run is multi-process.

  Call it in every process before any other JAX computation. Settings come from
  ``config`` (a :class:`DistributedConfig` or parsed flags), then the environment
  (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``; JAX itself also
  honours ``JAX_COORDINATOR_BIND_ADDRESS`` and ``JAX_LOCAL_DEVICE_IDS``). With no
  coordinator and at most one process it does nothing (single-host run) and returns False.

  Args:
    config: explicit settings (flags win over the environment).
    environ: environment mapping (default ``os.environ``).
    **kwargs: passed on to ``jax.distributed.initialize`` (e.g. ``coordinator_bind_address``,
      ``initialization_timeout``, ``local_device_ids``).

  Returns:
    True when this process joined a multi-process run.
  """
  if config is None or isinstance(config, argparse.Namespace):
    config = distributed_config(config, environ)
  if config.coordinator_address is None and (config.num_processes or 1) <= 1:
    return False
  if config.coordinator_address is None or config.num_processes is None or \
      config.process_id is None:
    raise InputError("multi-host run: coordinator address, number of processes and "
                     f"process id are all needed, got {config}")
  if config.num_processes < 1 or not 0 <= config.process_id < config.num_processes:
    raise InputError(f"process_id must be in [0, num_processes), got {config.process_id} "
                     f"of {config.num_processes}")
  if config.cpu_collectives:
    jax.config.update("jax_cpu_collectives_implementation", config.cpu_collectives)
  jax.distributed.initialize(coordinator_address=config.coordinator_address,
                             num_processes=config.num_processes,
                             process_id=config.process_id, **kwargs)
  return True
