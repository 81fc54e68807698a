"""F1 similarity gate: LBP-histogram face descriptor (Ahonen, Hadid & Pietikainen 2006).

A central crop of the face (no background) is blurred slightly, converted to grey (BT.601 luma), coded with uniform LBP (P=8, R=2 by default,
:func:`palmjax.kernels.lbp`), histogrammed on a grid of cells
(:func:`palmjax.kernels.lbp_histogram`); two descriptors are compared with the chi-square
distance summed over bins and averaged over cells (each cell's chi-square lies in [0, 2]),
mapped to a similarity ``1 - d / 2`` in [0, 1]. The embedding is pluggable: any function
``image [H, W, 3] -> vector`` with a distance ``(a, b) -> [0, inf)`` and a map to [0, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import InputError
from palmjax.kernels import gaussian_blur, lbp, lbp_histogram, lbp_n_bins, rgb_to_luma


@dataclasses.dataclass(frozen=True)
class LBPDescriptorConfig:
  """Descriptor settings: LBP ``points``/``radius``, the cell ``grid``, the central crop
  (``crop`` of each side is cut, leaving the face without background) and a Gaussian
  pre-blur (``blur_sigma``, against sensor noise; 0 disables)."""
  points: int = 8
  radius: float = 2.0
  grid: tuple[int, int] = (4, 4)
  crop: float = 0.25
  blur_sigma: float = 1.0


def lbp_descriptor(image: ArrayLike, config: LBPDescriptorConfig = LBPDescriptorConfig()
                   ) -> np.ndarray:
  """Grid of uniform-LBP histograms ``[..., gy, gx, P + 2]`` of RGB image(s) ``[..., H, W, 3]``."""
  x = jnp.asarray(np.asarray(image, np.float32))
  if x.ndim < 3 or x.shape[-1] != 3:
    raise InputError(f"image: expected RGB [..., H, W, 3], got shape {x.shape}")
  n, m = x.shape[-3], x.shape[-2]
  a, b = int(config.crop * n), int(config.crop * m)
  x = x[..., a:n - a, b:m - b, :]
  if config.blur_sigma > 0:
    x = gaussian_blur(x, config.blur_sigma)
  grey = jnp.round(rgb_to_luma(jnp.clip(x, 0, 1))[..., 0] * 255)
  codes = lbp(grey, config.points, config.radius, "uniform")
  return np.asarray(lbp_histogram(codes, lbp_n_bins(config.points, "uniform"),
                                  grid=config.grid))


def chi_square(a: ArrayLike, b: ArrayLike) -> float:
  """Chi-square distance of two cell-histogram grids, mean over cells (in [0, 2])."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape:
    raise InputError(f"descriptors differ in shape: {a.shape} vs {b.shape}")
  s = a + b
  # NaN guard: empty bins (a + b == 0) contribute 0, not 0/0.
  d = np.where(s > 0, (a - b) ** 2 / np.where(s > 0, s, 1), 0.0).sum(-1)
  return float(d.mean())


@dataclasses.dataclass(frozen=True)
class Embedding:
  """A pluggable face embedding: ``embed(image)``, ``distance(a, b)``, ``to_similarity(d)``."""
  embed: Callable[[np.ndarray], np.ndarray]
  distance: Callable[[np.ndarray, np.ndarray], float]
  to_similarity: Callable[[float], float]
  name: str = "custom"


LBP_EMBEDDING = Embedding(embed=lbp_descriptor, distance=chi_square,
                          to_similarity=lambda d: float(np.clip(1.0 - d / 2.0, 0.0, 1.0)),
                          name="lbp_chi2")


def similarity(frames: ArrayLike, enrolled: ArrayLike,
               embedding: Embedding = LBP_EMBEDDING) -> float:
  """Similarity in [0, 1] between a session (mean over its frames' descriptors) and the
  enrolled image."""
  f = np.asarray(frames, np.float32)
  if f.ndim == 3:
    f = f[None]
  e = embedding.embed(np.asarray(enrolled, np.float32))
  fe = np.asarray([embedding.embed(fr) for fr in f]) if embedding is not LBP_EMBEDDING \
      else embedding.embed(f)
  d = embedding.distance(np.mean(fe, axis=0), e)
  return embedding.to_similarity(d)
