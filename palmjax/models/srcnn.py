"""SRCNN super-resolution network (Dong et al. 2014; palm patent step P2).

Three convolutions on the bicubic-upscaled low-resolution image:

1. feature extraction: ``f1 x f1`` conv, ``n1`` filters, bias, ReLU;
2. non-linear mapping: ``f2 x f2`` conv, ``n2`` filters, bias, ReLU;
3. reconstruction: ``f3 x f3`` conv to the image's channels, bias.

The input is edge-padded by the receptive-field radius and every conv is VALID, so the
output has exactly the input's size without zero-padding artefacts at the border (the
paper trains on VALID patches only; this is the same network applied to a padded input).

``residual=True`` adds the input to the reconstruction (global residual learning, as in
VDSR): the three layers then predict the missing high frequencies. It has the same layers
and parameter count and converges far faster; ``residual=False`` is the paper's network.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from palmjax import config as config_lib



@dataclasses.dataclass(frozen=True)
class SRCNNConfig:
  """Architecture of an SRCNN; defaults are the paper's 9-5-5 with n1=64, n2=32."""

  f1: int = 9
  f2: int = 5
  f3: int = 5
  n1: int = 64
  n2: int = 32
  channels: int = 1  # 1: Y (or grey) channel; 3: RGB
  scale: int = 3  # the up-scaling factor the weights were trained for (metadata)
  residual: bool = True
  pad_mode: str = "edge"  # how the input is padded: "edge", "reflect" or "zero"

  def __post_init__(self):
    for name in ("f1", "f2", "f3"):
      v = getattr(self, name)
      if v < 1 or v % 2 == 0:
        raise ValueError(f"{name} must be a positive odd kernel size, got {v}")
    for name in ("n1", "n2"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
    if self.channels not in (1, 3):
      raise ValueError(f"channels must be 1 or 3, got {self.channels}")
    if self.scale < 2:
      raise ValueError(f"scale must be >= 2, got {self.scale}")
    if self.pad_mode not in ("edge", "reflect", "zero"):
      raise ValueError(f"pad_mode must be edge, reflect or zero, got {self.pad_mode!r}")

  @property
  def radius(self) -> int:
    """Receptive-field radius: pixels of context each output pixel sees on each side."""
    return (self.f1 - 1) // 2 + (self.f2 - 1) // 2 + (self.f3 - 1) // 2

  @property
  def receptive_field(self) -> int:
    return 2 * self.radius + 1

  def min_input_size(self, scale: int | None = None) -> int:
    """Smallest low-resolution side whose ``scale`` x up-scaling covers the receptive field
    (17 pixels for 9-5-5: 9 at x2, 6 at x3, 5 at x4); smaller inputs are refused."""
    scale = self.scale if scale is None else scale
    return -(-self.receptive_field // scale)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "SRCNNConfig":
    return config_lib.from_dict(cls, d)


class SRCNN(nn.Module):
  """SRCNN on ``[N, H, W, C]`` float images in [0, 1]; returns the same shape."""

  config: SRCNNConfig = SRCNNConfig()
  dtype: Any = jnp.float32  # compute dtype (bf16 for mixed precision); params stay f32

  @nn.compact
  def __call__(self, x: jax.Array, *, pad: bool = True) -> jax.Array:
    """Applies the network.

    Args:
      x: ``[N, H, W, C]`` interpolated low-resolution images.
      pad: pad the input so the output is ``[N, H, W, C]``. With ``pad=False`` the output
        is the valid interior ``[N, H - 2r, W - 2r, C]`` (``r`` = receptive-field radius):
        training uses this so that every computed pixel carries loss.
    """
    cfg = self.config
    r = cfg.radius
    inp = x.astype(self.dtype)
    if pad:
      mode = "constant" if cfg.pad_mode == "zero" else cfg.pad_mode
      h = jnp.pad(inp, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
    else:
      if x.shape[1] <= 2 * r or x.shape[2] <= 2 * r:
        raise ValueError(f"input {x.shape[1]}x{x.shape[2]} has no valid interior for a "
                         f"receptive field of {cfg.receptive_field}")
      h = inp
      inp = inp[:, r:x.shape[1] - r, r:x.shape[2] - r, :]
    # He init for the ReLU layers; the reconstruction starts near zero (the residual
    # network then starts as bicubic), or with the paper's small Gaussian when not residual.
    init = nn.initializers.normal(1e-3)
    h = nn.Conv(cfg.n1, (cfg.f1, cfg.f1), padding="VALID", dtype=self.dtype,
                kernel_init=nn.initializers.he_normal(), name="extract")(h)
    h = nn.relu(h)
    h = nn.Conv(cfg.n2, (cfg.f2, cfg.f2), padding="VALID", dtype=self.dtype,
                kernel_init=nn.initializers.he_normal(), name="map")(h)
    h = nn.relu(h)
    h = nn.Conv(cfg.channels, (cfg.f3, cfg.f3), padding="VALID", dtype=self.dtype,
                kernel_init=init, name="reconstruct")(h)
    if cfg.residual:
      h = h + inp
    return h.astype(x.dtype)
