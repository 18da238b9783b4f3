"""The recorded work, run: the pipeline over the inputs, the predictor as data and back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from m1vision._hashing import path_sha256
from m1vision.errors import RecordError


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
