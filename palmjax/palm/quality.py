"""Capture quality gate for palm bone-joint images (palm patent step P1b).

Before a capture is classified, the device judges whether it is sharp and complete; if not,
it asks for a re-capture and says why. The measures are jitted and batched; the decision
compares them with named thresholds of :class:`QualityConfig`. Most measures are taken on
the *hand mask* (:func:`hand_mask`): the pixels that stand out from the background after a
background plane (a heel-effect or exposure gradient) has been fitted and removed, so an
exactly black (masked) background of a clinical export and a grey, graded background of a
raw capture are both background. A hand lying on a film or cassette plate lighter than the
frame around it is measured on the hand: the plate, a flat rectangle, is background too:

* ``contrast``: standard deviation of the open field (an empty / uniform capture has none,
  whatever collimator bands surround it);
* ``saturated``: share of the hand's pixels clipped white (over-exposure). Black background
  pixels are not counted: a masked background is meant to be black;
* ``sharpness``: fine-scale over coarse-scale gradient energy,
  ``E(sigma=1) / E(sigma=2.5)`` with ``E(s) = mean |grad(G_s * x)|^2``. Blur removes the
  fine scale first, so the ratio falls towards its floor for a blurred capture; the
  Gaussian pre-smoothing makes it insensitive to pixel noise;
* ``extent``: the hand's extent: the larger of the height and width share of the frame
  that the hand mask spans (rows / columns holding at least 3% hand pixels). A hand whose
  mask is thin (a child's hand, spread fingers) still spans the frame;
* ``coverage``: share of the frame the hand mask covers (a hand too close fills it);
* ``border``: the largest share of the hand mask along the top, left or right border: a
  hand cut off by the field of view (fingers leaving the image) runs along one of them.
  The bottom border is where the forearm enters and is not counted.

Collimation: a radiograph is often collimated to a smaller open field, the shutters showing
as uniform bands along the frame's edges at another level than the field (black, or white
when unexposed film is displayed white). :func:`field_of_view` finds such bands; the measures
above are then taken on the open field (its borders, its size), and the bands are never hand.
A masked black background that runs on into the hand's surroundings is not a band. The
shutters of one radiograph are one collimator shown by one display, so its bands share a
level: a grey run beside a black or white band (the background beside a hand that fills
the field) is not a band.
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
from palmjax.kernels.quantiles import image_quantiles


@dataclasses.dataclass(frozen=True)
class QualityConfig:
  min_contrast: float = 0.02
  max_saturated: float = 0.75
  min_sharpness: float = 1.7
  min_extent: float = 0.3
  max_coverage: float = 0.9
  max_border: float = 0.6
  border_px: int = 2


# Hand mask: a pixel is hand when it exceeds the fitted background plane by this share of
# the range between the background and the bright end (98th percentile) of the image.
MASK_LEVEL = 0.25
# Rows / columns holding at least this share of hand pixels count towards the extent.
_EXTENT_SHARE = 0.03


def _grad_energy(x: jax.Array, sigma: float) -> jax.Array:
  g = gaussian_blur(x, sigma, mode="nearest")
  gy = g[:, 1:, :-1] - g[:, :-1, :-1]
  gx = g[:, :-1, 1:] - g[:, :-1, :-1]
  return jnp.mean(gx**2 + gy**2, axis=(1, 2, 3))


def _plane_fit(g: jax.Array, w: jax.Array) -> jax.Array:
  """Weighted least-squares plane ``a + b u + c v`` through ``g [N, H, W]`` (weights w)."""
  n, h, wd = g.shape
  v, u = jnp.meshgrid(jnp.linspace(-1.0, 1.0, h), jnp.linspace(-1.0, 1.0, wd), indexing="ij")
  basis = jnp.stack([jnp.ones_like(u), u, v], -1).reshape(1, h * wd, 3)
  bw = basis * w.reshape(n, h * wd, 1)
  ata = jnp.einsum("npi,pj->nij", bw, basis[0]) + 1e-6 * jnp.eye(3)
  atb = jnp.einsum("npi,np->ni", bw, g.reshape(n, h * wd))
  coef = jnp.linalg.solve(ata, atb[..., None])[..., 0]
  return jnp.einsum("pi,ni->np", basis[0], coef).reshape(n, h, wd)


# A plate: the film / cassette the hand lies on, lighter than the frame around it. When the
# first mask covers more than ``_PLATE_COVERAGE`` of the field, fills more than
# ``_PLATE_RECT`` of its core box (:func:`_core_box`: a plate is a rectangle, a hand is not;
# a forearm running on past the plate's edge is not part of the core) and more
# than ``_PLATE_FLAT`` of it lies within ``_PLATE_BAND`` of a plane fitted to its darker
# part (the plate's flat level), the background is fitted again inside that mask. Unless
# the image's bright end stands at least ``_PLATE_CONTRAST`` of its range above that plane
# (something lies on the plate), the plate is empty. (``_PLATE_BAND`` and
# ``_PLATE_CONTRAST`` are shares of the image's 2-98% range.)
_PLATE_COVERAGE = 0.5
_PLATE_RECT = 0.85
_PLATE_FLAT = 0.4
_PLATE_BAND = 0.05
_PLATE_CONTRAST = 0.15


def _background(g: jax.Array, start: jax.Array, ok: jax.Array, rng: jax.Array) -> jax.Array:
  """Background plane of ``g [N, H, W]``: fitted to ``start``, then refitted twice to the
  pixels of ``ok`` within a shrinking band above the current plane (iteratively
  re-weighted least squares that leaves out what stands above the background)."""
  plane = _plane_fit(g, start.astype(jnp.float32))
  for band in (0.15, 0.1):
    plane = _plane_fit(g, (ok & (g - plane < band * rng)).astype(jnp.float32))
  return plane


def _line_range(profile: jax.Array) -> tuple[jax.Array, jax.Array]:
  """First and last True line of ``profile [N, L]`` (``L`` and ``-1`` where none), ``[N]``."""
  L = profile.shape[1]
  idx = jnp.arange(L)
  return (jnp.min(jnp.where(profile, idx, L), axis=1),
          jnp.max(jnp.where(profile, idx, -1), axis=1))


def _span(profile: jax.Array) -> jax.Array:
  """Number of lines between the first and last True of ``profile [N, L]`` (0 if none)."""
  first, last = _line_range(profile)
  return jnp.maximum(last - first + 1, 0)


def _core_box(mask: jax.Array) -> jax.Array:
  """The box ``[N, H, W]`` spanned by the rows and the columns of ``mask [N, H, W]`` that
  hold at least half as many mask pixels as its fullest row (column)."""
  n, h, w = mask.shape
  def lines(counts):  # [N, L] -> first, last line holding half the fullest line's count
    first, last = _line_range(counts >= 0.5 * jnp.max(counts, axis=1, keepdims=True))
    return first[:, None, None], last[:, None, None]
  (r0, r1), (c0, c1) = lines(jnp.sum(mask, axis=2)), lines(jnp.sum(mask, axis=1))
  r, c = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
  return (r >= r0) & (r <= r1) & (c >= c0) & (c <= c1)


@jax.jit
def hand_mask(images: ArrayLike, valid: ArrayLike | None = None) -> jax.Array:
  """Hand pixels of a batch ``[N, H, W, 1]`` in [0, 1] (bone and soft tissue bright).

  The background is modelled as a plane (a heel-effect / exposure gradient; a constant for
  a masked black background), fitted by iteratively re-weighted least squares to the pixels
  that are not brighter than it; a pixel is hand when the smoothed image exceeds that plane
  by ``MASK_LEVEL`` of the range up to the image's 98th percentile. Returns bool
  ``[N, H, W]``. Jittable and vmappable; no global threshold, so a background brighter on one
  side than the hand's soft tissue on the other does not become "hand". ``valid`` (bool
  ``[N, H, W]``, optional) marks the pixels that belong to the image (the rest, padding of a
  fixed-size canvas, is ignored and never hand).

  A hand lying on a plate lighter than the frame around it (film or cassette edges in
  view) is found in two steps: the first mask is the plate, a flat rectangle covering most
  of the field (see ``_PLATE_*``); the plate's own level is then fitted as the background,
  and the hand is what stands above it, inside the plate. A plate with nothing standing
  well above it is empty: no hand.
  """
  x = jnp.asarray(images, jnp.float32)[..., 0]
  ok = jnp.ones(x.shape, bool) if valid is None else jnp.asarray(valid, bool)
  g = gaussian_blur(x[..., None], 1.0, mode="nearest")[..., 0]
  lo, hi, third = image_quantiles(g, (0.02, 0.98, 0.33), ok)[:, :, None, None]
  rng = jnp.maximum(hi - lo, 1e-6)

  def above(plane, within):
    return within & (g - plane > MASK_LEVEL * jnp.maximum(hi - plane, 1e-3 * rng))

  # Start from the darkest third (background in any radiograph with a hand in it).
  first = above(_background(g, ok & (g <= third), ok, rng), ok)
  # A plate? Refit the background on the first mask's darker third, inside that mask.
  n1 = jnp.sum(first, axis=(1, 2))
  inner = image_quantiles(g, (0.33,), first)[:, 0, None, None]
  plane = _background(g, first & (g <= inner), first, rng)
  flat = jnp.sum(first & (jnp.abs(g - plane) < _PLATE_BAND * rng), axis=(1, 2))
  box = _core_box(first)
  rise = jnp.sum(jnp.where(first, hi - plane, 0.0), axis=(1, 2))
  plate = ((n1 > _PLATE_COVERAGE * jnp.sum(ok, axis=(1, 2)))
           & (jnp.sum(first & box, axis=(1, 2)) > _PLATE_RECT * jnp.sum(box, axis=(1, 2)))
           & (flat > _PLATE_FLAT * n1))
  # Nothing standing well above the plate: an empty plate, no hand.
  on_plate = above(plane, first) & (rise > _PLATE_CONTRAST * rng[:, 0, 0] * n1)[:, None, None]
  mask = jnp.where(plate[:, None, None], on_plate, first)
  # A flat image (range under 1% of full scale) has no hand in it.
  return mask & (rng > 0.01)


# Collimator bands: an edge line (row / column) belongs to a band when at least
# ``_BAND_SHARE`` of its pixels lie within ``_BAND_LEVEL`` of the edge line's median level
# (a lead marker or text in the band takes a share of a line).
# The run of such lines from an edge is a band only when it ends in a sharp straight edge,
# its level is the frame's darkest or brightest, and that level is (all but
# ``_FIELD_SHARE``) absent from the field inside all four runs: a shutter's level does not
# occur in the open field, while a masked black (or grey, uncollimated) background runs on
# between the fingers and around the wrist.
_BAND_SHARE = 0.6
_BAND_LEVEL = 0.03
_FIELD_SHARE = 0.05


def _edge_run(lines: jax.Array, max_width: int) -> tuple[jax.Array, jax.Array]:
  """Level and length of the run of uniform lines at the start of ``lines [N, L, M]``;
  length 0 unless the run ends in a straight, sharp edge: the line after it has (almost)
  nothing at the run's level over its middle third (the bands of the two perpendicular
  sides, each at most a third, cross its ends). A hand entering a masked background ends
  the run gradually (fingers first), a shutter's edge does not."""
  n, length, m = lines.shape
  level = jnp.median(lines[:, 0], axis=1)
  near = jnp.abs(lines - level[:, None, None]) < _BAND_LEVEL
  run = jnp.sum(jnp.cumprod(jnp.mean(near, axis=2) >= _BAND_SHARE, axis=1), axis=1)
  mid = jnp.mean(near[:, :, m // 3:m - m // 3], axis=2)  # [N, L]
  after = jnp.take_along_axis(mid, jnp.minimum(run, length - 1)[:, None], 1)[:, 0]
  run = jnp.where((after < _FIELD_SHARE) & (run <= max_width), run, 0)
  return level, run.astype(jnp.int32)


@jax.jit
def field_of_view(images: ArrayLike) -> jax.Array:
  """The open field of a batch ``[N, H, W, 1]``: bool ``[N, H, W]``, False on collimator
  bands along the edges (see module docstring). At most a third of the frame per side is
  taken as a band; an uncollimated image is all True."""
  x = jnp.asarray(images, jnp.float32)[..., 0]
  n, h, w = x.shape
  # Unsmoothed: a shutter band is uniform to the pixel and its edge is sharp; smoothing
  # would bleed the field (or fingers at the field's edge) into the band's last lines.
  cols = jnp.swapaxes(x, 1, 2)  # [N, W, H]: line = column
  sides = [_edge_run(x, h // 3), _edge_run(x[:, ::-1], h // 3),
           _edge_run(cols, w // 3), _edge_run(cols[:, ::-1], w // 3)]
  r = jnp.arange(h)[None, :, None]
  c = jnp.arange(w)[None, None, :]
  def inside(top, bottom, left, right):
    return ((r >= top[:, None, None]) & (r < h - bottom[:, None, None])
            & (c >= left[:, None, None]) & (c < w - right[:, None, None]))
  candidate = inside(*(run for _, run in sides))
  n_in = jnp.maximum(jnp.sum(candidate, axis=(1, 2)), 1)
  # A shutter shows the frame's extreme level (black, or white when unexposed film is
  # displayed white); a run at a middle level (a grey field beside a black shutter) is not.
  lo, hi = image_quantiles(x, (0.02, 0.98))
  widths = []
  for level, run in sides:
    at_level = jnp.abs(x - level[:, None, None]) < _BAND_LEVEL
    share = jnp.sum(at_level & candidate, axis=(1, 2)) / n_in
    extreme = (level <= lo + _BAND_LEVEL) | (level >= hi - _BAND_LEVEL)
    widths.append(jnp.where((run > 0) & (share < _FIELD_SHARE) & extreme, run, 0))
  # One collimator, one display: bands farther from black / white than the most extreme
  # band (by more than the band tolerance) are the field's own background, not shutters.
  gap = jnp.stack([jnp.minimum(level, 1.0 - level) for level, _ in sides], axis=1)
  width = jnp.stack(widths, axis=1)
  closest = jnp.min(jnp.where(width > 0, gap, jnp.inf), axis=1, keepdims=True)
  width = jnp.where(gap <= closest + _BAND_LEVEL, width, 0)
  return inside(*(width[:, i] for i in range(4)))


def _open3(fg: jax.Array) -> jax.Array:
  """Morphological opening of ``fg [N, H, W]`` by a 3x3 square (drops 1-2 px lines)."""
  def pool(m, op, init):
    return jax.lax.reduce_window(m, init, op, (1, 3, 3), (1, 1, 1), "SAME")
  eroded = pool(fg, jax.lax.bitwise_and, True)
  return pool(eroded, jax.lax.bitwise_or, False)


def _extent(fg: jax.Array, fov: jax.Array) -> jax.Array:
  """Largest share of the open field's height or width the mask spans (``[N, H, W]``)."""
  fov_h = jnp.maximum(jnp.sum(jnp.any(fov, axis=2), axis=1), 1)
  fov_w = jnp.maximum(jnp.sum(jnp.any(fov, axis=1), axis=1), 1)
  rows = jnp.sum(fg, axis=2) >= _EXTENT_SHARE * fov_w[:, None]
  cols = jnp.sum(fg, axis=1) >= _EXTENT_SHARE * fov_h[:, None]
  return jnp.maximum(_span(rows) / fov_h, _span(cols) / fov_w)


def _border(fo: jax.Array, fov: jax.Array, b: int) -> jax.Array:
  """Share of the hand mask ``fo`` along the top, left and right edges (``b`` px deep) of
  the open field ``fov`` (both ``[N, H, W]``); the worst side."""
  n, h, w = fov.shape
  top, _ = _line_range(jnp.any(fov, axis=2))
  left, right = _line_range(jnp.any(fov, axis=1))
  r = jnp.arange(h)[None, :, None]
  c = jnp.arange(w)[None, None, :]
  def share(edge):  # edge band [N, H, W] bool inside the field
    band = edge & fov
    return jnp.sum(fo & band, axis=(1, 2)) / jnp.maximum(jnp.sum(band, axis=(1, 2)), 1)
  return jnp.max(jnp.stack([
      share((r >= top[:, None, None]) & (r < top[:, None, None] + b)),
      share((c >= left[:, None, None]) & (c < left[:, None, None] + b)),
      share((c <= right[:, None, None]) & (c > right[:, None, None] - b)),
  ], axis=1), axis=1)


@functools.partial(jax.jit, static_argnames=("border_px",))
def quality_measures(images: ArrayLike, *, border_px: int = 2) -> dict[str, jax.Array]:
  """Per-image measures for a batch ``[N, H, W, 1]`` in [0, 1] (see module docstring)."""
  x = jnp.asarray(images, jnp.float32)
  fov = field_of_view(x)
  fg = hand_mask(x, fov)
  # Share of hand along each of the open field's top, left and right borders; the worst
  # side. The mask is opened first: a collimator edge or film border (a line 1-2 px wide at
  # capture size) along a border is not a hand leaving the field.
  fo = _open3(fg)
  coarse = _grad_energy(x, 2.5)
  # Guard the ratio against a flat image (no gradient at all): report sharpness 0 there.
  sharp = jnp.where(coarse > 1e-12, _grad_energy(x, 1.0) / jnp.maximum(coarse, 1e-12), 0.0)
  n_hand = jnp.sum(fg, axis=(1, 2))
  clipped = jnp.sum(fg & (x[..., 0] >= 1 - 1e-3), axis=(1, 2))
  return {
      # Over the open field: collimator bands bring no contrast to an empty field.
      "contrast": jnp.std(x[..., 0], axis=(1, 2), where=fov),
      "saturated": clipped / jnp.maximum(n_hand, 1),
      "sharpness": sharp,
      "extent": _extent(fg, fov),
      "coverage": n_hand / jnp.maximum(jnp.sum(fov, axis=(1, 2)), 1),
      "border": _border(fo, fov, border_px),
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
         f"over-exposed ({100 * v['saturated']:.0f}% of the hand clipped white)"),
        (v["extent"] >= config.min_extent,
         f"no hand in view (the hand spans {100 * v['extent']:.0f}% of the frame < "
         f"{100 * config.min_extent:.0f}%)"),
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
