"""Palm liveness classifier training and evaluation (palm patent steps P4-P6).

Samples are labelled 1 (live) / 0 (spoof). The classifier sees one of three inputs (P5
"raw or SR"): the raw low-resolution capture (``input="lr"``), its bicubic up-scaling
(``"bicubic"``) or the SRCNN output (``"srcnn"``). Cross-entropy is the differentiable
surrogate of the patent's 0/1 loss, which is reported alongside. Steps are pure jitted
functions of ``(state, batch)``; batches are drawn from ``fold_in(key, step)``; the loop is
:func:`palmjax.train_loop.run` (checkpointed with orbax: latest + best validation loss; it
resumes exactly).
"""

from __future__ import annotations

import dataclasses
import functools
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
from palmjax.data import palm_xray
from palmjax.errors import InputError
from palmjax.metrics import PADReport, pad_report, threshold_for, wilson_interval
from palmjax.models import PalmClassifier, PalmClassifierConfig, live_probability

logger = logging.getLogger(__name__)

INPUTS = ("lr", "bicubic", "srcnn")


@dataclasses.dataclass(frozen=True)
class PalmTrainConfig:
  """A palm liveness training run (saved as ``config.json`` in the workdir)."""

  input: str = "bicubic"  # "lr", "bicubic" or "srcnn"
  sr_checkpoint: str | None = None  # SRCNN for input="srcnn" (default: shipped palm model)
  # Simulated data (palmjax.data.palm_xray).
  image_size: int = 128
  scale: int = 2
  n_train: int = 96000
  n_val: int = 2048
  exclude_attacks: tuple[str, ...] = ()  # attack kinds left out of training (unseen)
  # Add a re-captured copy of every live training capture, labelled spoof (palm.augment).
  pseudo_spoofs: bool = False
  data_seed: int = 0
  # Simulator look (palm_xray.STYLES): "v1" the original, "v2" / "v3" / "v4" calibrated against
  # real radiographs (palmjax palm realism; README "Simulator styles and realism").
  sim_style: str = "v1"
  # Model.
  features: tuple[int, ...] = (16, 32, 64, 128)
  convs_per_block: int = 1
  hidden: int = 128
  highpass_sigmas: tuple[float, ...] = (1.0,)  # forensic residual channels (see models)
  pooling: str = "mean_max_std"
  mirror_tta: bool = True  # inference: P(live) averaged with the mirrored image
  # Optimisation.
  batch_size: int = 32
  learning_rate: float = 1e-3
  weight_decay: float = 1e-4
  num_steps: int = 32000
  warmup_steps: int = 50
  seed: int = 0
  eval_every: int = 250
  save_every: int = 250
  log_every: int = 50  # window of the train metrics in the history
  init_from: str | None = None  # exported classifier to start from (tuning)
  # Scale-out (palmjax.parallel): data-parallel devices (0: all) and the compute dtype
  # ("bfloat16": mixed precision, parameters and optimizer state stay float32).
  num_devices: int = 0
  compute_dtype: str = "float32"

  def __post_init__(self):
    parallel.check_scale_out(self.num_devices, self.compute_dtype)
    if self.input not in INPUTS:
      raise InputError(f"input must be one of {INPUTS}, got {self.input!r}")
    unknown = set(self.exclude_attacks) - set(palm_xray.ATTACK_NAMES[1:])
    if unknown:
      raise InputError(f"exclude_attacks: unknown attack kinds {sorted(unknown)}; "
                       f"choose from {palm_xray.ATTACK_NAMES[1:]}")
    if self.sim_style not in palm_xray.STYLES:
      raise InputError(f"sim_style must be one of {palm_xray.STYLES}, got {self.sim_style!r}")
    if self.num_steps < 1 or self.batch_size < 1 or self.n_train < 2 or self.n_val < 2:
      raise InputError("num_steps, batch_size must be >= 1 and n_train, n_val >= 2")
    try:
      self.model_config()
    except ValueError as e:  # the classifier's own checks, reported as bad input
      raise InputError(f"classifier: {e}") from None

  @property
  def input_size(self) -> int:
    return self.image_size // self.scale if self.input == "lr" else self.image_size

  def model_config(self) -> PalmClassifierConfig:
    arch = {k: getattr(self, k) for k in _ARCH_FIELDS}
    return PalmClassifierConfig(input_size=self.input_size, **{
        k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in arch.items()})

  def sim_config(self) -> palm_xray.PalmXrayConfig:
    return palm_xray.PalmXrayConfig(size=self.image_size, scale=self.scale,
                                    style=self.sim_style)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "PalmTrainConfig":
    return config_lib.from_dict(cls, d)


# The classifier's fields that a training run sets (features, hidden, stem, pooling, mirror
# TTA, ...): derived, so a new PalmClassifierConfig field needs no hand-kept list here.
_ARCH_FIELDS = tuple(f.name for f in dataclasses.fields(PalmClassifierConfig)
                     if f.name in {g.name for g in dataclasses.fields(PalmTrainConfig)})


# ---------------------------------------------------------------------------------------
# Data.

def simulate(key: jax.Array, n: int, sim: palm_xray.PalmXrayConfig, *,
             exclude: tuple[str, ...] = (), only: str | None = None,
             chunk: int | None = None, progress: bool = False, desc: str = "simulating"
             ) -> dict[str, np.ndarray]:
  """``n`` simulated captures as NumPy arrays ``lr, hr, label, attack``.

  ``exclude`` redraws excluded attack kinds as live/other kinds by forcing each excluded
  sample to a kind drawn from the remaining ones; ``only`` forces every sample to one kind.
  """
  names = palm_xray.ATTACK_NAMES
  chunk = chunk or _default_chunk(64, 1024)  # the chunk never changes the captures
  rng_key, key = jax.random.split(key)
  if only is not None:
    attacks = np.full((n,), names.index(only), np.int32)
  elif exclude:
    allowed = [i for i, a in enumerate(names) if a not in exclude]
    live_p = sim.live_fraction
    spoof = [i for i in allowed if i != palm_xray.LIVE]
    probs = np.array([live_p if i == palm_xray.LIVE else (1 - live_p) / len(spoof)
                      for i in allowed])
    attacks = np.asarray(jax.random.choice(rng_key, np.array(allowed), (n,), p=probs),
                         np.int32)
  else:
    attacks = np.full((n,), -1, np.int32)
  out: dict[str, list[np.ndarray]] = {k: [] for k in ("lr", "hr", "label", "attack")}
  it = range(0, n, chunk)
  if progress:
    from tqdm.auto import tqdm
    it = tqdm(it, desc=desc, unit="chunk", leave=False)
  for s in it:
    m = min(chunk, n - s)
    b = palm_xray.sample(key, m, sim, start=s, attacks=attacks[s:s + m])
    for k in out:
      out[k].append(np.asarray(b[k]))
  return {k: np.concatenate(v) for k, v in out.items()}


def _default_chunk(cpu: int, accelerator: int) -> int:
  """Images per call: small on CPU (memory), large on an accelerator (launch overhead)."""
  return cpu if jax.default_backend() == "cpu" else accelerator


@functools.partial(jax.jit, static_argnames=("size",))
def _bicubic_up(lr: jax.Array, size: int) -> jax.Array:
  from palmjax.kernels import bicubic_resize
  return jnp.clip(bicubic_resize(lr, size, size), 0.0, 1.0)


def classifier_inputs(lr: np.ndarray, cfg: PalmTrainConfig, sr_model: Any = None, *,
                      chunk: int | None = None) -> np.ndarray:
  """Maps low-resolution captures to what the classifier sees (``cfg.input``)."""
  if cfg.input == "lr":
    return np.asarray(lr, np.float32)
  chunk = chunk or _default_chunk(64, 512)
  outs = []
  for s in range(0, len(lr), chunk):
    x = jnp.asarray(lr[s:s + chunk])
    if cfg.input == "bicubic":
      outs.append(np.asarray(_bicubic_up(x, cfg.image_size)))
    else:
      from palmjax.sr.inference import super_resolve
      outs.append(np.asarray(super_resolve(sr_model, x, scale=cfg.scale)))
  return np.concatenate(outs)


def load_sr_for(cfg: PalmTrainConfig):
  """The SRCNN used for ``input="srcnn"``: ``cfg.sr_checkpoint`` or the shipped palm model."""
  if cfg.input != "srcnn":
    return None
  from palmjax.assets import checkpoint_path
  from palmjax.sr.inference import load_model
  path = cfg.sr_checkpoint or str(checkpoint_path(f"palm_srcnn_x{cfg.scale}"))
  return load_model(path, scale=cfg.scale)


# ---------------------------------------------------------------------------------------
# Steps.

class TrainState(train_state.TrainState):
  pass


def create_train_state(key: jax.Array, cfg: PalmTrainConfig) -> TrainState:
  mcfg = cfg.model_config()
  model = PalmClassifier(mcfg, dtype=parallel.compute_dtype(cfg.compute_dtype))
  params = model.init(key, jnp.zeros((1, mcfg.input_size, mcfg.input_size, 1)))["params"]
  if cfg.init_from:
    params = load_classifier(cfg.init_from)[0]
  lr = train_loop.lr_schedule(cfg.learning_rate, num_steps=cfg.num_steps,
                              warmup_steps=cfg.warmup_steps, end_fraction=0.02)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lr, weight_decay=cfg.weight_decay))
  return TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def _losses(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
  zero_one = jnp.mean((jnp.argmax(logits, -1) != labels).astype(jnp.float32))
  return ce, zero_one


def train_step(state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """Cross-entropy step; also reports the patent's 0/1 loss on the batch."""
  def loss_fn(params):
    logits = state.apply_fn({"params": params}, batch["image"])
    ce, zo = _losses(logits, batch["label"])
    return ce, zo
  (ce, zo), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  return state.apply_gradients(grads=grads), {"loss": ce, "zero_one": zo}


train_step_jit = jax.jit(train_step, donate_argnums=0)


@functools.partial(jax.jit, static_argnames=("config",))
def predict_proba(params: Any, images: jax.Array, config: PalmClassifierConfig) -> jax.Array:
  """P(live) for ``[N, H, W, 1]`` classifier inputs.

  With ``config.mirror_tta`` the probability is the mean over the image and its left-right
  mirror (the training augmentation), so it is exactly mirror-invariant.
  """
  model = PalmClassifier(config)
  p = live_probability(model.apply({"params": params}, images))
  if config.mirror_tta:
    p = 0.5 * (p + live_probability(model.apply({"params": params}, images[:, :, ::-1])))
  return p


@functools.partial(jax.jit, static_argnames=("config",))
def predict_log_odds(params: Any, images: jax.Array, config: PalmClassifierConfig
                     ) -> jax.Array:
  """``log P(live) - log P(spoof)`` of :func:`predict_proba`, computed in log space, so it
  stays finite and ordered where the probability rounds to 0 or 1 in float32."""
  model = PalmClassifier(config)
  views = [images, images[:, :, ::-1]] if config.mirror_tta else [images]
  logp = jnp.stack([jax.nn.log_softmax(model.apply({"params": params}, v), axis=-1)
                    for v in views])  # [V, N, 2]; the probability is the mean over views
  mean_logp = jax.nn.logsumexp(logp, axis=0) - jnp.log(len(views))
  return mean_logp[..., 1] - mean_logp[..., 0]


def batched_proba(params: Any, images: np.ndarray, config: PalmClassifierConfig,
                  chunk: int = 256, *, fn: Callable = predict_proba) -> np.ndarray:
  """``fn`` (:func:`predict_proba` or :func:`predict_log_odds`) over ``images`` in chunks."""
  return np.concatenate([np.asarray(fn(params, jnp.asarray(images[s:s + chunk]), config))
                         for s in range(0, len(images), chunk)])


def mirror(key: jax.Array, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """Training augmentation: each image mirrored left-right (the other hand) with p = 1/2."""
  img = batch["image"]
  flips = jax.random.bernoulli(key, 0.5, (img.shape[0],))
  return {**batch, "image": jnp.where(flips[:, None, None, None], img[:, :, ::-1], img)}


def training_data(x: np.ndarray, y: np.ndarray, batch_size: int) -> train_loop.ArrayDataset:
  """The training batches: rows drawn with replacement per step, mirrored at random."""
  return train_loop.ArrayDataset({"image": x, "label": np.asarray(y, np.int32)}, batch_size,
                                 augment=mirror)


def evaluate(params: Any, config: PalmClassifierConfig, images: np.ndarray,
             labels: np.ndarray, attacks: np.ndarray, *, threshold: float = 0.5
             ) -> tuple[PADReport, np.ndarray]:
  """PAD report (per attack kind) and the probabilities on a split."""
  p = batched_proba(params, images, config)
  names = [palm_xray.ATTACK_NAMES[int(a)] for a in attacks]
  return pad_report(p, labels, names, threshold=threshold), p


# ---------------------------------------------------------------------------------------
# Training loop.

def make_splits(cfg: PalmTrainConfig, *, progress: bool = True, keep_hr: bool = False
                ) -> dict[str, dict]:
  """Train and validation splits (simulated from ``cfg.data_seed``), classifier inputs added.

  The high-resolution ground truth is dropped unless ``keep_hr`` (it is the largest array
  and training never sees it).
  """
  sim = cfg.sim_config()
  key = jax.random.key(cfg.data_seed)
  k_train, k_val = jax.random.split(key)
  sr_model = load_sr_for(cfg)
  splits = {}
  for name, k, n in (("train", k_train, cfg.n_train), ("validation", k_val, cfg.n_val)):
    d = simulate(k, n, sim, exclude=cfg.exclude_attacks, progress=progress,
                 desc=f"simulating {name}")
    d["image"] = classifier_inputs(d["lr"], cfg, sr_model)
    if not keep_hr:
      del d["hr"]
    splits[name] = d
  return splits


def add_real_lives(cfg: PalmTrainConfig, splits: dict[str, dict], real: dict[str, dict],
                   key: jax.Array, *, repeat: int = 3, recaptures: bool = True
                   ) -> dict[str, np.ndarray]:
  """Real live radiographs in the data path (issue: palm on real radiographs).

  ``real``: :func:`palmjax.data.hand_radiographs_tfds.load_splits` splits. The real
  **train** captures (repeated ``repeat`` times) and one print-and-recapture copy of each
  (:func:`palmjax.palm.augment.pseudo_spoofs`, labelled spoof, attack kind
  ``printed_radiograph``) are returned as ``extra_train`` for :func:`train`; the real
  **validation** captures and their re-captures are appended to ``splits["validation"]``
  in place, so the EER threshold is chosen on real and simulated captures together. The
  real test split is not touched. ``recaptures=False`` adds the live captures only (e.g.
  when ``printed_radiograph`` is the attack kind held out of training).
  """
  from palmjax.palm.augment import pseudo_spoofs
  sr_model = load_sr_for(cfg)
  tr = real["train"]["lr"]
  live = np.concatenate([tr] * repeat)
  fake = pseudo_spoofs(jax.random.fold_in(key, 0), tr) if recaptures else tr[:0]
  label_dtype = splits["train"]["label"].dtype
  extra = {"image": classifier_inputs(np.concatenate([live, fake]), cfg, sr_model),
           "label": np.concatenate([np.ones(len(live)), np.zeros(len(fake))]
                                   ).astype(label_dtype)}
  va, rv = splits["validation"], real["validation"]["lr"]
  va_fake = pseudo_spoofs(jax.random.fold_in(key, 1), rv) if recaptures else rv[:0]
  va["image"] = np.concatenate([va["image"], classifier_inputs(
      np.concatenate([rv, va_fake]), cfg, sr_model)])
  va["label"] = np.concatenate([va["label"], np.ones(len(rv), va["label"].dtype),
                                np.zeros(len(va_fake), va["label"].dtype)])
  va["attack"] = np.concatenate([
      va["attack"], np.full(len(rv), palm_xray.LIVE, va["attack"].dtype),
      np.full(len(va_fake), palm_xray.PRINTED_RADIOGRAPH, va["attack"].dtype)])
  va.pop("lr", None)
  return extra


def evaluate_real_lives(params: Any, cfg: PalmTrainConfig, threshold: float,
                        lr: np.ndarray, sr_model: Any = None) -> dict[str, Any]:
  """BPCER of real live captures ``lr [N, h, w, 1]`` with a 95% Wilson interval; failure to
  acquire (the quality gate asks for a re-capture) reported apart, not counted in BPCER."""
  from palmjax.palm.quality import check_quality
  ok = np.array([r.ok for r in check_quality(lr)], bool)
  sr_model = load_sr_for(cfg) if sr_model is None else sr_model
  p = (batched_proba(params, classifier_inputs(lr[ok], cfg, sr_model), cfg.model_config())
       if ok.any() else np.zeros(0))
  k, n = int((p < threshold).sum()), int(ok.sum())
  return {"n": int(len(ok)), "fta": float(1 - ok.mean()) if len(ok) else 0.0,
          "n_judged": n, "rejected": k, "bpcer": k / max(n, 1),
          "bpcer_ci95": list(wilson_interval(k, n)),
          "median_p_live": float(np.median(p)) if n else float("nan")}


def evaluate_simulated(params: Any, cfg: PalmTrainConfig, threshold: float, n: int,
                       seed: int, sr_model: Any = None) -> dict[str, Any]:
  """PAD figures on ``n`` fresh simulated captures (``cfg.sim_config()``, ``key(seed)``)
  behind the quality gate: a re-capture of a live capture counts as a failure for the live
  class (in BPCER), of an attack as a rejection; the worst attack kind is the APCER of
  ACER. ``fta_live``: share of live captures sent to re-capture."""
  from palmjax.palm.quality import check_quality
  d = simulate(jax.random.key(seed), n, cfg.sim_config())
  ok = np.array([r.ok for r in check_quality(d["lr"])], bool)
  sr_model = load_sr_for(cfg) if sr_model is None else sr_model
  p = batched_proba(params, classifier_inputs(d["lr"], cfg, sr_model), cfg.model_config())
  rep = pad_report(p, d["label"], [palm_xray.ATTACK_NAMES[a] for a in d["attack"]],
                   threshold=threshold, accepted=ok)
  return {"n": n, "fta_live": float(1 - ok[d["label"] == 1].mean()), "acer": rep.acer,
          "bpcer": rep.bpcer, "apcer": rep.apcer, "apcer_worst": rep.apcer_worst,
          "auc": rep.auc}


def train(cfg: PalmTrainConfig, workdir: str | os.PathLike, *,
          splits: dict[str, dict] | None = None, export_to: str | None = None,
          progress: bool = True, log: Callable[[str], None] | None = None,
          extra_train: dict[str, np.ndarray] | None = None,
          stop_after: int | None = None) -> tuple[Any, dict[str, Any]]:
  """Trains (or resumes) the palm liveness classifier; returns (best params, summary).

  ``extra_train`` (``image``, ``label`` arrays) is appended to the training split: the
  tuning loop's field samples. The decision threshold of the export is chosen on the
  validation split at the EER point. The loop is :func:`palmjax.train_loop.run` (history
  entries: step, mean train ``loss`` and ``zero_one`` over the last ``log_every`` steps,
  ``val_loss``, ``val_acer``, ``val_auc``; continued across resumes).
  """

  workdir = checkpointing.bind_run_config(workdir, cfg)
  splits = splits or make_splits(cfg, progress=progress)
  tr, va = splits["train"], splits["validation"]
  x, y = tr["image"], tr["label"]
  if cfg.pseudo_spoofs:
    from palmjax.palm.augment import pseudo_spoofs
    fake = pseudo_spoofs(jax.random.fold_in(jax.random.key(cfg.data_seed), 2),
                         tr["lr"][tr["label"] == 1])
    x = np.concatenate([x, classifier_inputs(fake, cfg, load_sr_for(cfg))])
    y = np.concatenate([y, np.zeros(len(fake), y.dtype)])
  if extra_train is not None and len(extra_train["label"]):
    x = np.concatenate([x, extra_train["image"]])
    y = np.concatenate([y, extra_train["label"]])
  mcfg = cfg.model_config()
  if x.shape[1:] != (mcfg.input_size, mcfg.input_size, 1):
    raise InputError(f"training images are {x.shape[1:]}, the classifier expects "
                     f"{(mcfg.input_size, mcfg.input_size, 1)}")

  def evaluate_val(state):
    p = batched_proba(state.params, va["image"], mcfg)
    val_loss = float(-np.mean(np.log(np.clip(np.where(va["label"] == 1, p, 1 - p), 1e-7, 1))))
    rep = pad_report(p, va["label"], [palm_xray.ATTACK_NAMES[a] for a in va["attack"]])
    return {"val_loss": val_loss, "val_acer": rep.acer, "val_auc": rep.auc}

  key = jax.random.key(cfg.seed)
  init_key, data_key = jax.random.split(key)
  data = training_data(x, y, cfg.batch_size)
  ckpts = checkpointing.RunCheckpoints(workdir, save_every=cfg.save_every,
                                       best_metric="val_loss", best_mode="min")
  try:
    res = train_loop.run(
        create_train_state(init_key, cfg), train_step, data.draw_block, key=data_key,
        num_steps=cfg.num_steps, ckpts=ckpts, evaluate=evaluate_val,
        eval_every=cfg.eval_every, save_every=cfg.save_every, log_every=cfg.log_every,
        block_size=data.block_size(), stop_after=stop_after,
        mesh=parallel.make_mesh(cfg.num_devices),
        describe=lambda e: (f"val loss {e['val_loss']:.4f}  val ACER "
                            f"{100 * e['val_acer']:.2f}%  AUC {e['val_auc']:.4f}"),
        progress=progress, desc=f"palm classifier ({cfg.input})", log=log)
  finally:
    ckpts.close()
  best, history, stopped_by = res.best, res.history, res.stopped_by
  p_val = batched_proba(best.params, va["image"], mcfg)
  threshold = threshold_for(p_val, va["label"], criterion="eer")
  summary = {"final_step": res.final_step, "stopped_by": stopped_by, "history": history,
             "threshold": threshold, "best_step": int(best.step), "n_train_samples": len(x)}
  if export_to and stopped_by != "stop_after":
    export_classifier(export_to, best.params, cfg, threshold,
                      {"history": history, "best_step": int(best.step)})
    (log or logger.info)(f"exported classifier (step {int(best.step)}, threshold "
                         f"{threshold:.3f}) to {export_to}")
  return best.params, summary


# ---------------------------------------------------------------------------------------
# Export / load.

def export_classifier(path: str | os.PathLike, params: Any, cfg: PalmTrainConfig,
                      threshold: float, metrics: dict[str, Any] | None = None, *,
                      keep_old: bool = False) -> str | None:
  """Exports (atomically) a classifier with its run config and decision threshold.

  With ``keep_old`` a model already at ``path`` is kept beside it (its path is returned).
  """
  return checkpointing.export_model(
      path, params, {"model": dataclasses.asdict(cfg.model_config()), "train": cfg.to_dict(),
                     "threshold": float(threshold)}, metrics, keep_old=keep_old)


def load_classifier(path: str | os.PathLike
                    ) -> tuple[Any, PalmTrainConfig, float, dict[str, Any]]:
  """``(params, train config, threshold, metrics)`` of an exported classifier."""
  def abstract(c):
    m = PalmClassifierConfig.from_dict(c["model"])
    x = jax.ShapeDtypeStruct((1, m.input_size, m.input_size, 1), jnp.float32)
    return jax.eval_shape(lambda x: PalmClassifier(m).init(jax.random.key(0), x), x)["params"]
  params, c, metrics = checkpointing.load_exported(path, abstract)
  # The "model" section is the architecture the parameters have: it overrides the training
  # section's copy (exports older than a model option lack it in "train", and today's
  # training defaults must not fill it in).
  model = PalmClassifierConfig.from_dict(c["model"])
  train_d = {**c["train"], **{k: getattr(model, k) for k in _ARCH_FIELDS}}
  return params, PalmTrainConfig.from_dict(train_d), float(c["threshold"]), metrics
