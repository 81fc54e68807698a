"""Orbax checkpoints: training runs (latest + best, resumable) and exported parameters.

A training run directory holds::

    <workdir>/config.json        the run's configuration (written atomically)
    <workdir>/latest/<step>/     state/: full train state for resuming (params, opt state,
                                 step); history/: the run's evaluation history up to step
    <workdir>/best/<step>/       the same for the state with the best validation metric

Orbax commits each step directory atomically (it writes to a temporary name and renames),
so an interrupted save never leaves a half-written checkpoint that a resume would pick up.
A checkpoint damaged afterwards (a truncated or deleted data file, garbage in its metadata)
is skipped: restoring walks back from the newest step to the newest one that restores,
logging one line per skipped step with the reason; a resume also moves the damaged steps
aside to ``<workdir>/corrupt/`` so the run can save those steps again.

An exported model (what ``checkpoints/`` ships) is a directory with ``config.json``,
``metrics.json`` and ``params/`` (an Orbax PyTree checkpoint of the parameters alone).
"""

from __future__ import annotations

import json
import logging
import contextlib
import os
import re
import shutil
import sys
from typing import Any, Callable, Iterator

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


def error_line(e: BaseException, limit: int = 400) -> str:
  """``e`` as one short line: its type and the first line of its message, without
  tensorstore's spec dump (``[tensorstore_spec=...]``)."""
  text = str(e).strip()
  text = text.splitlines()[0] if text else ""
  text = text.split(" [tensorstore_spec")[0].strip()
  files = re.findall(r'local file "([^"]+)"', text)
  if files:  # tensorstore: "CODE: Error opening ...: Error reading ... "<file>": <cause>"
    code = re.match(r"([A-Z_]+): ", text)
    cause = text.rsplit(f'"{files[-1]}"', 1)[1].lstrip(": ").strip()
    text = (f"{code.group(1) + ': ' if code else ''}{files[-1]}"
            f"{': ' + cause if cause else ''}")
  if len(text) > limit:
    text = text[:limit - 3] + "..."
  return f"{type(e).__name__}: {text}" if text else type(e).__name__


class _RestoreEchoFilter(logging.Filter):
  """Drops asyncio's "Task exception was never retrieved" records of Orbax's array reads:
  when one read of a damaged checkpoint fails, every other pending read fails too and
  asyncio logs each (with tensorstore's full spec) when the task is collected, later."""

  def filter(self, record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    return not ("exception was never retrieved" in msg and
                ("orbax" in msg or "tensorstore" in msg))


def _silence_restore_echoes() -> None:
  """Installs (once) the filters for the echoes of a failing restore: the asyncio records
  above, and the "Event loop is closed" RuntimeError that tensorstore callbacks raise into
  Orbax's closed event loop (reported as unraisable exceptions or through
  ``sys.excepthook``). Installed before each restore attempt; the restore's own exception
  is still the one reported. These are process-wide hooks, narrowed to those two echoes."""
  asyncio_log = logging.getLogger("asyncio")
  if not any(isinstance(f, _RestoreEchoFilter) for f in asyncio_log.filters):
    asyncio_log.addFilter(_RestoreEchoFilter())
  hook = sys.unraisablehook
  if getattr(hook, "_palmjax_restore", False):
    return

  def unraisable(u) -> None:
    if not (isinstance(u.exc_value, RuntimeError) and
            str(u.exc_value) == "Event loop is closed"):
      hook(u)

  unraisable._palmjax_restore = True  # type: ignore[attr-defined]
  sys.unraisablehook = unraisable
  # The same error raised in a tensorstore callback is printed through sys.excepthook.
  excepthook = sys.excepthook

  def excepthook_(tp, value, tb) -> None:
    if not (isinstance(value, RuntimeError) and str(value) == "Event loop is closed"):
      excepthook(tp, value, tb)

  sys.excepthook = excepthook_


@contextlib.contextmanager
def _restore_attempt() -> Iterator[None]:
  """Runs an Orbax restore that may fail on damaged files: absl's log line about
  unreadable metadata is held back (the caller reports the exception in one line) and the
  failure's later echoes are filtered (:func:`_silence_restore_echoes`)."""
  absl_log = logging.getLogger("absl")
  level = absl_log.level
  absl_log.setLevel(logging.CRITICAL)
  # Installed before the attempt: the echoes of a failing read can be printed while the
  # restore is still unwinding, before its exception reaches us.
  _silence_restore_echoes()
  try:
    yield
  finally:
    absl_log.setLevel(level)


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

  def _candidates(self, with_best: bool) -> list[tuple[str, int]]:
    """``(kind, step)`` newest first: every latest step and (when ``with_best``) the best
    one, after the latest one of its step (both hold the same state)."""
    steps = [("latest", int(s)) for s in self.latest.all_steps()]
    best = self.best.best_step() if with_best else None
    if best is not None:
      steps.append(("best", int(best)))
    return sorted(steps, key=lambda ks: (-ks[1], ks[0] != "latest"))

  def _first_restorable(self, abstract_state: Any, candidates: list[tuple[str, int]],
                        log: Callable[[str], None] | None
                        ) -> tuple[tuple[str, int, Any, list[dict]] | None, list[tuple]]:
    """Restores the first of ``candidates`` that restores cleanly.

    Returns ``(found, skipped)``: ``found`` is ``(kind, step, state, history)`` (None when
    there are no candidates), ``skipped`` the ``(kind, step, reason)`` of the newer ones
    that failed, each logged in one line when ``log`` is given. When all fail, InputError
    names the run and every reason.
    """
    failures = []
    for kind, step in candidates:
      manager = self.latest if kind == "latest" else self.best
      try:
        with _restore_attempt():
          state, history = _restore(manager, step, abstract_state)
      except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types
        reason = error_line(e)
        failures.append((kind, step, reason))
        if log is not None:
          log(f"skipped {kind} checkpoint step {step} in {self.workdir}: it does not "
              f"restore ({reason})")
        continue
      return (kind, step, state, history), failures
    if not failures:
      return None, failures
    tried = "; ".join(f"{k} step {s}: {r}" for k, s, r in failures)
    raise InputError(f"{self.workdir}: no checkpoint restores ({tried}); move the run "
                     f"directory aside or use a new workdir")

  def _quarantine(self, kind: str, step: int) -> str | None:
    """Moves a damaged step directory to ``<workdir>/corrupt/<kind>-<step>[-n]`` (on the
    first process); returns where."""
    manager = self.latest if kind == "latest" else self.best
    src = os.path.join(os.fspath(manager.directory), str(step))
    if jax.process_index() == 0 and os.path.isdir(src):
      dst = os.path.join(self.workdir, "corrupt", f"{kind}-{step}")
      n = 0
      while os.path.exists(dst if n == 0 else f"{dst}-{n}"):
        n += 1
      dst = dst if n == 0 else f"{dst}-{n}"
      os.makedirs(os.path.dirname(dst), exist_ok=True)
      os.replace(src, dst)
    else:
      dst = None
    manager.reload()
    return dst

  def resume(self, state: Any, log: Callable[[str], None] | None = None
             ) -> tuple[Any, list[dict]]:
    """``(state, history)`` of the newest checkpoint that restores (into ``state``'s
    structure), or ``(state, [])`` when the run has none yet.

    Latest steps are tried newest first, with the best checkpoint in its place (after a
    latest one of the same step). Damaged steps are skipped (one log line each) and moved to
    ``<workdir>/corrupt/``; InputError when none restores.
    """
    log = log or logger.info
    found, skipped = self._first_restorable(state, self._candidates(with_best=True), None)
    for kind, step, reason in skipped:
      moved = self._quarantine(kind, step)
      log(f"skipped {kind} checkpoint step {step} in {self.workdir}: it does not restore "
          f"({reason}){'; moved it to ' + moved if moved else ''}")
    if found is None:
      return state, []
    kind, step, restored, history = found
    via = "" if kind == "latest" else " (the best checkpoint)"
    log(f"resumed from step {int(restored.step)}{via} in {self.workdir}")
    return restored, history

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def restore_latest(self, abstract_state: Any) -> Any:
    """The newest latest state that restores (damaged newer ones are skipped with a log
    line); None when there is none; InputError when none restores."""
    found, _ = self._first_restorable(abstract_state, self._candidates(with_best=False),
                                      logger.warning)
    return None if found is None else found[2]

  def restore_best(self, abstract_state: Any) -> Any:
    """The best state; None when there is none; InputError when it does not restore."""
    step = self.best.best_step()
    if step is None:
      return None
    found, _ = self._first_restorable(abstract_state, [("best", int(step))], logger.warning)
    return found[2]

  def history(self, abstract_state: Any) -> list[dict]:
    """The run's history as saved with its newest restorable latest checkpoint ([] when
    there is none)."""
    found, _ = self._first_restorable(abstract_state, self._candidates(with_best=False),
                                      logger.warning)
    return [] if found is None else found[3]

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
  abstract = abstract_params(config)
  try:
    with _restore_attempt(), ocp.StandardCheckpointer() as ckptr:
      params = ckptr.restore(os.path.join(directory, "params"), abstract)
  except Exception as e:  # noqa: BLE001 - orbax/tensorstore raise many types
    raise InputError(f"{directory}: damaged exported model, its params/ do not restore "
                     f"({error_line(e)})") from None
  return params, config, metrics
