"""Drawing on image arrays with OpenCV: overlays that return new BGR ``uint8`` arrays.

These functions return pictures as arrays (to save, to encode for a widget, to put in a
report); :mod:`m1vision.viz` turns arrays into matplotlib figures.
"""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_image, check_number
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.preprocess import to_bgr, to_uint8

__all__ = ["overlay_edges"]


def _check_color(color, *, name: str = "color") -> tuple[int, int, int]:
    try:
        b, g, r = (int(c) for c in color)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a (B, G, R) triple, got {color!r}.") from None
    if not all(0 <= c <= 255 for c in (b, g, r)):
        raise InvalidParameterError(f"{name} values must be 0-255, got {color!r}.")
    return b, g, r


def overlay_edges(
    image: np.ndarray,
    edges: np.ndarray,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    alpha: float = 1.0,
) -> np.ndarray:
    """Draw an edge map in ``color`` over an image; returns a new BGR ``uint8`` image.

    Parameters
    ----------
    image : ndarray
        The picture underneath, gray or BGR, any dtype (made 8-bit by
        :func:`~m1vision.preprocess.to_uint8`; window a CT first for a useful picture).
    edges : ndarray
        2-D map of the same height and width; non-zero pixels are edges.
    color : (B, G, R)
        Edge color in OpenCV's channel order (default green).
    alpha : float
        Opacity of the edges, 0-1.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import overlay_edges
    >>> img = np.zeros((4, 4), np.uint8); edges = np.zeros((4, 4), np.uint8); edges[1, 1] = 255
    >>> out = overlay_edges(img, edges, color=(0, 0, 255))
    >>> out.shape, out[1, 1].tolist(), out[0, 0].tolist()
    ((4, 4, 3), [0, 0, 255], [0, 0, 0])
    """
    image = check_image(image)
    edges = check_image(edges, name="edges", allow_color=False)
    if edges.shape != image.shape[:2]:
        raise InvalidImageError(
            f"edges has shape {edges.shape} but image is {image.shape[:2]}; they must match."
        )
    alpha = check_number(alpha, name="alpha", minimum=0.0)
    if alpha > 1.0:
        raise InvalidParameterError(f"alpha must be in [0, 1], got {alpha}.")
    color = np.array(_check_color(color), np.float32)
    out = to_bgr(to_uint8(image)).copy()
    mask = edges != 0
    if alpha == 1.0:
        out[mask] = color.astype(np.uint8)
    else:
        blended = (1.0 - alpha) * out[mask].astype(np.float32) + alpha * color
        out[mask] = np.rint(blended).astype(np.uint8)
    return out
