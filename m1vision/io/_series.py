"""DICOM series: a folder of single-slice files read as one (Z, H, W) volume (internal).

Files are found by content and grouped by SeriesInstanceUID (:mod:`._listing`), sorted by
ImagePositionPatient projected on the slice normal, checked (orientation, pixel spacing, size,
duplicates, gaps, uneven steps, gantry tilt) and laid out exactly as
:func:`~m1vision.io.read_nifti` lays out a NIfTI volume.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from m1vision.errors import (
    DuplicatePositionError,
    GantryTiltError,
    ImageReadError,
    InvalidParameterError,
    MissingSlicesError,
    SeriesGeometryError,
    SeriesNotFoundError,
    SeriesSelectionError,
    UnevenSpacingError,
)
from m1vision.geometry import (
    axcodes,
    dicom_affine,
    plane_name,
    slice_normal,
    to_layout,
)
from m1vision.io._core import MedicalImage
from m1vision.io._dicom import _dicom_metadata, _first, _monochrome1_constant
from m1vision.io._listing import (
    SeriesListing,
    _check_folder,
    _infos,
    _key,
    _progress,
    _scan,
    _Slice,
    _workers,
)
from m1vision.io._pixels import _decode_error
from m1vision.io._series_checks import _check_orientation, _check_readable, _decode_all

__all__ = ["read_series"]


#: Relative tolerance on the steps between slices (and absolute floor, mm).
_STEP_RTOL, _STEP_ATOL = 0.01, 0.01
#: Orientation cosines / pixel spacings that differ by less than this are the same.
_COS_TOL, _SPACING_RTOL = 1e-4, 1e-4
#: A stack whose step leaves the slice normal by more than this (degrees) is tilted.
_TILT_TOL_DEG = 0.05
#: Progress bars appear from this many files on (progress=None).
_LAYOUT = "z: inferior->superior, rows: anterior->posterior, cols: right->left"


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
    if series is None:
        if len(groups) == 1:
            return groups[0]
        raise SeriesSelectionError(
            folder,
            f"the folder holds {len(groups)} series",
            expected="one series, or series= naming one",
            got=f"{len(groups)} series:\n{table}\n",
            fix="pass series=<row index> or series=<description> from the table (list_series "
            "shows it)",
        )
    if isinstance(series, bool) or not isinstance(series, (int, str)):
        raise InvalidParameterError(
            f"series must be a row index (int) or a description (str) from list_series, got "
            f"{type(series).__name__}."
        )
    if isinstance(series, int):
        if not 0 <= series < len(groups):
            raise SeriesSelectionError(
                folder,
                f"series={series} is out of range",
                expected=f"a row index 0..{len(groups) - 1}",
                got=f"{series}; the series are:\n{table}\n",
                fix="pass one of the row indices listed",
            )
        return groups[series]
    hits = [g for g, i in zip(groups, infos, strict=True) if i.description == series.strip()]
    if not hits:
        hits = [
            g
            for g, i in zip(groups, infos, strict=True)
            if i.description.lower() == series.strip().lower()
        ]
    if len(hits) != 1:
        raise SeriesSelectionError(
            folder,
            f"series={series!r} matches {len(hits)} series",
            expected="a description that names exactly one series",
            got=f"{len(hits)} matches among:\n{table}\n",
            fix="pass the row index instead (series=<int>)",
        )
    return hits[0]


def _geometry_key(s: _Slice):
    iop = None if s.iop is None else tuple(np.round(s.iop / _COS_TOL).astype(np.int64))
    sp = None if s.spacing is None else tuple(round(v, 4) for v in s.spacing)
    return (iop, sp, s.size)


def _describe_key(key) -> str:
    iop, sp, size = key
    iop_s = "none" if iop is None else "[" + ", ".join(f"{v * _COS_TOL:.4g}" for v in iop) + "]"
    return f"orientation {iop_s}, pixel spacing {sp}, size {size[0]}x{size[1]}"


def _check_consistent(folder, slices, strict, notes):
    keys = [_geometry_key(s) for s in slices]
    counts = Counter(keys)
    if len(counts) > 1:
        main = counts.most_common(1)[0][0]
        odd = [s for s, k in zip(slices, keys, strict=True) if k != main]
        kinds = []
        for k in counts:
            if k == main:
                continue
            for i, what in enumerate(("orientation", "pixel spacing", "size")):
                if k[i] != main[i] and what not in kinds:
                    kinds.append(what)
        got = "; ".join(f"{n} file(s) with {_describe_key(k)}" for k, n in counts.most_common())
        if strict:
            raise SeriesGeometryError(
                folder,
                f"the slices differ in {' and '.join(kinds)}",
                expected=f"every slice with the {_describe_key(main)}",
                got=got,
                fix="these files are not one volume: remove the odd ones, or pass strict=False "
                "to load the largest consistent set (the others are listed in metadata)",
                files=[s.name for s in odd],
            )
        notes.append(
            {
                "kind": "inconsistent geometry",
                "differs_in": kinds,
                "dropped_files": [s.name for s in odd],
                "kept": _describe_key(main),
            }
        )
        slices = [s for s, k in zip(slices, keys, strict=True) if k == main]
    missing = [s.name for s in slices if s.iop is None or s.ipp is None]
    if missing:
        raise SeriesGeometryError(
            folder,
            "slices without ImagePositionPatient / ImageOrientationPatient",
            expected="both elements in every slice, to place and sort the slices",
            got=f"{len(missing)} of {len(slices)} file(s) without them",
            fix="such images (secondary captures, projections) are no volume; read the files "
            "one by one with read_dicom",
            files=missing,
        )
    return slices


def _dedupe(folder, slices, step, strict, notes):
    """Drop (strict=False) or refuse (strict=True) slices sharing a position."""
    tol = max(1e-3, 0.01 * step) if step > 0 else 1e-3
    groups: list[list[_Slice]] = [[slices[0]]]
    for s in slices[1:]:
        if abs(s.position - groups[-1][0].position) <= tol:
            groups[-1].append(s)
        else:
            groups.append([s])
    dups = [g for g in groups if len(g) > 1]
    if not dups:
        return slices
    first = dups[0]
    tags = []
    for tag in (
        "EchoNumbers",
        "AcquisitionNumber",
        "TemporalPositionIdentifier",
        "DiffusionBValue",
    ):
        values = {str(s.ds.get(tag)) for s in first if s.ds.get(tag) is not None}
        if len(values) > 1:
            tags.append(f"{tag} {sorted(values)}")
    why = f" (they differ in {', '.join(tags)})" if tags else ""
    if strict:
        raise DuplicatePositionError(
            folder,
            f"{sum(len(g) for g in dups)} slices share {len(dups)} position(s){why}",
            expected="one slice per position",
            got=f"{len(first)} slices at {first[0].position:.3f} mm along the normal, first",
            fix="this is several volumes in one series (echoes, b-values, acquisitions): move "
            "each into its own folder, or pass strict=False to keep the first slice (by "
            "InstanceNumber) at each position",
            files=[s.name for g in dups for s in g],
        )

    def order(s):
        n = _first(s.ds.get("InstanceNumber"))
        return (n if n is not None else math.inf, s.name)

    kept = [min(g, key=order) for g in groups]
    notes.append(
        {
            "kind": "duplicate positions",
            "dropped_files": sorted({s.name for g in dups for s in g} - {s.name for s in kept}),
            "detail": f"kept the first slice by InstanceNumber at each of {len(dups)} positions"
            + why,
        }
    )
    return kept


def _typical_step(positions: np.ndarray) -> float:
    steps = np.diff(positions)
    steps = steps[steps > 1e-3]
    return float(np.median(steps)) if steps.size else 0.0


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
    2. Files are grouped by SeriesInstanceUID; with several series, ``series`` picks one (a row
       index or description of :func:`list_series`).
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
    from pydicom.pixels import apply_modality_lut

    p = _check_folder(folder)
    if not isinstance(strict, bool):
        raise InvalidParameterError(f"strict must be True or False, got {strict!r}.")
    n_workers = _workers(workers)
    # One series expected (series=None): decode while reading, in the reading threads. With
    # series= given, decode only the chosen series' files, after the choice.
    groups, skipped = _scan(
        p, pixels=True, workers=n_workers, progress=progress, decode=series is None
    )
    groups.sort(key=_key)
    slices = _pick(p, groups, series, skipped)
    if len(slices) == 1 and slices[0].frames > 1:
        from m1vision.io._dicom import read_dicom

        return read_dicom(slices[0].path)
    if series is not None:  # the chosen series' files, decoded now: undecodable ones are known
        _decode_all(slices, n_workers)
    notes: list[dict] = []
    slices = _check_readable(p, slices, skipped, strict, notes)
    slices = _check_orientation(p, slices, strict, notes)
    slices = _check_consistent(p, slices, strict, notes)
    iop = slices[0].iop
    normal = slice_normal(iop)
    for s in slices:
        s.position = float(s.ipp @ normal)
    slices.sort(key=lambda s: (s.position, s.name))
    if len(slices) > 1:
        slices = _dedupe(
            p, slices, _typical_step(np.array([s.position for s in slices])), strict, notes
        )
    positions = np.array([s.position for s in slices])
    step = _typical_step(positions)
    slots = list(range(len(slices)))  # output slot of each slice
    n_out = len(slices)
    if len(slices) > 1:
        steps = np.diff(positions)
        tol = max(_STEP_ATOL, _STEP_RTOL * step)
        ratio = steps / step
        gap_at = [
            i
            for i, r in enumerate(ratio)
            if r > 1.5 and abs(steps[i] - round(r) * step) <= tol * round(r)
        ]
        if gap_at:
            miss = [round(ratio[i]) - 1 for i in gap_at]
            pairs = [
                f"{slices[i].name} at {positions[i]:.2f} mm -> {slices[i + 1].name} at "
                f"{positions[i + 1]:.2f} mm ({m} missing)"
                for i, m in zip(gap_at, miss, strict=True)
            ]
            if strict:
                raise MissingSlicesError(
                    p,
                    f"{sum(miss)} slice(s) missing in {len(gap_at)} gap(s)",
                    expected=f"a step of {step:.4g} mm between neighbouring slices",
                    got="; ".join(pairs[:5]),
                    fix="find the missing files (an incomplete export or copy), or pass "
                    "strict=False to insert empty slices (filled with the minimum) where they are "
                    "missing",
                    files=[slices[i].name for i in gap_at],
                )
            if sum(miss) <= len(slices):
                shift = np.zeros(len(slices), dtype=np.int64)
                for i, m in zip(gap_at, miss, strict=True):
                    shift[i + 1 :] += m
                slots = [i + int(shift[i]) for i in range(len(slices))]
                n_out = len(slices) + sum(miss)
                inserted = sorted(set(range(n_out)) - set(slots))
                notes.append(
                    {
                        "kind": "missing slices",
                        "detail": "; ".join(pairs),
                        "inserted_slices": inserted,
                    }
                )
            else:  # a huge gap: keep the longest gap-free run
                bounds = [-1, *gap_at, len(slices) - 1]
                runs = [(bounds[k] + 1, bounds[k + 1]) for k in range(len(bounds) - 1)]
                a, b = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
                dropped = [s.name for i, s in enumerate(slices) if not a <= i <= b]
                notes.append(
                    {
                        "kind": "missing slices",
                        "detail": "; ".join(pairs)
                        + "; the gaps exceed the slices present: kept the longest gap-free run",
                        "dropped_files": dropped,
                    }
                )
                slices = slices[a : b + 1]
                positions = positions[a : b + 1]
                slots = list(range(len(slices)))
                n_out = len(slices)
            steps = np.diff(positions)
            gaps = set(gap_at) if n_out != len(slices) else set()
            steps = np.array([s for i, s in enumerate(steps) if i not in gaps])
        if steps.size and np.abs(steps - step).max() > tol:
            worst = int(np.argmax(np.abs(steps - step)))
            detail = (
                f"steps from {steps.min():.4g} to {steps.max():.4g} mm (typical {step:.4g} mm, "
                f"tolerance {tol:.3g} mm)"
            )
            if strict:
                raise UnevenSpacingError(
                    p,
                    "the slices are unevenly spaced",
                    expected=f"every step {step:.4g} mm within {tol:.3g} mm",
                    got=detail,
                    fix="resample the series to even spacing with another tool, or pass "
                    "strict=False to load it with the mean step (positions recorded in "
                    "metadata['slice_positions'])",
                    files=[slices[worst].name, slices[worst + 1].name],
                )
            notes.append(
                {
                    "kind": "uneven spacing",
                    "detail": detail + "; the affine uses the mean step",
                }
            )
    # the slice step vector: first to last position over the output slots
    if n_out > 1:
        v = (slices[-1].ipp - slices[0].ipp) / (slots[-1] - slots[0])
    else:
        thick = _first(slices[0].ds.get("SpacingBetweenSlices")) or _first(
            slices[0].ds.get("SliceThickness")
        )
        v = normal * (thick or 1.0)
    z_spacing = round(float(abs(v @ normal)), 6)
    tilt = math.degrees(math.acos(min(1.0, z_spacing / float(np.linalg.norm(v)))))
    if n_out > 1 and tilt > _TILT_TOL_DEG:
        if strict:
            raise GantryTiltError(
                p,
                f"the stack is tilted by {tilt:.2f} degrees (gantry tilt)",
                expected="each slice displaced along its normal",
                got=f"a step of {np.linalg.norm(v):.4g} mm at {tilt:.2f} degrees to the normal",
                fix="pass strict=False to load it with the tilt as a shear in the affine "
                "(metadata['gantry_tilt_deg']), or resample it to an untilted grid",
                files=[slices[0].name, slices[-1].name],
            )
        notes.append({"kind": "gantry tilt", "detail": f"{tilt:.3f} degrees, kept as a shear"})

    slopes = {
        (_first(s.ds.get("RescaleSlope")), _first(s.ds.get("RescaleIntercept"))) for s in slices
    }
    # decode, per-slice modality LUT, MONOCHROME1 like read_dicom
    rows, cols = slices[0].size
    stack = np.empty((n_out, rows, cols), dtype=np.float32)
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
        values = None
        if "ModalityLUTSequence" in ds:
            values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
        else:
            slope = _first(ds.get("RescaleSlope"))
            inter = _first(ds.get("RescaleIntercept"))
            slope = 1.0 if slope is None else slope
            inter = inter or 0.0
            if (
                raw.dtype.kind in "iu"
                and raw.dtype.itemsize <= 2
                and slope.is_integer()
                and inter.is_integer()
                and abs(slope) * 65536 + abs(inter) < 2**24
            ):  # exact in float32 (every value an integer below 2**24): no float64 pass
                dst = stack[slots[i]]
                np.multiply(raw, np.float32(slope), out=dst, dtype=np.float32)
                dst += np.float32(inter)
                values = None
            else:
                values = raw * np.float64(slope) + np.float64(inter)
        if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
            k = _monochrome1_constant(ds, apply_modality_lut)
            inversions.add(k)
            if values is None:
                values = stack[slots[i]].astype(np.float64)
            values = np.float64(k) - np.asarray(values, dtype=np.float64)
        if values is not None:
            stack[slots[i]] = values
        s.raw = None  # the volume holds the values now

    items = range(len(slices))
    if n_workers > 1 and len(slices) > 8:
        with ThreadPoolExecutor(n_workers) as pool:
            for _ in _progress(pool.map(decode, items), len(slices), progress, "decoding"):
                pass
    else:
        for i in _progress(items, len(slices), progress, "decoding"):
            decode(i)
    if n_out != len(slices):
        fill = float(min(stack[k].min() for k in slots))
        for k in sorted(set(range(n_out)) - set(slots)):
            stack[k] = fill

    # affine of the stored stack: (k, r, c) -> LPS, then RAS
    first = slices[0]
    d_row, d_col = first.spacing if first.spacing else (1.0, 1.0)
    ras = dicom_affine(iop, first.ipp - v * slots[0], (d_row, d_col), v)
    pixels, affine, perm = to_layout(stack, ras)
    stored_spacing = (z_spacing, d_row, d_col)
    spacing = tuple(float(stored_spacing[i]) for i in perm)

    meta = _dicom_metadata(first.ds)
    for k in ("instance_number", "image_position_patient", "slice_location", "frames"):
        meta.pop(k, None)
    meta.update(
        {
            "format": "dicom-series",
            "layout": "volume",
            "orientation": _LAYOUT,
            "series_orientation": plane_name(iop),
            "original_orientation": "".join(axcodes(ras[:, [2, 1, 0, 3]])),
            "affine": [[float(x) for x in row] for row in affine],
            "files": len(slices),
            "sorted_by": "ImagePositionPatient along the slice normal",
            "spacing_source_z": "ImagePositionPatient",
            "irregularities": notes,
            "skipped": [{"file": f, "reason": r} for f, r in skipped],
        }
    )
    if first.spacing is None:
        meta["pixel_spacing_missing"] = True
    if len(slopes) > 1:
        meta["rescale_per_slice"] = True
        meta.pop("rescale_slope", None)
        meta.pop("rescale_intercept", None)
    window = None
    center, width = _first(first.ds.get("WindowCenter")), _first(first.ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        window = (center, width)
    if inversions:
        meta["inverted"] = True
        ks = sorted(inversions)
        meta["inversion_constant"] = ks[0] if len(ks) == 1 else ks
        if window is not None:
            window = (ks[0] - window[0], window[1])
    if tilt > _TILT_TOL_DEG:
        meta["gantry_tilt_deg"] = round(tilt, 4)
    if any(n["kind"] in ("uneven spacing", "missing slices") for n in notes):
        meta["slice_positions"] = [float(x) for x in positions]
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
