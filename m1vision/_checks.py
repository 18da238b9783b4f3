"""Argument checks shared by the public functions (internal)."""

from __future__ import annotations

import numbers

import numpy as np

from m1vision.errors import InvalidImageError, InvalidParameterError

#: dtypes every preprocessing function accepts.
SUPPORTED_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def check_image(image, *, name: str = "image", allow_color: bool = True) -> np.ndarray:
    """Return ``image`` as an ndarray after checking it is a 2-D gray or 3-D color image.

    Raises ``TypeError`` for a non-array, ``InvalidImageError`` for a wrong shape,
    an unsupported dtype, an empty array or non-finite values.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray, got {type(image).__name__}; "
            "read files with m1vision.io.read_any(path) first."
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


def check_int(value, *, name: str, minimum: int | None = None, odd: bool = False) -> int:
    """Check ``value`` is an integer (not a bool), at least ``minimum``, and odd if asked."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {value}.")
    if odd and value % 2 == 0:
        raise InvalidParameterError(
            f"{name} must be odd, got {value}; use {value - 1} or {value + 1}."
        )
    return value


def check_number(value, *, name: str, minimum: float | None = None) -> float:
    """Check ``value`` is a finite real number, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise InvalidParameterError(f"{name} must be finite, got {value}.")
    if minimum is not None and value < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {value}.")
    return value


def check_choice(value, *, name: str, choices) -> str:
    """Check ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise InvalidParameterError(f"{name} must be one of {listed}, got {value!r}.")
    return value
