"""Where the batch report is made and written (internal): one item shape, one report shape."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, ClassVar

from m1vision._atomic import atomic_write_bytes, versioned
from m1vision.errors import OutputExistsError

STATUSES = ("ok", "skipped", "failed")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchItem:
    """One input of a :class:`BatchReport`.

    A job whose items carry more (a prediction's ``top_k`` and ``probabilities``) subclasses
    it, adding fields with defaults; the engine fills them from what the job's worker returns
    (and, for a skipped input, from the manifest).

    Attributes
    ----------
    key : str
        The input key: the path relative to the folder given, with its extension.
    input : str
        The input's absolute path.
    output : str or None
        The output's absolute path (None for a job that writes no file per input).
    status : {"ok", "skipped", "failed"}
    reason : str
        Why it was processed or skipped: ``"new"``, ``"unchanged"`` (skipped), ``"input
        changed"`` (its content hash differs), ``"failed before"``, ``"output missing"``,
        ``"output truncated"`` (smaller than recorded), ``"output changed"`` (its hash
        differs), ``"interrupted"`` (an output without a record: a run stopped before its
        manifest was saved), ``"older manifest"`` (recorded by a version 1 manifest, which
        kept no content hash), ``"overwrite"``.
    seconds : float
        Time spent on it in this run (0 when skipped).
    error : str or None
        ``"TypeName: message"`` when failed.
    """

    key: str
    input: str
    output: str | None
    status: str
    reason: str
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The item as a JSON-safe dict (seconds rounded to microseconds)."""
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        out = {name: getattr(self, name) for name in names}
        out["seconds"] = round(self.seconds, 6)
        return out


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # per item class, in order


@dataclasses.dataclass
class BatchReport:
    """What a batch run did: one :class:`BatchItem` per input, counts, time, the executor.

    ``repr(report)`` is the summary line (``BatchReport: 198 ok, 0 skipped, 2 failed in
    3.1 s``); ``str(report)`` adds the failed inputs and their errors, and the reasons.
    """

    items: list[BatchItem]
    seconds: float
    job: dict
    out_dir: str
    started: str
    executor: str
    path: Path | None = None
    manifest: Path | None = None

    SCHEMA: ClassVar[str] = "m1vision.batch_report"
    VERSION: ClassVar[int] = 2

    def _with(self, status: str) -> list[BatchItem]:
        return [item for item in self.items if item.status == status]

    @property
    def ok(self) -> list[BatchItem]:
        """Items processed and written in this run."""
        return self._with("ok")

    @property
    def skipped(self) -> list[BatchItem]:
        """Items whose output was made before by the same job from the same input."""
        return self._with("skipped")

    @property
    def failed(self) -> list[BatchItem]:
        """Items that failed; ``item.error`` says why (``"TypeName: message"``)."""
        return self._with("failed")

    @property
    def counts(self) -> dict[str, int]:
        """``{"ok": n, "skipped": n, "failed": n}``."""
        return {s: len(self._with(s)) for s in STATUSES}

    @property
    def reasons(self) -> dict[str, int]:
        """How many inputs per reason (``{"new": 3, "input changed": 1}``)."""
        out: dict[str, int] = {}
        for item in self.items:
            out[item.reason] = out.get(item.reason, 0) + 1
        return out

    @property
    def pipeline(self) -> dict | None:
        """The pipeline (its dict) of a pipeline run, else None."""
        return self.job.get("config", {}).get("pipeline")

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dict (what is written to :attr:`path`)."""
        return self._body([item.to_dict() for item in self.items])

    def _body(self, items: list) -> dict[str, Any]:
        body = {
            "started": self.started,
            "seconds": round(self.seconds, 6),
            "executor": self.executor,
            "out_dir": self.out_dir,
            "manifest": str(self.manifest) if self.manifest else None,
            "counts": self.counts,
            "reasons": self.reasons,
            "job": self.job,
            "items": items,
        }
        return versioned(self.SCHEMA, self.VERSION, body)

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"BatchReport: {c['ok']} ok, {c['skipped']} skipped, {c['failed']} failed "
            f"in {self.seconds:.1f} s"
        )

    def __str__(self) -> str:
        lines = [repr(self), f"  executor: {self.executor}"]
        reasons = ", ".join(f"{n} {r}" for r, n in self.reasons.items())
        lines.append(f"  reasons: {reasons}")
        failed = self.failed
        for item in failed[:20]:
            lines.append(f"  failed {item.key}: {item.error}")
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more (see report.failed)")
        if self.path is not None:
            lines.append(f"  report: {self.path}")
        return "\n".join(lines)


_ITEM_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # made once
_QUOTE = json.encoder.encode_basestring  # how that encoder writes a str
_BASE_FIELDS = ("key", "input", "output", "status", "reason", "seconds", "error")


def _float(value: float) -> str:
    return float.__repr__(value) if math.isfinite(value) else _ITEM_ENCODER.encode(value)


def _report_text(report: BatchReport) -> str:
    """The report as JSON: the header indented, then one item per line (a report of 10 000
    inputs is written in milliseconds and still reads and diffs line by line).

    Each line is what ``json.dumps(item.to_dict(), ensure_ascii=False, separators=(",",
    ":"))`` gives, made from a template of the fields every item has (the encoder's own string
    quoting) and the encoder for the fields a subclass adds."""
    head = json.dumps(report._body([]), indent=2, ensure_ascii=False)
    assert head.endswith('"items": []\n}')
    items = report.items
    lines = ",\n".join(_item_lines(items))
    return head[: -len("[]\n}")] + ("[\n" + lines + "\n  ]" if items else "[]") + "\n}\n"


def _item_lines(items: list[BatchItem]):
    quote, encode = _QUOTE, _ITEM_ENCODER.encode
    extras: dict[type, list[tuple[str, str]]] = {}
    middles: dict[tuple, str] = {}  # the status and reason parts, repeated across items
    for item in items:
        cls = type(item)
        extra = extras.get(cls)
        if extra is None:
            names = _FIELD_NAMES.get(cls) or tuple(f.name for f in dataclasses.fields(item))
            extra = extras[cls] = [(quote(n), n) for n in names if n not in _BASE_FIELDS]
        key, src, out, error = item.key, item.input, item.output, item.error
        error = "null" if error is None else quote(error) if type(error) is str else encode(error)
        middle = middles.get((item.status, item.reason))
        if middle is None:
            middle = middles[item.status, item.reason] = (
                f'"status":{encode(item.status)},"reason":{encode(item.reason)}'
            )
        seconds = round(item.seconds, 6)
        line = (
            f'    {{"key":{quote(key) if type(key) is str else encode(key)},'
            f'"input":{quote(src) if type(src) is str else encode(src)},'
            f'"output":{quote(out) if type(out) is str else encode(out)},{middle},'
            f'"seconds":{_float(seconds) if type(seconds) is float else encode(seconds)},'
            f'"error":{error}'
        )
        if extra:
            line += "".join(f",{q}:{encode(getattr(item, n))}" for q, n in extra)
        yield line + "}"


def write_report(report: BatchReport, folder: Path, started: time.struct_time) -> Path:
    """Write ``batch_report-<UTC time>.json`` into ``folder`` (never replacing one)."""
    base = f"batch_report-{time.strftime('%Y%m%dT%H%M%S', started)}"
    data = _report_text(report).encode("utf-8")
    # Runs of one second take the next free number; this process starts after the last one it
    # wrote (the atomic write still refuses any name taken meanwhile).
    memo = (str(folder), base)
    first = _LAST_REPORT.get(memo, 0) + 1
    for n in range(first, 10_000):
        path = folder / (f"{base}.json" if n == 1 else f"{base}-{n}.json")
        try:
            # atomic; no fsync (as the manifest): a power cut may lose it, never half-write it
            path = atomic_write_bytes(path, data, fsync=False)
        except OutputExistsError:
            continue
        _LAST_REPORT.clear()  # one entry: the last second of the last folder
        _LAST_REPORT[memo] = n
        return path
    raise OutputExistsError(  # pragma: no cover - 10 000 reports in one second
        f"could not find a free report name {base}-N.json in {str(folder)!r}."
    )


_LAST_REPORT: dict[tuple[str, str], int] = {}  # (folder, base name): the number last written
