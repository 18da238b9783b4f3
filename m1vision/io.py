"""Read and write medical and plain images: DICOM, NIfTI, PNG, JPEG, TIFF, BMP.

Every reader names the file and the reason when it fails (:class:`~m1vision.errors.ImageReadError`,
also an ``OSError``); none returns ``None``. Files are recognised by their content (magic bytes),
not by their extension, so a PNG named ``.dcm`` or a DICOM without an extension read fine with
:func:`read_any`.

=====================  ==========================================================================
function               returns
=====================  ==========================================================================
:func:`read_image`     a plain ``ndarray`` (PNG, JPEG, TIFF, BMP; 8/16-bit kept; BGR for color)
:func:`read_dicom`     a :class:`MedicalImage`, pixels float32 in modality units (HU for CT)
:func:`read_nifti`     a :class:`MedicalImage`, a float32 (Z, H, W) volume in DICOM-like layout
:func:`read_any`       a :class:`MedicalImage` for any of the above, picked by content
:func:`write_image`    writes PNG/JPEG/TIFF/BMP atomically; refuses to overwrite unless asked
=====================  ==========================================================================

Conventions
-----------
* Color images are BGR (OpenCV's order).
* Volumes are (Z, H, W): slices first. ``spacing`` is in millimetres in the same axis order.
* Metadata is small and JSON-safe, and never holds patient or study identifiers or free-text
  fields (no PatientName, PatientID, dates, descriptions): de-identified by construction.
"""

from __future__ import annotations

import contextlib
import gzip
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from m1vision._atomic import atomic_write_bytes
from m1vision._checks import check_choice
from m1vision.errors import (
    ImageReadError,
    ImageWriteError,
    InvalidImageError,
    InvalidParameterError,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "MedicalImage",
    "has_image_extension",
    "read_any",
    "read_dicom",
    "read_image",
    "read_nifti",
    "sniff_format",
    "write_image",
]

#: Suffixes :func:`read_any` accepts when scanning folders (lower case). ``.nii.gz`` has two
#: suffixes, so test names with :func:`has_image_extension`, not ``path.suffix in ...``.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".nii", ".nii.gz"}
)

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

_RASTER_FORMATS = ("png", "jpeg", "tiff", "bmp")

_MODES = {
    "unchanged": cv2.IMREAD_UNCHANGED,
    "gray": cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION,
    "color": cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION,
}


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


# ---------------------------------------------------------------------------------------------
# file checks and format sniffing
# ---------------------------------------------------------------------------------------------


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
    name = Path(path).name.lower()
    return any(name.endswith(ext) for ext in IMAGE_EXTENSIONS)


def _check_file(path) -> Path:
    """Return ``path`` as a Path after checking it is a readable, non-empty regular file."""
    if not isinstance(path, str) and not hasattr(path, "__fspath__"):
        raise TypeError(
            f"path must be a str or pathlib.Path, got {type(path).__name__}; "
            "to decode bytes in memory use cv2.imdecode."
        )
    p = Path(path)
    if not p.exists():
        hint = ""
        if p.parent.is_dir():
            near = sorted(q.name for q in p.parent.iterdir() if q.stem == p.stem)[:3]
            if near:
                hint = f" (the folder has {', '.join(near)})"
        raise ImageReadError(p, f"no such file{hint}; check the path and the working folder.")
    if p.is_dir():
        raise ImageReadError(
            p,
            "it is a directory, not a file; pass a file, or collect a folder's images with "
            "m1vision.pipeline.collect_inputs.",
        )
    if not p.is_file():
        raise ImageReadError(p, "it is not a regular file (a device, socket or pipe).")
    try:
        size = p.stat().st_size
    except OSError as exc:  # pragma: no cover - races and odd filesystems
        raise ImageReadError(p, f"cannot stat it: {exc}") from exc
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


def _nifti_kind(head: bytes) -> str | None:
    """'nifti1'/'nifti2' if ``head`` starts with a NIfTI header (either byte order), else None."""
    if len(head) >= 348:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 348 and head[344:347] in (b"n+1", b"ni1"):
                return "nifti1"
    if len(head) >= 540:
        for order in "<>":
            if struct.unpack(order + "i", head[:4])[0] == 540 and head[4:7] in (b"n+2", b"ni2"):
                return "nifti2"
    return None


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
    if len(head) >= 132 and head[128:132] == b"DICM":
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
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(p, "rb") as fh:
                inner = fh.read(540)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImageReadError(p, f"a gzip file that cannot be decompressed: {exc}") from exc
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


# ---------------------------------------------------------------------------------------------
# plain images
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# DICOM
# ---------------------------------------------------------------------------------------------

#: PyPI packages that give pydicom a decoder, by transfer syntax family.
_DECODER_PACKAGES = {
    "JPEG-LS": "pylibjpeg + pylibjpeg-libjpeg, or pyjpegls, or python-gdcm",
    "JPEG 2000": "pylibjpeg + pylibjpeg-openjpeg, or python-gdcm (Pillow with OpenJPEG does some)",
    "HTJ2K": "pylibjpeg + pylibjpeg-openjpeg",
    "JPEG": "pylibjpeg + pylibjpeg-libjpeg, or python-gdcm (Pillow does 8-bit baseline only)",
    "RLE": "pylibjpeg + pylibjpeg-rle (pydicom's own NumPy decoder normally suffices)",
    "Deflated": "pydicom's own (zlib); reinstall pydicom",
}


def _decoder_packages(ts_name: str) -> str:
    for family in ("JPEG-LS", "HTJ2K", "JPEG 2000", "JPEG", "RLE", "Deflated"):
        if family in ts_name or family.replace(" ", "") in ts_name:
            return _DECODER_PACKAGES[family]
    return "pylibjpeg with its plugins, or python-gdcm"


def _first(value) -> float | None:
    """First number of a possibly multi-valued DICOM element, as float; None if empty."""
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
            if len(value) == 0:
                return None
            value = value[0]
        return float(value)
    except (TypeError, ValueError):
        return None


def _floats(value) -> list[float] | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            return [float(value)]
        return [float(v) for v in value]
    except (TypeError, ValueError):
        return None


def _functional(ds, seq_name: str, item_name: str):
    """An element from the shared functional groups of an enhanced multi-frame object."""
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(groups)
        if not seq:
            continue
        inner = seq[0].get(seq_name)
        if inner and item_name in inner[0]:
            return inner[0].get(item_name)
    return None


def _dicom_spacing(ds, n_frames: int, multi: bool) -> tuple[tuple[float, ...] | None, dict]:
    """(spacing in pixel axis order or None, facts for metadata)."""
    facts: dict = {}
    pixel_spacing = _floats(ds.get("PixelSpacing")) or _floats(
        _functional(ds, "PixelMeasuresSequence", "PixelSpacing")
    )
    if pixel_spacing is None:
        pixel_spacing = _floats(ds.get("ImagerPixelSpacing"))
        if pixel_spacing:
            facts["spacing_source"] = "ImagerPixelSpacing (at the detector, not the patient)"
    thickness = _first(ds.get("SliceThickness")) or _first(
        _functional(ds, "PixelMeasuresSequence", "SliceThickness")
    )
    between = _first(ds.get("SpacingBetweenSlices")) or _first(
        _functional(ds, "PixelMeasuresSequence", "SpacingBetweenSlices")
    )
    if thickness is not None:
        facts["slice_thickness"] = thickness
    if between is not None:
        facts["spacing_between_slices"] = between
    in_plane = tuple(pixel_spacing[:2]) if pixel_spacing and len(pixel_spacing) >= 2 else None
    if in_plane is not None:
        facts["pixel_spacing"] = list(in_plane)
    if not multi:
        return in_plane, facts
    # slice spacing of a multi-frame: explicit spacing, else even GridFrameOffsetVector steps
    # (RT dose), else the slice thickness (contiguous slices).
    z = between
    offsets = _floats(ds.get("GridFrameOffsetVector"))
    if z is None and offsets and len(offsets) == n_frames and n_frames > 1:
        steps = np.diff(np.asarray(offsets, dtype=np.float64))
        if np.allclose(steps, steps[0], rtol=1e-4, atol=1e-6) and steps[0] != 0:
            z = abs(float(steps[0]))
            facts["spacing_source_z"] = "GridFrameOffsetVector"
        else:
            facts["frame_offsets"] = [float(v) for v in offsets]
    if z is None and thickness is not None:
        z = thickness
        facts["spacing_source_z"] = "SliceThickness"
    if in_plane is None or z is None:
        return None, facts
    return (z, *in_plane), facts


def _dicom_metadata(ds) -> dict:
    """Whitelisted, JSON-safe, patient-free facts about a DICOM data set."""
    meta: dict = {"format": "dicom"}
    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID") if fm is not None else None
    if ts:
        meta["transfer_syntax"] = ts.name
        meta["transfer_syntax_uid"] = str(ts)
    sop = ds.get("SOPClassUID")
    if sop:
        meta["sop_class"] = sop.name
    for key, name in (
        ("Modality", "modality"),
        ("PhotometricInterpretation", "photometric"),
        ("Manufacturer", "manufacturer"),
        ("BodyPartExamined", "body_part"),
        ("RescaleType", "rescale_type"),
        ("Units", "units"),
        ("DoseUnits", "dose_units"),
        ("DoseType", "dose_type"),
        ("VOILUTFunction", "voi_lut_function"),
        ("PatientPosition", "patient_position"),
    ):
        value = ds.get(key)
        if value not in (None, ""):
            meta[name] = str(value)
    for key, name in (
        ("Rows", "rows"),
        ("Columns", "columns"),
        ("BitsAllocated", "bits_allocated"),
        ("BitsStored", "bits_stored"),
        ("PixelRepresentation", "pixel_representation"),
        ("SamplesPerPixel", "samples_per_pixel"),
        ("InstanceNumber", "instance_number"),
    ):
        value = ds.get(key)
        if value not in (None, ""):
            with contextlib.suppress(TypeError, ValueError):
                meta[name] = int(value)
    for key, name in (
        ("RescaleSlope", "rescale_slope"),
        ("RescaleIntercept", "rescale_intercept"),
        ("SliceLocation", "slice_location"),
        ("DoseGridScaling", "dose_grid_scaling"),
        ("KVP", "kvp"),
    ):
        value = _first(ds.get(key))
        if value is not None:
            meta[name] = value
    for key, name in (
        ("ImagePositionPatient", "image_position_patient"),
        ("ImageOrientationPatient", "image_orientation_patient"),
    ):
        value = _floats(ds.get(key))
        if value:
            meta[name] = value
    if "ModalityLUTSequence" in ds:
        meta["modality_lut"] = "ModalityLUTSequence"
    return meta


def read_dicom(path) -> MedicalImage:
    """Read a DICOM file: pixels in modality units, default window, spacing, safe metadata.

    What is done, in order:

    1. Pixels are decoded by pydicom (uncompressed, RLE, deflate, and JPEG / JPEG 2000 as far as
       the installed plugins go: Pillow decodes 8-bit JPEG baseline and JPEG 2000).
    2. Monochrome pixels go through the modality LUT (``pydicom.pixels.apply_modality_lut``:
       RescaleSlope/RescaleIntercept or a Modality LUT Sequence), so CT is in Hounsfield
       units. RT dose is also multiplied by ``DoseGridScaling`` (DICOM PS3.3 C.8.8.3) and is in
       ``DoseUnits`` (usually Gy). The result is float32.
    3. **MONOCHROME1** (low values shown bright, common in CR/DX/mammography) is converted to
       the MONOCHROME2 convention every other tool uses, so bone is bright as a radiologist
       expects: ``pixels = K - value`` with ``K = lut(min_stored) + lut(max_stored)`` (the sum of
       the ends of the stored value range after the modality LUT, the same constant for every
       image of a series). The window center becomes ``K - center`` (width unchanged), so
       windowing the new pixels shows exactly what a conformant viewer shows. Recorded as
       ``metadata["photometric"] = "MONOCHROME1"``, ``metadata["inverted"] = True`` and
       ``metadata["inversion_constant"] = K`` (the original values are ``K - pixels``).
    4. Color (RGB, YBR, PALETTE COLOR) becomes BGR uint8/uint16 (there are no modality units),
       ``metadata["layout"] = "color"``
       (multi-frame color: (Z, H, W, 3), ``"color-volume"``).
    5. Multi-frame data become a (Z, H, W) volume, ``metadata["layout"] = "volume"``.

    Parameters
    ----------
    path : str or pathlib.Path
        A DICOM Part 10 file (with or without the 128-byte preamble).

    Returns
    -------
    MedicalImage
        ``pixels``: float32 (H, W) or (Z, H, W) in modality units (BGR for color).
        ``spacing``: (row, col) mm from PixelSpacing (or the functional groups, or
        ImagerPixelSpacing), (z, row, col) for multi-frame with z from SpacingBetweenSlices,
        evenly spaced GridFrameOffsetVector, or SliceThickness; None if unknown.
        ``window``: the first WindowCenter/WindowWidth pair, or None.
        ``metadata``: transfer syntax, SOP class, photometric, rescale, orientation... and no
        patient or study identifiers (de-identified by construction: only whitelisted fields).

    Raises
    ------
    ImageReadError
        Missing/empty/not DICOM; a DICOM without pixel data (structured report, RT plan,
        DICOMDIR...); a compressed transfer syntax no installed plugin decodes (the message names
        the transfer syntax and the packages to install); a truncated pixel data element.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> from m1vision.io import read_dicom
    >>> ct = read_dicom(get_testdata_file("CT_small.dcm", download=False))
    >>> ct.pixels.shape, ct.pixels.dtype, ct.modality
    ((128, 128), dtype('float32'), 'CT')
    >>> ct.spacing
    (0.661468, 0.661468)
    >>> "PatientName" in str(ct.metadata)
    False
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    p = _check_file(path)
    head = _read_bytes(p, 132)
    force = not (len(head) >= 132 and head[128:132] == b"DICM")
    if force and not _looks_like_preambleless_dicom(head):
        raise ImageReadError(
            p,
            "not a DICOM file: no 'DICM' marker at byte 128 and no DICOM data set at the "
            "start; use read_any for other formats.",
        )
    try:
        ds = pydicom.dcmread(p, force=force)
    except (InvalidDicomError, EOFError, ValueError, struct.error, OSError) as exc:
        raise ImageReadError(p, f"pydicom cannot parse it: {exc}") from exc
    pixel_keys = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if not any(k in ds for k in pixel_keys):
        sop = ds.get("SOPClassUID")
        what = f"a {sop.name} object" if sop else "a DICOM data set"
        raise ImageReadError(
            p,
            f"{what} without pixel data (no PixelData element); it holds no image "
            "(e.g. a structured report, RT plan/structure set, or DICOMDIR).",
        )
    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID") if fm is not None else None
    try:
        raw = ds.pixel_array
    except Exception as exc:  # pydicom raises RuntimeError/ValueError/NotImplementedError...
        text = str(exc)
        if ts is not None and ts.is_compressed:
            raise ImageReadError(
                p,
                f"its pixel data use the transfer syntax {ts.name!r} ({ts}), which no "
                f"installed decoder handles; install {_decoder_packages(ts.name)}. "
                f"pydicom says: {text}",
            ) from exc
        raise ImageReadError(p, f"its pixel data cannot be decoded: {text}") from exc

    metadata = _dicom_metadata(ds)
    modality = metadata.get("modality")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1))
    n_frames = int(_first(ds.get("NumberOfFrames")) or 1)
    metadata["frames"] = n_frames
    multi = n_frames > 1
    window = None
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        window = (center, width)

    if photometric == "PALETTE COLOR" or samples > 1:
        rgb = apply_color_lut(raw, ds) if photometric == "PALETTE COLOR" else raw
        pixels = np.ascontiguousarray(rgb[..., ::-1])  # RGB -> BGR
        metadata["layout"] = "color-volume" if multi else "color"
        if photometric.startswith("YBR"):
            metadata["converted_to"] = "BGR"
        window = None
    else:
        values = apply_modality_lut(raw, ds)
        if modality == "RTDOSE" and "DoseGridScaling" in ds:
            values = values.astype(np.float64) * float(ds.DoseGridScaling)
        pixels = np.asarray(values).astype(np.float32)
        if photometric == "MONOCHROME1":
            k = _monochrome1_constant(ds, apply_modality_lut)
            pixels = (np.float64(k) - pixels.astype(np.float64)).astype(np.float32)
            metadata["inverted"] = True
            metadata["inversion_constant"] = k
            if window is not None:
                window = (k - window[0], window[1])
        metadata["layout"] = "volume" if multi else "slice"
    spacing, facts = _dicom_spacing(ds, n_frames, multi)
    metadata.update(facts)
    if modality == "RTDOSE" and multi:
        metadata["layout"] = "volume"
    return MedicalImage(
        pixels=pixels,
        spacing=spacing,
        window=window,
        modality=modality,
        metadata=metadata,
        source=str(p),
    )


def _monochrome1_constant(ds, apply_modality_lut) -> float:
    """lut(min stored) + lut(max stored) for the inversion of MONOCHROME1 data."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    dtype = np.int32 if signed else np.uint32
    ends = np.asarray(apply_modality_lut(np.array([lo, hi], dtype=dtype), ds), dtype=np.float64)
    return float(ends.min() + ends.max())


# ---------------------------------------------------------------------------------------------
# NIfTI
# ---------------------------------------------------------------------------------------------


#: index (k, r, c) of the output -> index (i, j, k) of the canonical RAS array, per shape.
def _out_to_ras_index(shape_xyz) -> np.ndarray:
    nx, ny, _ = shape_xyz
    return np.array(
        [[0, 0, -1, nx - 1], [0, -1, 0, ny - 1], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64
    )


def read_nifti(path, *, frame: int | None = None) -> MedicalImage:
    """Read a NIfTI-1/2 volume (``.nii`` or ``.nii.gz``) as float32 (Z, H, W) in DICOM layout.

    The image is first reoriented to the closest canonical orientation
    (``nibabel.as_closest_canonical``: array axes point to patient Right, Anterior, Superior),
    then laid out like a stack of DICOM axial images:

    * ``pixels[z]`` is an axial slice, ``z`` running from inferior to superior;
    * rows run from anterior (top) to posterior, columns from the patient's right (left
      edge of the image) to the patient's left: the radiological view of a CT slice.

    That is ``pixels = data_ras.transpose(2, 1, 0)[:, ::-1, ::-1]``.
    ``metadata["affine"]`` maps the output index ``(z, row, col, 1)`` to RAS+ millimetres, and
    ``metadata["original_orientation"]`` gives the file's own axis codes (e.g. "LAS").

    Parameters
    ----------
    path : str or pathlib.Path
        A NIfTI-1 or NIfTI-2 file, gzip-compressed or not. The name need not end in .nii.
    frame : int, optional, keyword-only
        For a 4-D (time series) file, the index of the volume to read. Required for 4-D.

    Returns
    -------
    MedicalImage
        ``pixels``: float32 (Z, H, W) with the header's scaling (``scl_slope``/``scl_inter``)
        applied. ``spacing``: (z, row, col) mm from the header zooms. ``window``: from
        ``cal_min``/``cal_max`` when set, else None. ``modality``: None.

    Raises
    ------
    ImageReadError
        Not a NIfTI file, unreadable or truncated data, a 4-D file without ``frame``, ``frame``
        out of range, or more than 4 dimensions.

    Examples
    --------
    >>> import os, nibabel
    >>> from m1vision.io import read_nifti
    >>> path = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii")
    >>> vol = read_nifti(path)
    >>> vol.pixels.shape, vol.pixels.dtype, vol.spacing
    ((25, 41, 33), dtype('float32'), (2.0, 2.0, 2.0))
    >>> vol.metadata["original_orientation"]  # stored L-A-S; pixels are laid out as above
    'LAS'
    """
    import nibabel as nib

    p = _check_file(path)
    head = _read_bytes(p, 540)
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(p, "rb") as fh:
                head = fh.read(540)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImageReadError(p, f"a gzip file that cannot be decompressed: {exc}") from exc
    kind = _nifti_kind(head)
    if kind is None:
        raise ImageReadError(
            p,
            "not a NIfTI file: no NIfTI-1 (348-byte) or NIfTI-2 (540-byte) header at the "
            "start; use read_any for other formats.",
        )
    if head[344:347] == b"ni1" or head[4:7] == b"ni2":
        raise ImageReadError(
            p,
            "a NIfTI header of a .hdr/.img pair; read the pair by its .hdr with nibabel, "
            "or convert it to a single .nii file.",
        )
    try:
        name = p.name.lower()
        if name.endswith((".nii", ".nii.gz")):
            img = nib.load(p)
        else:  # content says NIfTI, the name does not: decode from bytes
            data = _read_bytes(p)
            if data.startswith(b"\x1f\x8b"):
                data = gzip.decompress(data)
            cls = nib.Nifti1Image if kind == "nifti1" else nib.Nifti2Image
            img = cls.from_bytes(data)
        ndim = len(img.shape)
        if ndim > 4:
            raise ImageReadError(
                p, f"a {ndim}-D NIfTI of shape {img.shape}; only 2-D, 3-D and 4-D are supported."
            )
        if ndim == 4 and img.shape[3] > 1 and frame is None:
            raise ImageReadError(
                p,
                f"a 4-D NIfTI of shape {img.shape} ({img.shape[3]} volumes); pass frame=k "
                "to read_nifti to read volume k.",
            )
        if ndim == 4:
            k = 0 if frame is None else frame
            if not 0 <= k < img.shape[3]:
                raise ImageReadError(
                    p,
                    f"frame={frame} is out of range; the file has {img.shape[3]} volumes "
                    f"(0..{img.shape[3] - 1}).",
                )
            img = img.slicer[..., k]
        original = "".join(nib.aff2axcodes(img.affine))
        canon = nib.as_closest_canonical(img)
        data_ras = canon.get_fdata(dtype=np.float32)
        if data_ras.ndim == 2:
            data_ras = data_ras[:, :, None]
        zooms = [float(z) for z in canon.header.get_zooms()[:3]]
        while len(zooms) < 3:
            zooms.append(1.0)
    except ImageReadError:
        raise
    except Exception as exc:  # nibabel raises many kinds for truncated / odd files
        raise ImageReadError(p, f"nibabel cannot read it: {type(exc).__name__}: {exc}") from exc

    pixels = np.ascontiguousarray(data_ras.transpose(2, 1, 0)[:, ::-1, ::-1])
    affine = canon.affine @ _out_to_ras_index(data_ras.shape)
    header = canon.header
    cal_min, cal_max = float(header["cal_min"]), float(header["cal_max"])
    window = None
    if np.isfinite(cal_min) and np.isfinite(cal_max) and cal_max > cal_min:
        window = ((cal_min + cal_max) / 2.0, cal_max - cal_min)
    xyz_units, _ = header.get_xyzt_units()
    metadata = {
        "format": kind,
        "layout": "volume",
        "orientation": "z: inferior->superior, rows: anterior->posterior, cols: right->left",
        "original_orientation": original,
        "affine": [[float(v) for v in row] for row in affine],
        "datatype": str(header.get_data_dtype()),
        "xyz_units": str(xyz_units),
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
    }
    if frame is not None:
        metadata["frame"] = int(frame)
    return MedicalImage(
        pixels=pixels,
        spacing=(zooms[2], zooms[1], zooms[0]),
        window=window,
        modality=None,
        metadata=metadata,
        source=str(p),
    )


# ---------------------------------------------------------------------------------------------
# dispatch and writing
# ---------------------------------------------------------------------------------------------


def read_any(path) -> MedicalImage:
    """Read DICOM, NIfTI(.gz), PNG, JPEG, TIFF or BMP, recognised by content, as a MedicalImage.

    The extension is ignored: a PNG named ``.dcm`` is read as PNG, a DICOM without an
    extension as DICOM (see :func:`sniff_format`). Plain images keep their dtype and channels
    (:func:`read_image` with ``mode="unchanged"``), with ``spacing``, ``window`` and
    ``modality`` None and ``metadata["format"]`` the format.

    Raises
    ------
    ImageReadError
        As :func:`read_image`, :func:`read_dicom` and :func:`read_nifti`; always naming the file.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import read_any, write_image
    >>> p = write_image(pathlib.Path(tempfile.mkdtemp()) / "x.tif", np.ones((2, 3), np.uint16))
    >>> img = read_any(p)
    >>> img.pixels.dtype, img.metadata["format"], img.spacing
    (dtype('uint16'), 'tiff', None)
    """
    fmt = sniff_format(path)
    if fmt == "dicom":
        return read_dicom(path)
    if fmt == "nifti":
        return read_nifti(path)
    pixels = _read_raster(_check_file(path), fmt, "unchanged")
    layout = "slice" if pixels.ndim == 2 else "color"
    return MedicalImage(
        pixels=pixels,
        metadata={"format": fmt, "layout": layout},
        source=str(Path(path)),
    )


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
    if not isinstance(image, np.ndarray):
        hint = " (a MedicalImage: pass image.pixels)" if isinstance(image, MedicalImage) else ""
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}{hint}.")
    p = Path(path)
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
    except FileExistsError:
        raise
    except OSError as exc:
        raise ImageWriteError(f"cannot write {str(p)!r}: {exc}") from exc
