"""Volume geometry (layout affines, checks, orientation letters, voxel -> RAS) and the old
import path of the plane views.

The pictures of the three planes (:class:`TriPlanarParams`, :class:`PlaneCache`,
:func:`render_plane`, the picture <-> voxel maps) live in :mod:`m1vision.views.planes`;
their names are importable from here too.

A volume follows the package's layout: ``pixels`` (Z, H, W) with z inferior to superior,
rows anterior to posterior, columns patient right to left, ``spacing`` (z, row, col) mm and
``metadata["affine"]`` mapping ``(z, row, col, 1)`` to RAS+ mm.

Examples
--------
>>> import numpy as np
>>> from m1vision.planes import orientation_letters, default_affine
>>> orientation_letters(default_affine((2.0, 0.5, 0.5)), "axial")
{'top': 'A', 'bottom': 'P', 'left': 'R', 'right': 'L'}
"""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_choice, check_number
from m1vision.errors import InvalidImageError, InvalidParameterError

__all__ = [
    "PLANES",
    "PlaneCache",  # noqa: F822 - provided by __getattr__
    "TriPlanarParams",  # noqa: F822 - provided by __getattr__
    "default_affine",
    "display_shape",  # noqa: F822 - provided by __getattr__
    "display_to_voxel",  # noqa: F822 - provided by __getattr__
    "extract_plane",  # noqa: F822 - provided by __getattr__
    "orientation_letters",
    "plane_geometry",
    "render_plane",  # noqa: F822 - provided by __getattr__
    "value_at",  # noqa: F822 - provided by __getattr__
    "volume_geometry",
    "voxel_to_display",  # noqa: F822 - provided by __getattr__
    "voxel_to_ras",
]

#: The names of :mod:`m1vision.views.planes` importable from here.
_VIEW_NAMES = (
    "PlaneCache",
    "TriPlanarParams",
    "TriPlanarView",
    "display_shape",
    "display_to_voxel",
    "draw_crosshair",
    "extract_plane",
    "render_plane",
    "value_at",
    "voxel_to_display",
)

PLANES = ("axial", "coronal", "sagittal")

# plane -> (slice axis, vertical axis, vertical flipped, horizontal axis, horizontal flipped)
_GEOMETRY = {
    "axial": (0, 1, False, 2, False),
    "coronal": (1, 0, True, 2, False),
    "sagittal": (2, 0, True, 1, False),
}
_POSITIVE = "RAS"  # RAS+: +x right, +y anterior, +z superior
_NEGATIVE = "LPI"


def plane_geometry(plane: str) -> tuple[int, int, bool, int, bool]:
    """``(slice_axis, vertical_axis, vertical_flipped, horizontal_axis, horizontal_flipped)``.

    Axes are those of the volume ``(z, row, col)``; "flipped" means the picture shows that
    axis from its last index to its first (z upwards in coronal and sagittal pictures).

    Examples
    --------
    >>> from m1vision.planes import plane_geometry
    >>> plane_geometry("coronal")
    (1, 0, True, 2, False)
    """
    return _GEOMETRY[check_choice(plane, name="plane", choices=PLANES)]


def default_affine(spacing) -> np.ndarray:
    """The affine of the package's layout for ``spacing`` (z, row, col), origin at voxel 0.

    z goes superior (+S), rows posterior (-A), columns to the patient's left (-R).

    Examples
    --------
    >>> from m1vision.planes import default_affine
    >>> default_affine((3.0, 1.0, 0.5))[:3, :3].tolist()
    [[0.0, 0.0, -0.5], [0.0, -1.0, 0.0], [3.0, 0.0, 0.0]]
    """
    sz, sr, sc = _check_spacing(spacing)
    affine = np.zeros((4, 4))
    affine[0, 2], affine[1, 1], affine[2, 0], affine[3, 3] = -sc, -sr, sz, 1.0
    return affine


def _check_spacing(spacing) -> tuple[float, float, float]:
    if not isinstance(spacing, tuple | list | np.ndarray) or len(spacing) != 3:
        raise InvalidParameterError(
            f"spacing must be (z, row, col) in mm, got {spacing!r}; pass the volume's "
            "MedicalImage.spacing, or (1.0, 1.0, 1.0) if it is unknown."
        )
    out = tuple(check_number(v, name=f"spacing[{i}]") for i, v in enumerate(spacing))
    if min(out) <= 0:
        raise InvalidParameterError(f"spacing must be > 0 mm on every axis, got {out}.")
    return out


def _check_affine(affine) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape not in ((4, 4), (3, 4)) or not np.isfinite(a).all():
        raise InvalidParameterError(
            f"affine must be a finite 4x4 (or 3x4) matrix mapping (z, row, col, 1) to RAS mm, "
            f"got shape {a.shape}; pass the volume's metadata['affine']."
        )
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise InvalidParameterError("affine is singular (its 3x3 part has determinant 0).")
    return a


def volume_geometry(volume) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """``(pixels, spacing, affine)`` of an ndarray or a MedicalImage volume, checked.

    Spacing defaults to 1 mm and the affine to :func:`default_affine` of the spacing.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.planes import volume_geometry
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
    if not isinstance(volume, np.ndarray):
        raise TypeError(
            f"volume must be a numpy.ndarray or a MedicalImage, got {type(volume).__name__}."
        )
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise InvalidImageError(
            f"volume must be a non-empty 3-D (Z, H, W) array, got shape {volume.shape}; "
            "for one 2-D image use EdgeExplorer."
        )
    spacing = (1.0, 1.0, 1.0) if spacing is None else _check_spacing(spacing)
    affine = default_affine(spacing) if affine is None else _check_affine(affine)
    if affine.shape == (3, 4):
        affine = np.vstack([affine, [0.0, 0.0, 0.0, 1.0]])
    return volume, spacing, affine


def _letter(direction: np.ndarray) -> str:
    axis = int(np.argmax(np.abs(direction[:3])))
    return (_POSITIVE if direction[axis] > 0 else _NEGATIVE)[axis]


def orientation_letters(affine, plane: str) -> dict[str, str]:
    """The anatomical letters (R/L, A/P, S/I) at the four edges of ``plane``'s picture.

    Each edge gets the RAS direction the picture's axis points to there, taken from the
    affine (the dominant component of the voxel axis' direction), so an oblique or flipped
    volume gets the letters it really has.

    Examples
    --------
    >>> from m1vision.planes import default_affine, orientation_letters
    >>> orientation_letters(default_affine((1, 1, 1)), "sagittal")
    {'top': 'S', 'bottom': 'I', 'left': 'A', 'right': 'P'}
    """
    a = _check_affine(affine)
    _, v_axis, v_flip, h_axis, h_flip = plane_geometry(plane)
    down = a[:3, v_axis] * (-1.0 if v_flip else 1.0)
    right = a[:3, h_axis] * (-1.0 if h_flip else 1.0)
    return {
        "top": _letter(-down),
        "bottom": _letter(down),
        "left": _letter(-right),
        "right": _letter(right),
    }



def voxel_to_ras(affine, voxel) -> tuple[float, float, float]:
    """RAS+ position in mm of ``voxel`` ``(z, row, col)``.

    Examples
    --------
    >>> from m1vision.planes import default_affine, voxel_to_ras
    >>> voxel_to_ras(default_affine((2.0, 1.0, 1.0)), (3, 4, 5))
    (-5.0, -4.0, 6.0)
    """
    a = _check_affine(affine)
    point = a @ np.array([*map(float, voxel), 1.0])
    return tuple(float(v) for v in point[:3])




def __getattr__(name: str):
    # the plane views are imported on first use: they import this module's geometry
    if name in _VIEW_NAMES:
        from m1vision.views import planes as views_planes

        return getattr(views_planes, name)
    raise AttributeError(f"module 'm1vision.planes' has no attribute {name!r}")
