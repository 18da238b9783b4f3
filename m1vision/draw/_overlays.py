"""Overlays of edges, heatmaps, masks, contours and boxes (internal; see :mod:`m1vision.draw`)."""

from __future__ import annotations

import numbers

import cv2
import numpy as np

from m1vision._checks import check_choice, check_image, check_int, check_number
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError
from m1vision.preprocess import to_bgr, to_uint8

__all__ = [
    "COLORMAPS",
    "draw_boxes",
    "draw_contours",
    "heatmap_to_mask",
    "mask_contours",
    "mask_to_boxes",
    "overlay_edges",
    "overlay_heatmap",
    "overlay_mask",
]

#: Colormap names accepted by :func:`overlay_heatmap` (OpenCV's ``COLORMAP_*``, lower case).
COLORMAPS: dict[str, int] = {
    name[len("COLORMAP_") :].lower(): getattr(cv2, name)
    for name in sorted(dir(cv2))
    if name.startswith("COLORMAP_")
}


def _check_color(color, *, name: str = "color") -> tuple[int, int, int]:
    try:
        if isinstance(color, str | bytes):
            raise TypeError(color)
        b, g, r = (int(c) for c in color)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name} must be a (B, G, R) triple, got {color!r}. Fix: pass three integers "
            f"0-255 in OpenCV's order, e.g. {name}=(0, 0, 255) for red."
        ) from None
    if not all(0 <= c <= 255 for c in (b, g, r)):
        raise InvalidParameterError(
            f"{name} values must be 0-255, got {color!r}. Fix: clip them to 0-255, e.g. "
            f"{name}=(0, 0, 255) for red."
        )
    return b, g, r


def overlay_edges(
    image: np.ndarray,
    edges: np.ndarray,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    alpha: float = 1.0,
) -> np.ndarray:
    """Draw an edge map in ``color`` over an image; returns a new BGR ``uint8`` image.

    Parameters
    ----------
    image : ndarray
        The picture underneath, gray or BGR, any dtype (made 8-bit by
        :func:`~m1vision.preprocess.to_uint8`; window a CT first for a useful picture).
    edges : ndarray
        2-D map of the same height and width; non-zero pixels are edges.
    color : (B, G, R)
        Edge color in OpenCV's channel order (default green).
    alpha : float
        Opacity of the edges, 0-1.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import overlay_edges
    >>> img = np.zeros((4, 4), np.uint8); edges = np.zeros((4, 4), np.uint8); edges[1, 1] = 255
    >>> out = overlay_edges(img, edges, color=(0, 0, 255))
    >>> out.shape, out[1, 1].tolist(), out[0, 0].tolist()
    ((4, 4, 3), [0, 0, 255], [0, 0, 0])
    """
    return _tint(image, edges, color=color, alpha=alpha, name="edges")


# --------------------------------------------------------------------------- helpers


def _check_alpha(alpha, *, name: str = "alpha") -> float:
    alpha = check_number(alpha, name=name)
    if not 0.0 <= alpha <= 1.0:
        raise InvalidParameterError(
            f"{name} must be in [0, 1] (0: invisible, 1: opaque), got {alpha}. Fix: pass a "
            f"fraction, e.g. {name}=0.4."
        )
    return alpha


def _canvas(image) -> np.ndarray:
    """A new BGR uint8 copy of ``image`` to draw on."""
    image = check_image(image)
    out = to_bgr(to_uint8(image))
    return np.array(out, dtype=np.uint8, copy=True, order="C")


def _check_same_size(array: np.ndarray, image: np.ndarray, *, name: str) -> None:
    if array.shape[:2] != image.shape[:2]:
        raise InvalidImageError(
            f"{name} has height x width {array.shape[:2]} but image is {image.shape[:2]}; they "
            f"must match (resize {name} first, e.g. cv2.resize({name}, (width, height)))."
        )


def _check_mask(mask, *, name: str = "mask") -> np.ndarray:
    """A 2-D mask as bool (non-zero = inside)."""
    if not isinstance(mask, np.ndarray):
        raise InvalidTypeError(
            f"{name} must be a 2-D numpy.ndarray (H, W), got {type(mask).__name__}. Fix: "
            f"convert it with numpy.asarray({name}); of a MedicalImage pass one slice of its "
            "pixels, e.g. labels.pixels[k]."
        )
    if mask.ndim != 2:
        raise InvalidImageError(
            f"{name} must be 2-D (H, W), got shape {mask.shape}. Fix: pass one slice of a "
            f"volume, e.g. {name}[k]."
        )
    if mask.size == 0:
        raise InvalidImageError(
            f"{name} is empty (shape {mask.shape}); expected at least one pixel. Fix: pass "
            "the mask of the image it goes with."
        )
    if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.number):
        raise InvalidImageError(
            f"{name} must be bool or numeric, got dtype {mask.dtype}. Fix: convert it, e.g. "
            f"{name}.astype(bool)."
        )
    return mask != 0


def _check_heatmap(heatmap) -> np.ndarray:
    """A 2-D heatmap as float32 in [0, 1] (uint8 is taken as 0-255)."""
    if not isinstance(heatmap, np.ndarray):
        raise InvalidTypeError(
            f"heatmap must be a 2-D numpy.ndarray (H, W), got {type(heatmap).__name__}. Fix: "
            "convert it with numpy.asarray(heatmap), or pass what m1vision.explain.grad_cam "
            "returns."
        )
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise InvalidImageError(
            f"heatmap must be a non-empty 2-D (H, W) array, got shape {heatmap.shape}. Fix: "
            "pass one map, e.g. heatmap[k] of a volume's Grad-CAM."
        )
    if heatmap.dtype == np.uint8:
        return heatmap.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(heatmap.dtype, np.floating):
        raise InvalidImageError(
            f"heatmap must be float in [0, 1] (or uint8 0-255), got dtype {heatmap.dtype}. "
            "Fix: scale it first, e.g. m1vision.preprocess.normalize(heatmap)."
        )
    heat = heatmap.astype(np.float32)
    if not np.isfinite(heat).all():
        bad = int(np.count_nonzero(~np.isfinite(heat)))
        raise InvalidImageError(
            f"heatmap holds {bad} NaN or infinite value(s) (shape {heat.shape}); expected "
            "values in [0, 1]. Fix: replace them first, e.g. numpy.nan_to_num(heatmap, nan=0.0)."
        )
    lo, hi = float(heat.min()), float(heat.max())
    if lo < 0.0 or hi > 1.0:
        raise InvalidImageError(
            f"heatmap values must be in [0, 1], got [{lo:.3g}, {hi:.3g}]; scale it first, "
            "e.g. m1vision.preprocess.normalize(heatmap)."
        )
    return heat


def _blend(out: np.ndarray, where: np.ndarray, color: np.ndarray, alpha: float) -> None:
    """In place: out[where] = (1 - alpha) * out[where] + alpha * color, rounded."""
    if alpha == 1.0:
        out[where] = np.broadcast_to(color, out[where].shape).astype(np.uint8)
    elif alpha > 0.0:
        blended = (1.0 - alpha) * out[where].astype(np.float32) + alpha * color.astype(np.float32)
        out[where] = np.rint(blended).astype(np.uint8)


# --------------------------------------------------------------------------- overlays


def overlay_heatmap(
    image: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.4, colormap: str = "jet"
) -> np.ndarray:
    """Blend a colored heatmap (e.g. Grad-CAM) over an image; returns a new BGR ``uint8`` image.

    Parameters
    ----------
    image : ndarray
        The picture underneath, gray or BGR, any dtype (made 8-bit by
        :func:`~m1vision.preprocess.to_uint8`).
    heatmap : ndarray
        2-D, same height and width, float in [0, 1] (``uint8`` is read as 0-255).
    alpha : float
        Weight of the colored heatmap, 0-1: ``out = (1 - alpha) * image + alpha * color``.
    colormap : str
        One of :data:`COLORMAPS` (OpenCV's colormaps: ``"jet"``, ``"turbo"``, ``"viridis"``...).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import overlay_heatmap
    >>> img = np.zeros((2, 2), np.uint8); heat = np.array([[0.0, 1.0], [0.5, 0.0]], np.float32)
    >>> out = overlay_heatmap(img, heat, alpha=1.0)
    >>> out[0, 0].tolist(), out[0, 1].tolist()  # jet: 0 is dark blue, 1 dark red (BGR)
    ([128, 0, 0], [0, 0, 128])
    """
    out = _canvas(image)
    heat = _check_heatmap(heatmap)
    _check_same_size(heat, out, name="heatmap")
    alpha = _check_alpha(alpha)
    check_choice(colormap, name="colormap", choices=tuple(COLORMAPS))
    colored = cv2.applyColorMap(np.rint(heat * 255.0).astype(np.uint8), COLORMAPS[colormap])
    blended = (1.0 - alpha) * out.astype(np.float32) + alpha * colored.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def overlay_mask(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    color: tuple[int, int, int] = (0, 0, 255),
    alpha: float = 0.4,
) -> np.ndarray:
    """Tint the pixels of a mask in ``color``; returns a new BGR ``uint8`` image.

    Parameters
    ----------
    image : ndarray
        Gray or BGR, any dtype (made 8-bit by :func:`~m1vision.preprocess.to_uint8`).
    mask : ndarray
        2-D, same height and width; non-zero (True) pixels are tinted.
    color : (B, G, R)
        Tint in OpenCV's channel order (default red).
    alpha : float
        Opacity of the tint, 0-1. Pixels outside the mask are unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import overlay_mask
    >>> img = np.full((2, 2), 100, np.uint8); mask = np.array([[1, 0], [0, 0]], bool)
    >>> out = overlay_mask(img, mask, color=(0, 0, 200), alpha=0.5)
    >>> out[0, 0].tolist(), out[1, 1].tolist()
    ([50, 50, 150], [100, 100, 100])
    """
    return _tint(image, mask, color=color, alpha=alpha, name="mask")


def _tint(image, mask, *, color, alpha, name: str) -> np.ndarray:
    out = _canvas(image)
    where = _check_mask(mask, name=name)
    _check_same_size(where, out, name=name)
    color = np.array(_check_color(color), np.float32)
    _blend(out, where, color, _check_alpha(alpha))
    return out


# --------------------------------------------------------------------------- masks and boxes


def heatmap_to_mask(heatmap: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """Binary mask of where ``heatmap >= threshold``.

    Parameters
    ----------
    heatmap : ndarray
        2-D float in [0, 1] (``uint8`` is read as 0-255), e.g. from
        :func:`m1vision.explain.grad_cam`.
    threshold : float
        In (0, 1]; a fraction of the heatmap's range.

    Returns
    -------
    ndarray of bool, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import heatmap_to_mask
    >>> heatmap_to_mask(np.array([[0.2, 0.5, 0.9]], np.float32)).tolist()
    [[False, True, True]]
    """
    heat = _check_heatmap(heatmap)
    threshold = check_number(threshold, name="threshold")
    if not 0.0 < threshold <= 1.0:
        raise InvalidParameterError(
            f"threshold must be in (0, 1] (a fraction of the heatmap's 0-1 range), got {threshold}."
        )
    return heat >= np.float32(threshold)


def mask_to_boxes(mask: np.ndarray, *, min_area: int = 1) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(x, y, w, h)`` of the connected regions (8-connected) of a mask.

    Parameters
    ----------
    mask : ndarray
        2-D; non-zero (True) pixels are foreground.
    min_area : int
        Regions with fewer pixels than this (>= 1) are left out.

    Returns
    -------
    list of (x, y, w, h)
        Python ints, largest region first (ties: top-to-bottom, left-to-right order).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import mask_to_boxes
    >>> mask = np.zeros((10, 10), bool); mask[2:5, 3:7] = True; mask[8, 8] = True
    >>> mask_to_boxes(mask)
    [(3, 2, 4, 3), (8, 8, 1, 1)]
    >>> mask_to_boxes(mask, min_area=2)
    [(3, 2, 4, 3)]
    """
    where = _check_mask(mask)
    min_area = check_int(min_area, name="min_area", minimum=1)
    n, _, stats, _ = cv2.connectedComponentsWithStats(where.astype(np.uint8), connectivity=8)
    regions = [tuple(int(v) for v in stats[i]) for i in range(1, n)]
    regions = [r for r in regions if r[4] >= min_area]
    regions.sort(key=lambda r: (-r[4], r[1], r[0]))
    return [(x, y, w, h) for x, y, w, h, _ in regions]


def mask_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Outer contours of a mask's regions (``cv2.findContours``, external, simple chain).

    Returns
    -------
    list of ndarray
        One ``int32`` array of shape ``(K, 1, 2)`` (x, y points) per region, in OpenCV's
        order; empty for an empty mask. Draw them with :func:`draw_contours`.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import mask_contours
    >>> mask = np.zeros((6, 6), bool); mask[1:4, 1:4] = True
    >>> [c.reshape(-1, 2).tolist() for c in mask_contours(mask)]
    [[[1, 1], [1, 3], [3, 3], [3, 1]]]
    """
    where = _check_mask(mask)
    contours, _ = cv2.findContours(
        where.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    return [np.asarray(c, dtype=np.int32) for c in contours]


def _check_contours(contours) -> list[np.ndarray]:
    if isinstance(contours, np.ndarray) or not isinstance(contours, list | tuple):
        raise InvalidTypeError(
            "contours must be a list of (K, 1, 2) point arrays, as mask_contours returns, got "
            f"{type(contours).__name__}. Fix: pass mask_contours(mask), or wrap one array in "
            "a list."
        )
    checked = []
    for i, c in enumerate(contours):
        arr = np.asarray(c)
        if arr.ndim == 2 and arr.shape[1] == 2:
            arr = arr[:, None, :]
        if arr.ndim != 3 or arr.shape[1:] != (1, 2) or arr.shape[0] == 0:
            raise InvalidParameterError(
                f"contours[{i}] must be an array of (x, y) points of shape (K, 1, 2) or (K, 2), "
                f"got shape {arr.shape}."
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise InvalidParameterError(
                f"contours[{i}] must hold integer pixel coordinates, got dtype {arr.dtype}."
            )
        checked.append(arr.astype(np.int32))
    return checked


def _check_thickness(thickness) -> int:
    return check_int(thickness, name="thickness", minimum=1)


def draw_contours(
    image: np.ndarray,
    contours,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    thickness: int = 1,
) -> np.ndarray:
    """Draw contours (from :func:`mask_contours`) as lines; returns a new BGR ``uint8`` image.

    Parameters
    ----------
    image : ndarray
        Gray or BGR, any dtype (made 8-bit by :func:`~m1vision.preprocess.to_uint8`).
    contours : list of ndarray
        Each ``(K, 1, 2)`` or ``(K, 2)`` integer (x, y) points.
    color : (B, G, R)
        Line color (default green).
    thickness : int
        Line width in pixels, >= 1.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import draw_contours, mask_contours
    >>> mask = np.zeros((6, 6), bool); mask[1:4, 1:4] = True
    >>> out = draw_contours(np.zeros((6, 6), np.uint8), mask_contours(mask), color=(0, 0, 255))
    >>> out[1, 1].tolist(), out[2, 2].tolist()
    ([0, 0, 255], [0, 0, 0])
    """
    out = _canvas(image)
    checked = _check_contours(contours)
    color = _check_color(color)
    thickness = _check_thickness(thickness)
    if checked:
        cv2.drawContours(out, checked, -1, color, thickness, lineType=cv2.LINE_8)
    return out


def _check_boxes(boxes) -> list[tuple[int, int, int, int]]:
    if isinstance(boxes, np.ndarray):
        if boxes.size == 0:
            return []
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InvalidParameterError(
                f"boxes must have shape (N, 4) of (x, y, w, h), got {boxes.shape}."
            )
        boxes = boxes.tolist()
    if not isinstance(boxes, list | tuple):
        raise InvalidTypeError(
            f"boxes must be a list of (x, y, w, h) tuples or an (N, 4) array, got "
            f"{type(boxes).__name__}. Fix: pass mask_to_boxes(mask), or wrap one box in a "
            "list, e.g. [(10, 20, 30, 40)]."
        )
    checked = []
    for i, box in enumerate(boxes):
        try:
            values = tuple(box)
        except TypeError:
            raise InvalidParameterError(f"boxes[{i}] must be (x, y, w, h), got {box!r}.") from None
        if len(values) != 4:
            raise InvalidParameterError(f"boxes[{i}] must be (x, y, w, h), got {box!r}.")
        ints = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                if isinstance(v, numbers.Real) and float(v).is_integer():
                    v = int(v)
                else:
                    raise InvalidParameterError(
                        f"boxes[{i}] must hold integer pixels (x, y, w, h), got {box!r}; round "
                        "them first."
                    )
            ints.append(int(v))
        x, y, w, h = ints
        if w < 1 or h < 1:
            raise InvalidParameterError(
                f"boxes[{i}] = {box!r} has width or height < 1; boxes are (x, y, w, h)."
            )
        checked.append((x, y, w, h))
    return checked


def _box_text(i: int, labels, scores) -> str | None:
    parts = []
    if labels is not None:
        parts.append(str(labels[i]))
    if scores is not None:
        parts.append(f"{scores[i]:.2f}")
    return " ".join(parts) if parts else None


def draw_boxes(
    image: np.ndarray,
    boxes,
    *,
    labels=None,
    scores=None,
    color: tuple[int, int, int] = (0, 255, 255),
    thickness: int = 1,
) -> np.ndarray:
    """Draw rectangles, with an optional "label score" caption each; returns a new BGR image.

    Parameters
    ----------
    image : ndarray
        Gray or BGR, any dtype (made 8-bit by :func:`~m1vision.preprocess.to_uint8`).
    boxes : list of (x, y, w, h) or ndarray (N, 4)
        Integer pixel boxes, as :func:`mask_to_boxes` returns; ``w, h >= 1``. The rectangle
        covers columns ``x .. x + w - 1`` and rows ``y .. y + h - 1``.
    labels : list of str, optional
        One caption per box.
    scores : list of float, optional
        One score per box, printed with two decimals after the label.
    color : (B, G, R)
        Rectangle color and caption background (default yellow); the caption text is black
        or white, whichever reads better on it.
    thickness : int
        Line width in pixels, >= 1.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.draw import draw_boxes
    >>> out = draw_boxes(np.zeros((20, 20), np.uint8), [(5, 5, 10, 8)], color=(255, 0, 0))
    >>> out[5, 5].tolist(), out[12, 14].tolist(), out[8, 8].tolist()
    ([255, 0, 0], [255, 0, 0], [0, 0, 0])
    """
    out = _canvas(image)
    checked = _check_boxes(boxes)
    color = _check_color(color)
    thickness = _check_thickness(thickness)
    for name, values in (("labels", labels), ("scores", scores)):
        if values is not None and (
            isinstance(values, str) or not hasattr(values, "__len__") or len(values) != len(checked)
        ):
            got = (
                len(values)
                if hasattr(values, "__len__") and not isinstance(values, str)
                else values
            )
            raise InvalidParameterError(
                f"{name} must be a list with one entry per box ({len(checked)}), got {got!r}."
            )
    if scores is not None:
        scores = [check_number(s, name=f"scores[{i}]") for i, s in enumerate(scores)]
    height, width = out.shape[:2]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, min(height, width) / 600.0)
    text_thickness = 1 if scale < 0.8 else 2
    # Black text on light colors, white on dark (BT.601 luma of the BGR color).
    luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luma >= 128 else (255, 255, 255)
    for i, (x, y, w, h) in enumerate(checked):
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), color, thickness, lineType=cv2.LINE_8)
        text = _box_text(i, labels, scores)
        if not text:
            continue
        (tw, th), baseline = cv2.getTextSize(text, font, scale, text_thickness)
        box_h = th + baseline + 2
        # Above the box if it fits, else inside its top edge; kept within the image.
        top = y - box_h if y - box_h >= 0 else y
        left = min(max(x, 0), max(width - tw - 2, 0))
        top = min(max(top, 0), max(height - box_h, 0))
        cv2.rectangle(out, (left, top), (left + tw + 1, top + box_h - 1), color, cv2.FILLED)
        cv2.putText(
            out,
            text,
            (left + 1, top + th + 1),
            font,
            scale,
            ink,
            text_thickness,
            lineType=cv2.LINE_AA,
        )
    return out
