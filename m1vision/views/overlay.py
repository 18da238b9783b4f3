"""Label overlays of the views: one or two label maps drawn over a view's pictures.

An :class:`Overlay` holds the label map(s) of an image (checked to be on its grid with
:func:`m1vision.labels.check_labels`, whose error shows both grids and the resample fix) and
how they are drawn: ``opacity``, ``outline`` (filled or outlined), ``hidden`` label values,
``show``. With a ``reference`` map the two are drawn in the styles of
:data:`m1vision.draw.COMPARE_STYLES`: the labels (a prediction) solid, filled or outlined,
the reference outlined in dashes over them. Drawing is :func:`m1vision.draw.draw_labels`;
nothing here knows a widget.

Its :meth:`Overlay.part` is the ``"overlay"`` part of a view's state (settings, which maps,
their names and colours); the maps themselves are :meth:`Overlay.arrays` (a record keeps them
beside the image) and come back through :meth:`Overlay.from_part`.
"""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_bool
from m1vision.draw import COMPARE_STYLES, draw_labels
from m1vision.errors import InvalidParameterError, RecordError

__all__ = ["MAPS", "Overlay", "label_centroid"]

#: The names of the label maps an overlay can hold, in the order they are drawn.
MAPS = ("labels", "reference")


def _info_to_json(info: dict) -> dict:
    return {str(int(v)): {"name": str(e["name"]), "color": [int(c) for c in e["color"]]}
            for v, e in sorted(info.items())}  # fmt: skip


def _info_from_json(info) -> dict:
    return {int(v): {"name": e["name"], "color": list(e["color"])} for v, e in (info or {}).items()}


def label_centroid(labels: np.ndarray, value: int) -> tuple[int, ...]:
    """A voxel of label ``value`` near its centroid (voxel space): the rounded centroid if it
    lies inside the label, else the label's voxel nearest to it (a ring's centroid is outside).

    Raises InvalidParameterError when ``value`` is not in ``labels``.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.overlay import label_centroid
    >>> ring = np.ones((1, 5, 5), np.uint8); ring[0, 1:4, 1:4] = 0
    >>> int(ring[label_centroid(ring, 1)])
    1
    """
    value = int(value)
    where = np.flatnonzero(labels.ravel() == value)
    if where.size == 0:
        present = [int(v) for v in np.unique(labels) if v]
        raise InvalidParameterError(
            f"label {value} is not in the label map (it holds {present[:20]}"
            f"{'...' if len(present) > 20 else ''}); pick one of those."
        )
    coords = np.stack(np.unravel_index(where, labels.shape), axis=1)
    centre = coords.mean(axis=0)
    voxel = tuple(int(v) for v in np.rint(centre))
    if labels[voxel] == value:
        return voxel
    nearest = int(np.argmin(((coords - centre) ** 2).sum(axis=1)))
    return tuple(int(v) for v in coords[nearest])


class Overlay:
    """One label map (and an optional reference map) over an image, and how they are drawn.

    Parameters
    ----------
    labels : MedicalImage or integer ndarray
        The label map, on ``like``'s grid (an array takes it).
    like : MedicalImage
        The image the maps belong to (its grid is checked).
    reference : MedicalImage or integer ndarray, optional
        A second map (ground truth) drawn outlined in dashes (``COMPARE_STYLES``).
    opacity : float
        0-1, of the filled labels.
    outline : bool
        Draw ``labels`` as outlines instead of filled.
    hidden : collection of int
        Label values not drawn.
    show : bool
        Draw the overlay at all.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.io import MedicalImage
    >>> from m1vision.views.overlay import Overlay
    >>> image = MedicalImage(np.zeros((2, 4, 4), np.float32), spacing=(1.0, 1.0, 1.0))
    >>> lab = np.zeros((2, 4, 4), np.uint8); lab[:, 1:3, 1:3] = 3
    >>> ov = Overlay(lab, like=image, hidden=[3])
    >>> ov.part()["hidden"], ov.label_at((0, 1, 1))
    ([3], (3, 'label 3'))
    """

    def __init__(self, labels, *, like, reference=None, opacity: float = 0.4,
                 outline: bool = False, hidden=(), show: bool = True):  # fmt: skip
        from m1vision.labels import check_labels

        maps = {"labels": check_labels(labels, like=like, name="labels")}
        if reference is not None:
            maps["reference"] = check_labels(reference, like=like, name="reference")
        self.maps = maps
        self.info = {name: dict(m.metadata["labels"]) for name, m in maps.items()}
        self._set(opacity, outline, hidden, show)

    def _set(self, opacity, outline, hidden, show) -> None:
        try:
            opacity = float(opacity)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"opacity must be a number 0-1, got {opacity!r}.") from None
        if not 0.0 <= opacity <= 1.0:
            raise InvalidParameterError(
                f"opacity must be within 0-1 (0 = invisible, 1 = opaque), got {opacity}."
            )
        for name, flag in (("outline", outline), ("show", show)):
            check_bool(flag, name=name)
        try:
            hidden = tuple(sorted({int(v) for v in hidden}))
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"hidden must be label values (integers), got {hidden!r}."
            ) from None
        self.opacity, self.outline, self.hidden, self.show = (
            opacity, bool(outline), hidden, bool(show))  # fmt: skip

    def replace(self, **changes) -> Overlay:
        """A copy with some of ``opacity``, ``outline``, ``hidden``, ``show`` changed (the
        maps are shared, not copied)."""
        unknown = set(changes) - {"opacity", "outline", "hidden", "show"}
        if unknown:
            raise InvalidParameterError(
                f"unknown overlay setting(s) {sorted(unknown)}; known: hidden, opacity, "
                "outline, show."
            )
        new = object.__new__(Overlay)
        new.maps, new.info = self.maps, self.info
        current = {"opacity": self.opacity, "outline": self.outline, "hidden": self.hidden,
                   "show": self.show}  # fmt: skip
        new._set(**{**current, **changes})
        return new

    # -- what it holds ----------------------------------------------------------------------
    @property
    def labels(self):
        """The label map (a MedicalImage)."""
        return self.maps["labels"]

    @property
    def reference(self):
        """The reference map, or None."""
        return self.maps.get("reference")

    def values(self) -> list[int]:
        """The label values of every map, sorted (background 0 left out)."""
        return sorted({int(v) for info in self.info.values() for v in info})

    def names(self) -> dict[int, str]:
        """``{value: name}`` of every label (the labels' map's name first)."""
        out = {}
        for name in reversed(list(self.info)):
            out.update({int(v): str(e["name"]) for v, e in self.info[name].items()})
        return dict(sorted(out.items()))

    def key(self) -> tuple:
        """What the drawing depends on besides the picture and slice (for caches)."""
        return (id(self.maps["labels"]), id(self.maps.get("reference")), self.opacity,
                self.outline, self.hidden, self.show)  # fmt: skip

    # -- drawing ----------------------------------------------------------------------------
    def draw(self, picture: np.ndarray, slices: dict[str, np.ndarray]) -> np.ndarray:
        """``picture`` with the maps' 2-D ``slices`` (by map name) drawn over it (BGR uint8).

        Without ``show`` the picture itself (not a copy).
        """
        if not self.show:
            return picture
        out = draw_labels(
            picture, slices["labels"], labels_info=self.info["labels"], opacity=self.opacity,
            hidden=self.hidden,
            **({**COMPARE_STYLES["prediction"], "outline": self.outline}),
        )  # fmt: skip
        if "reference" in self.maps:
            out = draw_labels(
                out, slices["reference"], labels_info=self.info["reference"],
                opacity=self.opacity, hidden=self.hidden, **COMPARE_STYLES["reference"],
            )  # fmt: skip
        return out

    def label_at(self, voxel) -> tuple[int, str]:
        """``(value, name)`` of the label map at ``voxel`` (``(0, "")`` in the background)."""
        value = int(self.maps["labels"].pixels[tuple(int(v) for v in voxel)])
        if value == 0:
            return 0, ""
        entry = self.info["labels"].get(value, {})
        return value, str(entry.get("name", f"label {value}"))

    def centroid(self, value: int, *, map_name: str = "labels") -> tuple[int, ...]:
        """A voxel of label ``value`` at (or nearest to) its centroid: see
        :func:`label_centroid`."""
        if map_name not in self.maps:
            raise InvalidParameterError(
                f"map_name must be one of {list(self.maps)}, got {map_name!r}."
            )
        return label_centroid(self.maps[map_name].pixels, value)

    # -- state ------------------------------------------------------------------------------
    def part(self) -> dict:
        """The ``"overlay"`` part of a view's state (JSON-able)."""
        return {
            "maps": list(self.maps),
            "opacity": self.opacity,
            "outline": self.outline,
            "hidden": list(self.hidden),
            "show": self.show,
            "info": {name: _info_to_json(info) for name, info in self.info.items()},
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The label maps' pixels by name (what a record keeps beside the image)."""
        return {name: m.pixels for name, m in self.maps.items()}

    @classmethod
    def from_part(cls, part, like, maps: dict) -> Overlay | None:
        """The overlay a state's ``part`` describes, over ``like``, with the label ``maps``
        (arrays or label maps by name, as :meth:`arrays` gave them). None for no part."""
        if part is None:
            return None
        names = list(part.get("maps", ["labels"]))
        missing = [n for n in names if maps.get(n) is None]
        if missing:
            raise RecordError(
                f"the view state has an overlay of the label map(s) {names} but "
                f"{missing} were not given; pass them as from_state(state, image, "
                f"{', '.join(f'{n}=...' for n in missing)}) (a record keeps them beside the "
                "image)."
            )
        info = part.get("info", {})
        from m1vision.labels import label_map

        def as_map(name):
            given = maps[name]
            if isinstance(given, np.ndarray):
                labels = _info_from_json(info.get(name))
                present = {int(v) for v in np.unique(given)}
                return label_map(given, like=like, labels={
                    v: e for v, e in labels.items() if v in present} or None)  # fmt: skip
            return given

        return cls(
            as_map("labels"),
            like=like,
            reference=as_map("reference") if "reference" in names else None,
            opacity=part.get("opacity", 0.4),
            outline=part.get("outline", False),
            hidden=part.get("hidden", ()),
            show=part.get("show", True),
        )
