"""Grid geometry (internal, pure NumPy): comparing two grids, orientation codes, reorienting.

A grid is a shape ``(Z, H, W)`` and an affine mapping ``(z, row, col, 1)`` to RAS+ mm, the
package's one volume layout. Two grids *match* when their shapes are equal and the centres of
their eight corner voxels lie within :data:`GRID_TOLERANCE_MM` of each other: the affine is
linear, so every voxel centre is then within that distance too (a bound in mm that does not
depend on how the affine is written, unlike comparing matrix entries).
"""

from __future__ import annotations

import itertools

import numpy as np

from m1vision.errors import InvalidParameterError

#: Largest distance (mm) between corresponding voxel centres of two grids that "match".
GRID_TOLERANCE_MM = 0.01

_AXIS_LETTERS = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}


def corners(shape, affine) -> np.ndarray:
    """RAS+ mm of the centres of the grid's corner voxels, (8, 3) ((4, 3) in 2-D)."""
    idx = np.array(list(itertools.product(*[(0, max(int(n) - 1, 0)) for n in shape])), float)
    a = np.asarray(affine, float)
    return idx @ a[:3, : len(shape)].T + a[:3, 3]


def grid_distance(shape_a, affine_a, shape_b, affine_b) -> float:
    """The largest distance (mm) between corresponding corner voxel centres (inf: shapes differ)."""
    if tuple(shape_a) != tuple(shape_b):
        return float("inf")
    d = corners(shape_a, affine_a) - corners(shape_b, affine_b)
    return float(np.sqrt((d * d).sum(axis=1)).max())


def axcodes(affine) -> str:
    """Per voxel axis, the RAS letter it points to most, e.g. ``"SPL"`` for the package layout.

    Each axis gets the closest of R/L, A/P, S/I with distinct world axes (nibabel's
    ``io_orientation`` rule: the largest remaining component first).
    """
    a = np.asarray(affine, float)[:3, :3]
    rs = a / np.linalg.norm(a, axis=0)
    ornt = [None, None, None]
    work = np.abs(rs.copy())
    for _ in range(3):
        world, voxel = np.unravel_index(np.argmax(work), work.shape)
        ornt[voxel] = (int(world), 1 if rs[world, voxel] > 0 else -1)
        work[world, :] = -1
        work[:, voxel] = -1
    return "".join("RAS"[w] if s > 0 else "LPI"[w] for w, s in ornt)


def check_codes(codes, *, name: str = "orientation") -> str:
    """Three letters, one of R/L, A/P, S/I each (upper case), or InvalidParameterError."""
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
    the same RAS+ mm, so every voxel keeps its world position.
    """
    current = axcodes(affine)
    target = check_codes(codes)
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


def describe(shape, spacing, affine) -> str:
    """A one-line description of a grid: shape, spacing, origin, axis codes."""
    a = np.asarray(affine, float)
    sp = "?" if spacing is None else "x".join(f"{float(v):g}" for v in spacing)
    origin = ", ".join(f"{v:.3f}" for v in a[:3, 3])
    codes = axcodes(a) if a.shape == (4, 4) and len(shape) == 3 else "-"
    return (
        f"shape {tuple(int(n) for n in shape)}, spacing {sp} mm, origin ({origin}) mm RAS, "
        f"axes {codes}"
    )
