"""Single DICOM files (internal)."""

from __future__ import annotations

import contextlib
import struct

import numpy as np

from m1vision.errors import ImageReadError
from m1vision.io._core import MedicalImage, _check_file, _read_bytes
from m1vision.io._sniff import DICOM_HEAD, dicom_kind

#: The transfer syntaxes m1vision reads in its default install (README's support table):
#: (UID, family). ``python -m m1vision doctor`` checks that each one decodes here.
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

#: What to install when no decoder for a family is present: packages that decode it (the
#: first is m1vision's default; ``make install`` restores them all).
_DECODER_PACKAGES = {
    "JPEG": "pylibjpeg and pylibjpeg-libjpeg",
    "JPEG-LS": "pylibjpeg and pylibjpeg-libjpeg (or pyjpegls)",
    "JPEG 2000": "pylibjpeg and pylibjpeg-openjpeg",
    "HTJ2K": "pylibjpeg and pylibjpeg-openjpeg (2.0 or later)",
    "RLE": "pylibjpeg and pylibjpeg-rle (pydicom's own NumPy decoder also reads it)",
    "Deflated": "pydicom (its own zlib decoder)",
    "uncompressed": "pydicom",
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
                "fix": None if decodes else f"pip install {_DECODER_PACKAGES[family]}",
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
            f"installed here. Fix: `python -m pip install {_DECODER_PACKAGES[family]}` (part "
            "of m1vision's default install: `make install` restores them).",
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
    frames = int(_first(ds.get("NumberOfFrames")) or 1)
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

    1. The declared image size (Rows x Columns x frames x samples x bits) is checked against the
       pixel data (uncompressed: their length; compressed: one fragment per frame, each stream
       whole and of the declared size) before anything is allocated. Pixels are then decoded
       by pydicom with the default install's plugins: every syntax of
       :data:`READ_TRANSFER_SYNTAXES` (uncompressed, Deflated, JPEG baseline / extended /
       lossless / lossless SV1, JPEG-LS lossless and near-lossless, JPEG 2000, HTJ2K, RLE).
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
        DICOMDIR...); an image object cut off before its pixel data.
    PixelDataError
        (an ImageReadError) Pixel data that cannot be decoded or disagree with the declared
        size: a cut or damaged stream, an unknown transfer syntax, a missing decoder. The
        message names the file, the transfer syntax by name and UID, and the fix.

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
    kind = dicom_kind(_read_bytes(p, DICOM_HEAD))
    force = kind is None
    if kind is False:
        raise ImageReadError(
            p,
            "not a DICOM file: no 'DICM' marker at byte 128 and no DICOM data set at the "
            "start; use read_any for other formats.",
        )
    try:
        ds = pydicom.dcmread(p, force=force)
    except (InvalidDicomError, EOFError, ValueError, struct.error, OSError) as exc:
        raise ImageReadError(p, _parse_reason(p, exc)) from exc
    pixel_keys = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
    if not any(k in ds for k in pixel_keys):
        sop = ds.get("SOPClassUID")
        cut = _cut_image_reason(ds)
        what = f"a {sop.name} object" if sop else "a DICOM data set"
        raise ImageReadError(
            p,
            cut
            or f"{what} without pixel data (no PixelData element); it holds no image "
            "(e.g. a structured report, RT plan/structure set, or DICOMDIR).",
        )
    _check_size(p, ds)
    try:
        raw = ds.pixel_array
    except Exception as exc:  # pydicom raises RuntimeError/ValueError/NotImplementedError...
        raise _decode_error(p, ds, exc) from exc

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
