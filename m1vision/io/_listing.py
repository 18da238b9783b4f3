"""DICOM series found in a folder (internal): scanning by content, grouping, listing.

Files are found by content, read in threads and grouped by SeriesInstanceUID;
:func:`list_series` lists the groups. Reading one as a volume is :mod:`._series`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from m1vision._checks import check_path, check_workers
from m1vision._progress import track
from m1vision.errors import (
    ImageReadError,
)
from m1vision.geometry import orientation_problem, plane_name
from m1vision.io._dicom import _first, _floats
from m1vision.io._pixels import _check_size, _cut_image_reason, _decode_error, _parse_reason
from m1vision.io._sniff import DICOM_HEAD, dicom_kind

__all__ = ["SeriesInfo", "SeriesListing", "list_series"]

_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found by :func:`list_series` (no patient or study identifiers).

    Attributes
    ----------
    index : int
        Its row number: pass it as ``read_series(folder, series=index)``.
    modality, description : str
        DICOM Modality and SeriesDescription ("" when absent).
    number : int or None
        SeriesNumber.
    files : int
        Image files of the series.
    rows, columns : int
        Slice size (of the first file).
    slices : int
        Distinct slice positions (fewer than ``files`` for multi-echo or repeated slices).
    orientation : str
        "axial", "coronal", "sagittal", "oblique axial"... from ImageOrientationPatient (of
        the functional groups for an Enhanced multi-frame object), "multi-frame" for another
        multi-frame object, "unknown" without orientation.
    folder : str
        The sub-folder holding its first file, relative to the folder listed ("." for itself).
    stack : str
        For one stack of an Enhanced multi-frame object holding several (echoes, time points,
        b-values, StackIDs), what tells it apart, e.g. "echo time 20 ms"; "" otherwise. Each
        such stack is a row of its own.
    """

    index: int
    modality: str
    description: str
    number: int | None
    files: int
    rows: int
    columns: int
    slices: int
    orientation: str
    folder: str
    stack: str = ""

    def to_dict(self) -> dict:
        """The row as a JSON-safe dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class SeriesListing:
    """What :func:`list_series` returns: the series (iterate, index, ``len``) and what was skipped.

    ``str(listing)`` is a table; ``skipped`` holds ``(file, reason)`` pairs for DICOMDIR files,
    objects without pixel data, localizers and files that are not DICOM.
    """

    folder: str
    series: tuple[SeriesInfo, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())

    def __len__(self) -> int:
        return len(self.series)

    def __iter__(self):
        return iter(self.series)

    def __getitem__(self, i) -> SeriesInfo:
        return self.series[i]

    def to_dict(self) -> dict:
        """JSON-safe: ``{"series": [...], "skipped": [{"file", "reason"}...]}``."""
        return {
            "series": [s.to_dict() for s in self.series],
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
        }

    def __str__(self) -> str:
        head = ("#", "modality", "description", "files", "rows x cols", "slices", "orientation")
        stacks = any(s.stack for s in self.series)
        if stacks:
            head = (*head, "stack")
        rows = [head] + [
            (
                str(s.index),
                s.modality,
                s.description,
                str(s.files),
                f"{s.rows} x {s.columns}",
                str(s.slices),
                s.orientation,
            )
            + ((s.stack,) if stacks else ())
            for s in self.series
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        if self.skipped:
            reasons = Counter(r.split(":")[0] for _, r in self.skipped)
            lines.append(
                "skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
            )
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows the table
        p.text(str(self))


# ---------------------------------------------------------------------------------------------
# scanning
# ---------------------------------------------------------------------------------------------


@dataclass
class _Slice:
    path: Path
    name: str  # relative to the folder
    ds: object
    uid: str
    iop: np.ndarray | None
    ipp: np.ndarray | None
    spacing: tuple[float, float] | None
    size: tuple[int, int]
    frames: int
    position: float = 0.0
    raw: object = None  # the decoded stored values (read_series), or the decoding error
    stack: int | None = None  # the stack of an Enhanced multi-frame object this row reads
    stack_label: str = ""
    stack_frames: int = 0
    frame: object = None  # the functional-group facts of one Enhanced frame


def _check_folder(folder) -> Path:
    check_path(folder, name="folder")
    p = Path(folder)
    if not p.exists():
        raise ImageReadError(p, "no such folder; check the path and the working folder.")
    if not p.is_dir():
        raise ImageReadError(
            p, "it is a file, not a folder of DICOM slices; read one file with read_any."
        )
    return p


def _files(folder: Path) -> list[Path]:
    out = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root) / n for n in sorted(names) if not n.startswith("."))
    return out


def _vector(value, n: int) -> np.ndarray | None:
    v = _floats(value)
    if v is None or len(v) != n or not all(math.isfinite(x) for x in v):
        return None
    return np.asarray(v, dtype=np.float64)


def _load(path: Path, folder: Path, pixels: bool, decode: bool = False):
    """(_Slice or None, skip reason or None) for one file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    name = path.relative_to(folder).as_posix()
    try:
        with open(path, "rb") as fh:  # one open: sniff the head, then parse from the start
            kind = dicom_kind(fh.read(DICOM_HEAD))
            if kind is False:
                return None, "not DICOM"
            fh.seek(0)
            ds = pydicom.dcmread(fh, force=kind is None, stop_before_pixels=not pixels)
    except (InvalidDicomError, EOFError, ValueError, struct.error, OSError) as exc:
        return None, f"unreadable DICOM: {_parse_reason(path, exc)}"
    fm = getattr(ds, "file_meta", None)
    sop = str(fm.get("MediaStorageSOPClassUID", "")) if fm is not None else ""
    if sop == _MEDIA_DIRECTORY or "DirectoryRecordSequence" in ds:
        return None, "DICOMDIR: an index of files, not an image"
    has_pixels = (
        any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
        if pixels
        else ("Rows" in ds and "Columns" in ds)
    )
    if not has_pixels:
        cut = _cut_image_reason(ds)
        if cut:
            return None, f"unreadable DICOM: {cut}"
        what = ds.get("SOPClassUID")
        label = what.name if what is not None else "data set"
        return None, f"no pixel data: a {label} object holds no image"
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if "LOCALIZER" in image_type:
        return None, "localizer: a scout image, not part of a volume"
    iop = _vector(ds.get("ImageOrientationPatient"), 6)
    if iop is not None and orientation_problem(iop) is None:  # degenerate ones stay as read
        iop = np.concatenate([iop[:3] / np.linalg.norm(iop[:3]), iop[3:] / np.linalg.norm(iop[3:])])
    sp = _floats(ds.get("PixelSpacing"))
    raw = None
    frames = int(_first(ds.get("NumberOfFrames")) or 1)
    if pixels:  # the declared size against the bytes, before anything is allocated
        try:
            _check_size(path, ds)
        except ImageReadError as exc:  # reported only if this slice is used
            raw = exc
    if decode and frames == 1 and raw is None:  # decode here, in the reading thread
        try:
            raw = ds.pixel_array
        except Exception as exc:  # reported only if this slice is used
            raw = _decode_error(path, ds, exc)
    if decode and frames == 1 and "PixelData" in ds:  # drop the bytes
        del ds.PixelData
    return (
        _Slice(
            path=path,
            name=name,
            ds=ds,
            uid=str(ds.get("SeriesInstanceUID", "")) or f"(no SeriesInstanceUID) {path.parent}",
            iop=iop,
            ipp=_vector(ds.get("ImagePositionPatient"), 3),
            spacing=(sp[0], sp[1]) if sp and len(sp) >= 2 else None,
            size=(int(ds.get("Rows", 0)), int(ds.get("Columns", 0))),
            frames=frames,
            raw=raw,
        ),
        None,
    )


def _progress(items, total: int, show: bool | None, desc: str):
    return track(items, total, show=show, desc=desc, unit="file")


def _scan(folder: Path, *, pixels: bool, workers: int, progress, decode: bool = False):
    """All image slices of the folder grouped by series, plus (file, reason) skipped."""
    paths = _files(folder)
    if workers > 1 and len(paths) > 8:
        with ThreadPoolExecutor(workers) as pool:
            results = list(
                _progress(
                    pool.map(lambda p: _load(p, folder, pixels, decode), paths),
                    len(paths),
                    progress,
                    "reading DICOM",
                )
            )
    else:
        results = [
            _load(p, folder, pixels, decode)
            for p in _progress(paths, len(paths), progress, "reading DICOM")
        ]
    groups: dict[str, list[_Slice]] = {}
    skipped = []
    for path, (item, reason) in zip(paths, results, strict=True):
        if item is None:
            skipped.append((path.relative_to(folder).as_posix(), reason))
        else:
            for row in _stack_rows(item):
                groups.setdefault(row.uid, []).append(row)
    return list(groups.values()), skipped


def _stack_rows(item: _Slice) -> list[_Slice]:
    """An Enhanced multi-frame object as one row per stack; any other item as itself."""
    from m1vision.errors import SeriesError
    from m1vision.io._enhanced import is_enhanced, split_stacks

    photometric = str(item.ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if item.frames < 2 or not photometric.startswith("MONOCHROME") or not is_enhanced(item.ds):
        return [item]
    try:
        stacks = split_stacks(item.path, item.ds)
    except (SeriesError, TypeError, ValueError):  # one row; reading it says what is wrong
        return [item]
    rows = []
    for i, stack in enumerate(stacks):
        rows.append(
            dataclasses.replace(
                item,
                uid=f"{item.uid} stack {i}" if len(stacks) > 1 else item.uid,
                iop=stack.frames[0].iop,
                stack=i if len(stacks) > 1 else None,
                stack_label=stack.label,
                stack_frames=len(stack.frames),
            )
        )
    return rows


def _key(group: list[_Slice]):
    ds = group[0].ds
    number = _first(ds.get("SeriesNumber"))
    return (
        number if number is not None else math.inf,
        str(ds.get("SeriesDescription", "")),
        min(s.name for s in group),
    )


def _infos(groups) -> list[SeriesInfo]:
    out = []
    for i, g in enumerate(groups):
        ds = g[0].ds
        number = _first(ds.get("SeriesNumber"))
        positions = {tuple(np.round(s.ipp, 3)) for s in g if s.ipp is not None}
        multi = len(g) == 1 and g[0].frames > 1
        enhanced = multi and g[0].stack_frames > 0
        if enhanced:
            orientation = plane_name(g[0].iop)
        else:
            orientation = "multi-frame" if multi else plane_name(g[0].iop)
        out.append(
            SeriesInfo(
                index=i,
                modality=str(ds.get("Modality", "")),
                description=str(ds.get("SeriesDescription", "")).strip(),
                number=None if number is None else int(number),
                files=len(g),
                rows=g[0].size[0],
                columns=g[0].size[1],
                slices=(g[0].stack_frames or g[0].frames) if multi else (len(positions) or len(g)),
                orientation=orientation,
                folder=Path(g[0].name).parent.as_posix(),
                stack=g[0].stack_label,
            )
        )
    return out


def _workers(workers) -> int:
    return check_workers(workers)


def list_series(folder, *, progress: bool | None = None, workers: int | None = None):
    """List the DICOM series in ``folder`` (searched recursively), one row per series.

    Files are found by content (the ``DICM`` marker, or a preamble-less data set), whatever
    their names; only headers are read. DICOMDIR files, objects without pixel data (SR,
    RTSTRUCT, RT plans...) and localizers (ImageType LOCALIZER) are skipped and listed in
    ``skipped`` with the reason. No patient or study identifiers appear.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder to search.
    progress : bool or None, keyword-only
        Show a tqdm bar; ``None`` (default) shows one from 100 files on.
    workers : int or None, keyword-only
        Threads reading headers; ``None``: one per available CPU core.

    Returns
    -------
    SeriesListing
        Iterable of :class:`SeriesInfo` (index, modality, description, number, files, rows,
        columns, slices, orientation, folder), sorted by SeriesNumber then description;
        ``str()`` gives a table; ``.skipped`` the files left out and why.

    Raises
    ------
    ImageReadError
        ``folder`` does not exist or is a file.

    Examples
    --------
    >>> import os, pydicom.data
    >>> from m1vision.io import list_series
    >>> root = os.path.join(os.path.dirname(pydicom.data.__file__), "test_files", "dicomdirtests")
    >>> listing = list_series(os.path.join(root, "98892001"))
    >>> [(s.modality, s.description, s.slices, s.orientation) for s in listing]
    [('CT', 'SmartScore - Gated 0.5 sec', 5, 'axial')]
    >>> listing.skipped[0][1]
    'localizer: a scout image, not part of a volume'
    """
    p = _check_folder(folder)
    groups, skipped = _scan(p, pixels=False, workers=_workers(workers), progress=progress)
    groups.sort(key=_key)
    return SeriesListing(folder=str(p), series=tuple(_infos(groups)), skipped=tuple(skipped))
