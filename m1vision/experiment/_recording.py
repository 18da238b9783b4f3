"""Recording a run: :func:`record` writes a record folder that is never overwritten."""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

import numpy as np

from m1vision._atomic import atomic_write_json
from m1vision._hashing import file_sha256
from m1vision._record import SCHEMA, SCHEMA_VERSION, array_sha256, take_views, write_views
from m1vision._record import portable as _portable
from m1vision.errors import InvalidTypeError, OutputExistsError, RecordError
from m1vision.experiment._conditions import _git_commit, environment, set_seed
from m1vision.experiment._work import _predictor_config, _run_pipeline, _summary

#: Default tolerance (absolute, on probabilities) for model outputs. CPU and GPU kernels differ
#: in summation order and precision, so exact equality is not expected across devices;
#: reproduce() widens it to m1vision.numerics.PREDICTION_TOLERANCES for the devices involved.
DEFAULT_TOLERANCE = 1e-4


def _unique_dir(out_dir: Path, name: str) -> Path:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        candidate = out_dir / (f"{name}-{stamp}" + (f"-{n}" if n else ""))
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise OutputExistsError(f"no free record folder for {name!r} in {str(out_dir)!r}.")


def record(
    name: str,
    *,
    pipeline,
    inputs,
    predictor=None,
    seed: int = 0,
    out_dir="experiments",
    tolerance: float = DEFAULT_TOLERANCE,
    progress: bool = False,
    explorers=None,
) -> Path:
    """Run ``pipeline`` (and ``predictor``) over ``inputs`` and write a record; return its path.

    Parameters
    ----------
    name : str
        A short name (letters, digits, ``-``, ``_``); the record goes to
        ``<out_dir>/<name>-<UTC time>/record.json``, the outputs beside it in ``outputs/``.
    pipeline : m1vision.pipeline.Pipeline
        The OpenCV work, e.g. ``explorer.to_pipeline()``.
    inputs : path or list of paths
        Files and folders, as for :meth:`~m1vision.pipeline.Pipeline.run`.
    predictor : m1vision.inference.Predictor, optional
        Built from a model *file* (so the file can be hashed and reloaded) with a Pipeline as
        ``preprocess`` (so it can be stored). Its probabilities for every input are recorded.
    seed : int
        Passed to :func:`set_seed` before anything runs.
    tolerance : float
        Largest absolute difference in a probability that :func:`reproduce` accepts.
    progress : bool
        Show progress bars.
    explorers : list of explorers, optional
        Explorer views to keep (any explorer of :mod:`m1vision.widgets`, or a pure
        :class:`m1vision.views.View`): each one's state (``state()``), the array it explores
        (``explorers/<i>.npy`` beside the record) and the SHA-256 of every picture it shows.
        :func:`reproduce` recomputes them with the pure views (no ipywidgets needed) and
        compares exactly; ``Explorer.from_record(path, i)`` restores the view.

    Raises
    ------
    RecordError
        A predictor or an explorer that cannot be recorded (see above), or a bad name.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import write_image
    >>> from m1vision.pipeline import Canny, Pipeline
    >>> from m1vision.experiment import record, reproduce
    >>> work = pathlib.Path(tempfile.mkdtemp())
    >>> img = np.zeros((32, 32), np.uint8); img[8:24, 8:24] = 200
    >>> _ = write_image(work / "in" / "square.png", img)
    >>> path = record("square", pipeline=Pipeline([Canny(low=50, high=150)]),
    ...               inputs=work / "in", out_dir=work / "experiments")
    >>> reproduce(path).ok
    True
    """
    import re

    from m1vision.pipeline import Pipeline, collect_inputs

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise RecordError(
            f"name must be 1-64 letters, digits, '.', '-' or '_' (a folder name), got {name!r}."
        )
    if not isinstance(pipeline, Pipeline):
        raise InvalidTypeError(
            f"pipeline must be an m1vision.pipeline.Pipeline, got {type(pipeline)}."
        )
    if not (isinstance(tolerance, int | float) and 0 <= tolerance < 1):
        raise RecordError(f"tolerance must be a number in [0, 1), got {tolerance!r}.")
    predictor_config = _predictor_config(predictor) if predictor is not None else None
    views = take_views(explorers)
    set_seed(seed, tensorflow=True if predictor is not None else None)

    sources = [src for src, _ in collect_inputs(inputs)]
    if not sources:
        raise RecordError(f"no input images found in {inputs!r}.")
    folder = _unique_dir(Path(out_dir), name)
    base = folder
    started = time.perf_counter()
    run = _run_pipeline(pipeline, sources, folder / "outputs", progress=progress)

    outputs = []
    for src in sources:
        result = run["results"][str(src)]
        entry: dict[str, Any] = {"input": _portable(src, base), "status": result[0]}
        if result[0] == "ok":
            entry["output"] = _portable(Path(result[2]), base)
            entry["sha256"] = array_sha256(result[1])
            entry["summary"] = _summary(result[1])
        else:
            entry["error"] = result[1]
        outputs.append(entry)

    predictions = None
    model = None
    timings = {"pipeline_seconds": round(run["seconds"], 4)}
    if predictor is not None:
        t0 = time.perf_counter()
        predicted = predictor.predict([str(s) for s in sources], progress=progress)
        timings["predict_seconds"] = round(time.perf_counter() - t0, 4)
        probabilities = np.asarray(predicted.probabilities, dtype=np.float64)
        predictions = {
            "tolerance": float(tolerance),
            "items": [
                {"input": _portable(src, base), "probabilities": [float(v) for v in row]}
                for src, row in zip(sources, probabilities, strict=True)
            ],
        }
        model_path = predictor_config.pop("model_path")
        model = {
            "path": _portable(model_path, base),
            "sha256": predictor_config.pop("model_sha256"),  # of the bytes it loaded
            **predictor_config,
        }
    timings["total_seconds"] = round(time.perf_counter() - started, 4)

    data = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "name": name,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "seed": int(seed),
        "pipeline": pipeline.to_dict(),
        "inputs": [
            {"path": _portable(src, base), "sha256": file_sha256(src), "bytes": src.stat().st_size}
            for src in sources
        ],
        "outputs": outputs,
        "model": model,
        "predictions": predictions,
        "metrics": {
            "inputs": len(sources),
            "ok": sum(o["status"] == "ok" for o in outputs),
            "failed": sum(o["status"] == "failed" for o in outputs),
            "mean_nonzero_fraction": _mean_fraction(outputs),
        },
        "environment": environment(),
        "git": _git_commit(),
        "timings": timings,
    }
    if views:
        data["explorers"] = write_views(views, folder)
    return atomic_write_json(folder / "record.json", data)


def _mean_fraction(outputs: list[dict]) -> float:
    fractions = [o["summary"]["nonzero_fraction"] for o in outputs if "summary" in o]
    return round(float(np.mean(fractions)), 6) if fractions else 0.0
