"""Grids compared and described.

Two grids *match* when their shapes are equal and the centres of their corner voxels lie
within GRID_TOLERANCE_MM of each other: the affine is linear, so every voxel centre is then
within that distance too (a bound in mm that does not depend on how the affine is written).
"""

from __future__ import annotations

import itertools

import numpy as np

from m1vision._checks import check_shape
from m1vision.geometry._orientations import axcodes

#: Largest distance (mm) between corresponding voxel centres of two grids that "match".
GRID_TOLERANCE_MM = 0.01


def grid_corners(shape, affine) -> np.ndarray:
    """RAS+ mm of the centres of the grid's corner voxels, (8, 3) ((4, 3) in 2-D).

    Examples
    --------
    >>> from m1vision.geometry import default_affine, grid_corners
    >>> grid_corners((2, 3, 4), default_affine((2.0, 1.0, 1.0)))[-1].tolist()
    [-3.0, -2.0, 2.0]
    """
    shape = check_shape(shape)
    idx = np.array(list(itertools.product(*[(0, max(n - 1, 0)) for n in shape])), float)
    a = np.asarray(affine, float)
    return idx @ a[:3, : len(shape)].T + a[:3, 3]


def grid_distance(shape_a, affine_a, shape_b, affine_b) -> float:
    """The largest distance (mm) between corresponding corner voxel centres (inf: shapes differ).

    Examples
    --------
    >>> from m1vision.geometry import default_affine, grid_distance
    >>> a = default_affine((2.0, 1.0, 1.0))
    >>> b = a.copy(); b[0, 3] += 0.5
    >>> grid_distance((2, 3, 4), a, (2, 3, 4), b), grid_distance((2, 3, 4), a, (2, 3, 5), a)
    (0.5, inf)
    """
    if check_shape(shape_a, name="shape_a") != check_shape(shape_b, name="shape_b"):
        return float("inf")
    d = grid_corners(shape_a, affine_a) - grid_corners(shape_b, affine_b)
    return float(np.sqrt((d * d).sum(axis=1)).max())


def describe_grid(shape, spacing, affine) -> str:
    """A one-line description of a grid: shape, spacing, origin, axis codes.

    Examples
    --------
    >>> from m1vision.geometry import default_affine, describe_grid
    >>> describe_grid((2, 3, 4), (2.0, 1.0, 1.0), default_affine((2.0, 1.0, 1.0)))
    'shape (2, 3, 4), spacing 2x1x1 mm, origin (0.000, 0.000, 0.000) mm RAS, axes SPL'
    """
    a = np.asarray(affine, float)
    sp = "?" if spacing is None else "x".join(f"{float(v):g}" for v in spacing)
    origin = ", ".join(f"{v:.3f}" for v in a[:3, 3])
    codes = "".join(axcodes(a)) if a.shape == (4, 4) and len(shape) == 3 else "-"
    return (
        f"shape {tuple(int(n) for n in shape)}, spacing {sp} mm, origin ({origin}) mm RAS, "
        f"axes {codes}"
    )
