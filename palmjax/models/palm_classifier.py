"""Palm liveness classifier (palm patent step P4).

A second feature-extraction network (blocks of 3x3 conv + ReLU, then 2x2 max pooling)
followed by a classification network (global average pooling, a hidden dense layer and a
2-way softmax over ``(spoof, live)``). The probability that the image is live is the
softmax's second entry.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from palmjax import config as config_lib



@dataclasses.dataclass(frozen=True)
class PalmClassifierConfig:
  features: tuple[int, ...] = (8, 16, 32, 64)  # channels of each conv block (one pool each)
  convs_per_block: int = 1
  hidden: int = 64
  channels: int = 1
  input_size: int = 64  # H = W of the image the classifier sees

  def __post_init__(self):
    if not self.features or min(self.features) < 1:
      raise ValueError(f"features must be positive channel counts, got {self.features}")
    if self.convs_per_block < 1 or self.hidden < 1:
      raise ValueError("convs_per_block and hidden must be >= 1")
    if self.input_size < 2 ** len(self.features):
      raise ValueError(f"input_size {self.input_size} is too small for "
                       f"{len(self.features)} pooling stages")

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "PalmClassifierConfig":
    return config_lib.from_dict(cls, d)


class PalmClassifier(nn.Module):
  """``[N, H, W, C]`` images in [0, 1] -> logits ``[N, 2]`` over (spoof, live)."""

  config: PalmClassifierConfig = PalmClassifierConfig()
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cfg = self.config
    # Centre the input so that the first layer sees a zero-mean signal.
    h = (x.astype(self.dtype) - 0.5) * 2.0
    for i, c in enumerate(cfg.features):
      for j in range(cfg.convs_per_block):
        h = nn.relu(nn.Conv(c, (3, 3), dtype=self.dtype, name=f"conv{i}_{j}")(h))
      h = nn.max_pool(h, (2, 2), strides=(2, 2))
    h = jnp.concatenate([jnp.mean(h, axis=(1, 2)), jnp.max(h, axis=(1, 2))], axis=-1)
    h = nn.relu(nn.Dense(cfg.hidden, dtype=self.dtype, name="hidden")(h))
    return nn.Dense(2, dtype=self.dtype, name="logits")(h).astype(jnp.float32)


def live_probability(logits: jax.Array) -> jax.Array:
  """P(live) from ``[..., 2]`` logits."""
  return jax.nn.softmax(logits, axis=-1)[..., 1]
