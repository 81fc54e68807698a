"""Pure, jittable numeric kernels shared by both pipelines.

One file per family (dm_pix style); everything public is re-exported flat here.
"""

from palmjax.kernels.color import rgb_to_luma, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from palmjax.kernels.filters import gaussian_blur, gaussian_kernel1d, separable_filter
from palmjax.kernels.resize import bicubic_degrade, bicubic_resize, modcrop

__all__ = [
    "bicubic_degrade",
    "bicubic_resize",
    "gaussian_blur",
    "gaussian_kernel1d",
    "modcrop",
    "rgb_to_luma",
    "rgb_to_y",
    "rgb_to_ycbcr",
    "separable_filter",
    "ycbcr_to_rgb",
]
