"""SRCNN training (palm patent step P3): pure jitted optax step, orbax checkpoints, resume.

Pairs of (interpolated low-res, high-res) patches of the same content; MSE loss on the
pixel difference; Adam (or the paper's SGD with momentum); training stops when the step
count reaches ``num_steps`` **or** the mean training loss over the last ``log_every`` steps
falls to ``loss_threshold`` (checked every ``log_every`` steps). The loop is
:func:`palmjax.train_loop.run`.

The batch at step ``s`` comes from ``jax.random.fold_in(key, s)``, and the optimizer state is
checkpointed with the parameters, so a run interrupted and resumed from its latest
checkpoint ends with the same parameters as one that was never interrupted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from palmjax import config as config_lib
from palmjax import checkpointing, parallel, train_loop
from palmjax.data import images
from palmjax.errors import InputError
from palmjax.models import SRCNN, SRCNNConfig

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SRTrainConfig:
  """Everything a training run depends on (saved as ``config.json`` in the workdir)."""

  scale: int = 3
  # Architecture (see SRCNNConfig).
  f1: int = 9
  f2: int = 5
  f3: int = 5
  n1: int = 64
  n2: int = 32
  channels: int = 1
  residual: bool = True
  # Data: folders of images (None: scikit-image's bundled samples).
  train_dirs: tuple[str, ...] | None = None
  val_dir: str | None = None
  patch_size: int = 32  # size of the target patch (the input patch adds the receptive field)
  batch_size: int = 16
  augment: bool = True
  # Optimisation.
  optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9)
  learning_rate: float = 1e-3
  schedule: str = "cosine"  # "cosine" (to 1% at num_steps) or "constant"
  warmup_steps: int = 100
  grad_clip: float = 1.0  # global-norm clip; 0 disables
  num_steps: int = 20_000
  loss_threshold: float = 0.0  # stop once the mean loss <= this (0 disables)
  # Bookkeeping.
  seed: int = 0
  log_every: int = 50
  eval_every: int = 500
  save_every: int = 500
  init_from: str | None = None  # exported model whose params start the run (fine-tuning)
  # Scale-out (palmjax.parallel): data-parallel devices (0: all) and the compute dtype
  # ("bfloat16": mixed precision, parameters and optimizer state stay float32).
  num_devices: int = 0
  compute_dtype: str = "float32"

  def __post_init__(self):
    parallel.check_scale_out(self.num_devices, self.compute_dtype)
    if self.scale < 2:
      raise InputError(f"scale must be an integer >= 2, got {self.scale}")
    if self.batch_size < 1 or self.num_steps < 1 or self.patch_size < 1:
      raise InputError("batch_size, num_steps and patch_size must be >= 1")
    if self.optimizer not in ("adam", "sgd"):
      raise InputError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
    if self.schedule not in ("cosine", "constant"):
      raise InputError(f"schedule must be cosine or constant, got {self.schedule!r}")
    if not self.learning_rate > 0:
      raise InputError(f"learning_rate must be > 0, got {self.learning_rate}")
    self.model_config()  # validates the architecture

  def model_config(self) -> SRCNNConfig:
    return SRCNNConfig(f1=self.f1, f2=self.f2, f3=self.f3, n1=self.n1, n2=self.n2,
                       channels=self.channels, scale=self.scale, residual=self.residual)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "SRTrainConfig":
    return config_lib.from_dict(cls, d)


class TrainState(train_state.TrainState):
  """Flax TrainState: step, params, opt_state (apply_fn and tx are static)."""


def make_optimizer(cfg: SRTrainConfig) -> optax.GradientTransformation:
  """Adam (or SGD with momentum 0.9) on :func:`palmjax.train_loop.lr_schedule` (cosine to 1%
  of the peak at ``num_steps``, or constant), after an optional global-norm clip."""
  lr = train_loop.lr_schedule(cfg.learning_rate, num_steps=cfg.num_steps,
                              warmup_steps=cfg.warmup_steps, decay=cfg.schedule,
                              end_fraction=0.01)
  opt = optax.adam(lr) if cfg.optimizer == "adam" else optax.sgd(lr, momentum=0.9)
  if cfg.grad_clip > 0:
    opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), opt)
  return opt


def create_train_state(key: jax.Array, cfg: SRTrainConfig) -> TrainState:
  """Initial train state from an explicit PRNG key."""
  mcfg = cfg.model_config()
  model = SRCNN(mcfg, dtype=parallel.compute_dtype(cfg.compute_dtype))
  x = jnp.zeros((1, mcfg.receptive_field, mcfg.receptive_field, mcfg.channels), jnp.float32)
  params = model.init(key, x)["params"]
  if cfg.init_from:
    from palmjax.sr.inference import load_model
    params = load_model(cfg.init_from).params
  return TrainState.create(apply_fn=model.apply, params=params, tx=make_optimizer(cfg))


def mse_loss(params: Any, apply_fn: Callable, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean squared error between the network's valid output and the target patch."""
  pred = apply_fn({"params": params}, x, pad=False)
  return jnp.mean(jnp.square(pred.astype(jnp.float32) - y))


def train_step(state: TrainState, batch: tuple[jax.Array, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimisation step on ``(inputs, targets)``: pure function of (state, batch)."""
  x, y = batch
  loss, grads = jax.value_and_grad(mse_loss)(state.params, state.apply_fn, x, y)
  state = state.apply_gradients(grads=grads)
  return state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}


def make_train_step() -> Callable:
  """The jitted train step with the incoming state's buffers donated."""
  return jax.jit(train_step, donate_argnums=0)


def patch_sampler(pool: images.PairPool, cfg: SRTrainConfig) -> images.PatchSampler:
  """Training patches of ``cfg``: inputs with the network's context, centred targets."""
  r = cfg.model_config().radius
  return images.PatchSampler(pool, cfg.batch_size, cfg.patch_size + 2 * r, crop=r,
                             augment=cfg.augment)


def batch_at(step: int, key: jax.Array, pool: images.PairPool, cfg: SRTrainConfig
             ) -> tuple[np.ndarray, np.ndarray]:
  """The training batch of ``step`` on its own (the loop draws the same in blocks)."""
  x, y = patch_sampler(pool, cfg).draw_block(key, step, 1)
  return x[0], y[0]


def _train_paths(cfg: SRTrainConfig) -> list[str]:
  if not cfg.train_dirs:
    return images.embedded_image_paths()
  paths: list[str] = []
  for d in cfg.train_dirs:
    paths += images.folder_paths(d)
  return paths


def _val_paths(cfg: SRTrainConfig) -> list[str]:
  if cfg.val_dir is None:
    return images.embedded_image_paths(images.EMBEDDED_VALID)
  return images.folder_paths(cfg.val_dir)


def train_srcnn(cfg: SRTrainConfig, workdir: str | os.PathLike, *, export_to: str | None = None,
          progress: bool = True, log: Callable[[str], None] | None = None,
          on_sync: Callable[[int, dict[str, float]], None] | None = None,
          stop_after: int | None = None, train_pool: images.PairPool | None = None,
          val_pool: images.PairPool | None = None) -> tuple[TrainState, dict[str, Any]]:
  """Trains (or resumes) an SRCNN in ``workdir``; returns the best state and a summary.

  The loop is :func:`palmjax.train_loop.run`: batches drawn in blocks of steps, losses read
  back every ``gcd(log_every, eval_every, save_every)`` steps (the loss threshold is checked
  at every multiple of ``log_every``), the history saved with the checkpoints and continued
  on resume.

  Args:
    cfg: the run's configuration. Resuming requires the saved config to match.
    workdir: run directory (created); holds config.json and the orbax checkpoints.
    export_to: if given, the best parameters are exported there when training ends.
    progress: show a tqdm progress bar.
    log: sink for the periodic log lines (default: the ``palmjax.train_loop`` logger).
    on_sync: ``(steps done, averaged train metrics)`` at every sync point of the loop.
    stop_after: stop (as if interrupted) after this step, leaving the run resumable;
      used by tests and for time-boxed sessions.
    train_pool, val_pool: pairs already in memory (e.g. simulated palm radiographs: the
      interpolated low-resolution capture and the high-resolution one) instead of the
      folders named in ``cfg``. The caller must pass the same pools when resuming.
  """
  from palmjax.sr.evaluate import evaluate_pool, summarize

  workdir = checkpointing.bind_run_config(workdir, cfg)

  mcfg = cfg.model_config()
  pool = train_pool if train_pool is not None else images.load_pool(
      _train_paths(cfg), cfg.scale, cfg.channels, min_size=cfg.patch_size + 2 * mcfg.radius,
      progress=progress)
  if val_pool is None:
    val_pool = images.load_pool(_val_paths(cfg), cfg.scale, cfg.channels, progress=progress)
  sampler = patch_sampler(pool, cfg)

  key = jax.random.key(cfg.seed)
  init_key, data_key = jax.random.split(key)
  ckpts = checkpointing.RunCheckpoints(workdir, save_every=cfg.save_every)
  try:
    res = train_loop.run(
        create_train_state(init_key, cfg), train_step, sampler.draw_block, key=data_key,
        num_steps=cfg.num_steps, ckpts=ckpts, best_metric="psnr_sr",
        evaluate=lambda st: summarize(evaluate_pool(st.params, mcfg, val_pool)),
        eval_every=cfg.eval_every, save_every=cfg.save_every, log_every=cfg.log_every,
        stop_when=lambda w: (cfg.loss_threshold > 0 and w["loss"] <= cfg.loss_threshold
                             and "loss_threshold"),
        stop_after=stop_after, mesh=parallel.make_mesh(cfg.num_devices),
        describe=lambda e: (f"val PSNR {e['psnr_sr']:.2f} dB (bicubic "
                            f"{e['psnr_bicubic']:.2f}, gain {e['psnr_gain']:+.2f})"),
        progress=progress, desc=f"SRCNN x{cfg.scale}", log=log,
        on_sync=on_sync)
  finally:
    ckpts.close()
  summary = {"final_step": res.final_step, "stopped_by": res.stopped_by,
             "best_val_psnr": res.best_value, "history": res.history}
  if export_to and res.stopped_by != "stop_after":
    export_run(workdir, export_to, log=log, val_pool=val_pool)
  return res.best, summary


def export_run(workdir: str | os.PathLike, export_to: str | os.PathLike, *,
               which: str = "best", log: Callable[[str], None] | None = None,
               val_pool: images.PairPool | None = None) -> dict[str, Any]:
  """Exports the best (or latest) parameters of a run directory as a deployable model.

  The export carries the model config, the run's config, the validation metrics and the
  run's evaluation history (all of it, across resumes).
  """
  from palmjax.sr.evaluate import evaluate_pool, summarize

  workdir = os.path.abspath(os.fspath(workdir))
  cfg_path = os.path.join(workdir, "config.json")
  if not os.path.exists(cfg_path):
    raise InputError(f"{workdir}: not a training run (no config.json)")
  cfg = SRTrainConfig.from_dict(checkpointing.read_json(cfg_path))
  template = create_train_state(jax.random.key(0), dataclasses.replace(cfg, init_from=None))
  ckpts = checkpointing.RunCheckpoints(workdir)
  state = ckpts.restore_best(template) if which == "best" else ckpts.restore_latest(template)
  history = ckpts.history(template)
  ckpts.close()
  if state is None:
    raise InputError(f"{workdir}: holds no {which} checkpoint yet")
  mcfg = cfg.model_config()
  if val_pool is None:
    val_pool = images.load_pool(_val_paths(cfg), cfg.scale, cfg.channels)
  val = summarize(evaluate_pool(state.params, mcfg, val_pool))
  metrics = {"validation": val, "validation_data": cfg.val_dir or "embedded",
             "train_config": cfg.to_dict(), "steps": int(state.step), "history": history}
  checkpointing.export_model(export_to, state.params, dataclasses.asdict(mcfg), metrics)
  (log or logger.info)(f"exported {which} model (step {int(state.step)}, validation PSNR "
      f"{val['psnr_sr']:.2f} dB, bicubic {val['psnr_bicubic']:.2f}) to {export_to}")
  return metrics
