"""Single DICOM files (internal)."""

from __future__ import annotations

import contextlib
import struct

import numpy as np

from m1vision.errors import ImageReadError
from m1vision.io._core import MedicalImage, _check_file, _read_bytes
from m1vision.io._pixels import (
    _check_size,
    _cut_image_reason,
    _decode_error,
    _parse_reason,
)
from m1vision.io._sniff import DICOM_HEAD, dicom_kind


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


def _window(ds) -> tuple[float, float] | None:
    """The first WindowCenter/WindowWidth pair of a data set (or a functional group item)."""
    if ds is None:
        return None
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        return (center, width)
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


def read_dicom(path, *, stack: int | str | None = None, strict: bool = True) -> MedicalImage:
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
    5. Multi-frame data become a (Z, H, W) volume, ``metadata["layout"] = "volume"``; legacy
       multi-frame (NumberOfFrames with SpacingBetweenSlices or GridFrameOffsetVector, RT dose)
       keep the file's frame order. Before decoding, NumberOfFrames is checked against the
       pixel data length and the functional groups.
    6. **Enhanced multi-frame** CT, MR and PET (frames placed by PlanePositionSequence and
       PlaneOrientationSequence in the Shared/PerFrame functional groups) are read as
       :func:`read_series` reads a folder of slices: frames sorted along the slice normal
       (never by frame number), the same checks (duplicates, gaps, uneven steps, tilt; strict
       or lenient), each frame's PixelValueTransformationSequence rescale (HU for CT), laid
       out like :func:`read_nifti` with ``metadata["affine"]``. An object holding several
       stacks (StackID, TemporalPositionIndex, echo times, b-values, other dimensions of
       DimensionIndexValues) is never flattened: ``stack`` picks one
       (``metadata["stacks"]`` lists them, as do :func:`list_series` rows).

    Parameters
    ----------
    path : str or pathlib.Path
        A DICOM Part 10 file (with or without the 128-byte preamble).
    stack : int or str, optional, keyword-only
        For an Enhanced object with several stacks: its index or label (e.g.
        ``"echo time 20 ms"``); required when there are several.
    strict : bool, keyword-only
        For Enhanced objects, as :func:`read_series`: raise on any irregularity (default) or
        read what is consistent and record it in ``metadata["irregularities"]``.

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
        DICOMDIR...); an image object cut off before its pixel data; NumberOfFrames
        disagreeing with the per-frame functional groups.
    PixelDataError
        (an ImageReadError) Pixel data that cannot be decoded or disagree with the declared
        size: a cut or damaged stream, an unknown transfer syntax, a missing decoder. The
        message names the file, the transfer syntax by name and UID, and the fix.
    SeriesSelectionError
        An Enhanced object with several stacks and no (or no matching) ``stack``.
    FrameGeometryError
        Frames without a position or orientation; several orientations in one stack (strict).
    MissingSlicesError, UnevenSpacingError, DuplicatePositionError, GantryTiltError
        As :func:`read_series`, for the frames of an Enhanced object (strict).

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
    enhanced = _multiframe_plan(p, ds, stack, strict)
    try:
        raw = ds.pixel_array
    except Exception as exc:  # pydicom raises RuntimeError/ValueError/NotImplementedError...
        raise _decode_error(p, ds, exc) from exc

    if enhanced is not None:
        from m1vision.io._enhanced import assemble

        return assemble(p, ds, raw, enhanced)
    metadata = _dicom_metadata(ds)
    modality = metadata.get("modality")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1))
    n_frames = int(_first(ds.get("NumberOfFrames")) or 1)
    metadata["frames"] = n_frames
    multi = n_frames > 1
    window = _window(ds)

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


def _multiframe_plan(p, ds, stack, strict):
    """The header-only plan of an Enhanced multi-frame object (None for other objects).

    Checks a multi-frame object's frame count against its pixel data before decoding.
    """
    from m1vision.errors import InvalidParameterError
    from m1vision.io import _enhanced

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric.startswith("MONOCHROME") and _enhanced.is_enhanced(ds):
        return _enhanced.plan(p, ds, stack=stack, strict=strict)
    if stack is not None:
        raise InvalidParameterError(
            f"stack={stack!r} picks a stack of an Enhanced multi-frame object, but {str(p)!r} "
            "is none (no plane positions in functional groups); leave stack out."
        )
    if not isinstance(strict, bool):
        raise InvalidParameterError(f"strict must be True or False, got {strict!r}.")
    if int(_first(ds.get("NumberOfFrames")) or 1) > 1:
        _enhanced._check_frame_count(p, ds)
    return None


def _monochrome1_constant(ds, apply_modality_lut) -> float:
    """lut(min stored) + lut(max stored) for the inversion of MONOCHROME1 data."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    dtype = np.int32 if signed else np.uint32
    ends = np.asarray(apply_modality_lut(np.array([lo, hi], dtype=dtype), ds), dtype=np.float64)
    return float(ends.min() + ends.max())
