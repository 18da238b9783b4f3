"""Checks of argument values (internal): images, volumes, paths, numbers, choices, pairs,
points, shapes, axes and the worker count, each naming the argument, what came and the fix."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable

import numpy as np

from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError

#: dtypes every preprocessing function accepts.
SUPPORTED_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def check_image(image, *, name: str = "image", allow_color: bool = True) -> np.ndarray:
    """Return ``image`` as an ndarray after checking it is a 2-D gray or 3-D color image.

    Raises ``TypeError`` for a non-array, ``InvalidImageError`` for a wrong shape,
    an unsupported dtype, an empty array or non-finite values.
    """
    if not isinstance(image, np.ndarray):
        raise InvalidTypeError(
            f"{name} must be a numpy.ndarray, got {type(image).__name__}. Fix: convert it with "
            f"numpy.asarray({name}), or read a file with m1vision.io.read_any(path) first."
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and not allow_color):
        expected = "a 2-D (H, W) gray image" + (
            " or a 3-D (H, W, 3|4) color image" if allow_color else ""
        )
        raise InvalidImageError(
            f"{name} must be {expected}, got an array of shape {image.shape}; "
            "for a volume, pass one slice (volume[k]) at a time."
        )
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise InvalidImageError(
            f"{name} has {image.shape[2]} channels (shape {image.shape}); expected 1, 3 (BGR) "
            "or 4 (BGRA). If the channels come first, use numpy.moveaxis(image, 0, -1)."
        )
    if image.size == 0:
        raise InvalidImageError(f"{name} is empty (shape {image.shape}).")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    if image.dtype not in SUPPORTED_DTYPES:
        if np.issubdtype(image.dtype, np.floating):
            image = image.astype(np.float32)
        elif np.issubdtype(image.dtype, np.integer):
            image = image.astype(np.float32 if image.dtype.itemsize <= 2 else np.float64)
        else:
            names = ", ".join(np.dtype(d).name for d in SUPPORTED_DTYPES)
            raise InvalidImageError(
                f"{name} has dtype {image.dtype}; supported dtypes are {names}. "
                "Convert it first, e.g. image.astype(numpy.float32)."
            )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        bad = int(np.count_nonzero(~np.isfinite(image)))
        raise InvalidImageError(
            f"{name} holds {bad} NaN or infinite value(s) (shape {image.shape}, dtype "
            f"{image.dtype}); replace them first, e.g. numpy.nan_to_num(image, nan=image_min)."
        )
    return image


def check_path(path, *, name: str = "path", call: str | None = None) -> str | os.PathLike:
    """Check ``path`` is a str or path-like (not bytes in memory, an array or an image).

    ``call`` (e.g. ``"write_image(path, image)"``) is the argument order shown when an array
    or a MedicalImage came where the path goes: the arguments were most likely swapped.

    Examples
    --------
    >>> from m1vision._checks import check_path
    >>> check_path("scan.nii.gz")
    'scan.nii.gz'
    """
    if isinstance(path, str | os.PathLike):
        return path
    got = type(path).__name__
    if call is not None and (isinstance(path, np.ndarray) or hasattr(path, "pixels")):
        raise InvalidTypeError(
            f"{name} must be a str or pathlib.Path, got a {got}; the arguments look swapped. "
            f"Fix: pass the path first, {call}."
        )
    if isinstance(path, bytes | bytearray | memoryview):
        raise InvalidTypeError(
            f"{name} must be a str or pathlib.Path, got {got} (a file's content?). Fix: pass "
            "the file's path; to decode an image in memory use cv2.imdecode."
        )
    raise InvalidTypeError(
        f"{name} must be a str or pathlib.Path naming a file or folder, got {got}. Fix: pass "
        "its path, e.g. pathlib.Path('scan.nii.gz')."
    )


def check_volume(volume, *, name: str = "image", hint: str | None = None) -> np.ndarray:
    """Return the pixels of ``volume`` (an ndarray or anything with ``.pixels``) after
    checking they are a non-empty (Z, H, W) array: ``TypeError`` for a non-array,
    ``InvalidImageError`` (with ``hint``, the fix, appended) for another shape.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision._checks import check_volume
    >>> check_volume(np.zeros((2, 3, 4), np.float32)).shape
    (2, 3, 4)
    """
    pixels = getattr(volume, "pixels", volume)
    if not isinstance(pixels, np.ndarray):
        raise InvalidTypeError(
            f"{name} must be a MedicalImage volume or a (Z, H, W) numpy.ndarray, got "
            f"{type(volume).__name__}. Fix: read a volume with m1vision.io.read_any, or wrap "
            "an array as MedicalImage(pixels, spacing=...)."
        )
    if pixels.ndim != 3 or pixels.size == 0:
        if hint is None:
            hint = (
                "for a 2-D image call the function on it directly"
                if pixels.ndim == 2
                else "read a volume with m1vision.io.read_nifti, read_series or read_dicom"
            )
        source = getattr(volume, "source", None)
        origin = f" (read from {source!r})" if source else ""
        raise InvalidImageError(
            f"{name} must be a non-empty 3-D volume of shape (Z, H, W), got shape "
            f"{pixels.shape}{origin}; {hint}."
        )
    return pixels


#: The axes of a (Z, H, W) volume, by the slices they give.
AXES = {0: "axial", 1: "coronal", 2: "sagittal"}


def check_axis(axis, *, name: str = "axis") -> int:
    """Check ``axis`` is 0, 1 or 2, the axis of a (Z, H, W) volume to slice along.

    Examples
    --------
    >>> from m1vision._checks import check_axis
    >>> check_axis(2)
    2
    """
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or axis not in AXES:
        raise InvalidParameterError(
            f"{name} must be 0, 1 or 2 (the axis of (Z, H, W) to slice along: 0 axial "
            f"slices, 1 coronal, 2 sagittal), got {axis!r}."
        )
    return int(axis)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it).

    Examples
    --------
    >>> from m1vision.batch import available_cores
    >>> available_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers(items: int | None = None, *, cores: int | None = None) -> int:
    """The one default worker count: one per available core, no more than ``items``.

    Examples
    --------
    >>> from m1vision._checks import default_workers
    >>> default_workers(1)
    1
    """
    n = available_cores() if cores is None else cores
    if items is not None:
        n = min(n, items)
    return max(1, n)


def check_workers(workers, *, items: int | None = None) -> int:
    """``workers`` checked as a positive integer; ``None`` gives :func:`default_workers`.

    Examples
    --------
    >>> from m1vision._checks import check_workers
    >>> check_workers(3), check_workers(None) >= 1
    (3, True)
    """
    if workers is None:
        return default_workers(items)
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise InvalidParameterError(
            f"workers must be a positive integer or None (one per core), got {workers!r}."
        )
    return int(workers)


def check_int(value, *, name: str, minimum: int | None = None, odd: bool = False) -> int:
    """Check ``value`` is an integer (not a bool), at least ``minimum``, and odd if asked.

    Examples
    --------
    >>> from m1vision._checks import check_int
    >>> check_int(5, name="ksize", minimum=1, odd=True)
    5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        example = 1 if minimum is None else max(minimum, 1 if odd else minimum)
        if odd and example % 2 == 0:
            example += 1
        raise InvalidTypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__}). Fix: pass a "
            f"whole number, e.g. {name}={example}; convert a string or float with int()."
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidParameterError(
            f"{name} must be >= {minimum}, got {value}. Fix: pass {minimum} or more."
        )
    if odd and value % 2 == 0:
        raise InvalidParameterError(
            f"{name} must be odd, got {value}; use {value - 1} or {value + 1}."
        )
    return value


def check_number(value, *, name: str, minimum: float | None = None) -> float:
    """Check ``value`` is a finite real number, at least ``minimum``.

    Examples
    --------
    >>> from m1vision._checks import check_number
    >>> check_number(2, name="sigma", minimum=0.0)
    2.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(
            f"{name} must be a number, got {value!r} ({type(value).__name__}). Fix: pass an int "
            "or float; convert a string with float()."
        )
    value = float(value)
    if not np.isfinite(value):
        raise InvalidParameterError(
            f"{name} must be finite, got {value}. Fix: pass a finite number; NaN and "
            "infinity have no meaning here."
        )
    if minimum is not None and value < minimum:
        raise InvalidParameterError(
            f"{name} must be >= {minimum}, got {value}. Fix: pass {minimum} or more."
        )
    return value


def check_choice(value, *, name: str, choices) -> str:
    """Check ``value`` is one of ``choices``.

    Examples
    --------
    >>> from m1vision._checks import check_choice
    >>> check_choice("area", name="interpolation", choices=("linear", "area"))
    'area'
    """
    try:  # an array is no choice (its `in` would ask the truth of an array)
        known = not isinstance(value, np.ndarray) and value in choices
    except TypeError:  # unhashable, asked of a dict
        known = False
    if not known:
        listed = ", ".join(repr(c) for c in choices)
        raise InvalidParameterError(
            f"{name} must be one of {listed}, got {value!r}. Fix: pass one of those values."
        )
    return value


def check_bool(value, *, name: str) -> bool:
    """Check ``value`` is ``True`` or ``False`` (a NumPy bool too).

    Examples
    --------
    >>> from m1vision._checks import check_bool
    >>> check_bool(True, name="letterbox")
    True
    """
    if not isinstance(value, bool | np.bool_):
        raise InvalidTypeError(
            f"{name} must be True or False, got {value!r} ({type(value).__name__}). Fix: pass "
            f"{name}=True or {name}=False."
        )
    return bool(value)


def _items(value) -> tuple | None:
    """``value``'s items as a tuple, or None for a string or a value that is no sequence."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return None
    return tuple(value)


def check_pair(value, *, name: str, kind: str = "number", what: str = "(low, high)") -> tuple:
    """Check ``value`` is a pair of finite numbers (``kind="int"``: integers >= 1).

    Examples
    --------
    >>> from m1vision._checks import check_pair
    >>> check_pair([64, 32], name="size", kind="int", what="(height, width)")
    (64, 32)
    """
    items = _items(value)
    if items is None or len(items) != 2:
        raise InvalidParameterError(
            f"{name} must be a pair {what}, got {value!r}. Fix: pass two values as a tuple, "
            f"{name}={what}."
        )
    if kind == "int":
        return tuple(check_int(v, name=f"{name}[{i}]", minimum=1) for i, v in enumerate(items))
    return tuple(check_number(v, name=f"{name}[{i}]") + 0.0 for i, v in enumerate(items))


def check_shape(shape, *, name: str = "shape", ndims=(2, 3)) -> tuple[int, ...]:
    """Check ``shape`` is an array shape: ``ndims`` whole numbers >= 0 (an ndarray's
    ``.shape``).

    Examples
    --------
    >>> from m1vision._checks import check_shape
    >>> check_shape([2, 3, 4])
    (2, 3, 4)
    """
    items = _items(shape)
    if items is None or len(items) not in ndims:
        lengths = " or ".join(str(n) for n in ndims)
        raise InvalidParameterError(
            f"{name} must be an array shape of {lengths} sizes, got {shape!r}. Fix: pass the "
            "array's .shape, e.g. pixels.shape."
        )
    return tuple(check_int(n, name=f"{name}[{i}]", minimum=0) for i, n in enumerate(items))


def check_point(value, *, name: str, what: str = "(z, row, col)") -> tuple[float, float, float]:
    """Check ``value`` is three finite numbers, a voxel or a position ``what``.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision._checks import check_point
    >>> check_point(np.array([1, 2, 3]), name="voxel")
    (1.0, 2.0, 3.0)
    """
    items = _items(value)
    if items is None or len(items) != 3:
        raise InvalidParameterError(
            f"{name} must be three numbers {what}, got {value!r}. Fix: pass one point, e.g. "
            f"{name}=(0, 0, 0)."
        )
    return tuple(check_number(v, name=f"{name}[{i}]") + 0.0 for i, v in enumerate(items))


# ---------------------------------------------------------------------------------------------
# One checker per operation: used by the function in m1vision.preprocess, by its pipeline step
# (m1vision.pipeline) and by the explorers' parameters, so they cannot drift. Each takes the
# operation's options and returns them checked and in one canonical form (floats as float,
# -0.0 as 0.0, pairs as tuples), as a dict keyed by the option names.
# ---------------------------------------------------------------------------------------------
