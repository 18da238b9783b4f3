"""What a segmentation model expects, from its card (internal): the ``"segmentation"`` section
of ``<model>.json`` beside the model file, checked once, and the intensity preparation it
names (pointwise, so it is applied lazily, window by window).

The section (every key optional)::

    "segmentation": {
        "mode": "patches",                  # or "slices" (a 2-D model per slice)
        "spacing": [1.5, 1.5, 1.5],         # mm, (z, row, col); (row, col) for a 2-D model
        "window": [64, 64, 64],             # the window the model runs on
        "divisible_by": 16,                 # or per axis: what an open-size model needs
        "channels": 1,
        "intensity": {"window": [40, 400]}, # level/width -> [0, 1]; or
                                            # {"clip": [lo, hi], "mean": m, "std": s}
        "labels": {"1": {"name": "liver", "color": [220, 120, 60]}, "2": "spleen"}
    }
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from m1vision.errors import InvalidParameterError, InvalidTypeError, SegmentationModelError

SECTION = "segmentation"
_KEYS = {"mode", "spacing", "window", "divisible_by", "channels", "intensity", "labels"}


def card_path(model_path) -> Path:
    """``<model>.json`` beside a ``.keras`` file (or a SavedModel folder)."""
    p = Path(model_path)
    return p.with_suffix(".json") if p.suffix else p.parent / f"{p.name}.json"


def read_card(card, model_path=None) -> tuple[dict, str]:
    """``(segmentation section, where it came from)``; ``({}, "")`` without one.

    ``card``: a dict (a whole card or just its section), a path, or None (look beside the
    model file).
    """
    origin = "card="
    if card is None:
        if model_path is None:
            return {}, ""
        path = card_path(model_path)
        if not path.is_file():
            return {}, ""
        card = path
    if isinstance(card, str | Path):
        origin = str(card)
        try:
            card = json.loads(Path(card).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SegmentationModelError(
                f"the model card {origin!r} cannot be read as JSON ({exc}); fix the file or "
                "pass card= a dict."
            ) from None
    if not isinstance(card, dict):
        raise InvalidTypeError(
            f"card must be a dict or a path, got {type(card).__name__}. Fix: pass the model "
            "card's JSON file, or the dict it holds."
        )
    section = card.get(SECTION, card if set(card) <= _KEYS else {})
    if not isinstance(section, dict):
        raise SegmentationModelError(
            f"{origin}: the {SECTION!r} section must be a JSON object, got {section!r}."
        )
    unknown = set(section) - _KEYS
    if unknown:
        raise SegmentationModelError(
            f"{origin}: unknown key(s) {sorted(unknown)} in the {SECTION!r} section; known: "
            f"{sorted(_KEYS)}."
        )
    return section, origin


def check_intensity(spec, origin: str) -> dict | None:
    """The card's intensity preparation, checked: ``{"window": [L, W]}`` or ``{"clip",
    "mean", "std"}`` (each optional)."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or not set(spec) <= {"window", "clip", "mean", "std"}:
        raise SegmentationModelError(
            f"{origin}: intensity must be {{'window': [level, width]}} or {{'clip': [lo, hi], "
            f"'mean': m, 'std': s}}, got {spec!r}."
        )
    if "window" in spec:
        _level, width = (float(v) for v in spec["window"])
        if width <= 0:
            raise SegmentationModelError(f"{origin}: the window width must be > 0, got {width}.")
    if float(spec.get("std", 1.0)) <= 0:
        raise SegmentationModelError(f"{origin}: intensity std must be > 0, got {spec['std']}.")
    return dict(spec)


def _clip(values, low: float, high: float) -> None:
    if isinstance(values, np.ndarray):
        np.clip(values, low, high, out=values)
    else:  # a torch tensor on the model's device
        values.clamp_(low, high)


def apply_intensity(values, spec: dict | None):
    """The card's pointwise intensity preparation of float32 ``values`` (in place; a NumPy
    array or a torch tensor)."""
    if not spec:
        return values
    if "window" in spec:
        level, width = (float(v) for v in spec["window"])
        low = level - width / 2
        _clip(values, low, low + width)
        values -= low
        values /= width
    if "clip" in spec:
        _clip(values, float(spec["clip"][0]), float(spec["clip"][1]))
    if "mean" in spec:
        values -= float(spec["mean"])
    if "std" in spec:
        values /= float(spec["std"])
    return values


def label_entries(given, num_classes: int, *, name: str) -> dict[int, dict]:
    """``{value: {"name", "color"?}}`` from a list of names (index = value, 0 the background)
    or a dict ``{value: name or {"name", "color"}}``; values must be model classes."""
    if given is None:
        return {}
    if isinstance(given, str):
        raise InvalidTypeError(
            f"{name} must be a list of names or a dict, got the string {given!r}. Fix: pass "
            f"one name per class, e.g. {name}=['background', {given!r}]."
        )
    items = dict(enumerate(given)) if not isinstance(given, dict) else given
    top = max(num_classes - 1, 1)  # one sigmoid channel: label 1
    out = {}
    for key, entry in items.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"{name}: label keys are class values (0..{top}), got {key!r}."
            ) from None
        if value < 0 or value > top:
            raise InvalidParameterError(
                f"{name} names label {value} ({entry!r}), but the model has "
                f"{num_classes} output channel(s), so labels 0..{top}; fix: remove it or check "
                "that the names belong to this model."
            )
        if value == 0:
            continue
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidParameterError(
                f"{name}[{key!r}] must be a name or {{'name': str, 'color': [r, g, b]}}, got "
                f"{entry!r}."
            )
        out[value] = dict(entry)
    return out
