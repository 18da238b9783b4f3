"""Replaying a record: :func:`reproduce`, and every difference explained."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from m1vision._checks import check_path
from m1vision._hashing import file_sha256, path_sha256
from m1vision._record import array_sha256, load_record, view_differences
from m1vision._record import resolve as _resolve
from m1vision.errors import RecordError
from m1vision.experiment._conditions import environment
from m1vision.experiment._work import _rebuild_predictor, _run_pipeline


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


def _explorer_differences(data: dict, base: Path) -> list[Difference]:
    """Recompute every kept explorer view; a picture that differs is a Difference."""
    return [Difference(*found) for found in view_differences(data, base)]


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

    Examples
    --------
    A recorded pipeline run reproduces; the same record after its input changed does not,
    and says which input.

    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import write_image
    >>> from m1vision.pipeline import GaussianBlur, Pipeline
    >>> from m1vision.experiment import record, reproduce
    >>> work = pathlib.Path(tempfile.mkdtemp())
    >>> square = np.zeros((32, 32), np.uint8)
    >>> square[8:24, 8:24] = 200
    >>> _ = write_image(work / "in" / "square.png", square)
    >>> path = record("blur", pipeline=Pipeline([GaussianBlur(ksize=5)]),
    ...               inputs=work / "in", out_dir=work / "experiments")
    >>> reproduce(path).ok
    True
    >>> _ = write_image(work / "in" / "square.png", 255 - square, overwrite=True)
    >>> result = reproduce(path)
    >>> result.ok, [d.kind for d in result.differences]
    (False, ['input-changed', 'output-differs'])
    """
    from m1vision.pipeline import Pipeline

    started = time.perf_counter()
    record_path = Path(check_path(record_path, name="record_path"))
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
