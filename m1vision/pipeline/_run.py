"""Batch runs of a pipeline (internal): the engine's job for :meth:`Pipeline.run`.

The flow itself (collect, plan, decide, execute, report) is :mod:`m1vision.batch`'s; this
module holds the rest of the verb: the run's checks (:meth:`PipelineJob.plan`), the input
kinds it accepts (:func:`pipeline_input_kinds`), what it does with one input, and
:func:`collect_inputs`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from m1vision._checks import check_path
from m1vision.batch import Job, collect, get_input_kind, input_kinds
from m1vision.batch._inputs import as_path_list
from m1vision.errors import InvalidParameterError, PipelineConfigError

if TYPE_CHECKING:
    from m1vision.pipeline._core import Pipeline

__all__ = ["WRITE_SUFFIXES", "PipelineJob", "collect_inputs", "pipeline_input_kinds"]

#: The output suffixes :meth:`Pipeline.run` writes (those :func:`m1vision.io.write_image` writes).
WRITE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def pipeline_input_kinds() -> list:
    """The input kinds :meth:`Pipeline.run` accepts, in the order they are tried: the volume
    kinds (:func:`m1vision.volume.volume_input_kinds`), the registered ones, ``"image"``."""
    from m1vision.volume import volume_input_kinds

    return input_kinds(volume_input_kinds())


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
    kinds = pipeline_input_kinds()
    found = [
        (inp.path, PurePath(get_input_kind(inp.kind, kinds).output_stem(inp.key)))
        for inp in collect(inputs, exclude=exclude, kinds=kinds)
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


def _run_files(payload: dict, tasks: list[tuple]) -> list[dict]:
    """The worker of :class:`PipelineJob`: read, apply, write each input; never raises.

    Module-level and given the pipeline as a dict, so it pickles to any executor. The
    modules defining its steps are imported first (a spawned worker, as on macOS, starts
    with none of them).
    """
    try:
        for module in payload["modules"]:
            if module not in sys.modules:
                try:
                    importlib.import_module(module)
                except ImportError as exc:
                    raise PipelineConfigError(
                        f"the module {module!r} that defines steps of this pipeline cannot be "
                        f"imported on this worker ({type(exc).__name__}: {exc}); install it "
                        "where the workers run, or run with threads (executor="
                        "concurrent.futures.ThreadPoolExecutor())."
                    ) from exc
        pipeline = _rebuild(payload["pipeline"])
    except Exception as exc:  # e.g. a custom step not importable on this worker
        error = f"{type(exc).__name__}: {exc}"
        return [{"status": "failed", "seconds": 0.0, "error": error} for _ in tasks]
    records = []
    kinds = pipeline_input_kinds()
    for _key, src, kind_name, dst in tasks:
        t0 = time.perf_counter()
        status, error = "ok", None
        try:
            kind = get_input_kind(kind_name, kinds)
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

    @classmethod
    def plan(cls, pipeline: Pipeline, inputs, out_dir, *, suffix: str):
        """Check a run's arguments; return the job and the absolute ``out_dir``."""
        if not isinstance(suffix, str) or not suffix.lower().endswith(WRITE_SUFFIXES):
            raise InvalidParameterError(
                f"suffix must end in an extension write_image writes "
                f"({', '.join(WRITE_SUFFIXES)}), e.g. '.png' or '_edges.png'; got {suffix!r}."
            )
        if "/" in suffix or "\\" in suffix:
            raise InvalidParameterError(f"suffix must not hold a path separator, got {suffix!r}.")
        if pipeline.output_kind() == "float32" and not suffix.lower().endswith((".tif", ".tiff")):
            raise PipelineConfigError(
                f"this pipeline returns float32 (its last converting step is "
                f"{pipeline._last_converting_step()}), which {suffix!r} cannot hold; use "
                "suffix='.tif', or end the pipeline with a step that returns 8 bits (e.g. "
                "ToUint8())."
            )
        out_dir = Path(check_path(out_dir, name="out_dir")).absolute()
        if out_dir.exists() and not out_dir.is_dir():
            raise InvalidParameterError(f"out_dir {str(out_dir)!r} exists and is not a folder.")
        for item in as_path_list(inputs):
            if Path(item).is_dir() and Path(item).resolve() == out_dir.resolve():
                raise InvalidParameterError(
                    f"out_dir is the input folder {str(out_dir)!r}: outputs would mix with the "
                    "inputs (and be read as inputs next time); choose another out_dir."
                )
        return cls(pipeline, suffix), out_dir

    def config(self) -> dict:
        return {"pipeline": self.pipeline.to_dict(), "suffix": self.suffix}

    def input_kinds(self) -> list:
        return pipeline_input_kinds()

    def output_path(self, inp, out_dir: Path) -> Path:
        kind = get_input_kind(inp.kind, self.input_kinds())
        return out_dir / (kind.output_stem(inp.key) + (kind.output_suffix or self.suffix))

    def output_paths(self, inputs, out_dir: Path) -> list[str]:
        """:meth:`output_path` of each input, as str, joined as text where that is what
        :class:`~pathlib.Path` would make (a relative ``/`` path of plain parts)."""
        kinds = self.input_kinds()
        by_name = {kind.name: kind for kind in kinds}
        base = os.path.join(os.fspath(out_dir), "")
        plain = os.sep == "/"
        paths = []
        for inp in inputs:
            kind = by_name.get(inp.kind) or get_input_kind(inp.kind, kinds)
            rel = kind.output_stem(inp.key) + (kind.output_suffix or self.suffix)
            if plain and rel[:1] not in ("/", ".", "") and "//" not in rel and "/." not in rel:
                paths.append(base + rel)
            else:
                paths.append(os.fspath(Path(out_dir) / rel))
        return paths

    def worker(self):
        modules = sorted(
            {type(step).__module__ for step in self.pipeline}
            - {"__main__", "m1vision.pipeline", "m1vision.pipeline._steps"}
        )
        return _run_files, {"pipeline": self.pipeline.to_dict(), "modules": modules}

    def worker_state(self) -> tuple:
        from m1vision.pipeline._steps import _REGISTRY

        return tuple((name, id(cls)) for name, cls in sorted(_REGISTRY.items()))

    def processes_ok(self) -> bool:
        if sys.platform.startswith("linux"):
            return True  # the default pool forks: workers inherit every registered step
        # spawned workers import the steps' modules: a step defined in a notebook or script
        # (module __main__) would be unknown there, so threads run it
        return all(type(step).__module__ != "__main__" for step in self.pipeline)
