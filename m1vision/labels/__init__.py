"""Label maps: what is where in an image. Read, write, check, measure and compare them.

Conventions
-----------
* A **label map** is a :class:`~m1vision.io.MedicalImage` in the package's one volume
  layout ((Z, H, W), z inferior to superior, rows anterior to posterior, columns the
  patient's right to left; a 2-D (H, W) map is a picture's mask) with **integer pixels**
  (uint8/uint16/uint32; 0 is the background), the **same** ``spacing`` and
  ``metadata["affine"]`` as the image it belongs to, and ``metadata["labels"]`` =
  ``{value: {"name": str, "color": [r, g, b]}}`` (RGB 0-255; drawing code turns it into BGR).
* Values without a name are called ``"label v"``; values without a colour take the
  **default palette** :data:`DEFAULT_PALETTE` (:func:`default_color`), the same colours in
  the explorers, pictures, NIfTI sidecars and DICOM SEG.
* A label map and an image **match** when their shapes are equal and the centres of their
  corner voxels (so of every voxel) lie within ``m1vision.geometry.GRID_TOLERANCE_MM`` = 0.01 mm
  of each other.
  Every function that takes both checks it (:func:`check_labels` with ``like=``) and raises
  :class:`~m1vision.errors.GridMismatchError`, which shows both grids and the fix:
  ``m1vision.volume.resample(labels, like=image, interpolation="nearest")``.
* Files: NIfTI (``.nii.gz``/``.nii``) with a JSON sidecar ``<name>.json`` (schema
  ``m1vision.labels``, version 1) for the names and colours; 3D Slicer colour tables
  (``<name>.ctbl``/``.txt``) and ITK-SNAP label descriptions (``<name>.txt``/``.label``) are
  read too. DICOM SEG (``.dcm``) is written with highdicom as a BINARY segmentation that
  references its source series: patient and study identifiers copied from the source are
  emptied; only the UIDs that link the SEG to its series (StudyInstanceUID, the referenced
  series and instance UIDs, FrameOfReferenceUID) are kept. Segments are MANUAL,
  category and type "Tissue" (SCT 85756007): m1vision does not know who drew a map.

Where things are
----------------
======================  ==================================================================
name                    what it is (module)
======================  ==================================================================
:func:`label_map`       build a label map from an integer array (``_core``)
:func:`check_labels`    a checked label map; ``like=`` checks the grid (``_core``)
:func:`grids_match`     do two images share one grid (``_core``; the pure geometry is in
                        :mod:`m1vision.geometry`)
:func:`default_color`   the default palette's colour of a value (``_core``)
:func:`read_labels`     NIfTI (+ sidecar / colour table) or DICOM SEG in (``_files``,
                        ``_seg``)
:func:`write_labels`    NIfTI + JSON sidecar or DICOM SEG out (``_files``, ``_seg``)
:func:`sidecar_path`    the sidecar of a NIfTI label map (``_files``)
:func:`label_stats`     per-label voxels, mL, image statistics, centroid, box (``_stats``)
:class:`LabelTable`     the table statistics and comparisons return (``_table``)
:func:`compare_labels`  Dice, IoU, HD95, ASSD, volume difference (``_compare``)
======================  ==================================================================

Resampling and reorienting live in :mod:`m1vision.volume` (``resample``, ``reorient``) and as
pipeline steps (:class:`m1vision.pipeline.Resample`, :class:`m1vision.pipeline.Reorient`).
The phantom :func:`m1vision.synthetic.ct_phantom_labels` gives a label map with known organs.
Statistics over a folder of image/label pairs, through the batch engine, are
:func:`m1vision.cohort.stats_folder` (a job: a floor above this room).

Examples
--------
>>> from m1vision.labels import check_labels
>>> from m1vision.synthetic import ct_phantom_labels
>>> labels = check_labels(ct_phantom_labels((8, 64, 64)))
>>> [e["name"] for e in labels.metadata["labels"].values()][:3]
['lung_right', 'lung_left', 'liver']
"""

from __future__ import annotations

from m1vision.labels._compare import compare_labels
from m1vision.labels._core import (
    DEFAULT_PALETTE,
    check_labels,
    default_color,
    grids_match,
    label_map,
)
from m1vision.labels._files import read_labels, sidecar_path, write_labels
from m1vision.labels._stats import label_stats
from m1vision.labels._table import LabelTable

__all__ = [
    "DEFAULT_PALETTE",
    "LabelTable",
    "check_labels",
    "compare_labels",
    "default_color",
    "grids_match",
    "label_map",
    "label_stats",
    "read_labels",
    "sidecar_path",
    "write_labels",
]
