"""A whole collection of DICOM files at a glance (internal): :func:`audit` and its report.

Files are found and read by :mod:`._listing` (``_files``, ``_load``), grouped per folder and
SeriesInstanceUID, and each series is checked with the header-only checks of
:func:`~m1vision.io.read_series` (``_series._check_geometry``). Pixels are decoded only to hash
them (duplicates); everything runs on a pool of worker processes.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from m1vision._checks import check_workers
from m1vision.errors import InvalidParameterError, SeriesError, SeriesNotFoundError
from m1vision.io._audit_report import _TILE, AuditReport, AuditRow
from m1vision.io._listing import _check_folder, _files, _infos, _key, _load, _stack_rows
from m1vision.io._series_checks import _check_orientation
from m1vision.io._stack import _check_geometry

__all__ = ["AuditReport", "AuditRow", "audit"]

#: The header elements kept per file for grouping, checks and the report (never identifiers).
_KEEP = (
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "InstanceNumber",
    "EchoNumbers",
    "AcquisitionNumber",
    "TemporalPositionIdentifier",
    "DiffusionBValue",
    "SpacingBetweenSlices",
    "SliceThickness",
    "NumberOfFrames",
)
_UNREADABLE = ("not DICOM", "unreadable DICOM", "pixel data cannot be decoded")
# ---------------------------------------------------------------------------------------------
# the work per file (runs in the workers)
# ---------------------------------------------------------------------------------------------

_DECODABLE: dict[str, bool] = {}
_BLANK = "blank"


def _decodable(uid: str) -> bool:
    """Does this environment decode the transfer syntax ``uid`` (pydicom's decoders asked)?"""
    if uid not in _DECODABLE:
        from pydicom.pixels import get_decoder

        try:
            _DECODABLE[uid] = bool(get_decoder(uid).is_available)
        except (NotImplementedError, ValueError):
            _DECODABLE[uid] = False
    return _DECODABLE[uid]


def _syntax(ds) -> str:
    fm = getattr(ds, "file_meta", None)
    uid = fm.get("TransferSyntaxUID") if fm is not None else None
    return str(uid) if uid else "1.2.840.10008.1.2"  # a preamble-less data set: implicit VR


def pixel_hash(array: np.ndarray) -> str:
    """The duplicate key of decoded pixels: BLAKE2b over shape, dtype and the values."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{array.shape}|{array.dtype.str}|".encode())
    h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def _why(exc: BaseException, path: Path, name: str) -> str:
    """An error's reason without the machine's path of the file (the name relative to root)."""
    reason = getattr(exc, "reason", None) or str(exc)
    return reason.replace(str(path), name)


def _inspect(path: Path, root: Path, hash_pixels: bool):
    """(name, [_Slice rows] or None, skip reason or None, syntax uid, pixel hash or None).

    An Enhanced multi-frame object gives one row per stack, each checked here while its
    functional groups are at hand (``row.checked``).
    """
    import pydicom

    name = path.relative_to(root).as_posix()
    item, reason = _load(path, root, pixels=hash_pixels)
    if item is None:
        return name, None, reason.replace(str(path), name), None, None
    ds = item.ds
    uid = _syntax(ds)
    digest = None
    if isinstance(item.raw, Exception):  # the reader found the pixel data unusable already
        return name, None, f"pixel data cannot be decoded: {_why(item.raw, path, name)}", uid, None
    if hash_pixels and _decodable(uid):
        try:
            array = ds.pixel_array
        except Exception as exc:  # a broken stream: the file is listed with the reason
            return name, None, f"pixel data cannot be decoded: {_why(exc, path, name)}", uid, None
        # A blank image (one value everywhere: air around a phantom, an empty frame) equals
        # every other blank one of its size; it is counted, not reported as a duplicate.
        digest = _BLANK if array.size and array.min() == array.max() else pixel_hash(array)
    rows = _stack_rows(item)
    for row in rows:
        if row.stack_frames:
            row.checked = _enhanced_verdict(path, ds, row.stack)
    small = pydicom.Dataset()  # only what grouping, checks and the report use
    for keyword in _KEEP:
        if keyword in ds:
            small[keyword] = ds[keyword]
    for row in rows:
        row.ds, row.raw, row.frame = small, None, None
    return name, rows, None, uid, digest


def _enhanced_verdict(path: Path, ds, stack) -> tuple:
    """(verdict, irregularities, strict error, pixel spacing, slice spacing, axes) of one
    stack of an Enhanced object, from its functional groups (read_dicom's own checks)."""
    from m1vision.io._enhanced import plan

    def check(strict, notes):
        p = plan(path, ds, stack=stack, strict=strict)
        notes.extend(p.notes)
        return p.geometry

    verdict, named, strict_error, geo = _verdict(check)
    if geo is None:
        return verdict, named, strict_error, None, None, ""
    return verdict, named, strict_error, geo.pixel_spacing, geo.z_spacing, _axes(geo)


def _inspect_chunk(paths: list[Path], root: Path, hash_pixels: bool) -> list:
    return [_inspect(p, root, hash_pixels) for p in paths]


# ---------------------------------------------------------------------------------------------
# the audit
# ---------------------------------------------------------------------------------------------


#: Worker processes pay off from this many files each (a worker starts in milliseconds
#: forked, ~0.3 s spawned; a file takes 1-3 ms); fewer files run on threads.
_FILES_PER_PROCESS = 8


def _executor(n_paths: int, workers: int):
    """A process pool (Python's default start method: fork on Linux, spawn on macOS) or,
    for few files, a thread pool; and its description."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    n = max(1, min(workers, n_paths))
    if n > 1 and n_paths >= _FILES_PER_PROCESS * n:
        pool = ProcessPoolExecutor(max_workers=n)
        return pool, f"ProcessPoolExecutor(max_workers={n})"
    return ThreadPoolExecutor(max_workers=n), f"ThreadPoolExecutor(max_workers={n})"


def _run(paths: list[Path], root: Path, hash_pixels: bool, workers, show: bool):
    from concurrent.futures import as_completed

    from m1vision._progress import progress

    pool, described = _executor(len(paths), workers)
    n = pool._max_workers
    size = max(1, min(64, len(paths) // (8 * n) or 1))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    results: list = [None] * len(chunks)
    with pool, progress(len(paths), show=show, desc="auditing", unit="file") as bar:
        futures = {
            pool.submit(_inspect_chunk, c, root, hash_pixels): i for i, c in enumerate(chunks)
        }
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            bar.update(len(chunks[i]))
    return [r for chunk in results for r in chunk], described


def _geometry(folder: str, slices, strict: bool, notes: list):
    from m1vision.io._dicom import _first

    ds = slices[0].ds
    thick = _first(ds.get("SpacingBetweenSlices")) or _first(ds.get("SliceThickness"))
    slices = _check_orientation(folder, list(slices), strict, notes)
    return _check_geometry(folder, slices, strict, notes, single_step=thick)


def _axes(geo) -> str:
    """Axis codes (e.g. "LPS") of the stored column, row and slice directions of a stack."""
    from m1vision.geometry import axcodes, dicom_affine

    first = geo.slices[0]
    spacing = geo.pixel_spacing or (1.0, 1.0)
    ras = dicom_affine(geo.iop, first.ipp - geo.step * geo.slots[0], spacing, geo.step)
    return "".join(axcodes(ras[:, [2, 1, 0, 3]]))


def _verdict(check) -> tuple:
    """(verdict, irregularities, strict error, geometry or None) from the headers.

    ``check(strict, notes)`` runs the geometry checks (of a series, or of an Enhanced stack).
    """
    notes: list[dict] = []
    try:
        geo = check(False, notes)
    except SeriesError as exc:
        return "not a volume", (exc.problem,), f"{type(exc).__name__}: {exc.problem}", None
    if not notes:
        return "ok", (), "", geo
    named = tuple(
        f"{n['kind']}: {n.get('detail') or ', '.join(n.get('differs_in', []))}" for n in notes
    )
    try:
        check(True, [])
        strict_error = ""
    except SeriesError as exc:
        strict_error = f"{type(exc).__name__}: {exc.problem}"
    return "irregular", named, strict_error, geo


def _tile(path: Path, stack=None) -> np.ndarray | None:
    """The windowed middle slice of a file fitted into a square tile at its physical aspect."""
    import cv2

    from m1vision.io._dicom import read_dicom
    from m1vision.preprocess import to_uint8, window

    try:
        img = read_dicom(path, stack=stack, strict=False)  # a tilted object shows too
    except Exception:
        return None
    px = img.pixels
    if px.ndim == 3:
        px = px[px.shape[0] // 2]
    if px.ndim != 2:
        return None
    if img.window is not None:
        gray = window(px, center=img.window[0], width=img.window[1])
    else:
        gray = to_uint8(px, mode="percentile")
    h, w = gray.shape
    dr, dc = img.spacing[-2:] if img.spacing else (1.0, 1.0)  # of the slice shown
    scale = _TILE / max(h * dr, w * dc)
    size = (max(1, round(w * dc * scale)), max(1, round(h * dr * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    tile = np.zeros((_TILE, _TILE), np.uint8)
    y, x = (_TILE - small.shape[0]) // 2, (_TILE - small.shape[1]) // 2
    tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    return tile


def _id_order(sid: str) -> int:
    return int(sid[1:])


def _duplicate_groups(digests: dict[str, str]) -> list[list[str]]:
    """Files sharing a pixel hash (blank images left out), each group sorted, largest first."""
    by_digest: dict[str, list[str]] = defaultdict(list)
    for name, digest in digests.items():
        if digest != _BLANK:
            by_digest[digest].append(name)
    return sorted((sorted(v) for v in by_digest.values() if len(v) > 1), key=lambda v: (-len(v), v))


def _series_row(sid, folder, g, info, syntaxes, digests, shared, series_of):
    """(AuditRow, geometry or None) of one series' slices ``g``."""
    from pydicom.uid import UID

    geo, axes = None, ""
    pixel_spacing, z = g[0].spacing, None
    checked = getattr(g[0], "checked", None) if len(g) == 1 else None
    if checked is not None:  # an Enhanced stack, checked in the worker
        verdict, named, strict_error, pixel_spacing, z, axes = checked
    elif len(g) == 1 and g[0].frames > 1:
        verdict, named, strict_error = "multi-frame", (), ""
    else:
        verdict, named, strict_error, geo = _verdict(
            lambda strict, notes: _geometry(folder, g, strict, notes)
        )
        if geo is not None:
            pixel_spacing, z, axes = geo.slices[0].spacing, geo.z_spacing, _axes(geo)
    spacing = None
    if pixel_spacing is not None:
        spacing = (
            round(pixel_spacing[0], 6),
            round(pixel_spacing[1], 6),
            None if z is None else round(z, 6),
        )
    uids = sorted({syntaxes[s.name] for s in g})
    dups = [s.name for s in g if s.name in shared]
    others = {series_of[n] for s in dups for n in shared[s]} - {sid}
    row = AuditRow(
        id=sid,
        folder=folder,
        stack=info.stack,
        modality=info.modality,
        files=info.files,
        rows=info.rows,
        columns=info.columns,
        slices=info.slices,
        spacing=spacing,
        orientation=info.orientation,
        axes=axes,
        transfer_syntaxes=tuple(UID(u).name for u in uids),
        decodable=all(_decodable(u) for u in uids),
        verdict=verdict,
        irregularities=named,
        strict_error=strict_error,
        duplicate_images=len(dups),
        duplicate_of=tuple(sorted(others, key=_id_order)),
        blank_images=sum(digests.get(s.name) == _BLANK for s in g),
    )
    return row, geo


def audit(root, *, workers: int | None = None, progress: bool = True) -> AuditReport:
    """Audit a collection of DICOM files: every series, its geometry, duplicates, bad files.

    1. Every file under ``root`` (recursively, any name) is looked at, on a pool of worker
       processes (one per available core: ``m1vision._checks.default_workers``): its header is
       read, and its pixel data decoded only to hash it (BLAKE2b of the decoded array with its
       shape and dtype), then dropped.
    2. Image files are grouped per folder and SeriesInstanceUID (a series copied under
       another folder is its own row, and its images show as duplicates).
    3. Each series gets the header-only checks of :func:`~m1vision.io.read_series` (same
       orientation, spacing and size; duplicate positions; gaps; uneven steps; gantry tilt):
       its ``verdict`` says whether a strict read works, and each irregularity is named.
    4. One middle slice per series is read and windowed for the contact sheet.

    Nothing in the report identifies a patient or study: folders are relative to ``root``,
    series get opaque ids (``"S1"``...), no names, IDs, UIDs, dates or descriptions.

    Parameters
    ----------
    root : str or pathlib.Path
        The folder holding the collection.
    workers : int or None, keyword-only
        Worker processes; ``None``: one per available core (threads for few files).
    progress : bool, keyword-only
        Show a progress bar (a widget in Jupyter).

    Returns
    -------
    AuditReport
        Rows per series, duplicate groups, unreadable and skipped files; ``write(out)`` saves
        ``audit.csv``, ``audit.json`` and the pictures.

    Raises
    ------
    ImageReadError
        ``root`` does not exist or is a file.
    SeriesNotFoundError
        ``root`` holds no DICOM image at all (the files found and why each was skipped are
        in the message).

    Examples
    --------
    >>> import tempfile
    >>> from m1vision.io import audit
    >>> from m1vision.synthetic import write_messy_collection
    >>> gen = write_messy_collection(tempfile.mkdtemp(), files_per_series=4, size=16)
    >>> report = audit(gen.root, progress=False)
    >>> report.verdicts()
    {'ok': 5, 'irregular': 2}
    >>> [r.folder for r in report if r.duplicate_images]
    ['copy/ct_chest', 'ct/chest']
    """
    if not isinstance(progress, bool):
        raise InvalidParameterError(f"progress must be True or False, got {progress!r}.")
    workers = check_workers(workers)
    start = time.perf_counter()
    p = _check_folder(root)
    paths = _files(p)
    results, described = _run(paths, p, True, workers, progress) if paths else ([], "none")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    unreadable, skipped, syntaxes, digests = [], [], {}, {}
    for name, items, reason, uid, digest in results:
        if items is None:
            (unreadable if reason.startswith(_UNREADABLE) else skipped).append((name, reason))
            continue
        for item in items:
            groups[(Path(name).parent.as_posix(), item.uid)].append(item)
        syntaxes[name] = uid
        if digest is not None:
            digests[name] = digest
    if not groups:
        reasons = Counter(r.split(":")[0] for _, r in unreadable + skipped)
        raise SeriesNotFoundError(
            p,
            "no DICOM image found to audit",
            expected="a folder holding DICOM image files (found by content, any name, in any "
            "sub-folder)",
            got="no files at all"
            if not paths
            else ", ".join(f"{n} file(s) {why}" for why, n in sorted(reasons.items())),
            fix="point audit at the folder that holds the DICOM images (an archive export's "
            "top folder); unpack .zip archives first",
            files=[f for f, _ in (unreadable + skipped)],
        )
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], _key(kv[1])))
    ids = [f"S{i + 1}" for i in range(len(ordered))]
    series_of = {s.name: sid for sid, (_, g) in zip(ids, ordered, strict=True) for s in g}
    dup_groups = _duplicate_groups(digests)
    shared = {name: group for group in dup_groups for name in group}
    rows, tiles = [], {}
    infos = _infos([g for _, g in ordered])
    for sid, ((folder, _), g), info in zip(ids, ordered, infos, strict=True):
        row, geo = _series_row(sid, folder, g, info, syntaxes, digests, shared, series_of)
        rows.append(row)
        middle = geo.slices[len(geo.slices) // 2] if geo is not None else g[len(g) // 2]
        tile = _tile(middle.path, middle.stack) if row.decodable else None
        if tile is not None:
            tiles[sid] = tile
    duplicates = tuple(
        {"files": group, "series": sorted({series_of[n] for n in group}, key=_id_order)}
        for group in dup_groups
    )
    return AuditReport(
        root_name=p.resolve().name,
        rows=tuple(rows),
        duplicates=duplicates,
        unreadable=tuple(unreadable),
        skipped=tuple(skipped),
        files=len(paths),
        not_hashed=len({s.name for g in groups.values() for s in g} - set(digests)),
        seconds=time.perf_counter() - start,
        executor=described,
        tiles=tiles,
    )
