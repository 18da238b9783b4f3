"""The edge and volume explorers' views: their pictures with their state as data."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from m1vision._checks import check_axis, check_int, check_volume
from m1vision.errors import InvalidParameterError, InvalidTypeError
from m1vision.views.edges._cache import RenderCache, overlaid_picture
from m1vision.views.edges._params import ExplorerParams
from m1vision.views.state import View


def _image_of(image, *, name: str = "image") -> np.ndarray:
    """The array of an ndarray or of an object with ``.pixels`` (a MedicalImage)."""
    if not isinstance(image, np.ndarray) and hasattr(image, "pixels"):
        image = image.pixels
    if not isinstance(image, np.ndarray):
        raise InvalidTypeError(
            f"{name} must be a numpy.ndarray or a MedicalImage, got {type(image).__name__}. "
            "Fix: read a file with m1vision.io.read_any(path), or convert with numpy.asarray."
        )
    return image


def _pipeline_state(pipeline) -> dict | None:
    if pipeline is None:
        return None
    from m1vision.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline):
        from m1vision.errors import RecordError

        raise RecordError(
            "this EdgeExplorer's pipeline is a plain function, which a state cannot hold; "
            "build the explorer with an m1vision.pipeline.Pipeline to record it."
        )
    return pipeline.to_dict()


def _pipeline_of(state: dict | None):
    if state is None:
        return None
    from m1vision.pipeline import Pipeline

    return Pipeline.from_dict(state)  # registered steps only: a state never imports names


def _params_of(params, cls):
    if isinstance(params, dict):
        return cls(**params)
    if not isinstance(params, cls):
        raise InvalidTypeError(
            f"params must be a {cls.__name__} or a dict, got {type(params).__name__}. Fix: "
            f"pass {cls.__name__}(...) or its fields as a dict."
        )
    return params


def _image_grid(image):
    """The 2-D image as a MedicalImage (the grid a mask must match)."""
    from m1vision.io import MedicalImage

    if isinstance(image, MedicalImage):
        return image
    return MedicalImage(np.asarray(image))


class EdgeView(View, kind="EdgeExplorer"):
    """The edge explorer's picture of one 2-D image: ``render(image, params, pipeline=...)``.

    Parameters
    ----------
    image : ndarray or MedicalImage
        The 2-D image (not modified).
    params : ExplorerParams or dict
    pipeline : m1vision.pipeline.Pipeline or callable, optional
        Applied to the source before the window (a state holds only a Pipeline).
    cache : RenderCache, optional
        The cache to compute with (an explorer passes its own); made from ``image`` if not
        given.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import EdgeView
    >>> img = np.zeros((32, 32), np.uint8); img[8:24, 8:24] = 200
    >>> state = EdgeView(img, {"low": 30.0, "high": 90.0}).state()
    >>> state["kind"], state["params"]["high"]
    ('EdgeExplorer', 90.0)
    >>> again = EdgeView.from_state(state, img)
    >>> bool((again.pictures()[0] == EdgeView(img, {"low": 30.0, "high": 90.0}).picture()).all())
    True
    """

    PARTS: ClassVar[tuple[str, ...]] = ("params", "pipeline", "overlay")

    def __init__(self, image, params=None, *, pipeline=None, cache: RenderCache | None = None,
                 labels=None, overlay=None):  # fmt: skip
        self.params = _params_of(ExplorerParams() if params is None else params, ExplorerParams)
        self.pipeline = pipeline
        if cache is None:
            cache = RenderCache(_image_of(image), pipeline=pipeline)
        self.cache = cache
        if overlay is None and labels is not None:
            overlay = {}
        if isinstance(overlay, dict):  # settings: the mask (label map) checked on the grid
            from m1vision.views.overlay import Overlay

            overlay = Overlay(labels, like=_image_grid(image if cache is None else cache.image),
                              **overlay)  # fmt: skip
        #: the mask / label overlay (an :class:`~m1vision.views.overlay.Overlay`) or None
        self.overlay = overlay

    def arrays(self) -> dict[str, np.ndarray]:
        return {} if self.overlay is None else self.overlay.arrays()

    @property
    def array(self) -> np.ndarray:
        return self.cache.image

    def parts(self) -> dict:
        parts = {"params": self.params.to_dict(), "pipeline": _pipeline_state(self.pipeline)}
        if self.overlay is not None:  # absent without one: older m1vision reads such states
            parts["overlay"] = self.overlay.part()
        return parts

    @classmethod
    def _from_parts(cls, parts: dict, image, *, labels=None, reference=None) -> EdgeView:
        from m1vision.views.overlay import Overlay

        view = cls(image, parts["params"], pipeline=_pipeline_of(parts.get("pipeline")))
        view.overlay = Overlay.from_part(parts.get("overlay"), _image_grid(view.cache.image),
                                         {"labels": labels, "reference": reference})  # fmt: skip
        return view

    def pictures(self) -> list[np.ndarray]:
        return [overlaid_picture(self.cache, self.params, self.overlay)]


def take_slice(volume: np.ndarray, axis: int, index: int | None = None) -> np.ndarray:
    """The 2-D slice ``index`` of ``volume`` along ``axis`` (checked; contiguous).

    ``index=None`` is the middle slice.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import take_slice
    >>> take_slice(np.arange(24).reshape(2, 3, 4), 2, 1).tolist()
    [[1, 5, 9], [13, 17, 21]]
    """
    volume = check_volume(volume, name="volume", hint="for one 2-D image use EdgeExplorer")
    axis = check_axis(axis)
    n = volume.shape[axis]
    index = n // 2 if index is None else check_int(index, name="index", minimum=0)
    if index >= n:
        raise InvalidParameterError(f"index must be < {n} along axis {axis}, got {index}.")
    return np.ascontiguousarray(np.take(volume, index, axis=axis))


class VolumeView(View, kind="VolumeExplorer"):
    """The volume explorer's picture: the edge view of one slice of a 3-D volume.

    Parameters
    ----------
    volume : ndarray or MedicalImage
        ``(Z, H, W)``.
    params : ExplorerParams or dict
        The edge settings of the slice.
    axis, index : int
        The slice: ``index`` along ``axis`` (0, 1 or 2).
    pipeline : m1vision.pipeline.Pipeline, optional
    cache : RenderCache, optional
        The cache of that slice to compute with (an explorer passes its own).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import VolumeView
    >>> vol = np.zeros((4, 16, 16), np.float32); vol[:, 4:12, 4:12] = 100.0
    >>> view = VolumeView(vol, {"center": 50.0, "width": 100.0}, axis=0, index=2)
    >>> view.state()["slice"], view.pictures()[0].shape
    ({'axis': 0, 'index': 2}, (16, 16))
    """

    PARTS: ClassVar[tuple[str, ...]] = ("params", "pipeline", "slice")

    def __init__(self, volume, params=None, *, axis: int = 0, index: int = 0, pipeline=None,
                 cache: RenderCache | None = None):  # fmt: skip
        self.volume = _image_of(volume, name="volume")
        self.edge = EdgeView(
            None if cache is not None else take_slice(self.volume, axis, index),
            ExplorerParams() if params is None else params,
            pipeline=pipeline,
            cache=cache,
        )
        self.axis, self.index = int(axis), int(index)

    @property
    def array(self) -> np.ndarray:
        return self.volume

    def parts(self) -> dict:
        return {**self.edge.parts(), "slice": {"axis": self.axis, "index": self.index}}

    @classmethod
    def _from_parts(cls, parts: dict, image) -> VolumeView:
        where = parts["slice"]
        return cls(
            image,
            parts["params"],
            axis=where["axis"],
            index=where["index"],
            pipeline=_pipeline_of(parts.get("pipeline")),
        )

    def pictures(self) -> list[np.ndarray]:
        return self.edge.pictures()
