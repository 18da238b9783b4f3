"""Geometry of the package's one volume layout: affines, orientations, voxel <-> RAS mm.

Pure functions over NumPy arrays (NumPy is the only library imported), in the spirit of nibabel's
``orientations`` and ``affines``. A volume's ``pixels`` are (z, row, col): z inferior to
superior, rows anterior to posterior, columns patient right to left; ``spacing`` is (z, row,
col) mm and ``metadata["affine"]`` maps ``(z, row, col, 1)`` to RAS+ mm.

Where things are:

==============================  ===========================================================
function                        what it gives
==============================  ===========================================================
:func:`check_spacing`           a (z, row, col) spacing checked (three numbers > 0)
:func:`check_affine`            a finite, invertible affine as a 4x4 float64 array
:func:`default_affine`          the layout's affine for a spacing, origin at voxel 0
:func:`volume_geometry`         ``(pixels, spacing, affine)`` of an array or MedicalImage
:func:`apply_affine`            points mapped by an affine (``nibabel.affines.apply_affine``)
:func:`voxel_to_ras`            RAS+ mm of one voxel ``(z, row, col)``
:func:`ras_to_voxel`            the (fractional) voxel at a RAS+ point
:func:`io_orientation`          per voxel axis, its closest RAS axis and sign (as nibabel)
:func:`axcodes`                 per voxel axis, the letter it points to (``aff2axcodes``)
:func:`direction_letter`        the letter (R/L, A/P, S/I) a direction points to
:data:`PLANES`                  "axial", "coronal", "sagittal"
:func:`plane_geometry`          a plane's slice, vertical and horizontal axes in the layout
:func:`orientation_letters`     the letters at the four edges of a plane's picture
:func:`orientation_problem`     why an ImageOrientationPatient places no plane, or None
:func:`slice_normal`            the normal of a DICOM ImageOrientationPatient
:func:`plane_name`              "axial", "oblique coronal"... of an ImageOrientationPatient
:func:`dicom_affine`            a DICOM stack's (slice, row, col) -> RAS+ affine
:func:`to_layout`               a stored stack and its affine reoriented into the layout
:func:`canonical_to_layout`     index map from a RAS-canonical (x, y, z) array to the layout
:data:`GRID_TOLERANCE_MM`       how far apart voxel centres of two "matching" grids may be
:func:`grid_corners`            RAS+ mm of a grid's corner voxel centres
:func:`grid_distance`           how far apart two grids' voxel centres are (mm)
:func:`describe_grid`           a one-line description of a grid (shape, spacing, origin, axes)
:func:`check_axcodes`           three orientation letters ("RAS", "LPS"...) checked
:func:`reorient_transform`      the axis order, flips and affine that reorient a grid
==============================  ===========================================================

Examples
--------
>>> from m1vision.geometry import axcodes, default_affine, voxel_to_ras
>>> affine = default_affine((2.0, 0.5, 0.5))
>>> axcodes(affine), voxel_to_ras(affine, (1, 2, 4))
(('S', 'P', 'L'), (-2.0, -1.0, 2.0))
"""

from __future__ import annotations

import itertools

import numpy as np

from m1vision._checks import check_choice, check_number, check_volume
from m1vision.errors import InvalidParameterError

__all__ = [
    "GRID_TOLERANCE_MM",
    "PLANES",
    "apply_affine",
    "axcodes",
    "canonical_to_layout",
    "check_affine",
    "check_axcodes",
    "check_spacing",
    "default_affine",
    "describe_grid",
    "dicom_affine",
    "direction_letter",
    "grid_corners",
    "grid_distance",
    "io_orientation",
    "orientation_letters",
    "orientation_problem",
    "plane_geometry",
    "plane_name",
    "ras_to_voxel",
    "reorient_transform",
    "slice_normal",
    "to_layout",
    "volume_geometry",
    "voxel_to_ras",
]

#: The planes, in the order the explorers show them.
PLANES = ("axial", "coronal", "sagittal")

# plane -> (slice axis, vertical axis, vertical flipped, horizontal axis, horizontal flipped)
_GEOMETRY = {
    "axial": (0, 1, False, 2, False),
    "coronal": (1, 0, True, 2, False),
    "sagittal": (2, 0, True, 1, False),
}
_POSITIVE = "RAS"  # RAS+: +x right, +y anterior, +z superior
_NEGATIVE = "LPI"
#: DICOM patient coordinates (LPS) -> RAS.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


# ---------------------------------------------------------------------------------------------
# checks and the layout's affine
# ---------------------------------------------------------------------------------------------


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
        raise InvalidParameterError(f"spacing must be > 0 mm on every axis, got {out}.")
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
        a = np.asarray(affine, dtype=np.float64)
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


# ---------------------------------------------------------------------------------------------
# voxel <-> world
# ---------------------------------------------------------------------------------------------


def apply_affine(affine, points) -> np.ndarray:
    """``points`` (..., 3) mapped by the 4x4 ``affine``, as ``nibabel.affines.apply_affine``.

    Examples
    --------
    >>> from m1vision.geometry import apply_affine, default_affine
    >>> apply_affine(default_affine((2.0, 1.0, 1.0)), [[0, 0, 0], [1, 1, 1]]).tolist()
    [[0.0, 0.0, 0.0], [-1.0, -1.0, 2.0]]
    """
    a = check_affine(affine)
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1:] != (3,):
        raise InvalidParameterError(
            f"points must have 3 coordinates on their last axis, got shape {pts.shape}."
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
    point = apply_affine(affine, [float(v) for v in voxel])
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
    return tuple(float(v) for v in apply_affine(inverse, [float(v) for v in point]))


# ---------------------------------------------------------------------------------------------
# orientation codes and letters
# ---------------------------------------------------------------------------------------------


def io_orientation(affine) -> np.ndarray:
    """Per voxel axis, ``(RAS axis, +1/-1)`` of the closest RAS axis, as nibabel's.

    The same choice as ``nibabel.orientations.io_orientation`` (zooms removed, the closest
    orthogonal matrix, then the largest component per axis, each RAS axis used once), so a
    shear or an oblique affine is sorted as nibabel sorts it.

    Examples
    --------
    >>> from m1vision.geometry import default_affine, io_orientation
    >>> io_orientation(default_affine((1, 1, 1))).tolist()
    [[2.0, 1.0], [1.0, -1.0], [0.0, -1.0]]
    """
    a = check_affine(affine)
    rzs = a[:3, :3]
    zooms = np.sqrt((rzs * rzs).sum(axis=0))
    zooms[zooms == 0] = 1.0
    rs = rzs / zooms
    p, s, qs = np.linalg.svd(rs, full_matrices=False)
    keep = s > s.max() * 3 * np.finfo(s.dtype).eps
    r = p[:, keep] @ qs[keep]
    ornt = np.full((3, 2), np.nan)
    for in_axis in range(3):
        col = r[:, in_axis]
        if np.allclose(col, 0):
            continue
        out_axis = int(np.argmax(np.abs(col)))
        ornt[in_axis] = (out_axis, -1.0 if col[out_axis] < 0 else 1.0)
        r[out_axis, :] = 0.0
    return ornt


def axcodes(affine) -> tuple[str, str, str]:
    """Per voxel axis, the letter its index runs towards (``nibabel.aff2axcodes``).

    Examples
    --------
    >>> from m1vision.geometry import axcodes, default_affine
    >>> "".join(axcodes(default_affine((1, 1, 1))))
    'SPL'
    """
    return tuple(
        (_POSITIVE if sign > 0 else _NEGATIVE)[int(axis)] for axis, sign in io_orientation(affine)
    )


def direction_letter(direction) -> str:
    """The letter (R/L, A/P, S/I) of a RAS direction's dominant component.

    Examples
    --------
    >>> from m1vision.geometry import direction_letter
    >>> direction_letter([0.2, -0.9, 0.1])
    'P'
    """
    d = np.asarray(direction, dtype=np.float64)[:3]
    axis = int(np.argmax(np.abs(d)))
    return (_POSITIVE if d[axis] > 0 else _NEGATIVE)[axis]


def plane_geometry(plane: str) -> tuple[int, int, bool, int, bool]:
    """``(slice_axis, vertical_axis, vertical_flipped, horizontal_axis, horizontal_flipped)``.

    Axes are those of the volume ``(z, row, col)``; "flipped" means the picture shows that
    axis from its last index to its first (z upwards in coronal and sagittal pictures).

    Examples
    --------
    >>> from m1vision.geometry import plane_geometry
    >>> plane_geometry("coronal")
    (1, 0, True, 2, False)
    """
    return _GEOMETRY[check_choice(plane, name="plane", choices=PLANES)]


def orientation_letters(affine, plane: str) -> dict[str, str]:
    """The anatomical letters (R/L, A/P, S/I) at the four edges of ``plane``'s picture.

    Each edge gets the RAS direction the picture's axis points to there, taken from the
    affine (the dominant component of the voxel axis' direction), so an oblique or flipped
    volume gets the letters it really has.

    Examples
    --------
    >>> from m1vision.geometry import default_affine, orientation_letters
    >>> orientation_letters(default_affine((1, 1, 1)), "sagittal")
    {'top': 'S', 'bottom': 'I', 'left': 'A', 'right': 'P'}
    """
    a = check_affine(affine)
    _, v_axis, v_flip, h_axis, h_flip = plane_geometry(plane)
    down = a[:3, v_axis] * (-1.0 if v_flip else 1.0)
    right = a[:3, h_axis] * (-1.0 if h_flip else 1.0)
    return {
        "top": direction_letter(-down),
        "bottom": direction_letter(down),
        "left": direction_letter(-right),
        "right": direction_letter(right),
    }


# ---------------------------------------------------------------------------------------------
# DICOM stacks into the layout
# ---------------------------------------------------------------------------------------------


#: Direction cosines shorter than this are zero-length.
_ZERO_LENGTH = 1e-6
#: |cos| of the angle between the row and column directions above this is not orthogonal
#: (0.057 degrees; DICOM writers round cosines to ~6 digits, far below it).
_ORTHOGONAL_TOL = 1e-3


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


def slice_normal(iop) -> np.ndarray:
    """The slice normal (row direction x column direction) of ImageOrientationPatient (LPS).

    Examples
    --------
    >>> from m1vision.geometry import slice_normal
    >>> slice_normal([1, 0, 0, 0, 1, 0]).tolist()
    [0.0, 0.0, 1.0]
    """
    v = np.asarray(iop, dtype=np.float64)
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
    cos = np.asarray(iop, dtype=np.float64)
    d_row, d_col = (float(v) for v in pixel_spacing)
    lps = np.eye(4)
    lps[:3, 0] = np.asarray(step, dtype=np.float64)
    lps[:3, 1] = cos[3:6] * d_row
    lps[:3, 2] = cos[:3] * d_col
    lps[:3, 3] = np.asarray(ipp, dtype=np.float64)
    return _LPS_TO_RAS @ lps


def to_layout(stack: np.ndarray, affine) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Reorient a stored (k, r, c) ``stack`` with its (k, r, c) -> RAS affine into the layout.

    The same choice of axes as ``nibabel.as_closest_canonical`` (:func:`io_orientation`),
    then output axis 0 along +S, 1 along -A (posterior), 2 along -R (left). Returns
    ``(pixels, affine, perm)`` where output axis ``o`` comes from stored axis ``perm[o]``. No
    copy for a C-contiguous axial stack already in that layout.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.geometry import default_affine, to_layout
    >>> stack = np.arange(8.0).reshape(2, 2, 2)
    >>> pixels, affine, perm = to_layout(stack[::-1], default_affine((1, 1, 1)) @ np.diag(
    ...     [-1.0, 1, 1, 1]) + np.outer([0, 0, 1, 0], [0, 0, 0, 1]))
    >>> perm, bool((pixels == stack).all())
    ([0, 1, 2], True)
    """
    a = check_affine(affine)
    ornt = io_orientation(a)  # per stored axis: (RAS axis, +1/-1)
    want = {2: 1.0, 1: -1.0, 0: -1.0}  # RAS axis -> wanted sign, output axes S, P, L
    perm, flips = [], []
    for ras_axis in (2, 1, 0):
        stored = int(np.flatnonzero(ornt[:, 0] == ras_axis)[0])
        perm.append(stored)
        flips.append(ornt[stored, 1] != want[ras_axis])
    out = stack.transpose(perm)
    index = tuple(slice(None, None, -1) if f else slice(None) for f in flips)
    out = np.ascontiguousarray(out[index])
    m = np.zeros((4, 4))  # output index -> stored index
    m[3, 3] = 1.0
    for o, (s, f) in enumerate(zip(perm, flips, strict=True)):
        m[s, o] = -1.0 if f else 1.0
        m[s, 3] = stack.shape[s] - 1 if f else 0.0
    return out, a @ m, perm


def canonical_to_layout(shape_xyz) -> np.ndarray:
    """The index map from the layout ``(z, row, col)`` to a RAS-canonical ``(x, y, z)`` array.

    ``canonical_affine @ canonical_to_layout(shape)`` is the layout's affine of that data,
    and ``layout = canonical.transpose(2, 1, 0)[:, ::-1, ::-1]``.

    Examples
    --------
    >>> from m1vision.geometry import canonical_to_layout
    >>> canonical_to_layout((4, 3, 2))[:3].tolist()
    [[0.0, 0.0, -1.0, 3.0], [0.0, -1.0, 0.0, 2.0], [1.0, 0.0, 0.0, 0.0]]
    """
    nx, ny, _ = (int(v) for v in shape_xyz)
    return np.array(
        [[0, 0, -1, nx - 1], [0, -1, 0, ny - 1], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64
    )


# ---------------------------------------------------------------------------------------------
# grids: comparing two grids, reorienting one
# ---------------------------------------------------------------------------------------------
#
# Two grids *match* when their shapes are equal and the centres of their corner voxels lie
# within GRID_TOLERANCE_MM of each other: the affine is linear, so every voxel centre is then
# within that distance too (a bound in mm that does not depend on how the affine is written).

#: Largest distance (mm) between corresponding voxel centres of two grids that "match".
GRID_TOLERANCE_MM = 0.01

_AXIS_LETTERS = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}


def grid_corners(shape, affine) -> np.ndarray:
    """RAS+ mm of the centres of the grid's corner voxels, (8, 3) ((4, 3) in 2-D).

    Examples
    --------
    >>> from m1vision.geometry import default_affine, grid_corners
    >>> grid_corners((2, 3, 4), default_affine((2.0, 1.0, 1.0)))[-1].tolist()
    [-3.0, -2.0, 2.0]
    """
    idx = np.array(list(itertools.product(*[(0, max(int(n) - 1, 0)) for n in shape])), float)
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
    if tuple(shape_a) != tuple(shape_b):
        return float("inf")
    d = grid_corners(shape_a, affine_a) - grid_corners(shape_b, affine_b)
    return float(np.sqrt((d * d).sum(axis=1)).max())


def check_axcodes(codes, *, name: str = "orientation") -> str:
    """Three letters, one of R/L, A/P, S/I each (upper case), or InvalidParameterError.

    Examples
    --------
    >>> from m1vision.geometry import check_axcodes
    >>> check_axcodes("ras"), check_axcodes(("L", "P", "S"))
    ('RAS', 'LPS')
    """
    if isinstance(codes, str):
        text = codes.upper()
    elif isinstance(codes, tuple | list) and all(isinstance(c, str) for c in codes):
        text = "".join(codes).upper()
    else:
        text = None
    if text is None or len(text) != 3 or any(c not in _AXIS_LETTERS for c in text):
        ok = False
    else:
        ok = len({_AXIS_LETTERS[c][0] for c in text}) == 3
    if not ok:
        raise InvalidParameterError(
            f"{name} must be three letters naming where the (z, row, col) axes point, one of "
            f"R/L, one of A/P and one of S/I (e.g. 'RAS', 'LPS', 'SPL' for the package's "
            f"layout), got {codes!r}."
        )
    return text


def reorient_transform(affine, codes: str, shape):
    """How to reorient a grid so its axes point as ``codes`` say.

    Returns ``(order, flips, new_affine)``: the array is ``pixels.transpose(order)`` then
    reversed along the new axes in ``flips``; ``new_affine`` maps the new (i, j, k, 1) to
    the same RAS+ mm, so every voxel keeps its world position. The current axes are read
    with :func:`axcodes` (nibabel's choice, also for oblique affines).

    Examples
    --------
    >>> from m1vision.geometry import default_affine, reorient_transform
    >>> order, flips, affine = reorient_transform(default_affine((3.0, 1.0, 0.5)), "RAS",
    ...                                           (4, 5, 6))
    >>> order, flips, affine[:3, :3].tolist()
    ((2, 1, 0), (0, 1), [[0.5, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    """
    current = "".join(axcodes(affine))
    target = check_axcodes(codes)
    order, flips = [], []
    for new_axis, letter in enumerate(target):
        world, sign = _AXIS_LETTERS[letter]
        for old_axis, cur in enumerate(current):
            w, s = _AXIS_LETTERS[cur]
            if w == world:
                order.append(old_axis)
                if s != sign:
                    flips.append(new_axis)
                break
    a = np.asarray(affine, float)
    perm = np.zeros((4, 4))
    for new_axis, old_axis in enumerate(order):
        perm[old_axis, new_axis] = 1.0
    perm[3, 3] = 1.0
    new_shape = [int(shape[o]) for o in order]
    flip = np.eye(4)
    for ax in flips:
        flip[ax, ax] = -1.0
        flip[ax, 3] = new_shape[ax] - 1
    return tuple(order), tuple(flips), a @ perm @ flip


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
