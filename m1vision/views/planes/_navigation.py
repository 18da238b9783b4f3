"""Moving through the slices: the keys that step a plane, where a slice lies in mm."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_int
from m1vision.geometry import check_affine, direction_letter, voxel_to_ras

#: Keys that step a plane's slice, and by how many slices (Home/End: to the first/last).
SLICE_KEYS = {
    "ArrowUp": 1, "ArrowRight": 1, "ArrowDown": -1, "ArrowLeft": -1,
    "PageUp": 10, "PageDown": -10, "Home": None, "End": None,
}  # fmt: skip


def slice_after_key(key: str, index: int, count: int) -> int | None:
    """The slice a key press on a plane's picture moves to, or None for another key.

    Arrow up/right: the next slice, down/left: the previous one, Page Up/Down: ten, Home and
    End: the first and the last; clipped to ``0 .. count - 1``.

    Examples
    --------
    >>> from m1vision.views.planes import slice_after_key
    >>> slice_after_key("ArrowUp", 5, 40), slice_after_key("PageDown", 5, 40)
    (6, 0)
    >>> slice_after_key("End", 5, 40), slice_after_key("a", 5, 40) is None
    (39, True)
    """
    count = check_int(count, name="count", minimum=1)
    index = check_int(index, name="index", minimum=0)
    if not isinstance(key, str) or key not in SLICE_KEYS:
        return None
    step = SLICE_KEYS[key]
    if step is None:
        return 0 if key == "Home" else count - 1
    return min(count - 1, max(0, index + step))


def slice_position_text(affine, axis: int, voxel) -> str:
    """Where the slice through ``voxel`` along volume ``axis`` lies, as a radiologist reads it.

    The world axis (R/L, A/P, S/I) the volume axis runs along, with ``voxel``'s coordinate
    on it in mm, e.g. ``"S 12.5 mm"`` or ``"I 40.0 mm"`` (a negative superior coordinate).

    Examples
    --------
    >>> from m1vision.geometry import default_affine
    >>> from m1vision.views.planes import slice_position_text
    >>> affine = default_affine((2.5, 1.0, 1.0))
    >>> slice_position_text(affine, 0, (5, 0, 0)), slice_position_text(affine, 2, (0, 0, 3))
    ('S 12.5 mm', 'L 3.0 mm')
    """
    a = check_affine(affine)
    world = int(np.argmax(np.abs(a[:3, int(axis)])))
    mm = voxel_to_ras(a, voxel)[world]
    letter = direction_letter(np.eye(3)[world] * (1.0 if mm >= 0 else -1.0))
    return f"{letter} {abs(mm):.1f} mm"
