"""Super-resolution training data: (interpolated low-res, high-res) pairs from image folders.

Each image becomes one pair under the SR protocol (modcrop to the scale, bicubic down and
back up, see :func:`palmjax.kernels.bicubic_degrade`), kept on the host. Random patches are
cut from the pool by :class:`PatchSampler` with indices drawn from an explicit
``jax.random`` key, so the batch at step ``s`` is a pure function of ``(key, s)`` (drawn for
blocks of steps in one jitted call): a resumed run sees exactly the batches an
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


class PatchSampler:
  """Keyed draws of ``(input, target)`` patch batches from a :class:`PairPool`.

  The batch of a step is a pure function of its key: :meth:`rows` draws, for each of
  ``batch`` samples, an image (probability proportional to its number of patch positions),
  the patch's top-left corner and one of the 8 dihedral transforms (0: none when
  ``augment`` is off) in one jittable function; :meth:`cut` gathers the patches on the host
  with one vectorised index per block (the dihedral transform is folded into the gather
  index). ``draw_block(key, start, n)`` is both for the steps ``start .. start+n-1`` (step
  ``s`` from ``fold_in(key, s)``, see :func:`palmjax.train_loop.block_draw`).

  Args:
    pool: the pairs.
    batch: patches per step.
    size: side of the input patch.
    crop: the target is the input window's central ``size - 2 * crop`` square (the part a
      valid convolution network predicts); 0 keeps the whole window.
    augment: apply a random dihedral transform per patch.
  """

  def __init__(self, pool: PairPool, batch: int, size: int, *, crop: int = 0,
               augment: bool = True):
    if size > pool.min_side:
      raise InputError(f"patch size {size} exceeds the smallest training image side "
                       f"{pool.min_side}")
    if not 0 <= 2 * crop < size:
      raise InputError(f"crop {crop} leaves no target inside a {size}-pixel patch")
    self.batch, self.size, self.crop, self.augment = batch, size, crop, augment
    self.heights = np.array([t.shape[0] for t in pool.targets], np.int64)
    self.widths = np.array([t.shape[1] for t in pool.targets], np.int64)
    areas = self.heights * self.widths
    self.offsets = np.concatenate([[0], np.cumsum(areas)[:-1]])
    c = pool.targets[0].shape[-1]
    self.inputs = np.concatenate([x.reshape(-1, c) for x in pool.inputs])
    self.targets = np.concatenate([y.reshape(-1, c) for y in pool.targets])
    weights = (self.heights - size + 1) * (self.widths - size + 1)
    self._probs = jnp.asarray(weights / weights.sum(), jnp.float32)
    self._spans = jnp.asarray(np.stack([self.heights, self.widths], 1) - size + 1, jnp.int32)
    # Source (row, col) inside the window of every output pixel, per dihedral transform.
    grid = np.arange(size * size).reshape(size, size)
    self._perm = np.stack([_dihedral(grid, k) for k in range(8)])
    from palmjax.train_loop import block_draw
    self._rows_block = block_draw(self.rows)

  def rows(self, key: jax.Array) -> jax.Array:
    """One step's ``[batch, 4]`` int32 rows ``(image, top, left, dihedral)`` (jittable)."""
    k_img, k_y, k_x, k_aug = jax.random.split(key, 4)
    img = jax.random.choice(k_img, len(self.heights), (self.batch,), p=self._probs)
    span = self._spans[img]
    u = jnp.stack([jax.random.uniform(k_y, (self.batch,)),
                   jax.random.uniform(k_x, (self.batch,))], 1)
    corner = jnp.minimum((u * span).astype(jnp.int32), span - 1)
    aug = (jax.random.randint(k_aug, (self.batch,), 0, 8) if self.augment
           else jnp.zeros((self.batch,), jnp.int32))
    return jnp.concatenate([img[:, None], corner, aug[:, None]], 1).astype(jnp.int32)

  def cut(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Patches for rows ``[..., 4]``: inputs ``[..., size, size, C]``, targets cropped."""
    rows = np.asarray(rows, np.int64)
    img, top, left, aug = (rows[..., i] for i in range(4))
    w = self.widths[img][..., None, None]
    base = (self.offsets[img] + top * self.widths[img] + left)[..., None, None]
    perm = self._perm[aug]
    flat = base + (perm // self.size) * w + perm % self.size
    r = self.crop
    return self.inputs[flat], self.targets[flat[..., r:self.size - r, r:self.size - r]]

  def draw_block(self, key: jax.Array, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The batches of steps ``start .. start+n-1`` stacked: ``[n, batch, ...]`` each."""
    return self.cut(np.asarray(self._rows_block(key, start, n)))


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
  """The ``k``-th (0-7) of the 8 dihedral transforms of an ``[H, W, ...]`` array."""
  if k >= 4:
    x = x[:, ::-1]
  return np.rot90(x, k % 4)
