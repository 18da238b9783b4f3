"""PNG, JPEG, TIFF and BMP reading with damage checks (internal)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from m1vision._checks import check_choice
from m1vision.errors import ImageReadError
from m1vision.io._core import _check_file, _read_bytes
from m1vision.io._sniff import sniff_format

_RASTER_FORMATS = ("png", "jpeg", "tiff", "bmp")

_MODES = {
    "unchanged": cv2.IMREAD_UNCHANGED,
    "gray": cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION,
    "color": cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION,
}


def _png_problem(data: bytes) -> str | None:
    """Walk the PNG chunks; return why the file is incomplete or corrupt, or None if whole."""
    data = memoryview(data)  # slices below are views, not copies of the image data
    pos = 8
    n = len(data)
    while True:
        if pos + 8 > n:
            return f"truncated PNG: the data stops after {n} bytes, before the IEND chunk"
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > n:
            return (
                f"truncated PNG: chunk {ctype.decode('latin-1')!r} at byte {pos} needs {length} "
                f"bytes but the file ends at byte {n} (no IEND chunk)"
            )
        crc = struct.unpack_from(">I", data, end - 4)[0]
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            return f"corrupt PNG: chunk {ctype.decode('latin-1')!r} at byte {pos} fails its CRC"
        if ctype == b"IEND":
            return None
        pos = end


def _jpeg_problem(data: bytes) -> str | None:
    """Walk the JPEG markers and entropy-coded data; return why it is incomplete, or None.

    A whole JPEG ends with the EOI marker (FF D9) of the *main* image; an EXIF thumbnail's
    own EOI early in the file does not count, which a plain "contains FF D9" test would miss.
    """
    n = len(data)
    pos = 2  # after SOI
    while pos < n:
        if data[pos] != 0xFF:
            return f"corrupt JPEG: expected a marker at byte {pos}"
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return None
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers
            continue
        if pos + 2 > n:
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        pos += length
        if marker == 0xDA:  # start of scan: skip entropy-coded data to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    pos = n
                    break
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break
    return f"truncated JPEG: no end-of-image marker (FF D9) in its {n} bytes"


def _bmp_problem(data: bytes) -> str | None:
    (declared,) = struct.unpack("<I", data[2:6])
    if declared > len(data):
        return f"truncated BMP: the header declares {declared} bytes, the file has {len(data)}"
    return None


#: Deflate's largest compression ratio: a PNG's image data cannot unpack to more than this
#: many times the file's size.
_MAX_DEFLATE_RATIO = 1032
#: PNG colour type -> samples per pixel (PNG spec 11.2.2).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


#: TIFF compression 1 is none; any other packs at most this many times (LZW's 12-bit codes
#: stand for at most 4096 bytes; PackBits, deflate and JPEG pack less).
_MAX_TIFF_RATIO = 4096


def _tiff_fields(data: bytes) -> dict[int, int] | None:
    """The first IFD's single-valued SHORT/LONG fields of a classic TIFF, or None."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8 or struct.unpack(order + "H", data[2:4])[0] != 42:
        return None
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    fields = {}
    for k in range(count):
        at = ifd + 2 + 12 * k
        if at + 12 > len(data):
            break
        tag, kind, n = struct.unpack(order + "HHI", data[at : at + 8])
        if n == 1 and kind in (3, 4):
            code = "H" if kind == 3 else "I"
            (fields[tag],) = struct.unpack(
                order + code, data[at + 8 : at + 8 + (2 if kind == 3 else 4)]
            )
    return fields


def _size_problem(fmt: str, data: bytes) -> str | None:
    """Why the image size a PNG, BMP or TIFF header declares cannot be in the file (an empty
    axis, more pixels than the bytes can hold), before anything is decoded or allocated."""
    if fmt == "png" and len(data) >= 26 and data[12:16] == b"IHDR":
        width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
        if width == 0 or height == 0:
            return f"corrupt PNG: the header declares an empty image of {width} x {height} pixels"
        samples = _PNG_SAMPLES.get(ctype, 4)
        need = height * (1 + (width * samples * depth + 7) // 8)  # filtered rows
        if need > _MAX_DEFLATE_RATIO * len(data):
            return (
                f"corrupt PNG: the header declares {width} x {height} pixels ({need:,} bytes of "
                f"image data), more than its {len(data):,} bytes can unpack to"
            )
    if fmt == "tiff" and (fields := _tiff_fields(data)) is not None:
        width, height = fields.get(256), fields.get(257)
        if width == 0 or height == 0:
            return f"corrupt TIFF: the header declares an empty image of {width} x {height} pixels"
        if width and height:
            bits, samples = fields.get(258, 1), fields.get(277, 1)
            need = width * height * samples * bits // 8
            ratio = 1 if fields.get(259, 1) == 1 else _MAX_TIFF_RATIO
            if need > ratio * len(data):
                return (
                    f"truncated TIFF: the header declares {width} x {height} pixels of {samples} x "
                    f"{bits} bits ({need:,} bytes), more than its {len(data):,} bytes can hold"
                )
    if fmt == "bmp" and len(data) >= 34:
        offset, _, width, height, _, bpp, compression = struct.unpack("<IIiiHHI", data[10:34])
        if width <= 0 or height == 0:
            return f"corrupt BMP: the header declares an image of {width} x {abs(height)} pixels"
        need = offset + ((bpp * width + 31) // 32) * 4 * abs(height)
        if compression == 0 and need > len(data):  # uncompressed rows
            return (
                f"truncated BMP: the header declares {width} x {abs(height)} pixels of {bpp} "
                f"bits ({need:,} bytes), the file has {len(data):,}"
            )
    return None


def read_image(path, *, mode: str = "unchanged") -> np.ndarray:
    """Read a PNG, JPEG, TIFF or BMP file into an array (8- and 16-bit kept).

    Parameters
    ----------
    path : str or pathlib.Path
        The file; any Unicode path works (the bytes are read by Python, then decoded).
    mode : {"unchanged", "gray", "color"}, keyword-only
        ``"unchanged"``: as stored (gray (H, W), BGR (H, W, 3) or BGRA (H, W, 4); EXIF
        orientation not applied). ``"gray"``: (H, W). ``"color"``: BGR (H, W, 3). The bit
        depth is always kept (uint16 stays uint16). Pixels are never rotated by EXIF tags,
        so all three modes give the same geometry.

    Returns
    -------
    numpy.ndarray
        uint8, uint16 or float32 (float TIFF). Never ``None``.

    Raises
    ------
    ImageReadError
        The file is missing, a directory, empty, not a PNG/JPEG/TIFF/BMP (a DICOM or NIfTI
        gets a pointer to :func:`read_any`), truncated or corrupt.
    InvalidParameterError
        ``mode`` is not one of the three.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import read_image, write_image
    >>> p = write_image(pathlib.Path(tempfile.mkdtemp()) / "ramp.png",
    ...                 np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    >>> img = read_image(p)
    >>> img.dtype, img.shape, int(img.max())
    (dtype('uint16'), (3, 4), 55000)
    >>> read_image(p, mode="color").shape
    (3, 4, 3)
    """
    check_choice(mode, name="mode", choices=tuple(_MODES))
    p = _check_file(path)
    return _read_raster(p, sniff_format(p), mode)


#: The last 12 bytes of every whole PNG: a zero-length IEND chunk and its CRC.
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _damage_hint(problem: str) -> str:
    if problem.startswith("truncated"):
        return "the file was probably cut off while being written or copied"
    return "the file is damaged; get a fresh copy"


def _read_raster(p: Path, fmt: str, mode: str) -> np.ndarray:
    """Decode a checked file whose format is sniffed already (read_image and read_any)."""
    if fmt not in _RASTER_FORMATS:
        raise ImageReadError(
            p,
            f"it is a {fmt.upper()} file, not a plain image; read it with "
            "m1vision.io.read_any (or read_dicom / read_nifti).",
        )
    data = _read_bytes(p)
    problem = _size_problem(fmt, data)
    if problem:
        raise ImageReadError(p, f"{problem}; {_damage_hint(problem)}.")
    check = {"png": _png_problem, "jpeg": _jpeg_problem, "bmp": _bmp_problem}.get(fmt)
    # A PNG that ends in its IEND chunk is whole (libpng checks the chunk CRCs as it decodes),
    # so the chunk walk, which says precisely what is wrong, runs only when something is.
    whole_png = fmt == "png" and data.endswith(_PNG_IEND)
    problem = None if (check is None or whole_png) else check(data)
    if problem:
        raise ImageReadError(p, f"{problem}; {_damage_hint(problem)}.")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _MODES[mode])
    if image is None or image.size == 0:
        problem = check(data) if whole_png else None
        if problem:
            raise ImageReadError(p, f"{problem}; {_damage_hint(problem)}.")
        raise ImageReadError(
            p,
            f"OpenCV could not decode this {fmt.upper()} file (corrupt, truncated, or an "
            "unsupported variant such as a multi-sample-per-pixel or compressed TIFF).",
        )
    return image
