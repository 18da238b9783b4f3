"""What the interactive explorers show, computed without any widget.

:mod:`m1vision.widgets` is a thin layer of controls over this module: every picture an
explorer displays is ``render(image, params)`` for the :class:`ExplorerParams` its controls
hold, so anything seen in a notebook can be reproduced (and tested) without a browser.

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
from typing import Any

import cv2
import numpy as np

from m1vision._checks import (
    check_blur,
    check_canny,
    check_choice,
    check_image,
    check_int,
    check_number,
    check_window,
)
from m1vision.draw import overlay_edges
from m1vision.errors import ImageWriteError, InvalidImageError, InvalidParameterError
from m1vision.preprocess import canny, gaussian_blur, resize, to_bgr, to_uint8, window

__all__ = [
    "VIEWS",
    "ExplorerParams",
    "RenderCache",
    "curtain",
    "edge_fraction",
    "encode_png",
    "histogram_picture",
    "is_wide",
    "preview",
    "render",
    "zoom_region",
]

#: The view modes of the edge explorer.
VIEWS = ("edges", "overlay", "side_by_side", "curtain")


def is_wide(image: np.ndarray) -> bool:
    """Return True if ``image`` holds more than 8 bits (anything but ``uint8``): it needs a window.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.render import is_wide
    >>> is_wide(np.zeros((2, 2), np.uint8)), is_wide(np.zeros((2, 2), np.float32))
    (False, True)
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}.")
    return image.dtype != np.uint8


@dataclasses.dataclass(frozen=True)
class ExplorerParams:
    """Everything that decides what the edge explorer shows; checked when made.

    Parameters
    ----------
    center, width : float or None
        Display window in the image's units (HU for CT), ``width > 0``. Give both or
        neither; without a window, images wider than 8 bits are scaled by
        :func:`~m1vision.preprocess.to_uint8` (their own min and max) and ``uint8``
        images are used as they are.
    ksize : int
        Gaussian kernel size, odd and >= 1 (1 = no blur).
    sigma : float
        Gaussian standard deviation, >= 0 (0 = derived from ``ksize``).
    low, high : float
        Canny hysteresis thresholds in 8-bit units, ``0 <= low <= high``.
    l2_gradient : bool
        Exact L2 gradient magnitude in Canny.
    aperture : {3, 5, 7}
        Sobel aperture of Canny.
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
    >>> from m1vision.render import ExplorerParams
    >>> p = ExplorerParams(center=40, width=400, low=30, high=90)
    >>> p.high, p.view
    (90.0, 'edges')
    >>> ExplorerParams(low=100, high=50)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    m1vision.errors.InvalidParameterError: Canny thresholds must satisfy low <= high, ...
    """

    center: float | None = None
    width: float | None = None
    ksize: int = 5
    sigma: float = 0.0
    low: float = 50.0
    high: float = 150.0
    l2_gradient: bool = False
    aperture: int = 3
    view: str = "edges"
    preview_size: int = 512
    full_resolution: bool = False
    zoom: float = 1.0
    pan_x: float = 0.5
    pan_y: float = 0.5
    curtain: float = 0.5

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        if (self.center is None) != (self.width is None):
            raise InvalidParameterError(
                "give both center and width for a window, or neither; got "
                f"center={self.center!r}, width={self.width!r}."
            )
        # the checkers of window, gaussian_blur and canny (and of their pipeline steps)
        if self.center is not None:
            checked = check_window(center=self.center, width=self.width)
            put("center", checked["center"])
            put("width", checked["width"])
        for name, value in check_blur(ksize=self.ksize, sigma=self.sigma).items():
            put(name, value)
        canny_options = check_canny(
            self.low, self.high, aperture=self.aperture, l2_gradient=self.l2_gradient
        )
        for name, value in canny_options.items():
            put(name, value)
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

    def replace(self, **changes: Any) -> ExplorerParams:
        """Return a copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the parameters as a JSON-safe dict."""
        return dataclasses.asdict(self)


def preview(image: np.ndarray, *, max_size: int = 512) -> np.ndarray:
    """Shrink ``image`` so its longest side is at most ``max_size`` (area interpolation).

    An image that fits already is returned as it is (not copied); the aspect ratio is kept
    and the dtype too.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.render import preview
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
    >>> from m1vision.render import edge_fraction
    >>> e = np.zeros((4, 4), np.uint8); e[0] = 255
    >>> edge_fraction(e)
    0.25
    """
    edges = check_image(edges, name="edges", allow_color=False)
    return float(np.count_nonzero(edges)) / edges.size


def encode_png(array: np.ndarray, *, compression: int = 1, bilevel: bool | None = None) -> bytes:
    """Encode a ``uint8``/``uint16`` gray or BGR(A) array as PNG bytes (OpenCV, fast level).

    ``compression`` is zlib's level 0-9; 1 (default) is several times faster than OpenCV's
    default 3 for a slightly larger file, the right trade for a live widget. A 2-D ``uint8``
    image holding only 0 and 255 (an edge map or a mask) is written as a 1-bit PNG, several
    times faster again. The bytes always decode
    (``cv2.imdecode(..., cv2.IMREAD_UNCHANGED)``) to exactly ``array``.

    Parameters
    ----------
    array : ndarray
        ``uint8`` or ``uint16``; gray, BGR or BGRA.
    compression : int
        zlib level, 0-9.
    bilevel : bool, optional
        Write 1 bit per pixel. ``None`` (default) decides by looking at the values; pass
        ``True`` only for a 2-D ``uint8`` array of 0 and 255 (checked), ``False`` to never.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.render import encode_png
    >>> encode_png(np.zeros((4, 4), np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    array = check_image(array, name="array")
    if array.dtype not in (np.uint8, np.uint16):
        raise InvalidImageError(
            f"array has dtype {array.dtype}; PNG holds uint8 or uint16. Convert it first, "
            "e.g. m1vision.preprocess.to_uint8(array)."
        )
    compression = check_int(compression, name="compression", minimum=0)
    if compression > 9:
        raise InvalidParameterError(f"compression must be 0-9, got {compression}.")
    if bilevel is not None and not isinstance(bilevel, bool):
        raise TypeError(f"bilevel must be True, False or None, got {bilevel!r}.")
    if bilevel is not False:
        binary = (
            array.ndim == 2
            and array.dtype == np.uint8
            and not np.any((array != 0) & (array != 255))
        )
        if bilevel and not binary:
            raise InvalidParameterError(
                "bilevel=True needs a 2-D uint8 array of only 0 and 255, got "
                f"shape {array.shape}, dtype {array.dtype}; leave bilevel=None to decide."
            )
        bilevel = binary
    flags = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if bilevel:
        flags += [cv2.IMWRITE_PNG_BILEVEL, 1]
    ok, buf = cv2.imencode(".png", array, flags)
    if not ok:  # pragma: no cover - OpenCV refuses nothing we let through
        raise ImageWriteError(f"OpenCV could not encode an array of shape {array.shape} as PNG.")
    return buf.tobytes()


def zoom_region(shape, *, zoom: float, pan_x: float = 0.5, pan_y: float = 0.5) -> tuple:
    """The ``(row0, row1, col0, col1)`` region of an image of ``shape`` a zoom shows.

    ``1/zoom`` of each side (at least one pixel), centred on ``(pan_x, pan_y)`` (fractions of
    the width and height) and moved inside the image where the centre is too near an edge.

    Examples
    --------
    >>> from m1vision.render import zoom_region
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
    >>> from m1vision.render import curtain
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
    >>> from m1vision.render import ExplorerParams, RenderCache
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
                f"params must be an m1vision.render.ExplorerParams, got {type(params).__name__}; "
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
    >>> from m1vision.render import ExplorerParams, render
    >>> hu = np.full((64, 64), -1000.0, np.float32); hu[16:48, 16:48] = 40.0
    >>> p = ExplorerParams(center=40, width=400, view="side_by_side")
    >>> render(hu, p).shape
    (64, 128, 3)
    """
    return RenderCache(image, pipeline=pipeline).render(params)


def histogram_picture(
    image: np.ndarray,
    *,
    window: tuple[float, float] | None = None,
    bins: int = 128,
    size: tuple[int, int] = (120, 360),
    value_range: tuple[float, float] | None = None,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """Draw the histogram of ``image`` with OpenCV (fast enough for a slider); returns BGR.

    Bar heights are log-scaled (``log1p`` of the counts) so a CT's large air peak does not
    flatten the rest; the window ``(center, width)``, if given, is shaded blue with its centre
    as a red line (parts outside ``value_range`` are cut).

    Parameters
    ----------
    image : ndarray
        Gray image (a color image is counted over all channels).
    window : (center, width), optional
        The display window to mark.
    bins : int
        Number of bins over ``value_range``.
    size : (height, width)
        Picture size in pixels.
    value_range : (low, high), optional
        The values the x axis spans; default the image's min and max.
    counts : ndarray, optional
        Precomputed ``numpy.histogram(image, bins, value_range)[0]`` to reuse across calls.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.render import histogram_picture
    >>> img = np.arange(10000, dtype=np.float32).reshape(100, 100)
    >>> histogram_picture(img, window=(5000, 2000), size=(50, 200)).shape
    (50, 200, 3)
    """
    image = check_image(image)
    bins = check_int(bins, name="bins", minimum=1)
    if not isinstance(size, tuple | list) or len(size) != 2:
        raise InvalidParameterError(f"size must be (height, width), got {size!r}.")
    height = check_int(size[0], name="size[0]", minimum=8)
    width = check_int(size[1], name="size[1]", minimum=8)
    if value_range is None:
        lo, hi = float(image.min()), float(image.max())
    else:
        if not isinstance(value_range, tuple | list) or len(value_range) != 2:
            raise InvalidParameterError(f"value_range must be (low, high), got {value_range!r}.")
        lo = check_number(value_range[0], name="value_range[0]")
        hi = check_number(value_range[1], name="value_range[1]")
    if hi <= lo:
        hi = lo + 1.0
    if counts is None:
        counts, _ = np.histogram(image, bins=bins, range=(lo, hi))
    elif len(counts) != bins:
        raise InvalidParameterError(f"counts has {len(counts)} bins but bins={bins}.")
    out = np.full((height, width, 3), 255, np.uint8)

    def x_of(value: float) -> int:
        return round((value - lo) / (hi - lo) * (width - 1))

    if window is not None:
        if not isinstance(window, tuple | list) or len(window) != 2:
            raise InvalidParameterError(f"window must be (center, width), got {window!r}.")
        checked = check_window(center=window[0], width=window[1])
        center, wwidth = checked["center"], checked["width"]
        x0 = max(0, min(width - 1, x_of(center - wwidth / 2)))
        x1 = max(0, min(width - 1, x_of(center + wwidth / 2)))
        out[:, x0 : x1 + 1] = (250, 225, 200)
    levels = np.log1p(np.asarray(counts, np.float64))
    top = levels.max() if levels.max() > 0 else 1.0
    bar_h = np.rint(levels / top * (height - 4)).astype(int)
    edges_x = np.linspace(0, width, bins + 1).round().astype(int)
    for i in range(bins):
        if bar_h[i]:
            x_a, x_b = edges_x[i], max(edges_x[i] + 1, edges_x[i + 1])
            out[height - bar_h[i] :, x_a:x_b] = (90, 90, 90)
    if window is not None and lo <= center <= hi:
        xc = x_of(center)
        out[:, xc : xc + 1] = (0, 0, 220)
    return out
