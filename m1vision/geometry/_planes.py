"""The three planes: their axes in the layout and the letters at a plane picture's edges."""

from __future__ import annotations

from m1vision._checks import check_choice
from m1vision.geometry._affines import check_affine
from m1vision.geometry._orientations import direction_letter

#: The planes, in the order the explorers show them.
PLANES = ("axial", "coronal", "sagittal")

# plane -> (slice axis, vertical axis, vertical flipped, horizontal axis, horizontal flipped)
_GEOMETRY = {
    "axial": (0, 1, False, 2, False),
    "coronal": (1, 0, True, 2, False),
    "sagittal": (2, 0, True, 1, False),
}


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
