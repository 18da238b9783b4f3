"""Matplotlib figures of images: grids, pairs, histograms with the display window marked.

Every function returns a :class:`matplotlib.figure.Figure` made directly (no pyplot, no global
state, nothing is shown). A notebook with the inline backend active (``%matplotlib inline``,
or after importing pyplot) displays the figure when it is the last expression of a cell; save
it with ``fig.savefig(path)``, or get PNG bytes with :func:`figure_to_png`. Color arrays are BGR
(OpenCV's order) and are converted to RGB for matplotlib. The array drawing functions
(overlays, boxes, contours) are :mod:`m1vision.draw`'s.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from m1vision._checks import check_image, check_int, check_window
from m1vision.errors import InvalidParameterError, InvalidTypeError
from m1vision.preprocess import to_uint8

__all__ = [
    "figure_to_png",
    "histogram",
    "show",
    "side_by_side",
    "to_rgb",
]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Return what matplotlib should draw: gray stays 2-D, BGR(A) becomes RGB(A) ``uint8``.

    Color images of other dtypes are made 8-bit with :func:`~m1vision.preprocess.to_uint8`.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.viz import to_rgb
    >>> to_rgb(np.array([[[255, 0, 0]]], np.uint8)).tolist()  # BGR blue
    [[[0, 0, 255]]]
    """
    image = check_image(image)
    if image.ndim == 2:
        return image
    image = to_uint8(image)
    if image.shape[2] == 4:
        return image[:, :, [2, 1, 0, 3]]
    return image[:, :, ::-1]


def _check_titles(titles, n: int, *, name: str = "titles") -> list[str | None]:
    if titles is None:
        return [None] * n
    if isinstance(titles, str) or not isinstance(titles, Sequence):
        raise InvalidTypeError(
            f"{name} must be a list of {n} strings, got {titles!r}. Fix: pass one title per "
            "image, or None for none."
        )
    if len(titles) != n:
        raise InvalidParameterError(f"{name} has {len(titles)} entries for {n} image(s).")
    return [None if t is None else str(t) for t in titles]


def show(
    images,
    *,
    titles: Sequence[str] | None = None,
    cols: int | None = None,
    cmap: str = "gray",
    size: float = 3.0,
) -> Figure:
    """A grid of images, one axes each, without ticks.

    Parameters
    ----------
    images : ndarray or sequence of ndarray
        2-D gray (drawn with ``cmap``, scaled to each image's own min and max) or BGR(A)
        color images (converted to RGB); a single array is one image.
    titles : sequence of str, optional
        One title per image.
    cols : int, optional
        Columns of the grid; default ``min(4, len(images))``.
    cmap : str
        Colormap of gray images.
    size : float
        Inches per grid cell.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.viz import show
    >>> fig = show([np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8)], titles=["a", "b"])
    >>> len(fig.axes), fig.axes[1].get_title()
    (2, 'b')
    """
    if isinstance(images, np.ndarray):
        images = [images]
    if not isinstance(images, Sequence) or isinstance(images, str):
        raise InvalidTypeError(
            f"images must be an array or a list of arrays, got {type(images).__name__}. Fix: "
            "pass numpy arrays (a MedicalImage: its .pixels)."
        )
    if len(images) == 0:
        raise InvalidParameterError("images is empty; pass at least one image.")
    pictures = [to_rgb(check_image(im, name=f"images[{i}]")) for i, im in enumerate(images)]
    titles = _check_titles(titles, len(pictures))
    cols = min(4, len(pictures)) if cols is None else check_int(cols, name="cols", minimum=1)
    rows = math.ceil(len(pictures) / cols)
    if cmap not in matplotlib.colormaps:
        raise InvalidParameterError(
            f"cmap {cmap!r} is no matplotlib colormap; try 'gray', 'bone' or 'viridis'."
        )
    fig = Figure(figsize=(size * cols, size * rows), layout="constrained")
    for i, (picture, title) in enumerate(zip(pictures, titles, strict=True)):
        ax = fig.add_subplot(rows, cols, i + 1)
        if picture.ndim == 2:
            ax.imshow(picture, cmap=cmap, interpolation="nearest")
        else:
            ax.imshow(picture, interpolation="nearest")
        ax.set_axis_off()
        if title is not None:
            ax.set_title(title)
    return fig


def side_by_side(
    a: np.ndarray,
    b: np.ndarray,
    *,
    titles: Sequence[str] = ("before", "after"),
    cmap: str = "gray",
    size: float = 4.0,
) -> Figure:
    """Two images next to each other (e.g. before/after a step); see :func:`show`.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.viz import side_by_side
    >>> fig = side_by_side(np.zeros((8, 8)), np.ones((8, 8)), titles=("in", "out"))
    >>> [ax.get_title() for ax in fig.axes]
    ['in', 'out']
    """
    return show([a, b], titles=_check_titles(titles, 2), cols=2, cmap=cmap, size=size)


def histogram(
    image: np.ndarray,
    *,
    window: tuple[float, float] | None = None,
    bins: int = 256,
    log: bool = True,
    title: str | None = None,
) -> Figure:
    """Histogram of the pixel values, with the display window shaded if given.

    Parameters
    ----------
    image : ndarray
        Any image; color images are counted over all channels.
    window : (center, width), optional
        Shaded from ``center - width/2`` to ``center + width/2``, centre as a line.
    bins : int
        Number of bins between the image's min and max.
    log : bool
        Logarithmic count axis (CT's air peak dwarfs the rest otherwise).
    title : str, optional
        Axes title.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.viz import histogram
    >>> hu = np.linspace(-1000, 1000, 10000, dtype=np.float32).reshape(100, 100)
    >>> fig = histogram(hu, window=(40, 400))
    >>> fig.axes[0].get_xlabel()
    'value'
    """
    image = check_image(image)
    bins = check_int(bins, name="bins", minimum=1)
    if window is not None:
        if not isinstance(window, tuple | list) or len(window) != 2:
            raise InvalidParameterError(f"window must be (center, width), got {window!r}.")
        checked = check_window(center=window[0], width=window[1])  # window()'s own checker
        center, width = checked["center"], checked["width"]
    lo, hi = float(image.min()), float(image.max())
    counts, edges = np.histogram(image, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.stairs(counts, edges, fill=True, color="0.35")
    if log:
        ax.set_yscale("log")
    if window is not None:
        ax.axvspan(center - width / 2, center + width / 2, color="tab:blue", alpha=0.2)
        ax.axvline(center, color="tab:red", linewidth=1)
        ax.set_title(title or f"window {center:g} / {width:g}")
    elif title:
        ax.set_title(title)
    ax.set_xlabel("value")
    ax.set_ylabel("pixels")
    return fig


def figure_to_png(fig: Figure, *, dpi: float | None = None) -> bytes:
    """Render a figure with the Agg canvas and return PNG bytes (no pyplot, no display).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.viz import figure_to_png, show
    >>> figure_to_png(show(np.zeros((4, 4), np.uint8)), dpi=20)[:4]
    b'\\x89PNG'
    """
    if not isinstance(fig, Figure):
        raise InvalidTypeError(
            f"fig must be a matplotlib Figure, got {type(fig).__name__}. Fix: pass what "
            "m1vision.viz.show, side_by_side or histogram return."
        )
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi="figure" if dpi is None else dpi)
    return buf.getvalue()
