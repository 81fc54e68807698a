"""Capture quality gate for palm bone-joint images (palm patent step P1b).

Before a capture is classified, the device judges whether it is sharp and complete; if not,
it asks for a re-capture and says why. The measures are jitted and batched; the decision
compares them with named thresholds of :class:`QualityConfig`:

* ``contrast``: standard deviation of the image (an empty / uniform capture has none);
* ``saturated``: share of pixels at the ends of the range (over- or under-exposure);
* ``sharpness``: fine-scale over coarse-scale gradient energy,
  ``E(sigma=1) / E(sigma=2.5)`` with ``E(s) = mean |grad(G_s * x)|^2``. Blur removes the
  fine scale first, so the ratio falls towards its floor for a blurred capture; the
  Gaussian pre-smoothing makes it insensitive to pixel noise;
* ``coverage``: share of the image the hand (foreground above the background level)
  covers;
* ``border``: the largest share of foreground along the top, left or right border: a hand
  cut off by the field of view (fingers leaving the image) runs along one of them. The
  bottom border is where the forearm enters and is not counted.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import check_image_array
from palmjax.kernels.filters import gaussian_blur


@dataclasses.dataclass(frozen=True)
class QualityConfig:
  min_contrast: float = 0.02
  max_saturated: float = 0.75
  min_sharpness: float = 1.7
  min_coverage: float = 0.08
  max_coverage: float = 0.9
  max_border: float = 0.6
  border_px: int = 2


def _grad_energy(x: jax.Array, sigma: float) -> jax.Array:
  g = gaussian_blur(x, sigma, mode="nearest")
  gy = g[:, 1:, :-1] - g[:, :-1, :-1]
  gx = g[:, :-1, 1:] - g[:, :-1, :-1]
  return jnp.mean(gx**2 + gy**2, axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=("border_px",))
def quality_measures(images: ArrayLike, *, border_px: int = 2) -> dict[str, jax.Array]:
  """Per-image measures for a batch ``[N, H, W, 1]`` in [0, 1] (see module docstring)."""
  x = jnp.asarray(images, jnp.float32)
  lo = jnp.quantile(x, 0.02, axis=(1, 2, 3), keepdims=True)
  hi = jnp.quantile(x, 0.98, axis=(1, 2, 3), keepdims=True)
  fg = x > lo + 0.3 * (hi - lo)
  b = border_px
  # Share of foreground along each of the top, left and right borders; the worst side.
  border = jnp.stack([jnp.mean(fg[:, :b], axis=(1, 2, 3)), jnp.mean(fg[:, :, :b], axis=(1, 2, 3)),
                      jnp.mean(fg[:, :, -b:], axis=(1, 2, 3))], axis=1)
  coarse = _grad_energy(x, 2.5)
  # Guard the ratio against a flat image (no gradient at all): report sharpness 0 there.
  sharp = jnp.where(coarse > 1e-12, _grad_energy(x, 1.0) / jnp.maximum(coarse, 1e-12), 0.0)
  return {
      "contrast": jnp.std(x, axis=(1, 2, 3)),
      "saturated": jnp.mean((x <= 1e-3) | (x >= 1 - 1e-3), axis=(1, 2, 3)),
      "sharpness": sharp,
      "coverage": jnp.mean(fg, axis=(1, 2, 3)),
      "border": jnp.max(border, axis=1),
  }


@dataclasses.dataclass(frozen=True)
class QualityResult:
  ok: bool
  reason: str
  measures: dict[str, float]


def judge(measures: dict[str, Any], config: QualityConfig = QualityConfig()
          ) -> list[QualityResult]:
  """Turns batched measures into per-image pass / re-capture decisions with a reason."""
  m = {k: np.asarray(v, np.float64) for k, v in measures.items()}
  out = []
  for i in range(len(m["contrast"])):
    v = {k: float(a[i]) for k, a in m.items()}
    checks = [
        (v["contrast"] >= config.min_contrast,
         f"empty or uniform capture (contrast {v['contrast']:.3f} < {config.min_contrast})"),
        (v["saturated"] <= config.max_saturated,
         f"over- or under-exposed ({100 * v['saturated']:.0f}% of pixels saturated)"),
        (v["coverage"] >= config.min_coverage,
         f"no hand in view (coverage {100 * v['coverage']:.0f}% < "
         f"{100 * config.min_coverage:.0f}%)"),
        (v["coverage"] <= config.max_coverage,
         f"hand fills the view (coverage {100 * v['coverage']:.0f}%): move it back"),
        (v["border"] <= config.max_border,
         f"hand incomplete: it touches the image border ({100 * v['border']:.0f}% of border)"),
        (v["sharpness"] >= config.min_sharpness,
         f"blurred capture (sharpness {v['sharpness']:.2f} < {config.min_sharpness})"),
    ]
    failed = [msg for ok, msg in checks if not ok]
    out.append(QualityResult(not failed, "; ".join(failed) if failed else "ok", v))
  return out


def check_quality(images: ArrayLike, config: QualityConfig = QualityConfig()
                  ) -> list[QualityResult]:
  """Quality gate for ``[H, W, 1]`` or ``[N, H, W, 1]`` images in [0, 1]."""
  x = np.asarray(images)
  x = check_image_array(x[None] if x.ndim in (2, 3) else x, "image", channels=(1,),
                        batched=True, min_size=4 * config.border_px)
  return judge(quality_measures(x, border_px=config.border_px), config)
