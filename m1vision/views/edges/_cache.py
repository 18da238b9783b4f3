"""The stages of the edge picture, each cached by the parameters it uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from m1vision._checks import check_image
from m1vision.errors import InvalidTypeError
from m1vision.preprocess import canny, gaussian_blur, to_uint8, window
from m1vision.views.edges._params import ExplorerParams
from m1vision.views.edges._pictures import _compose, preview, zoom_region


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
            raise InvalidTypeError(
                f"pipeline must be callable (an m1vision.pipeline.Pipeline or a function of "
                f"an image), got {type(pipeline).__name__}. Fix: pass e.g. "
                "Pipeline([GaussianBlur(ksize=5)]), or None for no pipeline."
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
            raise InvalidTypeError(
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
