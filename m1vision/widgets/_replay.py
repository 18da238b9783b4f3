"""Explorer views as data: state out, state back in, and what a view showed (internal part).

:func:`m1vision.experiment.record` stores, for each explorer it is given, the explorer's kind,
its full state (:func:`explorer_state`), the array it explores (saved beside the record) and
the SHA-256 of every picture it showed; :func:`m1vision.experiment.reproduce` rebuilds the
explorer from those (:func:`restore_explorer`) and compares the pictures exactly;
:func:`from_record` restores a view in a notebook.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from m1vision.errors import RecordError
from m1vision.planes import PLANES
from m1vision.widgets._edges import EdgeExplorer
from m1vision.widgets._triplanar import TriPlanarExplorer

KINDS = ("EdgeExplorer", "TriPlanarExplorer")


class _Volume:
    """A MedicalImage-like volume rebuilt from a record (pixels, spacing, affine, modality)."""

    def __init__(self, pixels, spacing, affine, modality):
        self.pixels, self.spacing, self.modality, self.window = pixels, spacing, modality, None
        self.metadata = {"affine": affine}


def explorer_state(explorer) -> tuple[dict, np.ndarray]:
    """``(state, array)``: a JSON-safe description of the view and the array explored.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.widgets import EdgeExplorer
    >>> from m1vision.widgets._replay import explorer_state
    >>> state, array = explorer_state(EdgeExplorer(np.zeros((8, 8), np.uint8)))
    >>> state["kind"], state["params"]["high"], array.shape
    ('EdgeExplorer', 150.0, (8, 8))
    """
    if isinstance(explorer, TriPlanarExplorer):
        cache = explorer.cache
        return (
            {
                "kind": "TriPlanarExplorer",
                "params": explorer.params,
                "spacing": list(cache.spacing),
                "affine": cache.affine.tolist(),
                "modality": explorer.modality,
            },
            cache.pixels,
        )
    if isinstance(explorer, EdgeExplorer):
        pipeline = explorer.pipeline
        if pipeline is not None:
            from m1vision.pipeline import Pipeline

            if not isinstance(pipeline, Pipeline):
                raise RecordError(
                    "this EdgeExplorer's pipeline is a plain function, which a record cannot "
                    "hold; build the explorer with an m1vision.pipeline.Pipeline to record it."
                )
            pipeline = pipeline.to_dict()
        return (
            {"kind": "EdgeExplorer", "params": explorer.params, "pipeline": pipeline},
            explorer.cache.image,
        )
    raise RecordError(
        f"cannot record a {type(explorer).__name__}; record() keeps the views of "
        f"{', '.join(KINDS)}."
    )


def shown_pictures(explorer) -> list[np.ndarray]:
    """The pictures the explorer shows now (one, or the three planes)."""
    if isinstance(explorer, TriPlanarExplorer):
        return [explorer.picture(plane) for plane in PLANES]
    return [explorer.cache.render(explorer.render_params())]


def restore_explorer(state: dict, array: np.ndarray):
    """The explorer ``state`` describes, showing ``array`` (the inverse of explorer_state)."""
    kind = state.get("kind")
    if kind == "TriPlanarExplorer":
        volume = _Volume(array, tuple(state["spacing"]), state["affine"], state["modality"])
        return TriPlanarExplorer(volume, params=state["params"])
    if kind == "EdgeExplorer":
        pipeline = None
        if state.get("pipeline") is not None:
            from m1vision.pipeline import Pipeline

            pipeline = Pipeline.from_dict(state["pipeline"])  # registered steps only
        return EdgeExplorer(array, pipeline=pipeline, params=state["params"])
    raise RecordError(f"unknown explorer kind {kind!r} in the record; known: {KINDS}.")


def from_record(record_path, index: int = 0):
    """Restore the ``index``-th explorer view kept in a record (see experiment.record).

    Returns an :class:`EdgeExplorer` or :class:`TriPlanarExplorer` in exactly the state
    recorded (display it by ending a cell with it).
    """
    from m1vision.experiment import load_record

    record_path = Path(record_path)
    if record_path.is_dir():
        record_path = record_path / "record.json"
    data = load_record(record_path)
    entries = data.get("explorers") or []
    if not 0 <= index < len(entries):
        raise RecordError(
            f"{record_path} keeps {len(entries)} explorer view(s); index must be 0 to "
            f"{len(entries) - 1}, got {index}."
        )
    entry = entries[index]
    array = np.load(record_path.parent / entry["array"], allow_pickle=False)
    return restore_explorer(entry["state"], array)
