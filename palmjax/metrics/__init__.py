"""Metrics: image quality (PSNR/SSIM) and, later, presentation-attack detection."""

from palmjax.metrics.image_quality import crop_border, psnr, ssim

__all__ = ["crop_border", "psnr", "ssim"]
