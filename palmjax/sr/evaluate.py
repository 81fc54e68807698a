"""SR evaluation under the literature's protocol, always next to bicubic.

PSNR and SSIM on the Y channel (BT.601) with a border of ``scale`` pixels removed; the
bicubic baseline is the same interpolated image the network receives.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from palmjax.data.images import PairPool
from palmjax.kernels import rgb_to_y
from palmjax.metrics import crop_border, psnr, ssim
from palmjax.models import SRCNNConfig
from palmjax.sr.inference import apply_srcnn


@dataclasses.dataclass(frozen=True)
class EvalRow:
  name: str
  psnr_bicubic: float
  psnr_sr: float
  ssim_bicubic: float
  ssim_sr: float


def _y(x: jnp.ndarray) -> jnp.ndarray:
  return x if x.shape[-1] == 1 else rgb_to_y(x)


def evaluate_pool(params: Any, config: SRCNNConfig, pool: PairPool) -> list[EvalRow]:
  """Per-image PSNR/SSIM (Y, border crop = scale) of bicubic and SRCNN."""
  rows = []
  border = pool.scale
  for name, up, hr in zip(pool.names, pool.inputs, pool.targets):
    up = jnp.asarray(up)[None]
    hr = jnp.asarray(hr)[None]
    sr = apply_srcnn(params, up, config)
    y_hr, y_up, y_sr = (crop_border(_y(v), border) for v in (hr, up, sr))
    rows.append(EvalRow(name, float(psnr(y_up, y_hr)[0]), float(psnr(y_sr, y_hr)[0]),
                        float(ssim(y_up, y_hr)[0]), float(ssim(y_sr, y_hr)[0])))
  return rows


def summarize(rows: list[EvalRow]) -> dict[str, float]:
  """Means over images, and the PSNR gain of SRCNN over bicubic."""
  mean = lambda f: float(np.mean([getattr(r, f) for r in rows]))
  out = {f: mean(f) for f in ("psnr_bicubic", "psnr_sr", "ssim_bicubic", "ssim_sr")}
  out["psnr_gain"] = out["psnr_sr"] - out["psnr_bicubic"]
  out["images"] = len(rows)
  return out


def format_table(rows: list[EvalRow], title: str = "") -> str:
  """A markdown table of per-image rows plus the mean."""
  s = summarize(rows)
  lines = []
  if title:
    lines.append(f"**{title}**\n")
  lines.append("| image | bicubic PSNR | SRCNN PSNR | gain | bicubic SSIM | SRCNN SSIM |")
  lines.append("|---|---:|---:|---:|---:|---:|")
  for r in rows:
    lines.append(f"| {r.name} | {r.psnr_bicubic:.2f} | {r.psnr_sr:.2f} | "
                 f"{r.psnr_sr - r.psnr_bicubic:+.2f} | {r.ssim_bicubic:.4f} | {r.ssim_sr:.4f} |")
  lines.append(f"| **mean** | **{s['psnr_bicubic']:.2f}** | **{s['psnr_sr']:.2f}** | "
               f"**{s['psnr_gain']:+.2f}** | **{s['ssim_bicubic']:.4f}** | "
               f"**{s['ssim_sr']:.4f}** |")
  return "\n".join(lines)
