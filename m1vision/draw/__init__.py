"""Drawing on image arrays with OpenCV: overlays that return new BGR ``uint8`` arrays.

These functions return pictures as arrays (to save, to encode for a widget, to put in a
report); :mod:`m1vision.viz` turns arrays into matplotlib figures. None of them knows a
widget: the explorers call them.

Where things are
----------------
=====================================================  ======================================
name                                                   what it is (module)
=====================================================  ======================================
:func:`overlay_edges`, :func:`overlay_mask`,           edge maps, masks and heatmaps blended
:func:`overlay_heatmap`, :data:`COLORMAPS`             over a picture (``_overlays``)
:func:`mask_to_boxes`, :func:`mask_contours`,          regions of a mask as boxes and contours,
:func:`draw_boxes`, :func:`draw_contours`,             and drawing them (``_overlays``)
:func:`heatmap_to_mask`
:func:`draw_labels`                                    a label slice filled or outlined in its
                                                       labels' colours, per-label show/hide,
                                                       solid or dashed (``_labels``)
:data:`COMPARE_STYLES`, :data:`LABEL_STYLES`           the styles of two label maps at once
                                                       (reference vs prediction) (``_labels``)
:func:`legend_entries`, :func:`draw_legend`,           a label map's legend as data, picture
:func:`legend_html`                                    or HTML (``_labels``)
=====================================================  ======================================

Label colours come from a label map's ``metadata["labels"]`` or the one default palette of
:mod:`m1vision.labels` (:data:`m1vision.labels.DEFAULT_PALETTE`), given RGB and drawn BGR.
"""

from __future__ import annotations

from m1vision.draw._labels import (
    COMPARE_STYLES,
    LABEL_STYLES,
    draw_labels,
    draw_legend,
    legend_entries,
    legend_html,
)
from m1vision.draw._overlays import (
    COLORMAPS,
    draw_boxes,
    draw_contours,
    heatmap_to_mask,
    mask_contours,
    mask_to_boxes,
    overlay_edges,
    overlay_heatmap,
    overlay_mask,
)

__all__ = [
    "COLORMAPS",
    "COMPARE_STYLES",
    "LABEL_STYLES",
    "draw_boxes",
    "draw_contours",
    "draw_labels",
    "draw_legend",
    "heatmap_to_mask",
    "legend_entries",
    "legend_html",
    "mask_contours",
    "mask_to_boxes",
    "overlay_edges",
    "overlay_heatmap",
    "overlay_mask",
]
