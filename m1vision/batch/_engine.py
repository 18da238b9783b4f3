"""The batch engine (internal): collect -> plan -> decide -> execute -> report.

:func:`run` is the one flow every batch job goes through; :class:`Job` is what a kind of
batch (a pipeline run, a prediction run, a volume run) defines.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import (
    Executor,
    Future,
    as_completed,
)
from pathlib import Path
from typing import Any, ClassVar

from m1vision._atomic import check_out_folder, folder_lock
from m1vision._checks import check_int
from m1vision._hashing import file_record, identify
from m1vision._progress import progress
from m1vision.batch._executors import _chunksize, default_executor, executor_name
from m1vision.batch._inputs import Input, collect
from m1vision.batch._report import BatchItem, BatchReport, write_report
from m1vision.batch._resume import (
    MANIFEST_NAME,
    Manifest,
    canonical_sha256,
    decide,
    relative_output,
)
from m1vision.errors import InvalidParameterError, InvalidTypeError

# What the engine fills in every report item (a worker's record cannot override them).
_BASE_FIELDS = frozenset(("key", "input", "output", "reason"))

# How often (seconds) the manifest is saved while a run goes on (and once at its end).
_SAVE_EVERY = 1.0


class Job:
    """What a batch does with each input; subclass it and pass it to :func:`run`.

    Override :meth:`config` (what defines the results), :meth:`output_path` (where an
    input's result goes) and :meth:`worker` (the function that processes a chunk of inputs
    on an executor). Optionally :meth:`fingerprint` (e.g. add a model file's hash),
    :meth:`default_executor` and :meth:`finish`.

    Attributes
    ----------
    schema : str
        The job's kind, e.g. ``"m1vision.pipeline_run"``; part of its fingerprint.
    item_type : type
        The report's item class: :class:`BatchItem` or a subclass with more fields.
    name : str
        The progress bar's label.
    """

    schema: ClassVar[str] = "m1vision.job"
    item_type: ClassVar[type[BatchItem]] = BatchItem
    name: ClassVar[str] = "batch"

    def config(self) -> dict:  # pragma: no cover - abstract
        """What defines the results, JSON-safe (a pipeline's dict, a model's hash...)."""
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """The job's identity in manifests: ``{"schema", "sha256", "config"}``.

        ``sha256`` is over the canonical JSON of schema and :meth:`config`: equal configs,
        equal jobs. Override :meth:`config` to add what else makes results differ (the
        SHA-256 of the model bytes loaded and its preprocessing, for a prediction job).
        """
        config = self.config()
        return {
            "schema": self.schema,
            "sha256": canonical_sha256({"schema": self.schema, "config": config}),
            "config": config,
        }

    def output_path(self, inp: Input, out_dir: Path) -> Path | None:  # pragma: no cover
        """The absolute output path of ``inp`` (None: the job writes no file per input)."""
        raise NotImplementedError

    def output_paths(self, inputs: list[Input], out_dir: Path) -> list[str | None]:
        """The absolute output path of each input, as a str (None: no file): by default
        :meth:`output_path` of each. Override it to plan thousands of inputs without building
        a :class:`~pathlib.Path` for each (a resume's planning is most of its time)."""
        paths = []
        for inp in inputs:
            out = self.output_path(inp, out_dir)
            paths.append(None if out is None else os.fspath(out))
        return paths

    def worker(self) -> tuple[Callable[[Any, list[tuple]], list[dict]], Any]:  # pragma: no cover
        """``(function, payload)``: ``function(payload, tasks)`` runs on the executor.

        ``tasks`` is a list of ``(key, input path, kind name, output path or None)``; it
        returns one dict per task: ``{"status": "ok" | "failed", "seconds": float,
        "error": str | None, **extra}`` (``extra``: the item type's additional fields,
        JSON-safe; they are kept in the manifest). It must not raise for one bad input. For
        a process pool or a cluster, ``function`` is module-level and ``payload`` pickles.
        """
        raise NotImplementedError

    def input_kinds(self) -> list:
        """The input kinds this job accepts, in the order they are tried (default: the
        registered kinds, then ``"image"``; see :func:`m1vision.batch.input_kinds`)."""
        from m1vision.batch._inputs import input_kinds

        return input_kinds()

    def processes_ok(self) -> bool:
        """Can the default executor run this job in worker processes?"""
        return True

    def worker_state(self) -> tuple:
        """What forked workers must have seen (e.g. the registered steps); a change starts a
        new pool instead of reusing the warm one."""
        return ()

    def default_executor(self, n_todo: int) -> tuple[Executor, str]:
        """The executor used when none is given, and its description for the report."""
        return default_executor(n_todo, processes=self.processes_ok(), state=self.worker_state())

    def finish(self, report: BatchReport) -> None:
        """Called after the run, before the report is written (e.g. an aggregate file)."""


def _work(
    function, payload, tasks: list[tuple], caller_pid: int, token: str, known=None
) -> list[dict]:
    """Run on the executor: identify each input, run the job's function, identify each
    output; never raises.

    Each input is stat'ed and hashed before the function reads it (``known``: identity
    records computed while deciding, reused while the file's stat holds), each output written
    is stat'ed and hashed after: the manifest keeps both (see :func:`m1vision.batch.decide`).

    Module-level, so it pickles to any executor. ``token`` only makes the task's arguments
    unique (Dask caches pure tasks by their arguments).
    """
    del token
    if os.getpid() != caller_pid and "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)  # a worker process: files already run in parallel
    prints = []
    for i, (_key, src, _kind, _out) in enumerate(tasks):
        try:
            prints.append(identify(src, known[i] if known else None)[0])
        except OSError:
            prints.append(None)
    try:
        results = function(payload, tasks)
    except Exception as exc:  # e.g. a custom step not importable on this worker
        error = f"{type(exc).__name__}: {exc}"
        results = [{"status": "failed", "seconds": 0.0, "error": error} for _ in tasks]
    for result, fp, task in zip(results, prints, tasks, strict=True):
        result["_input"] = fp
        out = task[3]
        if out is not None and result["status"] == "ok":
            try:
                result["_output"] = file_record(out)[0]
            except OSError:
                result["_output"] = None  # recorded without it: recomputed next time
    return results


def plan(job: Job, inputs: list[Input], out_dir: Path) -> list[tuple[Input, Path | None]]:
    """Each input with its output path; two inputs writing one output is an error.

    Outputs are compared ignoring case, as macOS' file system does.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from m1vision.batch import collect, plan
    >>> from m1vision.io import write_image
    >>> from m1vision.pipeline import GaussianBlur, Pipeline
    >>> from m1vision.pipeline._run import PipelineJob
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("a.png", "B.png"):
    ...     _ = write_image(folder / name, np.zeros((8, 8), np.uint8))
    >>> job = PipelineJob(Pipeline([GaussianBlur(ksize=3)]), "_blur.png")
    >>> [(inp.key, out.name) for inp, out in plan(job, collect(folder), folder / "out")]
    [('B.png', 'B_blur.png'), ('a.png', 'a_blur.png')]
    """
    return [(inp, None if out is None else Path(out)) for inp, out in _plan(job, inputs, out_dir)]


def _plan(job: Job, inputs: list[Input], out_dir: Path) -> list[tuple[Input, str | None]]:
    """:func:`plan` with the output paths as str (:meth:`Job.output_paths`)."""
    outputs = job.output_paths(inputs, out_dir)
    if len(outputs) != len(inputs):
        raise InvalidParameterError(  # pragma: no cover - a job's own bug
            f"{type(job).__name__}.output_paths returned {len(outputs)} paths for "
            f"{len(inputs)} inputs; it must return one (or None) per input."
        )
    sources = {inp.fspath for inp in inputs}
    seen: dict[str, Input] = {}
    for inp, out in zip(inputs, outputs, strict=True):
        if out is None:
            continue
        if out in sources:
            raise InvalidParameterError(
                f"the output for {inp.fspath!r} would be {out!r}, which is an input; "
                "choose another out_dir or suffix."
            )
        folded = out.casefold()
        if folded in seen:
            raise InvalidParameterError(
                f"{seen[folded].fspath!r} and {inp.fspath!r} would both be written to "
                f"the output {out!r} (names are compared ignoring case, as on macOS); "
                "rename one, or run them into different out_dirs."
            )
        seen[folded] = inp
    return list(zip(inputs, outputs, strict=True))


def run(
    job: Job,
    inputs,
    out_dir,
    *,
    executor: Executor | None = None,
    overwrite: bool = False,
    progress_bar: bool = True,
    chunksize: int | None = None,
    manifest_path=None,
    collected: list[Input] | None = None,
) -> BatchReport:
    """Run ``job`` over ``inputs`` into ``out_dir``: the one flow of every batch.

    1. **collect** the inputs (:func:`collect`; or pass ``collected``),
    2. **plan** each input's output (:meth:`Job.output_path`; collisions are errors),
    3. **decide** what is done from the manifest (:func:`m1vision.batch.decide`), holding the
       output folder's lock from here on (another run into it:
       :class:`~m1vision.errors.OutputFolderBusyError` at once): reuse only outputs of the
       same job from an input of the same content that are still the files written; another
       job's folder is refused before anything is written
       (:class:`~m1vision.errors.JobMismatchError`),
    4. **execute** the rest in chunks on ``executor`` (default :meth:`Job.default_executor`),
       recording each result in the manifest (saved atomically, at least every second),
    5. **report**: a :class:`BatchReport` (also written as ``batch_report-<UTC>.json``).

    Parameters
    ----------
    job : Job
    inputs : path or list of paths
    out_dir : path
        Where outputs, the manifest (:data:`MANIFEST_NAME`) and the report go.
    executor : concurrent.futures.Executor, optional
        Thread pool, process pool, Dask ``client.get_executor()``...; left running.
    overwrite : bool
        Recompute every input (and start a new manifest), even over another job's results.
    progress_bar : bool
        Show :func:`progress`.
    chunksize : int, optional
        Inputs per task (default: about 16 tasks per worker, at most 16 inputs each).
    manifest_path : path, optional
        Default ``out_dir / MANIFEST_NAME``.
    collected : list of Input, optional
        Inputs collected already (then ``inputs`` is not scanned again).

    Examples
    --------
    A pipeline over a folder, then again: the second run reuses every output.

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from m1vision.batch import run
    >>> from m1vision.io import write_image
    >>> from m1vision.pipeline import GaussianBlur, Pipeline
    >>> from m1vision.pipeline._run import PipelineJob
    >>> folder = Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     _ = write_image(folder / "in" / f"img{i}.png", np.full((32, 32), 40 * i, np.uint8))
    >>> job = PipelineJob(Pipeline([GaussianBlur(ksize=3)]), ".png")
    >>> run(job, folder / "in", folder / "out", progress_bar=False).counts
    {'ok': 3, 'skipped': 0, 'failed': 0}
    >>> again = run(job, folder / "in", folder / "out", progress_bar=False)
    >>> again.counts, sorted({item.reason for item in again.items})
    ({'ok': 0, 'skipped': 3, 'failed': 0}, ['unchanged'])
    """
    if chunksize is not None:
        chunksize = check_int(chunksize, name="chunksize", minimum=1)
    if executor is not None and not isinstance(executor, Executor):
        raise InvalidTypeError(
            "executor must be a concurrent.futures.Executor (a ThreadPoolExecutor, a "
            "ProcessPoolExecutor, or a Dask client.get_executor()), got "
            f"{type(executor).__name__}."
        )
    out_dir = check_out_folder(Path(out_dir).absolute())
    fingerprint = job.fingerprint()
    manifest_path = Path(manifest_path) if manifest_path else out_dir / MANIFEST_NAME
    kinds = job.input_kinds()
    kind_names = [kind.name for kind in kinds]
    # Read before the lock, as a hint only: the kinds of files whose stat is the recorded one
    # need no sniffing. Under the lock it is used only if the file is still the one read.
    early = None if overwrite else _read_early(manifest_path, fingerprint)
    if collected is not None:
        items = collected
    else:
        known = early.known_kinds(kind_names) if early is not None else None
        items = collect(inputs, exclude=out_dir, kinds=kinds, known=known)
    planned = _plan(job, items, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir):  # one run per output folder, from reading the manifest on
        return _run_locked(
            job,
            planned,
            fingerprint,
            out_dir,
            manifest_path,
            executor,
            overwrite,
            progress_bar,
            chunksize,
            early,
            kind_names,
        )


def _read_early(manifest_path: Path, fingerprint: dict) -> Manifest | None:
    """The manifest of the same job, read without the lock (None if none, unreadable or of
    another job: the locked read then decides and reports)."""
    try:
        early = Manifest.load(manifest_path)
    except Exception:
        return None
    if early is None or early.job.get("sha256") != fingerprint["sha256"]:
        return None
    return early


def _run_locked(
    job,
    planned,
    fingerprint,
    out_dir,
    manifest_path,
    executor,
    overwrite,
    progress_bar,
    chunksize,
    early=None,
    kind_names=(),
) -> BatchReport:
    """Steps 3-5 of :func:`run`, holding the output folder's lock."""
    # the manifest read before the lock, if the file is still that one (no run wrote it since)
    old = early if early is not None and early.is_current() else Manifest.load(manifest_path)
    decisions = decide(planned, old, fingerprint, overwrite=overwrite)

    # From here on files are written. The manifest first names this job (no items when
    # starting anew), so every output in the folder was made by the job it names.
    started = time.gmtime()
    t0 = time.perf_counter()
    same_job = old is not None and old.job.get("sha256") == fingerprint["sha256"]
    manifest = Manifest(manifest_path, fingerprint, kinds=list(kind_names))
    if same_job and not overwrite:
        manifest.take_records(old)
    todo = [i for i, d in enumerate(decisions) if d.todo]
    # an unchanged folder's manifest is not rewritten: nothing in it would change
    save = (
        bool(todo)
        or not same_job
        or overwrite
        or old.changed
        or old.version != manifest.version
        or old.kinds != manifest.kinds
    )
    if save:
        manifest.save()

    results: list[dict | None] = [None] * len(decisions)
    own = executor is None
    if own and todo:
        executor, executor_desc = job.default_executor(len(todo))
        executor_desc += " (default)"
    elif own:
        executor_desc = "none (nothing to do)"
    else:
        executor_desc = executor_name(executor)
    if todo and chunksize is None:
        chunksize = _chunksize(len(todo), executor)
    function, payload = job.worker()
    token = uuid.uuid4().hex
    cv2 = sys.modules.get("cv2")
    cv_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(1)  # the executor runs files in parallel: no oversubscription
    bar = progress(
        len(decisions), show=progress_bar, desc=job.name, initial=len(decisions) - len(todo)
    )
    futures: dict[Future, list[int]] = {}
    n_failed = 0
    last_save = time.monotonic()
    try:
        for start in range(0, len(todo), chunksize or 1):
            chunk = todo[start : start + chunksize]
            tasks = [
                (
                    decisions[i].input.key,
                    decisions[i].input.fspath,
                    decisions[i].input.kind,
                    None if decisions[i].output is None else str(decisions[i].output),
                )
                for i in chunk
            ]
            known = [decisions[i].identity for i in chunk]
            if not any(known):
                known = None
            future = executor.submit(_work, function, payload, tasks, os.getpid(), token, known)
            futures[future] = chunk
        for fut in as_completed(futures):
            chunk = futures[fut]
            try:
                records = fut.result()
            except Exception as exc:  # the executor failed (a worker died, pickling...)
                error = f"{type(exc).__name__}: {exc}"
                records = [
                    {"status": "failed", "seconds": 0.0, "error": error, "_input": None}
                    for _ in chunk
                ]
            for i, record in zip(chunk, records, strict=True):
                results[i] = record
                n_failed += record["status"] == "failed"
                fp = record.pop("_input", None)
                output_file = record.pop("_output", None)
                if fp is not None:
                    d = decisions[i]
                    manifest.record(
                        d.input.key,
                        fingerprint=fp,
                        output=relative_output(d.output, manifest_path.parent),
                        output_file=output_file,
                        result=record,
                        kind=d.input.kind,
                    )
            bar.update(len(chunk))
            if n_failed:
                bar.set_postfix(failed=n_failed, refresh=False)
            if time.monotonic() - last_save > _SAVE_EVERY:
                manifest.save()
                last_save = time.monotonic()
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        bar.close()
        if save:
            with contextlib.suppress(Exception):
                manifest.save()  # what finished is kept, also when interrupted
        if cv2 is not None:
            cv2.setNumThreads(cv_threads)
        if own and todo and not getattr(executor, "_m1vision_shared", False):
            executor.shutdown(wait=True, cancel_futures=True)

    report_items = []
    item_type = job.item_type
    fields = set(item_type.__dataclass_fields__)
    for d, record in zip(decisions, results, strict=True):
        key, src, reason = d.input.key, d.input.fspath, d.reason
        out = None if d.output is None else str(d.output)
        if record is None:  # skipped: the recorded extra fields come back
            extra = {k: v for k, v in d.result.items() if k in fields} if d.result else {}
            item = item_type(
                key=key, input=src, output=out, status="skipped", reason=reason, **extra
            )
        else:
            extra = {k: v for k, v in record.items() if k in fields and k not in _BASE_FIELDS}
            item = item_type(key=key, input=src, output=out, reason=reason, **extra)
        report_items.append(item)
    report = BatchReport(
        items=report_items,
        seconds=time.perf_counter() - t0,
        job=fingerprint,
        out_dir=str(out_dir),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", started),
        executor=executor_desc,
        manifest=manifest_path,
    )
    job.finish(report)
    report.path = write_report(report, out_dir, started)
    return report
