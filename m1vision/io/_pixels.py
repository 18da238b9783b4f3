"""DICOM pixel data (internal): the transfer syntaxes read, what decodes them here, the
declared size checked against the bytes, and the errors with their fixes.

Shared by :func:`~m1vision.io.read_dicom`, :func:`~m1vision.io.read_series` (one file gives
one error text either way) and the doctor's ``dicom_codecs`` check.
"""

from __future__ import annotations

import struct

#: The transfer syntaxes m1vision reads in its default install (docs/volume-inputs.md's table):
#: (UID, family, label within the family). ``python -m m1vision doctor`` checks that each one
#: decodes here.
READ_TRANSFER_SYNTAXES = (
    ("1.2.840.10008.1.2", "uncompressed", "implicit VR"),
    ("1.2.840.10008.1.2.1", "uncompressed", "explicit VR"),
    ("1.2.840.10008.1.2.2", "uncompressed", "big endian"),
    ("1.2.840.10008.1.2.1.99", "Deflated", "explicit VR"),
    ("1.2.840.10008.1.2.4.50", "JPEG", "baseline"),
    ("1.2.840.10008.1.2.4.51", "JPEG", "extended"),
    ("1.2.840.10008.1.2.4.57", "JPEG", "lossless"),
    ("1.2.840.10008.1.2.4.70", "JPEG", "lossless SV1"),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS", "lossless"),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS", "near-lossless"),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000", "lossless"),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000", "lossy"),
    ("1.2.840.10008.1.2.4.201", "HTJ2K", "lossless"),
    ("1.2.840.10008.1.2.4.202", "HTJ2K", "lossless RPCL"),
    ("1.2.840.10008.1.2.4.203", "HTJ2K", "lossy"),
    ("1.2.840.10008.1.2.5", "RLE", "lossless"),
)

#: The command that installs a decoder for a family when none is present (the packages of
#: m1vision's default install; ``make install`` restores them all).
_DECODER_INSTALL = {
    "JPEG": "python -m pip install pylibjpeg pylibjpeg-libjpeg",
    "JPEG-LS": "python -m pip install pylibjpeg pylibjpeg-libjpeg",
    "JPEG 2000": "python -m pip install pylibjpeg pylibjpeg-openjpeg",
    "HTJ2K": "python -m pip install pylibjpeg 'pylibjpeg-openjpeg>=2'",
    "RLE": "python -m pip install pylibjpeg pylibjpeg-rle",
    "Deflated": "python -m pip install --force-reinstall pydicom",
    "uncompressed": "python -m pip install --force-reinstall pydicom",
}

#: Tools that decompress a DICOM file another decoder refused (their output is Explicit VR
#: Little Endian, which every reader takes).
_DECOMPRESS_FIX = (
    "decompress it with another decoder and read the output: `gdcmconv --raw IN.dcm OUT.dcm` "
    "(GDCM) or `dcmdjpeg` / `dcmdjpls` / `dcmdrle` (DCMTK, by syntax); if they refuse it too, "
    "the file is damaged: export it again from its source (scanner, PACS)"
)


def _family(uid: str) -> str | None:
    return {u: family for u, family, _ in READ_TRANSFER_SYNTAXES}.get(str(uid))


def _ts_words(ts) -> str:
    """'JPEG-LS Lossless Image Compression (UID 1.2.840.10008.1.2.4.80)', or 'unknown (UID ...)'."""
    known = ts.is_transfer_syntax and ts.name != str(ts)
    return f"{ts.name if known else 'unknown'} (UID {ts})"


def transfer_syntax_support() -> list[dict]:
    """Which of :data:`READ_TRANSFER_SYNTAXES` this environment decodes, and with what.

    Returns one ``{"uid", "name", "family", "label", "decodes", "plugins", "fix"}`` per syntax
    (``label``: a short name within the family, e.g. "near-lossless"):
    ``plugins`` are pydicom's available decoder plugins (empty for uncompressed and deflated
    data, which pydicom reads itself), ``fix`` what to install where it does not decode.
    """
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    out = []
    for uid, family, label in READ_TRANSFER_SYNTAXES:
        ts = UID(uid)
        try:
            decoder = get_decoder(ts)
            plugins = list(decoder.available_plugins)
            decodes = bool(decoder.is_available)
        except NotImplementedError:
            plugins, decodes = [], False
        out.append(
            {
                "uid": uid,
                "name": ts.name,
                "family": family,
                "label": label,
                "decodes": decodes,
                "plugins": plugins,
                "fix": None if decodes else _DECODER_INSTALL[family],
            }
        )
    return out


def _transfer_syntax(ds):
    fm = getattr(ds, "file_meta", None)
    return fm.get("TransferSyntaxUID") if fm is not None else None


def _pixel_error(path, ds, reason: str):
    from m1vision.errors import PixelDataError

    ts = _transfer_syntax(ds)
    return PixelDataError(
        path,
        reason,
        transfer_syntax=None if ts is None else (ts.name if ts.is_transfer_syntax else "unknown"),
        transfer_syntax_uid=None if ts is None else str(ts),
    )


def _decode_error(path, ds, exc: BaseException):
    """The PixelDataError for a failed ``ds.pixel_array``: what, which syntax, and a real fix.

    read_dicom and read_series both raise this, so one file gives one text either way.
    """
    from pydicom.pixels import get_decoder

    from m1vision.errors import PixelDataError

    if isinstance(exc, PixelDataError):
        return exc
    ts = _transfer_syntax(ds)
    text = str(exc).strip().rstrip(".")
    if ts is None:
        return _pixel_error(
            path,
            ds,
            f"its pixel data cannot be decoded: the file has no TransferSyntaxUID and "
            f"pydicom says: {text}. Fix: write it again with a file meta header (e.g. "
            "`gdcmconv --raw IN.dcm OUT.dcm`).",
        )
    words = _ts_words(ts)
    if not ts.is_transfer_syntax or ts.name == str(ts):
        return _pixel_error(
            path,
            ds,
            f"its pixel data use the transfer syntax {words}, which is no transfer syntax of "
            "the DICOM standard (a private or mistyped UID), so no decoder exists for it. "
            "Expected one of the syntaxes `python -m m1vision doctor` lists as decoded. Fix: "
            "export the image again from its source (scanner, PACS, the converting tool) as "
            "Explicit VR Little Endian (UID 1.2.840.10008.1.2.1).",
        )
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        return _pixel_error(
            path,
            ds,
            f"its pixel data use the transfer syntax {words}, which pydicom has no image "
            "decoder for (a video or multi-component syntax). Fix: export the images from "
            "their source as Explicit VR Little Endian (UID 1.2.840.10008.1.2.1), or take the "
            "stream out of ds.PixelData with pydicom and decode it with a video tool such as "
            "ffmpeg.",
        )
    family = _family(ts) or "JPEG 2000"
    if not decoder.is_available:
        return _pixel_error(
            path,
            ds,
            f"its pixel data use the transfer syntax {words}, and no decoder for it is "
            f"installed here. Fix: `{_DECODER_INSTALL[family]}` (part of m1vision's default "
            "install: `make install` restores them).",
        )
    plugins = ", ".join(decoder.available_plugins) or "pydicom"
    return _pixel_error(
        path,
        ds,
        f"its {words} pixel data are damaged, truncated or not a conformant stream: every "
        f"installed decoder ({plugins}) refused it; pydicom says: {text}. Fix: {_DECOMPRESS_FIX}.",
    )


def _parse_reason(path, exc: BaseException) -> str:
    """Why pydicom cannot parse a DICOM file, with its transfer syntax where the file meta
    header still reads, and the fix."""
    from pydicom.filereader import read_file_meta_info

    words = ""
    try:
        ts = read_file_meta_info(path).get("TransferSyntaxUID")
        if ts is not None:
            words = f" (transfer syntax {_ts_words(ts)})"
    except Exception:  # the meta header is damaged too: say what pydicom said
        pass
    return (
        f"pydicom cannot parse it{words}: {str(exc).strip().rstrip('.')}. Fix: copy the file "
        "again from its source; if the copy is whole, export it again from the scanner or PACS."
    )


def _cut_image_reason(ds) -> str | None:
    """For an image object (an '... Image Storage' SOP class with its image size elements)
    parsed without pixel data: why (pydicom stops quietly where a file is cut off); None for
    other objects, and for header-only stubs without Rows (as DICOMDIR test sets hold)."""
    if "Rows" not in ds:
        return None
    sop = ds.get("SOPClassUID")
    fm = getattr(ds, "file_meta", None)
    if sop is None and fm is not None:
        sop = fm.get("MediaStorageSOPClassUID")
    name = getattr(sop, "name", "")
    if "Image Storage" not in name:
        return None
    return (
        f"a {name} object without pixel data (no PixelData element): an image object holds "
        "one, so the file is cut off or damaged. Fix: copy the file again from its source; "
        "if the copy is whole, export it again from the scanner or PACS."
    )


def _j2k_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) from a JPEG 2000 codestream's SIZ marker, or None."""
    i = frame.find(b"\xff\x4f\xff\x51", 0, 4096)
    if i < 0 or len(frame) < i + 24:
        return None
    xsiz, ysiz, x0, y0 = struct.unpack(">IIII", frame[i + 8 : i + 24])
    return ysiz - y0, xsiz - x0


def _size_problem(ds) -> str | None:
    """Why the declared image size (Rows x Columns x frames x samples x bits) cannot be the
    pixel data's, checked on the bytes before anything is decoded or allocated; None if fine.

    Uncompressed: the pixel data must hold the declared bytes. Compressed: every frame needs
    a fragment of its own, and a JPEG / JPEG-LS / JPEG 2000 stream states its own size.
    """
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        frames = 1
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.get("BitsAllocated") or 0)
    declared = f"Rows {rows} x Columns {cols} x {frames} frame(s) x {samples} sample(s)"
    if rows <= 0 or cols <= 0 or frames <= 0 or samples <= 0 or bits <= 0:
        return f"an empty image size ({declared}, BitsAllocated {bits})"
    if "PixelData" not in ds:
        return None  # float pixel data: pydicom checks them
    data = ds.PixelData
    ts = _transfer_syntax(ds)
    if ts is not None and not ts.is_transfer_syntax:
        return None  # an unknown syntax: the decoder's error says so
    if ts is None or not ts.is_compressed:
        per_pixel = samples * bits
        if str(ds.get("PhotometricInterpretation", "")).upper() == "YBR_FULL_422":
            per_pixel = 2 * bits  # two chroma samples shared by two pixels (PS3.3 C.7.6.3.1.2)
        need = (rows * cols * frames * per_pixel + 7) // 8
        if len(data) < need:
            return (
                f"the header declares {declared} of {bits} bits = {need:,} bytes, but the pixel "
                f"data hold {len(data):,} bytes: the file is cut off or its image size elements "
                "(0028,xxxx) are wrong"
            )
        return None
    from pydicom.encaps import generate_fragments, generate_frames

    family = _family(ts)
    try:
        fragments = sum(1 for _ in generate_fragments(data)) - 1  # less the offset table
        if frames > max(fragments, 1):
            return (
                f"the header declares {declared}, but the encapsulated pixel data hold "
                f"{fragments} fragment(s), so at most {fragments} frame(s): the file is cut "
                "off or NumberOfFrames (0028,0008) is wrong"
            )
        streams = list(generate_frames(data, number_of_frames=frames))
    except Exception:  # the encapsulation itself is broken: the decoder says how
        return None
    if not streams:
        return None
    first = streams[0]
    if family in ("JPEG", "JPEG-LS", "JPEG 2000", "HTJ2K"):
        # every JPEG, JPEG-LS and JPEG 2000 stream ends with FF D9 (EOI / EOC); decoders
        # return a cut stream's partial image without an error, so the end is checked here
        for k, stream in enumerate(streams):
            if not stream.rstrip(b"\x00\xff").endswith(b"\xff\xd9"):  # less padding
                return (
                    f"the compressed stream of frame {k} ({len(stream):,} bytes) stops before "
                    "its end marker (FF D9): the file is cut off"
                )
    if family in ("JPEG 2000", "HTJ2K"):
        size = _j2k_size(first)
    else:
        from pydicom.pixels.utils import _get_jpg_parameters

        params = _get_jpg_parameters(first) if family in ("JPEG", "JPEG-LS") else {}
        size = (params["height"], params["width"]) if "height" in params else None
    # only a stream smaller than declared is refused here (the allocation would be wasted);
    # a stream that claims more is left to its decoder, which reads what it really holds
    if size is not None and size[0] * size[1] < rows * cols:
        return (
            f"the header declares {declared}, but the first frame's compressed stream is "
            f"{size[0]} x {size[1]} pixels: the image size elements (0028,0010 Rows, 0028,0011 "
            "Columns) are wrong"
        )
    return None


def _check_size(path, ds) -> None:
    """Raise PixelDataError if the declared image size disagrees with the pixel data."""
    problem = _size_problem(ds)
    if problem:
        ts = _transfer_syntax(ds)
        raise _pixel_error(
            path,
            ds,
            f"{problem} (transfer syntax {_ts_words(ts) if ts else 'not given'}). Fix: copy "
            "the file again from its source; if the copy is whole, export it again from the "
            "scanner or PACS.",
        )
