"""The window, blur and Canny settings every edge view shares, as one checked type.

:class:`EdgeSettings` is what decides the 8-bit picture and its edges in both the edge view
(:class:`m1vision.views.edges.ExplorerParams`) and the tri-planar view
(:class:`m1vision.views.planes.TriPlanarParams`): both are an ``EdgeSettings`` with their
own fields added, so the window, the blur and the thresholds are checked in one place, by
the checkers of :func:`~m1vision.preprocess.window`, :func:`~m1vision.preprocess.gaussian_blur`
and :func:`~m1vision.preprocess.canny` (and of their pipeline steps).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from m1vision._checks import check_blur, check_canny, check_window
from m1vision.errors import InvalidParameterError

__all__ = ["EdgeSettings"]


@dataclasses.dataclass(frozen=True)
class EdgeSettings:
    """Display window, Gaussian blur and Canny thresholds; checked when made.

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

    Examples
    --------
    >>> from m1vision.views.settings import EdgeSettings
    >>> EdgeSettings(center=40, width=400, low=30, high=90).window
    (40.0, 400.0)
    >>> EdgeSettings(low=100, high=50)  # doctest: +ELLIPSIS
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

    def __post_init__(self) -> None:
        if (self.center is None) != (self.width is None):
            raise InvalidParameterError(
                "give both center and width for a window, or neither; got "
                f"center={self.center!r}, width={self.width!r}."
            )
        checked: dict[str, Any] = {}
        if self.center is not None:
            window = check_window(center=self.center, width=self.width)
            checked.update(center=window["center"], width=window["width"])
        checked.update(check_blur(ksize=self.ksize, sigma=self.sigma))
        checked.update(
            check_canny(self.low, self.high, aperture=self.aperture, l2_gradient=self.l2_gradient)
        )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def window(self) -> tuple[float, float] | None:
        """``(center, width)``, or None without a window."""
        return None if self.center is None else (self.center, self.width)

    @property
    def settings(self) -> EdgeSettings:
        """Only the shared settings (of an ``ExplorerParams`` or ``TriPlanarParams`` too)."""
        names = [f.name for f in dataclasses.fields(EdgeSettings)]
        return EdgeSettings(**{name: getattr(self, name) for name in names})

    def replace(self, **changes: Any):
        """Return a copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as a JSON-safe dict."""
        return dataclasses.asdict(self)
