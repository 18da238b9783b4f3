"""Segmenting folders on the one batch engine (internal).

A segmentation run is a :class:`~m1vision.batch.Job`: inputs are collected by the engine's
input kinds (a DICOM series folder, a NIfTI volume, a multi-frame DICOM object, a picture),
each becomes one label map (``<key>.nii.gz`` with its JSON sidecar, or ``<key>.dcm``, a DICOM
SEG referencing the source series) and, with ``stats=True``, ``<key>.stats.csv`` (the label
statistics over the input's values).

Resume is never stale: the job's fingerprint holds the SHA-256 of the model bytes the
Segmenter loaded (:func:`~m1vision.inference._models.load_model_identified`), every setting
of :meth:`Segmenter.to_config` (mode, window, overlap, blend, TTA, spacing, intensity,
preprocessing, labels) and the output format.

Executors
---------
The default is a thread pool in this process (``workers`` threads, default 1: the model
keeps one device busy; reading and writing of one case overlap the model's work on the
next with 2). Any ``concurrent.futures.Executor`` works: with **Dask distributed**
(``executor=client.get_executor()``), one worker per GPU (e.g. ``dask-cuda``'s
``LocalCUDACluster``, or ``CUDA_VISIBLE_DEVICES`` per worker and ``--nthreads 1``), each
worker loads the model file once: the payload sent to workers holds the model's path and
hash and the settings, not the model, and a per-process cache keyed by the model's hash and
the settings keeps the Segmenter for every later case. The model file must be readable by
the workers (a shared disk) and is refused if its bytes differ from what this process
loaded.

Splitting without a scheduler
-----------------------------
``part=(i, n)`` (``--part i/n``, 1 <= i <= n) keeps the inputs whose key hashes to part
``i`` (the first 8 bytes of the SHA-256 of the key, modulo ``n``): deterministic on every
machine, and a key stays in its part when others are added. Each part writes into
``out_dir/part-i-of-n/`` (its own manifest and report), so parts can run at the same time
on a shared disk; copy the parts' files together when all are done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from m1vision.batch import BatchItem, Job, collect, get_input_kind, input_kinds
from m1vision.batch import run as run_batch
from m1vision.errors import (
    InvalidParameterError,
    ModelLoadError,
    SegReferenceError,
)

FORMATS = {"nifti": ".nii.gz", "seg": ".dcm"}
STATS_SUFFIX = ".stats.csv"

_CACHE: dict = {}  # per process: identity -> Segmenter (a Dask worker loads a model once)
_CACHE_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True, kw_only=True)
class SegmentationItem(BatchItem):
    """A :class:`~m1vision.batch.BatchItem` of a segmentation run, plus what was found.

    Attributes
    ----------
    labels : dict or None
        ``{name: voxels}`` of the labels in the result (``None`` when failed).
    stats : str or None
        The statistics CSV written (``stats=True``).
    """

    labels: dict | None = None
    stats: str | None = None


class _Remote:
    """What a worker needs to segment: the model file, its hash and the settings (pickles
    small); the Segmenter itself stays in the process that made it."""

    def __init__(self, segmenter, fmt: str, stats: bool):
        self.model_path = None if segmenter.model_path is None else str(segmenter.model_path)
        self.model_sha256 = segmenter.model_sha256
        self.settings = segmenter._settings
        self.key = segmenter.identity()
        self.format = fmt
        self.stats = stats
        self._local = segmenter

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_local"] = None
        return state

    def segmenter(self):
        if self._local is not None:
            return self._local
        with _CACHE_LOCK:
            cached = _CACHE.get(self.key)
            if cached is not None:
                return cached
            if self.model_path is None:
                raise ModelLoadError(
                    "this Segmenter was made from a model object, which workers in other "
                    "processes cannot load. Fix: save it (model.save('model.keras')) and make "
                    "the Segmenter from the file's path."
                )
            from m1vision.inference._segmenter import Segmenter

            seg = Segmenter(self.model_path, **self.settings)
            if seg.model_sha256 != self.model_sha256:
                raise ModelLoadError(
                    f"the model file {self.model_path!r} on this worker is not the one the run "
                    f"was started with (SHA-256 {seg.model_sha256} here, "
                    f"{self.model_sha256} there); give every worker the same file."
                )
            _CACHE[self.key] = seg
            return seg


def stats_path(output: Path) -> Path:
    """``<name>.stats.csv`` beside a label map output."""
    name = output.name
    for suffix in (".nii.gz", ".nii", ".dcm"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return output.with_name(name + STATS_SUFFIX)


def segment_input_kinds() -> list:
    """The input kinds a segmentation run accepts, in the order they are tried: the volume
    kinds (:func:`m1vision.volume.volume_input_kinds`), the registered ones, ``"image"``."""
    from m1vision.volume import volume_input_kinds

    return input_kinds(volume_input_kinds())


def _segment_one(seg, remote: _Remote, src: str, kind_name: str, out: str) -> dict:
    from m1vision.labels import label_stats, write_labels

    source = Path(src)
    if remote.format == "seg" and not source.is_dir():
        raise SegReferenceError(
            f"cannot write a DICOM SEG for {src!r}: a SEG references the single-slice DICOM "
            "series it segments, and this input is no series folder (a NIfTI file or a "
            "multi-frame object); the other inputs go on. Fix: segment such inputs with "
            "format='nifti' into another output folder."
        )
    volume = get_input_kind(kind_name, segment_input_kinds()).read(source)
    result = seg.segment(volume)
    write_labels(out, result, source=source if remote.format == "seg" else None, overwrite=True)
    record = {
        "labels": {
            entry["name"]: int((result.pixels == value).sum())
            for value, entry in result.metadata["labels"].items()
        }
    }
    if remote.stats:
        path = stats_path(Path(out))
        label_stats(result, volume).to_csv(path, overwrite=True)
        record["stats"] = str(path)
    return record


def _segment_chunk(remote: _Remote, tasks: list[tuple]) -> list[dict]:
    """The engine's worker: segment each input of the chunk, write its label map."""
    records = []
    try:
        seg = remote.segmenter()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        return [{"status": "failed", "seconds": 0.0, "error": error} for _ in tasks]
    for _key, src, kind_name, out in tasks:
        start = time.perf_counter()
        try:
            extra = _segment_one(seg, remote, src, kind_name, out)
            record = {"status": "ok", "error": None, **extra}
        except Exception as exc:  # one bad input is recorded, the others go on
            record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        records.append({**record, "seconds": time.perf_counter() - start})
    return records


class SegmentationJob(Job):
    """A :class:`Segmenter` over a folder, as a job of the batch engine."""

    schema = "m1vision.segmentation_run"
    item_type = SegmentationItem
    name = "segment"

    def __init__(self, segmenter, fmt: str, stats: bool, workers: int):
        self.segmenter = segmenter
        self.format = fmt
        self.stats = stats
        self.workers = workers

    def config(self) -> dict:
        from m1vision.inference._folder import _model_identity

        return {
            "model": _model_identity(self.segmenter),
            "segmenter": self.segmenter.to_config(),
            "format": self.format,
            "stats": self.stats,
        }

    def input_kinds(self) -> list:
        return segment_input_kinds()

    def output_path(self, inp, out_dir: Path):
        kind = get_input_kind(inp.kind, self.input_kinds())
        return out_dir / (kind.output_stem(inp.key) + FORMATS[self.format])

    def worker(self):
        return _segment_chunk, _Remote(self.segmenter, self.format, self.stats)

    def processes_ok(self) -> bool:
        return False

    def default_executor(self, n_todo: int):
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="m1vision-segment")
        return pool, f"ThreadPoolExecutor(max_workers={self.workers}) in this process"


def parse_part(part) -> tuple[int, int] | None:
    """``"i/n"`` or ``(i, n)`` checked (1 <= i <= n), or None."""
    if part is None:
        return None
    text = part
    if isinstance(part, str):
        pieces = part.split("/")
        try:
            part = tuple(int(p) for p in pieces)
        except ValueError:
            part = ()
    ok = (
        isinstance(part, tuple | list)
        and len(part) == 2
        and all(isinstance(v, int) for v in part)
        and 1 <= part[0] <= part[1]
    )
    if not ok:
        raise InvalidParameterError(
            f"part must be 'i/n' or (i, n) with 1 <= i <= n (this machine's share of n), got "
            f"{text!r}; e.g. part='2/4' on the second of four machines."
        )
    return int(part[0]), int(part[1])


def in_part(key: str, part: tuple[int, int]) -> bool:
    """Does the input key belong to part ``i`` of ``n`` (by its hash)?"""
    i, n = part
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n == i - 1


def segment_folder(
    segmenter,
    inputs,
    out_dir,
    *,
    format: str = "nifti",
    stats: bool = False,
    executor=None,
    workers: int | None = None,
    part=None,
    overwrite: bool = False,
    progress: bool = True,
):
    """Segment every input under ``inputs`` into ``out_dir`` on the batch engine, resumably.

    Parameters
    ----------
    segmenter : Segmenter
    inputs : path or list of paths
        DICOM series folders, NIfTI files, multi-frame (Enhanced) DICOM files, pictures;
        folders are scanned recursively.
    out_dir : path
        Label maps, the manifest and the report go here (``part``: a subfolder).
    format : {"nifti", "seg"}
        ``<key>.nii.gz`` plus its sidecar, or ``<key>.dcm`` (DICOM SEG referencing the
        source series; series folders only, other inputs are recorded as failed).
    stats : bool
        Also write ``<key>.stats.csv`` (:func:`m1vision.labels.label_stats` over the input).
    executor : concurrent.futures.Executor, optional
        E.g. a Dask ``client.get_executor()``; default ``workers`` threads in this process.
    workers : int, optional
        Threads of the default executor (default 1).
    part : "i/n" or (i, n), optional
        This machine's share of the inputs (see the module's notes).
    overwrite : bool
        Recompute everything, even over another job's results.
    progress : bool
        Show a progress bar.

    Returns
    -------
    m1vision.batch.BatchReport
        One :class:`SegmentationItem` per input.
    """
    if format not in FORMATS:
        raise InvalidParameterError(f"format must be 'nifti' or 'seg', got {format!r}.")
    from m1vision._checks import check_bool, check_int

    stats = check_bool(stats, name="stats")

    workers = 1 if workers is None else check_int(workers, name="workers", minimum=1)
    split = parse_part(part)
    out = Path(out_dir).absolute()
    collected = None
    if split is not None:
        out = out / f"part-{split[0]}-of-{split[1]}"
        everything = collect(inputs, exclude=out.parent, kinds=segment_input_kinds())
        collected = [inp for inp in everything if in_part(inp.key, split)]
    job = SegmentationJob(segmenter, format, stats, workers)
    return run_batch(
        job,
        inputs,
        out,
        executor=executor,
        overwrite=overwrite,
        progress_bar=progress,
        chunksize=1,
        collected=collected,
    )
