"""DICOM orientation: ImageOrientationPatient checked and named, a slice stack's affine."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_pair, check_point
from m1vision.errors import InvalidParameterError

#: DICOM patient coordinates (LPS) -> RAS.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Direction cosines shorter than this are zero-length.
_ZERO_LENGTH = 1e-6
#: |cos| of the angle between the row and column directions above this is not orthogonal
#: (0.057 degrees; DICOM writers round cosines to ~6 digits, far below it).
_ORTHOGONAL_TOL = 1e-3


def _cosines(iop) -> np.ndarray:
    """ImageOrientationPatient as six float64 numbers, or InvalidParameterError."""
    try:
        v = np.asarray(iop)
        v = np.zeros(0) if v.dtype.kind == "c" else v.astype(np.float64)  # complex: refused
    except (TypeError, ValueError):
        v = np.zeros(0)
    if v.shape != (6,) or not np.isfinite(v).all():
        raise InvalidParameterError(
            f"iop must be six finite numbers (ImageOrientationPatient: the row direction, then "
            f"the column direction), got {iop!r}. Fix: pass the data set's "
            "ImageOrientationPatient, e.g. [1, 0, 0, 0, 1, 0] for an axial slice."
        )
    return v


def orientation_problem(iop) -> str | None:
    """Why an ImageOrientationPatient (row cosines, then column cosines) places no plane.

    None for two non-zero, orthogonal direction vectors (any length: readers normalize
    them); else a sentence with the numbers: a zero-length vector, or the angle between the
    two directions. Such an orientation has no slice normal, so no slice order, spacing or
    tilt can be derived from it.

    Examples
    --------
    >>> from m1vision.geometry import orientation_problem
    >>> orientation_problem([1, 0, 0, 0, 1, 0]) is None
    True
    >>> orientation_problem([1, 0, 0, 0, 0, 0])
    'the column direction [0, 0, 0] has zero length'
    >>> orientation_problem([1, 0, 0, 1, 1, 0])
    'the row and column directions are 45 degrees apart, not 90'
    """
    v = _cosines(iop).reshape(2, 3)
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


def slice_normal(iop) -> np.ndarray:
    """The slice normal (row direction x column direction) of ImageOrientationPatient (LPS).

    Examples
    --------
    >>> from m1vision.geometry import slice_normal
    >>> slice_normal([1, 0, 0, 0, 1, 0]).tolist()
    [0.0, 0.0, 1.0]
    """
    v = _cosines(iop)
    return np.cross(v[:3], v[3:6])


def plane_name(iop) -> str:
    """The plane ("axial", "oblique coronal"...) of an ImageOrientationPatient.

    "unknown" for ``None``, "degenerate" for one :func:`orientation_problem` refuses; oblique
    when the normal leaves its closest axis by more than about 8 degrees (|cosine| below
    0.99).

    Examples
    --------
    >>> from m1vision.geometry import plane_name
    >>> plane_name([0, 1, 0, 0, 0, -1])
    'sagittal'
    """
    if iop is None:
        return "unknown"
    if orientation_problem(iop):
        return "degenerate"
    n = np.abs(slice_normal(iop))
    name = ("sagittal", "coronal", "axial")[int(np.argmax(n))]
    return name if n.max() > 0.99 else f"oblique {name}"


def dicom_affine(iop, ipp, pixel_spacing, step) -> np.ndarray:
    """The (slice, row, col, 1) -> RAS+ mm affine of a stack of DICOM slices.

    Parameters
    ----------
    iop : sequence of 6 floats
        ImageOrientationPatient: the row direction (along a row, i.e. the column index) then
        the column direction (down a column, the row index), in LPS.
    ipp : sequence of 3 floats
        ImagePositionPatient of the first stored slice (its first pixel's centre), LPS mm.
    pixel_spacing : (row spacing, column spacing)
        PixelSpacing in mm (between rows, between columns).
    step : sequence of 3 floats
        The displacement from one stored slice to the next, LPS mm (along the normal, or
        sheared for a gantry tilt).

    Examples
    --------
    >>> from m1vision.geometry import dicom_affine
    >>> dicom_affine([1, 0, 0, 0, 1, 0], [-10, -20, 5], (0.5, 0.8), [0, 0, 2])[:3].tolist()
    [[0.0, 0.0, -0.8, 10.0], [0.0, -0.5, 0.0, 20.0], [2.0, 0.0, 0.0, 5.0]]
    """
    cos = _cosines(iop)
    d_row, d_col = check_pair(pixel_spacing, name="pixel_spacing", what="(row, column) in mm")
    lps = np.eye(4)
    lps[:3, 0] = check_point(step, name="step", what="(x, y, z) in LPS mm")
    lps[:3, 1] = cos[3:6] * d_row
    lps[:3, 2] = cos[:3] * d_col
    lps[:3, 3] = check_point(ipp, name="ipp", what="(x, y, z) in LPS mm")
    return _LPS_TO_RAS @ lps
