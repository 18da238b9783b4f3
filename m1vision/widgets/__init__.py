"""Interactive explorers for JupyterLab: edges, display windows, volumes (ipywidgets).

Each explorer is a set of controls wired with observers to the pure views of
:mod:`m1vision.views` (the compute knows no widget), and shows its picture in an
``ipywidgets.Image`` fed PNG bytes, so an update costs one cached computation and one PNG
encode, not a matplotlib redraw. Display an explorer by making it the last expression of a
cell (or ``IPython.display.display(explorer)``).

* :class:`EdgeExplorer` / :func:`explore_edges`: window -> Gaussian blur -> Canny, with the
  thresholds linked (low <= high), an "Auto" button, three views, a preview of large images,
  the edge-pixel fraction (and with ``timings=True`` each update's time); export as a
  pipeline or as code.
* :class:`WindowExplorer`: level/width with presets and the histogram with the window marked.
* :func:`explore` / :class:`FunctionExplorer`: any image -> image function (OpenCV,
  scikit-image, your own, an m1vision step) on controls built from its signature.
* :class:`TriPlanarExplorer`: axial, coronal and sagittal planes of a volume at their
  physical aspect, a linked crosshair (sliders or a click), orientation letters from the
  affine, the value (HU), voxel and RAS position under the mouse, each slice's position in mm,
  linear display between thick slices (``smooth``), window and edge controls.
* :class:`VolumeExplorer`: a slice slider and axis choice over a 3-D volume, with the edge
  controls of :class:`EdgeExplorer`.

Every explorer is an :class:`Explorer`: ``state()`` gives its state as data (JSON-able,
versioned, the state of its :mod:`m1vision.views` view), ``Explorer.from_state(state, image)``
builds the explorer of the state's kind, and :func:`from_record` restores a view kept by
:func:`m1vision.experiment.record`.

Every control comes from one table (``_common.CONTROLS``) with a tooltip saying what it does.
With the mouse over a volume's picture the arrow keys (Page Up/Down, Home, End) step its
slice, in JupyterLab and Notebook 7 alike (docs/explorers.md).

An error inside an update (a failing ``pipeline`` step, say) is shown in the explorer's error
area and kept in ``.last_error``; the explorer keeps the last good picture and keeps working.

Where things are (private parts; the compute, the state as data and the export are
:mod:`m1vision.views`'s):

===============  ===================================================================================
``_common``      the shared controls (window), the error area, the static fallback picture
``_edges``       :class:`EdgeExplorer`, :func:`explore_edges`
``_window``      :class:`WindowExplorer`
``_explore``     :func:`explore`, :class:`FunctionExplorer`
``_volume``      :class:`VolumeExplorer`
``_triplanar``   :class:`TriPlanarExplorer`
``_state``       :class:`Explorer`: ``state()`` / ``from_state()`` through the view of each kind,
                 :func:`from_record` (an explorer restored from an experiment record)
===============  ===================================================================================
"""

from m1vision.widgets._edges import EdgeExplorer, explore_edges
from m1vision.widgets._explore import FunctionExplorer, explore
from m1vision.widgets._state import Explorer, from_record
from m1vision.widgets._triplanar import TriPlanarExplorer
from m1vision.widgets._volume import VolumeExplorer
from m1vision.widgets._window import WindowExplorer

__all__ = [
    "EdgeExplorer",
    "Explorer",
    "FunctionExplorer",
    "TriPlanarExplorer",
    "VolumeExplorer",
    "WindowExplorer",
    "explore",
    "explore_edges",
    "from_record",
]
