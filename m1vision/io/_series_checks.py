"""Checks a DICOM series passes before its geometry is worked out (internal): every file
readable and decodable, every ImageOrientationPatient usable. Strict: the file's own error;
lenient: dropped and recorded in ``metadata["irregularities"]``, never silently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from m1vision.errors import ImageReadError, SeriesGeometryError
from m1vision.geometry import orientation_problem
from m1vision.io._pixels import _decode_error


def _check_orientation(folder, slices, strict, notes):
    """Refuse (strict, or when no slice is left) or drop slices whose orientation is degenerate.

    A zero-length or non-orthogonal ImageOrientationPatient places no plane: no slice normal,
    so no order, spacing or tilt can be derived from it, and none is invented.
    """
    bad = [(s, p) for s in slices if s.iop is not None and (p := orientation_problem(s.iop))]
    if not bad:
        return slices
    first, why = bad[0]
    shown = ", ".join(f"{x:g}" for x in first.iop)
    if strict or len(bad) == len(slices):
        lenient = (
            "pass strict=False to read the slices whose orientation is whole"
            if len(bad) < len(slices)
            else "no slice has a usable orientation, so no volume can be placed"
        )
        raise SeriesGeometryError(
            folder,
            f"{len(bad)} of {len(slices)} slice(s) have a degenerate ImageOrientationPatient "
            f"({why})",
            expected="two orthogonal unit vectors (row and column direction cosines)",
            got=f"[{shown}] in {first.name}",
            fix=f"the header is damaged: export the series again from its source; {lenient}",
            files=[b.name for b, _ in bad],
        )
    notes.append(
        {
            "kind": "degenerate orientation",
            "dropped_files": [b.name for b, _ in bad],
            "detail": f"{why} in {first.name} ([{shown}])",
        }
    )
    return [s for s in slices if not any(s is b for b, _ in bad)]


def _check_readable(folder, slices, skipped, strict, notes):
    """Refuse (strict) or drop and record DICOM files that cannot be parsed or decoded.

    ``strict``: the first one raises the error :func:`read_dicom` raises for that file.
    """
    unreadable = [(f, r) for f, r in skipped if r.startswith("unreadable DICOM")]
    undecodable = [s for s in slices if isinstance(s.raw, Exception)]
    if strict and undecodable:
        raise undecodable[0].raw
    if strict and unreadable:
        name, reason = unreadable[0]
        raise ImageReadError(
            Path(folder) / name,
            f"{reason.removeprefix('unreadable DICOM: ')} It lies in the series folder, so "
            "the volume would miss a slice: remove it if it belongs to no series, or pass "
            "strict=False to read the series without it (recorded in "
            "metadata['irregularities']).",
        )
    if unreadable:
        notes.append(
            {
                "kind": "unreadable files",
                "dropped_files": [f for f, _ in unreadable],
                "detail": "; ".join(f"{f}: {r}" for f, r in unreadable[:5]),
            }
        )
    if undecodable:
        notes.append(
            {
                "kind": "undecodable slices",
                "dropped_files": [s.name for s in undecodable],
                "detail": "; ".join(f"{s.name}: {s.raw.reason}" for s in undecodable[:3]),
            }
        )
        slices = [s for s in slices if not isinstance(s.raw, Exception)]
        if not slices:
            raise undecodable[0].raw
    return slices


def _decode_all(slices, workers: int) -> None:
    """Decode the slices not decoded while reading (in threads); a failure is kept as the
    slice's ``raw``, the PixelDataError read_dicom raises for that file."""

    def one(s) -> None:
        if s.raw is not None or s.frames > 1:
            return
        try:
            s.raw = s.ds.pixel_array
        except Exception as exc:
            s.raw = _decode_error(s.path, s.ds, exc)
        if "PixelData" in s.ds:
            del s.ds.PixelData

    if workers > 1 and len(slices) > 8:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, slices))
    else:
        for s in slices:
            one(s)
