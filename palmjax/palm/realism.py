"""Real-vs-simulated two-sample test: how well can a classifier tell real radiographs from
simulated live captures?

A cross-validated logistic regression is trained to separate real images (label 1) from
simulated live captures (label 0) on two feature sets, and its out-of-fold ROC AUC is the
realism figure: 0.5 means the two samples are indistinguishable to that classifier, 1.0
means they are perfectly separable. Every real image is its own subject, so the folds are
subject-disjoint by construction.

Feature sets (all on images ``[N, S, S]`` in [0, 1] at the model's capture size):

* ``stats``: a 16-bin intensity histogram, mean and standard deviation, the log-log slope
  of the radially averaged power spectrum, a noise level estimate (J. Immerkaer, "Fast
  noise variance estimation", CVIU 64(2), 1996), the background fraction (pixels at or
  below :data:`BACKGROUND_LEVEL`) and the clipping fraction (pixels at or above
  :data:`CLIP_LEVEL`);
* ``pixels``: the image area-averaged to ``16 x 16``;
* ``layout``: the quality gate's binary hand mask (:func:`palmjax.palm.quality.hand_mask`)
  area-averaged to ``16 x 16``: where the hand is, with no intensity at all. A diagnostic
  that splits the pixel figure into "where" and "what": the realism target is set on
  ``stats`` and ``pixels``.

Where in the frame a feature set separates the two samples, :func:`region_scores` (the
command's ``--regions``): the same test on parts of the 16x16 grid (top and bottom rows,
the outer ring and the centre, the row and column profiles, a 2x2 grid).

Beside the AUC, the test reports the out-of-fold log-loss (mean cross-entropy in nats of the
held-out predictions; ``ln 2 = 0.693`` is a constant guess, higher is worse than one). The
AUC saturates near 1 when the samples are far apart; the log-loss still moves as they come
closer, so a change to the simulator that does not yet show in the AUC shows there.

Real images are read exactly as the palm detector reads them (one preprocessing home):
a folder through the clinical loader :func:`palmjax.palm.clinical.load_capture` (decode,
find the hand, crop it with a margin, area-resample to the capture size; a file that
already has the capture size is used as it is), or a split of the ``hand_radiographs``
TFDS builder (:mod:`palmjax.data.hand_radiographs_tfds`, built by the same loader).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import InputError
from palmjax.kernels.filters import separable_filter
from palmjax.metrics.pad import roc_auc

HIST_BINS = 16
BACKGROUND_LEVEL = 0.02
CLIP_LEVEL = 0.995
PIXEL_GRID = 16
STAT_NAMES = tuple([f"hist_{i:02d}" for i in range(HIST_BINS)]
                   + ["mean", "std", "spectrum_slope", "noise", "background", "clipped"])


# ---------------------------------------------------------------------------------------
# Features (jittable, batched over the leading axis).
# ---------------------------------------------------------------------------------------

def _radial_bins(n: int) -> tuple[np.ndarray, np.ndarray]:
  """Integer radius of every FFT bin of an ``n x n`` image and the radii used in the fit."""
  f = np.fft.fftfreq(n) * n
  r = np.rint(np.hypot(f[:, None], f[None, :])).astype(np.int32)
  return r, np.arange(2, n // 2)


def spectrum_slope(images: ArrayLike) -> jax.Array:
  """Least-squares slope of ``log P(f)`` vs ``log f`` of the radially averaged power.

  ``P`` is the squared FFT magnitude of the mean-removed image averaged over rings of
  integer radius ``f`` (cycles per image), fitted over ``2 <= f < n / 2``.
  """
  x = jnp.asarray(images, jnp.float32)
  n = x.shape[-1]
  r, radii = _radial_bins(n)
  power = jnp.abs(jnp.fft.fft2(x - jnp.mean(x, axis=(-2, -1), keepdims=True))) ** 2
  onehot = (r.reshape(-1)[:, None] == radii[None, :]).astype(np.float32)   # [n*n, R]
  ring = (power.reshape(x.shape[0], -1) @ onehot) / onehot.sum(0)
  lx = np.log(radii.astype(np.float64))
  lx = (lx - lx.mean()).astype(np.float32)
  ly = jnp.log(ring + 1e-20)  # +tiny: a constant image has zero power
  return (ly - jnp.mean(ly, axis=1, keepdims=True)) @ lx / float(lx @ lx)


def noise_level(images: ArrayLike) -> jax.Array:
  """Immerkaer's noise standard deviation: ``sqrt(pi/2) / (6 (W-2)(H-2)) sum |I * M|``.

  ``M = [1, -2, 1]^T [1, -2, 1]`` (a difference of two Laplacians) cancels smooth structure.
  """
  x = jnp.asarray(images, jnp.float32)[..., None]
  lap = separable_filter(x, np.array([1.0, -2.0, 1.0]), mode="valid")[..., 0]
  h, w = x.shape[1], x.shape[2]
  return math.sqrt(math.pi / 2.0) / (6.0 * (h - 2) * (w - 2)) * jnp.sum(jnp.abs(lap),
                                                                         axis=(1, 2))


@jax.jit
def image_stats(images: ArrayLike) -> jax.Array:
  """The ``stats`` feature set ``[N, len(STAT_NAMES)]`` of images ``[N, S, S]``."""
  x = jnp.asarray(images, jnp.float32)
  flat = x.reshape(x.shape[0], -1)
  idx = jnp.clip(jnp.floor(flat * HIST_BINS).astype(jnp.int32), 0, HIST_BINS - 1)
  hist = jnp.mean(jax.nn.one_hot(idx, HIST_BINS, dtype=jnp.float32), axis=1)
  return jnp.concatenate([
      hist, jnp.mean(flat, 1)[:, None], jnp.std(flat, 1)[:, None],
      spectrum_slope(x)[:, None], noise_level(x)[:, None],
      jnp.mean(flat <= BACKGROUND_LEVEL, 1)[:, None],
      jnp.mean(flat >= CLIP_LEVEL, 1)[:, None]], axis=1)


def downsampled_pixels(images: ArrayLike, grid: int = PIXEL_GRID) -> jax.Array:
  """The ``pixels`` feature set: images area-averaged to ``grid x grid``, flattened."""
  x = jnp.asarray(images, jnp.float32)
  n, s = x.shape[0], x.shape[-1]
  if s % grid:
    raise InputError(f"image size {s} is not a multiple of the pixel grid {grid}")
  k = s // grid
  return x.reshape(n, grid, k, grid, k).mean(axis=(2, 4)).reshape(n, -1)


def layout_pixels(images: ArrayLike, grid: int = PIXEL_GRID) -> jax.Array:
  """The ``layout`` feature set: the gate's hand mask of every image, area-averaged to
  ``grid x grid`` (the fraction of each cell that is hand), flattened."""
  from palmjax.palm.quality import hand_mask

  x = jnp.asarray(images, jnp.float32)[..., None]
  return downsampled_pixels(hand_mask(x).astype(jnp.float32), grid)


FEATURE_SETS = {"stats": image_stats, "pixels": downsampled_pixels, "layout": layout_pixels}


# ---------------------------------------------------------------------------------------
# Logistic regression and cross-validation (NumPy).
# ---------------------------------------------------------------------------------------

def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0,
                 iters: int = 50) -> tuple[np.ndarray, float]:
  """L2-penalised logistic regression by Newton's method; returns ``(w, b)``.

  Minimises ``sum_i log(1 + exp(-s_i (x_i w + b))) + l2 / 2 |w|^2`` (``s = 2 y - 1``; the
  bias is not penalised). Features should be standardised.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  n, d = x.shape
  xa = np.concatenate([x, np.ones((n, 1))], axis=1)
  reg = np.full(d + 1, l2)
  reg[-1] = 1e-8
  theta = np.zeros(d + 1)
  for _ in range(iters):
    p = 1.0 / (1.0 + np.exp(-np.clip(xa @ theta, -30, 30)))
    grad = xa.T @ (p - y) + reg * theta
    hess = (xa * (p * (1 - p))[:, None]).T @ xa + np.diag(reg)
    step = np.linalg.solve(hess, grad)
    theta -= step
    if np.max(np.abs(step)) < 1e-8:
      break
  return theta[:-1], float(theta[-1])


def _folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
  """Stratified fold index of every sample (each class shuffled and dealt round-robin)."""
  rng = np.random.default_rng(seed)
  fold = np.empty(len(y), np.int64)
  for c in (0, 1):
    idx = np.flatnonzero(y == c)
    fold[rng.permutation(idx)] = np.arange(len(idx)) % k
  return fold


def cross_validated_auc(x: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0,
                        l2: float = 1.0) -> dict[str, Any]:
  """Out-of-fold ROC AUC of a logistic regression telling ``y == 1`` from ``y == 0``.

  Each fold's model sees the features standardised with its own training statistics.
  Returns ``{"auc": pooled out-of-fold AUC, "log_loss": mean out-of-fold cross-entropy
  (nats), "fold_aucs": [...], "scores": [...]}`` (``scores``: the out-of-fold logits).
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y).astype(np.int64)
  if x.ndim != 2 or len(x) != len(y):
    raise InputError(f"features {x.shape} and labels {y.shape} do not match")
  if min(np.sum(y == 0), np.sum(y == 1)) < folds:
    raise InputError(f"need at least {folds} samples of each class for {folds}-fold CV")
  fold = _folds(y, folds, seed)
  scores = np.empty(len(y))
  fold_aucs = []
  for f in range(folds):
    tr, te = fold != f, fold == f
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8
    w, b = fit_logistic((x[tr] - mu) / sd, y[tr], l2=l2)
    scores[te] = ((x[te] - mu) / sd) @ w + b
    fold_aucs.append(roc_auc(scores[te], y[te]))
  # Cross-entropy of the held-out logits z: log(1 + exp(-z)) for y = 1, log(1 + exp(z)) for 0.
  log_loss = float(np.mean(np.logaddexp(0.0, np.where(y == 1, -scores, scores))))
  return {"auc": roc_auc(scores, y), "log_loss": log_loss, "fold_aucs": fold_aucs,
          "scores": scores}


def _pooled(real: ArrayLike, sim: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
  """Real and simulated images ``[N, S, S]`` of one size stacked, and their labels (1 real)."""
  real, sim = np.asarray(real, np.float32), np.asarray(sim, np.float32)
  if real.ndim != 3 or sim.ndim != 3 or real.shape[1:] != sim.shape[1:]:
    raise InputError(f"real {real.shape} and simulated {sim.shape} images must both be "
                     "[N, S, S] of one size")
  return np.concatenate([real, sim]), np.concatenate([np.ones(len(real)), np.zeros(len(sim))])


def _features(images: np.ndarray, names) -> dict[str, np.ndarray]:
  """The feature sets ``names`` (keys of :data:`FEATURE_SETS`) of ``images``, each once."""
  return {name: np.asarray(FEATURE_SETS[name](images)) for name in names}


def _scores(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> dict[str, float]:
  cv = cross_validated_auc(x, y, folds=folds, seed=seed)
  return {"auc": cv["auc"], "log_loss": cv["log_loss"]}


def realism_scores(real: ArrayLike, sim: ArrayLike, *, folds: int = 5,
                   seed: int = 0) -> dict[str, dict[str, float]]:
  """Cross-validated ``{"auc", "log_loss"}`` per feature set of real (``[N, S, S]``) vs
  simulated images."""
  both, y = _pooled(real, sim)
  feats = _features(both, FEATURE_SETS)
  return {name: _scores(x, y, folds, seed) for name, x in feats.items()}


def _ring(g: np.ndarray, width: int) -> np.ndarray:
  keep = np.ones(g.shape[1:], bool)
  keep[width:-width, width:-width] = False
  return g[:, keep]


# Parts of the ``[N, G, G]`` grid (G = PIXEL_GRID), each a feature matrix ``[N, k]``.
REGIONS = {
    "whole grid": lambda g: g.reshape(len(g), -1),
    "top 2 rows": lambda g: g[:, :2].reshape(len(g), -1),
    "bottom 2 rows": lambda g: g[:, -2:].reshape(len(g), -1),
    "outer ring (3 cells)": lambda g: _ring(g, 3),
    "centre (inside the ring)": lambda g: g[:, 3:-3, 3:-3].reshape(len(g), -1),
    "row profile": lambda g: g.mean(axis=2),
    "column profile": lambda g: g.mean(axis=1),
    "2x2 grid": lambda g: g.reshape(len(g), 2, g.shape[1] // 2, 2, g.shape[2] // 2).mean(
        axis=(2, 4)).reshape(len(g), -1),
}
REGION_SETS = ("pixels", "layout")   # the grid feature sets the regions are cut from


def region_scores(real: ArrayLike, sim: ArrayLike, *, folds: int = 5, seed: int = 0
                  ) -> dict[str, dict[str, dict[str, float]]]:
  """Where the two samples differ: ``{feature set: {region: {"auc", "log_loss"}}}`` for the
  grid feature sets (``pixels``, ``layout``) restricted to each of :data:`REGIONS`."""
  both, y = _pooled(real, sim)
  return _by_region(_features(both, REGION_SETS), y, folds, seed)


def _by_region(feats: dict[str, np.ndarray], y: np.ndarray, folds: int, seed: int
               ) -> dict[str, dict[str, dict[str, float]]]:
  """:func:`region_scores` from the feature sets already computed (``feats`` holds at
  least :data:`REGION_SETS`)."""
  out = {}
  for name in REGION_SETS:
    grid = feats[name].reshape(len(y), PIXEL_GRID, PIXEL_GRID)
    out[name] = {region: _scores(cut(grid), y, folds, seed) for region, cut in REGIONS.items()}
  return out


def realism_aucs(real: ArrayLike, sim: ArrayLike, *, folds: int = 5,
                 seed: int = 0) -> dict[str, float]:
  """Cross-validated AUC per feature set of real (``[N, S, S]``) vs simulated images."""
  return {k: v["auc"] for k, v in realism_scores(real, sim, folds=folds, seed=seed).items()}


# ---------------------------------------------------------------------------------------
# Real images.
# ---------------------------------------------------------------------------------------

def load_real(directory: str, size: int, *, limit: int | None = None,
              seed: int = 0) -> tuple[np.ndarray, list[str]]:
  """Real radiographs of ``directory`` (PNG / JPEG / TIFF / DICOM) as the detector reads
  them (:func:`palmjax.palm.clinical.load_capture`), ``[N, size, size]`` in [0, 1].

  With ``limit``, a seeded random subset of that many files.
  """
  from palmjax.io import IMAGE_SUFFIXES, list_images
  from palmjax.palm.clinical import DICOM_SUFFIXES, ClinicalConfig, load_capture

  suffixes = tuple(s for s in IMAGE_SUFFIXES if s != ".bmp") + DICOM_SUFFIXES
  paths = list_images(directory, suffixes=suffixes)
  paths = _subset(paths, limit, seed)
  cfg = ClinicalConfig(size=size)
  out = np.stack([load_capture(p, cfg)[0][..., 0] for p in paths])
  return out, paths


def _subset(items: list, limit: int | None, seed: int) -> list:
  """A seeded random subset of ``limit`` items (in their order), or all of them."""
  if limit is not None and limit < len(items):
    pick = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    items = [items[i] for i in pick]
  return items


def load_real_split(manual_dir: str, data_dir: str, split: str, size: int, *,
                    config: str = "default", limit: int | None = None,
                    seed: int = 0) -> tuple[np.ndarray, list[str]]:
  """One split of the ``hand_radiographs`` builder (built once from ``manual_dir`` into
  ``data_dir``) as ``[N, size, size]`` in [0, 1] and the ``source/subject`` names.

  ``config`` is the builder config (``default``, ``shared``, ...); its capture size must be
  ``size``. With ``limit``, a seeded random subset of that many captures.
  """
  from palmjax.data.hand_radiographs_tfds import HandRadiographs, load_splits

  configs = {c.name: c for c in HandRadiographs.BUILDER_CONFIGS}
  if config not in configs:
    raise InputError(f"hand_radiographs config {config!r} is unknown; expected one of "
                     f"{sorted(configs)}")
  if configs[config].size != size:
    raise InputError(f"hand_radiographs config {config!r} holds {configs[config].size} px "
                     f"captures; the simulator's capture is {size} px")
  d = load_splits(manual_dir, data_dir, config=config, splits=[split])[split]
  idx = _subset(list(range(len(d["lr"]))), limit, seed)
  names = [f"{d['source'][i]}/{d['subject'][i]}" for i in idx]
  return d["lr"][idx, ..., 0], names


# ---------------------------------------------------------------------------------------
# The test.
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RealismReport:
  n_real: int
  n_sim: int
  size: int
  style: str
  aucs: dict[str, float]
  real: str = ""   # where the real images came from (a folder, or builder config:split)
  # Controls from the real images alone (reference_aucs), when asked for.
  reference: dict[str, dict[str, float]] | None = None
  # Out-of-fold log-loss per feature set (nats; ln 2 = a constant guess).
  log_loss: dict[str, float] | None = None
  # Per region of the grid (region_scores), when asked for.
  regions: dict[str, dict[str, dict[str, float]]] | None = None

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def reference_aucs(real: ArrayLike, *, folds: int = 5, seed: int = 0
                   ) -> dict[str, dict[str, float]]:
  """Controls for :func:`realism_aucs`, from the real images ``[N, S, S]`` alone.

  ``halves``: one random half of them against the other, the test's floor (about 0.5
  when the two are drawn from one distribution, as they are). ``mirrored``: one half
  against the other mirrored left-right, the same kind of images with only their layout
  changed (a left hand shown as a right one): how sharply each feature set sees layout.
  """
  real = np.asarray(real, np.float32)
  half = len(real) // 2
  if real.ndim != 3 or half < folds:
    raise InputError(f"the reference needs [N, S, S] real images with N >= {2 * folds} "
                     f"for {folds}-fold cross-validation, got {real.shape}")
  order = np.random.default_rng(seed).permutation(len(real))
  a, b = real[order[:half]], real[order[half:2 * half]]
  return {"halves": realism_aucs(a, b, folds=folds, seed=seed),
          "mirrored": realism_aucs(a, b[:, :, ::-1], folds=folds, seed=seed)}


def simulated_live(key: jax.Array, n: int, sim, *, which: str = "lr") -> np.ndarray:
  """``n`` simulated **live** captures ``[n, S, S]`` (``which``: ``"lr"`` or ``"hr"``)."""
  from palmjax.data import palm_xray

  out = []
  for start in range(0, n, 256):
    m = min(256, n - start)
    b = palm_xray.sample(key, m, sim, start=start,
                         attacks=np.full(m, palm_xray.LIVE, np.int32))
    out.append(np.asarray(b[which])[..., 0])
  return np.concatenate(out)


def realism_test(real_dir: str | None = None, *, manual_dir: str | None = None,
                 data_dir: str | None = None, split: str = "test", config: str = "default",
                 n_sim: int | None = None, seed: int = 0, limit: int | None = None,
                 style: str | None = None, which: str = "lr", folds: int = 5,
                 sim=None, reference: bool = False, regions: bool = False
                 ) -> RealismReport:
  """Loads the real images, draws as many simulated live captures and returns the AUCs.

  The real images are a folder (``real_dir``) or a split of the ``hand_radiographs``
  builder (``manual_dir``, ``data_dir``, ``split``, ``config``). ``reference`` adds the
  real-only controls of :func:`reference_aucs`, ``regions`` the per-region figures of
  :func:`region_scores`.
  """
  from palmjax.data import palm_xray

  if sim is None:
    sim = palm_xray.PalmXrayConfig() if style is None else palm_xray.PalmXrayConfig(
        style=style)
  if which not in ("lr", "hr"):
    raise InputError(f"which must be 'lr' or 'hr', got {which!r}")
  if (real_dir is None) == (manual_dir is None):
    raise InputError("give the real radiographs either as a folder (--real DIR) or as a "
                     "hand_radiographs split (--manual-dir DIR --data-dir DIR --split S)")
  size = sim.lr_size if which == "lr" else sim.size
  if real_dir is not None:
    real, _ = load_real(real_dir, size, limit=limit, seed=seed)
    where = real_dir
  else:
    if data_dir is None:
      raise InputError("--manual-dir needs --data-dir (where the TFDS builder is stored)")
    real, _ = load_real_split(manual_dir, data_dir, split, size, config=config,
                              limit=limit, seed=seed)
    where = f"hand_radiographs/{config}:{split}"
  if len(real) < folds:
    raise InputError(f"{len(real)} real radiographs; {folds}-fold cross-validation needs "
                     f"at least {folds}")
  n_sim = len(real) if n_sim is None else n_sim
  if n_sim < folds:
    raise InputError(f"--n-sim must be >= {folds}, got {n_sim}")
  simulated = simulated_live(jax.random.key(seed), n_sim, sim, which=which)
  # Each feature set once (the gate's masks of every image for ``layout``), for the
  # figures and the regions alike.
  both, y = _pooled(real, simulated)
  feats = _features(both, FEATURE_SETS)
  scores = {name: _scores(x, y, folds, seed) for name, x in feats.items()}
  ref = reference_aucs(real, folds=folds, seed=seed) if reference else None
  reg = _by_region(feats, y, folds, seed) if regions else None
  return RealismReport(len(real), n_sim, size, sim.style,
                       {k: v["auc"] for k, v in scores.items()}, where, ref,
                       {k: v["log_loss"] for k, v in scores.items()}, reg)


def summary_table(rep: RealismReport) -> str:
  lines = [f"real {rep.n_real} ({rep.real}) vs simulated live {rep.n_sim} (style {rep.style}, "
           f"{rep.size} px): cross-validated ROC AUC (0.5 = indistinguishable) and "
           f"log-loss (nats; {math.log(2):.3f} = a constant guess, lower = more separable)"]
  loss = rep.log_loss or {}
  cell = lambda k: f"{loss[k]:.3f}" if k in loss else "-"
  if rep.reference is None:
    lines += ["| features | AUC | log-loss |", "|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | {cell(k)} |" for k, v in rep.aucs.items()]
  else:
    h = rep.n_real // 2
    lines += [f"| features | real vs simulated | log-loss | real vs real: halves ({h} vs "
              f"{h}) | real vs real mirrored |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | {cell(k)} | {rep.reference['halves'][k]:.3f} | "
              f"{rep.reference['mirrored'][k]:.3f} |" for k, v in rep.aucs.items()]
  if rep.regions is not None:
    sets = list(rep.regions)
    lines += ["", "by region of the 16x16 grid: AUC / log-loss",
              "| region | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for region in REGIONS:
      cells = [f"{rep.regions[k][region]['auc']:.3f} / {rep.regions[k][region]['log_loss']:.3f}"
               for k in sets]
      lines.append(f"| {region} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
