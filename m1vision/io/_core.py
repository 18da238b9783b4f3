"""MedicalImage and the file checks every reader shares (internal)."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from m1vision._checks import check_number, check_pair, check_path
from m1vision._checks._values import _items
from m1vision.errors import ImageReadError, InvalidParameterError, InvalidTypeError

# What pathlib's exists() takes for "no such file" (a missing file, a broken link...).
_MISSING_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


@dataclass(frozen=True, eq=False)
class MedicalImage:
    """An image or volume with the facts needed to show and measure it.

    Attributes
    ----------
    pixels : numpy.ndarray
        DICOM (monochrome) and NIfTI: float32 in modality units (Hounsfield units for CT,
        the file's DoseUnits (Gy or relative) for RT dose, scanner units for MR). Plain
        images: the dtype as stored (uint8, uint16, float32), BGR if color. 2-D (H, W),
        3-D color (H, W, C) or a volume (Z, H, W) with slices/frames first.
    spacing : tuple of float or None
        Millimetres per pixel in the axis order of ``pixels`` ((row, col) or (z, row, col));
        ``None`` when the file does not say.
    window : tuple of float or None
        ``(center, width)`` of the file's default display window, in the units of ``pixels``.
    modality : str or None
        DICOM modality ("CT", "MR", "RTDOSE"...); ``None`` for NIfTI and plain images.
    metadata : dict
        Small JSON-safe facts (format, photometric interpretation, rescale, orientation...).
        Never patient or study identifiers.
    source : str
        The path the image was read from ("" for images made in memory).

    Raises
    ------
    InvalidTypeError
        ``pixels`` is no ndarray; a size or window value is no number.
    InvalidParameterError
        ``spacing`` is not 2 or 3 finite sizes > 0 (or None); ``window`` is no pair.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.io import MedicalImage
    >>> img = MedicalImage(np.zeros((4, 5), np.float32), spacing=(0.5, 0.5), window=(40.0, 400.0))
    >>> img.shape, img.ndim, img.is_volume
    ((4, 5), 2, False)
    """

    pixels: np.ndarray
    spacing: tuple[float, ...] | None = None
    window: tuple[float, float] | None = None
    modality: str | None = None
    metadata: dict = field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        """Refuse what no reader, writer or view could use: pixels that are no array, a
        spacing that is no 2 or 3 sizes > 0, a window that is no pair of numbers."""
        if not isinstance(self.pixels, np.ndarray):
            raise InvalidTypeError(
                f"pixels must be a numpy.ndarray, got {type(self.pixels).__name__}. Fix: pass "
                "numpy.asarray(pixels), or read a file with m1vision.io.read_any(path)."
            )
        if self.spacing is not None:
            sizes = _items(self.spacing)
            if sizes is None or len(sizes) not in (2, 3):
                raise InvalidParameterError(
                    f"spacing must be the millimetres per pixel along the axes of pixels, "
                    f"(row, col) or (z, row, col), or None, got {self.spacing!r} for pixels of "
                    f"shape {self.pixels.shape}. Fix: pass e.g. spacing=(2.5, 0.8, 0.8) for a "
                    "volume, or None when the size is not known."
                )
            for i, v in enumerate(sizes):
                if check_number(v, name=f"spacing[{i}]") <= 0:
                    raise InvalidParameterError(
                        f"spacing[{i}] must be > 0 mm, got {v!r} (spacing {tuple(sizes)!r}); "
                        "a pixel cannot be that wide. Fix: pass positive sizes, or None when "
                        "the size is not known."
                    )
        if self.window is not None:
            check_pair(self.window, name="window", what="(center, width)")

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``pixels``."""
        return tuple(self.pixels.shape)

    @property
    def ndim(self) -> int:
        """The number of dimensions of ``pixels``."""
        return int(self.pixels.ndim)

    @property
    def is_volume(self) -> bool:
        """True for a monochrome (Z, H, W) volume (DICOM multi-frame, NIfTI)."""
        return self.pixels.ndim == 3 and self.metadata.get("layout") == "volume"

    def __repr__(self) -> str:
        return (
            f"MedicalImage(shape={self.shape}, dtype={self.pixels.dtype}, "
            f"spacing={self.spacing}, window={self.window}, modality={self.modality!r}, "
            f"source={Path(self.source).name!r})"
        )


def _check_file(path) -> Path:
    """Return ``path`` as a Path after checking it is a readable, non-empty regular file."""
    p = Path(check_path(path))
    try:  # one stat for every check (batch runs read thousands of files)
        st = os.stat(p)
    except OSError as exc:
        if exc.errno not in _MISSING_ERRNOS:  # pragma: no cover - races and odd filesystems
            raise ImageReadError(p, f"cannot stat it: {exc}") from exc
        hint = ""
        if p.parent.is_dir():
            near = sorted(q.name for q in p.parent.iterdir() if q.stem == p.stem)[:3]
            if near:
                hint = f" (the folder has {', '.join(near)})"
        raise ImageReadError(
            p, f"no such file{hint}; check the path and the working folder."
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(
            p,
            "it is a directory, not a file; pass a file, read a folder of DICOM slices with "
            "m1vision.io.read_series (or read_any), or collect a folder's images with "
            "m1vision.pipeline.collect_inputs.",
        )
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(p, "it is not a regular file (a device, socket or pipe).")
    size = st.st_size
    if size == 0:
        raise ImageReadError(p, "the file is empty (0 bytes); it was probably not fully written.")
    return p


def _read_bytes(p: Path, n: int | None = None) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read() if n is None else fh.read(n)
    except PermissionError as exc:
        raise ImageReadError(p, "permission denied; check the file's read permission.") from exc
    except OSError as exc:
        raise ImageReadError(p, f"the file cannot be read: {exc.strerror or exc}") from exc
