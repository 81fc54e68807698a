"""Super-resolution training data: (interpolated low-res, high-res) pairs from image folders.

Each image becomes one pair under the SR protocol (modcrop to the scale, bicubic down and
back up, see :func:`palmjax.kernels.bicubic_degrade`), kept on the host. Random patches are
cut from the pool with indices drawn from an explicit ``jax.random`` key, so the batch at
step ``s`` is a pure function of ``(key, s)``: a resumed run sees exactly the batches an
uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from palmjax.errors import InputError
from palmjax.io import list_images, load_image
from palmjax.kernels import bicubic_degrade, modcrop, rgb_to_y

# Sample images that ship inside the scikit-image wheel (no download): the embedded default.
EMBEDDED_TRAIN = ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "rocket.jpg",
                  "brick.png", "grass.png", "gravel.png", "motorcycle_left.png", "page.png",
                  "moon.png", "hubble_deep_field.jpg", "retina.jpg", "text.png")
EMBEDDED_VALID = ("ihc.png", "coins.png", "cell.png")


def embedded_image_paths(names: Sequence[str] = EMBEDDED_TRAIN) -> list[str]:
  """Paths of scikit-image's bundled sample images (present in every install)."""
  import skimage.data
  root = os.path.dirname(skimage.data.__file__)
  paths = [os.path.join(root, n) for n in names if os.path.exists(os.path.join(root, n))]
  if not paths:
    raise InputError(f"none of the embedded sample images {names} found in {root}")
  return paths


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
  """``[H, W, 1|3]`` in [0, 1] -> the model's input space: Y (BT.601, /255) or RGB."""
  if channels == 1:
    return pixels if pixels.shape[-1] == 1 else np.asarray(rgb_to_y(pixels))
  if pixels.shape[-1] == 1:
    return np.repeat(pixels, 3, axis=-1)
  return pixels


@functools.lru_cache(maxsize=None)
def _degrade_fn(scale: int):
  return jax.jit(lambda x: bicubic_degrade(x, scale))


def make_pair(pixels: np.ndarray, scale: int, channels: int = 1,
              name: str = "image") -> tuple[np.ndarray, np.ndarray]:
  """One SR pair: ``(interpolated, high_res)``, both ``[H', W', channels]`` float32."""
  if scale < 2:
    raise InputError(f"scale must be an integer >= 2, got {scale}")
  hr = modcrop(to_channels(pixels, channels), scale)
  if min(hr.shape[:2]) < 2 * scale:
    raise InputError(f"{name}: image {pixels.shape[0]}x{pixels.shape[1]} is too small for "
                     f"scale {scale}")
  _, up = _degrade_fn(scale)(jnp.asarray(hr))
  return np.asarray(up, np.float32), np.asarray(hr, np.float32)


@dataclasses.dataclass
class PairPool:
  """SR pairs of one scale kept on the host, with per-image sampling weights (area)."""

  inputs: list[np.ndarray]
  targets: list[np.ndarray]
  names: list[str]
  scale: int

  @property
  def min_side(self) -> int:
    return min(min(t.shape[:2]) for t in self.targets)

  def __len__(self) -> int:
    return len(self.targets)


def load_pool(paths: Sequence[str], scale: int, channels: int = 1, *,
              min_size: int = 1, progress: bool = False) -> PairPool:
  """Loads and degrades every image in ``paths``; raises naming any bad file."""
  if not paths:
    raise InputError("no images given")
  inputs, targets, names = [], [], []
  it = paths
  if progress:
    from tqdm.auto import tqdm
    it = tqdm(paths, desc=f"preparing x{scale} pairs", unit="img", leave=False)
  for p in it:
    img = load_image(p, min_size=max(min_size, 2 * scale))
    up, hr = make_pair(img.pixels, scale, channels, name=p)
    inputs.append(up)
    targets.append(hr)
    names.append(os.path.basename(p))
  return PairPool(inputs, targets, names, scale)


def folder_paths(directory: str | os.PathLike | None) -> list[str]:
  """Images of a folder, or the embedded default when ``directory`` is None."""
  return embedded_image_paths() if directory is None else list_images(directory)


def sample_indices(key: jax.Array, pool: PairPool, batch: int, size: int) -> np.ndarray:
  """Draws ``batch`` rows ``(image, top, left, dihedral)`` for patches of ``size``.

  Images are chosen with probability proportional to the number of patch positions.
  """
  if size > pool.min_side:
    raise InputError(f"patch size {size} exceeds the smallest training image side "
                     f"{pool.min_side}")
  hs = np.array([t.shape[0] for t in pool.targets])
  ws = np.array([t.shape[1] for t in pool.targets])
  weights = (hs - size + 1) * (ws - size + 1)
  k_img, k_y, k_x, k_aug = jax.random.split(key, 4)
  img = jax.random.choice(k_img, len(pool), (batch,), p=jnp.asarray(weights / weights.sum()))
  img = np.asarray(img)
  u_y = np.asarray(jax.random.uniform(k_y, (batch,)))
  u_x = np.asarray(jax.random.uniform(k_x, (batch,)))
  top = np.minimum((u_y * (hs[img] - size + 1)).astype(np.int64), hs[img] - size)
  left = np.minimum((u_x * (ws[img] - size + 1)).astype(np.int64), ws[img] - size)
  aug = np.asarray(jax.random.randint(k_aug, (batch,), 0, 8))
  return np.stack([img, top, left, aug], axis=1)


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
  if k >= 4:
    x = x[:, ::-1]
  return np.rot90(x, k % 4)


def sample_batch(key: jax.Array, pool: PairPool, batch: int, size: int, *,
                 augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """A batch of ``(inputs, targets)`` patches ``[batch, size, size, C]`` from ``key``."""
  rows = sample_indices(key, pool, batch, size)
  xs, ys = [], []
  for i, t, l, a in rows:
    x = pool.inputs[i][t:t + size, l:l + size]
    y = pool.targets[i][t:t + size, l:l + size]
    if augment:
      x, y = _dihedral(x, a), _dihedral(y, a)
    xs.append(x)
    ys.append(y)
  return np.ascontiguousarray(np.stack(xs)), np.ascontiguousarray(np.stack(ys))
