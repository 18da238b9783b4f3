"""Read and write medical and plain images: DICOM, NIfTI, PNG, JPEG, TIFF, BMP.

Every reader names the file and the reason when it fails (:class:`~m1vision.errors.ImageReadError`,
also an ``OSError``); none returns ``None``. Files are recognised by their content (magic bytes),
not by their extension, so a PNG named ``.dcm`` or a DICOM without an extension read fine with
:func:`read_any`.

=====================  ==========================================================================
function               returns
=====================  ==========================================================================
:func:`read_image`     a plain ``ndarray`` (PNG, JPEG, TIFF, BMP; 8/16-bit kept; BGR for color)
:func:`read_dicom`     a :class:`MedicalImage`, pixels float32 in modality units (HU for CT);
                       an Enhanced multi-frame CT/MR/PET object as a volume (``stack=``)
:func:`read_nifti`     a :class:`MedicalImage`, a float32 (Z, H, W) volume in DICOM-like layout
:func:`read_series`    a :class:`MedicalImage` volume from a folder of single-slice DICOM files
:func:`list_series`    one :class:`SeriesInfo` row per DICOM series found in a folder (per
                       stack for an Enhanced multi-frame object)
:func:`audit`          an :class:`AuditReport` of a whole collection: series, geometry, verdicts,
                       duplicate images, unreadable files; CSV, JSON and pictures
:func:`read_any`       a :class:`MedicalImage` for any of the above (a file or a one-series
                       folder), picked by content
:func:`write_image`    writes PNG/JPEG/TIFF/BMP atomically; refuses to overwrite unless asked
:func:`write_nifti`    writes a volume to .nii/.nii.gz with its affine, atomically
=====================  ==========================================================================

Where things are (private parts):

==================  ==============================================================================
``_core``           :class:`MedicalImage`, file checks
``_sniff``          formats by content (magic bytes), and the DICOM/NIfTI header fields it needs
``_raster``         PNG, JPEG, TIFF, BMP reading
``_dicom``          one DICOM file
``_pixels``         DICOM pixel data: the transfer syntaxes read, size checks, decode errors
``_nifti``          NIfTI reading and writing
``_listing``        finding and listing DICOM series
``_series``         reading one series as a volume
``_series_checks``  readable slices, usable orientation
``_stack``          the geometry checks, rescale and layout shared by series and Enhanced frames
``_enhanced``       Enhanced multi-frame objects: functional groups, stacks
``_audit``          :func:`audit`: a DICOM collection at a glance (the run, in worker processes)
``_audit_report``   :class:`AuditReport`: its table, CSV/JSON files, scatter and contact sheet
``_write``          :func:`write_image`
==================  ==============================================================================

Geometry (affines, orientations, the layout) is :mod:`m1vision.geometry`'s.

Conventions
-----------
* Color images are BGR (OpenCV's order).
* Volumes are (Z, H, W): slices first. ``spacing`` is in millimetres in the same axis order.
* Metadata is small and JSON-safe, and never holds patient or study identifiers or free-text
  fields (no PatientName, PatientID, dates, descriptions): de-identified by construction.
"""

from __future__ import annotations

from pathlib import Path

from m1vision.errors import ImageReadError, SeriesNotFoundError
from m1vision.io._audit import AuditReport, AuditRow, audit
from m1vision.io._core import MedicalImage, _check_file
from m1vision.io._dicom import read_dicom
from m1vision.io._listing import SeriesInfo, SeriesListing, list_series
from m1vision.io._nifti import read_nifti, write_nifti
from m1vision.io._raster import _read_raster, read_image
from m1vision.io._series import read_series
from m1vision.io._sniff import IMAGE_EXTENSIONS, has_image_extension, sniff_format
from m1vision.io._write import write_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "AuditReport",
    "AuditRow",
    "MedicalImage",
    "SeriesInfo",
    "SeriesListing",
    "audit",
    "has_image_extension",
    "list_series",
    "read_any",
    "read_dicom",
    "read_image",
    "read_nifti",
    "read_series",
    "sniff_format",
    "write_image",
    "write_nifti",
]


def read_any(path) -> MedicalImage:
    """Read DICOM, NIfTI(.gz), PNG, JPEG, TIFF or BMP, recognised by content, as a MedicalImage.

    A folder is read as a DICOM series with :func:`read_series` (``strict=True``): it must hold
    exactly one series (several raise :class:`~m1vision.errors.SeriesSelectionError` listing
    them; pick one with ``read_series(folder, series=...)``).

    The extension is ignored: a PNG named ``.dcm`` is read as PNG, a DICOM without an
    extension as DICOM (see :func:`sniff_format`). Plain images keep their dtype and channels
    (:func:`read_image` with ``mode="unchanged"``), with ``spacing``, ``window`` and
    ``modality`` None and ``metadata["format"]`` the format.

    Raises
    ------
    ImageReadError
        As :func:`read_image`, :func:`read_dicom` and :func:`read_nifti`; always naming the file.
    SeriesError
        For a folder, as :func:`read_series` (a folder without any DICOM image series raises
        ImageReadError).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import read_any, write_image
    >>> p = write_image(pathlib.Path(tempfile.mkdtemp()) / "x.tif", np.ones((2, 3), np.uint16))
    >>> img = read_any(p)
    >>> img.pixels.dtype, img.metadata["format"], img.spacing
    (dtype('uint16'), 'tiff', None)
    """
    if (isinstance(path, str) or hasattr(path, "__fspath__")) and Path(path).is_dir():
        try:
            return read_series(path)
        except SeriesNotFoundError as exc:
            raise ImageReadError(
                path,
                f"it is a directory holding no DICOM image series ({exc.got}); pass a file, "
                "or a folder of DICOM slices (list_series shows what a folder holds).",
            ) from exc
    fmt = sniff_format(path)
    if fmt == "dicom":
        return read_dicom(path)
    if fmt == "nifti":
        return read_nifti(path)
    pixels = _read_raster(_check_file(path), fmt, "unchanged")
    layout = "slice" if pixels.ndim == 2 else "color"
    return MedicalImage(
        pixels=pixels,
        metadata={"format": fmt, "layout": layout},
        source=str(Path(path)),
    )
