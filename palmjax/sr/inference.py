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


@functools.partial(jax.jit, static_argnames=("config", "height", "width"))
def _super_resolve(params, low, config: SRCNNConfig, height: int, width: int):
  up = jnp.clip(bicubic_resize(low, height, width), 0.0, 1.0)
  if config.channels == 1 and low.shape[-1] == 3:
    ycc = rgb_to_ycbcr(up)
    y = apply_srcnn(params, ycc[..., :1] / 255.0, config) * 255.0
    return jnp.clip(ycbcr_to_rgb(jnp.concatenate([y, ycc[..., 1:]], axis=-1)), 0.0, 1.0)
  if config.channels == 3 and low.shape[-1] == 1:
    return jnp.mean(apply_srcnn(params, jnp.repeat(up, 3, axis=-1), config), -1,
                    keepdims=True)
  return apply_srcnn(params, up, config)


def super_resolve(model: SRModel, low_res: Any, *, scale: int | None = None) -> jax.Array:
  """Up-scales low-resolution image(s) ``[H, W, C]`` or ``[N, H, W, C]`` in [0, 1].

  Bicubic interpolation to ``scale`` x the size, then SRCNN. A Y-channel model applied to
  RGB works in YCbCr: SRCNN on Y, bicubic chroma. Output has exactly ``scale`` x the size.
  """
  scale = model.scale if scale is None else scale
  if not isinstance(scale, (int, np.integer)) or scale < 2:
    raise InputError(f"scale must be an integer >= 2, got {scale!r}")
  x = np.asarray(low_res)
  batched = x.ndim == 4
  x = check_image_array(x, "input", batched=batched)
  if not batched:
    x = x[None]
  if x.dtype.kind in "ui":
    x = x.astype(np.float32) / np.iinfo(x.dtype).max
  out = _super_resolve(model.params, jnp.asarray(x, jnp.float32), model.config,
                       x.shape[1] * scale, x.shape[2] * scale)
  return out if batched else out[0]


def upscale_file(in_path: str | os.PathLike, out_path: str | os.PathLike,
                 model: SRModel, *, scale: int | None = None) -> tuple[int, int]:
  """Reads an image, super-resolves it and writes a PNG of exactly ``scale`` x its size.

  16-bit grey inputs are written as 16-bit PNGs. Returns the output (height, width).
  """
  img = load_image(in_path)
  out = np.asarray(super_resolve(model, img.pixels, scale=scale))
  save_image(out_path, out, bit_depth=16 if img.bit_depth == 16 else 8)
  return out.shape[0], out.shape[1]
