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

Where things are (private parts):

=============  ================================================================================
``_params``    :class:`ExplorerParams` (the settings, checked), :data:`VIEWS`, :func:`is_wide`
``_pictures``  :func:`preview`, :func:`zoom_region`, :func:`curtain`, :func:`edge_fraction`,
               the composed view
``_cache``     :class:`RenderCache` (the stages), :func:`render`, the picture with an overlay
``_views``     :class:`EdgeView`, :class:`VolumeView` and :func:`take_slice`
=============  ================================================================================
"""

from __future__ import annotations

from m1vision.views.edges._cache import RenderCache, render
from m1vision.views.edges._cache import overlaid_picture as overlaid_picture
from m1vision.views.edges._params import VIEWS, ExplorerParams, is_wide
from m1vision.views.edges._pictures import curtain, edge_fraction, preview, zoom_region
from m1vision.views.edges._views import EdgeView, VolumeView, take_slice
from m1vision.views.edges._views import _image_of as _image_of

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
