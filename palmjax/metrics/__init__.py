"""Metrics: image quality (PSNR/SSIM) and presentation-attack detection (PAD)."""

from palmjax.metrics.image_quality import crop_border, psnr, ssim
from palmjax.metrics.pad import (PADReport, eer, pad_report, plot_roc_det, roc_auc, roc_curve,
                                 threshold_for, wilson_interval)

__all__ = ["PADReport", "crop_border", "eer", "pad_report", "plot_roc_det", "psnr", "roc_auc",
           "roc_curve", "ssim", "threshold_for", "wilson_interval"]
