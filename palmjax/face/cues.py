"""Image liveness cues (SPEC F2-F4): features and small calibrated classifiers.

* F2 colour: colour moments (mean, std, skewness) of the H, S, V channels
  (:func:`palmjax.kernels.color_moment_features` of :func:`palmjax.kernels.rgb_to_hsv`),
  averaged over the frames -> 9 features;
* F3 texture: uniform LBP histograms of every HSV and YCbCr channel
  (:func:`palmjax.kernels.color_lbp_features`, Boulkenafet et al. 2016), averaged over the
  frames -> 60 features;
* F4 lighting/motion: pyramidal Lucas-Kanade flow on a point grid between consecutive
  frames (:func:`palmjax.kernels.lucas_kanade`), the variation of its magnitudes
  (:func:`palmjax.kernels.flow_statistics`) plus the spread of flow *directions* relative
  to a homography (a plane moves by a homography; a 3D head with parallax and micro-motion
  does not) and the frame-to-frame brightness change (lighting) -> 8 features.

Each cue goes through a :class:`CueClassifier`: standardisation, an MLP (``hidden=0`` is
logistic regression) trained with optax on binary cross-entropy, then Platt scaling
(``sigmoid(a * logit + b)``) fitted on a held-out split, so the output is a calibrated
probability of "live". Parameters are a plain pytree; exported with
:func:`palmjax.checkpointing.export_model`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from palmjax import config as config_lib
from palmjax.errors import InputError
from palmjax.kernels import (color_lbp_features, color_moment_features, flow_statistics,
                             lucas_kanade, rgb_to_hsv, rgb_to_luma, rgb_to_ycbcr)

CUES = ("colour", "texture", "lighting")
LIGHTING_FEATURES = ("magnitude_mean", "magnitude_std", "spatial_variation",
                     "temporal_variation", "temporal_change", "homography_residual",
                     "residual_ratio", "brightness_change")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """How the cue features are computed (static).

  The defaults are the simulator-trained models' features (whole 64x64 frames, global
  HSV moments, one LBP scale). Models trained on real faces set ``face_size`` (frames are
  face crops of that size, made by :mod:`palmjax.face.detect` with ``crop_margin``),
  ``colour_spaces`` (moments of each space's channels), ``lbp_grid`` (uniform LBP
  histograms per cell of a ``g x g`` grid as well as over the whole crop) and
  ``lbp_extra_radii`` (further LBP scales, global histograms).
  """
  lbp_points: int = 8
  lbp_radius: float = 1.0
  lbp_spaces: tuple[str, ...] = ("hsv", "ycbcr")
  flow_grid: int = 6
  flow_window: int = 9
  flow_levels: int = 2
  flow_iterations: int = 8
  texture_frames: int = 4  # LBP on this many evenly spaced frames (cost)
  face_size: int = 0       # 0: whole frames (simulated sessions are face-sized already)
  crop_margin: float = 0.25
  colour_spaces: tuple[str, ...] = ("hsv",)
  lbp_grid: int = 1
  lbp_extra_radii: tuple[float, ...] = ()
  texture_crop: float = 1.0  # texture on the central square of this fraction of the side

  def __post_init__(self):
    if any(c not in ("hsv", "ycbcr") for c in self.colour_spaces) or not self.colour_spaces:
      raise InputError(f"colour_spaces must be drawn from ('hsv', 'ycbcr'), got "
                       f"{self.colour_spaces}")
    if self.lbp_grid < 1 or self.face_size < 0:
      raise InputError("lbp_grid must be >= 1 and face_size >= 0")
    if not 0.1 <= self.texture_crop <= 1.0:
      raise InputError(f"texture_crop must lie in [0.1, 1], got {self.texture_crop}")


def _homography_residual(flow: jax.Array, pts: jax.Array, ok: jax.Array) -> jax.Array:
  """RMS residual of a least-squares affine fit to each flow field (points ``[N, 2]``).

  A plane seen by a camera moves (to first order) by an affine map; depth parallax and
  non-rigid motion leave a residual.
  """
  a = jnp.concatenate([pts, jnp.ones_like(pts[:, :1])], -1)  # [N, 3]

  def one(f, w):
    aw = a * w[:, None]
    coef = jnp.linalg.solve(aw.T @ a + 1e-3 * jnp.eye(3), aw.T @ f)  # [3, 2]
    r = (f - a @ coef) * w[:, None]
    return jnp.sqrt(jnp.sum(r * r) / jnp.maximum(jnp.sum(w), 1.0))

  return jax.vmap(one)(flow, ok.astype(flow.dtype))


def _colour_space(frames: jax.Array, space: str) -> jax.Array:
  return rgb_to_hsv(frames) if space == "hsv" else rgb_to_ycbcr(frames)


@functools.partial(jax.jit, static_argnums=(1,))
def _static_core(frames: jax.Array, fc: FeatureConfig) -> dict[str, jax.Array]:
  """Colour (F2) and texture (F3) features of ``[B, T, H, W, 3]``, averaged over frames."""
  t, h, w = frames.shape[1:4]
  colour = jnp.concatenate([jnp.mean(color_moment_features(_colour_space(frames, sp)), axis=1)
                            for sp in fc.colour_spaces], -1)            # [B, 9 * spaces]
  idx = np.unique(np.linspace(0, t - 1, min(fc.texture_frames, t)).round().astype(int))
  sel = frames[:, idx]
  if fc.texture_crop < 1.0:  # the face itself, without the crop's margin
    ch, cw = round(h * fc.texture_crop), round(w * fc.texture_crop)
    sel = sel[:, :, (h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
  tex = [color_lbp_features(sel, P=fc.lbp_points, R=fc.lbp_radius, method="uniform",
                            spaces=fc.lbp_spaces)]
  if fc.lbp_grid > 1:
    tex.append(color_lbp_features(sel, P=fc.lbp_points, R=fc.lbp_radius, method="uniform",
                                  grid=(fc.lbp_grid, fc.lbp_grid), spaces=fc.lbp_spaces))
  for r in fc.lbp_extra_radii:
    tex.append(color_lbp_features(sel, P=fc.lbp_points, R=r, method="uniform",
                                  spaces=fc.lbp_spaces))
  texture = jnp.mean(jnp.concatenate(tex, -1), axis=1)
  return {"colour": colour, "texture": texture}


@functools.partial(jax.jit, static_argnums=(1,))
def _lighting_core(frames: jax.Array, fc: FeatureConfig) -> jax.Array:
  """Lighting/motion (F4) features of ``[B, T, H, W, 3]`` with ``T >= 2``."""
  b, t, h, w, _ = frames.shape
  grey = rgb_to_luma(frames)[..., 0]                                    # [B, T, H, W]
  fl = lucas_kanade(grey[:, :-1], grey[:, 1:], grid=fc.flow_grid, window=fc.flow_window,
                    levels=fc.flow_levels, iterations=fc.flow_iterations)
  gh, gw = fl.flow.shape[2:4]
  flow = fl.flow.reshape(b, t - 1, gh * gw, 2)
  ok = fl.status.reshape(b, t - 1, gh * gw)
  # NaN guard: lost tracks may hold NaN/huge flow; zero them (they carry weight 0).
  flow = jnp.where(ok[..., None] & jnp.isfinite(flow), flow, 0.0)
  st = flow_statistics(flow, ok, dense=False)
  ys = np.arange(fc.flow_grid // 2, h, fc.flow_grid)[:gh]
  xs = np.arange(fc.flow_grid // 2, w, fc.flow_grid)[:gw]
  gy, gx = np.meshgrid(ys, xs, indexing="ij")
  pts = jnp.asarray(np.stack([gx.ravel() / w, gy.ravel() / h], -1), frames.dtype)
  res = jax.vmap(lambda f, o: _homography_residual(f, pts, o))(flow, ok)  # [B, T-1]
  resid = jnp.mean(res, -1)
  mean_grey = jnp.mean(grey, axis=(-2, -1))                              # [B, T]
  bright = jnp.mean(jnp.abs(jnp.diff(mean_grey, axis=-1)), -1) * 255
  lighting = jnp.stack([st.magnitude_mean, st.magnitude_std, st.spatial_variation,
                        st.temporal_variation, st.temporal_change, resid,
                        resid / (st.magnitude_mean + 0.05), bright], -1)
  return jnp.log1p(jnp.maximum(lighting, 0.0))                          # heavy tails


def cue_features(frames: ArrayLike, config: FeatureConfig = FeatureConfig(), *,
                 cues: tuple[str, ...] = CUES) -> dict[str, np.ndarray]:
  """Features of the requested cues for sessions ``[B, T, H, W, 3]`` (or one ``[T, ...]``).

  Returns a dict with ``colour [B, 9 * len(colour_spaces)]``, ``texture [B, ...]`` and
  ``lighting [B, 8]`` (NumPy) for the cues in ``cues``; a single session gives ``[1, ...]``.
  The lighting cue needs at least two frames.
  """
  x = np.asarray(frames)
  if x.ndim == 4:
    x = x[None]
  if x.ndim != 5 or x.shape[-1] != 3:
    raise InputError(f"frames: expected [B, T, H, W, 3] or [T, H, W, 3], got {x.shape}")
  bad = set(cues) - set(CUES)
  if bad:
    raise InputError(f"cues: unknown {sorted(bad)}; choose from {CUES}")
  if "lighting" in cues and x.shape[1] < 2:
    raise InputError(f"frames: {x.shape[1]} frame(s); the lighting cue needs at least 2")
  if min(x.shape[2:4]) < config.flow_window:
    raise InputError(f"frames are {x.shape[3]}x{x.shape[2]}; at least "
                     f"{config.flow_window} pixels are needed")
  xj = jnp.asarray(x, jnp.float32)
  out: dict[str, np.ndarray] = {}
  if "colour" in cues or "texture" in cues:
    out.update({k: np.asarray(v) for k, v in _static_core(xj, config).items() if k in cues})
  if "lighting" in cues:
    out["lighting"] = np.asarray(_lighting_core(xj, config))
  return out


# ---------------------------------------------------------------------------------------
# Classifier.

@dataclasses.dataclass(frozen=True)
class CueClassifierConfig:
  """A cue classifier: features in, P(live) out."""
  cue: str = "colour"
  n_features: int = 9
  hidden: int = 16          # 0: logistic regression
  learning_rate: float = 1e-2
  weight_decay: float = 1e-3
  steps: int = 600
  seed: int = 0

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "CueClassifierConfig":
    return config_lib.from_dict(cls, d)


def init_params(key: jax.Array, cfg: CueClassifierConfig) -> dict[str, Any]:
  n, h = cfg.n_features, cfg.hidden
  k1, k2 = jax.random.split(key)
  p: dict[str, Any] = {"mean": jnp.zeros((n,)), "std": jnp.ones((n,)),
                       "calib": jnp.array([1.0, 0.0])}
  if h:
    p["w1"] = jax.random.normal(k1, (n, h)) / np.sqrt(n)
    p["b1"] = jnp.zeros((h,))
    p["w2"] = jax.random.normal(k2, (h,)) / np.sqrt(h)
  else:
    p["w2"] = jnp.zeros((n,))
  p["b2"] = jnp.zeros(())
  return p


def logits(params: dict[str, Any], x: jax.Array) -> jax.Array:
  """Uncalibrated logits ``[...]`` of features ``[..., n]``."""
  z = (x - params["mean"]) / params["std"]
  if "w1" in params:
    z = jax.nn.gelu(z @ params["w1"] + params["b1"])
  return z @ params["w2"] + params["b2"]


LOG_ODDS_BOUND = 30.0


def bound_log_odds(z: ArrayLike) -> jax.Array:
  """``30 * tanh(z / 30)``: strictly increasing, identity near 0, and bounded so that
  ``sigmoid`` of it is never exactly 0 or 1 (scores keep their order: nothing ties)."""
  z = jnp.asarray(z)
  return LOG_ODDS_BOUND * jnp.tanh(z / LOG_ODDS_BOUND)


def log_odds(params: dict[str, Any], x: ArrayLike) -> jax.Array:
  """Calibrated, bounded log-odds of "live": ``bound(a * logit + b)`` (float32 inputs)."""
  a, b = params["calib"][0], params["calib"][1]
  return bound_log_odds(a * logits(params, jnp.asarray(x, jnp.float32)) + b)


def probability(params: dict[str, Any], x: ArrayLike) -> jax.Array:
  """Calibrated P(live) = ``sigmoid(log_odds)`` (float32: values beyond about +-17 log-odds
  round to 0 or 1 here; rank with :func:`log_odds`, which never ties)."""
  return jax.nn.sigmoid(log_odds(params, x))


def _bce(z, y):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(z, y))


def fit(cfg: CueClassifierConfig, x_train: np.ndarray, y_train: np.ndarray,
        x_cal: np.ndarray, y_cal: np.ndarray) -> tuple[dict[str, Any], dict[str, float]]:
  """Trains with optax (AdamW, full batch) and Platt-calibrates on ``(x_cal, y_cal)``.

  Returns ``(params, metrics)``; metrics hold train/calibration loss and accuracy.
  """
  x = np.asarray(x_train, np.float32)
  y = np.asarray(y_train, np.float32)
  if x.ndim != 2 or x.shape[1] != cfg.n_features or len(x) != len(y):
    raise InputError(f"features must be [N, {cfg.n_features}] with N labels, got {x.shape} "
                     f"and {np.shape(y)}")
  if len(np.unique(y)) < 2:
    raise InputError("training labels must hold both live (1) and spoof (0) samples")
  params = init_params(jax.random.key(cfg.seed), cfg)
  params["mean"] = jnp.asarray(x.mean(0))
  params["std"] = jnp.asarray(x.std(0) + 1e-3)
  frozen = {"mean", "std", "calib"}
  train = {k: v for k, v in params.items() if k not in frozen}
  fixed = {k: v for k, v in params.items() if k in frozen}
  # Balance the classes (more spoof kinds than live).
  wpos = 0.5 / max(y.mean(), 1e-6)
  wneg = 0.5 / max(1 - y.mean(), 1e-6)
  wts = jnp.asarray(np.where(y > 0.5, wpos, wneg), jnp.float32)
  opt = optax.adamw(cfg.learning_rate, weight_decay=cfg.weight_decay)
  xj, yj = jnp.asarray(x), jnp.asarray(y)

  def loss_fn(tp):
    z = logits({**fixed, **tp}, xj)
    return jnp.mean(wts * optax.sigmoid_binary_cross_entropy(z, yj))

  @jax.jit
  def run(tp):
    def step(carry, _):
      tp, st = carry
      l, g = jax.value_and_grad(loss_fn)(tp)
      up, st = opt.update(g, st, tp)
      return (optax.apply_updates(tp, up), st), l
    (tp, _), losses = jax.lax.scan(step, (tp, opt.init(tp)), None, length=cfg.steps)
    return tp, losses

  train, losses = run(train)
  params = {**fixed, **train}
  # Platt scaling on the calibration split (a, b by Newton-free gradient descent).
  zc = logits(params, jnp.asarray(x_cal, jnp.float32))
  yc = jnp.asarray(y_cal, jnp.float32)
  # Balanced calibration: P(live) at an even prior, whatever the split's class mix.
  pc_ = float(np.mean(np.asarray(y_cal)))
  wc = jnp.where(yc > 0.5, 0.5 / max(pc_, 1e-6), 0.5 / max(1 - pc_, 1e-6))

  @jax.jit
  def calib(ab):
    opt2 = optax.adam(0.05)

    def step(carry, _):
      ab, st = carry
      g = jax.grad(lambda v: jnp.mean(wc * optax.sigmoid_binary_cross_entropy(
          v[0] * zc + v[1], yc)) + 1e-3 * (v[0] - 1) ** 2)(ab)
      up, st = opt2.update(g, st, ab)
      return (optax.apply_updates(ab, up), st), None
    (ab, _), _ = jax.lax.scan(step, (ab, opt2.init(ab)), None, length=400)
    return ab

  params["calib"] = calib(jnp.array([1.0, 0.0]))
  pt = np.asarray(probability(params, x))
  pc = np.asarray(probability(params, x_cal))
  metrics = {"train_loss": float(losses[-1]),
             "train_accuracy": float(np.mean((pt >= 0.5) == (y > 0.5))),
             "calibration_bce": float(_bce(jnp.log(pc + 1e-7) - jnp.log1p(-pc + 1e-7), yc)),
             "calibration_accuracy": float(np.mean((pc >= 0.5) == (np.asarray(y_cal) > 0.5))),
             "calib_a": float(params["calib"][0]), "calib_b": float(params["calib"][1])}
  return params, metrics


@dataclasses.dataclass
class CueModel:
  """A trained cue classifier: its config, parameters and training metrics."""
  config: CueClassifierConfig
  params: dict[str, Any]
  metrics: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __call__(self, features: ArrayLike) -> np.ndarray:
    x = np.asarray(features, np.float32)
    if x.shape[-1] != self.config.n_features:
      raise InputError(f"{self.config.cue} cue expects {self.config.n_features} features, "
                       f"got {x.shape[-1]}")
    return np.asarray(probability(self.params, x))

  def log_odds(self, features: ArrayLike) -> np.ndarray:
    """Calibrated, bounded log-odds of "live" (:func:`log_odds`), float64."""
    x = np.asarray(features, np.float32)
    if x.shape[-1] != self.config.n_features:
      raise InputError(f"{self.config.cue} cue expects {self.config.n_features} features, "
                       f"got {x.shape[-1]}")
    return np.asarray(log_odds(self.params, x), np.float64)

  def export(self, directory: str | os.PathLike, feature_config: FeatureConfig) -> None:
    from palmjax.checkpointing import export_model
    export_model(directory, self.params,
                 {"classifier": self.config.to_dict(),
                  "features": dataclasses.asdict(feature_config)}, self.metrics)

  @classmethod
  def load(cls, directory: str | os.PathLike) -> tuple["CueModel", FeatureConfig]:
    from palmjax.checkpointing import load_exported

    def abstract(config):
      c = CueClassifierConfig.from_dict(config["classifier"])
      return jax.eval_shape(lambda: init_params(jax.random.key(0), c))

    params, config, metrics = load_exported(directory, abstract)
    fc = config.get("features", {})
    fc = FeatureConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fc.items()})
    return cls(CueClassifierConfig.from_dict(config["classifier"]), params, metrics), fc
