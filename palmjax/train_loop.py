"""One training loop for every palmjax model: block-wise draws and read-back, exact resume.

A run is three pure pieces and some intervals:

* ``train_step(state, batch) -> (state, metrics)``: a pure step (jitted here, data-parallel
  through :func:`palmjax.parallel.data_parallel`, the incoming state donated); ``metrics``
  is a dict of scalars and holds at least ``"loss"``.
* ``draw_block(key, start_step, n_steps) -> batches``: the batches of steps
  ``start_step .. start_step + n_steps - 1`` stacked along a new leading axis. The batch of
  step ``s`` must depend on ``(key, s)`` alone -- :func:`block_draw` builds such a function
  from a per-step draw by vmapping it over ``fold_in(key, s)`` -- so drawing in blocks equals
  drawing step by step and a resumed run sees exactly the batches of an uninterrupted one.
* ``evaluate(state) -> dict`` (optional): validation metrics, run every ``eval_every`` steps.

What the loop guarantees:

* **Few host round trips.** Batches come in blocks of ``block_size`` steps (one call of the
  jitted draw per block), and the step metrics stay on the device until the next *sync
  point* -- every ``gcd(log_every, eval_every, save_every)`` steps and at the last step --
  where they are read back in one transfer. Between sync points the host only dispatches.
* **NaN check.** At each sync point the losses read back are checked; the first non-finite
  one raises :class:`FloatingPointError` naming its step, before anything at or after that
  step is evaluated or saved (sync points come before every evaluation and save).
* **History.** At every evaluation an entry ``{"step", <train metrics averaged over the
  last log_every steps>, <evaluate's metrics>}`` is appended to the run's history. The
  history is saved *in* every checkpoint (``latest`` and ``best``) and continued on resume,
  so the history of a run interrupted any number of times covers all of it.
* **Exact resume.** The train state (parameters, optimizer state, step) is checkpointed
  with orbax (:class:`palmjax.checkpointing.RunCheckpoints`); together with the keyed draws a
  resumed run ends with bit-identical parameters.
* **Early stop.** ``stop_when(window)`` is asked at every multiple of ``log_every`` (``window``:
  the train metrics averaged over the last ``log_every`` steps of this session); a truthy
  answer (a short reason, e.g. ``"loss_threshold"``) ends the run after evaluating and saving
  that step.

Learning-rate schedules: :func:`lr_schedule` (linear warm-up from 0, then cosine decay or
constant) is the one schedule every model uses; its warm-up is ``min(warmup_steps,
num_steps - 1)`` steps (never the whole run; 0 means none: the first step uses the peak).

No printing: log lines go to ``log`` (default: this module's :mod:`logging` logger; the CLI
passes a printer), the optional progress bar is tqdm's.

In-memory data sets (feature vectors, face crops, simulated captures) use
:class:`ArrayDataset`; a complete run on a toy problem (logistic regression; no checkpoints,
so nothing is written)::

    >>> import jax, jax.numpy as jnp, numpy as np, optax
    >>> from flax.training import train_state
    >>> from palmjax import train_loop
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(256, 2)).astype(np.float32)
    >>> y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    >>> data = train_loop.ArrayDataset({"x": x, "y": y}, batch_size=32)
    >>> def loss_fn(params, batch):
    ...   logits = batch["x"] @ params["w"] + params["b"]
    ...   return optax.sigmoid_binary_cross_entropy(logits, batch["y"]).mean()
    >>> def step(state, batch):
    ...   loss, grads = jax.value_and_grad(loss_fn)(state.params, batch)
    ...   return state.apply_gradients(grads=grads), {"loss": loss}
    >>> tx = optax.adam(train_loop.lr_schedule(0.1, num_steps=200, warmup_steps=10))
    >>> state = train_state.TrainState.create(
    ...     apply_fn=None, params={"w": jnp.zeros(2), "b": jnp.zeros(())}, tx=tx)
    >>> res = train_loop.run(state, step, data.draw_block, key=jax.random.key(0),
    ...                      num_steps=200, log_every=50, eval_every=100,
    ...                      evaluate=lambda s: {"acc": float(np.mean(
    ...                          ((x @ np.asarray(s.params["w"])) > 0) == (y > 0)))})
    >>> res.final_step, res.stopped_by, [h["step"] for h in res.history]
    (200, 'num_steps', [100, 200])
    >>> res.history[-1]["acc"] > 0.97 and res.history[-1]["loss"] < 0.2
    True
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from palmjax import checkpointing, parallel
from palmjax.errors import InputError

logger = logging.getLogger(__name__)

Batch = Any
DrawBlock = Callable[[jax.Array, int, int], Batch]


# ---------------------------------------------------------------------------------------
# Schedules.

def lr_schedule(peak: float, *, num_steps: int, warmup_steps: int, decay: str = "cosine",
                end_fraction: float = 0.01) -> optax.Schedule:
  """The learning rate of step ``s``: linear warm-up from 0, then cosine decay or constant.

  Args:
    peak: the learning rate at the end of the warm-up.
    num_steps: the run's length; the cosine reaches ``end_fraction * peak`` there.
    warmup_steps: warm-up length, clamped to ``num_steps - 1`` (a run always has at least
      one step at the peak); 0 disables the warm-up.
    decay: ``"cosine"`` or ``"constant"`` (the peak after the warm-up).
    end_fraction: final learning rate of the cosine as a fraction of ``peak``.
  """
  if num_steps < 1:
    raise InputError(f"num_steps must be >= 1, got {num_steps}")
  if decay not in ("cosine", "constant"):
    raise InputError(f"decay must be cosine or constant, got {decay!r}")
  warmup = max(0, min(int(warmup_steps), num_steps - 1))
  if decay == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(num_steps, warmup + 1),
                                              end_value=peak * end_fraction)
  if warmup == 0:
    return optax.constant_schedule(peak)
  return optax.linear_schedule(0.0, peak, warmup)


# ---------------------------------------------------------------------------------------
# Keyed block draws.

def block_draw(draw_one: Callable[[jax.Array], Batch]) -> DrawBlock:
  """A jitted block draw from a per-step draw ``draw_one(step_key) -> pytree``.

  Step ``s`` draws from ``jax.random.fold_in(key, s)`` alone (vmap does not change the
  random bits), so ``block(key, s, n)[i] == draw_one(fold_in(key, s + i))`` exactly.
  ``draw_one`` must be jittable with a static output shape. Returns device arrays.
  """
  @functools.partial(jax.jit, static_argnums=2)
  def block(key: jax.Array, start: jax.Array, n: int) -> Batch:
    steps = jnp.asarray(start, jnp.uint32) + jnp.arange(n, dtype=jnp.uint32)
    return jax.vmap(lambda s: draw_one(jax.random.fold_in(key, s)))(steps)

  def draw(key: jax.Array, start: int, n: int) -> Batch:
    return block(key, start, int(n))

  return draw


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
  """Minibatches of in-memory arrays with keyed, block-wise index draws.

  Every leaf of ``arrays`` has the same first dimension (the samples). The batch of step
  ``s`` holds rows ``idx = randint(k_idx, (batch_size,), 0, n)`` (with replacement) of every
  leaf, where ``k_idx, k_aug = split(fold_in(key, s))``; ``augment(k_aug, batch)`` (optional,
  jittable, batch -> batch of the same shapes) is then applied. Indices for a block of steps
  come from one jitted call; rows are gathered with NumPy for NumPy leaves (they stay on the
  host, e.g. a large image set) and on the device for ``jax.Array`` leaves.

  Example: ``ArrayDataset({"x": x, "y": y}, batch_size=64).draw_block(key, 0, 10)`` is a dict
  with ``x`` of shape ``[10, 64, *x.shape[1:]]`` and ``y`` of ``[10, 64, *y.shape[1:]]``; see
  the module docstring for a complete training run.
  """

  arrays: Mapping[str, Any]
  batch_size: int
  augment: Callable[[jax.Array, Batch], Batch] | None = None

  def __post_init__(self):
    if not self.arrays:
      raise InputError("ArrayDataset: no arrays given")
    sizes = {k: np.shape(v)[0] if np.ndim(v) else None for k, v in self.arrays.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
      raise InputError(f"ArrayDataset: arrays need one common first dimension, got {sizes}")
    if next(iter(sizes.values())) < 1:
      raise InputError("ArrayDataset: the arrays hold no samples")
    if self.batch_size < 1:
      raise InputError(f"ArrayDataset: batch_size must be >= 1, got {self.batch_size}")

  def __len__(self) -> int:
    return int(np.shape(next(iter(self.arrays.values())))[0])

  @functools.cached_property
  def _draw_keys(self) -> DrawBlock:
    n, b = len(self), self.batch_size

    def one(key):
      k_idx, k_aug = jax.random.split(key)
      return jax.random.randint(k_idx, (b,), 0, n), k_aug
    return block_draw(one)

  @functools.cached_property
  def _augment_block(self) -> Callable:
    return jax.jit(jax.vmap(self.augment))

  def indices(self, key: jax.Array, start: int, n_steps: int) -> np.ndarray:
    """The sample indices ``[n_steps, batch_size]`` of steps ``start .. start+n_steps-1``."""
    return np.asarray(self._draw_keys(key, start, n_steps)[0])

  def draw_block(self, key: jax.Array, start: int, n_steps: int) -> dict[str, Any]:
    """The batches of ``n_steps`` steps from ``start``, stacked: ``[n_steps, batch, ...]``."""
    idx, k_aug = self._draw_keys(key, start, n_steps)
    idx_host = np.asarray(idx)
    batch = {k: v[idx_host] if isinstance(v, np.ndarray) else jnp.take(v, idx, axis=0)
             for k, v in self.arrays.items()}
    if self.augment is not None:
      batch = self._augment_block(k_aug, batch)
    return batch

  def block_size(self, max_bytes: int = 64 << 20, max_steps: int = 256) -> int:
    """Steps per block such that a block of batches stays under ``max_bytes``."""
    per_step = sum(np.dtype(getattr(v, "dtype", np.float32)).itemsize
                   * math.prod(np.shape(v)[1:]) for v in self.arrays.values()) * self.batch_size
    return int(max(1, min(max_steps, max_bytes // max(per_step, 1))))


# ---------------------------------------------------------------------------------------
# The loop.

@dataclasses.dataclass
class LoopResult:
  """What :func:`run` returns.

  ``state``: the final train state; ``best``: the state of the best evaluation (restored from
  the ``best`` checkpoint; ``state`` when there are no checkpoints); ``history``: one entry
  per evaluation over the whole run, earlier sessions included; ``stopped_by``:
  ``"num_steps"``, ``"stop_after"`` or ``stop_when``'s reason; ``start_step``: where this
  session began (> 0 after a resume).
  """

  state: Any
  best: Any
  history: list[dict[str, float]]
  stopped_by: str
  start_step: int
  final_step: int
  best_value: float | None = None


def _mean_window(columns: dict[str, list[float]], n: int) -> dict[str, float]:
  return {k: float(np.mean(v[-n:])) for k, v in columns.items() if v}


def _plain(v: Any) -> Any:
  """A metric as a JSON-able Python value (the history is stored as JSON)."""
  return float(v) if np.ndim(v) == 0 and np.issubdtype(np.asarray(v).dtype, np.number) else v


def run(state: Any, train_step: Callable[[Any, Batch], tuple[Any, dict[str, jax.Array]]],
        draw_block: DrawBlock, *, key: jax.Array, num_steps: int,
        ckpts: checkpointing.RunCheckpoints | None = None,
        evaluate: Callable[[Any], dict[str, float]] | None = None,
        best_metric: str | None = None,
        eval_every: int = 500, save_every: int = 500, log_every: int = 50,
        block_size: int = 64, stop_when: Callable[[dict[str, float]], Any] | None = None,
        stop_after: int | None = None, mesh: Any = None,
        describe: Callable[[dict[str, float]], str] | None = None,
        progress: bool = False, desc: str = "training",
        log: Callable[[str], None] | None = None,
        on_sync: Callable[[int, dict[str, float]], None] | None = None) -> LoopResult:
  """Trains ``state`` (or resumes it from ``ckpts``) up to ``num_steps``.

  Args:
    state: the initial train state (a flax ``TrainState`` or any pytree with an integer
      ``step`` attribute); replaced by the latest checkpoint of ``ckpts`` when there is one.
    train_step: pure ``(state, batch) -> (state, metrics)``; jitted here (data-parallel over
      ``mesh``). ``metrics`` holds scalars, at least ``"loss"``.
    draw_block: ``(key, start_step, n_steps) -> batches`` stacked on a leading axis, a pure
      function of ``(key, step)`` per step (see :func:`block_draw`, :class:`ArrayDataset`).
    key: the data key handed to ``draw_block``.
    num_steps: total steps of the run (resumed sessions included).
    ckpts: run checkpoints (latest every ``save_every`` steps and at the end; best by
      ``best_metric`` at every evaluation). None: nothing is saved, no resume.
    evaluate: ``state -> {metric: value}`` run every ``eval_every`` steps and at the end.
    best_metric: the key of ``evaluate``'s result that ranks the ``best`` checkpoints (saved
      under ``ckpts.best_metric``; default: that same name).
    eval_every, save_every, log_every: intervals in steps; ``log_every`` is also the window
      of the averaged train metrics (history, progress bar, ``stop_when``).
    block_size: steps drawn per ``draw_block`` call (memory: a block holds that many batches).
    stop_when: asked at every multiple of ``log_every`` with the averaged train metrics;
      a truthy result stops the run and becomes ``stopped_by``.
    stop_after: stop (as if interrupted, resumable) after this step.
    mesh: data-parallel mesh (default: all devices).
    describe: formats an evaluation entry for the log line (default: ``k value`` pairs).
    progress: show a tqdm progress bar.
    desc: the progress bar's label.
    log: sink for log lines (default: this module's logger at INFO).
    on_sync: called at every sync point (every ``gcd(eval_every, save_every, log_every)``
      steps and at the end) with the steps done and the averaged train metrics, e.g. for a
      caller's own progress lines.

  Raises:
    FloatingPointError: a non-finite loss, naming the first step that produced one.
  """
  log = log or logger.info
  for name, v in (("num_steps", num_steps), ("eval_every", eval_every),
                  ("save_every", save_every), ("log_every", log_every),
                  ("block_size", block_size)):
    if int(v) < 1:
      raise InputError(f"{name} must be >= 1, got {v}")
  history: list[dict[str, float]] = []
  if ckpts is not None:
    state, history = ckpts.resume(state, log)
  step_fn = parallel.data_parallel(train_step, mesh if mesh is not None else parallel.make_mesh())
  state = parallel.replicate(state, step_fn.mesh)
  best_metric = best_metric or (ckpts.best_metric if ckpts is not None else None)
  start = int(state.step)
  history = [h for h in history if h["step"] <= start]
  sync_every = math.gcd(math.gcd(eval_every, save_every), log_every)
  columns: dict[str, list[float]] = {}
  pending: list[dict[str, jax.Array]] = []
  stopped_by = "num_steps"
  bar = None
  if progress:
    from tqdm.auto import tqdm
    bar = tqdm(total=num_steps, initial=start, desc=desc, unit="step")
  t0 = time.perf_counter()
  try:
    block, block_start = None, start
    for step in range(start, num_steps):
      if block is None or step - block_start == block_size:
        block_start = step
        block = draw_block(key, step, min(block_size, num_steps - step))
      batch = jax.tree.map(lambda a, i=step - block_start: a[i], block)
      state, metrics = step_fn(state, batch)
      pending.append(metrics)
      done = step + 1
      last = done == num_steps or done == stop_after
      if done % sync_every and not last:
        if bar is not None:
          bar.update(1)
        continue
      # Sync point: read the block's metrics back in one transfer, check the losses.
      stacked = jax.device_get(jax.tree.map(lambda *m: jnp.stack(m), *pending))
      losses = np.asarray(stacked["loss"], np.float64)
      bad = np.flatnonzero(~np.isfinite(losses))
      if bad.size:
        raise FloatingPointError(f"training loss became {losses[bad[0]]} at step "
                                 f"{done - len(losses) + bad[0] + 1}: the run diverged "
                                 "(lower the learning rate, or clip gradients)")
      for k, v in stacked.items():
        columns.setdefault(k, []).extend(np.asarray(v, np.float64).tolist())
        del columns[k][:-log_every]
      pending = []
      if bar is not None:
        bar.update(1)
      window = _mean_window(columns, log_every)
      if on_sync is not None:
        on_sync(done, window)
      if done % log_every == 0 and bar is not None:
        bar.set_postfix(loss=f"{window['loss']:.3e}")
      reason = stop_when(window) if stop_when is not None and done % log_every == 0 else None
      last = last or bool(reason)
      if evaluate is not None and (done % eval_every == 0 or last):
        entry = {"step": done, **window,
                 **{k: _plain(v) for k, v in evaluate(state).items()}}
        history.append(entry)
        if ckpts is not None and best_metric is not None:
          ckpts.save_best(done, state, {ckpts.best_metric: entry[best_metric]}, history)
        rate = (done - start) / max(time.perf_counter() - t0, 1e-9)
        text = describe(entry) if describe else "  ".join(
            f"{k} {v:.4g}" for k, v in entry.items() if k not in ("step", "loss"))
        log(f"step {done}: loss {window['loss']:.3e}  {text}  {rate:.1f} steps/s")
      if ckpts is not None:
        ckpts.save_latest(done, state, history, force=last)
      if reason:
        stopped_by = str(reason)
        log(f"step {done}: stopping ({stopped_by})")
        break
      if done == stop_after:
        stopped_by = "stop_after"
        break
  finally:
    if bar is not None:
      bar.close()
    if ckpts is not None:
      ckpts.wait()
  best, best_value = state, None
  if ckpts is not None:
    restored = ckpts.restore_best(state)
    if restored is not None:
      best, best_value = restored, ckpts.best_value()
  return LoopResult(state=state, best=best, history=history, stopped_by=stopped_by,
                    start_step=start, final_step=int(state.step), best_value=best_value)
