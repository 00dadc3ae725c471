"""Synthetic images for the imaging-stage tests and benchmarks: a head with a smooth bias
field and an ellipsoidal tumour, on an anisotropic MR-like grid."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def head_phantom(
    size: tuple[int, int, int] = (96, 96, 24),
    spacing: tuple[float, float, float] = (0.9, 0.9, 3.5),
    *,
    tumour_radii_mm: tuple[float, float, float] = (14.0, 11.0, 12.0),
    tumour_centre_mm: tuple[float, float, float] = (4.0, -6.0, 2.0),
    bias_strength: float = 0.3,
    origin: tuple[float, float, float] = (-40.0, -35.0, -30.0),
    seed: int = 0,
) -> tuple[sitk.Image, sitk.Image, sitk.Image]:
    """A head-like ellipsoid on an MR grid (x, y, z sizes; mm spacing).

    Returns:
        (image float32 with multiplicative bias, tumour mask uint8, true log bias field
        float32), all on the same grid. The image is ~100 in tissue, ~160 in the tumour,
        ~2 in air; bias = exp(linear ramp), ``bias_strength`` = log-range across the head.
    """
    rng = np.random.default_rng(seed)
    nx, ny, nz = size
    z, y, x = np.meshgrid(
        np.arange(nz) * spacing[2],
        np.arange(ny) * spacing[1],
        np.arange(nx) * spacing[0],
        indexing="ij",
    )
    centre = np.array([(nx - 1) * spacing[0], (ny - 1) * spacing[1], (nz - 1) * spacing[2]]) / 2
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    semi = centre * 0.85
    head = (dx / semi[0]) ** 2 + (dy / semi[1]) ** 2 + (dz / semi[2]) ** 2 <= 1
    tx, ty, tz = (
        dx - tumour_centre_mm[0],
        dy - tumour_centre_mm[1],
        dz - tumour_centre_mm[2],
    )
    rx, ry, rz = tumour_radii_mm
    tumour = head & ((tx / rx) ** 2 + (ty / ry) ** 2 + (tz / rz) ** 2 <= 1)
    tissue = np.where(head, 100.0, 2.0) + 60.0 * tumour
    # Smooth texture inside the tumour so texture features are not degenerate.
    tissue += tumour * 15.0 * np.sin(x / 3.0) * np.cos(y / 4.0)
    log_bias = bias_strength * (dx / (2 * semi[0]) + 0.5 * dy / (2 * semi[1]) + 0.3 * dz / semi[2])
    noisy = tissue * np.exp(log_bias) + rng.normal(0, 3.0, tissue.shape)
    arrays = (
        np.clip(noisy, 0.5, None).astype(np.float32),
        tumour.astype(np.uint8),
        log_bias.astype(np.float32),
    )
    images = [sitk.GetImageFromArray(a) for a in arrays]
    for img in images:
        img.SetSpacing(spacing)
        img.SetOrigin(origin)
    return images[0], images[1], images[2]


def mask_volume_mm3(mask: sitk.Image) -> float:
    """Volume of the non-zero voxels, mm^3."""
    return float((sitk.GetArrayViewFromImage(mask) > 0).sum() * np.prod(mask.GetSpacing()))


def mask_centroid_mm(mask: sitk.Image) -> np.ndarray:
    """Physical centroid (x, y, z) of the non-zero voxels, mm."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    return np.asarray(stats.GetCentroid(1))
