"""A whole collection of DICOM files at a glance (internal): :func:`audit` and its report.

Files are found and read by :mod:`._listing` (``_files``, ``_load``), grouped per folder and
SeriesInstanceUID, and each series is checked with the header-only checks of
:func:`~m1vision.io.read_series` (``_series._check_geometry``). Pixels are decoded only to hash
them (duplicates); everything runs on a pool of worker processes.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from m1vision.errors import InvalidParameterError, SeriesError, SeriesNotFoundError
from m1vision.io._listing import _check_folder, _files, _infos, _key, _load
from m1vision.io._series import _check_geometry

__all__ = ["AuditReport", "AuditRow", "audit"]

SCHEMA, VERSION = "m1vision.audit", 1

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
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_UNREADABLE = ("not DICOM", "unreadable DICOM", "pixel data cannot be decoded")
_TILE = 160  # contact sheet tile side, pixels
_CSV_COLUMNS = (
    "id",
    "folder",
    "modality",
    "files",
    "rows",
    "columns",
    "slices",
    "spacing_row_mm",
    "spacing_col_mm",
    "spacing_slice_mm",
    "orientation",
    "axes",
    "transfer_syntaxes",
    "decodable",
    "verdict",
    "irregularities",
    "strict_error",
    "duplicate_images",
    "duplicate_of",
    "blank_images",
)


#: The files :meth:`AuditReport.write` writes into its folder.
AUDIT_FILES = ("audit.csv", "audit.json", "spacing.png", "contact_sheet.png")


def check_out(out, *, overwrite: bool) -> dict:
    """``{name: path}`` of the audit's files in ``out``; with ``overwrite=False`` raise
    :class:`~m1vision.errors.OutputExistsError` if any exists (before any work is done)."""
    from m1vision._atomic import _exists_error

    paths = {name: Path(out) / name for name in AUDIT_FILES}
    if not overwrite:
        for path in paths.values():
            if path.exists():
                raise _exists_error(path)
    return paths


@dataclass(frozen=True)
class AuditRow:
    """One series (or multi-frame object) of an audit; no patient or study identifiers.

    Attributes
    ----------
    id : str
        A short opaque name, ``"S1"``, ``"S2"``... (sorted by folder).
    folder : str
        The folder holding it, relative to the audited root.
    modality : str
    files, rows, columns, slices : int
        Image files; matrix; distinct slice positions (frames of a multi-frame object).
    spacing : tuple of float or None
        (row, column, slice) in mm; the slice spacing from the positions, as read_series
        finds it (``None`` where there are no positions).
    orientation : str
        "axial", "sagittal", "oblique axial"..., "multi-frame" or "unknown".
    axes : str
        Axis codes of the stored column, row and slice directions (e.g. "LPS"), "" if unknown.
    transfer_syntaxes : tuple of str
        Their names.
    decodable : bool
        Whether this environment decodes every one of them (pydicom's decoders asked).
    verdict : str
        "ok" (a strict read_series reads it), "irregular" (it raises; strict=False loads it,
        see ``irregularities``), "not a volume" (no read_series at all; ``strict_error``
        says why) or "multi-frame" (one object, read with read_dicom).
    irregularities : tuple of str
        Each irregularity named, e.g. "missing slices: IM0004.dcm at 9.00 mm -> ...".
    strict_error : str
        The error a strict read raises ("" when none).
    duplicate_images : int
        Its images with the same pixels as another image of the collection.
    duplicate_of : tuple of str
        The ids of the other series holding those copies.
    blank_images : int
        Its images holding one value everywhere (not counted as duplicates of each other).
    """

    id: str
    folder: str
    modality: str
    files: int
    rows: int
    columns: int
    slices: int
    spacing: tuple[float, float, float] | None
    orientation: str
    axes: str
    transfer_syntaxes: tuple[str, ...]
    decodable: bool
    verdict: str
    irregularities: tuple[str, ...]
    strict_error: str
    duplicate_images: int
    duplicate_of: tuple[str, ...]
    blank_images: int

    def to_dict(self) -> dict:
        """The row as a JSON-safe dict."""
        d = dict(self.__dict__)
        for k in ("spacing", "transfer_syntaxes", "irregularities", "duplicate_of"):
            d[k] = None if d[k] is None else list(d[k])
        return d

    def csv_row(self) -> dict:
        sp = self.spacing or (None, None, None)
        d = self.to_dict()
        d.update(
            spacing_row_mm=sp[0],
            spacing_col_mm=sp[1],
            spacing_slice_mm=sp[2],
            transfer_syntaxes="; ".join(self.transfer_syntaxes),
            decodable="yes" if self.decodable else "no",
            irregularities="; ".join(self.irregularities),
            duplicate_of=" ".join(self.duplicate_of),
        )
        return {k: d[k] for k in _CSV_COLUMNS}


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit` found: a table of series, duplicates, unreadable and skipped files.

    Shows a summary and the table in Jupyter (``_repr_html_``) and as ``str()``;
    :meth:`write` saves ``audit.csv``, ``audit.json`` (``schema`` ``"m1vision.audit"``,
    ``version`` 1), ``spacing.png`` (:meth:`scatter`) and ``contact_sheet.png``
    (:meth:`contact_sheet`). Every path is relative to the audited folder (``root_name`` is
    its name only); no patient or study identifiers (names, IDs, UIDs, dates, descriptions).

    Attributes
    ----------
    root_name : str
    rows : tuple of AuditRow
    duplicates : tuple of dict
        Groups of images with the same pixels (hash of the decoded array, its shape and
        dtype): ``{"files": [...], "series": [ids]}``, largest first.
    unreadable : tuple of (str, str)
        Files that are not readable DICOM, with the reason (not DICOM, a broken header,
        pixel data that cannot be decoded).
    skipped : tuple of (str, str)
        DICOM files that are no image (DICOMDIR, objects without pixel data, localizers).
    files : int
        Every file looked at.
    not_hashed : int
        Image files whose transfer syntax this environment cannot decode (not in duplicates).
    seconds : float
    executor : str
    """

    root_name: str
    rows: tuple[AuditRow, ...]
    duplicates: tuple[dict, ...]
    unreadable: tuple[tuple[str, str], ...]
    skipped: tuple[tuple[str, str], ...]
    files: int
    not_hashed: int
    seconds: float
    executor: str
    tiles: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i) -> AuditRow:
        return self.rows[i]

    def verdicts(self) -> dict:
        """``{verdict: count}`` over the rows."""
        return dict(Counter(r.verdict for r in self.rows))

    def to_dict(self) -> dict:
        """The whole report, JSON-safe, with the ``schema`` + ``version`` header."""
        from m1vision._atomic import versioned

        return versioned(
            SCHEMA,
            VERSION,
            {
                "root": self.root_name,
                "files": self.files,
                "series": [r.to_dict() for r in self.rows],
                "duplicates": [dict(d) for d in self.duplicates],
                "unreadable": [{"file": f, "reason": r} for f, r in self.unreadable],
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
                "not_hashed": self.not_hashed,
                "verdicts": self.verdicts(),
                "seconds": round(self.seconds, 3),
                "executor": self.executor,
            },
        )

    def to_csv(self) -> str:
        """The series table as CSV text (one row per series, the columns of :class:`AuditRow`)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=_CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow(r.csv_row())
        return buf.getvalue()

    # -- pictures ----------------------------------------------------------------------------

    def scatter(self):
        """A matplotlib Figure, one point per series: spacing, matrix and physical extent.

        Left: slice spacing against in-plane (column) spacing. Middle: slices against pixels
        per slice. Right: the extent along the slices against the in-plane field of view, in
        mm. Colour: modality; a cross: a series whose verdict is not "ok".
        """
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13, 4.2), layout="constrained")
        ax_sp, ax_sz, ax_mm = fig.subplots(1, 3)
        colors = {}
        labels: dict = defaultdict(list)  # one label per point, naming every series there
        for r in self.rows:
            color = colors.setdefault(r.modality, f"C{len(colors)}")
            marker = "o" if r.verdict == "ok" else "X"
            points = [(ax_sz, (r.rows * r.columns, r.slices))]
            if r.spacing is not None and r.spacing[2] is not None:
                fov = max(r.rows * r.spacing[0], r.columns * r.spacing[1])
                points.append((ax_sp, (r.spacing[1], r.spacing[2])))
                points.append((ax_mm, (round(fov, 3), round(r.slices * r.spacing[2], 3))))
            for ax, xy in points:
                ax.scatter(*xy, s=60, c=color, marker=marker)
                labels[(id(ax), xy)].append((ax, r.id))
        for (_, xy), named in labels.items():
            named[0][0].annotate(
                ",".join(i for _, i in named),
                xy,
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=8,
            )
        ax_sp.set(
            xlabel="in-plane spacing (mm, columns)",
            ylabel="slice spacing (mm)",
            title="spacing per series",
        )
        ax_sz.set(xlabel="pixels per slice (rows x columns)", ylabel="slices", title="matrix")
        ax_sz.set_xscale("log")
        ax_mm.set(
            xlabel="field of view (mm, larger side)",
            ylabel="extent along the slices (mm)",
            title="physical size",
        )
        for m, c in colors.items():
            ax_mm.scatter([], [], c=c, label=m)
        ax_mm.scatter([], [], c="gray", marker="X", label="not ok")
        ax_mm.legend(fontsize=8, loc="best")
        return fig

    def contact_sheet(self, *, columns: int = 6) -> np.ndarray:
        """One middle slice per series, windowed, each tile labelled: a BGR uint8 image."""
        import cv2

        n = max(1, len(self.rows))
        columns = max(1, min(columns, n))
        rows = -(-n // columns)
        label_h = 34
        sheet = np.full((rows * (_TILE + label_h), columns * _TILE, 3), 32, np.uint8)
        for i, r in enumerate(self.rows):
            y, x = (i // columns) * (_TILE + label_h), (i % columns) * _TILE
            tile = self.tiles.get(r.id)
            if tile is None:
                tile = np.full((_TILE, _TILE), 64, np.uint8)
                cv2.putText(
                    tile,
                    "not decoded",
                    (20, _TILE // 2),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.45,
                    200,
                    1,
                    cv2.LINE_AA,
                )
            sheet[y : y + _TILE, x : x + _TILE] = tile[..., None]
            color = (80, 200, 80) if r.verdict == "ok" else (60, 160, 255)
            for k, text in enumerate((f"{r.id} {r.modality} {r.verdict}", r.folder[-24:])):
                cv2.putText(
                    sheet,
                    text,
                    (x + 4, y + _TILE + 14 + 15 * k),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.4,
                    color if k == 0 else (220, 220, 220),
                    1,
                    cv2.LINE_AA,
                )
        return sheet

    # -- writing -----------------------------------------------------------------------------

    def write(self, out, *, overwrite: bool = False) -> dict:
        """Write ``audit.csv``, ``audit.json``, ``spacing.png`` and ``contact_sheet.png``.

        Each file is written atomically; with ``overwrite=False`` (default) nothing is written
        when any of them exists (:class:`~m1vision.errors.OutputExistsError`). Returns
        ``{name: path}``.
        """
        from m1vision._atomic import atomic_write_bytes, atomic_write_json
        from m1vision.io._write import write_image
        from m1vision.viz import figure_to_png

        paths = check_out(out, overwrite=overwrite)
        png = figure_to_png(self.scatter(), dpi=100)
        atomic_write_bytes(paths["audit.csv"], self.to_csv().encode("utf-8"), overwrite=overwrite)
        atomic_write_json(paths["audit.json"], self.to_dict(), overwrite=overwrite)
        atomic_write_bytes(paths["spacing.png"], png, overwrite=overwrite)
        write_image(paths["contact_sheet.png"], self.contact_sheet(), overwrite=overwrite)
        return paths

    # -- display -----------------------------------------------------------------------------

    def summary(self) -> str:
        """One paragraph: what was found."""
        v = self.verdicts()
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(v.items())) or "none"
        dup_images = sum(len(d["files"]) for d in self.duplicates)
        return (
            f"audit of {self.root_name!r}: {self.files} files, {len(self.rows)} series "
            f"({kinds}); {len(self.duplicates)} group(s) of duplicate images ({dup_images} "
            f"images); {len(self.unreadable)} unreadable, {len(self.skipped)} skipped"
            + (f"; {self.not_hashed} not hashed (not decodable here)" if self.not_hashed else "")
            + f"; {self.seconds:.2f} s"
        )

    def _table(self) -> list[tuple[str, ...]]:
        head = (
            "id",
            "folder",
            "modality",
            "rows x cols x slices",
            "spacing mm",
            "axes",
            "syntax",
            "verdict",
            "duplicates",
        )
        body = []
        for r in self.rows:
            sp = (
                "-"
                if r.spacing is None
                else " x ".join("?" if v is None else f"{v:.3g}" for v in r.spacing)
            )
            syntax = ", ".join(r.transfer_syntaxes) + ("" if r.decodable else " (not here)")
            verdict = r.verdict + (
                f": {r.irregularities[0].split(':')[0]}"
                if r.irregularities and len(r.irregularities) == 1
                else f": {len(r.irregularities)} kinds"
                if r.irregularities
                else ""
            )
            dup = f"{r.duplicate_images} ({' '.join(r.duplicate_of)})" if r.duplicate_images else ""
            body.append(
                (
                    r.id,
                    r.folder,
                    r.modality,
                    f"{r.rows} x {r.columns} x {r.slices}",
                    sp,
                    r.axes,
                    syntax,
                    verdict,
                    dup,
                )
            )
        return [head, *body]

    def __str__(self) -> str:
        table = self._table()
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = [self.summary(), ""]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table
        ]
        for f, why in self.unreadable:
            lines.append(f"unreadable: {f} - {why}")
        for f, why in self.skipped:
            lines.append(f"skipped: {f} - {why}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<AuditReport {self.summary()}>"

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        e = html.escape
        table = self._table()
        head = "".join(f"<th>{e(c)}</th>" for c in table[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table[1:]
        )
        extra = "".join(
            f"<li>{e(kind)}: <code>{e(f)}</code> - {e(why)}</li>"
            for kind, items in (("unreadable", self.unreadable), ("skipped", self.skipped))
            for f, why in items
        )
        return (
            f"<p>{e(self.summary())}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>" + (f"<ul>{extra}</ul>" if extra else "")
        )


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
    """(name, _Slice or None, skip reason or None, syntax uid, pixel hash or None)."""
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
    small = pydicom.Dataset()  # only what grouping, checks and the report use
    for keyword in _KEEP:
        if keyword in ds:
            small[keyword] = ds[keyword]
    item.ds = small
    item.raw = None
    return name, item, None, uid, digest


def _inspect_chunk(paths: list[Path], root: Path, hash_pixels: bool) -> list:
    return [_inspect(p, root, hash_pixels) for p in paths]


# ---------------------------------------------------------------------------------------------
# the audit
# ---------------------------------------------------------------------------------------------


def _check_workers(workers) -> None:
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidParameterError(
            f"workers must be a positive integer or None (one per available core), got {workers!r}."
        )


def _executor(n_paths: int, workers):
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from m1vision.batch._engine import (
        PROCESS_MIN_ITEMS_PER_WORKER,
        _fork_context,
        available_cores,
    )

    n = available_cores() if workers is None else workers
    n = max(1, min(n, n_paths))
    if n > 1 and n_paths >= PROCESS_MIN_ITEMS_PER_WORKER * n:
        ctx = _fork_context()
        pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx)
        return pool, f"ProcessPoolExecutor(max_workers={n}, {ctx.get_start_method()})"
    return ThreadPoolExecutor(max_workers=n), f"ThreadPoolExecutor(max_workers={n})"


def _run(paths: list[Path], root: Path, hash_pixels: bool, workers, show: bool):
    from concurrent.futures import as_completed

    from m1vision.batch import progress

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
    return _check_geometry(folder, list(slices), strict, notes, single_step=thick)


def _axes(geo) -> str:
    """Axis codes (e.g. "LPS") of the stored column, row and slice directions of a stack."""
    from m1vision.geometry import axcodes, dicom_affine

    first = geo.slices[0]
    spacing = geo.pixel_spacing or (1.0, 1.0)
    ras = dicom_affine(geo.iop, first.ipp - geo.step * geo.slots[0], spacing, geo.step)
    return "".join(axcodes(ras[:, [2, 1, 0, 3]]))


def _verdict(folder: str, slices) -> tuple:
    """(verdict, irregularities, strict error, geometry or None) from the headers."""
    notes: list[dict] = []
    try:
        geo = _geometry(folder, slices, False, notes)
    except SeriesError as exc:
        return "not a volume", (exc.problem,), f"{type(exc).__name__}: {exc.problem}", None
    if not notes:
        return "ok", (), "", geo
    named = tuple(
        f"{n['kind']}: {n.get('detail') or ', '.join(n.get('differs_in', []))}" for n in notes
    )
    try:
        _geometry(folder, slices, True, [])
        strict_error = ""
    except SeriesError as exc:
        strict_error = f"{type(exc).__name__}: {exc.problem}"
    return "irregular", named, strict_error, geo


def _tile(path: Path, spacing) -> np.ndarray | None:
    """The windowed middle slice of a file fitted into a square tile at its physical aspect."""
    import cv2

    from m1vision.io._dicom import read_dicom
    from m1vision.preprocess import to_uint8, window

    try:
        img = read_dicom(path)
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
    dr, dc = (spacing[0], spacing[1]) if spacing else (1.0, 1.0)
    scale = _TILE / max(h * dr, w * dc)
    size = (max(1, round(w * dc * scale)), max(1, round(h * dr * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    tile = np.zeros((_TILE, _TILE), np.uint8)
    y, x = (_TILE - small.shape[0]) // 2, (_TILE - small.shape[1]) // 2
    tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    return tile


def audit(root, *, workers: int | None = None, progress: bool = True) -> AuditReport:
    """Audit a collection of DICOM files: every series, its geometry, duplicates, bad files.

    1. Every file under ``root`` (recursively, any name) is looked at, on a pool of worker
       processes (one per available core, as :mod:`m1vision.batch` picks them): its header is
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
    _check_workers(workers)
    start = time.perf_counter()
    p = _check_folder(root)
    paths = _files(p)
    results, described = _run(paths, p, True, workers, progress) if paths else ([], "none")
    groups: dict[tuple[str, str], list] = defaultdict(list)
    unreadable, skipped, syntaxes, digests = [], [], {}, {}
    for name, item, reason, uid, digest in results:
        if item is None:
            (unreadable if reason.startswith(_UNREADABLE) else skipped).append((name, reason))
            continue
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
    infos = _infos([g for _, g in ordered])
    ids = {key: f"S{i + 1}" for i, (key, _) in enumerate(ordered)}
    series_of = {s.name: ids[key] for key, g in ordered for s in g}
    by_digest: dict[str, list[str]] = defaultdict(list)
    for name, digest in digests.items():
        if digest != _BLANK:
            by_digest[digest].append(name)
    dup_groups = sorted(
        (sorted(v) for v in by_digest.values() if len(v) > 1), key=lambda v: (-len(v), v)
    )
    shared = {name: group for group in dup_groups for name in group}
    from pydicom.uid import UID

    rows, tiles = [], {}
    for ((folder, _), g), info in zip(ordered, infos, strict=True):
        sid = ids[(folder, _)]
        multi = len(g) == 1 and g[0].frames > 1
        stack = None
        if multi:
            verdict, named, strict_error = "multi-frame", (), ""
        else:
            verdict, named, strict_error, stack = _verdict(folder, g)
        first = stack.slices[0] if stack is not None else g[0]
        spacing = None
        if first.spacing is not None:
            z = stack.z_spacing if stack is not None else None
            spacing = (
                round(first.spacing[0], 6),
                round(first.spacing[1], 6),
                None if z is None else round(z, 6),
            )
        uids = sorted({syntaxes[s.name] for s in g})
        dups = [s.name for s in g if s.name in shared]
        others = sorted(
            {series_of[n] for s in dups for n in shared[s] if series_of[n] != sid},
            key=lambda x: int(x[1:]),
        )
        rows.append(
            AuditRow(
                id=sid,
                folder=folder,
                modality=info.modality,
                files=info.files,
                rows=info.rows,
                columns=info.columns,
                slices=info.slices,
                spacing=spacing,
                orientation=info.orientation,
                axes=_axes(stack) if stack is not None else "",
                transfer_syntaxes=tuple(UID(u).name for u in uids),
                decodable=all(_decodable(u) for u in uids),
                verdict=verdict,
                irregularities=named,
                strict_error=strict_error,
                duplicate_images=len(dups),
                duplicate_of=tuple(others),
                blank_images=sum(digests.get(s.name) == _BLANK for s in g),
            )
        )
        middle = stack.slices[len(stack.slices) // 2] if stack is not None else g[len(g) // 2]
        if rows[-1].decodable:
            tile = _tile(middle.path, first.spacing)
            if tile is not None:
                tiles[sid] = tile
    duplicates = tuple(
        {"files": group, "series": sorted({series_of[n] for n in group}, key=lambda x: int(x[1:]))}
        for group in dup_groups
    )
    return AuditReport(
        root_name=p.resolve().name,
        rows=tuple(rows),
        duplicates=duplicates,
        unreadable=tuple(unreadable),
        skipped=tuple(skipped),
        files=len(paths),
        not_hashed=sum(len(g) for g in groups.values()) - len(digests),
        seconds=time.perf_counter() - start,
        executor=described,
        tiles=tiles,
    )
