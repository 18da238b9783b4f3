"""The tri-planar explorer's view: the three pictures with their state as data."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from m1vision.errors import InvalidTypeError
from m1vision.geometry import PLANES
from m1vision.views.overlay import Overlay
from m1vision.views.planes._cache import PlaneCache
from m1vision.views.planes._params import TriPlanarParams
from m1vision.views.state import View


def _geometry_state(cache: PlaneCache, modality) -> dict:
    return {
        "spacing": list(cache.spacing),
        "affine": cache.affine.tolist(),
        "modality": modality,
    }


class TriPlanarView(View, kind="TriPlanarExplorer"):
    """The tri-planar explorer's pictures: the three planes of a volume for ``params``.

    Parameters
    ----------
    volume : ndarray or MedicalImage
        ``(Z, H, W)`` in the package's layout; a MedicalImage brings its spacing, affine and
        modality.
    params : TriPlanarParams or dict
    spacing, affine, modality : optional
        The geometry of a bare array (a MedicalImage's own wins where these are None).
    cache : PlaneCache, optional
        The cache to compute with (an explorer passes its own).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import TriPlanarView
    >>> vol = np.zeros((4, 8, 8), np.float32)
    >>> view = TriPlanarView(vol, {"index": [2, 4, 4], "center": 0.0, "width": 1.0,
    ...                            "max_size": 32}, spacing=(2.0, 1.0, 1.0))
    >>> state = view.state()
    >>> state["geometry"]["spacing"], [p.shape for p in view.pictures()]
    ([2.0, 1.0, 1.0], [(32, 32), (32, 32), (32, 32)])
    >>> TriPlanarView.from_state(state, vol).state() == state
    True
    """

    PARTS: ClassVar[tuple[str, ...]] = ("params", "geometry", "overlay")

    def __init__(
        self, volume, params, *, spacing=None, affine=None, modality=None,
        cache: PlaneCache | None = None, labels=None, reference=None, overlay=None,
    ):  # fmt: skip
        if isinstance(params, dict):
            params = TriPlanarParams(**{**params, "index": tuple(params.get("index", (0, 0, 0)))})
        if not isinstance(params, TriPlanarParams):
            raise InvalidTypeError(
                f"params must be a TriPlanarParams or a dict, got {type(params).__name__}. "
                "Fix: pass TriPlanarParams(center=..., width=...) or its fields as a dict."
            )
        if cache is None:
            cache = PlaneCache(volume, spacing=spacing, affine=affine)
        if modality is None and not isinstance(volume, np.ndarray):
            modality = getattr(volume, "modality", None)
        self.params, self.cache, self.modality = params, cache, modality
        cache.check_index(params.index)
        if overlay is None and labels is not None:
            overlay = Overlay(labels, like=self.grid_image(), reference=reference)
        elif overlay is not None and not isinstance(overlay, Overlay):  # settings as a dict
            overlay = Overlay(labels, like=self.grid_image(), reference=reference, **overlay)
        #: the label overlay (an :class:`~m1vision.views.overlay.Overlay`) or None
        self.overlay = overlay

    def grid_image(self):
        """The volume as a MedicalImage with the view's grid (what label maps must match)."""
        from m1vision.io import MedicalImage

        return MedicalImage(
            self.cache.pixels,
            spacing=self.cache.spacing,
            modality=self.modality,
            metadata={"affine": self.cache.affine.tolist()},
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {} if self.overlay is None else self.overlay.arrays()

    def render(self, plane: str, params: TriPlanarParams | None = None) -> np.ndarray:
        """``plane``'s picture for ``params`` (default the view's), with the overlay."""
        return self.cache.render(plane, self.params if params is None else params,
                                 self.overlay)  # fmt: skip

    def label_text(self, voxel) -> str:
        """The name of the label at ``voxel`` ("" without an overlay or in the background)."""
        return "" if self.overlay is None else self.overlay.label_at(voxel)[1]

    @property
    def array(self) -> np.ndarray:
        return self.cache.pixels

    def parts(self) -> dict:
        parts = {
            "params": self.params.to_dict(),
            "geometry": _geometry_state(self.cache, self.modality),
        }
        if self.overlay is not None:  # absent without one: older m1vision reads such states
            parts["overlay"] = self.overlay.part()
        return parts

    @classmethod
    def upgrade_parts(cls, parts: dict, version: int) -> dict:
        if version == 0:  # the first records kept the geometry beside the params
            parts = dict(parts)
            parts["geometry"] = {
                "spacing": parts.pop("spacing"),
                "affine": parts.pop("affine"),
                "modality": parts.pop("modality", None),
            }
        return parts

    @classmethod
    def _from_parts(cls, parts: dict, image, *, labels=None, reference=None) -> TriPlanarView:
        geometry = parts.get("geometry") or {}
        if isinstance(image, np.ndarray):  # a bare array: the state's geometry
            view = cls(
                image,
                parts["params"],
                spacing=geometry.get("spacing"),
                affine=geometry.get("affine"),
                modality=geometry.get("modality"),
            )
        else:
            view = cls(image, parts["params"])  # a MedicalImage brings its own
        view.overlay = Overlay.from_part(
            parts.get("overlay"), view.grid_image(), {"labels": labels, "reference": reference}
        )
        return view

    def pictures(self) -> list[np.ndarray]:
        return [self.render(plane) for plane in PLANES]
