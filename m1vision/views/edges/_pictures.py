"""Pictures of one image: the preview, a zoom's region, the curtain, the composed view."""

from __future__ import annotations

import cv2
import numpy as np

from m1vision._checks import check_image, check_int, check_number
from m1vision.draw import overlay_edges
from m1vision.errors import InvalidImageError
from m1vision.preprocess import resize, to_bgr
from m1vision.views.edges._params import ExplorerParams


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
