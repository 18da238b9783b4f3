"""Where resume is decided (internal): the manifest beside the outputs, and what is done.

An output is reused only when the manifest says it was made by the same job (the job's
fingerprint) from the same input (the SHA-256 of its content, :mod:`m1vision._hashing`) and
the output is still the file that was written (its size and SHA-256). Hashes are reused
while a file's stat (size, mtime, ctime, inode, device) is the one recorded with them, as
git's index does. Everything else is recomputed, with the reason in the report, or, where a
run would replace another job's results, refused before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from m1vision._atomic import atomic_write_bytes, check_versioned, versioned
from m1vision._checks import check_path
from m1vision._hashing import file_record, file_sha256, identify, smudge_racy
from m1vision.batch._columns import Columns, to_columns
from m1vision.batch._inputs import Input, stat_tuple
from m1vision.errors import JobMismatchError, OutputExistsError

__all__ = ["file_sha256"]  # the one rule, re-exported for m1vision.batch

#: The manifest's file name, beside the outputs of a run (in its ``out_dir``).
MANIFEST_NAME = "m1vision-manifest.json"
MANIFEST_SCHEMA = "m1vision.batch_manifest"
MANIFEST_VERSION = 3

# Why an input is processed, or not (BatchItem.reason).
NEW = "new"
UNCHANGED = "unchanged"
INPUT_CHANGED = "input changed"
FAILED_BEFORE = "failed before"
OUTPUT_MISSING = "output missing"
OUTPUT_TRUNCATED = "output truncated"
OUTPUT_CHANGED = "output changed"
INTERRUPTED = "interrupted"
OVERWRITE = "overwrite"
OLDER_MANIFEST = "older manifest"
REASONS = (
    NEW,
    UNCHANGED,
    INPUT_CHANGED,
    FAILED_BEFORE,
    OUTPUT_MISSING,
    OUTPUT_TRUNCATED,
    OUTPUT_CHANGED,
    INTERRUPTED,
    OVERWRITE,
    OLDER_MANIFEST,
)


def input_fingerprint(path) -> dict:
    """The identity record of an input file or folder (``"sha256"``, ``"size"`` and the stat
    its hash is reused on; a folder's per file), as the manifest keeps it.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision.batch import input_fingerprint
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.png"; _ = p.write_bytes(b"abc")
    >>> record = input_fingerprint(p)
    >>> record["size"], record["sha256"][:16]
    (3, 'ba7816bf8f01cfea')
    """
    return identify(check_path(path))[0]


def canonical_sha256(obj) -> str:
    """The SHA-256 of ``obj``'s canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def differences(here, there, path: str = "") -> list[str]:
    """What differs between two JSON values, as ``"where: X here, Y there"`` lines."""
    if isinstance(here, dict) and isinstance(there, dict):
        out = []
        for key in sorted(set(here) | set(there)):
            where = f"{path}.{key}" if path else str(key)
            if key not in there:
                out.append(f"{where}: {json.dumps(here[key])} here, absent there")
            elif key not in here:
                out.append(f"{where}: absent here, {json.dumps(there[key])} there")
            else:
                out += differences(here[key], there[key], where)
        return out
    if isinstance(here, list) and isinstance(there, list) and len(here) == len(there):
        out = []
        for i, (a, b) in enumerate(zip(here, there, strict=True)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    if here != there:
        return [f"{path or 'job'}: {json.dumps(here)} here, {json.dumps(there)} there"]
    return []


_ENTRY_ENCODER = json.JSONEncoder(separators=(",", ":"))  # made once, not per item


class Manifest:
    """The record of what a job made in a folder: ``m1vision-manifest.json``.

    Format (JSON, written atomically, replaced as the run goes; version 3)::

        {"schema": "m1vision.batch_manifest", "version": 3,
         "job": {"schema": ..., "sha256": ..., "config": {...}},   # Job.fingerprint()
         "updated": "2026-01-01T00:00:00Z",
         "kinds": ["<input kind name>", ...],                        # the job's, in order
         "items": {"key": [...], "kind": [...], ...}}               # one list per field

    ``items`` holds the records as parallel lists, one position per input key (the layout is
    :mod:`m1vision.batch._columns`'): a resume of thousands of inputs reads a few lists, not a
    dict per record. :attr:`items` gives them as version 2 kept them, one record per key::

        {"<input key>": {
             "kind": "<input kind name>",
             "input": {"sha256", "size", "stat"},                   # a file input, or
                      {"sha256", "size", "files": {"<rel>": {"sha256", "size", "stat"}}},
             "output": "<path relative to the manifest's folder>" | null,
             "output_file": {"sha256", "size", "stat"} | null,
             "status": "ok" | "failed", "error": str | null,
             "result": {...}}}                                       # the job's extra fields

    ``stat`` is ``[mtime_ns, ctime_ns, inode, device]`` of the moment the file was hashed, or
    null where it is not to be trusted (:func:`m1vision._hashing.smudge_racy`). A version 2
    manifest (those records as they are) is read, and written as version 3 by the next run. A
    version 1 manifest (inputs known by size and mtime only) is read with its job, and its
    items are recomputed (reason ``"older manifest"``).

    ``kind`` and ``kinds`` let the next collect skip sniffing a file's content: a file whose
    stat is exactly the recorded one takes its recorded kind, when the job's kinds are the
    same names in the same order (:meth:`known_kinds`).

    The manifest is written (naming the job, with no items) before any output is, so a
    folder's files were always made by the job it names.
    """

    def __init__(
        self,
        path: Path,
        job: dict,
        items: dict | None = None,
        version=None,
        kinds: list[str] | None = None,
    ):
        self.path = Path(path)
        self.job = job
        self._items: dict[str, dict] | None = dict(items or {})
        self._columns: Columns | None = None  # the items of a version 3 file, as read
        self.version = MANIFEST_VERSION if version is None else version  # as read
        self.kinds = list(kinds or [])
        self.changed = False  # records refreshed while deciding
        self.file_stat: tuple | None = None  # of the file it was read from

    @property
    def items(self) -> dict[str, dict]:
        """The records, ``{input key: record}`` (a version 3 file's are made on first use)."""
        if self._items is None:
            self._items = self._columns.items()
            self._columns = None
        return self._items

    @property
    def columns(self) -> Columns | None:
        """The records as read from a version 3 file, while :attr:`items` is not made yet
        (what a resume decides most inputs from); else None."""
        return self._columns if self._items is None else None

    def take_records(self, other: Manifest) -> None:
        """Start from ``other``'s records (the previous manifest of the same job)."""
        self._columns = other._columns
        self._items = None if other._items is None else dict(other._items)

    def known_kinds(self, kinds: list[str]) -> dict:
        """``{input key: ((size, mtime_ns, ctime_ns, inode, device), kind name)}`` of the
        file inputs whose stat is trusted (for :func:`m1vision.batch.collect`'s ``known``);
        empty unless ``kinds`` (the job's kind names, in order) are the recorded ones."""
        if list(kinds) != self.kinds:
            return {}
        if self.columns is not None:
            return self.columns.known_kinds()
        known = {}
        for key, entry in self.items.items():
            rec = entry.get("input")
            kind = entry.get("kind")
            if kind and rec and rec.get("stat") and "files" not in rec:
                known[key] = ((rec["size"], *rec["stat"]), kind)
        return known

    def is_current(self) -> bool:
        """Is the file on disk still the one this manifest was read from (same size, mtime,
        ctime, inode and device: an atomic replace makes a new inode)?"""
        if self.file_stat is None:
            return False
        try:
            return stat_tuple(os.stat(self.path)) == self.file_stat
        except OSError:
            return False

    @classmethod
    def load(cls, path) -> Manifest | None:
        """Read a manifest; None where there is none.

        Stats not older than the manifest's own write (less the racy window) are dropped, so
        those files are hashed again (git's "racily clean" entries). A version 1 manifest's
        items lose their input record: they are recomputed.
        """
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                file_stat = os.fstat(fh.fileno())
                written_ns = file_stat.st_mtime_ns
                raw = fh.read()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, OSError) as exc:
            raise OutputExistsError(
                f"{str(path)!r} cannot be read as a manifest ({type(exc).__name__}: {exc}); "
                "pass overwrite=True to start a new one, or choose another out_dir."
            ) from None
        check_versioned(
            data,
            schema=MANIFEST_SCHEMA,
            versions=(1, 2, MANIFEST_VERSION),
            source=repr(str(path)),
            error=OutputExistsError,
        )
        items = data.get("items", {})
        columns = None
        if data["version"] >= 3:
            try:
                columns = Columns(items)
            except ValueError as exc:
                raise OutputExistsError(
                    f"{str(path)!r}: 'items' is not the columns of records of version "
                    f"{data['version']} ({exc}), so the manifest is damaged; pass overwrite=True "
                    "to start a new one, or choose another out_dir."
                ) from None
            columns.smudge(written_ns)
            items = None
        elif not isinstance(items, dict) or not all(isinstance(e, dict) for e in items.values()):
            raise OutputExistsError(
                f"{str(path)!r}: 'items' is not a mapping of input keys to records, so the "
                "manifest is damaged; pass overwrite=True to start a new one, or choose "
                "another out_dir."
            )
        for entry in (items or {}).values():
            if data["version"] == 1:  # size + mtime only: no content identity to trust
                entry["input"] = None
                entry["output_file"] = None
                continue
            smudge_racy(entry.get("input"), written_ns)
            smudge_racy(entry.get("output_file"), written_ns)
        kinds = data.get("kinds")
        kinds = kinds if isinstance(kinds, list) else None
        manifest = cls(path, data.get("job", {}), items, data["version"], kinds)
        if columns is not None:
            manifest._items, manifest._columns = None, columns
        manifest.file_stat = stat_tuple(file_stat)
        return manifest

    def save(self) -> Path:
        """Write the manifest atomically (replacing the previous one)."""
        body = {
            "job": self.job,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "kinds": self.kinds,
            "items": {},
        }
        # One column per line: compact (it is rewritten while a run goes on), still readable.
        columns = to_columns(self.items)
        encode = _ENTRY_ENCODER.encode
        lines = ",\n".join(f"  {encode(name)}: {encode(col)}" for name, col in columns.items())
        head = json.dumps(versioned(MANIFEST_SCHEMA, MANIFEST_VERSION, body))
        text = head[: -len('"items": {}}')] + '"items": {\n' + lines + "\n}}\n"
        return atomic_write_bytes(self.path, text.encode("utf-8"), overwrite=True, fsync=False)

    def record(
        self,
        key: str,
        *,
        fingerprint: dict,
        output: str | None,
        result: dict,
        output_file: dict | None = None,
        kind: str | None = None,
    ) -> None:
        """Keep what a task did for ``key``: its input kind, the input's and the output's
        identity records, status, error and the job's extra fields."""
        extra = {k: v for k, v in result.items() if k not in ("status", "error", "seconds")}
        self.items[key] = {
            "kind": kind,
            "input": fingerprint,
            "output": output,
            "output_file": output_file,
            "status": result["status"],
            "error": result.get("error"),
            "result": extra,
        }


@dataclass(slots=True)
class Decision:
    """What the engine does with one input: ``todo`` or not, and why.

    ``identity`` is the input's identity record where deciding computed it already (a
    changed input), so the worker does not hash it again while its stat holds.
    """

    input: Input
    output: Path | None
    todo: bool
    reason: str
    result: dict | None = None  # a skipped input's recorded extra fields
    identity: dict | None = None


def _check_entry(entry: dict, inp: Input, out: Path | None) -> tuple[str, dict | None]:
    """Why a recorded input is recomputed, or UNCHANGED; and its fresh identity record.

    Updates ``entry``'s records in place where a file was hashed again and found the same.
    """
    if entry.get("status") != "ok":
        return FAILED_BEFORE, None
    recorded = entry.get("input")
    if not recorded or not recorded.get("sha256"):
        return OLDER_MANIFEST, None
    out_stat = None
    if out is not None:
        try:
            out_stat = os.stat(out)
        except OSError:
            return OUTPUT_MISSING, None
    try:
        now, _ = identify(inp.fspath, recorded, inp.stat)
    except OSError:
        return INPUT_CHANGED, None
    if now["sha256"] != recorded["sha256"]:
        return INPUT_CHANGED, now
    entry["input"] = now
    if out is not None:
        before = entry.get("output_file")
        if before is None:
            return OUTPUT_CHANGED, now
        if out_stat.st_size < before["size"]:
            return OUTPUT_TRUNCATED, now
        try:
            current, _ = file_record(out, before, out_stat)
        except OSError:
            return OUTPUT_MISSING, now
        if current["sha256"] != before["sha256"]:
            return OUTPUT_CHANGED, now
        entry["output_file"] = current
    return UNCHANGED, now


def check_job(manifest: Manifest | None, job: dict, *, overwrite: bool) -> None:
    """Refuse, before anything is written, to put this job's results where another's are."""
    if manifest is None or overwrite or manifest.job.get("sha256") == job["sha256"]:
        return
    diffs = differences(job.get("config"), manifest.job.get("config")) or [
        f"job fingerprint: {job['sha256'][:12]} here, {str(manifest.job.get('sha256'))[:12]} there"
    ]
    shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
    err = JobMismatchError(
        f"{str(manifest.path.parent)!r} holds the results of another job ({manifest.path.name} "
        f"names {manifest.job.get('schema')!r} {str(manifest.job.get('sha256'))[:12]}): {shown}. "
        "Nothing was written. Pass overwrite=True to recompute every output with this job "
        "(replacing those files), or choose another output folder."
    )
    err.manifest, err.differences = manifest.path, diffs
    raise err


def decide(
    planned: list[tuple[Input, Path | None]],
    manifest: Manifest | None,
    job: dict,
    *,
    overwrite: bool,
) -> list[Decision]:
    """Decide, per input, whether its recorded output can be reused; nothing is written.

    Raises
    ------
    JobMismatchError
        The manifest names another job (and not ``overwrite``).
    OutputExistsError
        No manifest, but outputs this run would write exist (and not ``overwrite``): files of
        an older m1vision or of the user, which no record ties to this job.
    """
    check_job(manifest, job, overwrite=overwrite)
    if overwrite:
        return [Decision(inp, out, True, OVERWRITE) for inp, out in planned]
    if manifest is None:
        existing = []
        folders: dict[str, bool] = {}  # a new output folder: no stat of each output
        for _, out in planned:
            if out is None:
                continue
            folder = os.path.dirname(out)
            there = folders.get(folder)
            if there is None:
                there = folders[folder] = os.path.isdir(folder)
            if there and os.path.exists(out):
                existing.append(out)
        if existing:
            raise OutputExistsError(
                f"{len(existing)} output(s) this run would write exist already (e.g. "
                f"{str(existing[0])!r}), and no {MANIFEST_NAME} says which job made them (an "
                "older m1vision, or files of your own). Nothing was written. Pass "
                "overwrite=True to replace them, or choose another output folder."
            )
        return [Decision(inp, out, True, NEW) for inp, out in planned]
    decisions: list[Decision | None] = []
    later = []  # positions decided from their records (version 3: after the columns)
    columns = manifest.columns
    if columns is not None:  # a version 3 file as read: most inputs decided from its lists
        results = columns.result
        for (inp, out), i in zip(planned, columns.unchanged(planned), strict=True):
            if i is None:
                later.append(len(decisions))
                decisions.append(None)
            elif i < 0:
                reason = INTERRUPTED if out is not None and os.path.lexists(out) else NEW
                decisions.append(Decision(inp, out, True, reason))
            else:
                decisions.append(Decision(inp, out, False, UNCHANGED, results.get(i) or {}))
    else:
        later = range(len(planned))
        decisions = [None] * len(planned)
    items_get = manifest.items.get if later else None
    for pos in later:
        inp, out = planned[pos]
        entry = items_get(inp.key)
        if entry is None:
            reason = INTERRUPTED if out is not None and os.path.lexists(out) else NEW
            decisions[pos] = Decision(inp, out, True, reason)
            continue
        if _unchanged_by_stat(entry, inp.stat, out):  # the usual case of a resume
            if entry.get("kind") != inp.kind:
                entry["kind"] = inp.kind  # kept, so the next collect need not sniff it
                manifest.changed = True
            decisions[pos] = Decision(inp, out, False, UNCHANGED, entry.get("result") or {})
            continue
        records = (entry.get("input"), entry.get("output_file"))
        reason, identity = _check_entry(entry, inp, out)
        if records[0] is not entry.get("input") or records[1] is not entry.get("output_file"):
            manifest.changed = True  # a file hashed again: its fresh stat is worth saving
        if reason == UNCHANGED and entry.get("kind") != inp.kind:
            entry["kind"] = inp.kind  # kept, so the next collect need not sniff it
            manifest.changed = True
        if reason == UNCHANGED:
            decisions[pos] = Decision(inp, out, False, UNCHANGED, entry.get("result") or {})
        else:
            decisions[pos] = Decision(inp, out, True, reason, identity=identity)
    return decisions


def _unchanged_by_stat(entry: dict, st, out) -> bool:
    """What :func:`_check_entry` finds UNCHANGED without hashing, decided from stats alone: an
    input file (``st``: its stat from collecting) and its output whose size and whole stat are
    the ones recorded with their hashes. False sends the entry to :func:`_check_entry`."""
    if st is None or entry.get("status") != "ok":
        return False
    rec = entry.get("input")
    if (
        not rec
        or not rec.get("sha256")
        or "files" in rec
        or rec.get("size") != st.st_size
        or rec.get("stat") != [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    ):
        return False
    if out is None:
        return True
    before = entry.get("output_file")
    if not before:
        return False
    try:
        ost = os.stat(out)
    except OSError:
        return False
    return before.get("size") == ost.st_size and before.get("stat") == [
        ost.st_mtime_ns,
        ost.st_ctime_ns,
        ost.st_ino,
        ost.st_dev,
    ]


def relative_output(output: Path | None, folder: Path) -> str | None:
    """An output's path as the manifest keeps it (relative to the manifest's folder)."""
    if output is None:
        return None
    text, base = str(output), str(folder)
    if text.startswith(base + os.sep) and ".." not in text:  # the usual case, no relpath
        return Path(text[len(base) + 1 :]).as_posix()
    try:
        return Path(os.path.relpath(output, folder)).as_posix()
    except ValueError:  # another drive (Windows)
        return str(output)
