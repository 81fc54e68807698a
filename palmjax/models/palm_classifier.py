"""Palm liveness classifier (palm patent step P4).

A second feature-extraction network (blocks of 3x3 conv + ReLU, then 2x2 max pooling)
followed by a classification network (global pooling, a hidden dense layer and a 2-way
softmax over ``(spoof, live)``). The probability that the image is live is the softmax's
second entry.

Two options aimed at presentation attacks whose cue is texture rather than shape (the
halftone screen and doubled quantum noise of a printed radiograph, the missing trabecular
texture of a cast):

* ``highpass_sigmas``: a fixed (not learned) forensic stem that appends, for each sigma,
  the noise residual ``x - gaussian_blur(x, sigma)`` (the shared
  :func:`palmjax.kernels.gaussian_blur`) as an extra input channel, scaled by
  ``highpass_gain``. As in image-forensics CNNs, handing the network the residual spares it
  from learning to suppress the image content before it can see the noise.
* ``pooling="mean_max_std"``: global mean, max *and* standard deviation of every feature map
  (the std is a texture energy).

``mirror_tta`` is an inference option: P(live) is averaged over the image and its
left-right mirror (the training augmentation: the other hand), which makes the prediction
mirror-invariant (see :func:`palmjax.palm.train.predict_proba`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from palmjax import config as config_lib
from palmjax.kernels.filters import gaussian_blur

POOLINGS = ("mean_max", "mean_max_std")


@dataclasses.dataclass(frozen=True)
class PalmClassifierConfig:
  features: tuple[int, ...] = (8, 16, 32, 64)  # channels of each conv block (one pool each)
  convs_per_block: int = 1
  hidden: int = 64
  channels: int = 1
  input_size: int = 64  # H = W of the image the classifier sees
  highpass_sigmas: tuple[float, ...] = ()  # fixed residual channels x - blur_sigma(x)
  highpass_gain: float = 8.0
  pooling: str = "mean_max"  # or "mean_max_std"
  mirror_tta: bool = False  # P(live) averaged over the image and its left-right mirror

  def __post_init__(self):
    if not self.features or min(self.features) < 1:
      raise ValueError(f"features must be positive channel counts, got {self.features}")
    if self.convs_per_block < 1 or self.hidden < 1:
      raise ValueError("convs_per_block and hidden must be >= 1")
    if any(not (math.isfinite(s) and s > 0) for s in self.highpass_sigmas):
      raise ValueError(f"highpass_sigmas must be finite and > 0, got {self.highpass_sigmas}")
    if self.pooling not in POOLINGS:
      raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
    if self.input_size < 2 ** len(self.features):
      raise ValueError(f"input_size {self.input_size} is too small for "
                       f"{len(self.features)} pooling stages")

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "PalmClassifierConfig":
    return config_lib.from_dict(cls, d)


def forensic_stem(x: jax.Array, sigmas: Sequence[float], gain: float = 8.0) -> jax.Array:
  """``[N, H, W, 1]`` images in [0, 1] -> ``[N, H, W, 1 + len(sigmas)]`` network input.

  Channel 0 is the image centred to [-1, 1]; channel ``1 + i`` is the noise residual
  ``gain * (x - gaussian_blur(x, sigmas[i]))`` (reflect padding, truncated at 3 sigma).
  """
  x = x.astype(jnp.float32)
  residuals = [gain * (x - gaussian_blur(x, s, truncate=3.0)) for s in sigmas]
  return jnp.concatenate([(x - 0.5) * 2.0] + residuals, axis=-1)


class PalmClassifier(nn.Module):
  """``[N, H, W, C]`` images in [0, 1] -> logits ``[N, 2]`` over (spoof, live)."""

  config: PalmClassifierConfig = PalmClassifierConfig()
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    # Centred image (zero-mean input to the first layer) plus the fixed residual channels.
    h = forensic_stem(x, cfg.highpass_sigmas, cfg.highpass_gain).astype(self.dtype)
    for i, c in enumerate(cfg.features):
      for j in range(cfg.convs_per_block):
        h = nn.relu(nn.Conv(c, (3, 3), dtype=self.dtype, name=f"conv{i}_{j}")(h))
      h = nn.max_pool(h, (2, 2), strides=(2, 2))
    pooled = [jnp.mean(h, axis=(1, 2)), jnp.max(h, axis=(1, 2))]
    if cfg.pooling == "mean_max_std":
      pooled.append(jnp.std(h.astype(jnp.float32), axis=(1, 2)).astype(self.dtype))
    h = jnp.concatenate(pooled, axis=-1)
    h = nn.relu(nn.Dense(cfg.hidden, dtype=self.dtype, name="hidden")(h))
    return nn.Dense(2, dtype=self.dtype, name="logits")(h).astype(jnp.float32)


def live_probability(logits: jax.Array) -> jax.Array:
  """P(live) from ``[..., 2]`` logits."""
  return jax.nn.softmax(logits, axis=-1)[..., 1]
