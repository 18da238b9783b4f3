"""DICOM series: a folder of single-slice files read as one (Z, H, W) volume (internal).

Files are found by content and grouped by SeriesInstanceUID (:mod:`._listing`), sorted by
ImagePositionPatient projected on the slice normal, checked (orientation, pixel spacing, size,
duplicates, gaps, uneven steps, gantry tilt) and laid out exactly as
:func:`~m1vision.io.read_nifti` lays out a NIfTI volume; the checks and the layout are
:mod:`._stack`'s, shared with Enhanced multi-frame objects.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from m1vision.errors import ImageReadError, InvalidParameterError, SeriesNotFoundError
from m1vision.io._core import MedicalImage
from m1vision.io._dicom import _dicom_metadata, _first, _monochrome1_constant, _window
from m1vision.io._listing import (
    SeriesListing,
    _check_folder,
    _infos,
    _key,
    _progress,
    _scan,
    _workers,
)
from m1vision.io._pixels import _decode_error
from m1vision.io._series_checks import _check_orientation, _check_readable, _decode_all
from m1vision.io._stack import (
    _check_geometry,
    _choose,
    _fill_gaps,
    _Geometry,
    _geometry_metadata,
    _layout_volume,
    _rescale,
)

__all__ = ["read_series"]


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def _pick(folder: Path, groups, series, skipped):
    infos = _infos(groups)
    table = str(SeriesListing(str(folder), tuple(infos)))
    if not groups:
        reasons = Counter(r.split(":")[0] for _, r in skipped)
        got = (
            "no files at all"
            if not skipped
            else "only " + ", ".join(f"{n} file(s) skipped as {why}" for why, n in reasons.items())
        )
        raise SeriesNotFoundError(
            folder,
            "no DICOM image series found",
            expected="single-slice DICOM image files (found by content, any file name)",
            got=got,
            fix="point to the folder holding the image files; list_series(folder) shows what "
            "is found and skipped",
            files=[f for f, _ in skipped],
        )
    labels = [i.description for i in infos]
    return groups[_choose(folder, series, labels, table, **_SERIES_WORDS)]


_SERIES_WORDS = {
    "name": "series",
    "noun": ("series", "series"),
    "holder": "the folder",
    "index_word": "a row index",
    "label_word": "a description",
    "source": " from list_series",
    "fix_none": "pass series=<row index> or series=<description> from the table (list_series "
    "shows it)",
}


def _decode_series(geo: _Geometry, n_workers: int, progress):
    """Step 5: decode each slice, its own modality LUT and MONOCHROME1 as read_dicom does.

    Returns the float32 (k, r, c) stack in stored order and the MONOCHROME1 constants used.
    """
    from pydicom.pixels import apply_modality_lut

    slices, slots = geo.slices, geo.slots
    rows, cols = slices[0].size
    stack = np.empty((geo.n_out, rows, cols), dtype=np.float32)
    inversions: set = set()

    def decode(i: int) -> None:
        s = slices[i]
        raw = s.raw
        if raw is None:  # not decoded while reading
            try:
                raw = s.ds.pixel_array
            except Exception as exc:
                raw = _decode_error(s.path, s.ds, exc)
            if "PixelData" in s.ds:
                del s.ds.PixelData
        if isinstance(raw, Exception):
            raise raw
        if raw.shape != (rows, cols):
            raise ImageReadError(
                s.path, f"pixel data of shape {raw.shape}, expected {(rows, cols)} (Rows, Columns)"
            )
        ds = s.ds
        dst = stack[slots[i]]
        if "ModalityLUTSequence" in ds:
            values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
        else:
            slope, inter = _first(ds.get("RescaleSlope")), _first(ds.get("RescaleIntercept"))
            values = _rescale(raw, slope, inter, dst)
        if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
            k = _monochrome1_constant(ds, apply_modality_lut)
            inversions.add(k)
            values = np.float64(k) - (dst.astype(np.float64) if values is None else values)
        if values is not None:
            dst[...] = values
        s.raw = None  # the volume holds the values now

    items = range(len(slices))
    if n_workers > 1 and len(slices) > 8:
        with ThreadPoolExecutor(n_workers) as pool:
            for _ in _progress(pool.map(decode, items), len(slices), progress, "decoding"):
                pass
    else:
        for i in _progress(items, len(slices), progress, "decoding"):
            decode(i)
    _fill_gaps(stack, geo)
    return stack, inversions


def read_series(
    folder,
    *,
    series: int | str | None = None,
    strict: bool = True,
    progress: bool | None = None,
    workers: int | None = None,
) -> MedicalImage:
    """Read a folder of single-slice DICOM files as one volume, laid out like :func:`read_nifti`.

    1. DICOM files are found by content (any name, no extension needed), recursively.
       DICOMDIR files, objects without pixel data and localizers are skipped
       (``metadata["skipped"]`` says which and why).
    2. Files are grouped by SeriesInstanceUID, and an Enhanced multi-frame object into one row
       per stack; with several rows, ``series`` picks one (a row index or description of
       :func:`list_series`). An Enhanced object's row is read by :func:`read_dicom` with its
       ``stack``, through the same steps 3-6 for its frames.
    3. Slices are sorted by ImagePositionPatient projected on the slice normal (the cross product
       of ImageOrientationPatient's row and column directions), never by InstanceNumber or file
       name; the z spacing comes from the positions, not SliceThickness.
    4. Checks, each naming the files and numbers: every file readable and its pixel data decodable
       (strict: the error :func:`read_dicom` raises for that file; lenient: dropped and recorded,
       its position filled like a missing slice); a usable ImageOrientationPatient (two non-zero
       orthogonal vectors: a degenerate one is refused in both modes when no slice has a usable one,
       as no spacing or tilt can be derived from it); the same orientation, pixel spacing and size
       in every slice; no duplicate positions; no missing slices (a step above 1.5 typical steps);
       even steps (within 1 % or 0.01 mm); no gantry tilt (the step leaves the normal by more than
       0.05 degrees). ``strict=True`` raises the matching :class:`~m1vision.errors.SeriesError`;
       ``strict=False`` loads what is consistent and records each irregularity in
       ``metadata["irregularities"]``: odd slices and duplicates are dropped (the first by
       InstanceNumber kept), missing slices are inserted filled with the volume's minimum
       (``metadata["inserted_slices"]``, so positions stay true; a gap larger than the slices
       present keeps the longest gap-free run instead), uneven steps use the mean step, and a tilt
       is carried by the affine as a shear.
    5. Each slice goes through its own modality LUT (RescaleSlope/Intercept or a Modality LUT
       Sequence): float32 in modality units (HU for CT). MONOCHROME1 is inverted per slice as
       :func:`read_dicom` does.
    6. The stack is reoriented like :func:`read_nifti` (closest canonical axes): ``pixels[z]``
       axial, z inferior to superior, rows anterior to posterior, columns right to left; sagittal
       and coronal series too. ``metadata["affine"]`` maps ``(z, row, col, 1)`` to RAS+ mm;
       ``spacing`` is (z, row, col) mm, z being the distance between slice planes.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder (searched recursively).
    series : int or str, optional, keyword-only
        Which series, when the folder holds several: a row index or a SeriesDescription of
        :func:`list_series`.
    strict : bool, keyword-only
        Raise on any irregularity (default) or load what is consistent and record it.
    progress : bool or None, keyword-only
        A tqdm bar; ``None`` (default) shows one from 100 files on.
    workers : int or None, keyword-only
        Threads that read and decode files; ``None``: one per available CPU core.

    Returns
    -------
    MedicalImage
        A volume (``is_volume``), float32 (Z, H, W); ``window`` of the first slice; ``modality``;
        ``metadata`` with ``affine``, ``format`` "dicom-series", ``files``, ``series_orientation``,
        ``original_orientation`` (axis codes of the stored column, row and slice axes),
        ``irregularities`` (empty when regular), ``skipped`` and the safe DICOM facts of
        :func:`read_dicom`; never patient or study identifiers (UIDs included).

    Raises
    ------
    SeriesNotFoundError, SeriesSelectionError
        No image series in the folder; several and no (or no matching) ``series``.
    SeriesGeometryError, DuplicatePositionError, MissingSlicesError, UnevenSpacingError
        The irregularities above.
    GantryTiltError
        The irregularities above (``SeriesGeometryError`` also without ``strict``, for
        slices that lack a position).
    ImageReadError
        ``folder`` is missing or a file; a DICOM file in it cannot be parsed (strict).
    PixelDataError
        A slice's pixel data cannot be decoded or disagree with its declared size (strict):
        the same error and text as :func:`read_dicom` for that file.

    Examples
    --------
    >>> import os, pydicom.data
    >>> from m1vision.io import read_series
    >>> root = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files", "dicomdirtests")
    >>> vol = read_series(os.path.join(root, "98892001"))
    >>> vol.shape, vol.spacing, vol.modality
    ((5, 16, 16), (2.5, 0.488281, 0.488281), 'CT')
    >>> [round(v, 2) for v in vol.metadata["affine"][2]]  # z: inferior -> superior
    [2.5, 0.0, 0.0, -1.24]
    """
    p = _check_folder(folder)
    if not isinstance(strict, bool):
        raise InvalidParameterError(f"strict must be True or False, got {strict!r}.")
    n_workers = _workers(workers)
    # 1. collect. One series expected (series=None): decode while reading, in the reading
    # threads. With series= given, decode only the chosen series' files, after the choice.
    groups, skipped = _scan(
        p, pixels=True, workers=n_workers, progress=progress, decode=series is None
    )
    # 2. group and pick
    groups.sort(key=_key)
    slices = _pick(p, groups, series, skipped)
    if len(slices) == 1 and slices[0].frames > 1:
        from m1vision.io._dicom import read_dicom

        return read_dicom(slices[0].path, stack=slices[0].stack, strict=strict)
    if series is not None:  # the chosen series' files, decoded now: undecodable ones are known
        _decode_all(slices, n_workers)
    # 3-4. readable slices, usable orientations; sort along the normal, check the geometry
    notes: list[dict] = []
    slices = _check_readable(p, slices, skipped, strict, notes)
    slices = _check_orientation(p, slices, strict, notes)
    thick = _first(slices[0].ds.get("SpacingBetweenSlices")) or _first(
        slices[0].ds.get("SliceThickness")
    )
    geo = _check_geometry(p, slices, strict, notes, single_step=thick)
    # 5. decode and rescale into one stack
    stack, inversions = _decode_series(geo, n_workers, progress)
    # 6. reorient into the layout
    pixels, affine, spacing, ras = _layout_volume(stack, geo)
    return _series_image(p, geo, pixels, affine, spacing, ras, notes, inversions, skipped)


def _series_image(p, geo, pixels, affine, spacing, ras, notes, inversions, skipped):
    first = geo.slices[0]
    meta = _dicom_metadata(first.ds)
    for k in ("instance_number", "image_position_patient", "slice_location", "frames"):
        meta.pop(k, None)
    meta.update(_geometry_metadata(geo, affine, ras, notes))
    meta.update(
        {
            "format": "dicom-series",
            "files": len(geo.slices),
            "skipped": [{"file": f, "reason": r} for f, r in skipped],
        }
    )
    slopes = {
        (_first(s.ds.get("RescaleSlope")), _first(s.ds.get("RescaleIntercept"))) for s in geo.slices
    }
    if len(slopes) > 1:
        meta["rescale_per_slice"] = True
        meta.pop("rescale_slope", None)
        meta.pop("rescale_intercept", None)
    window = _window(first.ds)
    if inversions:
        meta["inverted"] = True
        ks = sorted(inversions)
        meta["inversion_constant"] = ks[0] if len(ks) == 1 else ks
        if window is not None:
            window = (ks[0] - window[0], window[1])
    with contextlib.suppress(Exception):
        meta["modality"] = str(first.ds.Modality)
    return MedicalImage(
        pixels=pixels,
        spacing=spacing,
        window=window,
        modality=meta.get("modality"),
        metadata=meta,
        source=str(p),
    )
