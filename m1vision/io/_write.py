"""Plain image writing (internal)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from m1vision._atomic import atomic_write_bytes
from m1vision._checks import check_path
from m1vision.errors import (
    ImageWriteError,
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
)
from m1vision.io._core import MedicalImage

#: Formats :func:`write_image` can write, by suffix, with the dtypes each accepts.
_WRITE_DTYPES = {
    ".png": (np.uint8, np.uint16),
    ".jpg": (np.uint8,),
    ".jpeg": (np.uint8,),
    ".tif": (np.uint8, np.uint16, np.float32),
    ".tiff": (np.uint8, np.uint16, np.float32),
    ".bmp": (np.uint8,),
}
_WRITE_CHANNELS = {".png": (1, 3, 4), ".jpg": (1, 3), ".jpeg": (1, 3), ".tif": (1, 3, 4)}
_WRITE_CHANNELS |= {".tiff": (1, 3, 4), ".bmp": (1, 3, 4)}
_WRITE_PARAMS = {
    ".png": [cv2.IMWRITE_PNG_COMPRESSION, 6],
    ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95],
    ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
}


def write_image(
    path,
    image,
    *,
    overwrite: bool = False,
    png_compression: int | None = 6,
    fsync: bool = True,
) -> Path:
    """Write a 2-D image to PNG, JPEG, TIFF or BMP (by extension), atomically.

    ========  ===========================  ================
    suffix    dtypes                       channels
    ========  ===========================  ================
    .png      uint8, uint16                1, 3 (BGR), 4
    .jpg      uint8 (quality 95)           1, 3
    .tif      uint8, uint16, float32       1, 3, 4
    .bmp      uint8                        1, 3, 4
    ========  ===========================  ================

    Parameters
    ----------
    path : str or pathlib.Path
        The output file; missing parent folders are created. Unicode paths work.
    image : numpy.ndarray
        (H, W) gray or (H, W, C) BGR(A). Not modified.
    overwrite : bool, keyword-only
        Replace an existing file. Without it an existing file raises OutputExistsError.
    png_compression : int or None, keyword-only
        zlib level for PNG, 0-9: 6 (default) for small files; ``None`` for OpenCV's
        speed-tuned default (SUB filter, level 1, RLE strategy), what
        :meth:`m1vision.pipeline.Pipeline.run` uses. The pixels are the same either way.
    fsync : bool, keyword-only
        Flush the file to disk before it gets its name (default). ``False`` is still atomic
        for readers and against a crash of the program, not against a power cut.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    InvalidParameterError
        The suffix is not one of the four formats (e.g. .dcm: DICOM is not written).
    InvalidImageError
        The dtype or channel count does not fit the format (e.g. uint16 to JPEG), with the fix.
    TypeError
        ``image`` is not an ndarray (e.g. a MedicalImage: pass ``.pixels``).
    ImageWriteError
        OpenCV failed to encode or the file could not be written (nothing partial is left).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import write_image, read_image
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "new" / "img.png"
    >>> write_image(out, np.full((2, 2), 7, np.uint8)).name
    'img.png'
    >>> write_image(out, np.zeros((2, 2), np.uint8))
    Traceback (most recent call last):
    ...
    m1vision.errors.OutputExistsError: ...
    """
    p = Path(check_path(path, call="write_image(path, image)"))
    if isinstance(image, MedicalImage):
        raise InvalidTypeError(
            "image must be a numpy.ndarray, got a MedicalImage. Fix: pass image.pixels, as in "
            "write_image(path, image.pixels), or write a volume with write_nifti."
        )
    if not isinstance(image, np.ndarray):
        raise InvalidTypeError(
            f"image must be a numpy.ndarray, got {type(image).__name__}. Fix: convert it with "
            "numpy.asarray(image)."
        )
    suffix = p.suffix.lower()
    if suffix not in _WRITE_DTYPES:
        raise InvalidParameterError(
            f"cannot write {str(p)!r}: the suffix {p.suffix!r} is not a format write_image "
            f"writes; use one of {', '.join(sorted(_WRITE_DTYPES))}."
        )
    channels = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else None)
    if channels is None or image.size == 0:
        raise InvalidImageError(
            f"cannot write {str(p)!r}: image must be a non-empty (H, W) or (H, W, C) array, got "
            f"shape {image.shape}; for a volume write one slice (volume[k]) per file."
        )
    allowed = _WRITE_DTYPES[suffix]
    if image.dtype not in allowed:
        names = ", ".join(np.dtype(d).name for d in allowed)
        fix = (
            "convert with m1vision.preprocess.to_uint8 (or window) first"
            if np.dtype(np.uint8) in [np.dtype(d) for d in allowed]
            else "convert first"
        )
        tip = " or write .tif for float32" if image.dtype.kind == "f" else ""
        tip += " or write .png/.tif to keep 16 bits" if image.dtype == np.uint16 else ""
        raise InvalidImageError(
            f"cannot write {str(p)!r}: {suffix} takes {names}, got {image.dtype}; {fix}{tip}."
        )
    if channels not in _WRITE_CHANNELS[suffix]:
        raise InvalidImageError(
            f"cannot write {str(p)!r}: {suffix} takes 1, 3 or 4 channels as listed in "
            f"write_image's docs, got {channels} (shape {image.shape})."
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise InvalidImageError(
            f"cannot write {str(p)!r}: image holds NaN or infinite values; replace them first "
            "(numpy.nan_to_num)."
        )
    if png_compression is not None and (
        isinstance(png_compression, bool) or png_compression not in range(10)
    ):
        raise InvalidParameterError(
            f"png_compression must be an integer 0-9 or None, got {png_compression!r}."
        )
    params = _WRITE_PARAMS.get(suffix, [])
    if suffix == ".png":
        params = [] if png_compression is None else [cv2.IMWRITE_PNG_COMPRESSION, png_compression]
    try:
        ok, buf = cv2.imencode(suffix, np.ascontiguousarray(image), params)
    except cv2.error as exc:
        raise ImageWriteError(f"OpenCV could not encode {str(p)!r}: {exc}") from exc
    if not ok:
        raise ImageWriteError(f"OpenCV could not encode {str(p)!r} as {suffix}.")
    try:
        return atomic_write_bytes(p, buf.tobytes(), overwrite=overwrite, fsync=fsync)
    except (FileExistsError, ImageWriteError):
        raise  # already says the file and the fix
    except OSError as exc:
        raise ImageWriteError(f"cannot write {str(p)!r}: {exc}") from exc
