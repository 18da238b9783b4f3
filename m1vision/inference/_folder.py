"""Predicting a folder on the one batch engine (:mod:`m1vision.batch`).

A prediction run is a :class:`~m1vision.batch.Job`: the engine collects the inputs (one input
key: the relative path with its extension), decides from its manifest what is done, runs the
rest in chunks of one batch on a thread pool in this process (the model stays here, on its
device; the chunks' reading and preprocessing overlap the model's work on the previous
chunk), and reports one :class:`~m1vision.batch.BatchItem` per input. The prediction item
only adds ``top_k`` and ``probabilities``.

Resume is never stale: the job's fingerprint holds the SHA-256 of the model bytes the
Predictor loaded (a file or a SavedModel folder, by the one rule of
:mod:`m1vision._hashing`; a model object's weights), the preprocessing (a pipeline's dict, a
function's code), the input shape, labels, ``top_k`` and ``from_logits``. A retrained model
with the same shapes and labels is another job: the engine refuses its folder
(:class:`~m1vision.errors.JobMismatchError`) instead of appending to the older predictions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import marshal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from m1vision._atomic import atomic_write_text
from m1vision._hashing import path_sha256
from m1vision.batch import BatchItem, BatchReport, Job
from m1vision.batch import run as run_batch
from m1vision.errors import OutputExistsError

PREDICTIONS_NAME = "predictions.jsonl"
FORMAT = "m1vision-predictions"
FORMAT_VERSION = 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class PredictionItem(BatchItem):
    """A :class:`~m1vision.batch.BatchItem` of a prediction run, plus its results.

    Attributes
    ----------
    top_k : list of [label, score] or None
        Best first (``None`` when failed).
    probabilities : list of float or None
    """

    top_k: list | None = None
    probabilities: list | None = None


def _weights_sha256(model) -> str:
    digest = hashlib.sha256()
    for variable in getattr(model, "weights", []):
        import keras

        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(str((variable.path, value.shape, value.dtype.str)).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _model_identity(predictor) -> dict:
    path = predictor.model_path
    if path is not None:
        path = Path(path)
        # the hash of the bytes the Predictor loaded, not of what is on disk now
        sha = getattr(predictor, "model_sha256", None) or path_sha256(path)
        return {"file": path.name, "sha256": sha}
    return {
        "object": str(getattr(predictor.model, "name", "")),
        "weights_sha256": (_weights_sha256(predictor.model)),
    }


def _preprocess_identity(preprocess):
    if preprocess is None:
        return None
    to_dict = getattr(preprocess, "to_dict", None)
    if callable(to_dict):
        return {"pipeline": to_dict()}
    code = getattr(preprocess, "__code__", None)
    name = f"{getattr(preprocess, '__module__', '?')}.{getattr(preprocess, '__qualname__', '?')}"
    if code is not None:  # a function: its code and constants, so an edit is another job
        return {"function": name, "code_sha256": hashlib.sha256(marshal.dumps(code)).hexdigest()}
    return {"callable": name, "repr": repr(preprocess)}


def _predict_chunk(predictor, tasks: list[tuple]) -> list[dict]:
    """The engine's worker: read and prepare a chunk (one batch), run the model once."""
    start = time.perf_counter()
    records: list[dict | None] = [None] * len(tasks)
    arrays, where = [], []
    for i, (_key, src, _kind, _out) in enumerate(tasks):
        try:
            arrays.append(predictor.prepare(src))
            where.append(i)
        except Exception as exc:  # one bad input is recorded, the others go on
            records[i] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    if arrays:
        try:
            if len({a.shape for a in arrays}) > 1:
                shapes = sorted({a.shape for a in arrays})
                raise ValueError(
                    f"inputs of different shapes {shapes} in one batch: the model's input "
                    "size is open, so add a resize step to preprocess."
                )
            probabilities = predictor._run(np.stack(arrays))
            tops = predictor._top_k(probabilities)
            for i, row, top in zip(where, probabilities, tops, strict=True):
                records[i] = {
                    "status": "ok",
                    "error": None,
                    "top_k": [[label, score] for label, score in top],
                    "probabilities": [float(v) for v in row],
                }
        except Exception as exc:
            for i in where:
                records[i] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    seconds = (time.perf_counter() - start) / max(1, len(tasks))
    return [{**r, "seconds": seconds} for r in records]


class PredictionJob(Job):
    """A :class:`Predictor` over a folder, as a job of the batch engine."""

    schema = "m1vision.prediction_run"
    item_type = PredictionItem
    name = "predict"

    def __init__(self, predictor):
        self.predictor = predictor

    def config(self) -> dict:
        p = self.predictor
        return {
            "model": _model_identity(p),
            "preprocess": _preprocess_identity(p.preprocess),
            "input_shape": list(p.input_shape),
            "num_classes": p.num_classes,
            "labels": p.labels,
            "top_k": p.top_k,
            "from_logits": p.from_logits,
        }

    def output_path(self, inp, out_dir: Path):
        return None  # results live in the manifest, the report and predictions.jsonl

    def worker(self):
        return _predict_chunk, self.predictor

    def processes_ok(self) -> bool:
        return False  # the model stays in this process, on its device

    def default_executor(self, n_todo: int):
        workers = 1 + self.predictor.prefetch  # prepare the next batches during this one
        pool = ThreadPoolExecutor(workers, thread_name_prefix="m1vision-predict")
        return pool, f"ThreadPoolExecutor(max_workers={workers}) in this process"

    def finish(self, report: BatchReport) -> None:
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "job": report.job.get("sha256"),
            "labels": self.predictor.labels,
        }
        lines = [json.dumps(header)]
        for item in report.items:
            if item.top_k is None and item.status != "failed":
                continue
            lines.append(
                json.dumps(
                    {
                        "key": item.key,
                        "input": item.input,
                        "status": "failed" if item.status == "failed" else "ok",
                        "top_k": item.top_k,
                        "probabilities": item.probabilities,
                        "error": item.error,
                    }
                )
            )
        atomic_write_text(
            Path(report.out_dir) / PREDICTIONS_NAME, "\n".join(lines) + "\n", overwrite=True
        )


def predict_folder(predictor, inputs, out_dir, *, overwrite: bool, progress: bool, executor):
    out = Path(out_dir)
    if out.suffix == ".jsonl" or out.is_file():
        raise OutputExistsError(
            f"out_dir must be a folder (it will hold {PREDICTIONS_NAME}, the manifest and the "
            f"report), got the file path {str(out)!r}; pass a folder such as "
            f"{str(out.with_suffix(''))!r}."
        )
    return run_batch(
        PredictionJob(predictor),
        inputs,
        out,
        executor=executor,
        overwrite=overwrite,
        progress_bar=progress,
        chunksize=predictor.batch_size,
    )


def read_predictions(path) -> list[dict]:
    """Return the records of a :meth:`Predictor.predict_folder` run, one per input key.

    ``path`` is the run's folder or its ``predictions.jsonl``.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> from m1vision.inference import read_predictions
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> header = {"format": "m1vision-predictions", "version": 2}
    >>> rows = [{"key": "a.png", "status": "ok", "top_k": [[0, 1.0]]}]
    >>> _ = (folder / "predictions.jsonl").write_text(
    ...     "".join(json.dumps(r) + "\\n" for r in [header, *rows]))
    >>> [r["status"] for r in read_predictions(folder)]
    ['ok']
    """
    p = Path(path)
    if p.is_dir():
        p = p / PREDICTIONS_NAME
    lines = p.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise OutputExistsError(
                f"{str(p)!r} line {number} is not valid JSON: the file is damaged or no "
                "m1vision predictions file; run predict_folder again to rewrite it."
            ) from None
    if not records or records[0].get("format") != FORMAT:
        raise OutputExistsError(
            f"{str(p)!r} is no m1vision predictions file (no header line); read the folder "
            "a Predictor.predict_folder run wrote."
        )
    latest = {}
    for record in records[1:]:
        latest[record["key"]] = record
    return list(latest.values())
