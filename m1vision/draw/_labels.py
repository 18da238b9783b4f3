"""Label overlays (internal; see :mod:`m1vision.draw`): label slices drawn over a picture.

One colour lookup table per call, no loop over labels: the slice is coloured with
``numpy.take`` on a ``(max_label + 1, 3)`` table, blended with ``cv2.addWeighted`` and copied
where a shown label is. Independent of widgets and views: explorers call it on every slice
change.
"""

from __future__ import annotations

import html
import numbers

import cv2
import numpy as np

from m1vision._checks import check_bool, check_choice, check_int
from m1vision.draw._overlays import _check_alpha
from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
    LabelValueError,
)

__all__ = [
    "COMPARE_STYLES",
    "LABEL_STYLES",
    "draw_labels",
    "draw_legend",
    "legend_entries",
    "legend_html",
]

#: ``style`` values of :func:`draw_labels`: solid, or dashed (an outline in dashes, a fill
#: in diagonal stripes) to tell a second label map from the first.
LABEL_STYLES = ("solid", "dashed")

#: The one convention for two label maps at once (reference vs prediction): the prediction
#: filled, the reference outlined in dashes over it, both in their labels' colours. Pass
#: them as ``draw_labels(picture, prediction, **COMPARE_STYLES["prediction"])`` and then
#: ``draw_labels(that, reference, **COMPARE_STYLES["reference"])``.
COMPARE_STYLES = {
    "prediction": {"outline": False, "style": "solid"},
    "reference": {"outline": True, "style": "dashed"},
}

# The length of a dash (and of a gap) in pixels, along a row, a column or a diagonal stripe.
_DASH = 4

# Label values up to this size are coloured through a table of that many rows; larger ones
# (a uint32 map with sparse values) are renumbered per slice first.
_MAX_LUT = 1 << 16


def _check_picture(picture) -> np.ndarray:
    """A BGR uint8 picture (a gray uint8 one is made BGR); anything else is an error."""
    if not isinstance(picture, np.ndarray):
        raise InvalidTypeError(
            f"picture must be a numpy.ndarray (H, W, 3) BGR uint8, got {type(picture).__name__}. "
            "Fix: make one from an image first, e.g. "
            "m1vision.preprocess.to_bgr(m1vision.preprocess.to_uint8(image.pixels))."
        )
    if picture.dtype != np.uint8:
        raise InvalidImageError(
            f"picture must be uint8 (a displayed picture), got dtype {picture.dtype}. Fix: "
            "window or scale it first, e.g. m1vision.preprocess.window(ct, preset='soft_tissue')."
        )
    if picture.ndim == 2:
        picture = cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
    elif picture.ndim != 3 or picture.shape[2] != 3:
        raise InvalidImageError(
            f"picture must be (H, W, 3) BGR or (H, W) gray, got shape {picture.shape}; a BGRA "
            "picture: cv2.cvtColor(picture, cv2.COLOR_BGRA2BGR) first."
        )
    if picture.size == 0:
        raise InvalidImageError(
            f"picture is empty (shape {picture.shape}); expected at least one pixel. Fix: pass "
            "the picture of the slice the labels are drawn on."
        )
    return picture


def _check_slice(labels) -> tuple[np.ndarray, dict | None]:
    """The 2-D integer label slice and the metadata labels of a MedicalImage (or None)."""
    info = None
    if hasattr(labels, "pixels") and hasattr(labels, "metadata"):
        info = labels.metadata.get("labels")
        labels = labels.pixels
    if not isinstance(labels, np.ndarray):
        raise InvalidTypeError(
            "labels must be a 2-D integer numpy.ndarray (a label slice) or a 2-D label map, "
            f"got {type(labels).__name__}. Fix: read a label map with "
            "m1vision.labels.read_labels and pass one slice, e.g. labels.pixels[k]."
        )
    if labels.ndim != 2:
        raise InvalidImageError(
            f"labels must be one 2-D (H, W) slice, got shape {labels.shape}; pass one slice of "
            "a volume, e.g. labels.pixels[k]."
        )
    if labels.size == 0:
        raise InvalidImageError(
            f"labels is empty (shape {labels.shape}); expected a slice of at least one pixel. "
            "Fix: pass the label slice of the picture, e.g. labels.pixels[k]."
        )
    if labels.dtype == np.bool_:
        return labels.view(np.uint8), info
    if labels.dtype.kind not in "iu":
        raise LabelValueError(
            f"labels has dtype {labels.dtype}; a label slice holds integers (0 = background). "
            "Fix: threshold or round it first, e.g. (prob > 0.5).astype(numpy.uint8)."
        )
    if labels.dtype.kind == "i" and int(labels.min()) < 0:
        raise LabelValueError(
            f"labels holds negative values (minimum {int(labels.min())}); label values are "
            ">= 0 with 0 the background. Fix: numpy.where(labels < 0, 0, labels)."
        )
    return labels, info


def _nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``labels`` at ``shape`` by nearest neighbour: output pixel ``i`` takes input pixel
    ``floor((i + 0.5) * n_in / n_out)`` along each axis (pixel centres), in integers."""
    if labels.shape == shape:
        return labels
    rows = (2 * np.arange(shape[0]) + 1) * labels.shape[0] // (2 * shape[0])
    cols = (2 * np.arange(shape[1]) + 1) * labels.shape[1] // (2 * shape[1])
    return labels[rows[:, None], cols[None, :]]


def _bgr_of(value: int, entry) -> tuple[int, int, int]:
    from m1vision.labels._core import _check_entry

    r, g, b = _check_entry(value, entry, "labels_info")["color"]
    return b, g, r


def _check_info(labels_info) -> dict[int, dict]:
    if labels_info is None:
        return {}
    if not isinstance(labels_info, dict):
        raise InvalidTypeError(
            'labels_info must be a dict {value: {"name": str, "color": [r, g, b]}} as in a '
            f'label map\'s metadata["labels"], got {type(labels_info).__name__}. Fix: pass '
            'the label map itself, its metadata["labels"], or None.'
        )
    out = {}
    for key, entry in labels_info.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"labels_info keys must be label values (integers), got {key!r}. Fix: key "
                'each entry by its value, e.g. {1: {"name": "liver", "color": [230, 25, 75]}}.'
            ) from None
        if value > 0:
            out[value] = entry
    return out


def _check_hidden(hidden) -> set[int]:
    if isinstance(hidden, str | bytes) or not hasattr(hidden, "__iter__"):
        raise InvalidTypeError(
            f"hidden must be a collection of label values, got {hidden!r}. Fix: pass a tuple "
            "of integers, e.g. hidden=(2, 5)."
        )
    out = set()
    for v in hidden:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise InvalidParameterError(
                f"hidden must hold label values (integers), got {v!r} in {hidden!r}. Fix: pass "
                "whole numbers, e.g. hidden=(2, 5)."
            )
        out.add(int(v))
    return out


def _tables(values: np.ndarray, info: dict[int, dict], hidden: set[int]):
    """A (len(values), 3) BGR colour table and a shown table for the sorted ``values``."""
    from m1vision.labels._core import DEFAULT_PALETTE

    palette = np.asarray(DEFAULT_PALETTE, np.uint8)[:, ::-1]  # RGB -> BGR
    lut = palette[(values - 1) % len(palette)]
    lut[values == 0] = 0
    shown = values != 0

    def index(value):
        i = int(np.searchsorted(values, value))
        return i if i < len(values) and values[i] == value else None

    for value, entry in info.items():
        i = index(value)
        if i is not None:
            lut[i] = _bgr_of(value, entry)
    for value in hidden:
        i = index(value)
        if i is not None:
            shown[i] = False
    return lut, shown


def _outline(lab: np.ndarray) -> np.ndarray:
    """Where a pixel's value differs from one of its 4-neighbours (outside the slice counts
    as background, so a label at the slice's edge is closed there)."""
    edge = np.zeros(lab.shape, np.uint8)
    d = lab[1:, :] != lab[:-1, :]
    edge[1:, :] |= d
    edge[:-1, :] |= d
    d = lab[:, 1:] != lab[:, :-1]
    edge[:, 1:] |= d
    edge[:, :-1] |= d
    edge[0, :] = 1
    edge[-1, :] = 1
    edge[:, 0] = 1
    edge[:, -1] = 1
    return edge


def _dashes(shape: tuple[int, int]) -> np.ndarray:
    """The dash pattern: pixel (r, c) is drawn where ``((r + c) // 4) % 2 == 0``."""
    r = np.arange(shape[0])[:, None]
    c = np.arange(shape[1])[None, :]
    return (((r + c) // _DASH) % 2 == 0).view(np.uint8)


def draw_labels(
    picture: np.ndarray,
    labels,
    *,
    labels_info: dict | None = None,
    opacity: float = 0.4,
    outline: bool = False,
    hidden=(),
    style: str = "solid",
) -> np.ndarray:
    """Draw a label slice over a picture, each label in its colour; returns a new picture.

    Parameters
    ----------
    picture : ndarray
        (H, W, 3) BGR ``uint8`` (a displayed slice: window it first), or (H, W) gray
        ``uint8``. Not modified.
    labels : ndarray or MedicalImage
        One 2-D slice of integer label values >= 0 (0 = background; bool is a mask of label
        1). Any shape: a slice of another size is brought to the picture's (H, W) by nearest
        neighbour, output pixel ``i`` taking slice pixel ``floor((i + 0.5) * n_slice / n)``
        along each axis (pixel centres, computed exactly), so a slice shown at its physical
        aspect or zoomed keeps its values. A 2-D label map (MedicalImage)
        gives its ``metadata["labels"]`` when ``labels_info`` is None.
    labels_info : dict, optional, keyword-only
        ``{value: {"name": str, "color": [r, g, b]}}`` (a label map's ``metadata["labels"]``,
        RGB 0-255). Values without an entry, or without a colour, take the default palette
        of :mod:`m1vision.labels` (:func:`m1vision.labels.default_color`): the same colours
        as the sidecars, the SEG and every explorer.
    opacity : float, keyword-only
        0-1: ``out = (1 - opacity) * picture + opacity * colour`` where a shown label is
        drawn, rounded to the nearest integer (``cv2.addWeighted``); the picture is unchanged
        elsewhere. 1 paints the colour itself.
    outline : bool, keyword-only
        False: fill each label's pixels. True: only its 1-px boundary, the pixels whose value
        differs from one of their 4-neighbours (above, below, left, right); outside the
        picture counts as background, so a label touching the edge is closed there. The
        boundary is found at the picture's size (after resizing).
    hidden : collection of int, keyword-only
        Label values not drawn (per-label show/hide); values not present are ignored.
    style : {"solid", "dashed"}, keyword-only
        ``"dashed"`` draws only the pixels where ``((row + col) // 4) % 2 == 0``: an outline
        in dashes, a fill in diagonal stripes. It tells a second label map from the first;
        :data:`COMPARE_STYLES` is the one convention for a reference and a prediction.

    Returns
    -------
    ndarray
        (H, W, 3) BGR ``uint8``, a new array.

    Raises
    ------
    LabelValueError
        Float or negative label values.
    InvalidImageError
        A picture that is not BGR/gray uint8, or labels that are not one 2-D slice.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import draw_labels
    >>> picture = np.full((4, 4, 3), 100, np.uint8)
    >>> labels = np.zeros((4, 4), np.uint8); labels[1:3, 1:3] = 2
    >>> out = draw_labels(picture, labels, labels_info={2: {"name": "liver",
    ...                   "color": [200, 0, 0]}}, opacity=0.5)
    >>> out[1, 1].tolist(), out[0, 0].tolist()  # BGR: the red label blended half-way
    ([50, 50, 150], [100, 100, 100])
    >>> draw_labels(picture, labels, outline=True, opacity=1.0)[1:3, 1:3, 1].tolist()
    [[180, 180], [180, 180]]
    """
    pic = _check_picture(picture)
    lab, meta_info = _check_slice(labels)
    info = _check_info(meta_info if labels_info is None else labels_info)
    opacity = _check_alpha(opacity, name="opacity")
    outline = check_bool(outline, name="outline")
    hide = _check_hidden(hidden)
    style = check_choice(style, name="style", choices=LABEL_STYLES)

    lab = _nearest(lab, pic.shape[:2])
    top = int(lab.max())
    if top < _MAX_LUT:
        lut, shown = _tables(np.arange(top + 1, dtype=np.int64), info, hide)
    else:  # sparse large values: this slice's values renumbered 0 .. n - 1 first
        values, inverse = np.unique(lab, return_inverse=True)
        lab = inverse.reshape(lab.shape)
        lut, shown = _tables(values.astype(np.int64), info, hide)
    where = _lookup(shown.view(np.uint8), lab)  # 1 where a shown label is
    if outline:
        where &= _outline(lab)
    if style == "dashed":
        where &= _dashes(lab.shape)
    out = np.array(pic, dtype=np.uint8, copy=True, order="C")
    if opacity == 0.0 or not where.any():
        return out
    colours = _lookup(lut, lab)
    if opacity < 1.0:
        colours = cv2.addWeighted(pic, 1.0 - opacity, colours, opacity, 0.0)
    cv2.copyTo(colours, where, out)  # in place, where the mask is non-zero
    return out


def _lookup(table: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """``table[lab]``: OpenCV's LUT for 8-bit slices, ``numpy.take`` otherwise."""
    if lab.dtype == np.uint8:
        full = np.zeros((256, *table.shape[1:]), np.uint8)
        full[: len(table)] = table
        if table.ndim == 1:
            return cv2.LUT(lab, full)
        return cv2.LUT(cv2.merge((lab, lab, lab)), full.reshape(256, 1, 3))
    return np.take(table, lab, axis=0)


def legend_entries(labels_info=None, *, values=None, hidden=()) -> list[tuple[int, str, tuple]]:
    """The legend of a label map: ``[(value, name, (b, g, r)), ...]`` sorted by value.

    Parameters
    ----------
    labels_info : dict or MedicalImage, optional
        ``{value: {"name", "color": [r, g, b]}}`` (a label map's ``metadata["labels"]``), or
        the label map itself.
    values : iterable of int, optional, keyword-only
        The values to list (e.g. those in the slice shown); default: every value of
        ``labels_info``. Values without an entry are named ``"label v"`` in the default
        palette's colour, as :func:`draw_labels` draws them.
    hidden : collection of int, keyword-only
        Values left out (hidden labels).

    Examples
    --------
    >>> from m1vision.draw import legend_entries
    >>> legend_entries({1: {"name": "liver", "color": [230, 25, 75]}}, values=[1, 3])
    [(1, 'liver', (75, 25, 230)), (3, 'label 3', (25, 225, 255))]
    """
    if hasattr(labels_info, "metadata"):
        labels_info = labels_info.metadata.get("labels")
    info = _check_info(labels_info)
    hide = _check_hidden(hidden)
    if values is None:
        wanted = sorted(info)
    elif isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise InvalidTypeError(
            f"values must be a collection of label values, got {values!r}. Fix: pass the "
            "values to list, e.g. values=numpy.unique(labels.pixels[k])."
        )
    else:
        checked = {check_int(v, name=f"values[{i}]", minimum=0) for i, v in enumerate(values)}
        wanted = sorted(checked - {0})
    out = []
    for value in wanted:
        if value in hide:
            continue
        entry = info.get(value, {})
        name = entry.get("name", f"label {value}") if isinstance(entry, dict) else None
        out.append((value, str(name), _bgr_of(value, entry)))
    return out


def _check_entries(entries) -> list[tuple[int, str, tuple[int, int, int]]]:
    """Legend entries ``[(value, name, (b, g, r)), ...]`` as :func:`legend_entries` gives."""
    if isinstance(entries, str | bytes | np.ndarray) or not hasattr(entries, "__iter__"):
        raise InvalidTypeError(
            "entries must be a list of (value, name, (b, g, r)) tuples, got "
            f"{type(entries).__name__}. Fix: make them with "
            "m1vision.draw.legend_entries(label_map)."
        )
    out = []
    for i, entry in enumerate(entries):
        ok = isinstance(entry, tuple | list) and len(entry) == 3
        if ok:
            value, name, colour = entry
            ok = (
                isinstance(value, numbers.Integral)
                and not isinstance(value, bool)
                and isinstance(colour, tuple | list | np.ndarray)
                and len(colour) == 3
                and all(
                    isinstance(c, numbers.Integral) and not isinstance(c, bool) and 0 <= c <= 255
                    for c in colour
                )
            )
        if not ok:
            raise InvalidParameterError(
                f"entries[{i}] must be (value, name, (b, g, r)) with an integer value and "
                f"colour components 0-255, got {entry!r}. Fix: make the entries with "
                "m1vision.draw.legend_entries(label_map)."
            )
        out.append((int(value), str(name), tuple(int(c) for c in colour)))
    return out


def legend_html(entries) -> str:
    """An HTML legend of :func:`legend_entries`: one swatch and "value name" per line.

    Names are escaped; colours are written as CSS ``rgb()``.

    Examples
    --------
    >>> from m1vision.draw import legend_html
    >>> legend_html([(1, "liver <L>", (75, 25, 230))])  # doctest: +NORMALIZE_WHITESPACE
    '<div class="m1vision-legend"><div><span style="display:inline-block;width:0.9em;height:0.9em;background:rgb(230,25,75);margin-right:0.4em"></span>1 liver &lt;L&gt;</div></div>'
    """  # noqa: E501
    lines = []
    for value, name, (b, g, r) in _check_entries(entries):
        swatch = (
            '<span style="display:inline-block;width:0.9em;height:0.9em;'
            f'background:rgb({int(r)},{int(g)},{int(b)});margin-right:0.4em"></span>'
        )
        lines.append(f"<div>{swatch}{int(value)} {html.escape(str(name))}</div>")
    return '<div class="m1vision-legend">' + "".join(lines) + "</div>"


def draw_legend(entries, *, row_height: int = 18, width: int = 220) -> np.ndarray:
    """A legend picture of :func:`legend_entries`: a swatch and "value name" per row.

    Returns a BGR ``uint8`` picture of ``(len(entries) * row_height + 4, width, 3)``, white
    text on black (for a static PNG beside an overlay).

    Examples
    --------
    >>> from m1vision.draw import draw_legend
    >>> pic = draw_legend([(1, "liver", (75, 25, 230)), (2, "spleen", (75, 180, 60))])
    >>> pic.shape, pic[2 + 9, 8].tolist()  # the first swatch, BGR
    ((40, 220, 3), [75, 25, 230])
    """
    row_height = check_int(row_height, name="row_height", minimum=8)
    width = check_int(width, name="width", minimum=32)
    entries = _check_entries(entries)
    out = np.zeros((len(entries) * row_height + 4, width, 3), np.uint8)
    scale = row_height / 36.0
    for i, (value, name, colour) in enumerate(entries):
        top = 2 + i * row_height
        box = row_height - 4
        cv2.rectangle(
            out, (2, top + 2), (2 + box - 1, top + 2 + box - 1), tuple(map(int, colour)), -1
        )
        cv2.putText(
            out,
            f"{int(value)} {name}",
            (box + 8, top + row_height - 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            lineType=cv2.LINE_AA,
        )
    return out
