"""The views: what every explorer shows, computed from an image and a state, without widgets.

The explorers of :mod:`m1vision.widgets` are controls over these views; a recorded view is
recomputed here (``experiment.reproduce`` needs no ipywidgets), and exports take their
pictures from here.

Where things are
----------------

================================  ========================================================
module                            what it holds
================================  ========================================================
:mod:`~m1vision.views.state`      :class:`View`: the base of the views, state as data
                                  (``state()`` / ``from_state()``, schema + version), the
                                  registry of kinds, upgrades of older states
:mod:`~m1vision.views.settings`   :class:`EdgeSettings`: the window, blur and Canny
                                  settings the edge and tri-planar views share, checked
                                  once
:mod:`~m1vision.views.edges`      the edge view: ``ExplorerParams``, ``RenderCache``,
                                  ``render``, preview, zoom, curtain; ``EdgeView`` and
                                  ``VolumeView`` (one slice of a volume)
:mod:`~m1vision.views.planes`     the three planes of a volume: ``TriPlanarParams``,
                                  ``PlaneCache``, ``render_plane``, picture <-> voxel maps,
                                  the crosshair; ``TriPlanarView`` (the volume's geometry
                                  comes from :mod:`m1vision.geometry`)
:mod:`~m1vision.views.overlay`    ``Overlay``: label map(s) drawn over a view's pictures
                                  (the ``overlay`` part of the edge and tri-planar
                                  states), label under a voxel, ``label_centroid``
:mod:`~m1vision.views.histogram`  ``histogram_picture``; ``WindowParams`` and
                                  ``WindowView`` (the window explorer)
:mod:`~m1vision.views.function`   ``FunctionView``: any image function's picture
                                  (``explore()``)
:mod:`~m1vision.views.png`        ``encode_png`` (the live views' fast encoder) and
                                  ``side_by_side_picture`` (a view's static picture)
:mod:`~m1vision.views.export`     ``export_png`` (a view's picture as a file),
                                  ``export_sweep`` (a plane's slices as GIF or MP4)
:mod:`m1vision.viz`               (beside this package) matplotlib figures: ``show``,
                                  ``side_by_side``, ``histogram``, ``figure_to_png``
================================  ========================================================

The older paths ``m1vision.render`` (edge view, histogram picture, PNG) and
``m1vision.planes`` (plane views and volume geometry) keep working.

A view's state is ``{"schema", "version", "kind", <parts>...}``: ``kind`` picks the view
class (and the explorer class), each kind lists its own parts (``params`` and, say,
``geometry`` or ``pipeline``), so more of them (an overlay) are added by the kind alone.

Examples
--------
>>> import numpy as np
>>> from m1vision.views import View
>>> vol = np.zeros((4, 8, 8), np.float32)
>>> state = {"schema": "m1vision.view", "version": 1, "kind": "TriPlanarExplorer",
...          "params": {"index": [1, 2, 3], "center": 0.0, "width": 1.0, "max_size": 32},
...          "geometry": {"spacing": [1.0, 1.0, 1.0], "affine": None, "modality": None}}
>>> view = View.from_state(state, vol)
>>> type(view).__name__, len(view.pictures())
('TriPlanarView', 3)
"""

from m1vision.views import edges, function, histogram, planes, png, settings, state
from m1vision.views.edges import EdgeView, ExplorerParams, RenderCache, VolumeView, render
from m1vision.views.function import FunctionView
from m1vision.views.histogram import WindowParams, WindowView, histogram_picture
from m1vision.views.planes import PlaneCache, TriPlanarParams, TriPlanarView, render_plane
from m1vision.views.png import encode_png, side_by_side_picture
from m1vision.views.settings import EdgeSettings
from m1vision.views.state import View, view_class, view_kinds

__all__ = [
    "EdgeSettings",
    "EdgeView",
    "ExplorerParams",
    "FunctionView",
    "PlaneCache",
    "RenderCache",
    "TriPlanarParams",
    "TriPlanarView",
    "View",
    "VolumeView",
    "WindowParams",
    "WindowView",
    "edges",
    "encode_png",
    "function",
    "histogram",
    "histogram_picture",
    "planes",
    "png",
    "render",
    "render_plane",
    "settings",
    "side_by_side_picture",
    "state",
    "view_class",
    "view_kinds",
]
