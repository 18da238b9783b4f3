"""The edge explorer's settings: :class:`ExplorerParams`, its view modes, ``is_wide``."""

from __future__ import annotations

import dataclasses

import numpy as np

from m1vision._checks import check_bool, check_choice, check_int, check_number
from m1vision.errors import InvalidParameterError, InvalidTypeError
from m1vision.views.settings import EdgeSettings

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
        raise InvalidTypeError(
            f"image must be a numpy.ndarray, got {type(image).__name__}. Fix: convert it with "
            "numpy.asarray(image), or pass a MedicalImage's pixels."
        )
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
        put("full_resolution", check_bool(self.full_resolution, name="full_resolution"))
        put("zoom", check_number(self.zoom, name="zoom", minimum=1.0))
        for name in ("pan_x", "pan_y", "curtain"):
            value = check_number(getattr(self, name), name=name, minimum=0.0)
            if value > 1.0:
                raise InvalidParameterError(
                    f"{name} must be a fraction between 0 and 1, got {value:g}; 0.5 is the middle."
                )
            put(name, value)
