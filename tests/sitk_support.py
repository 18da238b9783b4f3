"""Shared by the label and resampling tests: a volume of the package's layout as an ITK image.

The package's arrays are (z, row, col) with an affine to RAS+ mm; ITK indexes (x, y, z) =
(col, row, z) and places voxels in LPS mm. The conversion is written here once, from those
two conventions, so SimpleITK sees the same voxels at the same places.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

LPS = np.diag([-1.0, -1.0, 1.0])


def to_sitk(pixels: np.ndarray, affine) -> sitk.Image:
    """``pixels`` (z, row, col) with their RAS affine as a SimpleITK image (origin, spacing and
    direction in LPS, ITK's index order)."""
    a = np.asarray(affine, float)
    cols = LPS @ a[:3, :3][:, [2, 1, 0]]
    spacing = np.linalg.norm(cols, axis=0)
    img = sitk.GetImageFromArray(pixels)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((cols / spacing).flatten().tolist())
    img.SetOrigin((LPS @ a[:3, 3]).tolist())
    return img
