"""The histogram picture and the window view: what the window explorer shows, without widgets."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

import numpy as np

from m1vision._checks import check_image, check_int, check_number, check_window
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError
from m1vision.preprocess import window as apply_window
from m1vision.views.edges import _image_of, is_wide, preview
from m1vision.views.state import View

__all__ = ["WindowParams", "WindowView", "histogram_picture", "value_range_of"]


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
    >>> from m1vision.views.histogram import histogram_picture
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


def value_range_of(image: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of ``image``, widened to ``(v, v + 1)`` for a constant image.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.histogram import value_range_of
    >>> value_range_of(np.full((2, 2), 5.0))
    (5.0, 6.0)
    """
    lo, hi = float(image.min()), float(image.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


@dataclasses.dataclass(frozen=True)
class WindowParams:
    """What the window explorer shows: the window and how the picture is made; checked.

    Parameters
    ----------
    center, width : float
        The display window, ``width > 0`` (the checker of
        :func:`~m1vision.preprocess.window`).
    preview_size : int
        The image is shown downscaled to this longest side.
    bins : int
        Histogram bins over the image's value range (>= 2).

    Examples
    --------
    >>> from m1vision.views.histogram import WindowParams
    >>> WindowParams(center=40, width=400).to_dict()
    {'center': 40.0, 'width': 400.0, 'preview_size': 512, 'bins': 128}
    """

    center: float
    width: float
    preview_size: int = 512
    bins: int = 128

    def __post_init__(self) -> None:
        checked: dict[str, Any] = check_window(center=self.center, width=self.width)
        object.__setattr__(self, "center", checked["center"])
        object.__setattr__(self, "width", checked["width"])
        size = check_int(self.preview_size, name="preview_size", minimum=1)
        object.__setattr__(self, "preview_size", size)
        object.__setattr__(self, "bins", check_int(self.bins, name="bins", minimum=2))

    def replace(self, **changes: Any) -> WindowParams:
        """Return a copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as a JSON-safe dict."""
        return dataclasses.asdict(self)


def _window_params(params) -> WindowParams:
    if isinstance(params, dict):
        params = WindowParams(**params)
    if not isinstance(params, WindowParams):
        raise InvalidTypeError(
            f"params must be a WindowParams or a dict, got {type(params).__name__}. Fix: pass "
            "WindowParams(...) or its fields as a dict."
        )
    return params


class WindowView(View, kind="WindowExplorer"):
    """The window explorer's pictures: the windowed preview and the histogram with the window.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.histogram import WindowView
    >>> hu = np.linspace(-1000, 1000, 64 * 64, dtype=np.float32).reshape(64, 64)
    >>> view = WindowView(hu, {"center": 40.0, "width": 400.0})
    >>> [p.shape for p in view.pictures()]
    [(64, 64), (120, 360, 3)]
    """

    PARTS: ClassVar[tuple[str, ...]] = ("params",)

    def __init__(self, image, params):
        image = check_image(_image_of(image), allow_color=False)
        if not is_wide(image):
            raise InvalidImageError(
                "image is 8-bit (uint8); a display window is for images wider than 8 bits "
                "(CT in HU, 16-bit). Explore an 8-bit image with EdgeExplorer instead."
            )
        params = _window_params(params)
        self.image, self.params = image, params
        self.value_range = value_range_of(image)
        self._cached: dict[tuple, np.ndarray] = {}  # shared by with_params' views

    def with_params(self, params) -> WindowView:
        """The view of the same image with other ``params`` (sharing its preview and counts)."""
        params = _window_params(params)
        new = copy.copy(self)
        new.params = params
        return new

    @property
    def array(self) -> np.ndarray:
        return self.image

    def parts(self) -> dict:
        return {"params": self.params.to_dict()}

    @classmethod
    def _from_parts(cls, parts: dict, image) -> WindowView:
        return cls(image, parts["params"])

    def windowed(self) -> np.ndarray:
        """The windowed preview (``uint8``)."""
        key = ("preview", self.params.preview_size)
        if key not in self._cached:
            self._cached[key] = preview(self.image, max_size=self.params.preview_size)
        return apply_window(self._cached[key], center=self.params.center, width=self.params.width)

    def histogram(self) -> np.ndarray:
        """The histogram picture with the window marked (BGR ``uint8``)."""
        key = ("counts", self.params.bins)
        if key not in self._cached:
            self._cached[key] = np.histogram(
                self.image, bins=self.params.bins, range=self.value_range
            )[0]
        return histogram_picture(
            self.image,
            window=(self.params.center, self.params.width),
            bins=self.params.bins,
            value_range=self.value_range,
            counts=self._cached[key],
        )

    def pictures(self) -> list[np.ndarray]:
        return [self.windowed(), self.histogram()]
