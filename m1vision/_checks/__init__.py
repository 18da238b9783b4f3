"""Argument checks shared by the public functions (internal): one checker per operation and
per fact, so a function, its pipeline step and an explorer refuse bad input the same way, in
the same words (what happened, what was expected, the fix).

Where things are
----------------
Every name is importable from ``m1vision._checks``:

================  ===========================================================================
``_values``       the facts every function checks: :func:`check_image`,
                  :func:`check_volume`, :func:`check_path` (swapped arguments named),
                  :func:`check_int`, :func:`check_number`, :func:`check_bool`,
                  :func:`check_choice`, :func:`check_pair`, :func:`check_shape`,
                  :func:`check_point`, :func:`check_axis`, :func:`check_workers` and the one
                  default worker count (:func:`default_workers`, :func:`available_cores`)
``_operations``   one checker per operation: :func:`check_to_uint8`, :func:`check_window`
                  (and :func:`window_bounds`, :data:`WINDOW_PRESETS`), :func:`check_blur`,
                  :func:`check_canny`, :func:`check_auto_canny`, :func:`check_clahe`,
                  :func:`check_resize`, :func:`check_normalize`, :func:`check_resample`,
                  :func:`check_reorient`; the modes and interpolations they accept
``_memory``       :func:`check_output_memory`: an output past :data:`MEMORY_SHARE` of the
                  machine's memory refused before it is allocated; :func:`physical_memory`,
                  :func:`format_size`
================  ===========================================================================
"""

from m1vision._checks._memory import (
    MEMORY_SHARE,
    check_output_memory,
    format_size,
    physical_memory,
)
from m1vision._checks._operations import (
    CANNY_APERTURES,
    INTERPOLATIONS,
    NORMALIZE_MODES,
    TO_UINT8_MODES,
    VOLUME_INTERPOLATIONS,
    WINDOW_PRESETS,
    check_auto_canny,
    check_blur,
    check_canny,
    check_clahe,
    check_normalize,
    check_reorient,
    check_resample,
    check_resample_spacing,
    check_resize,
    check_to_uint8,
    check_window,
    window_bounds,
)
from m1vision._checks._values import (
    AXES,
    SUPPORTED_DTYPES,
    available_cores,
    check_axis,
    check_bool,
    check_choice,
    check_image,
    check_int,
    check_number,
    check_pair,
    check_path,
    check_point,
    check_shape,
    check_volume,
    check_workers,
    default_workers,
)

__all__ = [
    "AXES",
    "CANNY_APERTURES",
    "INTERPOLATIONS",
    "MEMORY_SHARE",
    "NORMALIZE_MODES",
    "SUPPORTED_DTYPES",
    "TO_UINT8_MODES",
    "VOLUME_INTERPOLATIONS",
    "WINDOW_PRESETS",
    "available_cores",
    "check_auto_canny",
    "check_axis",
    "check_blur",
    "check_bool",
    "check_canny",
    "check_choice",
    "check_clahe",
    "check_image",
    "check_int",
    "check_normalize",
    "check_number",
    "check_output_memory",
    "check_pair",
    "check_path",
    "check_point",
    "check_reorient",
    "check_resample",
    "check_resample_spacing",
    "check_resize",
    "check_shape",
    "check_to_uint8",
    "check_volume",
    "check_window",
    "check_workers",
    "default_workers",
    "format_size",
    "physical_memory",
    "window_bounds",
]
