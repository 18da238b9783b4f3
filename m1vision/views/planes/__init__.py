"""The three planes of a volume as pictures, and the maps between picture and voxel.

What :class:`m1vision.widgets.TriPlanarExplorer` shows, computed without any widget. The
volume's geometry (layout, affine, orientation letters, voxel -> RAS, the planes' axes) comes
from :mod:`m1vision.geometry`.

Each plane is shown the way radiologists read it, whatever the volume:

* axial (a slice of constant z): rows down, columns across (anterior at the top, the
  patient's right on the left for the usual layout);
* coronal (constant row): z up (superior at the top), columns across;
* sagittal (constant column): z up, rows across (anterior on the left).

The letters at the picture's edges are derived from the affine (``orientation_letters``),
so they stay right for a volume stored in any other orientation; the picture has the plane's
physical aspect (:func:`display_shape`, from ``spacing``). :func:`display_to_voxel` inverts the
picture geometry exactly, so a mouse position in the picture gives the voxel under it,
``voxel_to_ras`` its position in mm and the value is ``pixels[voxel]``.
:class:`TriPlanarView` is the three pictures with their state as data.

Where things are (private parts):

===============  ==============================================================================
``_maps``        a plane cut out (:func:`extract_plane`), its picture's size, picture <-> voxel,
                 the resize of a plane (:func:`resize_plane`), :func:`value_at`
``_params``      :class:`TriPlanarParams` (the settings, checked)
``_crosshair``   :func:`draw_crosshair` and :func:`letter_boxes`
``_cache``       :class:`PlaneCache` (each plane's picture, cached), :func:`render_plane`
``_navigation``  :data:`SLICE_KEYS`, :func:`slice_after_key`, :func:`slice_position_text`
``_view``        :class:`TriPlanarView`
===============  ==============================================================================
"""

from __future__ import annotations

from m1vision.geometry import PLANES
from m1vision.geometry import default_affine as default_affine
from m1vision.geometry import plane_geometry as plane_geometry
from m1vision.views.planes._cache import PlaneCache, render_plane
from m1vision.views.planes._crosshair import draw_crosshair, letter_boxes
from m1vision.views.planes._maps import (
    display_shape,
    display_to_voxel,
    extract_plane,
    resize_plane,
    stretches_slices,
    value_at,
    voxel_to_display,
)
from m1vision.views.planes._navigation import SLICE_KEYS, slice_after_key, slice_position_text
from m1vision.views.planes._params import TriPlanarParams
from m1vision.views.planes._view import TriPlanarView

__all__ = [
    "PLANES",
    "SLICE_KEYS",
    "PlaneCache",
    "TriPlanarParams",
    "TriPlanarView",
    "display_shape",
    "display_to_voxel",
    "draw_crosshair",
    "extract_plane",
    "letter_boxes",
    "render_plane",
    "resize_plane",
    "slice_after_key",
    "slice_position_text",
    "stretches_slices",
    "value_at",
    "voxel_to_display",
]
