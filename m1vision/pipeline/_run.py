"""Batch runs of a pipeline over files and folders (internal)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from m1vision.errors import (
    ImageReadError,
    InvalidImageError,
    InvalidParameterError,
    OutputExistsError,
)

if TYPE_CHECKING:
    from m1vision.pipeline._core import Pipeline


def _as_path_list(inputs) -> list:
    if isinstance(inputs, str | os.PathLike):
        return [inputs]
    if isinstance(inputs, bytes | Mapping) or not isinstance(inputs, Iterable):
        raise TypeError(
            "inputs must be a path (str or pathlib.Path) of a file or folder, or a list of "
            f"them, got {type(inputs).__name__}."
        )
    items = list(inputs)
    for i, item in enumerate(items):
        if not isinstance(item, str | os.PathLike):
            raise TypeError(
                f"inputs[{i}] must be a path (str or pathlib.Path), got {type(item).__name__}."
            )
    return items


def _strip_image_extension(name: str, extensions) -> str:
    lower = name.lower()
    for ext in extensions:  # longest first: ".nii.gz" before ".gz"-less ".nii"
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


def collect_inputs(inputs, *, exclude=None) -> list[tuple[Path, PurePath]]:
    """List the image files of files and folders, each with its output path stem.

    Parameters
    ----------
    inputs : path or list of paths
        A file (any name: DICOM files often have no extension), or a folder, scanned
        recursively for names ending in one of :data:`m1vision.io.IMAGE_EXTENSIONS` (any
        case, ``.nii.gz`` included). Hidden files and folders (names starting with ".",
        e.g. macOS' ``._x.png``) are left out. Symbolic links to folders are not followed.
    exclude : path, optional
        A folder left out of folder scans (:meth:`Pipeline.run` passes its ``out_dir``).

    Returns
    -------
    list of (pathlib.Path, pathlib.PurePath)
        ``(source, stem)`` in order: each folder's files sorted by relative path, in the order
        the inputs were given. ``stem`` is the path relative to its folder (or the file's name)
        without the image extension: ``scans/sub/a.nii.gz`` in folder ``scans`` gives
        ``sub/a``.

    Raises
    ------
    ImageReadError
        An input does not exist.
    InvalidParameterError
        No image was found (the message lists the extensions looked for), or two inputs have
        the same stem, ignoring case (they would be written to the same output).
    TypeError
        ``inputs`` is not a path or a list of paths.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision.pipeline import collect_inputs
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.png", "a.dcm", "sub/c.nii.gz", "notes.txt", ".hidden.png"]:
    ...     (root / name).parent.mkdir(exist_ok=True); _ = (root / name).write_bytes(b"x")
    >>> [(src.name, str(stem)) for src, stem in collect_inputs(root)]
    [('a.dcm', 'a'), ('b.png', 'b'), ('c.nii.gz', 'sub/c')]
    """
    from m1vision.io import IMAGE_EXTENSIONS

    extensions = sorted((e.lower() for e in IMAGE_EXTENSIONS), key=len, reverse=True)
    exclude = Path(exclude).resolve() if exclude is not None else None
    items = _as_path_list(inputs)
    found: list[tuple[Path, PurePath]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += _scan_folder(path, extensions, exclude)
        elif path.is_file():
            found.append((path, PurePath(_strip_image_extension(path.name, extensions))))
        elif path.exists():
            raise ImageReadError(path, "it is neither a regular file nor a folder.")
        else:
            raise ImageReadError(path, "no such file or folder; check the path.")
    if not found:
        raise InvalidParameterError(
            f"no image files in {', '.join(repr(str(i)) for i in items) or 'an empty list'}; "
            f"folders are scanned for {', '.join(sorted(IMAGE_EXTENSIONS))} (a DICOM file "
            "without an extension must be named directly)."
        )
    seen: dict[str, Path] = {}
    for src, stem in found:
        key = str(stem).casefold()
        if key in seen:
            raise InvalidParameterError(
                f"{str(seen[key])!r} and {str(src)!r} would both be written to the output "
                f"{str(stem)!r} + suffix (names are compared ignoring case, as on macOS); "
                "rename one, or run them into different out_dirs."
            )
        seen[key] = src
    return found


def _scan_folder(folder: Path, extensions, exclude: Path | None) -> list[tuple[Path, PurePath]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".") and (exclude is None or (here / d).resolve() != exclude)
        ]
        rel_dir = here.relative_to(folder)
        for name in filenames:
            if name.startswith("."):
                continue
            lower = name.lower()
            if any(lower.endswith(ext) for ext in extensions):
                rel = rel_dir / name
                stem = PurePath(*rel.parent.parts, _strip_image_extension(name, extensions))
                found.append((rel.parts, folder / rel, stem))
    found.sort(key=lambda t: t[0])
    return [(src, stem) for _, src, stem in found]


def _pixels_2d(image, src: str) -> np.ndarray:
    """The 2-D image of a MedicalImage, or a clear error for a volume."""
    pixels = image.pixels
    if image.is_volume:
        if pixels.shape[0] == 1:
            return pixels[0]
        raise InvalidImageError(
            f"{src!r} is a 3-D volume of {pixels.shape[0]} slices (shape {pixels.shape}); "
            "Pipeline.run writes one 2-D image per input. Process its slices with "
            "`vol = m1vision.io.read_any(path).pixels; [pipeline(vol[k]) for k in "
            "range(len(vol))]`, or save the slices you need as files first."
        )
    return pixels


_REBUILT: dict[str, Pipeline] = {}  # pipelines rebuilt by tasks in this process, by JSON


def _rebuild(pipeline_dict: dict) -> Pipeline:
    """``Pipeline.from_dict``, cached: a task per file must not re-validate every time."""
    key = json.dumps(pipeline_dict, sort_keys=True)
    pipeline = _REBUILT.get(key)
    if pipeline is None:
        from m1vision.pipeline._core import Pipeline

        if len(_REBUILT) > 32:
            _REBUILT.clear()
        pipeline = _REBUILT[key] = Pipeline.from_dict(pipeline_dict)
    return pipeline


def _run_files(
    pipeline_dict: dict, files: list[tuple[str, str]], overwrite: bool, caller_pid: int, token
) -> list[dict]:
    """Task of :meth:`Pipeline.run`: process ``files`` [(input, output)]; never raises.

    Module-level and given the pipeline as a dict, so it pickles to any executor.
    ``token`` only makes the task's arguments unique (Dask caches pure tasks by arguments).
    """
    del token
    if os.getpid() != caller_pid:
        cv2.setNumThreads(1)  # a worker process: the executor already runs files in parallel
    try:
        from m1vision.io import read_any, write_image

        pipeline = _rebuild(pipeline_dict)
    except Exception as exc:  # e.g. a custom step not importable on this worker
        error = f"{type(exc).__name__}: {exc}"
        return [{"status": "failed", "seconds": 0.0, "error": error} for _ in files]
    records = []
    for src, dst in files:
        t0 = time.perf_counter()
        status, error = "ok", None
        try:
            pixels = _pixels_2d(read_any(src), src)
            # OpenCV's fast PNG settings and no fsync: outputs stay atomic (never half-written;
            # a re-run recomputes anything a power cut loses), at a third less CPU per file.
            write_image(
                dst, pipeline(pixels), overwrite=overwrite, png_compression=None, fsync=False
            )
        except OutputExistsError:
            status = "skipped"  # written meanwhile by another run
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        records.append({"status": status, "seconds": time.perf_counter() - t0, "error": error})
    return records


def _executor_name(executor, own: bool) -> str:
    workers = getattr(executor, "_max_workers", None)
    name = type(executor).__name__
    detail = f"max_workers={workers}" if workers else ""
    client = getattr(executor, "_client", None)
    if client is not None:
        with contextlib.suppress(Exception):
            detail = f"scheduler={client.scheduler.address}"
    return f"{name}({detail})" + (" (default)" if own else "")


def _write_report(report: BatchReport, out_dir: Path, started: time.struct_time) -> Path:
    from m1vision._atomic import atomic_write_json

    base = f"batch_report-{time.strftime('%Y%m%dT%H%M%S', started)}"
    for n in range(1, 10_000):
        path = out_dir / (f"{base}.json" if n == 1 else f"{base}-{n}.json")
        try:
            return atomic_write_json(path, report.to_dict())
        except OutputExistsError:
            continue
    raise OutputExistsError(  # pragma: no cover - 10 000 reports in one second
        f"could not find a free report name {base}-N.json in {str(out_dir)!r}."
    )


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One input file of a :class:`BatchReport`."""

    input: str
    output: str
    status: str  # "ok" | "skipped" | "failed"
    seconds: float
    error: str | None = None


@dataclasses.dataclass
class BatchReport:
    """What :meth:`Pipeline.run` did: one :class:`BatchItem` per input, counts, time.

    ``repr(report)`` is the summary line (``BatchReport: 198 ok, 0 skipped, 2 failed in
    3.1 s``); ``str(report)`` adds the failed files and their errors.
    """

    items: list[BatchItem]
    seconds: float
    pipeline: dict
    out_dir: str
    started: str
    executor: str
    path: Path | None = None

    SCHEMA: ClassVar[str] = "m1vision.batch_report"
    VERSION: ClassVar[int] = 1

    def _with(self, status: str) -> list[BatchItem]:
        return [item for item in self.items if item.status == status]

    @property
    def ok(self) -> list[BatchItem]:
        """Items processed and written."""
        return self._with("ok")

    @property
    def skipped(self) -> list[BatchItem]:
        """Items whose output existed already (not recomputed)."""
        return self._with("skipped")

    @property
    def failed(self) -> list[BatchItem]:
        """Items that failed; ``item.error`` says why (``"TypeName: message"``)."""
        return self._with("failed")

    @property
    def counts(self) -> dict[str, int]:
        """``{"ok": n, "skipped": n, "failed": n}``."""
        return {s: len(self._with(s)) for s in ("ok", "skipped", "failed")}

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dict (what is written to :attr:`path`)."""
        return {
            "schema": self.SCHEMA,
            "version": self.VERSION,
            "started": self.started,
            "seconds": round(self.seconds, 6),
            "executor": self.executor,
            "out_dir": self.out_dir,
            "counts": self.counts,
            "pipeline": self.pipeline,
            "items": [
                {**dataclasses.asdict(item), "seconds": round(item.seconds, 6)}
                for item in self.items
            ],
        }

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"BatchReport: {c['ok']} ok, {c['skipped']} skipped, {c['failed']} failed "
            f"in {self.seconds:.1f} s"
        )

    def __str__(self) -> str:
        lines = [repr(self)]
        failed = self.failed
        for item in failed[:20]:
            lines.append(f"  failed {item.input}: {item.error}")
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more (see report.failed)")
        if self.path is not None:
            lines.append(f"  report: {self.path}")
        return "\n".join(lines)
