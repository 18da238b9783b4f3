"""The edge view's names at their first import path; they live in :mod:`m1vision.views`.

``ExplorerParams``, ``RenderCache``, ``render`` and the edge view's helpers are in
:mod:`m1vision.views.edges`, ``histogram_picture`` in :mod:`m1vision.views.histogram`,
``encode_png`` in :mod:`m1vision.views.png`.
"""

from m1vision.views.edges import (
    VIEWS,
    ExplorerParams,
    RenderCache,
    curtain,
    edge_fraction,
    is_wide,
    preview,
    render,
    zoom_region,
)
from m1vision.views.histogram import histogram_picture
from m1vision.views.png import encode_png

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
