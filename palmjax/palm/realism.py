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
* ``pixels``: the image area-averaged to ``16 x 16``.

Real images are loaded with a small, self-contained preprocessing (:func:`prepare_real`):
grey, crop to the hand's bounding box (Otsu threshold on the intensity) with a margin,
pad to a square with black and resample to the capture size.
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


FEATURE_SETS = {"stats": image_stats, "pixels": downsampled_pixels}


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
  Returns ``{"auc": pooled out-of-fold AUC, "fold_aucs": [...], "scores": [...]}``.
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
  return {"auc": roc_auc(scores, y), "fold_aucs": fold_aucs, "scores": scores}


def realism_aucs(real: ArrayLike, sim: ArrayLike, *, folds: int = 5,
                 seed: int = 0) -> dict[str, float]:
  """Cross-validated AUC per feature set of real (``[N, S, S]``) vs simulated images."""
  real, sim = np.asarray(real, np.float32), np.asarray(sim, np.float32)
  if real.ndim != 3 or sim.ndim != 3 or real.shape[1:] != sim.shape[1:]:
    raise InputError(f"real {real.shape} and simulated {sim.shape} images must both be "
                     "[N, S, S] of one size")
  both = np.concatenate([real, sim])
  y = np.concatenate([np.ones(len(real)), np.zeros(len(sim))])
  out = {}
  for name, fn in FEATURE_SETS.items():
    out[name] = cross_validated_auc(np.asarray(fn(both)), y, folds=folds, seed=seed)["auc"]
  return out


# ---------------------------------------------------------------------------------------
# Real images.
# ---------------------------------------------------------------------------------------

def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
  """Otsu's threshold of values in [0, 1] (maximises the between-class variance)."""
  hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
  p = hist.astype(np.float64) / max(hist.sum(), 1)
  centres = 0.5 * (edges[:-1] + edges[1:])
  w0 = np.cumsum(p)
  m0 = np.cumsum(p * centres)
  mt = m0[-1]
  with np.errstate(divide="ignore", invalid="ignore"):
    between = (mt * w0 - m0) ** 2 / (w0 * (1.0 - w0))
  between[~np.isfinite(between)] = 0.0
  return float(edges[int(np.argmax(between)) + 1])


def prepare_real(grey: np.ndarray, size: int, *, margin: float = 0.05) -> np.ndarray:
  """Crop a radiograph ``[H, W]`` in [0, 1] to the hand, pad square (black), resample.

  The hand is the bounding box of pixels above the Otsu threshold (rows / columns with at
  least 0.5 % foreground, so isolated bright specks do not widen it), grown by ``margin``
  of its size on every side (clipped to the image).
  """
  from PIL import Image

  g = np.asarray(grey, np.float32)
  if g.ndim != 2 or min(g.shape) < 8:
    raise InputError(f"expected a grey image of at least 8 x 8 pixels, got {g.shape}")
  fg = g > otsu_threshold(g)
  rows = np.flatnonzero(fg.mean(1) >= 0.005)
  cols = np.flatnonzero(fg.mean(0) >= 0.005)
  if len(rows) and len(cols):
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    mr, mc = int(margin * (r1 - r0)), int(margin * (c1 - c0))
    g = g[max(r0 - mr, 0):r1 + mr, max(c0 - mc, 0):c1 + mc]
  h, w = g.shape
  side = max(h, w)
  sq = np.zeros((side, side), np.float32)
  sq[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = g
  out = Image.fromarray(sq, mode="F").resize((size, size), Image.Resampling.BOX)
  return np.clip(np.asarray(out, np.float32), 0.0, 1.0)


def load_real(directory: str, size: int, *, limit: int | None = None,
              seed: int = 0) -> tuple[np.ndarray, list[str]]:
  """Real radiographs of ``directory`` (PNG / JPEG / TIFF) prepared to ``[N, size, size]``.

  With ``limit``, a seeded random subset of that many files.
  """
  from palmjax.io import IMAGE_SUFFIXES, list_images, load_image

  paths = list_images(directory, suffixes=tuple(s for s in IMAGE_SUFFIXES if s != ".bmp"))
  if limit is not None and limit < len(paths):
    pick = np.sort(np.random.default_rng(seed).choice(len(paths), limit, replace=False))
    paths = [paths[i] for i in pick]
  out = np.stack([prepare_real(load_image(p, channels=1).pixels[..., 0], size)
                  for p in paths])
  return out, paths


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

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


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


def realism_test(real_dir: str, *, n_sim: int | None = None, seed: int = 0,
                 limit: int | None = None, style: str | None = None, which: str = "lr",
                 folds: int = 5, sim=None) -> RealismReport:
  """Loads the real images, draws as many simulated live captures and returns the AUCs."""
  from palmjax.data import palm_xray

  if sim is None:
    sim = palm_xray.PalmXrayConfig() if style is None else palm_xray.PalmXrayConfig(
        style=style)
  if which not in ("lr", "hr"):
    raise InputError(f"which must be 'lr' or 'hr', got {which!r}")
  size = sim.lr_size if which == "lr" else sim.size
  real, _ = load_real(real_dir, size, limit=limit, seed=seed)
  n_sim = len(real) if n_sim is None else n_sim
  if n_sim < folds:
    raise InputError(f"--n-sim must be >= {folds}, got {n_sim}")
  simulated = simulated_live(jax.random.key(seed), n_sim, sim, which=which)
  aucs = realism_aucs(real, simulated, folds=folds, seed=seed)
  return RealismReport(len(real), n_sim, size, sim.style, aucs)


def summary_table(rep: RealismReport) -> str:
  lines = [f"real {rep.n_real} vs simulated live {rep.n_sim} (style {rep.style}, "
           f"{rep.size} px): cross-validated ROC AUC (0.5 = indistinguishable)",
           "| features | AUC |", "|---|---|"]
  lines += [f"| {k} | {v:.3f} |" for k, v in rep.aucs.items()]
  return "\n".join(lines)
