"""The plane views and the volume geometry they use, at their first import path.

The pictures of the three planes (:class:`TriPlanarParams`, :class:`PlaneCache`,
:func:`render_plane`, the picture <-> voxel maps) live in :mod:`m1vision.views.planes`; the
layout's geometry (affines, orientation letters, voxel <-> RAS, the planes' axes) in
:mod:`m1vision.geometry`. The names used with the view are importable from here too.

Examples
--------
>>> import numpy as np
>>> from m1vision.planes import orientation_letters, default_affine
>>> orientation_letters(default_affine((2.0, 0.5, 0.5)), "axial")
{'top': 'A', 'bottom': 'P', 'left': 'R', 'right': 'L'}
"""

from m1vision.geometry import (
    PLANES,
    default_affine,
    orientation_letters,
    plane_geometry,
    volume_geometry,
    voxel_to_ras,
)
from m1vision.views.planes import (
    SLICE_KEYS,
    PlaneCache,
    TriPlanarParams,
    TriPlanarView,
    display_shape,
    display_to_voxel,
    draw_crosshair,
    extract_plane,
    letter_boxes,
    render_plane,
    resize_plane,
    slice_after_key,
    slice_position_text,
    stretches_slices,
    value_at,
    voxel_to_display,
)

__all__ = [
    "PLANES",
    "SLICE_KEYS",
    "PlaneCache",
    "TriPlanarParams",
    "TriPlanarView",
    "default_affine",
    "display_shape",
    "display_to_voxel",
    "draw_crosshair",
    "extract_plane",
    "letter_boxes",
    "orientation_letters",
    "plane_geometry",
    "render_plane",
    "resize_plane",
    "slice_after_key",
    "slice_position_text",
    "stretches_slices",
    "value_at",
    "volume_geometry",
    "voxel_to_display",
    "voxel_to_ras",
]
