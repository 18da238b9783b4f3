"""Orientations: which RAS axis each voxel axis runs along, letters, reorienting a grid.

The choice of axes is nibabel's (``orientations.io_orientation``), also for oblique affines.
"""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_shape
from m1vision.errors import InvalidParameterError
from m1vision.geometry._affines import check_affine

_POSITIVE = "RAS"  # RAS+: +x right, +y anterior, +z superior
_NEGATIVE = "LPI"
# letter -> (RAS axis, sign)
_AXIS_LETTERS = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}


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
    nx, ny, _ = check_shape(shape_xyz, name="shape_xyz", ndims=(3,))
    return np.array(
        [[0, 0, -1, nx - 1], [0, -1, 0, ny - 1], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64
    )
