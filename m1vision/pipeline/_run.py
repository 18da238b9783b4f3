"""Batch runs of a pipeline (internal): the engine's job for :meth:`Pipeline.run`.

The flow itself (collect, plan, decide, execute, report) is :mod:`m1vision.batch`'s; this
module says what a pipeline run does with one input, and keeps :func:`collect_inputs`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from m1vision.batch import BatchItem, BatchReport, Job, collect, get_input_kind
from m1vision.errors import InvalidParameterError

if TYPE_CHECKING:
    from m1vision.pipeline._core import Pipeline

__all__ = ["BatchItem", "BatchReport", "PipelineJob", "collect_inputs"]


def collect_inputs(inputs, *, exclude=None) -> list[tuple[Path, PurePath]]:
    """List the image files of files and folders, each with its output path stem.

    The engine's :func:`m1vision.batch.collect`, as ``(source, stem)`` pairs.

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
        ``sub/a``. (The input key, with the extension, is :attr:`m1vision.batch.Input.key`.)

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
    found = [
        (inp.path, PurePath(get_input_kind(inp.kind).output_stem(inp.key)))
        for inp in collect(inputs, exclude=exclude)
    ]
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


_REBUILT: dict[str, Pipeline] = {}  # pipelines rebuilt by tasks in this process, by JSON


def _rebuild(pipeline_dict: dict) -> Pipeline:
    """``Pipeline.from_dict``, cached: a task per chunk must not re-validate every time."""
    key = json.dumps(pipeline_dict, sort_keys=True)
    pipeline = _REBUILT.get(key)
    if pipeline is None:
        from m1vision.pipeline._core import Pipeline

        if len(_REBUILT) > 32:
            _REBUILT.clear()
        pipeline = _REBUILT[key] = Pipeline.from_dict(pipeline_dict)
    return pipeline


def _run_files(pipeline_dict: dict, tasks: list[tuple]) -> list[dict]:
    """The worker of :class:`PipelineJob`: read, apply, write each input; never raises.

    Module-level and given the pipeline as a dict, so it pickles to any executor.
    """
    try:
        pipeline = _rebuild(pipeline_dict)
    except Exception as exc:  # e.g. a custom step not importable on this worker
        error = f"{type(exc).__name__}: {exc}"
        return [{"status": "failed", "seconds": 0.0, "error": error} for _ in tasks]
    records = []
    for _key, src, kind_name, dst in tasks:
        t0 = time.perf_counter()
        status, error = "ok", None
        try:
            kind = get_input_kind(kind_name)
            data = kind.read(Path(src))
            kind.write(Path(dst), kind.apply(pipeline, data, src), data)
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        records.append({"status": status, "seconds": time.perf_counter() - t0, "error": error})
    return records


class PipelineJob(Job):
    """The engine's job for :meth:`Pipeline.run`: one output image per input.

    Its fingerprint is the pipeline's dict and the output suffix: another pipeline (or the
    same with another parameter, or another suffix) is another job.
    """

    schema = "m1vision.pipeline_run"
    name = "Pipeline.run"

    def __init__(self, pipeline: Pipeline, suffix: str):
        self.pipeline = pipeline
        self.suffix = suffix

    def config(self) -> dict:
        return {"pipeline": self.pipeline.to_dict(), "suffix": self.suffix}

    def output_path(self, inp, out_dir: Path) -> Path:
        kind = get_input_kind(inp.kind)
        return out_dir / (kind.output_stem(inp.key) + (kind.output_suffix or self.suffix))

    def worker(self):
        return _run_files, self.pipeline.to_dict()

    def processes_ok(self) -> bool:
        if sys.platform.startswith("linux"):
            return True  # the default pool forks: workers inherit every registered step
        # spawned workers import the steps' modules: a step defined in a notebook or script
        # (module __main__) would be unknown there, so threads run it
        return all(type(step).__module__ != "__main__" for step in self.pipeline)
