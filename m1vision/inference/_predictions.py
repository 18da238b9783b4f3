"""Predictions: the result of a Predictor call (internal)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass
class Predictions:
    """What :meth:`Predictor.predict` returns.

    Attributes
    ----------
    probabilities : ndarray of float32, shape (N, C)
        One row per input (softmax applied if the model outputs logits).
    top_k : list of list of (label, score)
        The ``top_k`` best classes of each input, best first; ``label`` is the class name
        from ``labels`` or else the class index (int).
    inputs : list
        The inputs as given (paths as ``str``, arrays and MedicalImages as passed).
    labels : list of str or None
    """

    probabilities: np.ndarray
    top_k: list
    inputs: list
    labels: list | None = None
    #: Where the inputs were prepared: "threads (N workers)", "processes (N workers, ...)"
    #: (see ``Predictor(executor=...)``), with why threads ran when processes could not.
    executor: str | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def classes(self) -> np.ndarray:
        """The index of the best class of each input, shape (N,)."""
        return np.argmax(self.probabilities, axis=1) if len(self) else np.zeros(0, np.int64)

    def to_records(self) -> list[dict]:
        """One JSON-safe dict per input (``input`` is the path, or ``None`` for an array)."""
        records = []
        for item, row, top in zip(self.inputs, self.probabilities, self.top_k, strict=True):
            records.append(
                {
                    "input": _describe(item),
                    "top_k": [[label, score] for label, score in top],
                    "probabilities": [float(v) for v in row],
                }
            )
        return records

    def __repr__(self) -> str:
        return f"Predictions({len(self)} inputs, {self.probabilities.shape[1]} classes)"


def _describe(item) -> str | None:
    if isinstance(item, str | os.PathLike):
        return str(item)
    source = getattr(item, "source", None)
    return source or None


def _label(item) -> str:
    described = _describe(item)
    if described:
        return described
    shape = getattr(item, "shape", None)
    return f"an array of shape {shape}" if shape is not None else type(item).__name__


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
