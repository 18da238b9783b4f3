"""The edge view: what the edge and volume explorers show, computed without any widget.

:mod:`m1vision.widgets` is a thin layer of controls over this module: every picture the edge
explorer displays is ``render(image, params)`` for the :class:`ExplorerParams` its controls
hold, so anything seen in a notebook can be reproduced (and tested) without a browser;
:class:`EdgeView` and :class:`VolumeView` are those pictures with their state as data (see
:mod:`m1vision.views.state`).

The edge picture is made in stages, each a function of the one before::

    source  (the image, or its zoomed region at full resolution, downscaled to a preview
             unless full resolution; then ``pipeline``)
    -> windowed (8-bit: ``window(center, width)`` or, without a window, ``to_uint8``)
    -> blurred  (``gaussian_blur(ksize, sigma)``)
    -> edges    (``canny(low, high, aperture, l2_gradient)``)
    -> picture  (the view: edges, edges over the image, both side by side, or a curtain)

:class:`RenderCache` keeps the last result of every stage keyed by the parameters it depends
on, so moving a Canny threshold recomputes only Canny and the picture, not the window or the
blur. On the full-resolution image the ``"edges"`` picture equals
``canny(gaussian_blur(window(image, ...), ...), ...)`` exactly, which is what
:meth:`m1vision.widgets.EdgeExplorer.to_pipeline` builds.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import cv2
import numpy as np

from m1vision._checks import (
    check_axis,
    check_choice,
    check_image,
    check_int,
    check_number,
    check_volume,
)
from m1vision.draw import overlay_edges
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.preprocess import canny, gaussian_blur, resize, to_bgr, to_uint8, window
from m1vision.views.settings import EdgeSettings
from m1vision.views.state import View

__all__ = [
    "VIEWS",
    "EdgeView",
    "ExplorerParams",
    "RenderCache",
    "VolumeView",
    "curtain",
    "edge_fraction",
    "is_wide",
    "preview",
    "render",
    "take_slice",
    "zoom_region",
]

#: The view modes of the edge explorer.
VIEWS = ("edges", "overlay", "side_by_side", "curtain")


def is_wide(image: np.ndarray) -> bool:
    """Return True if ``image`` holds more than 8 bits (anything but ``uint8``): it needs a window.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import is_wide
    >>> is_wide(np.zeros((2, 2), np.uint8)), is_wide(np.zeros((2, 2), np.float32))
    (False, True)
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}.")
    return image.dtype != np.uint8


@dataclasses.dataclass(frozen=True)
class ExplorerParams(EdgeSettings):
    """Everything that decides what the edge explorer shows; checked when made.

    The window, blur and Canny fields are those of
    :class:`~m1vision.views.settings.EdgeSettings` (``center``, ``width``, ``ksize``,
    ``sigma``, ``low``, ``high``, ``l2_gradient``, ``aperture``), checked by its checker.

    Parameters
    ----------
    view : {"edges", "overlay", "side_by_side", "curtain"}
        The picture: the edge map (gray), the edges in green over the windowed image (BGR),
        the windowed image and the edge map next to each other (BGR), or a curtain (wipe):
        the windowed image left of the curtain, the overlay right of it (BGR).
    preview_size : int
        Longest side, in pixels, of the preview a larger image is shrunk to (>= 16).
    full_resolution : bool
        Work on the full image instead of the preview.
    zoom : float
        Magnification >= 1: the region ``1/zoom`` of the image's size, cut from the *full
        resolution* image (so a zoomed 2048x2048 radiograph shows its real pixels), previewed
        only if still larger than ``preview_size``.
    pan_x, pan_y : float
        Centre of the zoomed region as fractions (0-1) of the image's width and height.
    curtain : float
        Position (0-1 of the width) of the curtain in the ``"curtain"`` view.

    Examples
    --------
    >>> from m1vision.views.edges import ExplorerParams
    >>> p = ExplorerParams(center=40, width=400, low=30, high=90)
    >>> p.high, p.view
    (90.0, 'edges')
    >>> ExplorerParams(low=100, high=50)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    m1vision.errors.InvalidParameterError: Canny thresholds must satisfy low <= high, ...
    """

    view: str = "edges"
    preview_size: int = 512
    full_resolution: bool = False
    zoom: float = 1.0
    pan_x: float = 0.5
    pan_y: float = 0.5
    curtain: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()  # the window, blur and Canny checker

        def put(name, value):
            object.__setattr__(self, name, value)

        check_choice(self.view, name="view", choices=VIEWS)
        put("preview_size", check_int(self.preview_size, name="preview_size", minimum=16))
        if not isinstance(self.full_resolution, bool | np.bool_):
            raise TypeError(f"full_resolution must be a bool, got {self.full_resolution!r}.")
        put("full_resolution", bool(self.full_resolution))
        put("zoom", check_number(self.zoom, name="zoom", minimum=1.0))
        for name in ("pan_x", "pan_y", "curtain"):
            value = check_number(getattr(self, name), name=name, minimum=0.0)
            if value > 1.0:
                raise InvalidParameterError(
                    f"{name} must be a fraction between 0 and 1, got {value:g}; 0.5 is the middle."
                )
            put(name, value)


def preview(image: np.ndarray, *, max_size: int = 512) -> np.ndarray:
    """Shrink ``image`` so its longest side is at most ``max_size`` (area interpolation).

    An image that fits already is returned as it is (not copied); the aspect ratio is kept
    and the dtype too.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import preview
    >>> preview(np.zeros((2048, 1024), np.uint16)).shape
    (512, 256)
    >>> preview(np.zeros((100, 80), np.uint8)).shape
    (100, 80)
    """
    image = check_image(image)
    max_size = check_int(max_size, name="max_size", minimum=1)
    if max(image.shape[:2]) <= max_size:
        return image
    return resize(image, size=(max_size, max_size), letterbox=False, interpolation="area")


def edge_fraction(edges: np.ndarray) -> float:
    """Fraction (0-1) of the pixels of a 2-D edge map that are edges (non-zero).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import edge_fraction
    >>> e = np.zeros((4, 4), np.uint8); e[0] = 255
    >>> edge_fraction(e)
    0.25
    """
    edges = check_image(edges, name="edges", allow_color=False)
    return float(np.count_nonzero(edges)) / edges.size


def zoom_region(shape, *, zoom: float, pan_x: float = 0.5, pan_y: float = 0.5) -> tuple:
    """The ``(row0, row1, col0, col1)`` region of an image of ``shape`` a zoom shows.

    ``1/zoom`` of each side (at least one pixel), centred on ``(pan_x, pan_y)`` (fractions of
    the width and height) and moved inside the image where the centre is too near an edge.

    Examples
    --------
    >>> from m1vision.views.edges import zoom_region
    >>> zoom_region((2048, 2048), zoom=4.0, pan_x=0.5, pan_y=0.0)
    (0, 512, 768, 1280)
    """
    zoom = check_number(zoom, name="zoom", minimum=1.0)
    height, width = shape[:2]
    rows, cols = max(1, round(height / zoom)), max(1, round(width / zoom))
    row0 = min(height - rows, max(0, round(pan_y * height - rows / 2)))
    col0 = min(width - cols, max(0, round(pan_x * width - cols / 2)))
    return row0, row0 + rows, col0, col0 + cols


def curtain(left: np.ndarray, right: np.ndarray, *, position: float = 0.5) -> np.ndarray:
    """Wipe between two pictures of one size: ``left`` left of the curtain, ``right`` right.

    A one-pixel yellow line marks the curtain (at column ``round(position * width)``, clipped
    to the picture); both pictures are made BGR.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import curtain
    >>> out = curtain(np.zeros((2, 4), np.uint8), np.full((2, 4), 200, np.uint8), position=0.25)
    >>> out[0, :, 0].tolist()  # left, the yellow line (B=0), right
    [0, 0, 200, 200]
    """
    left, right = to_bgr(check_image(left, name="left")), to_bgr(check_image(right, name="right"))
    if left.shape != right.shape:
        raise InvalidImageError(
            f"left and right must have one shape, got {left.shape} and {right.shape}."
        )
    position = check_number(position, name="position", minimum=0.0)
    width = left.shape[1]
    x = min(width - 1, round(position * width))
    out = left.copy()
    out[:, x:] = right[:, x:]
    out[:, x] = (0, 255, 255)
    return out


def _compose(windowed: np.ndarray, edges: np.ndarray, p: ExplorerParams) -> np.ndarray:
    if p.view == "edges":
        picture = edges
    elif p.view == "overlay":
        picture = overlay_edges(windowed, edges)
    elif p.view == "curtain":
        picture = curtain(windowed, overlay_edges(windowed, edges), position=p.curtain)
    else:
        picture = np.hstack([to_bgr(windowed), to_bgr(edges)])
    if p.zoom > 1.0 and max(edges.shape) < p.preview_size:
        # a zoomed region smaller than the preview: show its real pixels as blocks
        scale = p.preview_size // max(edges.shape)
        if scale > 1:
            picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return picture


class RenderCache:
    """The stages of :func:`render` for one image, each cached by the parameters it uses.

    Parameters
    ----------
    image : ndarray
        The image to explore (gray or BGR, any supported dtype; not modified).
    pipeline : callable, optional
        Applied to the source (the preview, or the full image at full resolution) before
        the window, e.g. an :class:`m1vision.pipeline.Pipeline` of a CLAHE step.

    Attributes
    ----------
    counts : collections.Counter
        How many times each stage (``"source"``, ``"windowed"``, ``"blurred"``, ``"edges"``,
        ``"picture"``) was computed, not served from the cache.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import ExplorerParams, RenderCache
    >>> img = np.zeros((64, 64), np.uint8); img[16:48, 16:48] = 200
    >>> cache = RenderCache(img)
    >>> p = ExplorerParams(low=50, high=150)
    >>> _ = cache.render(p); _ = cache.render(p.replace(high=120))
    >>> cache.counts["blurred"], cache.counts["edges"]
    (1, 2)
    """

    STAGES = ("source", "windowed", "blurred", "edges", "picture")

    def __init__(
        self, image: np.ndarray, *, pipeline: Callable[[np.ndarray], np.ndarray] | None = None
    ):
        self.image = check_image(image)
        if pipeline is not None and not callable(pipeline):
            raise TypeError(
                f"pipeline must be callable (an m1vision.pipeline.Pipeline or a function of "
                f"an image), got {type(pipeline).__name__}."
            )
        self.pipeline = pipeline
        self.counts: Counter = Counter()
        self._memo: dict[str, tuple[tuple, Any]] = {}

    def clear(self) -> None:
        """Forget every cached stage (the counts are kept)."""
        self._memo.clear()

    def _stage(self, name: str, key: tuple, compute: Callable[[], Any]):
        hit = self._memo.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        self._memo.pop(name, None)
        value = compute()
        self.counts[name] += 1
        self._memo[name] = (key, value)
        return value

    @staticmethod
    def _keys(params: ExplorerParams) -> dict[str, tuple]:
        p = params
        source = (
            p.full_resolution,
            None if p.full_resolution else p.preview_size,
            p.zoom,
            None if p.zoom == 1.0 else (p.pan_x, p.pan_y),
        )
        windowed = (*source, p.center, p.width)
        blurred = (*windowed, p.ksize, p.sigma)
        edges = (*blurred, p.low, p.high, p.aperture, p.l2_gradient)
        return {
            "source": source,
            "windowed": windowed,
            "blurred": blurred,
            "edges": edges,
            "picture": (*edges, p.view, p.view == "curtain" and p.curtain),
        }

    def _check(self, params) -> ExplorerParams:
        if not isinstance(params, ExplorerParams):
            raise TypeError(
                "params must be an m1vision.views.edges.ExplorerParams, got "
                f"{type(params).__name__}; "
                "build one with ExplorerParams(center=..., width=..., low=..., high=...)."
            )
        return params

    def source(self, params: ExplorerParams) -> np.ndarray:
        """The image the other stages work on: preview or full, after ``pipeline``."""
        p = self._check(params)

        def compute():
            src = self.image
            if p.zoom > 1.0:  # cut from the full-resolution image
                r0, r1, c0, c1 = zoom_region(src.shape, zoom=p.zoom, pan_x=p.pan_x, pan_y=p.pan_y)
                src = src[r0:r1, c0:c1]
            if not p.full_resolution:
                src = preview(src, max_size=p.preview_size)
            if self.pipeline is not None:
                src = check_image(self.pipeline(src), name="the pipeline's output")
            return src

        return self._stage("source", self._keys(p)["source"], compute)

    def windowed(self, params: ExplorerParams) -> np.ndarray:
        """The 8-bit picture of the source: windowed, or scaled by ``to_uint8``."""
        p = self._check(params)

        def compute():
            src = self.source(p)
            if p.center is None:
                return to_uint8(src)
            return window(src, center=p.center, width=p.width)

        return self._stage("windowed", self._keys(p)["windowed"], compute)

    def blurred(self, params: ExplorerParams) -> np.ndarray:
        """The windowed picture after the Gaussian blur."""
        p = self._check(params)
        return self._stage(
            "blurred",
            self._keys(p)["blurred"],
            lambda: gaussian_blur(self.windowed(p), ksize=p.ksize, sigma=p.sigma),
        )

    def edges(self, params: ExplorerParams) -> np.ndarray:
        """The Canny edge map (``uint8``, 0 or 255) of the blurred picture."""
        p = self._check(params)
        return self._stage(
            "edges",
            self._keys(p)["edges"],
            lambda: canny(
                self.blurred(p),
                low=p.low,
                high=p.high,
                aperture=p.aperture,
                l2_gradient=p.l2_gradient,
            ),
        )

    def render(self, params: ExplorerParams) -> np.ndarray:
        """The picture for ``params`` (see :func:`render`)."""
        p = self._check(params)
        return self._stage(
            "picture",
            self._keys(p)["picture"],
            lambda: _compose(self.windowed(p), self.edges(p), p),
        )


def render(
    image: np.ndarray,
    params: ExplorerParams,
    *,
    pipeline: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """The picture the edge explorer shows for ``image`` and ``params``.

    Parameters
    ----------
    image : ndarray
        Gray or BGR image, any supported dtype (CT in HU: float32).
    params : ExplorerParams
        Window, blur, Canny, view and preview settings.
    pipeline : callable, optional
        Applied to the source before the window (see :class:`RenderCache`).

    Returns
    -------
    ndarray of uint8
        ``view="edges"``: the 2-D edge map (0/255); ``"overlay"``: a BGR picture with the edges
        in green over the windowed image; ``"side_by_side"``: BGR, the windowed image left and
        the edge map right (twice as wide). Of the preview size unless
        ``params.full_resolution``.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.edges import ExplorerParams, render
    >>> hu = np.full((64, 64), -1000.0, np.float32); hu[16:48, 16:48] = 40.0
    >>> p = ExplorerParams(center=40, width=400, view="side_by_side")
    >>> render(hu, p).shape
    (64, 128, 3)
    """
    return RenderCache(image, pipeline=pipeline).render(params)


def _image_of(image, *, name: str = "image") -> np.ndarray:
    """The array of an ndarray or of an object with ``.pixels`` (a MedicalImage)."""
    if not isinstance(image, np.ndarray) and hasattr(image, "pixels"):
        image = image.pixels
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray or a MedicalImage, got {type(image).__name__}."
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
        raise TypeError(f"params must be a {cls.__name__} or a dict, got {type(params).__name__}.")
    return params


def overlaid_picture(cache: RenderCache, params: ExplorerParams, overlay) -> np.ndarray:
    """``cache.render(params)`` with ``overlay``'s label slice drawn over the image part.

    The label map is on the full image's grid: a zoom cuts the same region from it; it is
    drawn over the whole picture ("edges", "overlay", "curtain") or over the image half of
    "side_by_side". None (or an overlay not shown): the picture itself.
    """
    picture = cache.render(params)
    if overlay is None or not overlay.show:
        return picture
    slices = overlay.arrays()
    if params.zoom > 1.0:
        r0, r1, c0, c1 = zoom_region(cache.image.shape, zoom=params.zoom, pan_x=params.pan_x,
                                     pan_y=params.pan_y)  # fmt: skip
        slices = {name: lab[r0:r1, c0:c1] for name, lab in slices.items()}
    if params.view != "side_by_side":
        return overlay.draw(picture, slices)
    half = picture.shape[1] // 2
    out = picture.copy()
    out[:, :half] = overlay.draw(np.ascontiguousarray(picture[:, :half]), slices)
    return out


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
