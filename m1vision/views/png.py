"""Pictures to PNG bytes: the fast encoder of the live views, and pictures put side by side."""

from __future__ import annotations

import cv2
import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import (
    ImageWriteError,
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
)

__all__ = ["encode_png", "side_by_side_picture"]


def encode_png(array: np.ndarray, *, compression: int = 1, bilevel: bool | None = None) -> bytes:
    """Encode a ``uint8``/``uint16`` gray or BGR(A) array as PNG bytes (OpenCV, fast level).

    ``compression`` is zlib's level 0-9; 1 (default) is several times faster than OpenCV's
    default 3 for a slightly larger file, the right trade for a live widget. A 2-D ``uint8``
    image holding only 0 and 255 (an edge map or a mask) is written as a 1-bit PNG, several
    times faster again. The bytes always decode
    (``cv2.imdecode(..., cv2.IMREAD_UNCHANGED)``) to exactly ``array``.

    Parameters
    ----------
    array : ndarray
        ``uint8`` or ``uint16``; gray, BGR or BGRA.
    compression : int
        zlib level, 0-9.
    bilevel : bool, optional
        Write 1 bit per pixel. ``None`` (default) decides by looking at the values; pass
        ``True`` only for a 2-D ``uint8`` array of 0 and 255 (checked), ``False`` to never.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.png import encode_png
    >>> encode_png(np.zeros((4, 4), np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    array = check_image(array, name="array")
    if array.dtype not in (np.uint8, np.uint16):
        raise InvalidImageError(
            f"array has dtype {array.dtype}; PNG holds uint8 or uint16. Convert it first, "
            "e.g. m1vision.preprocess.to_uint8(array)."
        )
    compression = check_int(compression, name="compression", minimum=0)
    if compression > 9:
        raise InvalidParameterError(f"compression must be 0-9, got {compression}.")
    if bilevel is not None and not isinstance(bilevel, bool):
        raise InvalidTypeError(f"bilevel must be True, False or None, got {bilevel!r}.")
    if bilevel is not False:
        binary = (
            array.ndim == 2
            and array.dtype == np.uint8
            and not np.any((array != 0) & (array != 255))
        )
        if bilevel and not binary:
            raise InvalidParameterError(
                "bilevel=True needs a 2-D uint8 array of only 0 and 255, got "
                f"shape {array.shape}, dtype {array.dtype}; leave bilevel=None to decide."
            )
        bilevel = binary
    flags = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    if bilevel:
        flags += [cv2.IMWRITE_PNG_BILEVEL, 1]
    ok, buf = cv2.imencode(".png", array, flags)
    if not ok:  # pragma: no cover - OpenCV refuses nothing we let through
        raise ImageWriteError(f"OpenCV could not encode an array of shape {array.shape} as PNG.")
    return buf.tobytes()


def side_by_side_picture(pictures, *, gap: int = 4) -> np.ndarray:
    """``uint8`` pictures next to each other, top-aligned on black (one picture: itself).

    Gray pictures become BGR when there are several; a single picture is returned as it is,
    so the static picture of a one-picture view is that picture.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.png import side_by_side_picture
    >>> side_by_side_picture([np.zeros((4, 6), np.uint8), np.zeros((2, 3, 3), np.uint8)]).shape
    (4, 13, 3)
    """
    pictures = [check_image(p, name=f"pictures[{i}]") for i, p in enumerate(pictures)]
    if not pictures:
        raise InvalidParameterError("pictures is empty; pass at least one picture.")
    if len(pictures) == 1:
        return pictures[0]
    gap = check_int(gap, name="gap", minimum=0)
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1)
    out = np.zeros((height, width, 3), np.uint8)
    x = 0
    for p in pictures:
        bgr = p if p.ndim == 3 else np.repeat(p[:, :, None], 3, axis=2)
        out[: p.shape[0], x : x + p.shape[1]] = bgr[:, :, :3]
        x += p.shape[1] + gap
    return out
