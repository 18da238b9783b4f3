"""The audit's report (internal): :class:`AuditRow`, :class:`AuditReport`, its files and pictures.

:func:`m1vision.io.audit` (in :mod:`._audit`) makes the report; here it is shown (``str``,
``_repr_html_``), written (CSV, versioned JSON, PNG) and drawn (scatter, contact sheet).
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["AUDIT_FILES", "AuditReport", "AuditRow", "check_out"]

SCHEMA, VERSION = "m1vision.audit", 1
_TILE = 160  # contact sheet tile side, pixels
_CSV_COLUMNS = (
    "id",
    "folder",
    "stack",
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


#: Files shown by name per reason in the printed report (the rest counted).
_LISTED = 3


def check_out(out, *, overwrite: bool) -> dict:
    """``{name: path}`` of the audit's files in ``out``; with ``overwrite=False`` raise
    :class:`~m1vision.errors.OutputExistsError` if any exists, and
    :class:`~m1vision.errors.ImageWriteError` if ``out`` is no folder files can be made in
    (before any work is done)."""
    from m1vision._atomic import _exists_error, check_out_folder

    check_out_folder(out, name="out")
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
    stack : str
        For one stack of an Enhanced multi-frame object holding several, what tells it apart
        (e.g. "echo time 20 ms"); "" otherwise.
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
        "ok" (a strict read_series reads it, or read_dicom an Enhanced stack), "irregular"
        (it raises; strict=False loads it, see ``irregularities``), "not a volume" (no
        read_series at all; ``strict_error`` says why) or "multi-frame" (a multi-frame object
        without functional groups placing its frames, read with read_dicom).
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
    stack: str
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
        from m1vision._atomic import atomic_path, atomic_write_bytes, atomic_write_json
        from m1vision.io._write import write_image

        paths = check_out(out, overwrite=overwrite)
        fig = self.scatter()  # drawn before anything is written
        atomic_write_bytes(paths["audit.csv"], self.to_csv().encode("utf-8"), overwrite=overwrite)
        atomic_write_json(paths["audit.json"], self.to_dict(), overwrite=overwrite)
        with atomic_path(paths["spacing.png"], overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=100)  # a bare Figure: matplotlib's Agg, no pyplot
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
            where = " ".join(r.duplicate_of) or "within the series"
            dup = f"{r.duplicate_images} ({where})" if r.duplicate_images else ""
            body.append(
                (
                    r.id,
                    r.folder + (f" [{r.stack}]" if r.stack else ""),
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
        lines += [f"{kind}: {f} - {why}" for kind, f, why in self._file_lines()]
        return "\n".join(lines)

    def _file_lines(self) -> list[tuple[str, str, str]]:
        """(kind, file(s), reason) of the unreadable and skipped files to show: up to
        :data:`_LISTED` files per reason by name, the rest of that reason counted (every
        file is in ``audit.json`` and in :attr:`unreadable` / :attr:`skipped`)."""
        lines = []
        for kind, items in (("unreadable", self.unreadable), ("skipped", self.skipped)):
            by_reason: dict[str, list[str]] = {}
            for f, why in items:
                by_reason.setdefault(why, []).append(f)
            for why, files in by_reason.items():
                lines += [(kind, f, why) for f in files[:_LISTED]]
                if len(files) > _LISTED:
                    more = f"{len(files) - _LISTED} more file(s) (all in report.{kind}, audit.json)"
                    lines.append((kind, more, why))
        return lines

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
            for kind, f, why in self._file_lines()
        )
        return (
            f"<p>{e(self.summary())}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>" + (f"<ul>{extra}</ul>" if extra else "")
        )
