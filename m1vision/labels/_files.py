"""Label maps in and out (internal): NIfTI with a names-and-colours sidecar, and DICOM SEG."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from pathlib import Path

import numpy as np

from m1vision._atomic import atomic_write_text, check_versioned, versioned
from m1vision._checks import check_path
from m1vision.errors import (
    InvalidParameterError,
    LabelSidecarError,
    OutputExistsError,
)
from m1vision.io import MedicalImage

#: The sidecar's schema (``<name>.json`` beside ``<name>.nii.gz``).
SIDECAR_SCHEMA = "m1vision.labels"
SIDECAR_VERSION = 1

_SUFFIXES = (".nii.gz", ".nii", ".dcm")


def _kind(path: Path, what: str) -> str:
    name = path.name.lower()
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return "seg" if suffix == ".dcm" else "nifti"
    raise InvalidParameterError(
        f"cannot {what} {str(path)!r}: label maps are NIfTI (.nii.gz, .nii) or DICOM SEG "
        f"(.dcm), got the name {path.name!r}; end the name with one of those."
    )


def _stem(path: Path) -> Path:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path.with_suffix("")


def sidecar_path(path) -> Path:
    """The JSON sidecar of a NIfTI label map: ``seg.nii.gz`` -> ``seg.json``.

    Examples
    --------
    >>> from m1vision.labels import sidecar_path
    >>> sidecar_path("out/liver.nii.gz").as_posix()
    'out/liver.json'
    """
    p = Path(check_path(path))
    return _stem(p).with_name(_stem(p).name + ".json")


# ---------------------------------------------------------------------------- colour tables


def _read_itksnap(text: str, source: str) -> dict:
    """ITK-SNAP label description: ``IDX R G B A VIS MSH "LABEL"`` per line."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = shlex.split(line)
        if len(fields) != 8:
            raise LabelSidecarError(
                f"{source}: the ITK-SNAP label line {line!r} does not have 8 fields "
                '(IDX R G B A VIS MSH "LABEL").'
            )
        value = int(fields[0])
        if value > 0:
            out[value] = {"name": fields[7], "color": [int(v) for v in fields[1:4]]}
    return out


def _read_slicer(text: str, source: str) -> dict:
    """3D Slicer colour table: ``value name r g b a`` per line."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 6:
            raise LabelSidecarError(
                f"{source}: the Slicer colour table line {line!r} does not read "
                "'value name r g b a'."
            )
        value = int(fields[0])
        if value > 0:
            out[value] = {"name": fields[1], "color": [int(v) for v in fields[2:5]]}
    return out


def _read_table(path: Path) -> dict:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if "ITK-SnAP" in text or re.search(r'^\s*\d+(\s+\S+){6}\s+".*"\s*$', text, re.M):
            return _read_itksnap(text, str(path))
        return _read_slicer(text, str(path))
    except ValueError as exc:
        raise LabelSidecarError(f"{str(path)!r} is no readable colour table: {exc}") from exc


def _names_for(path: Path, pixels: np.ndarray):
    """(labels dict or None, the file it came from or None) for a NIfTI label map."""
    from m1vision.labels._core import label_info

    side = sidecar_path(path)
    if side.is_file():
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LabelSidecarError(f"cannot read the label sidecar {str(side)!r}: {exc}") from exc
        check_versioned(
            data,
            schema=SIDECAR_SCHEMA,
            versions=(SIDECAR_VERSION,),
            source=str(side),
            error=LabelSidecarError,
        )
        return label_info(pixels, data.get("labels"), name=str(side), strict=True), side
    stem = _stem(path)
    for suffix in (".ctbl", ".txt", ".label"):
        table = stem.with_name(stem.name + suffix)
        if table.is_file():
            # colour tables are palettes: entries for values not in the map are ignored
            return label_info(pixels, _read_table(table), name=str(table), strict=False), table
    return None, None


# ---------------------------------------------------------------------------- public API


def read_labels(path, *, like=None, overlap: str = "error"):
    """Read a label map: NIfTI (``.nii``/``.nii.gz``) or DICOM SEG (``.dcm``).

    NIfTI: integer pixels in the package layout with the file's affine (the same reading as
    :func:`m1vision.io.read_nifti`), names and colours from, in this order, the JSON sidecar
    ``<name>.json`` (see :func:`write_labels`), a 3D Slicer colour table ``<name>.ctbl`` or
    ``<name>.txt``, or an ITK-SNAP label description ``<name>.txt``/``<name>.label``
    (values the table lists that the map does not hold are ignored: tables are palettes);
    values without a name get ``"label v"`` and the default palette. Whole-number float
    files are accepted and stored as the smallest unsigned integer type.

    DICOM SEG: LABELMAP, BINARY and FRACTIONAL (thresholded at 0.5) segmentations, laid out
    as the package's volumes (z up, rows to posterior, columns to the left), names from the
    segment labels, colours from the CIELab values, values from the segment numbers (or the
    values m1vision wrote, kept in the TrackingID). SEGs leave empty frames out, so a SEG
    read alone covers the slices that hold labels (at their true positions); pass ``like=``
    to get it on its image's grid.

    Parameters
    ----------
    path : str or pathlib.Path
    like : MedicalImage or series folder, optional, keyword-only
        The image the labels belong to. The map is checked against its grid (and returned on
        it: a SEG whose empty frames were left out is placed in the image's grid). A DICOM
        series folder is read with :func:`m1vision.io.read_series`; for a SEG its
        SeriesInstanceUID must be the one the SEG references.
    overlap : {"error", "split"}, keyword-only
        A SEG whose segments overlap: "error" raises SegOverlapError, "split" returns a list of
        label maps (layers), each with segments that do not overlap.

    Returns
    -------
    MedicalImage
        ``pixels`` uint8/uint16/uint32 (Z, H, W), ``spacing``, ``metadata["affine"]`` and
        ``metadata["labels"]``; for ``overlap="split"`` of a SEG, a list of them.

    Raises
    ------
    ImageReadError
        Not readable as NIfTI or SEG.
    LabelValueError
        Non-integer or negative values in a NIfTI file.
    LabelSidecarError
        The JSON sidecar is damaged or names values the map does not hold.
    GridMismatchError
        ``like`` is given and the grids differ (both shown, with the resample fix).
    SegReferenceError
        ``like`` is a series folder the SEG does not reference.
    SegOverlapError
        Overlapping segments with ``overlap="error"``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from m1vision.labels import read_labels, write_labels
    >>> from m1vision.synthetic import ct_phantom_labels
    >>> labels = ct_phantom_labels((4, 32, 32))
    >>> p = write_labels(pathlib.Path(tempfile.mkdtemp()) / "organs.nii.gz", labels)
    >>> back = read_labels(p)
    >>> bool((back.pixels == labels.pixels).all()), back.metadata["labels"][3]["name"]
    (True, 'liver')
    """
    from m1vision.labels._core import _integer_pixels, check_grid, label_map, read_expression
    from m1vision.labels._seg import read_seg

    if overlap not in ("error", "split"):
        raise InvalidParameterError(f"overlap must be 'error' or 'split', got {overlap!r}.")
    p = Path(check_path(path))
    if _kind(p, "read") == "seg":
        return read_seg(p, like=like, overlap=overlap)
    from m1vision.io import read_nifti

    if isinstance(like, str) or hasattr(like, "__fspath__"):
        from m1vision.io import read_series

        like = read_series(like)
    image = read_nifti(p)
    pixels = _integer_pixels(image.pixels, str(p))
    labels, names_file = _names_for(p, pixels)
    lm = label_map(pixels, spacing=image.spacing, affine=image.metadata["affine"], labels=labels)
    meta = {
        **lm.metadata,
        "format": "nifti",
        "original_orientation": image.metadata.get("original_orientation"),
    }
    if names_file is not None:
        meta["names_from"] = names_file.name
    out = MedicalImage(lm.pixels, lm.spacing, None, None, meta, str(p))
    if like is not None:
        check_grid(out, like, name=str(p), image_name="like", expression=read_expression(p))
    return [out] if overlap == "split" else out


def write_labels(path, labels, *, like=None, source=None, overwrite: bool = False) -> Path:
    """Write a label map as NIfTI plus a JSON sidecar, or as a DICOM SEG (by the suffix).

    ``.nii``/``.nii.gz``: the pixels in their integer dtype with the affine
    (:func:`m1vision.io.write_nifti`), and ``<name>.json`` beside it (schema
    ``m1vision.labels`` version 1: ``{"labels": {"<value>": {"name", "color"}}}``).

    ``.dcm``: a DICOM SEG (BINARY, one segment per label, written with highdicom) that
    references ``source``, the DICOM series the labels were made on; the labels must be on
    that series' grid. Segment labels are the names, colours CIELab. Patient and study
    identifiers copied from the source are emptied: the SEG keeps only the UIDs that link it
    to its series (see :mod:`m1vision.labels`).

    Parameters
    ----------
    path : str or pathlib.Path
        Ends in ``.nii.gz``, ``.nii`` or ``.dcm``.
    labels : MedicalImage or numpy.ndarray
        A label map (integer pixels >= 0); an ndarray takes ``like``'s grid.
    like : MedicalImage, optional, keyword-only
        The image the labels belong to: checked to be on one grid before anything is written.
    source : folder or list of pydicom.Dataset, keyword-only
        The source series; required for ``.dcm``.
    overwrite : bool, keyword-only
        Replace existing files (the image and its sidecar); otherwise OutputExistsError
        before anything is written.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InvalidParameterError
        Another suffix.
    LabelValueError
        Non-integer or negative values; more labels than a SEG holds (65535).
    GridMismatchError
        The labels are not on ``like``'s (or the source series') grid.
    SegReferenceError
        ``.dcm`` without ``source``, or a source that is not one series of single slices.
    OutputExistsError
        A target exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from m1vision.labels import sidecar_path, write_labels
    >>> from m1vision.synthetic import ct_phantom_labels
    >>> p = write_labels(pathlib.Path(tempfile.mkdtemp()) / "organs.nii.gz",
    ...                  ct_phantom_labels((4, 32, 32)))
    >>> p.name, sidecar_path(p).name
    ('organs.nii.gz', 'organs.json')
    """
    from m1vision.labels._core import check_labels
    from m1vision.labels._seg import write_seg

    p = Path(check_path(path, call="write_labels(path, labels)"))
    kind = _kind(p, "write")
    lm = check_labels(labels, like=like)
    if kind == "seg":
        return write_seg(p, lm, source, overwrite=overwrite)
    from m1vision.io import write_nifti

    side = sidecar_path(p)
    if not overwrite:
        for target in (p, side):
            if target.exists():
                raise OutputExistsError(
                    f"{str(target)!r} exists; pass overwrite=True to replace it (and "
                    f"{'its image' if target == side else 'its sidecar'}), or choose another name."
                )
    body = {
        "labels": {
            str(v): {"name": e["name"], "color": list(e["color"])}
            for v, e in sorted(lm.metadata["labels"].items())
        }
    }
    text = json.dumps(versioned(SIDECAR_SCHEMA, SIDECAR_VERSION, body), indent=2) + "\n"
    existed = p.exists()
    write_nifti(p, lm, overwrite=overwrite)
    try:
        atomic_write_text(side, text, overwrite=overwrite)
    except BaseException:
        if not existed:  # nothing half-written: the image goes without its sidecar
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    return p
