"""One checker per operation (internal): the preprocessing function, its pipeline step and
the explorers call the same one (window, to_uint8, blur, Canny, auto-Canny, CLAHE, resize,
normalize, resample, reorient)."""

from __future__ import annotations

import numbers

import numpy as np

from m1vision._checks._values import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_pair,
)
from m1vision.errors import InvalidParameterError

#: The ``mode`` values of :func:`m1vision.preprocess.to_uint8`.
TO_UINT8_MODES = ("range", "percentile", "dtype")
#: The ``mode`` values of :func:`m1vision.preprocess.normalize`.
NORMALIZE_MODES = ("unit", "mobilenet", "imagenet")
#: The interpolations of :func:`m1vision.preprocess.resize`, by name.
INTERPOLATIONS = ("nearest", "linear", "cubic", "area", "lanczos")
#: The Sobel apertures Canny accepts.
CANNY_APERTURES = (3, 5, 7)
#: CT window presets as ``(center, width)`` in Hounsfield units.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}


def _num(value, *, name: str, minimum: float | None = None) -> float:
    return check_number(value, name=name, minimum=minimum) + 0.0  # -0.0 -> 0.0 (one JSON form)


def check_to_uint8(*, mode="range", in_range=None, percentiles=(0.5, 99.5)) -> dict:
    """Options of :func:`~m1vision.preprocess.to_uint8` (all checked, whatever ``mode`` uses).

    Examples
    --------
    >>> from m1vision._checks import check_to_uint8
    >>> check_to_uint8(mode="percentile", percentiles=[1, 99])
    {'mode': 'percentile', 'in_range': None, 'percentiles': (1.0, 99.0)}
    """
    check_choice(mode, name="mode", choices=TO_UINT8_MODES)
    if in_range is not None:
        in_range = check_pair(in_range, name="in_range")
        if in_range[1] < in_range[0]:
            raise InvalidParameterError(
                f"in_range must have low <= high, got {tuple(in_range)!r}; swap them."
            )
    percentiles = check_pair(percentiles, name="percentiles")
    lo, hi = percentiles
    if not 0 <= lo < hi <= 100:
        raise InvalidParameterError(
            f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}; "
            "e.g. (0.5, 99.5)."
        )
    return {"mode": mode, "in_range": in_range, "percentiles": percentiles}


def check_window(*, center=None, width=None, preset=None) -> dict:
    """Options of :func:`~m1vision.preprocess.window`: a ``preset``, or ``center`` and ``width``.

    The preset is kept as given (``center`` and ``width`` stay None); see
    :func:`window_bounds` for the values it stands for.

    Examples
    --------
    >>> from m1vision._checks import check_window
    >>> check_window(center=40, width=400)
    {'center': 40.0, 'width': 400.0, 'preset': None}
    """
    if preset is not None:
        if center is not None or width is not None:
            raise InvalidParameterError(
                "give either preset or center and width, not both "
                f"(got preset={preset!r}, center={center!r}, width={width!r})."
            )
        check_choice(preset, name="preset", choices=tuple(WINDOW_PRESETS))
        return {"center": None, "width": None, "preset": preset}
    if center is None or width is None:
        raise InvalidParameterError(
            f"a window needs center and width (or a preset); got center={center!r}, "
            f"width={width!r}. Presets: {', '.join(WINDOW_PRESETS)}."
        )
    center = _num(center, name="center")
    width = _num(width, name="width")
    if width <= 0:
        raise InvalidParameterError(f"width must be > 0, got {width}; e.g. 400 (soft tissue).")
    return {"center": center, "width": width, "preset": None}


def window_bounds(*, center=None, width=None, preset=None) -> tuple[float, float]:
    """The values ``(low, high)`` that map to 0 and 255, after :func:`check_window`.

    Examples
    --------
    >>> from m1vision._checks import window_bounds
    >>> window_bounds(preset="brain")
    (0.0, 80.0)
    """
    checked = check_window(center=center, width=width, preset=preset)
    if checked["preset"] is not None:
        center, width = WINDOW_PRESETS[checked["preset"]]
    else:
        center, width = checked["center"], checked["width"]
    return center - width / 2.0, center + width / 2.0


def check_blur(*, ksize=5, sigma=0.0) -> dict:
    """Options of :func:`~m1vision.preprocess.gaussian_blur`: odd ``ksize`` >= 1, ``sigma`` >= 0.

    Examples
    --------
    >>> from m1vision._checks import check_blur
    >>> check_blur(ksize=5, sigma=1)
    {'ksize': 5, 'sigma': 1.0}
    """
    return {
        "ksize": check_int(ksize, name="ksize", minimum=1, odd=True),
        "sigma": _num(sigma, name="sigma", minimum=0.0),
    }


def check_canny(low=50.0, high=150.0, *, aperture=3, l2_gradient=False) -> dict:
    """Options of :func:`~m1vision.preprocess.canny`: ``0 <= low <= high`` (8-bit units).

    Examples
    --------
    >>> from m1vision._checks import check_canny
    >>> check_canny(30, 90, aperture=3, l2_gradient=False)
    {'low': 30.0, 'high': 90.0, 'aperture': 3, 'l2_gradient': False}
    """
    low = _num(low, name="low", minimum=0.0)
    high = _num(high, name="high", minimum=0.0)
    if low > high:
        raise InvalidParameterError(
            f"Canny thresholds must satisfy low <= high, got low={low:g} > high={high:g}; "
            "swap them."
        )
    aperture = check_int(aperture, name="aperture")
    check_choice(aperture, name="aperture", choices=CANNY_APERTURES)
    return {
        "low": low,
        "high": high,
        "aperture": aperture,
        "l2_gradient": check_bool(l2_gradient, name="l2_gradient"),
    }


def check_auto_canny(*, sigma=0.33, ignore_background=True, aperture=3, l2_gradient=False) -> dict:
    """Options of :func:`~m1vision.preprocess.auto_canny`: ``0 <= sigma < 1``.

    Examples
    --------
    >>> from m1vision._checks import check_auto_canny
    >>> check_auto_canny(sigma=0.25)
    {'sigma': 0.25, 'ignore_background': True, 'aperture': 3, 'l2_gradient': False}
    """
    sigma = _num(sigma, name="sigma", minimum=0.0)
    if sigma >= 1.0:
        raise InvalidParameterError(
            f"sigma must be < 1 (a fraction of the median), got {sigma}; e.g. 0.33."
        )
    aperture = check_int(aperture, name="aperture")
    check_choice(aperture, name="aperture", choices=CANNY_APERTURES)
    return {
        "sigma": sigma,
        "ignore_background": check_bool(ignore_background, name="ignore_background"),
        "aperture": aperture,
        "l2_gradient": check_bool(l2_gradient, name="l2_gradient"),
    }


def check_clahe(*, clip_limit=2.0, tile_grid=(8, 8)) -> dict:
    """Options of :func:`~m1vision.preprocess.clahe`: ``tile_grid`` = (columns, rows) >= 1.

    Examples
    --------
    >>> from m1vision._checks import check_clahe
    >>> check_clahe(tile_grid=[4, 4])
    {'clip_limit': 2.0, 'tile_grid': (4, 4)}
    """
    return {
        "clip_limit": _num(clip_limit, name="clip_limit", minimum=0.0),
        "tile_grid": check_pair(tile_grid, name="tile_grid", kind="int", what="(columns, rows)"),
    }


def check_resize(
    *, size, keep_aspect=True, letterbox=True, interpolation=None, pad_value=0.0
) -> dict:
    """Options of :func:`~m1vision.preprocess.resize`; ``interpolation`` one of
    :data:`INTERPOLATIONS` or None (area when shrinking, linear when enlarging).

    Examples
    --------
    >>> from m1vision._checks import check_resize
    >>> check_resize(size=[64, 32])["size"]
    (64, 32)
    """
    if interpolation is not None:
        check_choice(interpolation, name="interpolation", choices=INTERPOLATIONS)
    return {
        "size": check_pair(size, name="size", kind="int", what="(height, width)"),
        "keep_aspect": check_bool(keep_aspect, name="keep_aspect"),
        "letterbox": check_bool(letterbox, name="letterbox"),
        "interpolation": interpolation,
        "pad_value": _num(pad_value, name="pad_value"),
    }


#: Interpolations of :func:`m1vision.volume.resample` (and its step).
VOLUME_INTERPOLATIONS = ("linear", "nearest", "bspline")


def check_resample_spacing(spacing) -> tuple[float, float, float]:
    """A target voxel size (z, row, col) in mm, every value > 0 (one number: all three)."""
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, bool):
        spacing = (spacing, spacing, spacing)
    if not isinstance(spacing, tuple | list | np.ndarray) or len(spacing) != 3:
        raise InvalidParameterError(
            f"spacing must be the target voxel size (z, row, col) in mm or one number for all "
            f"three, got {spacing!r}; e.g. spacing=(1.5, 1.5, 1.5)."
        )
    out = []
    for i, v in enumerate(spacing):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
            raise InvalidParameterError(
                f"spacing[{i}] must be a finite number of mm > 0, got {v!r} (spacing "
                f"{tuple(spacing)!r}); a voxel cannot be {v!r} mm wide. Fix: pass positive "
                "sizes, e.g. spacing=(1.5, 1.5, 1.5)."
            )
        out.append(float(v))
    return tuple(out)


def check_resample(*, spacing=None, interpolation="linear") -> dict:
    """The checked parameters of :func:`m1vision.volume.resample` and its step."""
    return {
        "spacing": None if spacing is None else check_resample_spacing(spacing),
        "interpolation": check_choice(
            interpolation, name="interpolation", choices=VOLUME_INTERPOLATIONS
        ),
    }


def check_reorient(*, orientation="SPL") -> dict:
    """The checked parameters of :func:`m1vision.volume.reorient` and its step."""
    from m1vision.geometry import check_axcodes

    return {"orientation": check_axcodes(orientation)}


def check_normalize(*, mode="unit") -> dict:
    """Options of :func:`~m1vision.preprocess.normalize`.

    Examples
    --------
    >>> from m1vision._checks import check_normalize
    >>> check_normalize(mode="imagenet")
    {'mode': 'imagenet'}
    """
    return {"mode": check_choice(mode, name="mode", choices=NORMALIZE_MODES)}
