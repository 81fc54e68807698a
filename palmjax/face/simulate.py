"""Simulated face-terminal sessions: a procedural 3D face rendered as live or attack.

The sessions are :class:`palmjax.face.session.Session` values (kinds and config in
:mod:`palmjax.face.session`). Every session is rendered from one procedural 3D face, so
image and echo agree:

* identity (:func:`identity_params`): a height field (face ellipsoid, nose, eye sockets,
  brow ridge, cheeks, chin), skin albedo and a per-identity skin texture (blotches, moles,
  eyebrows, lips), all drawn from an identity key;
* ``live``: the height field under small head rotation/translation, rendered with
  depth-dependent parallax (the nose shifts more than the cheeks, the static background
  does not move), Lambertian shading that changes with the pose, blinks, non-rigid
  micro-motion around mouth and cheeks, pulse-driven skin colour change (rPPG), sensor noise;
* ``print``: a frontal still of the face printed on paper (reduced gamut, yellowish paper
  white, halftone dots, paper fibre texture), moved by a homography only (a plane);
* ``replay``: a video of the live face on a screen (gamma, black level, moire from the pixel
  grid, refresh flicker with a rolling band), the screen moved by a homography;
* ``mask``: the same geometry as a rigid 3D mask (matte material albedo and texture, painted
  eyes: no blinks, no pulse, no micro-motion), worn and moved like a head;
* ``impostor``: a live session of a *different* identity (the enrolled image is the claimed
  user's).

The echo (when asked for) comes from :func:`palmjax.echo.simulate_capture` with the face's own
region depths (:func:`region_offsets_m`) and the matching echo kind (live, photo, screen, mask,
live); the frames show that echo's blinks, so eye frames can be dropped consistently.

The rendering core is jitted once per config (the kind is a traced branch index) and
vmappable over keys.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from palmjax.errors import InputError
from palmjax.face.session import ECHO_KIND, KINDS, Session, SessionConfig, validate_config

_REGION_XY = ((0.0, 0.12), (0.3, -0.24), (0.45, 0.15), (0.0, -0.38), (0.0, 0.38))
PARAM_NAMES = ("face_w", "face_h", "eye_y", "eye_dx", "eye_r", "nose_len", "nose_w",
               "nose_h", "mouth_y", "mouth_w", "brow_y", "brow_t", "skin_tone", "redness",
               "cheek_h", "face_depth")
_PARAM_RANGES = ((0.6, 0.74), (0.82, 0.94), (-0.3, -0.18), (0.24, 0.34), (0.07, 0.1),
                 (0.25, 0.4), (0.09, 0.15), (0.16, 0.26), (0.38, 0.52), (0.18, 0.32),
                 (-0.48, -0.38), (0.03, 0.07), (0.0, 1.0), (0.0, 1.0), (0.03, 0.08),
                 (0.3, 0.4))


class Rendered(NamedTuple):
  """The rendering core's output (batch dims lead when vmapped)."""
  frames: jax.Array      # [T, S, S, 3]
  timestamps: jax.Array  # [T]
  enrolled: jax.Array    # [S, S, 3] frontal still of the claimed identity


# ---------------------------------------------------------------------------------------
# Identity: parameters, maps and region depths.

def identity_params(key: jax.Array) -> jax.Array:
  """``[len(PARAM_NAMES)]`` identity parameters drawn uniformly from their ranges."""
  lo, hi = np.asarray(_PARAM_RANGES, np.float32).T
  return lo + (hi - lo) * jax.random.uniform(key, (len(PARAM_NAMES),))


def _p(params: jax.Array, name: str) -> jax.Array:
  return params[..., PARAM_NAMES.index(name)]


def _g(x, y, cx, cy, sx, sy):
  return jnp.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def height_field(params: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """Face height (normalised units, toward the camera) at ``(x, y)`` (same shape)."""
  fw, fh = _p(params, "face_w"), _p(params, "face_h")
  r2 = (x / fw) ** 2 + (y / fh) ** 2
  # NaN guard: sqrt of a negative outside the face ellipse.
  z = _p(params, "face_depth") * jnp.sqrt(jnp.where(r2 < 1, 1 - r2, 0.0))
  ey, edx = _p(params, "eye_y"), _p(params, "eye_dx")
  nl, nw, nh = _p(params, "nose_len"), _p(params, "nose_w"), _p(params, "nose_h")
  z = z + nh * _g(x, y, 0.0, 0.1, nw, nl * 0.5) * jnp.clip((y + 0.25) / 0.4, 0, 1)
  z = z - 0.07 * (_g(x, y, -edx, ey, 0.13, 0.09) + _g(x, y, edx, ey, 0.13, 0.09))
  z = z + 0.03 * _g(x, y, 0.0, _p(params, "brow_y") + 0.04, 0.45, 0.06)
  ch = _p(params, "cheek_h")
  z = z + ch * (_g(x, y, -0.38, 0.18, 0.15, 0.14) + _g(x, y, 0.38, 0.18, 0.15, 0.14))
  z = z + 0.03 * _g(x, y, 0.0, 0.72, 0.15, 0.08)
  return jnp.where(r2 < 1, z, 0.0)


def region_offsets_m(params: Any, *, metres_per_unit: float = 0.1,
                     quantum_m: float = 0.0) -> tuple[float, ...]:
  """Depth of each region of :data:`~palmjax.face.session.REGIONS` behind the nose tip
  (metres), for the echo."""
  p = jnp.asarray(params)
  zs = [float(height_field(p, jnp.float32(x), jnp.float32(y))) for x, y in _REGION_XY]
  offs = [max(0.0, (zs[0] - z) * metres_per_unit) for z in zs]
  if quantum_m > 0:
    offs = [round(o / quantum_m) * quantum_m for o in offs]
  return tuple(float(o) for o in offs)


def _grid(size: int) -> tuple[jax.Array, jax.Array]:
  c = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size * 2 - 1
  return jnp.meshgrid(c, c, indexing="xy")  # x right, y down


def _smooth_noise(key: jax.Array, size: int, sigma: float) -> jax.Array:
  from palmjax.kernels import gaussian_blur
  n = jax.random.normal(key, (size, size, 1))
  s = gaussian_blur(n, sigma)[..., 0]
  return s / (jnp.std(s) + 1e-6)


def _albedo_maps(key: jax.Array, params: jax.Array, size: int, material: bool
                 ) -> tuple[jax.Array, jax.Array]:
  """(albedo ``[S, S, 3]`` in object coordinates, skin mask ``[S, S]``)."""
  x, y = _grid(size)
  k = jax.random.split(key, 4)
  tone = _p(params, "skin_tone")
  light_skin = jnp.array([0.86, 0.68, 0.58])
  dark_skin = jnp.array([0.45, 0.30, 0.22])
  skin = light_skin * (1 - tone) + dark_skin * tone
  skin = skin * (1 + 0.08 * (_p(params, "redness") - 0.5) * jnp.array([1.0, -0.5, -0.5]))
  blotch = 0.05 * _smooth_noise(k[0], size, size / 16)
  fine = 0.03 * _smooth_noise(k[1], size, 0.7)
  moles = jnp.clip(_smooth_noise(k[2], size, 1.0) - 2.2, 0, 1)
  if material:  # a mask: one matte material colour, fine grain, no moles or blotches
    skin = jnp.array([0.78, 0.66, 0.55]) * (0.9 + 0.1 * tone)
    blotch, moles = 0.0 * blotch, 0.0 * moles
    fine = 0.06 * _smooth_noise(k[3], size, 0.5)
  alb = skin * (1 + blotch + fine)[..., None] * (1 - 0.5 * moles)[..., None]
  # Lips, eyebrows, eyes (open).
  my, mw = _p(params, "mouth_y"), _p(params, "mouth_w")
  lips = _g(x, y, 0.0, my, mw, 0.04)
  alb = alb * (1 - 0.35 * lips[..., None] * jnp.array([0.2, 1.0, 0.9]))
  by, bt = _p(params, "brow_y"), _p(params, "brow_t")
  ey, edx = _p(params, "eye_y"), _p(params, "eye_dx")
  brows = _g(x, y, -edx, by, 0.14, bt) + _g(x, y, edx, by, 0.14, bt)
  alb = alb * (1 - 0.7 * jnp.clip(brows, 0, 1))[..., None]
  fw, fh = _p(params, "face_w"), _p(params, "face_h")
  mask = ((x / fw) ** 2 + (y / fh) ** 2 < 1).astype(jnp.float32)
  return alb, mask


def _eyes(params: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """Open-eye intensity ``[...]`` in [0, 1] (sclera and iris) at object coordinates."""
  ey, edx, er = _p(params, "eye_y"), _p(params, "eye_dx"), _p(params, "eye_r")
  e = jnp.zeros_like(x)
  for s in (-1.0, 1.0):
    d2 = ((x - s * edx) / er) ** 2 + ((y - ey) / (0.55 * er)) ** 2
    white = (d2 < 1).astype(jnp.float32)
    iris = (((x - s * edx) / (0.45 * er)) ** 2 + ((y - ey) / (0.45 * er)) ** 2 < 1)
    e = e + white * (1.0 - 0.85 * iris)
  return e


# ---------------------------------------------------------------------------------------
# The rendering core.

def _smooth_path(key: jax.Array, t: jax.Array, amp: float, fmin: float = 0.3,
                 fmax: float = 1.5) -> jax.Array:
  kf, kp = jax.random.split(key)
  f = jax.random.uniform(kf, (2,), minval=fmin, maxval=fmax)
  ph = jax.random.uniform(kp, (2,), maxval=2 * jnp.pi)
  return amp / jnp.sqrt(2.0) * jnp.sum(jnp.sin(2 * jnp.pi * f * t[:, None] + ph), -1)


def _bilinear(img: jax.Array, ci: jax.Array, cj: jax.Array) -> jax.Array:
  """Samples ``img`` ``[S, S, C]`` at fractional pixel rows/cols (clamped at the border)."""
  h, w = img.shape[:2]
  ci = jnp.clip(ci, 0, h - 1)
  cj = jnp.clip(cj, 0, w - 1)
  i0 = jnp.clip(jnp.floor(ci), 0, h - 2).astype(jnp.int32)
  j0 = jnp.clip(jnp.floor(cj), 0, w - 2).astype(jnp.int32)
  fi = (ci - i0)[..., None]
  fj = (cj - j0)[..., None]
  top = img[i0, j0] * (1 - fj) + img[i0, j0 + 1] * fj
  bot = img[i0 + 1, j0] * (1 - fj) + img[i0 + 1, j0 + 1] * fj
  return top * (1 - fi) + bot * fi


def _to_pix(v: jax.Array, size: int) -> jax.Array:
  return (v + 1) * size / 2 - 0.5


# Channels of the object map sampled per frame.
_ALB, _MAT, _NRM, _HGT, _EYE, _MIC, _INS = (slice(0, 3), slice(3, 6), slice(6, 9), 9, 10,
                                            11, 12)


def _object_map(params: jax.Array, alb_key: jax.Array, size: int) -> jax.Array:
  """``[S, S, 13]`` per-identity maps in object coordinates: skin albedo, mask-material
  albedo, surface normal, height, open-eye intensity, micro-motion weight, inside-face."""
  x, y = _grid(size)
  alb, inside = _albedo_maps(alb_key, params, size, False)
  mat, _ = _albedo_maps(alb_key, params, size, True)
  e = 1e-2
  zx = (height_field(params, x + e, y) - height_field(params, x - e, y)) / (2 * e)
  zy = (height_field(params, x, y + e) - height_field(params, x, y - e)) / (2 * e)
  n = jnp.stack([-zx, -zy, jnp.ones_like(zx)], -1)
  n = n / jnp.linalg.norm(n, axis=-1, keepdims=True)
  my = _p(params, "mouth_y")
  mic = _g(x, y, 0.0, my, 0.3, 0.15) + 0.5 * (_g(x, y, -0.38, 0.2, 0.2, 0.2)
                                              + _g(x, y, 0.38, 0.2, 0.2, 0.2))
  return jnp.concatenate([alb, mat, n, height_field(params, x, y)[..., None],
                          _eyes(params, x, y)[..., None], mic[..., None],
                          inside[..., None]], -1)


def _render_head(omap, size, *, yaw, pitch, tx, ty, blink, micro, pulse, material, light,
                 background):
  """Frames ``[T, S, S, 3]`` of a 3D head (live / mask) with parallax over a static wall."""
  x, y = _grid(size)
  px = 2.0 / size  # one pixel in normalised units
  hmap = omap[..., _HGT:_HGT + 1]

  def frame(yw, pt, sx, sy, bl, mc, pu):
    # Inverse projection with parallax: image point u sees object point x with
    # u = x + yaw * z(x) + t  ->  two fixed-point steps.
    ox, oy = x - sx * px, y - sy * px
    for _ in range(2):
      z = _bilinear(hmap, _to_pix(oy, size), _to_pix(ox, size))[..., 0]
      ox = x - sx * px - yw * z
      oy = y - sy * px - pt * z
    # Non-rigid micro-motion: mouth corners and cheeks move on their own.
    w = _bilinear(omap[..., _MIC:_MIC + 1], _to_pix(oy, size), _to_pix(ox, size))[..., 0]
    ox = ox + mc[0] * px * w
    oy = oy + mc[1] * px * w
    m = _bilinear(omap, _to_pix(oy, size), _to_pix(ox, size))
    inside = (m[..., _INS] > 0.5).astype(jnp.float32)[..., None]
    a = m[..., _ALB] + material * (m[..., _MAT] - m[..., _ALB])
    eyes = (m[..., _EYE] * (1 - bl))[..., None]  # a blink closes the lids (skin shows)
    a = a * (1 - eyes) + eyes * jnp.array([0.74, 0.72, 0.7])
    a = a * (1 + pu * jnp.array([0.4, 1.0, 0.3]))  # rPPG: green varies most
    # Lambertian shading; the head rotates, the light does not (light in object frame).
    l = jnp.stack([light[0] - yw * light[2], light[1] - pt * light[2], light[2]])
    l = l / jnp.linalg.norm(l)
    shade = 0.35 + 0.65 * jnp.clip(m[..., _NRM] @ l, 0, 1)
    return inside * a * shade[..., None] + (1 - inside) * background

  return jax.vmap(frame)(yaw, pitch, tx, ty, blink, micro, pulse)


def _background(key, size):
  x, y = _grid(size)
  k1, k2 = jax.random.split(key)
  base = 0.35 + 0.3 * jax.random.uniform(k1, (3,))
  grad = 1 + 0.15 * x[..., None] - 0.1 * y[..., None]
  return base * grad * (1 + 0.03 * _smooth_noise(k2, size, 2.0))[..., None]


def _homography_warp(img, h):
  """Samples ``img`` [S, S, 3] at ``H @ (u, v, 1)`` (normalised coordinates) per pixel."""
  size = img.shape[0]
  x, y = _grid(size)
  q = h @ jnp.stack([x.ravel(), y.ravel(), jnp.ones(x.size)])
  sx = (q[0] / q[2]).reshape(x.shape)
  sy = (q[1] / q[2]).reshape(x.shape)
  return _bilinear(img, _to_pix(sy, size), _to_pix(sx, size))


def _homographies(key, t, cfg: SessionConfig, size):
  k = jax.random.split(key, 6)
  rot = _smooth_path(k[0], t, cfg.handheld_rotation)
  tx = _smooth_path(k[1], t, cfg.handheld_shift_px * 2 / size)
  ty = _smooth_path(k[2], t, cfg.handheld_shift_px * 2 / size)
  g = _smooth_path(k[3], t, cfg.perspective)
  hh = _smooth_path(k[4], t, cfg.perspective)
  sc = 1 + _smooth_path(k[5], t, 0.02)
  c, s = jnp.cos(rot), jnp.sin(rot)
  row0 = jnp.stack([sc * c, -sc * s, tx], -1)
  row1 = jnp.stack([sc * s, sc * c, ty], -1)
  row2 = jnp.stack([g, hh, jnp.ones_like(g)], -1)
  return jnp.stack([row0, row1, row2], -2)  # [T, 3, 3]


def _still(omap, size, light, background):
  """A frontal, motionless, eyes-open picture of a face (photo / enrolment)."""
  z1 = jnp.zeros((1,), jnp.float32)
  return _render_head(omap, size, yaw=z1, pitch=z1, tx=z1, ty=z1, blink=z1,
                      micro=jnp.zeros((1, 2)), pulse=z1, material=0.0, light=light,
                      background=background)[0]


def _blink_profile(t, blink_times, blink_valid, blink_s):
  d = (t[:, None] - blink_times[None, :]) / (blink_s / 2)
  b = jnp.clip(1.0 - jnp.abs(d), 0.0, 1.0) * 1.6
  return jnp.clip(jnp.sum(jnp.where(blink_valid[None], b, 0.0), -1), 0, 1)


_BRANCH = {"live": 0, "print": 1, "replay": 2, "mask": 3, "impostor": 0}


@partial(jax.jit, static_argnums=(2,))
def _render(key: jax.Array, kind_id: jax.Array, cfg: SessionConfig, face_key: jax.Array,
            claimed_key: jax.Array, blink_times: jax.Array, blink_valid: jax.Array
            ) -> Rendered:
  # kind_id is traced (one compilation for every kind; under vmap all branches run).
  size, nt = cfg.size, cfg.n_frames
  k = jax.random.split(key, 16)
  params = identity_params(jax.random.fold_in(face_key, 0))
  omap = _object_map(params, jax.random.fold_in(face_key, 1), size)
  # Timestamps: a capture window inside the echo capture, with jitter.
  t0 = jax.random.uniform(k[0], (), maxval=1.0)
  t = t0 + jnp.arange(nt, dtype=jnp.float32) / cfg.fps
  t = t + jax.random.uniform(k[1], (nt,), minval=-cfg.timestamp_jitter_s,
                             maxval=cfg.timestamp_jitter_s)
  bg = _background(k[2], size)
  light = jnp.array([0.0, 0.0, 1.0]) + jnp.concatenate(
      [0.5 * jax.random.normal(k[3], (2,)), jnp.zeros(1)])
  zeros = jnp.zeros((nt,), jnp.float32)
  blink = _blink_profile(t, blink_times, blink_valid, cfg.blink_s)
  hr = jax.random.uniform(k[4], (), minval=0.9, maxval=2.0)
  pulse = cfg.pulse_amplitude * jnp.sin(2 * jnp.pi * hr * t + 6.28 * jax.random.uniform(k[5]))
  u = lambda kk, r: r[0] + (r[1] - r[0]) * jax.random.uniform(kk)
  x, y = _grid(size)

  # One head render for every kind, its physics switched by traced per-kind factors:
  # (motion scale, alive: blinks/pulse/micro-motion, mask material, studio light).
  motion_scale = jnp.array([1.0, 0.0, 0.3, 1.0])[kind_id]  # print: a still; replay: video
  alive = jnp.array([1.0, 0.0, 1.0, 0.0])[kind_id]
  material = jnp.array([0.0, 0.0, 0.0, 1.0])[kind_id]
  studio = jnp.array([0.2, -0.3, 1.0])
  light = jnp.where(kind_id == 1, studio, light)
  kk = jax.random.split(k[6], 6)
  yaw = _smooth_path(kk[0], t, cfg.head_rotation) * motion_scale
  pitch = _smooth_path(kk[1], t, cfg.head_rotation * 0.6) * motion_scale
  tx = _smooth_path(kk[2], t, cfg.head_shift_px) * motion_scale
  ty = _smooth_path(kk[3], t, cfg.head_shift_px) * motion_scale
  micro = jnp.stack([_smooth_path(kk[4], t, cfg.micro_motion_px, 1.0, 4.0),
                     _smooth_path(kk[5], t, cfg.micro_motion_px, 1.0, 4.0)], -1) * alive
  bg = jnp.where(kind_id == 1, _background(k[7], size), bg)  # the photo's own background
  video = _render_head(omap, size, yaw=yaw, pitch=pitch, tx=tx, ty=ty, blink=blink * alive,
                       micro=micro, pulse=pulse * alive, material=material, light=light,
                       background=bg)

  def live():
    return video

  def printed():
    still = video[0]
    luma = jnp.mean(still, -1, keepdims=True)
    sat = u(k[8], cfg.print_saturation)
    paper = jnp.array([0.95, 0.93, 0.85])
    photo = 0.08 + 0.82 * (luma + sat * (still - luma)) * paper  # reduced gamut
    period = u(k[9], cfg.halftone_period_px) * 2 / size
    th = jax.random.uniform(k[10], (), maxval=jnp.pi)
    xr, yr = x * jnp.cos(th) + y * jnp.sin(th), -x * jnp.sin(th) + y * jnp.cos(th)
    dots = 0.5 + 0.5 * jnp.cos(2 * jnp.pi * xr / period) * jnp.cos(2 * jnp.pi * yr / period)
    photo = photo * (1 - u(k[11], cfg.halftone_depth) * dots)[..., None]
    photo = photo * (1 + 0.04 * _smooth_noise(k[12], size, 0.6))[..., None]  # paper fibre
    hs = _homographies(k[13], t, cfg, size)
    frames = jax.vmap(lambda h: _homography_warp(photo, h))(hs)
    return frames * (1 + 0.1 * x[..., None] * light[0])  # light falls across the sheet

  def replay():
    gamma = u(k[8], cfg.screen_gamma)
    v = 0.04 + 0.9 * jnp.clip(video, 0, 1) ** gamma * jnp.array([0.95, 0.98, 1.05])
    f_m = 0.6 + 0.3 * jax.random.uniform(k[9])  # cycles per pixel of the beat, aliased
    th = jax.random.uniform(k[10], (), maxval=jnp.pi)
    proj = (x * jnp.cos(th) + y * jnp.sin(th)) * size / 2
    moire = u(k[11], cfg.moire_contrast) * jnp.cos(2 * jnp.pi * f_m * proj)
    hs = _homographies(k[13], t, cfg, size)
    depth = u(k[12], cfg.flicker_depth)
    ph = jax.random.uniform(k[14], (), maxval=2 * jnp.pi)

    def screen(f, h, tk):
      band = depth * jnp.sin(2 * jnp.pi * (y * 1.5 + 7.0 * tk) + ph)  # rolling refresh
      return _homography_warp(f * (1 + moire + band)[..., None], h)

    return jax.vmap(screen)(v, hs, t)

  frames = jax.lax.switch(kind_id, (live, printed, replay, live))
  noise = cfg.noise_std * jax.random.normal(k[15], frames.shape)
  frames = jnp.clip(frames + noise * jnp.sqrt(jnp.clip(frames, 0.05, 1) / 0.5), 0, 1)

  # Enrolled image: a frontal still of the claimed identity, another day (light, noise).
  cparams = identity_params(jax.random.fold_in(claimed_key, 0))
  ke = jax.random.fold_in(key, 31)
  cmap = _object_map(cparams, jax.random.fold_in(claimed_key, 1), size)
  enrolled = _still(cmap, size, jnp.array([-0.2, -0.2, 1.0]),
                    _background(jax.random.fold_in(ke, 1), size))
  enrolled = jnp.clip(enrolled + cfg.noise_std * jax.random.normal(ke, enrolled.shape), 0, 1)
  return Rendered(frames.astype(jnp.float32), t, enrolled.astype(jnp.float32))


def presenting_key(kind: str, identity_key: jax.Array) -> jax.Array:
  """The key of the face shown in the frames: the claimed one, or another for impostors."""
  return jax.random.fold_in(identity_key, 7919) if kind == "impostor" else identity_key


def render(key: jax.Array, kind: str, config: SessionConfig = SessionConfig(), *,
           identity_key: jax.Array, claimed_key: jax.Array | None = None,
           blink_times: jax.Array | None = None, blink_valid: jax.Array | None = None
           ) -> Rendered:
  """The jitted image part of a session (vmappable over every array argument).

  Args:
    key: the session's randomness (pose, light, artefacts, noise).
    kind: one of :data:`KINDS` (static).
    identity_key: the presenting identity (the face in the frames). For ``impostor`` the
      frames show a different identity derived from ``claimed_key``.
    claimed_key: the identity of the enrolled image (default ``identity_key``).
    blink_times, blink_valid: ``[max_blinks]`` blink times (s) to show (live / replay).
  """
  if kind not in KINDS:
    raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
  validate_config(config)
  if claimed_key is None:
    claimed_key = identity_key
  if blink_times is None:
    blink_times = jnp.zeros((config.max_blinks,), jnp.float32)
    blink_valid = jnp.zeros((config.max_blinks,), bool)
  return _render(key, jnp.int32(_BRANCH[kind]), config, presenting_key(kind, identity_key),
                 claimed_key, blink_times, blink_valid)


def _own_blinks(key, cfg: SessionConfig):
  k1, k2 = jax.random.split(key)
  span = max(cfg.capture_s + 1.0, 0.5)
  bt = jnp.sort(jax.random.uniform(k1, (cfg.max_blinks,), maxval=span))
  prob = min(1.0, cfg.blink_rate_hz * span / max(cfg.max_blinks, 1))
  return bt, jax.random.uniform(k2, (cfg.max_blinks,)) < prob


def simulate_session(key: jax.Array, kind: str, config: SessionConfig = SessionConfig(), *,
                     identity: int = 0, echo_config: Any = None) -> tuple[Session, np.ndarray]:
  """One simulated session and its enrolled image (NumPy), with the echo when asked.

  Args:
    key: the session's randomness.
    kind: one of :data:`KINDS`.
    identity: the claimed user's identity number (face, enrolled image, echo geometry).
    echo_config: a :class:`palmjax.echo.SimConfig` template (its ``kind`` is replaced);
      used when ``config.echo`` is set.

  Returns:
    ``(session, enrolled)``.
  """
  if kind not in KINDS:
    raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
  id_key = jax.random.fold_in(jax.random.key(1_000_003), identity)
  recording = None
  ks, ke, kb = jax.random.split(key, 3)
  visible = kind in ("live", "impostor", "replay")
  if config.echo:
    from palmjax import echo
    ekind = ECHO_KIND[kind]
    params = identity_params(jax.random.fold_in(presenting_key(kind, id_key), 0))
    geo = echo.FaceGeometry()
    if ekind not in ("photo", "screen"):  # flat spoofs: the simulator zeroes the depths
      geo = dataclasses.replace(geo, offsets_m=region_offsets_m(
          params, metres_per_unit=config.metres_per_unit,
          quantum_m=config.echo_depth_quantum_m))
    ecfg = echo_config if echo_config is not None else echo.SimConfig()
    sim = echo.simulate_capture(ke, geo, dataclasses.replace(ecfg, kind=ekind))
    recording = echo.Recording(np.asarray(sim.samples), ecfg.probe.fs)
    bt, bv = sim.blink_times, sim.blink_valid
  else:
    bt, bv = _own_blinks(kb, config)
  if not visible:
    bv = jnp.zeros_like(bv)
  r = render(ks, kind, config, identity_key=id_key, claimed_key=id_key, blink_times=bt,
             blink_valid=bv)
  blinks = np.asarray(bt)[np.asarray(bv)]
  sess = Session(frames=np.asarray(r.frames), timestamps=np.asarray(r.timestamps, np.float64),
                 recording=recording, blink_times=blinks, kind=kind, identity=identity,
                 source=f"simulated:{kind}:{identity}")
  return sess, np.asarray(r.enrolled)


def simulate_batch(key: jax.Array, kind: str, n: int, config: SessionConfig = SessionConfig(),
                   *, identities: Sequence[int] | np.ndarray) -> Rendered:
  """``n`` sessions of one kind rendered at once (image part only; NumPy arrays).

  Session ``i`` uses ``fold_in(key, i)`` and claims identity ``identities[i]``; blinks are
  drawn as in :func:`simulate_session` without echo.
  """
  ids = np.asarray(identities, np.int64)
  if ids.shape != (n,):
    raise InputError(f"identities must have {n} entries, got shape {ids.shape}")
  base = jax.random.key(1_000_003)
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
  id_keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(ids, jnp.int32))
  ks, _, kb = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(k, 3))(keys), 1, 0)
  bt, bv = jax.vmap(lambda k: _own_blinks(k, config))(kb)
  if kind not in ("live", "impostor", "replay"):
    bv = jnp.zeros_like(bv)
  validate_config(config)
  if kind not in KINDS:
    raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
  kid = jnp.int32(_BRANCH[kind])
  out = jax.vmap(lambda a, b, c, d: _render(a, kid, config, presenting_key(kind, b), b, c, d))(
      ks, id_keys, bt, bv)
  return Rendered(*(np.asarray(v) for v in out))

