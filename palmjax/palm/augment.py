"""Generic re-capture pseudo-spoofs: an option against attack kinds training never saw.

A presentation attack is, in one way or another, a *re-imaged copy* of a body part: the
capture of something that was itself made from an image. :func:`pseudo_spoofs` turns live
training captures into such copies without modelling any particular attack — a random tone
curve, a small blur, fresh sensor noise and 8-bit re-quantisation — and the training loop
(``PalmTrainConfig.pseudo_spoofs``) adds them to the training split labelled spoof. In
leave-one-attack-out runs it halves the APCER of an unseen printed radiograph (a re-imaging
attack) but not that of unseen phantoms, and it costs BPCER, so the shipped model does not
use it (README).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import check_image_array
from palmjax.kernels import gaussian_blur

SIGMAS = (0.4, 0.7, 1.0)  # blur of the re-imaging optics, pixels (one drawn per capture)
GAMMA_LOG_RANGE = 0.5  # tone curve x ** exp(u), u ~ U(-0.5, 0.5)
NOISE_RANGE = (0.005, 0.04)  # std of the new sensor noise, in display units
LEVELS = 255.0  # 8-bit re-quantisation


def recapture_params(key: jax.Array, n: int) -> dict[str, jax.Array]:
  """Random re-capture settings for ``n`` captures: ``gamma``, ``sigma_index``, ``noise_std``."""
  k_g, k_s, k_n = jax.random.split(key, 3)
  return {
      "gamma": jnp.exp(jax.random.uniform(k_g, (n,), minval=-GAMMA_LOG_RANGE,
                                          maxval=GAMMA_LOG_RANGE)),
      "sigma_index": jax.random.randint(k_s, (n,), 0, len(SIGMAS)),
      "noise_std": jax.random.uniform(k_n, (n,), minval=NOISE_RANGE[0], maxval=NOISE_RANGE[1]),
  }


@jax.jit
def recapture(images: jax.Array, params: dict[str, jax.Array], noise: jax.Array) -> jax.Array:
  """Re-imaged copies of ``[N, H, W, 1]`` captures in [0, 1] (pure, deterministic).

  ``clip(blur_sigma(x ** gamma) + noise_std * noise)`` rounded to 8 bits, per capture, with
  ``sigma = SIGMAS[sigma_index]`` and ``noise`` a standard normal ``[N, H, W, 1]`` array.
  """
  x = jnp.clip(images, 0.0, 1.0) ** params["gamma"][:, None, None, None]
  blurred = jnp.stack([gaussian_blur(x, s, truncate=3.0) for s in SIGMAS])  # [S, N, H, W, 1]
  x = jnp.take_along_axis(blurred, params["sigma_index"][None, :, None, None, None], 0)[0]
  x = x + params["noise_std"][:, None, None, None] * noise
  return jnp.round(jnp.clip(x, 0.0, 1.0) * LEVELS) / LEVELS


def pseudo_spoofs(key: jax.Array, images: ArrayLike, *, chunk: int = 512) -> np.ndarray:
  """One re-captured copy of each ``[N, H, W, 1]`` capture, drawn from ``key``.

  Capture ``i`` uses ``fold_in(key, i)`` alone, so the result does not depend on ``chunk``.
  """
  x = check_image_array(images, "images", channels=(1,), batched=True).astype(np.float32)
  out = []
  for s in range(0, len(x), chunk):
    idx = jnp.arange(s, min(s + chunk, len(x)))
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
    params = jax.vmap(lambda k: jax.tree.map(lambda a: a[0], recapture_params(k, 1)))(keys)
    noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 1), x.shape[1:]))(keys)
    out.append(np.asarray(recapture(jnp.asarray(x[s:s + len(idx)]), params, noise)))
  return np.concatenate(out) if out else np.zeros((0,) + x.shape[1:], np.float32)
