"""Orbax checkpoints: training runs (latest + best, resumable) and exported parameters.

A training run directory holds::

    <workdir>/config.json        the run's configuration (written atomically)
    <workdir>/latest/<step>/     state/: full train state for resuming (params, opt state,
                                 step); history/: the run's evaluation history up to step
    <workdir>/best/<step>/       the same for the state with the best validation metric

Orbax commits each step directory atomically (it writes to a temporary name and renames),
so an interrupted save never leaves a half-written checkpoint that a resume would pick up.

An exported model (what ``checkpoints/`` ships) is a directory with ``config.json``,
``metrics.json`` and ``params/`` (an Orbax PyTree checkpoint of the parameters alone).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp

from palmjax.errors import InputError
from palmjax.io import atomic_path

logger = logging.getLogger(__name__)


def write_json(path: str | os.PathLike, obj: Any) -> None:
  """Writes ``obj`` as pretty JSON atomically."""
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      json.dump(obj, f, indent=2, sort_keys=True, default=str)
      f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise InputError(f"{path}: no such file") from None
  except json.JSONDecodeError as e:
    raise InputError(f"{path}: not valid JSON ({e})") from None


def bind_run_config(workdir: str | os.PathLike, cfg: Any) -> str:
  """Creates ``workdir`` and ties it to ``cfg`` (a dataclass with ``to_dict``/``from_dict``).

  A new run directory gets ``config.json``; an existing one must hold the same config (so a
  resumed run cannot silently continue with other settings). Returns the absolute path.
  """
  workdir = os.path.abspath(os.fspath(workdir))
  os.makedirs(workdir, exist_ok=True)
  cfg_path = os.path.join(workdir, "config.json")
  if os.path.exists(cfg_path):
    saved = type(cfg).from_dict(read_json(cfg_path))
    if saved != cfg:
      diff = {k: (v, getattr(cfg, k)) for k, v in saved.to_dict().items()
              if getattr(cfg, k) != v}
      raise InputError(f"{workdir} holds a run with a different config (saved, given): "
                       f"{diff}; use a new workdir")
  else:
    write_json(cfg_path, cfg.to_dict())
  return workdir


def _save_args(state: Any, history: list[dict] | None) -> Any:
  return ocp.args.Composite(state=ocp.args.StandardSave(state),
                            history=ocp.args.JsonSave({"history": list(history or [])}))


def _restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any
             ) -> tuple[Any, list[dict]]:
  """``(state, history)`` of one step; steps saved before histories were (a single
  unnamed item) restore with an empty history."""
  if os.path.isdir(os.path.join(os.fspath(manager.directory), str(step), "default")):
    with ocp.CheckpointManager(manager.directory,
                               options=ocp.CheckpointManagerOptions(read_only=True)) as legacy:
      return legacy.restore(step, args=ocp.args.StandardRestore(abstract_state)), []
  r = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), history=ocp.args.JsonRestore()))
  return r.state, list(r.history["history"])


class RunCheckpoints:
  """Latest-N and best-1 Orbax managers for one training run.

  Args:
    workdir: run directory.
    save_every: save the latest state every this many steps.
    keep: how many latest states to keep.
    best_metric: name of the metric (higher is better unless ``best_mode='min'``).
  """

  def __init__(self, workdir: str | os.PathLike, *, save_every: int = 500, keep: int = 2,
               best_metric: str = "val_psnr", best_mode: str = "max"):
    self.workdir = os.path.abspath(os.fspath(workdir))
    self.best_metric = best_metric
    self.latest = ocp.CheckpointManager(
        os.path.join(self.workdir, "latest"),
        options=ocp.CheckpointManagerOptions(save_interval_steps=save_every, max_to_keep=keep,
                                             create=True))
    self.best = ocp.CheckpointManager(
        os.path.join(self.workdir, "best"),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda m: m[best_metric], best_mode=best_mode,
            keep_checkpoints_without_metrics=False, create=True))

  def save_latest(self, step: int, state: Any, history: list[dict] | None = None, *,
                  force: bool = False) -> bool:
    """Saves ``state`` (and the run's ``history``) as the latest checkpoint of ``step``."""
    return self.latest.save(step, args=_save_args(state, history), force=force)

  def save_best(self, step: int, state: Any, metrics: dict[str, float],
                history: list[dict] | None = None) -> bool:
    return self.best.save(step, args=_save_args(state, history),
                          metrics={k: float(v) for k, v in metrics.items()}, force=True)

  def resume(self, state: Any, log: Callable[[str], None] | None = None
             ) -> tuple[Any, list[dict]]:
    """``(state, history)`` of the latest checkpoint (restored into ``state``'s structure),
    or ``(state, [])`` when the run has none yet."""
    step = self.latest.latest_step()
    if step is None:
      return state, []
    restored, history = _restore(self.latest, step, state)
    (log or logger.info)(f"resumed from step {int(restored.step)} in {self.workdir}")
    return restored, history

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def restore_latest(self, abstract_state: Any) -> Any:
    step = self.latest.latest_step()
    return None if step is None else _restore(self.latest, step, abstract_state)[0]

  def restore_best(self, abstract_state: Any) -> Any:
    step = self.best.best_step()
    return None if step is None else _restore(self.best, step, abstract_state)[0]

  def history(self, abstract_state: Any) -> list[dict]:
    """The run's history as saved with its latest checkpoint ([] when there is none)."""
    step = self.latest.latest_step()
    return [] if step is None else _restore(self.latest, step, abstract_state)[1]

  def best_value(self) -> float | None:
    step = self.best.best_step()
    if step is None:
      return None
    metrics = self.best.metrics(step)
    return None if metrics is None else float(metrics[self.best_metric])

  def wait(self) -> None:
    self.latest.wait_until_finished()
    self.best.wait_until_finished()

  def close(self) -> None:
    self.latest.close()
    self.best.close()

  def __enter__(self) -> "RunCheckpoints":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def export_model(directory: str | os.PathLike, params: Any, config: dict[str, Any],
                 metrics: dict[str, Any] | None = None, *, keep_old: bool = False
                 ) -> str | None:
  """Writes an exported model (params + config + metrics); replaces one that exists.

  The new model is assembled in a temporary sibling directory and renamed into place, so
  readers see either the old model or the new one, never a mixture. With ``keep_old`` the
  replaced model is kept beside it as ``<directory>.prev-<UTC time>``; its path is returned.
  """
  directory = os.path.abspath(os.fspath(directory))
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = directory + ".tmp-export"
  if os.path.exists(tmp):
    shutil.rmtree(tmp)
  os.makedirs(tmp)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(tmp, "params"), jax.device_get(params))
    ckptr.wait_until_finished()
  write_json(os.path.join(tmp, "config.json"), config)
  write_json(os.path.join(tmp, "metrics.json"), metrics or {})
  if keep_old:
    import datetime
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    old = f"{directory}.prev-{stamp}"
  else:
    old = directory + ".tmp-old"
    if os.path.exists(old):
      shutil.rmtree(old)
  if os.path.exists(directory):
    os.replace(directory, old)
  os.replace(tmp, directory)
  if keep_old:
    return old if os.path.exists(old) else None
  if os.path.exists(old):
    shutil.rmtree(old)
  return None


def load_exported(directory: str | os.PathLike,
                  abstract_params: Callable[[dict[str, Any]], Any]) -> tuple[Any, dict, dict]:
  """Loads ``(params, config, metrics)`` of an exported model.

  ``abstract_params(config)`` must return the parameters' abstract pytree (for example
  ``jax.eval_shape`` of the model's ``init``) so arrays come back with the right structure.
  """
  directory = os.path.abspath(os.fspath(directory))
  if not os.path.isdir(os.path.join(directory, "params")):
    raise InputError(f"{directory}: not an exported palmjax model (no params/ inside)")
  config = read_json(os.path.join(directory, "config.json"))
  metrics_path = os.path.join(directory, "metrics.json")
  metrics = read_json(metrics_path) if os.path.exists(metrics_path) else {}
  with ocp.StandardCheckpointer() as ckptr:
    params = ckptr.restore(os.path.join(directory, "params"), abstract_params(config))
  return params, config, metrics
