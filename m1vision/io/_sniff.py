"""Format sniffing by content (internal)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

from m1vision._checks import check_path
from m1vision.errors import ImageReadError
from m1vision.io._core import _check_file, _read_bytes

#: Suffixes :func:`read_any` accepts when scanning folders (lower case). ``.nii.gz`` has two
#: suffixes, so test names with :func:`has_image_extension`, not ``path.suffix in ...``.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".nii", ".nii.gz"}
)


def has_image_extension(path) -> bool:
    """Return True if ``path``'s name ends with one of :data:`IMAGE_EXTENSIONS` (any case).

    Examples
    --------
    >>> from m1vision.io import has_image_extension
    >>> has_image_extension("brain.NII.GZ"), has_image_extension("scan.dcm")
    (True, True)
    >>> has_image_extension("notes.txt"), has_image_extension("archive.tar.gz")
    (False, False)
    """
    name = Path(check_path(path)).name.lower()
    return any(name.endswith(ext) for ext in IMAGE_EXTENSIONS)


def _looks_like_preambleless_dicom(head: bytes) -> bool:
    """A DICOM data set written without the 128-byte preamble and 'DICM' (old ACR-NEMA style).

    The first element is then a group 0x0002/0x0008 tag, little or big endian, followed by an
    explicit two-letter VR or an implicit 4-byte length that fits in the file.
    """
    if len(head) < 8:
        return False
    for order in "<>":
        group, elem = struct.unpack(order + "HH", head[:4])
        if group not in (0x0002, 0x0008) or elem > 0x00FF:
            continue
        vr = head[4:6]
        if vr.isalpha() and vr.isupper():
            return True
        (length,) = struct.unpack(order + "I", head[4:8])
        if length < 1024:
            return True
    return False


#: Bytes to read to tell a DICOM file by its marker (128-byte preamble + "DICM").
DICOM_HEAD = 132


def has_dicm_marker(head: bytes) -> bool:
    """True if ``head`` (the file's first bytes) holds ``DICM`` at byte 128."""
    return len(head) >= DICOM_HEAD and head[128:DICOM_HEAD] == b"DICM"


def dicom_kind(head: bytes) -> bool | None:
    """True: a DICOM Part 10 file (DICM marker); None: a preamble-less data set; False: not DICOM.

    ``head`` is the file's first :data:`DICOM_HEAD` bytes (or more). A preamble-less data set
    must be parsed with ``pydicom.dcmread(..., force=True)``.
    """
    if has_dicm_marker(head):
        return True
    return None if _looks_like_preambleless_dicom(head) else False


def _nifti_header(head: bytes) -> tuple[str, str] | None:
    """('nifti1' or 'nifti2', struct byte order) of a NIfTI header at the start of ``head``."""
    if len(head) >= 348:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 348 and head[344:347] in (b"n+1", b"ni1"):
                return "nifti1", order
    if len(head) >= 540:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 540 and head[4:7] in (b"n+2", b"ni2"):
                return "nifti2", order
    return None


#: The first bytes of a gzip stream (RFC 1952).
GZIP_MAGIC = b"\x1f\x8b"


def nifti_pair_header(head: bytes) -> bool:
    """True if ``head`` is the header of a .hdr/.img pair (magic ``ni1``/``ni2``), whose
    data live in another file."""
    found = _nifti_header(head)
    if found is None:
        return False
    return head[344:347] == b"ni1" if found[0] == "nifti1" else head[4:7] == b"ni2"


def _nifti_kind(head: bytes) -> str | None:
    """'nifti1'/'nifti2' if ``head`` starts with a NIfTI header (either byte order), else None."""
    found = _nifti_header(head)
    return None if found is None else found[0]


#: (dim, pixdim) offsets and struct codes in a NIfTI-1 and a NIfTI-2 header.
_NIFTI_FIELDS = {"nifti1": ((40, "8h"), (76, "8f")), "nifti2": ((16, "8q"), (104, "8d"))}


def nifti_dims(head: bytes) -> tuple[tuple[int, ...], tuple[float, ...]] | None:
    """The ``dim`` and ``pixdim`` fields of a NIfTI-1/2 header, as stored; None if no header.

    ``dim`` is (ndim, n1, ..., n7), ``pixdim`` (qfac, voxel sizes...). Only the header is
    parsed (``head`` holds at least its 348 or 540 bytes, decompressed); nibabel, unlike
    this, replaces zero voxel sizes by 1 when it loads a file.
    """
    found = _nifti_header(head)
    if found is None:
        return None
    kind, order = found
    (dim_at, dim_code), (pix_at, pix_code) = _NIFTI_FIELDS[kind]
    dims = struct.unpack_from(order + dim_code, head, dim_at)
    return dims, struct.unpack_from(order + pix_code, head, pix_at)


def _gunzip_head(p: Path, n: int) -> bytes:
    """The first ``n`` decompressed bytes of the gzip file ``p`` (ImageReadError if broken)."""
    try:
        with gzip.open(p, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise ImageReadError(p, f"a gzip file that cannot be decompressed: {exc}") from exc


def sniff_format(path) -> str:
    """Return the format of the file at ``path`` from its content, not its name.

    Returns one of ``"dicom"``, ``"nifti"``, ``"png"``, ``"jpeg"``, ``"tiff"``, ``"bmp"``.

    Recognised by: ``DICM`` at byte 128 (or a preamble-less data set starting with a group
    0x0002/0x0008 element), a NIfTI-1/2 header (``sizeof_hdr`` 348/540 and its magic, also
    inside gzip), and the PNG, JPEG (``FF D8 FF``), TIFF (``II*\\0``/``MM\\0*``) and BMP
    (``BM``) signatures.

    Raises
    ------
    ImageReadError
        If the file is missing, a directory, empty, or none of these formats.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import sniff_format, write_image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> p = write_image(folder / "a.png", np.zeros((4, 4), np.uint8))
    >>> sniff_format(p.rename(folder / "renamed.dcm"))
    'png'
    """
    p = _check_file(path)
    head = _read_bytes(p, 1024)
    if has_dicm_marker(head):
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if _nifti_kind(head):
        return "nifti"
    if head.startswith(GZIP_MAGIC):
        inner = _gunzip_head(p, 540)
        if _nifti_kind(inner):
            return "nifti"
        raise ImageReadError(
            p, "a gzip file that does not hold a NIfTI image; only .nii.gz is read compressed."
        )
    if _looks_like_preambleless_dicom(head):
        return "dicom"
    kind = "text" if _is_text(head) else "binary data"
    raise ImageReadError(
        p,
        f"not an image: the content ({kind}, starting {head[:8]!r}) is none of DICOM, NIfTI, "
        "PNG, JPEG, TIFF or BMP, whatever the file's extension says.",
    )


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
