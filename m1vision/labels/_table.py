"""LabelTable (internal): the table label statistics and comparisons return."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from m1vision.errors import InvalidParameterError, RecordError


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # shortest exact form: the CSV reads back to the same float
    return str(value)


def _parse(text: str):
    """A CSV cell back as None, int, float or text."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class LabelTable:
    """A table of one row per label: prints, writes CSV, becomes a pandas DataFrame.

    Attributes
    ----------
    rows : list of dict
        One dict per row, the keys in :attr:`columns` order.
    overall : dict or None
        A summary row (e.g. the mean over the labels, label "mean"), printed and written
        last, not part of :attr:`rows`.
    columns : tuple of str
        The column names.
    schema : str
        What the table holds ("m1vision.label_stats", "m1vision.label_compare").

    Examples
    --------
    >>> from m1vision.labels import LabelTable
    >>> t = LabelTable([{"label": 1, "name": "liver", "voxels": 10}], schema="m1vision.example")
    >>> print(t)
    label  name   voxels
        1  liver      10
    """

    VERSION = 1

    def __init__(self, rows, *, schema: str, columns=None, colors=None, overall=None):
        self.rows = [dict(r) for r in rows]
        self.overall = None if overall is None else dict(overall)
        self.colors = {int(k): list(v) for k, v in (colors or {}).items()}
        if columns is None:
            columns = list(self.rows[0]) if self.rows else []
        self.columns = tuple(columns)
        self.schema = str(schema)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def row(self, label) -> dict:
        """The row of label value (or name) ``label``; KeyError if there is none."""
        for r in self.rows:
            if r.get("label") == label or r.get("name") == label:
                return r
        raise KeyError(f"no row for label {label!r}; labels: {[r.get('label') for r in self]}")

    def __str__(self) -> str:
        def show(v):
            if isinstance(v, float):
                return f"{v:.4g}" if math.isfinite(v) else _cell(v)
            return "" if v is None else str(v)

        every = self.rows + ([self.overall] if self.overall else [])
        cells = [[show(r.get(c)) for c in self.columns] for r in every]
        widths = [
            max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(self.columns)
        ]
        numeric = [
            all(isinstance(r.get(c), int | float) or r.get(c) is None for r in self.rows)
            for c in self.columns
        ]

        def line(values, header=False):
            parts = []
            for v, w, num in zip(values, widths, numeric, strict=True):
                parts.append(v.rjust(w) if num and not header else v.ljust(w))
            return "  ".join(parts).rstrip()

        out = [line(self.columns, header=True)] + [line(row) for row in cells]
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"LabelTable({self.schema}, {len(self.rows)} rows, columns={list(self.columns)})"

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in self.columns)
            + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def to_csv(self, path=None, *, overwrite: bool = False):
        """Write the table as CSV (atomically); without ``path``, return the text.

        The first line is a comment naming the schema and version
        (``# m1vision.label_stats version 1``); pandas reads the file with
        ``pandas.read_csv(path, comment="#")``, :meth:`read_csv` gives the table back.
        Floats are written in their shortest exact form (``nan``, ``inf`` as such).
        """
        buf = io.StringIO()
        buf.write(f"# {self.schema} version {self.VERSION}\n")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for r in self.rows + ([self.overall] if self.overall else []):
            writer.writerow([_cell(r.get(c)) for c in self.columns])
        text = buf.getvalue()
        if path is None:
            return text
        from m1vision._atomic import atomic_write_text

        return atomic_write_text(Path(path), text, overwrite=overwrite)

    @classmethod
    def read_csv(cls, path) -> LabelTable:
        """Read a table :meth:`to_csv` wrote (ints, floats and text restored)."""
        p = Path(path)
        lines = p.read_text(encoding="utf-8").splitlines()
        head = lines[0].split() if lines else []
        if len(head) != 4 or head[0] != "#" or head[2] != "version":
            raise RecordError(
                f"{str(p)!r} is not a table m1vision wrote: its first line should read "
                f"'# <schema> version <n>', got {lines[0] if lines else ''!r}."
            )
        if int(head[3]) != cls.VERSION:
            raise RecordError(
                f"{str(p)!r}: unsupported {head[1]} version {head[3]}; this m1vision reads "
                f"version {cls.VERSION}. Upgrade m1vision to read it."
            )
        reader = csv.reader(lines[1:])
        columns = next(reader)
        rows = [
            {c: v if c == "name" else _parse(v) for c, v in zip(columns, row, strict=True)}
            for row in reader
        ]
        overall = None
        if rows and rows[-1].get("label") == "mean":
            overall = rows.pop()
        return cls(rows, schema=head[1], columns=columns, overall=overall)

    def to_pandas(self):
        """The rows as a ``pandas.DataFrame`` (pandas is optional: an ImportError says so)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "LabelTable.to_pandas needs pandas, which is not installed; install it "
                "(pip install pandas) or use table.rows (a list of dicts)."
            ) from exc
        return pd.DataFrame(self.rows, columns=list(self.columns))

    def bar_chart(self, column: str = "volume_ml", *, path=None, overwrite: bool = False):
        """A horizontal bar chart of ``column`` per label, in the labels' colours.

        Returns the picture as a BGR uint8 array (drawn with matplotlib's Agg backend, no
        window); with ``path``, also writes it as PNG (atomically).
        """
        if column not in self.columns:
            raise InvalidParameterError(
                f"column must be one of the table's columns {list(self.columns)}, got {column!r}."
            )
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        rows = [r for r in self.rows if isinstance(r.get("label"), int)]
        names = [str(r.get("name", r["label"])) for r in rows]
        values = [float(r[column]) if r.get(column) is not None else math.nan for r in rows]
        from m1vision.labels._core import default_color

        colors = [
            np.array(self.colors.get(r["label"]) or default_color(r["label"]), float) / 255.0
            for r in rows
        ]
        fig = Figure(figsize=(6.4, 0.9 + 0.32 * max(1, len(rows))), dpi=100)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.barh(range(len(rows)), values, color=colors, edgecolor="black", linewidth=0.5)
        ax.set_yticks(range(len(rows)), names)
        ax.invert_yaxis()
        ax.set_xlabel(column)
        fig.tight_layout()
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        picture = np.ascontiguousarray(rgba[:, :, [2, 1, 0]])
        if path is not None:
            from m1vision.io import write_image

            write_image(path, picture, overwrite=overwrite)
        return picture
