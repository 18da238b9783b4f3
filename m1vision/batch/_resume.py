"""Where resume is decided (internal): the manifest beside the outputs, and what is done.

An output is reused only when the manifest says it was made by the same job (the job's
fingerprint) from the same input (size + mtime as a fast check; the content's SHA-256 when
they disagree). Everything else is recomputed, with the reason in the report, or, where a
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
from m1vision.batch._inputs import Input
from m1vision.errors import JobMismatchError, OutputExistsError

#: The manifest's file name, beside the outputs of a run (in its ``out_dir``).
MANIFEST_NAME = "m1vision-manifest.json"
MANIFEST_SCHEMA = "m1vision.batch_manifest"
MANIFEST_VERSION = 1

# Why an input is processed, or not (BatchItem.reason).
NEW = "new"
UNCHANGED = "unchanged"
INPUT_CHANGED = "input changed"
FAILED_BEFORE = "failed before"
OUTPUT_MISSING = "output missing"
INTERRUPTED = "interrupted"
OVERWRITE = "overwrite"
REASONS = (NEW, UNCHANGED, INPUT_CHANGED, FAILED_BEFORE, OUTPUT_MISSING, INTERRUPTED, OVERWRITE)

_CHUNK = 1 << 20


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, as hex (for model files in a job's fingerprint too).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision.batch import file_sha256
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _folder_files(path: Path) -> list[Path]:
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.relative_to(path).parts)


def input_stat(path) -> dict:
    """The fast part of an input's fingerprint: ``{"size", "mtime_ns"}``.

    For a folder input (a DICOM series): the total size and the newest mtime of its files.
    """
    path = Path(path)
    if path.is_dir():
        stats = [p.stat() for p in _folder_files(path)]
        return {
            "size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        }
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def input_sha256(path) -> str:
    """The content part of an input's fingerprint (a folder: its files' names and bytes)."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    h = hashlib.sha256()
    for p in _folder_files(path):
        h.update(p.relative_to(path).as_posix().encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


def input_fingerprint(path) -> dict:
    """``{"size", "mtime_ns", "sha256"}`` of an input file or folder."""
    return {**input_stat(path), "sha256": input_sha256(path)}


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


class Manifest:
    """The record of what a job made in a folder: ``m1vision-manifest.json``.

    Format (JSON, written atomically, replaced as the run goes)::

        {"schema": "m1vision.batch_manifest", "version": 1,
         "job": {"schema": ..., "sha256": ..., "config": {...}},   # Job.fingerprint()
         "updated": "2026-01-01T00:00:00Z",
         "items": {"<input key>": {"input": {"size", "mtime_ns"},  # + "sha256" (older)
                                   "output": "<path relative to the manifest's folder>" | null,
                                   "status": "ok" | "failed", "error": str | null,
                                   "result": {...}}}}                # the job's extra fields

    The manifest is written (naming the job, with no items) before any output is, so a
    folder's files were always made by the job it names.
    """

    def __init__(self, path: Path, job: dict, items: dict | None = None):
        self.path = Path(path)
        self.job = job
        self.items: dict[str, dict] = dict(items or {})

    @classmethod
    def load(cls, path) -> Manifest | None:
        """Read a manifest; None where there is none."""
        path = Path(path)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise OutputExistsError(
                f"{str(path)!r} cannot be read as a manifest ({type(exc).__name__}: {exc}); "
                "pass overwrite=True to start a new one, or choose another out_dir."
            ) from None
        check_versioned(
            data,
            schema=MANIFEST_SCHEMA,
            versions=(MANIFEST_VERSION,),
            source=repr(str(path)),
            error=OutputExistsError,
        )
        return cls(path, data.get("job", {}), data.get("items", {}))

    def save(self) -> Path:
        """Write the manifest atomically (replacing the previous one)."""
        body = {
            "job": self.job,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "items": self.items,
        }
        # One item per line: compact (it is rewritten while a run goes on), still diffable.
        items = ",\n".join(
            f"  {json.dumps(key)}: {json.dumps(entry, separators=(',', ':'))}"
            for key, entry in sorted(self.items.items())
        )
        head = json.dumps(versioned(MANIFEST_SCHEMA, MANIFEST_VERSION, body | {"items": {}}))
        text = (
            head[: -len('"items": {}}')] + '"items": {\n' + items + ("\n" if items else "") + "}}\n"
        )
        return atomic_write_bytes(self.path, text.encode("utf-8"), overwrite=True, fsync=False)

    def record(self, key: str, *, fingerprint: dict, output: str | None, result: dict) -> None:
        """Keep what a task did for ``key`` (status, error and the job's extra fields)."""
        extra = {k: v for k, v in result.items() if k not in ("status", "error", "seconds")}
        self.items[key] = {
            "input": fingerprint,
            "output": output,
            "status": result["status"],
            "error": result.get("error"),
            "result": extra,
        }


@dataclass
class Decision:
    """What the engine does with one input: ``todo`` or not, and why."""

    input: Input
    output: Path | None
    todo: bool
    reason: str
    result: dict | None = None  # a skipped input's recorded extra fields


def _same_input(entry: dict, path: Path) -> bool:
    recorded = entry.get("input") or {}
    try:
        now = input_stat(path)
    except OSError:
        return False
    if recorded.get("size") == now["size"] and recorded.get("mtime_ns") == now["mtime_ns"]:
        return True
    if recorded.get("size") != now["size"]:
        return False
    # same size, another mtime (a copy, a touch, a checkout): the content decides where the
    # manifest holds a hash (older manifests); runs record size and mtime only (no second
    # read of every input), so the input is recomputed: never stale, at the cost of a redo
    if not recorded.get("sha256"):
        return False
    same = recorded.get("sha256") == input_sha256(path)
    if same:
        recorded["mtime_ns"] = now["mtime_ns"]  # the fast check holds next time
    return same


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
        existing = [
            out
            for _, out in planned
            if out is not None and out.parent.exists() and out.exists()  # a new folder: no stat
        ]
        if existing:
            raise OutputExistsError(
                f"{len(existing)} output(s) this run would write exist already (e.g. "
                f"{str(existing[0])!r}), and no {MANIFEST_NAME} says which job made them (an "
                "older m1vision, or files of your own). Nothing was written. Pass "
                "overwrite=True to replace them, or choose another output folder."
            )
        return [Decision(inp, out, True, NEW) for inp, out in planned]
    decisions = []
    for inp, out in planned:
        entry = manifest.items.get(inp.key)
        if entry is None:
            reason = INTERRUPTED if out is not None and out.exists() else NEW
            decisions.append(Decision(inp, out, True, reason))
        elif entry.get("status") != "ok":
            decisions.append(Decision(inp, out, True, FAILED_BEFORE))
        elif out is not None and not out.exists():
            decisions.append(Decision(inp, out, True, OUTPUT_MISSING))
        elif not _same_input(entry, inp.path):
            decisions.append(Decision(inp, out, True, INPUT_CHANGED))
        else:
            decisions.append(Decision(inp, out, False, UNCHANGED, entry.get("result") or {}))
    return decisions


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
