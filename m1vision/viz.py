"""Matplotlib figures of images at their first import path; they live in
:mod:`m1vision.views.figures` (with the array drawing functions of :mod:`m1vision.draw`).
"""

from m1vision.views.figures import (
    draw_boxes,
    draw_contours,
    figure_to_png,
    heatmap_to_mask,
    histogram,
    mask_contours,
    mask_to_boxes,
    overlay_edges,
    overlay_heatmap,
    overlay_mask,
    show,
    side_by_side,
    to_rgb,
)

__all__ = [
    "draw_boxes",
    "draw_contours",
    "figure_to_png",
    "heatmap_to_mask",
    "histogram",
    "mask_contours",
    "mask_to_boxes",
    "overlay_edges",
    "overlay_heatmap",
    "overlay_mask",
    "show",
    "side_by_side",
    "to_rgb",
]
