"""Reproducible experiments: record a run, replay it anywhere, explain every difference.

A *record* is a versioned JSON file that holds what is needed to run the work again and to
tell whether it still comes out the same: the pipeline, each input with its SHA-256, the model
file's SHA-256, the seed, the environment (from the doctor), the project's git commit, a hash
and a summary of every output, the predictions with the tolerance they must meet, and timings.

* :func:`record` runs the work and writes ``<out_dir>/<name>-<UTC time>/record.json`` with the
  outputs beside it. Records are never overwritten.
* :func:`reproduce` (``python -m m1vision reproduce RECORD``) runs it again and compares.
  OpenCV outputs must match exactly (the hash of the output array: shape, dtype and bytes);
  TensorFlow outputs within the record's tolerance. Every difference is explained: a changed
  or missing input (by hash), each output that differs and by how much, and the environment
  side by side (what drifted), so a mismatch comes with its likely cause.

Paths in a record are stored relative to the record's folder where possible, so a project
folder can be moved or cloned elsewhere and its records still replay.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import random
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from m1vision._atomic import atomic_write_json
from m1vision._hashing import file_sha256, path_sha256
from m1vision._record import (
    SCHEMA,
    SCHEMA_VERSION,
    array_sha256,
    load_record,
    take_views,
    view_differences,
    write_views,
)
from m1vision._record import portable as _portable
from m1vision._record import resolve as _resolve
from m1vision.errors import OutputExistsError, RecordError

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Difference",
    "Reproduction",
    "array_sha256",
    "file_sha256",
    "load_record",
    "record",
    "reproduce",
    "reproduce_cli",
    "set_seed",
]

#: Default tolerance (absolute, on probabilities) for model outputs. CPU and GPU kernels differ
#: in summation order and precision, so exact equality is not expected across devices;
#: reproduce() widens it to m1vision.numerics.PREDICTION_TOLERANCES for the devices involved.
DEFAULT_TOLERANCE = 1e-4

_PACKAGES = (
    "numpy",
    "opencv-python",
    "opencv-python-headless",
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-metal",
    "keras",
    "pydicom",
    "nibabel",
    "m1vision",
)


# ------------------------------------------------------------------------------ seeding
def set_seed(seed: int, *, tensorflow: bool | None = None) -> None:
    """Seed Python's ``random``, NumPy's global generator and, where used, TensorFlow.

    Parameters
    ----------
    seed : int
        A non-negative integer.
    tensorflow : bool, optional
        ``True`` imports TensorFlow and seeds it (``keras.utils.set_random_seed``) and turns on
        op determinism (``tf.config.experimental.enable_op_determinism``: deterministic
        kernels, slower on some ops). ``None`` (default) does so only if TensorFlow is
        imported already, so seeding stays cheap for OpenCV-only work. ``False`` never does.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.experiment import set_seed
    >>> set_seed(7); a = np.random.rand()
    >>> set_seed(7); a == np.random.rand()
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global generator is what users' code uses
    if tensorflow or (tensorflow is None and "tensorflow" in sys.modules):
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()


# ------------------------------------------------------------------------------ hashing
def _summary(array: np.ndarray) -> dict:
    a = array.astype(np.float64)
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": round(float(a.mean()), 6),
        "nonzero_fraction": round(float(np.count_nonzero(array)) / array.size, 6),
    }


# ------------------------------------------------------------------------------ environment
def environment() -> dict:
    """What the record keeps of the environment: platform, versions, BLAS, OpenCV threads."""
    import cv2

    from m1vision import _platform

    facts = _platform.probe()
    env: dict[str, Any] = {
        "system": facts["system"],
        "machine": facts["machine"],
        "python": facts["python_version"],
        "apple_silicon": facts["apple_silicon"],
        "rosetta": facts["translated"],
        "opencv_threads": cv2.getNumThreads(),
    }
    for name in _PACKAGES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        config = np.show_config(mode="dicts")
        env["blas"] = config["Build Dependencies"]["blas"]["name"]
    except Exception:  # a NumPy without the dict form: the BLAS is then unknown
        env["blas"] = "unknown"
    return env


def _git_commit() -> dict | None:
    from m1vision._resources import source_root

    root = source_root()
    if root is None:  # installed from a wheel: no checkout, no commit
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


# ------------------------------------------------------------------------------ running
def _run_pipeline(pipeline, inputs: list[Path], out_dir: Path, *, progress: bool) -> dict:
    """Run ``pipeline`` over ``inputs`` into ``out_dir``; {input: (status, array|error)}."""
    from m1vision.io import read_image

    report = pipeline.run(inputs, out_dir, progress=progress)
    results = {}
    # One item per input file, in the order given (the files were listed one by one).
    for source, item in zip(inputs, report.items, strict=True):
        if item.status == "failed":
            results[str(source)] = ("failed", item.error)
        else:
            results[str(source)] = ("ok", read_image(item.output, mode="unchanged"), item.output)
    return {"results": results, "seconds": report.seconds, "report": report}


def _predictor_config(predictor) -> dict:
    """The predictor's :meth:`~m1vision.inference.Predictor.to_config`, with the model's path
    as a Path (the record stores it relative to the record and adds its hash)."""
    from m1vision.errors import InvalidParameterError

    try:
        config = predictor.to_config()
    except InvalidParameterError as exc:
        raise RecordError(f"the predictor cannot be recorded: {exc}") from exc
    model_path = Path(config.pop("model"))
    return {
        "model_path": model_path,
        "model_sha256": getattr(predictor, "model_sha256", None) or path_sha256(model_path),
        **config,
    }


def _rebuild_predictor(config: dict, model_path: Path, device: str = "auto"):
    """The recorded predictor (the record's model section), its model loaded from
    ``model_path``."""
    from m1vision.inference import Predictor

    recorded = {k: v for k, v in config.items() if k not in ("path", "sha256")}
    return Predictor.from_config({**recorded, "model": str(model_path)}, device=device)


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
        raise TypeError(f"pipeline must be an m1vision.pipeline.Pipeline, got {type(pipeline)}.")
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


def _explorer_differences(data: dict, base: Path) -> list[Difference]:
    """Recompute every kept explorer view; a picture that differs is a Difference."""
    return [Difference(*found) for found in view_differences(data, base)]


def _mean_fraction(outputs: list[dict]) -> float:
    fractions = [o["summary"]["nonzero_fraction"] for o in outputs if "summary" in o]
    return round(float(np.mean(fractions)), 6) if fractions else 0.0


# ------------------------------------------------------------------------------ reproducing
@dataclasses.dataclass(frozen=True)
class Difference:
    """One way a reproduction differs from its record."""

    kind: str  # input-missing | input-changed | output-differs | output-failed | prediction
    subject: str  # the file concerned
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclasses.dataclass
class Reproduction:
    """What :func:`reproduce` found. ``ok`` is True when every output reproduced."""

    record: str
    differences: list[Difference]
    environment: list[tuple[str, Any, Any]]  # (key, recorded, now) for keys that differ
    outputs_compared: int
    predictions_compared: int
    seconds: float
    #: The prediction tolerance used and why (it follows the record's and replay's devices).
    tolerance: str = ""

    @property
    def ok(self) -> bool:
        return not self.differences

    def __str__(self) -> str:
        lines = [f"record: {self.record}"]
        lines.append(
            f"compared {self.outputs_compared} output(s) exactly"
            + (
                f" and {self.predictions_compared} prediction(s) within tolerance"
                + (f" {self.tolerance}" if self.tolerance else "")
                if self.predictions_compared
                else ""
            )
        )
        if self.environment:
            lines.append("environment (recorded -> now):")
            width = max(len(k) for k, _, _ in self.environment)
            lines += [f"  {k:<{width}}  {a!s} -> {b!s}" for k, a, b in self.environment]
        else:
            lines.append("environment: the same as recorded")
        for diff in self.differences:
            lines.append(f"  DIFFERENT {diff}")
        if self.ok:
            lines.append("reproduced")
        else:
            lines.append(f"NOT reproduced: {len(self.differences)} difference(s)")
        return "\n".join(lines)


def _array_difference(old_path: Path, new: np.ndarray) -> str:
    from m1vision.io import read_image

    if not old_path.exists():
        return "the recorded output file is gone, so only the hashes could be compared"
    old = read_image(old_path, mode="unchanged")
    if old.shape != new.shape or old.dtype != new.dtype:
        return f"recorded {old.shape} {old.dtype}, now {new.shape} {new.dtype}"
    delta = np.abs(old.astype(np.float64) - new.astype(np.float64))
    changed = int(np.count_nonzero(delta))
    return (
        f"{changed} of {delta.size} pixels differ ({100.0 * changed / delta.size:.3g}%), "
        f"max abs difference {delta.max():g}"
    )


def _hash_difference(entry: dict, path: Path, hasher) -> Difference | None:
    """A missing or changed file (input or model) of a record, or None if it is the same."""
    if not (path.is_file() or (path.is_dir() and hasher is path_sha256)):
        return Difference("input-missing", entry["path"], "the file is not there")
    digest = hasher(path)
    if digest == entry["sha256"]:
        return None
    sizes = f" ({entry['bytes']} -> {path.stat().st_size} bytes)" if "bytes" in entry else ""
    return Difference(
        "input-changed",
        entry["path"],
        f"sha256 {entry['sha256'][:12]}... recorded, {digest[:12]}... now{sizes}",
    )


def reproduce(record_path, *, device: str = "auto", progress: bool = False) -> Reproduction:
    """Run a record's work again and compare it with what the record holds.

    Inputs are found relative to the record's folder; each is hashed first (a changed or
    missing input is named). The pipeline runs again on the inputs that are there, into a
    temporary folder; each output's array hash must equal the recorded one. With a model, the
    model file's hash is checked and the probabilities must agree within the record's
    tolerance. The environment is compared key by key and shown side by side; a drift alone
    does not fail the reproduction, but it is what explains a difference when there is one.

    Returns
    -------
    Reproduction
        ``.ok``, ``.differences``, ``.environment``; ``str()`` is the full explanation.
    """
    from m1vision.pipeline import Pipeline

    started = time.perf_counter()
    record_path = Path(record_path)
    if record_path.is_dir():
        record_path = record_path / "record.json"
    data = load_record(record_path)
    base = record_path.parent
    differences: list[Difference] = []

    present = []
    for entry in data["inputs"]:
        path = _resolve(entry["path"], base)
        difference = _hash_difference(entry, path, file_sha256)
        if difference is not None:
            differences.append(difference)
        if path.is_file():
            present.append(path)

    pipeline = Pipeline.from_dict(data["pipeline"])
    compared = 0
    with tempfile.TemporaryDirectory(prefix="m1vision-reproduce-") as tmp:
        run = (
            _run_pipeline(pipeline, present, Path(tmp) / "outputs", progress=progress)
            if present
            else {"results": {}}
        )
        by_input = run["results"]
        for out in data["outputs"]:
            path = _resolve(out["input"], base)
            result = by_input.get(str(path))
            if result is None:
                continue  # missing input, reported above
            compared += 1
            if out["status"] == "failed":
                if result[0] != "failed":
                    differences.append(
                        Difference("output-differs", out["input"], "failed when recorded, ok now")
                    )
                continue
            if result[0] == "failed":
                differences.append(Difference("output-failed", out["input"], str(result[1])))
                continue
            if array_sha256(result[1]) != out["sha256"]:
                detail = _array_difference(_resolve(out["output"], base), result[1])
                differences.append(Difference("output-differs", out["input"], detail))

    predictions_compared = 0
    tolerance_note = ""
    if data.get("model"):
        model = data["model"]
        model_path = _resolve(model["path"], base)
        difference = _hash_difference(model, model_path, path_sha256)
        if difference is not None:
            differences.append(difference)
        if model_path.exists():
            wanted = [
                p for p in data["predictions"]["items"] if _resolve(p["input"], base) in present
            ]
            if wanted:
                predictor = _rebuild_predictor(model, model_path, device=device)
                got = predictor.predict(
                    [str(_resolve(p["input"], base)) for p in wanted], progress=progress
                )
                # the tolerance follows the devices of the record and the replay
                from m1vision.numerics import prediction_tolerance

                tolerance, why = prediction_tolerance(
                    data["predictions"]["tolerance"], model.get("device"), predictor.device.name
                )
                tolerance_note = f"{tolerance:g} ({why})"
                for item, row in zip(wanted, np.asarray(got.probabilities), strict=True):
                    predictions_compared += 1
                    delta = float(np.max(np.abs(np.asarray(item["probabilities"]) - row)))
                    if delta > tolerance:
                        differences.append(
                            Difference(
                                "prediction",
                                item["input"],
                                f"probabilities differ by up to {delta:.3g} "
                                f"(tolerance {tolerance_note})",
                            )
                        )

    differences.extend(_explorer_differences(data, base))

    now = environment()
    recorded_env = data.get("environment", {})
    drift = [
        (key, recorded_env.get(key), now.get(key))
        for key in sorted(set(recorded_env) | set(now))
        if recorded_env.get(key) != now.get(key)
    ]
    return Reproduction(
        record=record_path.name if record_path.parent == Path() else str(record_path),
        differences=differences,
        environment=drift,
        outputs_compared=compared,
        predictions_compared=predictions_compared,
        seconds=time.perf_counter() - started,
        tolerance=tolerance_note,
    )


def reproduce_cli(record_path: str) -> int:
    """``python -m m1vision reproduce RECORD``: print the comparison; 0 reproduced, 1 not.

    An unreadable record prints why on stderr and returns 2.
    """
    try:
        result = reproduce(record_path)
    except RecordError as exc:
        print(f"m1vision reproduce: {exc}", file=sys.stderr)
        return 2
    print(result)
    return 0 if result.ok else 1
