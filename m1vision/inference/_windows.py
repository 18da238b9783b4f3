"""Sliding-window maths (internal, pure NumPy): where windows go, how the borders are padded,
how overlapping windows are weighted.

The rules are MONAI's ``sliding_window_inference`` (so the two give the same windows on the
same settings) with nnU-Net's Gaussian (sigma = 1/8 of the window per axis):

* **padding**: an axis shorter than the window is padded to the window, ``diff // 2`` before
  and the rest after (constant value);
* **positions**: along each axis the windows start every ``int(window * (1 - overlap))``
  voxels (at least 1; the whole axis when the window spans it exactly), the last one moved
  back so that it ends at the border;
* **importance**: ``"constant"`` weighs every voxel 1; ``"gaussian"`` is the separable
  Gaussian ``exp(-d**2 / (2 sigma**2))`` of each voxel's distance ``d`` from the window's
  centre (``(n - 1) / 2``: symmetric), raised to at least ``max(min, 1e-3)`` so border voxels
  keep a small weight (MONAI's ``compute_importance_map``; nnU-Net takes the same sigma).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

SIGMA_SCALE = 0.125  # nnU-Net: sigma = 1/8 of the window size per axis
MIN_WEIGHT = 1e-3  # MONAI's floor of the importance map


def padded_shape(shape, window) -> tuple[int, ...]:
    """The shape after padding every axis shorter than the window up to the window."""
    return tuple(max(int(s), int(w)) for s, w in zip(shape, window, strict=True))


def pad_widths(shape, window) -> list[tuple[int, int]]:
    """``(before, after)`` per axis: ``diff // 2`` before, the rest after (MONAI's rule).

    Examples
    --------
    >>> pad_widths((5, 10), (8, 8))
    [(1, 2), (0, 0)]
    """
    widths = []
    for s, w in zip(shape, window, strict=True):
        diff = max(int(w) - int(s), 0)
        widths.append((diff // 2, diff - diff // 2))
    return widths


def scan_starts(size: int, window: int, overlap: float) -> list[int]:
    """The start of every window along one (padded) axis of ``size`` voxels.

    Examples
    --------
    >>> scan_starts(10, 4, 0.5)
    [0, 2, 4, 6]
    >>> scan_starts(11, 4, 0.5)
    [0, 2, 4, 6, 7]
    >>> scan_starts(4, 4, 0.5)
    [0]
    """
    size, window = int(size), int(window)
    if window >= size:
        return [0]
    interval = max(1, int(window * (1 - overlap)))
    starts = []
    for i in range(math.ceil(size / interval)):
        start = i * interval
        starts.append(min(start, size - window))
        if start + window >= size:
            break
    return starts


def count_windows(shape, window, overlap) -> int:
    """How many windows :func:`window_slices` yields."""
    n = 1
    for s, w, o in zip(shape, window, overlap, strict=True):
        n *= len(scan_starts(s, w, o))
    return n


def window_slices(shape, window, overlap) -> Iterator[tuple[slice, ...]]:
    """The windows over a (padded) array of ``shape``, lazily, in C order of their starts.

    ``overlap`` is one fraction per axis (0 <= overlap < 1).

    Examples
    --------
    >>> [tuple((s.start, s.stop) for s in w) for w in window_slices((3, 5), (3, 4), (0, 0.5))]
    [((0, 3), (0, 4)), ((0, 3), (1, 5))]
    """
    starts = [scan_starts(s, w, o) for s, w, o in zip(shape, window, overlap, strict=True)]
    for corner in itertools.product(*starts):
        yield tuple(slice(c, c + int(w)) for c, w in zip(corner, window, strict=True))


def importance_map(window, blend: str = "gaussian", *, sigma_scale=SIGMA_SCALE) -> np.ndarray:
    """The weight of each voxel of a window when overlapping windows are blended.

    Parameters
    ----------
    window : tuple of int
    blend : {"gaussian", "constant"}
    sigma_scale : float or tuple of float
        Gaussian sigma as a fraction of the window per axis (nnU-Net's 1/8).

    Returns
    -------
    numpy.ndarray
        float32 of shape ``window``.

    Examples
    --------
    >>> w = importance_map((8, 8))
    >>> w.shape, round(float(w.max()), 4), bool(w[0, 0] >= 1e-3), bool(w[3, 3] == w[4, 4])
    ((8, 8), 0.7788, True, True)
    """
    window = tuple(int(w) for w in window)
    if blend == "constant":
        return np.ones(window, np.float32)
    scales = (
        tuple(float(s) for s in sigma_scale)
        if np.ndim(sigma_scale)
        else (float(sigma_scale),) * len(window)
    )
    out = np.ones((), np.float64)
    for n, scale in zip(window, scales, strict=True):
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        sigma = scale * n
        g = np.exp(x**2 / (-2.0 * sigma**2)) if sigma > 0 else np.ones(n)
        out = np.multiply.outer(out, g)
    floor = max(float(out.min()), MIN_WEIGHT)
    return np.maximum(out, floor).astype(np.float32)


def mirror_flips(spatial_axes: int) -> list[tuple[int, ...]]:
    """Every subset of the spatial axes (``()`` first): the flips of mirroring TTA.

    Examples
    --------
    >>> mirror_flips(2)
    [(), (0,), (1,), (0, 1)]
    """
    axes = range(spatial_axes)
    return [c for r in range(spatial_axes + 1) for c in itertools.combinations(axes, r)]
