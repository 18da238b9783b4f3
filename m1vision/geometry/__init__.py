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
:func:`axcodes`                 the letter each voxel axis points to (``nibabel.aff2axcodes``)
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

Where things are (private parts, pure functions, NumPy their only library):

=================  ==========================================================================
``_affines``       spacing and affine checks, the layout's affine, voxel <-> RAS mm
``_orientations``  RAS axis codes and letters, reorienting a grid, a stack into the layout
``_planes``        :data:`PLANES`, a plane's axes, the letters at a plane picture's edges
``_dicom``         ImageOrientationPatient checked and named, a DICOM stack's affine
``_grids``         grids compared (:data:`GRID_TOLERANCE_MM`) and described
=================  ==========================================================================

Examples
--------
>>> from m1vision.geometry import axcodes, default_affine, voxel_to_ras
>>> affine = default_affine((2.0, 0.5, 0.5))
>>> axcodes(affine), voxel_to_ras(affine, (1, 2, 4))
(('S', 'P', 'L'), (-2.0, -1.0, 2.0))
"""

from __future__ import annotations

from m1vision.geometry._affines import (
    apply_affine,
    check_affine,
    check_spacing,
    default_affine,
    ras_to_voxel,
    volume_geometry,
    voxel_to_ras,
)
from m1vision.geometry._dicom import dicom_affine, orientation_problem, plane_name, slice_normal
from m1vision.geometry._grids import GRID_TOLERANCE_MM, describe_grid, grid_corners, grid_distance
from m1vision.geometry._orientations import (
    axcodes,
    canonical_to_layout,
    check_axcodes,
    direction_letter,
    io_orientation,
    reorient_transform,
    to_layout,
)
from m1vision.geometry._planes import PLANES, orientation_letters, plane_geometry

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
