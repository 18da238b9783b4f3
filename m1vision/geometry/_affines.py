"""Affines of the layout: spacing and affine checks, the layout's affine, voxel <-> RAS mm."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_number, check_point, check_volume
from m1vision.errors import InvalidParameterError


def check_spacing(spacing) -> tuple[float, float, float]:
    """``spacing`` as three floats > 0 (mm, (z, row, col)), or InvalidParameterError.

    Examples
    --------
    >>> from m1vision.geometry import check_spacing
    >>> check_spacing([2, 0.5, 0.5])
    (2.0, 0.5, 0.5)
    """
    if not isinstance(spacing, tuple | list | np.ndarray) or len(spacing) != 3:
        raise InvalidParameterError(
            f"spacing must be (z, row, col) in mm, got {spacing!r}; pass the volume's "
            "MedicalImage.spacing, or (1.0, 1.0, 1.0) if it is unknown."
        )
    out = tuple(check_number(v, name=f"spacing[{i}]") for i, v in enumerate(spacing))
    if min(out) <= 0:
        raise InvalidParameterError(
            f"spacing must be > 0 mm on every axis, got {out}. Fix: pass the volume's "
            "MedicalImage.spacing, or (1.0, 1.0, 1.0) if it is unknown."
        )
    return out


def check_affine(affine) -> np.ndarray:
    """``affine`` as a finite, invertible 4x4 float64 array (a 3x4 one gets its last row).

    Raises InvalidParameterError naming what came and how to fix it.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.geometry import check_affine
    >>> check_affine(np.eye(4)[:3]).shape
    (4, 4)
    """
    try:
        a = np.asarray(affine)
        a = np.zeros(0) if a.dtype.kind == "c" else a.astype(np.float64)  # complex: refused
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.shape not in ((4, 4), (3, 4)) or not np.isfinite(a).all():
        raise InvalidParameterError(
            f"affine must be a finite 4x4 (or 3x4) matrix mapping (z, row, col, 1) to RAS mm, "
            f"got shape {a.shape}; pass the volume's metadata['affine']."
        )
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise InvalidParameterError(
            "affine is singular (its 3x3 part has determinant 0); pass the volume's "
            "metadata['affine'], or leave it out to use the spacing."
        )
    if a.shape == (3, 4):
        a = np.vstack([a, [0.0, 0.0, 0.0, 1.0]])
    return a


def default_affine(spacing) -> np.ndarray:
    """The affine of the package's layout for ``spacing`` (z, row, col), origin at voxel 0.

    z goes superior (+S), rows posterior (-A), columns to the patient's left (-R).

    Examples
    --------
    >>> from m1vision.geometry import default_affine
    >>> default_affine((3.0, 1.0, 0.5))[:3, :3].tolist()
    [[0.0, 0.0, -0.5], [0.0, -1.0, 0.0], [3.0, 0.0, 0.0]]
    """
    sz, sr, sc = check_spacing(spacing)
    affine = np.zeros((4, 4))
    affine[0, 2], affine[1, 1], affine[2, 0], affine[3, 3] = -sc, -sr, sz, 1.0
    return affine


def volume_geometry(volume) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """``(pixels, spacing, affine)`` of an ndarray or a MedicalImage volume, checked.

    Spacing defaults to 1 mm and the affine to :func:`default_affine` of the spacing.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.geometry import volume_geometry
    >>> pixels, spacing, affine = volume_geometry(np.zeros((2, 3, 4), np.float32))
    >>> spacing, affine.shape
    ((1.0, 1.0, 1.0), (4, 4))
    """
    spacing = None
    affine = None
    if not isinstance(volume, np.ndarray) and hasattr(volume, "pixels"):
        spacing = getattr(volume, "spacing", None)
        affine = (getattr(volume, "metadata", None) or {}).get("affine")
        volume = volume.pixels
    volume = check_volume(volume, name="volume", hint="for one 2-D image use EdgeExplorer")
    spacing = (1.0, 1.0, 1.0) if spacing is None else check_spacing(spacing)
    affine = default_affine(spacing) if affine is None else check_affine(affine)
    return volume, spacing, affine


def apply_affine(affine, points) -> np.ndarray:
    """``points`` (..., 3) mapped by the 4x4 ``affine``, as ``nibabel.affines.apply_affine``.

    Examples
    --------
    >>> from m1vision.geometry import apply_affine, default_affine
    >>> apply_affine(default_affine((2.0, 1.0, 1.0)), [[0, 0, 0], [1, 1, 1]]).tolist()
    [[0.0, 0.0, 0.0], [-1.0, -1.0, 2.0]]
    """
    a = check_affine(affine)
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"points must be numbers of shape (..., 3), got {points!r}. Fix: pass (z, row, "
            "col) points, e.g. [[0, 0, 0], [1, 2, 3]]."
        ) from None
    if pts.shape[-1:] != (3,):
        raise InvalidParameterError(
            f"points must have 3 coordinates on their last axis, got shape {pts.shape}. Fix: "
            "pass (z, row, col) points, e.g. [[0, 0, 0], [1, 2, 3]]."
        )
    return pts @ a[:3, :3].T + a[:3, 3]


def voxel_to_ras(affine, voxel) -> tuple[float, float, float]:
    """RAS+ position in mm of ``voxel`` ``(z, row, col)``.

    Examples
    --------
    >>> from m1vision.geometry import default_affine, voxel_to_ras
    >>> voxel_to_ras(default_affine((2.0, 1.0, 1.0)), (3, 4, 5))
    (-5.0, -4.0, 6.0)
    """
    point = apply_affine(affine, check_point(voxel, name="voxel"))
    return tuple(float(v) for v in point)


def ras_to_voxel(affine, point) -> tuple[float, float, float]:
    """The (fractional) voxel ``(z, row, col)`` at the RAS+ ``point`` in mm.

    Examples
    --------
    >>> from m1vision.geometry import default_affine, ras_to_voxel
    >>> ras_to_voxel(default_affine((2.0, 1.0, 1.0)), (-5.0, -4.0, 6.0))
    (3.0, 4.0, 5.0)
    """
    inverse = np.linalg.inv(check_affine(affine))
    xyz = check_point(point, name="point", what="(x, y, z) in RAS mm")
    return tuple(float(v) for v in apply_affine(inverse, xyz))
