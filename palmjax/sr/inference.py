"""SRCNN inference: load an exported model, super-resolve arrays and image files."""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from palmjax import checkpointing
from palmjax.assets import checkpoint_path
from palmjax.errors import InputError, check_image_array
from palmjax.io import load_image, save_image
from palmjax.kernels import bicubic_resize, rgb_to_ycbcr, ycbcr_to_rgb
from palmjax.models import SRCNN, SRCNNConfig

@dataclasses.dataclass(frozen=True)
class SRModel:
  """An SRCNN with its parameters and the scale it was trained for."""

  config: SRCNNConfig
  params: Any
  metrics: dict = dataclasses.field(default_factory=dict, compare=False)

  @property
  def scale(self) -> int:
    return self.config.scale


def default_checkpoint(scale: int) -> pathlib.Path:
  """Path of the shipped SRCNN for ``scale`` (``checkpoints/srcnn_x{scale}``)."""
  return checkpoint_path(f"srcnn_x{scale}")


def abstract_params(config: SRCNNConfig):
  x = jax.ShapeDtypeStruct((1, config.receptive_field, config.receptive_field,
                            config.channels), jnp.float32)
  return jax.eval_shape(lambda x: SRCNN(config).init(jax.random.key(0), x), x)["params"]


def load_model(path: str | os.PathLike | None = None, *, scale: int | None = None) -> SRModel:
  """Loads an exported SRCNN (``path``), or the shipped one for ``scale``."""
  if path is None:
    if scale is None:
      raise InputError("give a checkpoint path or a scale")
    path = default_checkpoint(scale)
    if not path.exists():
      raise InputError(f"no shipped checkpoint for scale {scale} at {path}; "
                       f"train one with `palmjax sr train --scale {scale}`")
  params, cfg, metrics = checkpointing.load_exported(
      path, lambda c: abstract_params(SRCNNConfig.from_dict(c)))
  config = SRCNNConfig.from_dict(cfg)
  if scale is not None and scale != config.scale:
    raise InputError(f"{path}: checkpoint was trained for x{config.scale}, not x{scale}")
  return SRModel(config, params, metrics)


@functools.partial(jax.jit, static_argnames=("config",))
def apply_srcnn(params: Any, x: jax.Array, config: SRCNNConfig) -> jax.Array:
  """SRCNN forward on interpolated ``[N, H, W, C]`` images, clipped to [0, 1]."""
  return jnp.clip(SRCNN(config).apply({"params": params}, x), 0.0, 1.0)


DEFAULT_TILE = 256  # output pixels per tile side: one compiled shape, ~30 MB of f32 activations
# Output pixels the tiled network computes per loop step. On a CPU more only costs memory:
# XLA's CPU convolutions need scratch that grows with the step (measured on a 1000x750 x3
# upscale: 512^2 pixels per step peaked 735 MB above 256^2, and ran no faster).
# Accelerators want big steps.
STEP_PIXELS = {"cpu": 256 * 256}
STEP_PIXELS_ACCELERATOR = 2048 * 2048


def _tile_shape(height: int, width: int, tile: int) -> tuple[int, int]:
  """Tile side per axis: ``tile``, or the image's side rounded up to 8 when smaller (a
  small image is one tile, not a mostly empty one)."""
  return min(tile, -(-height // 8) * 8), min(tile, -(-width // 8) * 8)


@functools.partial(jax.jit, static_argnames=("config", "tile"))
def apply_srcnn_tiled(params: Any, x: jax.Array, config: SRCNNConfig,
                      tile: int = DEFAULT_TILE) -> jax.Array:
  """:func:`apply_srcnn`, computed tile by tile so memory does not grow with the image.

  The input is padded once as the model pads it (``config.pad_mode``, by the receptive
  field radius ``r``), then cut into windows of ``tile + 2r`` pixels that overlap by
  ``2r``; the network runs VALID on each window (``pad=False``) and gives exactly that
  tile's output pixels, so the result equals the untiled one (up to float32 summation
  order). Windows past the image's bottom/right edge are filled with zeros, which only
  reach output pixels that are cut off. All tiles have one shape; a loop runs a few at a
  time (``STEP_PIXELS`` output pixels per step) and writes them into the output in place.
  """
  n, h, w, c = x.shape
  r = config.radius
  th, tw = _tile_shape(h, w, tile)
  ny, nx = -(-h // th), -(-w // tw)
  count = n * ny * nx
  mode = "constant" if config.pad_mode == "zero" else config.pad_mode
  xp = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
  xp = jnp.pad(xp, ((0, 0), (0, ny * th - h), (0, nx * tw - w), (0, 0)))
  model = SRCNN(config)
  step_pixels = STEP_PIXELS.get(jax.default_backend(), STEP_PIXELS_ACCELERATOR)
  batch = max(1, min(64, count, step_pixels // (th * tw)))

  def origin(i):
    b, rest = jnp.divmod(i, ny * nx)
    ty, tx = jnp.divmod(rest, nx)
    return b, ty * th, tx * tw

  def window(i):
    b, y, x0 = origin(i)
    return jax.lax.dynamic_slice(xp, (b, y, x0, 0), (1, th + 2 * r, tw + 2 * r, c))[0]

  def step(k, out):
    # The last step repeats tiles of the previous one rather than run a ragged batch.
    ids = jnp.minimum(k * batch + jnp.arange(batch), count - 1)
    res = jnp.clip(model.apply({"params": params}, jax.vmap(window)(ids), pad=False),
                   0.0, 1.0).astype(out.dtype)
    for j in range(batch):
      b, y, x0 = origin(ids[j])
      out = jax.lax.dynamic_update_slice(out, res[j][None], (b, y, x0, 0))
    return out

  out = jnp.zeros((n, ny * th, nx * tw, config.channels), x.dtype)
  out = jax.lax.fori_loop(0, -(-count // batch), step, out)
  return out[:, :h, :w]


@functools.partial(jax.jit, static_argnames=("config", "height", "width", "tile"))
def _super_resolve(params, low, config: SRCNNConfig, height: int, width: int,
                   tile: int | None):
  def net(x):
    if tile is None:
      return apply_srcnn(params, x, config)
    return apply_srcnn_tiled(params, x, config, tile)

  up = jnp.clip(bicubic_resize(low, height, width), 0.0, 1.0)
  if config.channels == 1 and low.shape[-1] == 3:
    ycc = rgb_to_ycbcr(up)
    y = net(ycc[..., :1] / 255.0) * 255.0
    return jnp.clip(ycbcr_to_rgb(jnp.concatenate([y, ycc[..., 1:]], axis=-1)), 0.0, 1.0)
  if config.channels == 3 and low.shape[-1] == 1:
    return jnp.mean(net(jnp.repeat(up, 3, axis=-1)), -1, keepdims=True)
  return net(up)


def _check_tile(tile: Any) -> None:
  if tile is not None and (not isinstance(tile, (int, np.integer)) or tile < 1):
    raise InputError(f"tile must be a positive integer (output pixels per side) or None, "
                     f"got {tile!r}")


def super_resolve(model: SRModel, low_res: Any, *, scale: int | None = None,
                  tile: int | None = DEFAULT_TILE) -> jax.Array:
  """Up-scales low-resolution image(s) ``[H, W, C]`` or ``[N, H, W, C]`` in [0, 1].

  Bicubic interpolation to ``scale`` x the size, then SRCNN. A Y-channel model applied to
  RGB works in YCbCr: SRCNN on Y, bicubic chroma. Output has exactly ``scale`` x the size.
  The network runs on ``tile`` x ``tile`` output tiles (:func:`apply_srcnn_tiled`, same
  result) so that its memory stays bounded; ``tile=None`` runs it on whole images.
  """
  scale = model.scale if scale is None else scale
  if not isinstance(scale, (int, np.integer)) or scale < 2:
    raise InputError(f"scale must be an integer >= 2, got {scale!r}")
  _check_tile(tile)
  x = np.asarray(low_res)
  batched = x.ndim == 4
  x = check_image_array(x, "input", batched=batched)
  if not batched:
    x = x[None]
  if x.dtype.kind in "ui":
    x = x.astype(np.float32) / np.iinfo(x.dtype).max
  out = _super_resolve(model.params, jnp.asarray(x, jnp.float32), model.config,
                       x.shape[1] * scale, x.shape[2] * scale,
                       None if tile is None else int(tile))
  return out if batched else out[0]


def upscale_file(in_path: str | os.PathLike, out_path: str | os.PathLike,
                 model: SRModel, *, scale: int | None = None,
                 tile: int | None = DEFAULT_TILE) -> tuple[int, int]:
  """Reads an image, super-resolves it and writes a PNG of exactly ``scale`` x its size.

  16-bit grey inputs are written as 16-bit PNGs. Returns the output (height, width).
  ``tile``: see :func:`super_resolve`. The up-scaled image must hold the model's receptive
  field: a smaller input (1x1, 2x2, ...) is refused, not padded into a flat guess.
  """
  _check_tile(tile)
  img = load_image(in_path, min_size=model.config.min_input_size(scale or model.scale))
  out = np.asarray(super_resolve(model, img.pixels, scale=scale, tile=tile))
  save_image(out_path, out, bit_depth=16 if img.bit_depth == 16 else 8)
  return out.shape[0], out.shape[1]
