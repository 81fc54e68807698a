"""Pure, jittable numeric kernels shared by both pipelines.

One file per family (dm_pix style); everything public is re-exported flat here.
"""

from palmjax.kernels.color import (hsv_to_rgb, rgb_to_hsv, rgb_to_luma, rgb_to_y,
                                   rgb_to_ycbcr, ycbcr_to_rgb)
from palmjax.kernels.filters import (correlate1d, gaussian_blur, gaussian_kernel1d,
                                     separable_filter)
from palmjax.kernels.flow import FlowResult, FlowStatistics, flow_statistics, lucas_kanade
from palmjax.kernels.lbp import (color_lbp_features, lbp_histogram, lbp_n_bins,
                                 local_binary_pattern)
from palmjax.kernels.moments import ColorMoments, color_moment_features, color_moments
from palmjax.kernels.quantiles import image_quantiles
from palmjax.kernels.resize import bicubic_degrade, bicubic_resize, modcrop
from palmjax.kernels.spectral import (FrequencyEstimate, Peaks, estimate_frequency,
                                      fft_correlate, find_peaks, get_window, matched_filter,
                                      parabolic_interpolate, periodogram)

__all__ = [
    "ColorMoments",
    "FlowResult",
    "FlowStatistics",
    "bicubic_degrade",
    "color_lbp_features",
    "color_moment_features",
    "color_moments",
    "flow_statistics",
    "bicubic_resize",
    "correlate1d",
    "gaussian_blur",
    "image_quantiles",
    "gaussian_kernel1d",
    "hsv_to_rgb",
    "local_binary_pattern",
    "lbp_histogram",
    "lbp_n_bins",
    "lucas_kanade",
    "modcrop",
    "rgb_to_hsv",
    "rgb_to_luma",
    "rgb_to_y",
    "rgb_to_ycbcr",
    "separable_filter",
    "ycbcr_to_rgb",
    # spectral
    "FrequencyEstimate",
    "Peaks",
    "estimate_frequency",
    "fft_correlate",
    "find_peaks",
    "get_window",
    "matched_filter",
    "parabolic_interpolate",
    "periodogram",
]
