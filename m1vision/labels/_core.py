"""Label maps (internal): the default palette, building and checking maps, grid matches."""

from __future__ import annotations

import numbers

import numpy as np

from m1vision import geometry as geom
from m1vision._checks import check_int
from m1vision.errors import GridMismatchError, InvalidImageError, InvalidTypeError, LabelValueError
from m1vision.io import MedicalImage

#: The default palette, ``[r, g, b]`` 0-255: label value ``v`` >= 1 takes entry
#: ``(v - 1) % len(DEFAULT_PALETTE)``. Explorers, pictures and DICOM SEG use the same colours.
DEFAULT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
    (170, 110, 40),
    (255, 250, 200),
    (128, 0, 0),
    (170, 255, 195),
    (128, 128, 0),
    (255, 215, 180),
    (0, 0, 128),
    (128, 128, 128),
)

#: Integer dtypes a label map is stored in (the smallest that holds its values is picked).
_UINTS = (np.uint8, np.uint16, np.uint32)


def default_color(value: int) -> list[int]:
    """The default colour ``[r, g, b]`` of label ``value`` (>= 1; 0, the background, has
    none: InvalidParameterError).

    Examples
    --------
    >>> from m1vision.labels import default_color
    >>> default_color(1), default_color(21) == default_color(1)
    ([230, 25, 75], True)
    """
    value = check_int(value, name="value", minimum=1)  # 0 is the background: no colour
    return list(DEFAULT_PALETTE[(value - 1) % len(DEFAULT_PALETTE)])


def label_values(pixels: np.ndarray) -> np.ndarray:
    """The sorted label values > 0 present in ``pixels`` (an integer array).

    Chunk by chunk; a chunk with few runs of equal values in memory order (a label map's
    regions are contiguous) is summed up by the first value of each run. 8- and 16-bit
    values are counted (``bincount``), wider ones go through ``numpy.unique``.
    """
    flat = pixels.reshape(-1)
    if flat.dtype == np.bool_:
        flat = flat.view(np.uint8)
    seen = None
    if flat.dtype.itemsize <= 2 and flat.dtype.kind == "u":
        seen = np.zeros(1 << (8 * flat.dtype.itemsize), bool)
    found = []
    chunk = 1 << 22
    for i in range(0, flat.size, chunk):
        part = flat[i : i + chunk]
        change = part[1:] != part[:-1]
        if np.count_nonzero(change) * 8 < part.size:
            part = np.concatenate([part[:1], part[1:][change]])
        if seen is None:
            found.append(np.unique(part))
        else:
            seen[: int(part.max()) + 1] |= np.bincount(part, minlength=1) > 0
    values = np.flatnonzero(seen) if seen is not None else np.unique(np.concatenate(found))
    return values[values > 0].astype(np.int64)


def _integer_pixels(pixels: np.ndarray, name: str) -> np.ndarray:
    """Integer, non-negative label pixels (the smallest unsigned dtype), or LabelValueError."""
    if pixels.dtype == np.bool_:
        return pixels.astype(np.uint8)
    if pixels.dtype.kind == "f":
        finite = np.isfinite(pixels).all()
        if not finite or not np.array_equal(pixels, np.round(pixels)):
            bad = pixels[~np.isfinite(pixels) | (pixels != np.round(pixels))]
            raise LabelValueError(
                f"{name} holds non-integer values (e.g. {float(bad.flat[0])!r}, "
                f"{bad.size} voxels; dtype {pixels.dtype}); a label map holds whole numbers "
                "(0 = background). Fix: threshold or round a probability map first "
                "(e.g. (prob > 0.5).astype(numpy.uint8)), or resample labels with "
                "interpolation='nearest'."
            )
    elif pixels.dtype.kind not in "iu":
        raise LabelValueError(
            f"{name} has dtype {pixels.dtype}; a label map holds integers (0 = background). "
            "Fix: convert it, e.g. pixels.astype(numpy.uint16)."
        )
    if pixels.size == 0:
        raise InvalidImageError(f"{name} is empty (shape {pixels.shape}).")
    lo, hi = pixels.min(), pixels.max()
    if lo < 0:
        raise LabelValueError(
            f"{name} holds negative values (minimum {lo!r}); label values are >= 0 with 0 the "
            "background. Fix: map them to positive values, e.g. numpy.where(x < 0, 0, x), or "
            "shift them."
        )
    if hi >= 1 << 32:
        raise LabelValueError(
            f"{name} holds values up to {hi!r}; label values must be < 2**32. Fix: renumber "
            "the labels (e.g. numpy.unique(x, return_inverse=True))."
        )
    for dtype in _UINTS:
        if hi <= np.iinfo(dtype).max:
            if pixels.dtype == dtype:
                return pixels
            return pixels.astype(dtype)
    raise AssertionError("unreachable")  # pragma: no cover


def _check_entry(value, entry, name: str) -> dict:
    from m1vision.errors import LabelSidecarError

    if not isinstance(entry, dict):
        raise LabelSidecarError(
            f"{name}: the entry of label {value} must be a dict with 'name' and 'color', got "
            f"{entry!r}."
        )
    label_name = entry.get("name", f"label {value}")
    color = entry.get("color", default_color(value))
    if not isinstance(label_name, str) or not label_name:
        raise LabelSidecarError(
            f"{name}: label {value} needs a non-empty string name, got {label_name!r}."
        )
    ok = (
        isinstance(color, tuple | list | np.ndarray)
        and len(color) == 3
        and all(isinstance(c, numbers.Integral) and 0 <= int(c) <= 255 for c in color)
    )
    if not ok:
        raise LabelSidecarError(
            f"{name}: the color of label {value} must be [r, g, b] with integers 0-255, got "
            f"{color!r}."
        )
    return {"name": label_name, "color": [int(c) for c in color]}


def label_info(pixels: np.ndarray, labels=None, *, name: str = "labels", strict: bool = True):
    """``{value: {"name", "color"}}`` for every value > 0 in ``pixels``, defaults filled in.

    ``labels`` (keys ints or digit strings) may not name values absent from ``pixels`` when
    ``strict`` (LabelSidecarError naming them); otherwise such entries are dropped.
    """
    from m1vision.errors import LabelSidecarError

    given = {}
    for key, entry in (labels or {}).items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise LabelSidecarError(
                f"{name}: label keys must be integer values (or their digits), got {key!r}."
            ) from None
        if value <= 0:
            if value == 0:
                continue  # a name for the background is allowed and ignored
            raise LabelSidecarError(f"{name}: label values are >= 1, got {key!r}.")
        given[value] = _check_entry(value, entry, name)
    present = [int(v) for v in label_values(pixels)]
    extra = sorted(set(given) - set(present))
    if extra and strict:
        raise LabelSidecarError(
            f"{name} names label value(s) {extra} that the map does not hold (it holds "
            f"{present}). Fix: remove those entries from the names, or check that the names "
            "belong to this label map."
        )
    return {v: given.get(v, {"name": f"label {v}", "color": default_color(v)}) for v in present}


def label_map(pixels, *, like=None, spacing=None, affine=None, labels=None) -> MedicalImage:
    """Build a label map (a :class:`~m1vision.io.MedicalImage`) from an integer array.

    Parameters
    ----------
    pixels : numpy.ndarray
        (Z, H, W) or (H, W) integers >= 0 (bool and whole-number floats are converted).
    like : MedicalImage, optional, keyword-only
        The image the map belongs to: its ``spacing`` and affine are taken (shape checked).
    spacing, affine : optional, keyword-only
        The grid without ``like``; by default 1 mm and the package's layout.
    labels : dict, optional, keyword-only
        ``{value: {"name": str, "color": [r, g, b]}}``; missing entries get ``"label v"``
        and the default palette. Naming a value not in ``pixels`` raises LabelSidecarError.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.labels import label_map
    >>> m = label_map(np.array([[[0, 1], [2, 2]]]), labels={2: {"name": "liver"}})
    >>> m.pixels.dtype.name, m.metadata["labels"][2]["name"], m.metadata["labels"][1]["name"]
    ('uint8', 'liver', 'label 1')
    """
    if not isinstance(pixels, np.ndarray):
        raise InvalidTypeError(
            f"pixels must be a numpy.ndarray, got {type(pixels).__name__}. Fix: convert it "
            "with numpy.asarray(pixels), or read a label map with m1vision.labels.read_labels."
        )
    px = _integer_pixels(pixels, "pixels")
    if px.ndim not in (2, 3):
        raise InvalidImageError(
            f"a label map is (Z, H, W) or (H, W), got shape {px.shape}; pass one volume."
        )
    meta = {"layout": "volume" if px.ndim == 3 else "slice"}
    if like is not None:
        if tuple(like.shape) != px.shape:
            raise GridMismatchError(
                f"pixels of shape {px.shape} cannot take the grid of like= (shape "
                f"{tuple(like.shape)}). Fix: pass pixels of the image's shape, or resample."
            )
        spacing = like.spacing
        if "affine" in like.metadata:
            meta["affine"] = [list(map(float, r)) for r in like.metadata["affine"]]
    else:
        if px.ndim == 3:
            spacing = (1.0, 1.0, 1.0) if spacing is None else geom.check_spacing(spacing)
            a = geom.default_affine(spacing) if affine is None else geom.check_affine(affine)
            meta["affine"] = a.tolist()
    meta["labels"] = label_info(px, labels)
    return MedicalImage(
        pixels=px, spacing=None if spacing is None else tuple(spacing), metadata=meta
    )


def grid_of(image, name: str):
    """(shape, spacing, affine or None) of a MedicalImage or ndarray."""
    if isinstance(image, MedicalImage):
        a = image.metadata.get("affine")
        shape = image.shape
        if a is None and image.ndim == 3 and image.spacing is not None:
            a = geom.default_affine(image.spacing)
        return shape, image.spacing, None if a is None else np.asarray(a, float)
    if isinstance(image, np.ndarray):
        return image.shape, None, None
    raise InvalidTypeError(
        f"{name} must be a MedicalImage or a numpy.ndarray, got {type(image).__name__}. Fix: "
        "read one with m1vision.io.read_any(path)."
    )


def grid_dict(image, name: str = "image") -> dict:
    """The grid of an image as a JSON-safe dict: shape, spacing, affine (or None)."""
    shape, spacing, affine = grid_of(image, name)
    return {
        "shape": [int(n) for n in shape],
        "spacing": None if spacing is None else [float(v) for v in spacing],
        "affine": None if affine is None else affine.tolist(),
    }


def grids_match(a, b, *, tolerance: float = geom.GRID_TOLERANCE_MM) -> bool:
    """True when ``a`` and ``b`` have one shape and voxel centres within ``tolerance`` mm.

    Without an affine on either side only the shapes (and spacings where both have one)
    are compared.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.labels import grids_match, label_map
    >>> a = label_map(np.zeros((2, 3, 4), np.uint8), spacing=(2.0, 1.0, 1.0))
    >>> b = label_map(np.zeros((2, 3, 4), np.uint8), spacing=(2.5, 1.0, 1.0))
    >>> grids_match(a, a), grids_match(a, b)
    (True, False)
    """
    sa, spa, aa = grid_of(a, "a")
    sb, spb, ab = grid_of(b, "b")
    if len(sa) == 2 and len(sb) == 3 and sb[2] in (3, 4):  # a mask on a colour picture
        sb = sb[:2]
    if len(sb) == 2 and len(sa) == 3 and sa[2] in (3, 4):
        sa = sa[:2]
    if tuple(sa) != tuple(sb):
        return False
    if aa is not None and ab is not None and len(sa) == 3:
        return geom.grid_distance(sa, aa, sb, ab) <= tolerance
    if spa is not None and spb is not None:
        return bool(np.allclose(spa, spb, rtol=0, atol=1e-6))
    return tuple(sa) == tuple(sb)


def read_expression(path) -> str:
    """The code that reads the label file ``path`` without a grid (for a fix's example)."""
    return f"m1vision.labels.read_labels({str(path)!r})"


def check_grid(
    labels, image, *, name: str = "labels", image_name: str = "image", expression=None
) -> None:
    """Raise GridMismatchError (both grids and the fix) unless the grids match.

    ``expression`` is the Python code giving the labels in the fix (default ``name``), e.g.
    ``m1vision.labels.read_labels('x.nii.gz')`` for a file."""
    if grids_match(labels, image):
        return
    first, second = grid_dict(labels, name), grid_dict(image, image_name)

    def show(g):
        if g["affine"] is None or len(g["shape"]) != 3:
            sp = "?" if g["spacing"] is None else "x".join(f"{v:g}" for v in g["spacing"])
            return f"shape {tuple(g['shape'])}, spacing {sp} mm"
        return geom.describe_grid(g["shape"], g["spacing"], g["affine"])

    dist = ""
    if (
        first["affine"] is not None
        and second["affine"] is not None
        and (first["shape"] == second["shape"])
    ):
        d = geom.grid_distance(first["shape"], first["affine"], second["shape"], second["affine"])
        dist = f" (voxel centres up to {d:.3g} mm apart; tolerance {geom.GRID_TOLERANCE_MM} mm)"
    err = GridMismatchError(
        f"{name} and {image_name} are not on one grid{dist}: {name} has {show(first)}; "
        f"{image_name} has {show(second)}. Fix: bring the labels onto the image's grid with "
        f"m1vision.volume.resample({expression or name}, like={image_name}, "
        'interpolation="nearest").'
    )
    err.first, err.second = first, second
    raise err


def check_labels(labels, *, like=None, name: str = "labels") -> MedicalImage:
    """Return ``labels`` as a checked label map; with ``like``, check it is on like's grid.

    Integer pixels >= 0 (whole-number floats and bools are converted to the smallest
    unsigned dtype), 2-D or 3-D, ``metadata["labels"]`` completed with defaults for every
    value present. An ndarray takes ``like``'s grid (or none). Not copied when nothing
    changes.

    Raises
    ------
    LabelValueError
        Non-integer, negative or too large values.
    GridMismatchError
        ``like`` is given and the grids do not match (the message shows both and the fix).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.labels import check_labels
    >>> check_labels(np.array([[0.0, 2.0]])).metadata["labels"]
    {2: {'name': 'label 2', 'color': [60, 180, 75]}}
    """
    if isinstance(labels, np.ndarray):
        px = _integer_pixels(labels, name)
        if isinstance(like, MedicalImage) and like.shape == px.shape:
            return label_map(px, like=like)  # an array takes the image's grid
        lm = label_map(px)
        if like is not None:
            check_grid(lm, like, name=name, image_name="like")
        return lm
    if not isinstance(labels, MedicalImage):
        raise InvalidTypeError(
            f"{name} must be a label map (MedicalImage) or an integer numpy.ndarray, got "
            f"{type(labels).__name__}; read one with m1vision.labels.read_labels."
        )
    px = _integer_pixels(labels.pixels, name)
    if px.ndim not in (2, 3):
        raise InvalidImageError(
            f"{name} must be a (Z, H, W) or (H, W) label map, got shape {px.shape}."
        )
    info = label_info(
        px, labels.metadata.get("labels"), name=f"{name}.metadata['labels']", strict=False
    )
    out = labels
    if px is not labels.pixels or info != labels.metadata.get("labels"):
        meta = {**labels.metadata, "labels": info}
        meta.setdefault("layout", "volume" if px.ndim == 3 else "slice")
        out = MedicalImage(px, labels.spacing, None, labels.modality, meta, labels.source)
    if like is not None:
        check_grid(out, like, name=name, image_name="like")
    return out
