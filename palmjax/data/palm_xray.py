"""Palm bone-joint X-ray simulator: live hands and the patent's spoof kinds, in JAX.

Real palm bone-joint spoof data is not public, so palmjax makes it. One call of
:func:`sample` draws ``n`` radiographs from an explicit PRNG key, batched with ``vmap``
and jittable (``n`` and the config are static), on CPU, GPU or TPU.

Physics (per sample):

1. **Anatomy / object.** A hand is a set of analytic solids on a millimetre grid: the
   soft-tissue envelope (forearm, palm, thenar eminence, five fingers with knuckle bulges),
   27 hand bones (8 carpals, 5 metacarpals, 14 phalanges) plus the distal radius and ulna,
   and 14 finger joints. Each solid is a *tapered capsule*: points within ``r(t)`` of a
   segment, with an elliptic cross-section of half-depth ``c`` perpendicular to the image.
   Because every solid is symmetric about the mid-plane, the chord a ray cuts through it is
   ``2 c sqrt(1 - d^2 / r^2)`` (``d``: distance to the axis) and the chord through a union
   is the maximum chord. Tubular bones have a cortical shell (thick at the shaft, thin at
   the ends) around a trabecular/medullary interior whose bone volume fraction (BV/TV) is
   modulated by a band-pass random texture; children have open growth plates (cartilage
   bands near one end) and partly ossified carpals (cartilage anlage around an ossification
   nucleus that grows with age); the joint spaces are filled with cartilage / synovial soft
   tissue. Sex, age (4..85 years), hand size, soft-tissue thickness and fat fraction,
   finger spread, handedness, rotation, position and exposure are drawn per sample.
2. **Beer-Lambert.** ``I = I0 exp(-sum_m mu_m t_m)`` with linear attenuation coefficients
   ``mu_m`` at the configured photon energy (mono-energetic, 40..60 keV), from the table
   below.
3. **Detector.** Focal-spot / scintillator blur (Gaussian PSF, the shared
   :func:`palmjax.kernels.gaussian_blur`), Poisson quantum noise on the expected counts plus
   Gaussian read noise, flat-field log ``p = -ln(N / I0)``, and a display window (the
   detector's automatic window from the image's own quantiles with random jitter, then a
   display gamma), quantised to 8 or 16 bit. Bone is bright.
4. **Low-resolution acquisition.** The same object seen by a coarser detector: extra PSF,
   area integration over ``scale x scale`` pixels (``scale^2`` times the counts per pixel
   at equal dose), its own Poisson + read noise and the HR window. So ``lr`` is an
   independent, physically consistent capture of the same hand, not a resized ``hr``.

Attack kinds (``ATTACK_NAMES``), after the patent's spoof list (a palm model without bones
and joints / a high-precision palm model, a palm model with simple built-in bones, a palm
model with bones of other materials) plus a printed radiograph:

* ``live``: the anatomy above.
* ``model_no_bones``: a high-precision cast of a hand (same outer shape) in silicone,
  resin (PMMA/epoxy) or gel, homogeneous, no bones, no joints.
* ``model_simple_bones``: the cast with uniform solid rods at the bones' places made of a
  bone-equivalent resin: no cortex, no trabeculae, no growth plates, no joint soft tissue.
* ``model_other_bones``: the cast with rods of wood (grainy), PVC, aluminium or steel,
  solid or tubes, with other attenuation and texture.
* ``printed_radiograph``: a sheet carrying a halftone print of a live radiograph on an
  acrylic backing plate: flat object, halftone screen (moire against the detector grid),
  print gamma, the source's own noise baked in; its quantum noise follows the ink, not a
  hand's thickness.

Styles (``PalmXrayConfig.style``). ``"v1"`` is the look above (automatic quantile window,
grey noisy background with a heel-effect gradient, a fixed PSF); the shipped classifier was
trained on it and it stays the default. ``"v2"`` is calibrated against real clinical hand
radiographs with ``palmjax palm realism``: a separate radius and ulna, smaller carpals with
joint spaces, a marrow-filled medullary canal, thinner palm soft tissue; a flat-fielded
detector (no heel gradient); acquisition blur and dose drawn per sample on both sides of
v1's, from their own key and for every class alike (so sharpness or noise alone cannot
decide liveness); the clinical display chain (:func:`_display_v2`: segmentation with a soft
skin edge, mild dynamic-range compression, a window that keeps soft tissue dark and never
clips white, unsharp-mask edge enhancement, background masked to exactly 0 in most
captures, collimator shutters, a lead side marker, 8-bit levels); and framing as a
clinical loader crops the hand (fingertips near the top, forearm leaving the bottom).
``"v3"`` keeps v2's anatomy, acquisition and display chain (the same code) and re-draws
what :mod:`palmjax.palm.realism` showed to differ from the real train split of the
``hand_radiographs`` builder as the clinical loader crops it (:func:`_draw_v3`,
:func:`_frame_v3`, the ``V3_*`` constants): the frame is the loader's square crop around
the hand's bounding box (margin ``V3_MARGIN``), the radiograph's lower edge cutting the
forearm ``V3_FOREARM_MM`` below the wrist (background below it, as the loader pads), and
a share of zoomed-out crops with the hand off-centre (``V3_ZOOMED``); wider finger spread
with an abducted thumb, mostly left hands (PA view), rotation within
``V3_ROTATION_DEG``; a thinner palm and forearm; the background level drawn from the real
split's quantiles (``V3_BG``; masked to black in ``V3_MASKED`` only) with a linear ramp,
soft tissue lighter than it and fading into it over a wide skin ramp, the window's top
level from the real split's quantiles (``V3_TOP``, a few faint captures) and a lower
gamma; a side marker on the image's left; collimator shutters in ``V3_COLLIMATOR``;
sharper, less noisy acquisition (``V3_PSF_PX``, ``V3_DOSE``) and stronger dynamic-range
compression. ``"v4"`` is v3 plus what the realism test showed next (:func:`_draw_v4`, the
``V4_*`` constants; iterated on the train split, checked on the validation split): the
film / cassette plate the hand lies on, a tilted rectangle lighter than the background
around it whose edges show inside the crop (:func:`_plate`; in ``V4_PLATE`` of the
unmasked captures), more faint low-contrast captures (``V4_TOP``) and a longer stretch of
forearm (``V4_FOREARM_MM``). The spoof objects are the same in every style and framed by
the same code; only the acquisition, display and framing differ.

Global statistics (mean, std, intensity histogram) overlap between the classes by
construction (randomised exposure, thickness and automatic window): the differences lie in
bones, cortex, trabecular texture, growth plates and joint spaces.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from palmjax.errors import InputError
from palmjax.kernels.filters import gaussian_blur

ATTACK_NAMES = ("live", "model_no_bones", "model_simple_bones", "model_other_bones",
                "printed_radiograph")
LIVE = 0
MODEL_NO_BONES = ATTACK_NAMES.index("model_no_bones")
MODEL_SIMPLE_BONES = ATTACK_NAMES.index("model_simple_bones")
MODEL_OTHER_BONES = ATTACK_NAMES.index("model_other_bones")
PRINTED_RADIOGRAPH = ATTACK_NAMES.index("printed_radiograph")
# Simulator looks (``PalmXrayConfig.style``): "v1" the original look, "v2" calibrated
# against real clinical hand radiographs, "v3"
# v2's anatomy and display chain with framing, window and background calibrated against
# the train split of the ``hand_radiographs`` builder as the clinical loader crops it,
# "v4" v3 with the film plate behind the hand, more faint captures and a longer forearm.
STYLES = ("v1", "v2", "v3", "v4")
_CALIBRATED = ("v2", "v3", "v4")   # styles with v2's anatomy, acquisition and display chain
_FRAMED = ("v3", "v4")   # styles framed as the clinical loader crops (v3's framing)
# Style-v2 ranges (log-uniform where a factor): acquisition blur sigma in HR pixels (v1:
# 0.6 fixed), dose factor on ``exposure_range``, the frame's side in mm per unit hand scale,
# and the share of captures whose background the display masks to black.
V2_PSF_PX = (0.2, 1.2)
V2_DOSE = (100.0, 5000.0)
V2_FRAME_MM = (230.0, 290.0)
V2_MASKED = 0.35
V2_MARKER = 0.7
V2_ROTATION_DEG = 20.0
# Style-v3 calibration (real train split of hand_radiographs, shared config, at 64 px;
# chosen by looking at that split and iterating on the validation split):
# the clinical loader's crop margin (ClinicalConfig.margin) around the hand mask's box,
# whose edge lies at V3_MASK_EDGE of the envelope's radius (thin tissue is not in the
# mask); the forearm visible below the radiocarpal joint line (mm per unit hand scale,
# where the radiograph's edge cuts it); rotation; finger spread; acquisition blur (HR px),
# dose factor, dynamic-range compression, the forearm's width factor and the LR detector's
# extra blur factor; share of right hands (mirror images of the left-hand PA view); the
# background level's quantiles (the median of a capture's border pixels, at quantile
# levels V3_BG_Q); share of captures masked to exact black, side marker and shutters.
V3_MARGIN = 0.06
V3_MASK_EDGE = 0.6
V3_FOREARM_MM = (25.0, 75.0)
V3_ROTATION_DEG = 12.0
V3_SPREAD = (1.1, 1.8)
V3_PSF_PX = (0.3, 1.0)
V3_DOSE = (1000.0, 30000.0)
V3_DRC = (0.15, 0.5)
V3_FOREARM_R = 1.2
V3_LR_PSF = 0.3
V3_RIGHT = 0.1
V3_BG_Q = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
V3_BG = (0.005, 0.01, 0.03, 0.039, 0.106, 0.262, 0.35)
V3_MASKED = 0.05
V3_MARKER = 0.75
V3_COLLIMATOR = 0.05
# The window's top level (quantiles at V3_BG_Q; a few faint, low-contrast captures), the
# background ramp's largest amplitude, the share of zoomed-out crops and their zoom.
V3_TOP = (0.2, 0.3, 0.76, 0.86, 0.93, 0.97, 0.97)
V3_BG_RAMP = 0.06
V3_SOFT = (0.05, 0.3)
V3_SKIN_RAMP = 4.0
V3_GAMMA = (0.5, 1.0)
V3_ZOOMED = 0.15
V3_ZOOM = (1.0, 1.1, 1.8)
# Style v4 (v3 plus what the realism test found next, iterated on the train split and
# checked on the validation split): the film / cassette plate the hand lies on, a
# rectangle lighter than the background around it in V4_PLATE of the captures (not in
# masked ones), its edges' distances from the frame's centre (fractions of the frame;
# beyond 0.5 the edge is outside the crop) and tilt.
V4_PLATE = 0.3
V4_PLATE_LEVEL = (0.02, 0.15)
V4_PLATE_SIDE = (0.36, 0.52)
V4_PLATE_TOP = (0.4, 0.55)
V4_PLATE_BOTTOM = (0.4, 0.6)
V4_PLATE_DEG = 4.0
# v4 re-draws two v3 levels: more faint, low-contrast captures (the window's top level at
# quantiles V3_BG_Q) and a longer stretch of forearm above the radiograph's lower edge.
V4_TOP = (0.15, 0.25, 0.5, 0.8, 0.9, 0.97, 0.97)
V4_FOREARM_MM = (40.0, 100.0)

# ---------------------------------------------------------------------------------------
# Attenuation. Mass attenuation coefficients mu/rho (cm^2/g) at 40, 50 and 60 keV and the
# densities used (g/cm^3). Sources: NIST Standard Reference Database 126, "X-Ray Mass
# Attenuation Coefficients" (J. H. Hubbell and S. M. Seltzer, NISTIR 5632; Table 3
# elements, Table 4 compounds, human tissues with ICRU Report 44 (1989) compositions);
# mixtures not tabulated there (silicone, wood, cartilage) by the mixture rule
# mu/rho = sum_i w_i (mu/rho)_i over the elemental NIST/XCOM values (M. J. Berger et al.,
# XCOM: Photon Cross Sections Database, NIST SRD 8). Values are rounded to 3 significant
# digits (good to a few per cent, which is below the per-sample variation we draw).
#   Tissue, Soft (ICRU-44)      rho 1.06: 0.268 0.226 0.205
#   Adipose Tissue (ICRU-44)    rho 0.95: 0.250 0.217 0.200
#   Bone, Cortical (ICRU-44)    rho 1.92: 0.666 0.424 0.315
#   Cartilage (ICRP/Woodard & White composition, ~soft tissue) rho 1.10: 0.270 0.228 0.206
#   Water, Liquid               rho 1.00: 0.268 0.227 0.206
#   PMMA (resin/epoxy proxy)    rho 1.19: 0.235 0.209 0.195
#   Silicone rubber, PDMS (Si 37.9 %, C 32.4 %, O 21.6 %, H 8.1 % by weight, filled)
#                               rho 1.10: 0.440 0.299 0.246
#   Wood (cellulose C6H10O5)    rho 0.55: 0.230 0.206 0.193
#   Polyvinyl Chloride          rho 1.41: 1.050 0.640 0.460
#   Aluminium (Z=13)            rho 2.699: 0.569 0.368 0.278
#   Iron / steel (Z=26)         rho 7.874: 3.630 1.960 1.210
# Trabecular (cancellous) bone is modelled as a mixture of cortical bone tissue (volume
# fraction BV/TV) and marrow (red marrow ~ soft tissue in children, yellow ~ adipose in
# adults), i.e. mu = BV/TV mu_cortical + (1 - BV/TV) mu_marrow (ICRU 46 spongiosa ~ 0.2).
# ---------------------------------------------------------------------------------------
_ENERGIES_KEV = (40.0, 50.0, 60.0)
MATERIALS: dict[str, tuple[float, tuple[float, float, float]]] = {
    "soft_tissue": (1.06, (0.268, 0.226, 0.205)),
    "adipose": (0.95, (0.250, 0.217, 0.200)),
    "cortical_bone": (1.92, (0.666, 0.424, 0.315)),
    "cartilage": (1.10, (0.270, 0.228, 0.206)),
    "water_gel": (1.00, (0.268, 0.227, 0.206)),
    "pmma_resin": (1.19, (0.235, 0.209, 0.195)),
    "silicone": (1.10, (0.440, 0.299, 0.246)),
    "wood": (0.55, (0.230, 0.206, 0.193)),
    "pvc": (1.41, (1.050, 0.640, 0.460)),
    "aluminium": (2.699, (0.569, 0.368, 0.278)),
    "steel": (7.874, (3.630, 1.960, 1.210)),
}
# Spoof materials, indexed by the ``envelope_material`` / ``insert_material`` parameters.
MODEL_MATERIALS = ("silicone", "pmma_resin", "water_gel")
ROD_MATERIALS = ("wood", "pvc", "aluminium", "steel")
_WOOD, _STEEL = ROD_MATERIALS.index("wood"), ROD_MATERIALS.index("steel")


def attenuation(material: str, energy_kev: float) -> float:
  """Linear attenuation coefficient ``mu`` (1/cm) of ``material`` at ``energy_kev``.

  Log-log interpolation between the tabulated 40/50/60 keV values.
  """
  if material not in MATERIALS:
    raise InputError(f"material: unknown {material!r}; expected one of {sorted(MATERIALS)}")
  if not 40.0 <= energy_kev <= 60.0:
    raise InputError(f"energy_kev must lie in [40, 60], got {energy_kev}")
  rho, mus = MATERIALS[material]
  mu_rho = float(np.exp(np.interp(np.log(energy_kev), np.log(_ENERGIES_KEV), np.log(mus))))
  return rho * mu_rho


# ---------------------------------------------------------------------------------------
# Anatomy of an adult male reference hand (mm). Origin on the radiocarpal joint line, +y
# toward the fingertips, -x the thumb side (a right hand seen palm down; left hands are a
# mirror image). Bone lengths and widths after published hand-bone morphometry (adult
# metacarpal II ~ 68 mm, proximal phalanx III ~ 45 mm; hand length ~ 190 mm male, ~ 175 mm
# female).
# ---------------------------------------------------------------------------------------
RAY_NAMES = ("thumb", "index", "middle", "ring", "little")
_MC_LEN = (46.0, 68.0, 65.0, 58.0, 54.0)
_PP_LEN = (32.0, 40.0, 45.0, 42.0, 33.0)
_MP_LEN = (0.0, 23.0, 27.0, 26.0, 18.0)
_DP_LEN = (22.0, 17.0, 19.0, 19.0, 17.0)
_MC_R = (4.6, 4.8, 4.8, 4.3, 4.0)
_PP_R = (4.4, 4.3, 4.5, 4.2, 3.8)
_MP_R = (0.0, 3.7, 3.9, 3.7, 3.3)
_DP_R = (3.6, 3.0, 3.2, 3.1, 2.8)
_MC_BASE = ((-19.0, 25.0), (-10.5, 31.0), (-1.5, 32.0), (7.5, 30.5), (15.5, 29.0))
_MC_ANGLE = (-38.0, -7.0, 0.0, 6.0, 12.0)       # degrees from +y, positive toward +x
_FINGER_FAN = (12.0, -4.0, 0.0, 4.0, 9.0)       # extra angle of the phalanges
# Carpals: (name, x, y, angle deg, axis half-length, radius, ossification onset years).
_CARPALS = (
    ("scaphoid", -12.5, 10.0, -55.0, 6.0, 4.8, 5.5),
    ("lunate", -2.5, 8.0, 0.0, 2.5, 5.5, 4.0),
    ("triquetrum", 7.5, 10.0, 35.0, 3.0, 4.6, 2.5),
    ("pisiform", 10.5, 13.0, 0.0, 1.0, 4.2, 10.0),
    ("trapezium", -17.5, 19.0, -35.0, 3.5, 5.0, 5.0),
    ("trapezoid", -10.0, 22.0, 0.0, 2.0, 4.3, 5.5),
    ("capitate", -1.5, 19.5, 0.0, 5.5, 5.3, 0.3),
    ("hamate", 8.0, 19.5, 15.0, 4.5, 5.2, 0.5),
)
# Distal forearm: (name, x, y0, y1, end radius, waist, physis position along the axis).
_FOREARM = (("radius", -7.0, -90.0, -2.0, 12.0, 0.45, 0.88),
            ("ulna", 13.0, -90.0, -4.0, 7.0, 0.30, 0.88))
# Style v2: radius and ulna separated by an interosseous gap, slimmer ulna, carpals a
# little smaller so that the joint spaces between them show, thinner soft tissue.
_FOREARM_V2 = (("radius", -8.5, -90.0, -2.0, 11.0, 0.50, 0.88),
               ("ulna", 14.5, -90.0, -4.0, 6.0, 0.40, 0.88))
_CARPAL_R_V2 = 0.8
_SOFT_DEPTH_V2 = 0.75


def bone_names() -> list[str]:
  """Names of the simulated bones, in the order of the internal bone arrays."""
  names = []
  for k, ray in enumerate(RAY_NAMES):
    names.append(f"metacarpal_{ray}")
    names.append(f"proximal_phalanx_{ray}")
    if k > 0:
      names.append(f"middle_phalanx_{ray}")
    names.append(f"distal_phalanx_{ray}")
  names += [c[0] for c in _CARPALS] + [f[0] for f in _FOREARM]
  return names


N_HAND_BONES = 27   # 19 tubular + 8 carpals; the radius and ulna are extra.
N_JOINTS = 14       # MCP x5, PIP x4, DIP x4, thumb IP.

PARAM_NAMES = (
    "attack", "label", "male", "age", "hand_scale", "tissue_scale", "fat_fraction",
    "spread", "rotation_deg", "shift_x_mm", "shift_y_mm", "mirrored", "exposure",
    "read_noise", "window_q_lo", "window_q_hi", "window_lo", "window_hi", "gamma",
    "magnification", "heel", "heel_angle", "spr", "cortical_index", "bvtv",
    "texture_amp", "joint_gap_mm", "growth_plate_open", "envelope_material", "envelope_mu",
    "insert_material", "insert_mu", "rod_size", "rod_tube", "ink_scale",
    "halftone_freq", "halftone_angle", "print_gamma", "backing_mm")


@dataclasses.dataclass(frozen=True)
class PalmXrayConfig:
  """Static settings of :func:`sample` (hashable: pass it as a static jit argument).

  Attributes:
    size: high-resolution image height = width in pixels (a multiple of 8).
    scale: low-resolution factor; ``size`` must be divisible by it.
    fov_mm: field of view (mm) covered by the image side.
    energy_kev: effective mono-energetic photon energy, 40..60 keV.
    bit_depth: 8 or 16; the display values are quantised to this many bits.
    live_fraction: probability that a sample is live.
    attack_weights: relative weights of the four spoof kinds (``ATTACK_NAMES[1:]``).
    age_range: (min, max) age in years of live hands (and of the hands casts were made of).
    exposure_range: (min, max) unattenuated mean counts per HR pixel (log-uniform).
    read_noise_range: (min, max) detector read noise in counts (std).
    psf_sigma_px: focal spot + scintillator blur (Gaussian sigma, HR pixels).
    lr_psf_sigma_px: extra blur of the low-resolution detector, in HR pixels.
    lr_dose: dose of the LR capture relative to the HR capture (per unit area).
    max_rotation_deg: hand rotation is drawn uniformly in +- this.
    max_shift_mm: hand translation is drawn uniformly in +- this (each axis).
    spread_range: finger spread factor range (1 = relaxed, < 1 closed, > 1 spread).
    texture_mm: length scale of the trabecular texture (mm).
    vmap_chunk: samples vectorised together (``jax.lax.map`` batch size); 0 = automatic:
      1 on CPU (one sample at a time, so only its own object kind is rendered), the whole
      batch on accelerators. Results do not depend on it.
  """

  size: int = 128
  scale: int = 2
  fov_mm: float = 220.0
  energy_kev: float = 40.0
  bit_depth: int = 16
  live_fraction: float = 0.5
  attack_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
  age_range: tuple[float, float] = (4.0, 85.0)
  exposure_range: tuple[float, float] = (400.0, 8000.0)
  read_noise_range: tuple[float, float] = (1.0, 8.0)
  psf_sigma_px: float = 0.6
  lr_psf_sigma_px: float = 1.0
  lr_dose: float = 1.0
  max_rotation_deg: float = 12.0
  max_shift_mm: float = 10.0
  spread_range: tuple[float, float] = (0.6, 1.5)
  texture_mm: float = 1.0
  vmap_chunk: int = 0
  style: str = "v1"

  def __post_init__(self):
    def bad(name, msg):
      raise InputError(f"PalmXrayConfig.{name}: {msg}")

    def pair(name, lo_min=None):
      v = getattr(self, name)
      if not (isinstance(v, (tuple, list)) and len(v) == 2
              and all(isinstance(x, (int, float)) and math.isfinite(x) for x in v)):
        bad(name, f"expected a (min, max) pair of finite numbers, got {v!r}")
      if v[0] > v[1]:
        bad(name, f"min {v[0]} > max {v[1]}")
      if lo_min is not None and v[0] < lo_min:
        bad(name, f"values must be >= {lo_min}, got {v!r}")
      object.__setattr__(self, name, (float(v[0]), float(v[1])))

    if (not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 16
        or self.size % 8):
      bad("size", f"must be an integer >= 16 and a multiple of 8, got {self.size!r}")
    if not isinstance(self.scale, int) or isinstance(self.scale, bool) or self.scale < 1:
      bad("scale", f"must be an integer >= 1, got {self.scale!r}")
    if self.size % self.scale:
      bad("scale", f"size {self.size} is not divisible by scale {self.scale}")
    for name in ("fov_mm", "psf_sigma_px", "lr_psf_sigma_px", "lr_dose", "texture_mm"):
      v = getattr(self, name)
      if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        bad(name, f"must be a finite number > 0, got {v!r}")
    if self.style not in STYLES:
      bad("style", f"must be one of {STYLES}, got {self.style!r}")
    if not isinstance(self.vmap_chunk, int) or self.vmap_chunk < 0:
      bad("vmap_chunk", f"must be an integer >= 0, got {self.vmap_chunk!r}")
    if not (isinstance(self.energy_kev, (int, float)) and 40.0 <= self.energy_kev <= 60.0):
      bad("energy_kev", f"must lie in [40, 60] keV (tabulated range), got {self.energy_kev!r}")
    if self.bit_depth not in (8, 16):
      bad("bit_depth", f"must be 8 or 16, got {self.bit_depth!r}")
    if not (isinstance(self.live_fraction, (int, float)) and 0.0 <= self.live_fraction <= 1.0):
      bad("live_fraction", f"must lie in [0, 1], got {self.live_fraction!r}")
    w = self.attack_weights
    if not (isinstance(w, (tuple, list)) and len(w) == len(ATTACK_NAMES) - 1
            and all(isinstance(x, (int, float)) and math.isfinite(x) and x >= 0 for x in w)):
      bad("attack_weights", f"expected {len(ATTACK_NAMES) - 1} finite weights >= 0, got {w!r}")
    if self.live_fraction < 1.0 and sum(w) <= 0:
      bad("attack_weights", "all zero while live_fraction < 1")
    object.__setattr__(self, "attack_weights", tuple(float(x) for x in w))
    pair("age_range", 1.0)
    pair("exposure_range", 1.0)
    pair("read_noise_range", 0.0)
    pair("spread_range", 0.0)
    for name in ("max_rotation_deg", "max_shift_mm"):
      v = getattr(self, name)
      if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
        bad(name, f"must be a finite number >= 0, got {v!r}")

  @property
  def pixel_mm(self) -> float:
    return self.fov_mm / self.size

  @property
  def lr_size(self) -> int:
    return self.size // self.scale

  def replace(self, **changes) -> "PalmXrayConfig":
    return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------------------------
# Geometry primitives.
# ---------------------------------------------------------------------------------------

def _segment_coords(x, y, a, b):
  """Axis position ``t`` in [0, 1] and squared distance of pixels to segments.

  ``x, y``: [H, W]; ``a, b``: [S, 2]. Returns ``t, d2`` of shape [S, H, W].
  """
  ab = b - a
  # Guard zero-length segments (spheres): a tiny length keeps the division finite.
  l2 = jnp.maximum(jnp.sum(ab * ab, axis=-1), 1e-6)[:, None, None]
  px = x[None] - a[:, 0, None, None]
  py = y[None] - a[:, 1, None, None]
  t = jnp.clip((px * ab[:, 0, None, None] + py * ab[:, 1, None, None]) / l2, 0.0, 1.0)
  dx = px - t * ab[:, 0, None, None]
  dy = py - t * ab[:, 1, None, None]
  return t, dx * dx + dy * dy


def _chord(d2, r, c=None):
  """Chord (mm) through an elliptic cross-section of in-plane radius ``r``, half-depth ``c``.

  ``2 c sqrt(1 - d^2 / r^2)`` inside, 0 outside; ``c`` defaults to ``r`` (round).
  """
  r = jnp.maximum(r, 1e-3)  # guards 1/r^2 for vanished (unossified) shapes
  c = r if c is None else c
  return 2.0 * c * jnp.sqrt(jnp.maximum(1.0 - d2 / (r * r), 0.0))


def _unit(angle_deg):
  rad = jnp.deg2rad(angle_deg)
  return jnp.stack([jnp.sin(rad), jnp.cos(rad)], axis=-1)


# ---------------------------------------------------------------------------------------
# Parameters per sample.
# ---------------------------------------------------------------------------------------

def _draw_params(key, forced_attack, cfg: PalmXrayConfig) -> dict[str, jax.Array]:
  # One vector of uniforms and one of normals (few RNG ops keep compilation fast).
  k_u, k_n, k_c = jax.random.split(key, 3)
  uni = iter(jax.random.uniform(k_u, (48,), jnp.float32))
  nor = iter(jax.random.normal(k_n, (8,), jnp.float32))
  u = lambda lo=0.0, hi=1.0: lo + (hi - lo) * next(uni)

  weights = jnp.asarray(cfg.attack_weights, jnp.float32)
  spoof = 1 + jax.random.categorical(k_c, jnp.log(jnp.maximum(weights, 1e-30)))
  # Zero weights get log(1e-30): effectively never drawn, and no -inf enters the logits.
  drawn = jnp.where(u() < cfg.live_fraction, 0, spoof).astype(jnp.int32)
  attack = jnp.where(forced_attack >= 0, forced_attack, drawn).astype(jnp.int32)

  male = (u() < 0.5).astype(jnp.float32)
  age = u(*cfg.age_range)
  # Growth: children's hands are smaller; growth ends ~14.5 (F) / ~16.5 (M) years.
  adult_age = 14.5 + 2.0 * male
  growth = 1.0 - 0.45 * jnp.clip((adult_age - age) / (adult_age - 4.0), 0.0, 1.0)
  hand_scale = growth * (0.92 + 0.08 * male) * (1.0 + 0.05 * next(nor))
  plate_open = jnp.clip((adult_age - age) / 2.0, 0.0, 1.0)

  # Bone quality: cortical index (fraction of the shaft radius that is cortex) peaks in
  # young adults and falls after ~40 (faster in women after menopause); BV/TV likewise.
  loss = jnp.maximum(age - 40.0, 0.0) * (0.0035 + 0.0035 * (1.0 - male) * (age > 50))
  cortical_index = jnp.clip(0.47 - 0.10 * plate_open - loss + 0.04 * next(nor), 0.18, 0.65)
  bvtv = jnp.clip(0.28 - 0.5 * loss + 0.03 * next(nor), 0.08, 0.4)

  exposure = jnp.exp(u(math.log(cfg.exposure_range[0]), math.log(cfg.exposure_range[1])))
  envelope_material = jnp.minimum(jnp.floor(u() * len(MODEL_MATERIALS)).astype(jnp.int32),
                                  len(MODEL_MATERIALS) - 1)
  insert_material = jnp.minimum(jnp.floor(u() * len(ROD_MATERIALS)).astype(jnp.int32),
                                len(ROD_MATERIALS) - 1)
  rod_radius = jnp.asarray([(2.5, 5.0), (2.0, 4.0), (1.5, 3.0), (0.5, 1.3)],
                           jnp.float32)[insert_material]
  return dict(
      attack=attack,
      label=(attack == LIVE).astype(jnp.int32),
      male=male,
      age=age,
      hand_scale=hand_scale,
      tissue_scale=u(0.8, 1.3),
      fat_fraction=u(0.1, 0.4),
      spread=u(*cfg.spread_range),
      rotation_deg=u(-cfg.max_rotation_deg, cfg.max_rotation_deg),
      shift_x_mm=u(-cfg.max_shift_mm, cfg.max_shift_mm),
      shift_y_mm=u(-cfg.max_shift_mm, cfg.max_shift_mm),
      mirrored=(u() < 0.5).astype(jnp.float32),
      exposure=exposure,
      read_noise=u(*cfg.read_noise_range),
      window_q_lo=u(0.002, 0.25),
      window_q_hi=u(0.95, 0.999),
      window_lo=u(-0.1, 0.05),
      window_hi=u(-0.05, 0.15),
      gamma=jnp.exp(u(math.log(0.5), math.log(2.0))),
      magnification=u(0.85, 1.3),
      heel=u(0.0, 0.15),
      heel_angle=u(0.0, 360.0),
      spr=u(0.02, 0.4),
      cortical_index=cortical_index,
      bvtv=bvtv,
      texture_amp=u(0.35, 0.7),
      joint_gap_mm=u(1.2, 2.0) * (1.0 + 1.2 * plate_open),
      growth_plate_open=plate_open,
      envelope_material=envelope_material.astype(jnp.float32),
      envelope_mu=jnp.asarray([attenuation(m, cfg.energy_kev) for m in MODEL_MATERIALS],
                              jnp.float32)[envelope_material] * u(0.95, 1.05),
      insert_material=insert_material.astype(jnp.float32),
      # Simple-bone rods: a bone-equivalent resin (hydroxyapatite-filled epoxy / plaster)
      # with a fraction of cortical bone's attenuation; other-material rods: the table.
      insert_mu=jnp.where(
          attack == MODEL_SIMPLE_BONES, attenuation("cortical_bone", cfg.energy_kev) * u(0.35, 1.0),
          jnp.asarray([attenuation(m, cfg.energy_kev) for m in ROD_MATERIALS],
                      jnp.float32)[insert_material]),
      # Simple bones: rod radius as a fraction of the bone's; other materials: radius, mm.
      rod_size=jnp.where(attack == MODEL_SIMPLE_BONES, u(0.5, 0.9), u(rod_radius[0], rod_radius[1])),
      rod_tube=((u() < 0.5) & (insert_material != _WOOD) & (insert_material != _STEEL)).astype(
          jnp.float32),
      ink_scale=u(0.5, 1.6),
      halftone_freq=u(0.18, 0.45),
      halftone_angle=u(0.0, 90.0),
      print_gamma=jnp.exp(u(math.log(0.6), math.log(1.6))),
      backing_mm=u(2.0, 12.0),
  )


# ---------------------------------------------------------------------------------------
# Hand geometry from parameters (all mm; built at trace time over the static topology).
# ---------------------------------------------------------------------------------------

def _tube_tables() -> dict[str, np.ndarray]:
  """Static tables of the 19 tubular hand bones (metacarpals and phalanges), ray by ray."""
  cols = {k: [] for k in ("ray", "pos", "length", "radius", "waist", "plate_t", "distal")}
  for k in range(5):
    lens = [_MC_LEN[k], _PP_LEN[k]] + ([_MP_LEN[k]] if k else []) + [_DP_LEN[k]]
    rads = [_MC_R[k], _PP_R[k]] + ([_MP_R[k]] if k else []) + [_DP_R[k]]
    for j, (length, rad) in enumerate(zip(lens, rads)):
      last = j == len(lens) - 1
      cols["ray"].append(k)
      cols["pos"].append(j)
      cols["length"].append(length)
      cols["radius"].append(rad)
      cols["waist"].append(0.28 if j == 0 else (0.35 if last else 0.32))
      # Physis: at the head of metacarpals II-V, at the base of the thumb metacarpal and
      # of every phalanx (t runs from the proximal to the distal cap centre).
      cols["plate_t"].append(0.9 if (j == 0 and k > 0) else 0.1)
      cols["distal"].append(float(last))
  t = {k: np.asarray(v, np.int32 if k in ("ray", "pos") else np.float32)
       for k, v in cols.items()}
  n = len(t["ray"])
  # chain[j, i] = 1 where bone i precedes bone j on the same ray: start_j = base + sum_i.
  t["chain"] = ((t["ray"][:, None] == t["ray"][None, :])
                & (t["pos"][None, :] < t["pos"][:, None])).astype(np.float32)
  t["joint"] = np.flatnonzero(t["pos"] > 0)      # bone j articulates with bone j - 1
  t["bulge"] = np.flatnonzero(t["pos"] > 1)      # PIP / DIP / thumb IP knuckles
  t["mc"] = np.flatnonzero(t["pos"] == 0)
  assert n == 19 and len(t["joint"]) == N_JOINTS
  return t


_TUBES = _tube_tables()
_SPREAD_GAIN = np.asarray([14.0, -3.0, 0.0, 3.0, 6.0], np.float32)
# Style v3: a spread hand abducts its thumb (the bone-age PA view), as real ones show.
_SPREAD_GAIN_V3 = np.asarray([-30.0, -3.0, 0.0, 3.0, 6.0], np.float32)
# Style v3: depth of the palm's solids (palm, metacarpal pads, thenar) on top of v2's.
_PALM_DEPTH_V3 = 0.7
_FOREARM_DEPTH_V3 = 0.6


def _hand_geometry(p: dict[str, jax.Array], key, style: str = "v1") -> dict[str, jax.Array]:
  """Bone capsules, joint capsules and envelope solids of one hand (mm), vectorised."""
  v2 = style in _CALIBRATED
  tb = _TUBES
  s = p["hand_scale"]
  spread = p["spread"]
  gap = p["joint_gap_mm"] * s
  gain = _SPREAD_GAIN_V3 if style in _FRAMED else _SPREAD_GAIN
  mc_ang = jnp.asarray(_MC_ANGLE) + (spread - 1.0) * gain
  ph_ang = mc_ang + jnp.asarray(_FINGER_FAN) * spread
  ang = jnp.where(tb["pos"] == 0, mc_ang[tb["ray"]], ph_ang[tb["ray"]])
  d = _unit(ang)                                                      # [19, 2]
  length = tb["length"] * s * (1.0 + 0.03 * jax.random.normal(key, (19,)))
  rad = tb["radius"] * s
  step = (length + gap)[:, None] * d
  start = jnp.asarray(_MC_BASE, jnp.float32)[tb["ray"]] * s + tb["chain"] @ step
  end = start + length[:, None] * d
  j, prev = tb["joint"], tb["joint"] - 1
  joint_c = start[j] - 0.5 * gap * d[j]
  # Fingers: one capsule per phalanx (the distal one reaches ~2.5 mm past the bone tip).
  f_r = 2.0 * rad[j] + 1.0 * s
  distal = tb["distal"][j][:, None]
  fing_a = start[j] - s * d[j]
  fing_b = end[j] + distal * (-0.65 * f_r)[:, None] * d[j]
  bulge_c = start[tb["bulge"]] - 0.5 * gap * d[tb["bulge"]]
  bulge_r = 1.1 * (2.0 * rad[tb["bulge"] - 1] + 1.0 * s)

  car = np.asarray([c[1:6] for c in _CARPALS], np.float32)
  car_c = jnp.asarray(car[:, :2]) * s
  car_u = _unit(jnp.asarray(car[:, 2]))
  car_h = jnp.asarray(car[:, 3]) * s
  onset = jnp.asarray([c[6] for c in _CARPALS], jnp.float32) - 1.0 * (1.0 - p["male"])
  # Carpal ossification nucleus grows from its onset age to full size over ~8 years.
  ossified = jnp.clip((p["age"] - onset) / 8.0, 0.0, 1.0) ** 0.6
  fa = np.asarray([f[1:] for f in (_FOREARM_V2 if v2 else _FOREARM)], np.float32)
  fa_a = jnp.asarray(np.stack([fa[:, 0], fa[:, 1] + fa[:, 3]], -1)) * s
  fa_b = jnp.asarray(np.stack([fa[:, 0], fa[:, 2] - fa[:, 3]], -1)) * s
  a = jnp.concatenate([start + rad[:, None] * d, car_c - car_h[:, None] * car_u, fa_a])
  b = jnp.concatenate([end - rad[:, None] * d, car_c + car_h[:, None] * car_u, fa_b])
  car_r = car[:, 4] * (_CARPAL_R_V2 if v2 else 1.0)
  r = jnp.concatenate([rad, jnp.asarray(car_r) * s, jnp.asarray(fa[:, 3]) * s])
  n_car, n_fa = len(_CARPALS), len(_FOREARM)
  waist = np.concatenate([tb["waist"], np.zeros(n_car), fa[:, 4]]).astype(np.float32)
  tubular = np.asarray([1.0] * 19 + [0.0] * n_car + [1.0] * n_fa, np.float32)
  plate_t = np.concatenate([tb["plate_t"], np.full(n_car, 0.5), fa[:, 5]]).astype(np.float32)
  seg_len = jnp.linalg.norm(b - a, axis=-1) + 2.0 * r
  mc_a, mc_b = a[tb["mc"]], b[tb["mc"]]
  # Envelope: forearm, palm slab, metacarpal pads, thenar eminence, fingers, knuckles.
  env_a = jnp.concatenate([jnp.asarray([[1.0, -170.0], [-3.0, 40.0]]) * s, mc_a,
                           jnp.asarray([[-10.0, 10.0]]) * s, fing_a, bulge_c])
  env_b = jnp.concatenate([jnp.asarray([[1.0, 0.0], [1.0, 55.0]]) * s, mc_b, mc_b[:1],
                           fing_b, bulge_c])
  env_r = jnp.concatenate([jnp.asarray([28.0, 37.0]) * s, jnp.full((5,), 11.5) * s,
                           jnp.asarray([14.0]) * s, f_r, bulge_r])
  env_c = jnp.concatenate([jnp.asarray([18.0, 15.0]) * s, jnp.full((5,), 14.5) * s,
                           jnp.asarray([14.0]) * s, 0.85 * f_r, 0.85 * bulge_r])
  if v2:  # thinner palm and fingers; a slimmer forearm (solid 0) that keeps its depth
    env_c = env_c * jnp.asarray([1.0] + [_SOFT_DEPTH_V2] * (env_c.shape[0] - 1))
    if style in _FRAMED:
      env_c = env_c.at[1:8].multiply(_PALM_DEPTH_V3).at[0].multiply(_FOREARM_DEPTH_V3)
    env_r = env_r.at[0].multiply(0.8 if style == "v2" else V3_FOREARM_R)
  return dict(a=a, b=b, r=r, waist=waist, tubular=tubular, plate_t=plate_t,
              seg_len=seg_len, oss=ossified, n_tubes=19,
              joint_c=joint_c, joint_u=d[j],
              joint_h=0.5 * gap + 0.45 * rad[prev], joint_r=1.12 * rad[prev],
              env_a=env_a, env_b=env_b, env_r=env_r, env_c=env_c * p["tissue_scale"])


# ---------------------------------------------------------------------------------------
# Rendering.
# ---------------------------------------------------------------------------------------

def _pixel_grid(cfg: PalmXrayConfig):
  n = cfg.size
  c = (np.arange(n, dtype=np.float32) + 0.5 - n / 2) * cfg.pixel_mm
  x, y = np.meshgrid(c, -c)
  return jnp.asarray(x), jnp.asarray(y)


def _bandpass(key, cfg: PalmXrayConfig, sigma_mm: float):
  """Zero-mean, unit-std band-pass noise [H, W] (difference of Gaussians)."""
  s1 = max(0.5, sigma_mm / cfg.pixel_mm)
  noise = jax.random.normal(key, (cfg.size, cfg.size, 1), jnp.float32)
  field = (gaussian_blur(noise, s1, truncate=3.0) - gaussian_blur(noise, 2.5 * s1,
                                                                  truncate=3.0))[..., 0]
  return field / (jnp.std(field) + 1e-6)  # +eps: a constant field cannot divide by 0


def _smooth_field(key, cfg: PalmXrayConfig, cells: int = 6):
  """Low-frequency field in about [-1, 1] (cubic upsampling of a coarse random grid)."""
  coarse = jax.random.uniform(key, (cells, cells), jnp.float32, -1.0, 1.0)
  return jax.image.resize(coarse, (cfg.size, cfg.size), "cubic")


def _frame_v3(g, p, cfg: PalmXrayConfig) -> dict[str, jax.Array]:
  """Style v3: frames the hand as the clinical loader crops a radiograph.

  The radiograph's lower edge cuts the forearm ``forearm_mm`` below the radiocarpal joint
  line (a horizontal line on the detector); the loader crops a square around the hand's
  bounding box (the envelope solids above that edge, rotated and mirrored as imaged) with
  ``V3_MARGIN`` of its longer side on every side. Returns the magnification and shifts
  that put that square on the image, the square's side ``frame_mm`` and the edge's
  height ``cut_mm`` (object mm, detector axes, relative to the hand's centre).
  """
  th = jnp.deg2rad(p["rotation_deg"])
  c, sn = jnp.cos(th), jnp.sin(th)

  def to_detector(pt):  # hand mm -> detector axes (inverse of _object_frame's map)
    x = jnp.where(p["mirrored"] > 0.5, -pt[..., 0], pt[..., 0])
    y = pt[..., 1] - 90.0 * p["hand_scale"]
    return c * x - sn * y, sn * x + c * y

  ends = jnp.concatenate([g["env_a"], g["env_b"]])
  # The loader's hand mask ends where the tissue is thin: inside the envelope's outline.
  r = V3_MASK_EDGE * jnp.concatenate([g["env_r"], g["env_r"]])
  xs, ys = to_detector(ends)
  _, wrist_y = to_detector(jnp.zeros((2,), jnp.float32))
  cut = wrist_y - p["forearm_mm"]
  x_lo, x_hi = jnp.min(xs - r), jnp.max(xs + r)
  top = jnp.max(ys + r)
  side = jnp.maximum(x_hi - x_lo, top - cut) * (1.0 + 2.0 * V3_MARGIN)
  # A crop that also took in other blobs (a plate edge, a label joined to the hand) is
  # larger than the hand's box: zoomed out by ``zoom``, the hand off-centre within it.
  slack = 0.5 * (p["zoom"] - 1.0) * side
  side = side * p["zoom"]
  return dict(magnification=cfg.fov_mm / side,
              shift_x_mm=-0.5 * (x_lo + x_hi) + slack * p["zoom_x"],
              shift_y_mm=-0.5 * (top + cut) + slack * p["zoom_y"], frame_mm=side, cut_mm=cut)


def _object_frame(p, key, cfg: PalmXrayConfig) -> dict[str, jax.Array]:
  """What every object kind shares: the hand's geometry, envelope and bone coordinates.

  Style v3 frames the hand from its own geometry (:func:`_frame_v3`): ``framing`` holds
  the parameters it set and ``keep`` the pixels above the radiograph's lower edge.
  """
  g = _hand_geometry(p, key, cfg.style)
  framing = {}
  if cfg.style in _FRAMED:
    framing = _frame_v3(g, p, cfg)
    p = dict(p, **{k: framing[k] for k in ("magnification", "shift_x_mm", "shift_y_mm")})
  x0, y0 = _pixel_grid(cfg)
  # Pixel -> hand coordinates: undo shift, rotation and mirroring; the hand's centre
  # (y ~ 90 mm for an adult) sits at the image centre.
  th = jnp.deg2rad(p["rotation_deg"])
  # Geometric magnification (object-detector distance): detector mm -> object mm.
  xs = x0 / p["magnification"] - p["shift_x_mm"]
  ys = y0 / p["magnification"] - p["shift_y_mm"]
  x = jnp.cos(th) * xs + jnp.sin(th) * ys
  y = -jnp.sin(th) * xs + jnp.cos(th) * ys + 90.0 * p["hand_scale"]
  x = jnp.where(p["mirrored"] > 0.5, -x, x)
  # Envelope: the union of mid-plane-symmetric solids has the maximum chord.
  _, d2_env = _segment_coords(x, y, g["env_a"], g["env_b"])
  env = jnp.max(_chord(d2_env, g["env_r"][:, None, None], g["env_c"][:, None, None]), 0)
  t, d2 = _segment_coords(x, y, g["a"], g["b"])
  out = dict(g=g, x=x, y=y, env=env, t=t, d2=d2)
  if framing:
    out.update(framing=framing, keep=(ys >= framing["cut_mm"]).astype(jnp.float32))
  return out


_CM = 0.1  # mm -> cm (mu is in 1/cm)


def _live_hand(f, p, key, cfg: PalmXrayConfig):
  """Line integral of a live hand [H, W] and its bone / joint masks."""
  k_tex, k_fat = jax.random.split(key)
  mu = {m: attenuation(m, cfg.energy_kev) for m in MATERIALS}
  g, t, d2, env = f["g"], f["t"], f["d2"], f["env"]
  n_t = g["n_tubes"]
  # Tapered capsules (flared ends, narrow shaft); 4 t (1 - t) ~ sin(pi t) is the shaft
  # profile (1 mid-shaft, 0 at the cap centres).
  shaft = 4.0 * t * (1.0 - t)
  r_full = g["r"][:, None, None] * (1.0 - g["waist"][:, None, None] * shaft)
  outer_full = _chord(d2, r_full)
  # Carpals of children: a smaller ossification nucleus inside the cartilage anlage.
  car = slice(n_t, n_t + len(_CARPALS))
  r_bone = r_full.at[car].multiply(g["oss"][:, None, None])
  outer = outer_full.at[car].set(_chord(d2[car], r_bone[car]))
  tub = g["tubular"][:, None, None]
  # Cortical shell: thick at the shaft (cortical index of the radius), thin at the ends
  # and around carpals.
  ci = p["cortical_index"] * (0.25 + 0.75 * shaft) * tub + 0.14 * (1.0 - tub)
  inner = _chord(d2, r_bone * (1.0 - ci))
  # Growth plate: a cartilage band (~1.3 mm x hand scale) across the bone near one end.
  plate_half = 0.65 * p["hand_scale"] * p["growth_plate_open"] / g["seg_len"][:, None, None]
  plate = (jnp.abs(t - g["plate_t"][:, None, None]) < plate_half) * tub
  keep = 1.0 - plate
  # Trabecular bone fills the ends (epiphyses, carpals); the shaft holds mostly marrow.
  # v2: a marrow-filled medullary canal (darker shaft centre) and finer trabecular texture.
  canal = 0.08 if cfg.style in _CALIBRATED else 0.35
  bvtv_t = p["bvtv"] * (canal + 0.65 * (1.0 - shaft) * tub + 0.65 * (1.0 - tub))
  tex = _bandpass(k_tex, cfg, cfg.texture_mm)
  amp = p["texture_amp"] * (0.5 if cfg.style in _CALIBRATED else 1.0)
  bv = jnp.clip(1.0 + amp * tex, 0.0, 2.5)
  t_cort = jnp.sum((outer - inner) * keep, 0)
  t_inner = jnp.sum(inner * keep, 0)
  t_bv = jnp.minimum(jnp.sum(inner * keep * bvtv_t, 0) * bv, t_inner)
  t_bone = jnp.minimum(jnp.sum(outer_full, 0), env)
  t_cart = jnp.sum(outer * plate + (outer_full - outer), 0)  # plates + carpal anlagen
  # Joint spaces: cartilage / synovial capsule where the joint capsule holds no bone.
  ja = g["joint_c"] - g["joint_h"][:, None] * g["joint_u"]
  jb = g["joint_c"] + g["joint_h"][:, None] * g["joint_u"]
  _, d2j = _segment_coords(f["x"], f["y"], ja, jb)
  t_joint = jnp.maximum(jnp.sum(_chord(d2j, g["joint_r"][:, None, None]), 0) - t_bone, 0.0)
  t_joint = jnp.minimum(t_joint, env - t_bone)
  fat = jnp.clip(p["fat_fraction"] * (1.0 + 0.6 * _smooth_field(k_fat, cfg)), 0.0, 0.8)
  mu_env = (1.0 - fat) * mu["soft_tissue"] + fat * mu["adipose"]
  yellow = jnp.clip((p["age"] - 5.0) / 20.0, 0.0, 0.8)
  mu_marrow = (1.0 - yellow) * mu["soft_tissue"] + yellow * mu["adipose"]
  t_soft = env - t_bone - t_joint
  a = _CM * (mu_env * t_soft + mu["cortical_bone"] * (t_cort + t_bv)
             + mu_marrow * (t_inner - t_bv) + mu["cartilage"] * (t_cart + t_joint))
  return a, t_bone > 0.5, t_joint > 0.3


def _cast(f, p, key, cfg: PalmXrayConfig, *, rods: bool):
  """A cast of a hand (homogeneous envelope), with or without rods at the bones' places."""
  env = f["env"]
  if not rods:
    return _CM * p["envelope_mu"] * env, jnp.zeros(env.shape, bool)
  g, d2 = f["g"], f["d2"]
  # Simple bones: rods of a fraction of each bone's radius; other materials: fixed radius.
  r_rod = jnp.where(p["attack"] == MODEL_SIMPLE_BONES, g["r"] * p["rod_size"],
                    p["rod_size"] * jnp.ones_like(g["r"]))[:, None, None]
  rod = _chord(d2, r_rod) - p["rod_tube"] * _chord(d2, 0.65 * r_rod)
  rod = jnp.minimum(jnp.sum(rod, 0), env)
  # Wood grain / knots: a coarse texture of +-35 % density; the other materials are uniform.
  grain = 1.0 + 0.35 * (p["insert_material"] == _WOOD) * _bandpass(key, cfg, 2.0)
  a = _CM * (p["envelope_mu"] * (env - rod)
             + p["insert_mu"] * jnp.clip(grain, 0.3, 2.0) * rod)
  return a, rod > 0.5


def _expected(a, exposure, cfg: PalmXrayConfig, p, *, scale: int):
  """Expected counts per detector pixel after the PSF and area integration by ``scale``.

  The beam has a heel effect (a linear intensity ramp across the field) and the object
  scatters a fraction (scatter-to-primary ratio ``spr``) of the primary beam, modelled as
  a very smooth copy of the transmission (8x8-pixel block means, bilinearly upsampled).
  """
  n = cfg.size
  trans = jnp.exp(-a)
  coarse = trans.reshape(n // 8, 8, n // 8, 8).mean(axis=(1, 3))
  scatter = jax.image.resize(coarse, (n, n), "linear")
  ramp = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)
  ang = jnp.deg2rad(p["heel_angle"])
  heel = 1.0 + p["heel"] * (jnp.cos(ang) * ramp[None, :] + jnp.sin(ang) * ramp[:, None])
  trans = (heel * (trans + p["spr"] * scatter))[..., None]
  sigma = cfg.psf_sigma_px if scale == 1 else math.hypot(cfg.psf_sigma_px,
                                                        cfg.lr_psf_sigma_px)
  if cfg.style in _CALIBRATED:
    # Acquisition sharpness drawn per sample (both sides of v1's fixed PSF), every class.
    lr_extra = 0.0 if scale == 1 else (cfg.lr_psf_sigma_px * p["lr_psf_factor"]) ** 2
    trans = _fft_blur(trans[..., 0], jnp.sqrt(p["psf_px"] ** 2 + lr_extra))
  else:
    trans = gaussian_blur(trans, sigma, truncate=3.0, mode="nearest")[..., 0]
  flat = exposure
  if scale > 1:
    h = cfg.size // scale
    trans = trans.reshape(h, scale, h, scale).mean(axis=(1, 3))
    flat = exposure * scale * scale
  return flat * trans, flat


def _acquire(a, key, p, cfg: PalmXrayConfig):
  """HR and LR captures of line integral ``a``: Poisson + read noise, flat-field log.

  Both detectors' counts are drawn in one ``jax.random.poisson`` call (one compiled
  sampler). Returns ``(p_hr, p_lr)``, the measured line integrals ``-ln(N / I0)``.
  """
  exposure, read_noise = p["exposure"], p["read_noise"]
  lam_hr, flat_hr = _expected(a, exposure, cfg, p, scale=1)
  lam_lr, flat_lr = _expected(a, exposure * cfg.lr_dose, cfg, p, scale=cfg.scale)
  lam = jnp.concatenate([lam_hr.ravel(), lam_lr.ravel()])
  flat = jnp.concatenate([jnp.full(lam_hr.size, flat_hr), jnp.full(lam_lr.size, flat_lr)])
  k1, k2 = jax.random.split(key)
  counts = jax.random.poisson(k1, lam, dtype=jnp.int32).astype(jnp.float32)
  counts = counts + read_noise * jax.random.normal(k2, counts.shape, jnp.float32)
  # Counts can be <= 0 behind steel or with read noise; clamp to half a count so the log
  # stays finite (the pixel saturates at the window's top).
  pv = -jnp.log(jnp.maximum(counts, 0.5) / flat)
  return pv[:lam_hr.size].reshape(lam_hr.shape), pv[lam_hr.size:].reshape(lam_lr.shape)


def _window(p_hr, p):
  """Automatic display window from the HR image's quantiles, jittered per sample."""
  q_lo, q_hi = jnp.quantile(p_hr, p["window_q_lo"]), jnp.quantile(p_hr, p["window_q_hi"])
  rng = jnp.maximum(q_hi - q_lo, 1e-3)  # guards a flat image (zero range)
  lo = q_lo + p["window_lo"] * rng
  hi = jnp.maximum(q_hi + p["window_hi"] * rng, lo + 1e-3)  # keeps hi > lo
  return lo, hi


def _display(pv, lo, hi, gamma, bit_depth: int):
  v = jnp.clip((pv - lo) / (hi - lo), 0.0, 1.0) ** gamma
  levels = float(2 ** bit_depth - 1)
  return jnp.round(v * levels) / levels


def _printed(f, p, key, cfg: PalmXrayConfig):
  """Line integral of a halftone print (on an acrylic plate) of a live radiograph."""
  k_live, k_src = jax.random.split(key)
  a_live, _, _ = _live_hand(f, p, k_live, cfg)
  # The source radiograph: a live capture (Gaussian approximation of its quantum noise),
  # auto-windowed like any radiograph, then printed with the printer's tone curve.
  lam = p["exposure"] * jnp.exp(-a_live)
  # max(lam, 1): behind very dense objects the count rate can underflow to 0.
  src = a_live + jax.random.normal(k_src, a_live.shape) / jnp.sqrt(jnp.maximum(lam, 1.0))
  q_lo, q_hi = jnp.quantile(src, 0.01), jnp.quantile(src, 0.995)
  # max(.., 1e-3): a flat source would divide by zero.
  v = jnp.clip((src - q_lo) / jnp.maximum(q_hi - q_lo, 1e-3), 0.0, 1.0) ** p["print_gamma"]
  # Halftone: clustered-dot screen at a random frequency (cycles/pixel) and angle; dots
  # near the detector's Nyquist frequency alias into moire.
  n = cfg.size
  ii, jj = jnp.meshgrid(jnp.arange(n, dtype=jnp.float32), jnp.arange(n, dtype=jnp.float32),
                        indexing="ij")
  ang = jnp.deg2rad(p["halftone_angle"])
  uu = jnp.cos(ang) * jj + jnp.sin(ang) * ii
  vv = -jnp.sin(ang) * jj + jnp.cos(ang) * ii
  w = 2.0 * jnp.pi * p["halftone_freq"]
  screen = 0.5 + 0.25 * (jnp.cos(w * uu) + jnp.cos(w * vv))
  ink = jax.nn.sigmoid(12.0 * (v - screen))
  ink = gaussian_blur(ink[..., None], 0.5, truncate=3.0)[..., 0]  # dot gain
  mu_pmma = attenuation("pmma_resin", cfg.energy_kev)
  a = _CM * mu_pmma * p["backing_mm"] + p["ink_scale"] * ink
  return a, jnp.zeros(a.shape, bool), jnp.zeros(a.shape, bool)


# ---------------------------------------------------------------------------------------
# Style v2: acquisition and clinical display chain calibrated against real radiographs.
# ---------------------------------------------------------------------------------------

def _fft_blur(x, sigma):
  """Gaussian blur of ``[H, W]`` with a traced ``sigma`` (px): edge-padded FFT filter."""
  pad = 8
  xp = jnp.pad(x, pad, mode="edge")
  f0 = jnp.fft.fftfreq(xp.shape[0])[:, None]
  f1 = jnp.fft.rfftfreq(xp.shape[1])[None, :]
  h = jnp.exp(-2.0 * (jnp.pi * sigma) ** 2 * (f0 * f0 + f1 * f1))
  y = jnp.fft.irfft2(jnp.fft.rfft2(xp) * h, s=xp.shape)
  return y[pad:-pad, pad:-pad]


def _draw_v2(key, p, cfg: PalmXrayConfig) -> dict[str, jax.Array]:
  """Style-v2 acquisition / display / framing parameters, independent of the object kind.

  Drawn from their own key, so v1's parameters stay the same. The hand is framed as a
  clinical loader crops it (fingertips near the top, forearm leaving the bottom, the
  frame's side ~ ``frame_mm`` x hand scale).
  """
  uni = iter(jax.random.uniform(key, (24,), jnp.float32))
  u = lambda lo=0.0, hi=1.0: lo + (hi - lo) * next(uni)
  s = p["hand_scale"]
  frame = u(*V2_FRAME_MM) * s
  return dict(
      # Acquisition: blur sigma (HR px) and dose factor, log-uniform around v1's values.
      psf_px=jnp.exp(u(math.log(V2_PSF_PX[0]), math.log(V2_PSF_PX[1]))),
      lr_psf_factor=u(0.0, 1.0),
      dose=jnp.exp(u(math.log(V2_DOSE[0]), math.log(V2_DOSE[1]))),
      # Display: dynamic-range compression, edge enhancement, levels, gamma, masking.
      drc=u(0.0, 0.35),
      edge_gain=u(0.0, 0.3),
      soft_level=u(0.04, 0.16),
      top_level=u(0.6, 0.95),
      gamma=jnp.exp(u(math.log(0.8), math.log(1.4))),
      masked=(u() < V2_MASKED).astype(jnp.float32),
      bg_level=0.005 + 0.25 * u() ** 2,
      collimator=u(0.32, 0.5),
      # Lead side marker ("L"): present, side, height, size (mm), glyph / tab levels.
      marker=(u() < V2_MARKER).astype(jnp.float32),
      marker_x=jnp.where(u() < 0.5, -1.0, 1.0) * u(0.3, 0.42),
      marker_y=u(-0.4, 0.1),
      marker_mm=u(12.0, 24.0),
      marker_level=u(0.75, 0.95),
      tab_level=u(0.0, 0.3),
      magnification=cfg.fov_mm / frame,
      frame_mm=frame,
      shift_y_mm=s * 90.0 - (s * 198.0 + 0.04 * frame - 0.5 * frame),
      shift_x_mm=u(-0.1, 0.1) * frame,
      rotation_deg=u(-V2_ROTATION_DEG, V2_ROTATION_DEG),
  )


def _draw_v3(key, p, cfg: PalmXrayConfig) -> dict[str, jax.Array]:
  """Style-v3 parameters: v2's draw (same key) with framing, display and background
  re-drawn (from ``fold_in(key, 3)``) after the real train split (``V3_*``)."""
  q = _draw_v2(key, p, cfg)
  uni = iter(jax.random.uniform(jax.random.fold_in(key, 3), (32,), jnp.float32))
  u = lambda lo=0.0, hi=1.0: lo + (hi - lo) * next(uni)
  bg = jnp.interp(u(), jnp.asarray(V3_BG_Q), jnp.asarray(V3_BG))
  soft = bg + u(*V3_SOFT)   # soft tissue lighter than the background
  return dict(
      q,
      forearm_mm=u(*V3_FOREARM_MM) * p["hand_scale"],
      spread=u(*V3_SPREAD),
      mirrored=(u() >= V3_RIGHT).astype(jnp.float32),   # left hand, PA: thumb on the right
      rotation_deg=u(-V3_ROTATION_DEG, V3_ROTATION_DEG),
      shift_x_mm=jnp.zeros(()),   # the frame is centred on the hand (_frame_v3)
      masked=(u() < V3_MASKED).astype(jnp.float32),
      bg_level=bg,
      collimator=jnp.where(u() < V3_COLLIMATOR, u(0.36, 0.5), 0.5),
      marker=(u() < V3_MARKER).astype(jnp.float32),
      marker_x=-u(0.3, 0.42),
      marker_y=u(-0.4, -0.05),
      soft_level=soft,
      top_level=jnp.maximum(jnp.interp(u(), jnp.asarray(V3_BG_Q), jnp.asarray(V3_TOP)),
                            soft + 0.1),
      bg_ramp=u(0.0, V3_BG_RAMP) * (bg > 0.01),
      bg_ramp_angle=u(0.0, 360.0),
      skin_ramp=V3_SKIN_RAMP,
      gamma=jnp.exp(u(math.log(V3_GAMMA[0]), math.log(V3_GAMMA[1]))),
      zoom=jnp.where(u() < V3_ZOOMED, u(*V3_ZOOM[1:]), u(*V3_ZOOM[:2])),
      zoom_x=u(-1.0, 1.0),
      zoom_y=u(-1.0, 1.0),
      psf_px=jnp.exp(u(math.log(V3_PSF_PX[0]), math.log(V3_PSF_PX[1]))),
      dose=jnp.exp(u(math.log(V3_DOSE[0]), math.log(V3_DOSE[1]))),
      edge_gain=u(0.0, 0.2),
      drc=u(*V3_DRC),
      lr_psf_factor=u(0.0, V3_LR_PSF),
  )


def _draw_v4(key, p, cfg: PalmXrayConfig) -> dict[str, jax.Array]:
  """Style-v4 parameters: v3's draw (same key) plus the film / cassette plate behind the
  hand (from ``fold_in(key, 4)``; ``V4_*``)."""
  q = _draw_v3(key, p, cfg)
  uni = iter(jax.random.uniform(jax.random.fold_in(key, 4), (16,), jnp.float32))
  u = lambda lo=0.0, hi=1.0: lo + (hi - lo) * next(uni)
  on = (u() < V4_PLATE).astype(jnp.float32)
  return dict(
      q,
      top_level=jnp.maximum(jnp.interp(u(), jnp.asarray(V3_BG_Q), jnp.asarray(V4_TOP)),
                            q["soft_level"] + 0.1),
      forearm_mm=u(*V4_FOREARM_MM) * p["hand_scale"],
      # Plate edges as fractions of the frame from its centre (an edge beyond +-0.5 lies
      # outside the crop); the level it adds to the background; its tilt.
      plate=on * (q["masked"] < 0.5),
      plate_level=u(*V4_PLATE_LEVEL),
      plate_left=-u(*V4_PLATE_SIDE),
      plate_right=u(*V4_PLATE_SIDE),
      plate_top=u(*V4_PLATE_TOP),
      plate_bottom=-u(*V4_PLATE_BOTTOM),
      plate_angle=u(-V4_PLATE_DEG, V4_PLATE_DEG),
  )


def _frame_coords(n: int) -> jax.Array:
  """Pixel centres of an ``n``-pixel frame as fractions of it from its centre, ``[n]``."""
  return (jnp.arange(n, dtype=jnp.float32) + 0.5) / n - 0.5


def _plate(n: int, q) -> jax.Array:
  """Area-sampled mask ``[n, n]`` of the (tilted) plate rectangle of ``q``."""
  c = _frame_coords(n)
  xx, yy = c[None, :], -c[:, None]
  th = jnp.deg2rad(q["plate_angle"])
  x = jnp.cos(th) * xx + jnp.sin(th) * yy
  y = -jnp.sin(th) * xx + jnp.cos(th) * yy
  edge = lambda d: jnp.clip(d * n + 0.5, 0.0, 1.0)
  return (edge(x - q["plate_left"]) * edge(q["plate_right"] - x)
          * edge(q["plate_top"] - y) * edge(y - q["plate_bottom"]))


def _marker(img, q, cfg: PalmXrayConfig):
  """Burns a lead side marker (an "L" on a tab, area-sampled) into a displayed image.

  Positions are fractions of the frame: ``marker_x`` across, ``marker_y`` up from the
  centre; the tab is ``marker_mm`` wide (frame mm) and 1.4 times as tall.
  """
  n = img.shape[0]
  c = _frame_coords(n)
  xx, yy = c[None, :], -c[:, None]
  w = q["marker_mm"] / q["frame_mm"]
  u, v = (xx - q["marker_x"]) / w + 0.5, (yy - q["marker_y"]) / (1.4 * w) + 0.5
  inside = lambda a0, a1, b0, b1: jnp.clip(jnp.minimum(u - a0, a1 - u) * n * w + 0.5, 0, 1) * \
      jnp.clip(jnp.minimum(v - b0, b1 - v) * n * 1.4 * w + 0.5, 0, 1)
  tab = inside(0.0, 1.0, 0.0, 1.0)
  glyph = jnp.maximum(inside(0.25, 0.45, 0.15, 0.85), inside(0.25, 0.75, 0.15, 0.32))
  on = q["marker"]
  out = img * (1 - on * tab) + on * tab * q["tab_level"]
  return out * (1 - on * glyph) + on * glyph * q["marker_level"]


def _display_v2(pv_hr, pv_lr, q, cfg: PalmXrayConfig):
  """Clinical display of measured line integrals: mask, DRC, window, edges, 8 bit.

  1. Foreground: the line integral smoothed over ~1.5 mm above 6 % of the way from the
     background level to the 99th percentile (what the display software segments).
  2. Dynamic-range compression: ``p - drc * G_10mm(p)`` evens out soft-tissue thickness.
  3. Window from the HR foreground's 1st and 99.9th percentiles to ``[soft, top]`` with a
     gamma; then unsharp-mask edge enhancement (sigma 1 px) and a gain that keeps the
     brightest HR pixel at 0.97 at most, so nothing clips white.
  4. Background exactly 0 where masked, else a grey detector level with its noise.
  5. Quantised to 8 bits (the export of clinical viewers).
  The LR capture uses the HR capture's levels (the same session settings).
  """
  def smooth(x, mm):
    px = mm / (cfg.fov_mm / x.shape[0])
    return gaussian_blur(x[..., None], max(px, 0.3), truncate=3.0, mode="nearest")[..., 0]

  s_hr = smooth(pv_hr, 1.5)
  b_lo, b_hi = jnp.quantile(s_hr, 0.01), jnp.quantile(s_hr, 0.99)
  thr = b_lo + 0.06 * jnp.maximum(b_hi - b_lo, 1e-3)

  def compress(pv):
    return pv - q["drc"] * smooth(pv, 10.0)

  d_hr = compress(pv_hr)
  fg_hr = s_hr > thr
  # Skin-edge ramp of the segmentation (v3: wider, thin tissue fades into the background).
  soft_edge = q.get("skin_ramp", 0.5) * (thr - b_lo) + 1e-3
  vals = jnp.where(fg_hr, d_hr, jnp.nan)
  lo, hi = jnp.nanquantile(vals, 0.01), jnp.nanquantile(vals, 0.995)
  lo = jnp.where(jnp.isfinite(lo), lo, jnp.min(d_hr))   # an empty foreground
  hi = jnp.maximum(jnp.where(jnp.isfinite(hi), hi, jnp.max(d_hr)), lo + 1e-3)
  span = q["top_level"] - q["soft_level"]

  def render(pv, fg):  # fg: the smoothed line integral the segmentation thresholds
    v = jnp.clip((compress(pv) - lo) / (hi - lo), 0.0, 1.0) ** q["gamma"]
    disp = q["soft_level"] + span * v
    disp = disp + q["edge_gain"] * (disp - gaussian_blur(disp[..., None], 1.0, truncate=3.0,
                                                         mode="nearest")[..., 0])
    bg = q["bg_level"] + 0.3 * span / (hi - lo) * (pv - b_lo)
    if "bg_ramp" in q:   # v3: a scanned film's uneven background (a linear ramp)
      r = _frame_coords(pv.shape[0])
      ang = jnp.deg2rad(q["bg_ramp_angle"])
      bg = jnp.maximum(bg + q["bg_ramp"] * (jnp.cos(ang) * r[None, :]
                                            + jnp.sin(ang) * r[:, None]), 0.0)
    if "plate" in q:   # v4: the film / cassette behind the hand, lighter than around it
      bg = bg + q["plate"] * q["plate_level"] * _plate(pv.shape[0], q)
    w = jnp.clip((fg - thr) / soft_edge, 0.0, 1.0)
    out = w * disp + (1.0 - w) * jnp.where(q["masked"] > 0.5, 0.0, bg)
    # Collimator shutters left and right of the hand, blacked out by the display.
    c = _frame_coords(out.shape[1])
    return jnp.where(jnp.abs(c - q["shift_x_mm"] / q["frame_mm"])[None, :] < q["collimator"],
                     out, 0.0)

  out_hr = render(pv_hr, s_hr)
  out_lr = render(pv_lr, smooth(pv_lr, 1.5))
  gain = jnp.minimum(1.0, 0.97 / jnp.maximum(jnp.max(out_hr), 1e-3))
  out_hr = _marker(out_hr, q, cfg) / gain
  out_lr = _marker(out_lr, q, cfg) / gain
  hr = jnp.round(jnp.clip(out_hr * gain, 0.0, 0.985) * 255.0) / 255.0
  lr = jnp.round(jnp.clip(out_lr * gain, 0.0, 0.985) * 255.0) / 255.0
  return hr, lr, lo, hi


def _sample_one(key, forced_attack, cfg: PalmXrayConfig):
  k_par, k_geo, k_obj, k_noise = jax.random.split(key, 4)
  p = _draw_params(k_par, forced_attack, cfg)
  if cfg.style in _CALIBRATED:
    draw = {"v2": _draw_v2, "v3": _draw_v3, "v4": _draw_v4}[cfg.style]
    q = draw(jax.random.fold_in(key, 2), p, cfg)
    # Flat-field (gain) calibration of a digital detector removes the heel effect.
    p = dict(p, exposure=p["exposure"] * q["dose"], gamma=q["gamma"], psf_px=q["psf_px"],
             heel=jnp.zeros_like(p["heel"]),
             lr_psf_factor=q["lr_psf_factor"],
             **{k: q[k] for k in ("magnification", "shift_x_mm", "shift_y_mm",
                                  "rotation_deg")})
    if cfg.style in _FRAMED:
      p = dict(p, **{k: q[k] for k in ("spread", "mirrored", "forearm_mm", "zoom",
                                       "zoom_x", "zoom_y")})
  f = _object_frame(p, k_geo, cfg)
  if "framing" in f:   # v3: framed from the hand's geometry
    p = dict(p, **{k: f["framing"][k] for k in ("magnification", "shift_x_mm",
                                                "shift_y_mm")})
    q = dict(q, frame_mm=f["framing"]["frame_mm"])
  no_joint = jnp.zeros(f["env"].shape, bool)
  branches = [
      lambda: _live_hand(f, p, k_obj, cfg),
      lambda: _cast(f, p, k_obj, cfg, rods=False) + (no_joint,),
      lambda: _cast(f, p, k_obj, cfg, rods=True) + (no_joint,),
      lambda: _cast(f, p, k_obj, cfg, rods=True) + (no_joint,),
      lambda: _printed(f, p, k_obj, cfg),
  ]
  kind = p["attack"]
  # One branch runs per sample under lax.map (CPU); under vmap all run and one is selected.
  a, bone_mask, joint_mask = jax.lax.switch(kind, branches)
  if "keep" in f:   # v3: nothing below the radiograph's lower edge
    a, bone_mask, joint_mask = a * f["keep"], bone_mask & (f["keep"] > 0), \
        joint_mask & (f["keep"] > 0)
  p_hr, p_lr = _acquire(a, k_noise, p, cfg)
  if cfg.style in _CALIBRATED:
    hr, lr, lo, hi = _display_v2(p_hr, p_lr, q, cfg)
  else:
    lo, hi = _window(p_hr, p)
    hr = _display(p_hr, lo, hi, p["gamma"], cfg.bit_depth)
    lr = _display(p_lr, lo, hi, p["gamma"], cfg.bit_depth)
  g = f["g"]
  off_bone = jnp.all(f["d2"] > (g["r"] ** 2)[:, None, None], axis=0)
  params = {k: p[k].astype(jnp.float32) for k in PARAM_NAMES}
  params["window_lo"], params["window_hi"] = lo, hi
  return dict(
      hr=hr[..., None].astype(jnp.float32),
      lr=lr[..., None].astype(jnp.float32),
      label=p["label"],
      attack=kind,
      attenuation=a.astype(jnp.float32),
      bone_mask=bone_mask,
      joint_mask=joint_mask,
      soft_mask=(f["env"] * f.get("keep", 1.0) > 1.0) & off_bone & (kind != PRINTED_RADIOGRAPH),
      params=params,
  )


@functools.partial(jax.jit, static_argnums=(1, 2))
def _sample_jit(key, n: int, cfg: PalmXrayConfig, start, attacks):
  idx = start + jnp.arange(n, dtype=jnp.int32)
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
  chunk = cfg.vmap_chunk or (1 if jax.default_backend() == "cpu" else n)
  return jax.lax.map(lambda ka: _sample_one(ka[0], ka[1], cfg), (keys, attacks),
                     batch_size=min(chunk, n))


def sample(key: ArrayLike, n: int, config: PalmXrayConfig | None = None, *,
           start: ArrayLike = 0, attacks: ArrayLike | None = None) -> dict[str, Any]:
  """Draws ``n`` simulated palm radiographs (live and spoof) from ``key``.

  Sample ``i`` uses the key ``jax.random.fold_in(key, start + i)``, so a batch is a pure
  function of ``(key, start, n, config)`` and ``sample(key, 8)`` equals the concatenation of
  ``sample(key, 4)`` and ``sample(key, 4, start=4)`` (shard-friendly generation). Jittable
  with ``n`` and ``config`` static.

  Args:
    key: a ``jax.random`` key (typed or raw uint32[2]).
    n: number of samples (static).
    config: :class:`PalmXrayConfig` (static); default settings when ``None``.
    start: index of the first sample.
    attacks: optional int ``[n]`` forcing each sample's attack kind (index into
      ``ATTACK_NAMES``; -1 draws it).

  Returns:
    A dict of arrays with leading dimension ``n``:
      ``hr`` float32 ``[n, S, S, 1]`` in [0, 1] (quantised to ``bit_depth``), bone bright;
      ``lr`` float32 ``[n, S/scale, S/scale, 1]``: the low-resolution acquisition;
      ``label`` int32 (1 live, 0 spoof); ``attack`` int32 (``ATTACK_NAMES`` index);
      ``attenuation`` float32 ``[n, S, S]``: the noise-free line integral ``sum mu t``;
      ``bone_mask``, ``joint_mask``, ``soft_mask`` bool ``[n, S, S]``: pixels whose rays
      cross bone (or rods), joint soft tissue, or soft tissue only;
      ``params``: dict of float32 ``[n]`` generating parameters (``PARAM_NAMES``).

  Raises:
    InputError: for a bad ``n``, ``config``, ``key`` or ``attacks``.
  """
  config = PalmXrayConfig() if config is None else config
  if not isinstance(config, PalmXrayConfig):
    raise InputError(f"config: expected a PalmXrayConfig, got {type(config).__name__}")
  if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
    raise InputError(f"n: expected a positive integer, got {n!r}")
  n = int(n)
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and not (
      key.dtype == jnp.uint32 and key.shape == (2,)):
    raise InputError(f"key: expected a jax.random key, got dtype {key.dtype} shape "
                     f"{key.shape}")
  if attacks is None:
    attacks = jnp.full((n,), -1, jnp.int32)
  else:
    if not isinstance(attacks, jax.core.Tracer):
      arr = np.asarray(attacks)
      if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise InputError(f"attacks: expected int array of shape ({n},), got {arr.dtype} "
                         f"{arr.shape}")
      if arr.min() < -1 or arr.max() >= len(ATTACK_NAMES):
        raise InputError(f"attacks: values must lie in [-1, {len(ATTACK_NAMES) - 1}]")
    attacks = jnp.asarray(attacks, jnp.int32)
  return _sample_jit(key, n, config, jnp.asarray(start, jnp.int32), attacks)


def to_uint(images: ArrayLike, bit_depth: int = 16) -> np.ndarray:
  """Float images in [0, 1] -> uint16 (or uint8) NumPy arrays, exactly (no re-rounding)."""
  if bit_depth not in (8, 16):
    raise InputError(f"bit_depth must be 8 or 16, got {bit_depth}")
  levels = 2 ** bit_depth - 1
  arr = np.clip(np.asarray(images, np.float64), 0.0, 1.0)
  return np.round(arr * levels).astype(np.uint16 if bit_depth == 16 else np.uint8)


def contact_sheet(batch: dict[str, Any], path: str, *, per_kind: int = 2,
                  title: str | None = None) -> None:
  """Saves a PNG grid: one row per attack kind, ``per_kind`` samples as HR | LR pairs.

  Kinds missing from ``batch`` get an empty row. Written atomically.
  """
  from palmjax.plotting import figure, save_png

  if per_kind < 1:
    raise InputError(f"per_kind must be >= 1, got {per_kind}")
  attack = np.asarray(batch["attack"])
  hr, lr = np.asarray(batch["hr"]), np.asarray(batch["lr"])
  rows, cols = len(ATTACK_NAMES), 2 * per_kind
  fig, axes = figure(rows, cols, figsize=(1.7 * cols, 1.8 * rows), squeeze=False,
                     purpose="the palm contact sheet")
  for kind, name in enumerate(ATTACK_NAMES):
    idx = np.flatnonzero(attack == kind)[:per_kind]
    for j in range(per_kind):
      for m, (img, tag) in enumerate(((hr, "HR"), (lr, "LR"))):
        ax = axes[kind, 2 * j + m]
        ax.set_xticks([])
        ax.set_yticks([])
        if j < len(idx):
          ax.imshow(img[idx[j], ..., 0], cmap="gray", vmin=0.0, vmax=1.0,
                    interpolation="nearest")
          ax.set_title(f"{tag} {img.shape[1]}px", fontsize=7)
        if m == 0 and j == 0:
          ax.set_ylabel(name.replace("_", "\n"), fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  save_png(fig, path, dpi=110)
