"""Degenerate geometry in file headers, found before any volume is built (internal, pure).

One rule for every reader: an orientation or affine that cannot place voxels in space is
refused with its numbers, never repaired by a guess (no invented tilt, spacing or axis).
"""

from __future__ import annotations

import numpy as np

#: Direction cosines shorter than this are zero-length.
_ZERO_LENGTH = 1e-6
#: |cos| of the angle between the row and column directions above this is not orthogonal
#: (0.057 degrees; DICOM writers round cosines to ~6 digits, far below it).
_ORTHOGONAL_TOL = 1e-3
#: A 3x3 direction-and-spacing matrix with |det| below this (mm^3) is singular.
_SINGULAR_DET = 1e-9


def orientation_problem(iop) -> str | None:
    """Why an ImageOrientationPatient (row cosines, then column cosines) places no plane.

    Returns None for two non-zero, orthogonal direction vectors (any length: callers
    normalize), else a sentence with the numbers: a zero-length vector, or the angle
    between the two directions.

    Examples
    --------
    >>> from m1vision.io._geometry_checks import orientation_problem
    >>> orientation_problem([1, 0, 0, 0, 1, 0]) is None
    True
    >>> orientation_problem([1, 0, 0, 0, 0, 0])
    'the column direction [0, 0, 0] has zero length'
    >>> orientation_problem([1, 0, 0, 1, 1, 0])
    'the row and column directions are 45 degrees apart, not 90'
    """
    v = np.asarray(iop, dtype=np.float64).reshape(2, 3)
    lengths = np.linalg.norm(v, axis=1)
    for name, vec, length in zip(("row", "column"), v, lengths, strict=True):
        if not length > _ZERO_LENGTH:
            shown = ", ".join(f"{x:g}" for x in vec)
            return f"the {name} direction [{shown}] has zero length"
    cos = float(v[0] @ v[1] / (lengths[0] * lengths[1]))
    if abs(cos) > _ORTHOGONAL_TOL:
        angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        return f"the row and column directions are {angle:.4g} degrees apart, not 90"
    return None


def affine_problem(affine) -> str | None:
    """Why a 4x4 voxel-to-world affine maps no volume: non-finite, or a singular 3x3 part.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.io._geometry_checks import affine_problem
    >>> affine_problem(np.diag([2.0, 2.0, 2.0, 1.0])) is None
    True
    >>> affine_problem(np.diag([2.0, 0.0, 2.0, 1.0]))
    'its 3x3 part is singular (determinant 0): a voxel axis has no direction or length'
    """
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.isfinite(a).all():
        return "it is not a finite 4x4 matrix"
    det = float(np.linalg.det(a[:3, :3]))
    if abs(det) < _SINGULAR_DET:
        return (
            f"its 3x3 part is singular (determinant {det:.3g}): a voxel axis has no direction "
            "or length"
        )
    return None
