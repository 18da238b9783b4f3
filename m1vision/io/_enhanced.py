"""Enhanced multi-frame DICOM (CT, MR, PET): frames placed by their functional groups (internal).

One file holds the volume; each frame's position, orientation, pixel spacing and rescale sit in
its PerFrameFunctionalGroupsSequence item or in the SharedFunctionalGroupsSequence. Frames
are split into stacks by the values that tell stacks apart (StackID, TemporalPositionIndex,
EffectiveEchoTime, diffusion b-value and gradient, the other dimensions of
DimensionIndexValues), then each stack goes through the same checks and layout as a series of
single-frame files (:func:`m1vision.io._stack._check_geometry`). Header work (:func:`plan`)
comes before decoding; :func:`assemble` rescales and lays out the decoded frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from m1vision.errors import (
    FrameGeometryError,
    ImageReadError,
    InvalidParameterError,
)
from m1vision.io._core import MedicalImage
from m1vision.io._dicom import _dicom_metadata, _first, _floats, _window
from m1vision.io._listing import _Slice, _vector
from m1vision.io._series_checks import _check_orientation
from m1vision.io._stack import (
    _check_geometry,
    _choose,
    _fill_gaps,
    _geometry_metadata,
    _layout_volume,
    _rescale,
)

#: DimensionIndexPointer values that order frames within a stack (not stacks apart).
_SPATIAL = {0x00209057, 0x00200032}  # InStackPositionNumber, ImagePositionPatient
#: Dimensions read from their own elements (named in the stack labels).
_NAMED = {0x00209056, 0x00209128, 0x00189082, 0x00189087, 0x00189089}
#: Orientation cosines closer than this are the same orientation.
_COS_TOL = 1e-4


@dataclass
class _Frame:
    number: int  # 1-based frame number in the file
    ipp: np.ndarray | None
    iop: np.ndarray | None
    spacing: tuple[float, float] | None
    thickness: float | None
    slope: float | None
    intercept: float | None
    window: tuple[float, float] | None
    values: dict = field(default_factory=dict)  # what may tell stacks apart


@dataclass
class _Stack:
    label: str
    frames: list[_Frame]


@dataclass
class _Plan:
    stacks: list[_Stack]
    index: int
    geometry: object  # m1vision.io._series._Geometry
    notes: list[dict]


def is_enhanced(ds) -> bool:
    """A multi-frame object whose functional groups carry plane positions or orientations."""
    if int(_first(ds.get("NumberOfFrames")) or 1) < 1:
        return False
    groups = []
    for name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups.extend(ds.get(name) or [])
    return any("PlanePositionSequence" in g or "PlaneOrientationSequence" in g for g in groups)


def _item(ds, i: int, seq: str):
    """The first item of ``seq`` for frame ``i``: per-frame first, then shared; or None."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and i < len(per_frame):
        value = per_frame[i].get(seq)
        if value:
            return value[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        value = shared[0].get(seq)
        if value:
            return value[0]
    return None


def _unit_iop(iop: np.ndarray | None) -> np.ndarray | None:
    if iop is None:
        return None
    a, b = np.linalg.norm(iop[:3]), np.linalg.norm(iop[3:])
    if a == 0 or b == 0:
        return None
    return np.concatenate([iop[:3] / a, iop[3:] / b])


def _dimension_pointers(ds) -> list[int]:
    out = []
    for item in ds.get("DimensionIndexSequence") or []:
        pointer = item.get("DimensionIndexPointer")
        out.append(int(pointer) if pointer is not None else -1)
    return out


def _frames(ds) -> list[_Frame]:
    """One :class:`_Frame` per frame, from the functional groups (header only)."""
    from pydicom.datadict import keyword_for_tag

    n = int(_first(ds.get("NumberOfFrames")) or 1)
    pointers = _dimension_pointers(ds)
    top_slope, top_inter = _first(ds.get("RescaleSlope")), _first(ds.get("RescaleIntercept"))
    out = []
    for i in range(n):
        position = _item(ds, i, "PlanePositionSequence")
        orientation = _item(ds, i, "PlaneOrientationSequence")
        measures = _item(ds, i, "PixelMeasuresSequence")
        transform = _item(ds, i, "PixelValueTransformationSequence")
        voi = _item(ds, i, "FrameVOILUTSequence")
        content = _item(ds, i, "FrameContentSequence")
        echo = _item(ds, i, "MREchoSequence")
        diffusion = _item(ds, i, "MRDiffusionSequence")
        spacing = _floats(measures.get("PixelSpacing")) if measures is not None else None
        values: dict = {}
        if content is not None:
            if content.get("StackID") not in (None, ""):
                values["stack"] = str(content.StackID).strip()
            if content.get("TemporalPositionIndex") is not None:
                values["temporal position"] = int(content.TemporalPositionIndex)
            indices = content.get("DimensionIndexValues")
            if indices is not None:
                indices = [indices] if isinstance(indices, int) else list(indices)
                for pointer, value in zip(pointers, indices, strict=False):
                    if pointer in _SPATIAL or pointer in _NAMED:
                        continue
                    name = keyword_for_tag(pointer) or f"{pointer:08X}"
                    values[f"dimension {name}"] = int(value)
        if echo is not None and _first(echo.get("EffectiveEchoTime")) is not None:
            values["echo time"] = _first(echo.get("EffectiveEchoTime"))
        if diffusion is not None:
            if _first(diffusion.get("DiffusionBValue")) is not None:
                values["b-value"] = _first(diffusion.get("DiffusionBValue"))
            gradient = diffusion.get("DiffusionGradientDirectionSequence")
            if gradient and _floats(gradient[0].get("DiffusionGradientOrientation")):
                g = _floats(gradient[0].get("DiffusionGradientOrientation"))
                values["gradient"] = tuple(round(v, 4) for v in g)
        window = _window(voi)
        out.append(
            _Frame(
                number=i + 1,
                ipp=_vector(position.get("ImagePositionPatient"), 3) if position else None,
                iop=_unit_iop(
                    _vector(orientation.get("ImageOrientationPatient"), 6) if orientation else None
                ),
                spacing=(spacing[0], spacing[1]) if spacing and len(spacing) >= 2 else None,
                thickness=_first(measures.get("SliceThickness")) if measures else None,
                slope=_first(transform.get("RescaleSlope")) if transform else top_slope,
                intercept=_first(transform.get("RescaleIntercept")) if transform else top_inter,
                window=window,
                values=values,
            )
        )
    return out


def _frame_names(frames) -> list[str]:
    return [f"frame {f.number}" for f in frames]


def _check_placed(path: Path, frames: list[_Frame]) -> None:
    """Every frame has a position and an orientation, or FrameGeometryError."""
    for what, seq, attr in (
        ("position", "PlanePositionSequence", "ipp"),
        ("orientation", "PlaneOrientationSequence", "iop"),
    ):
        missing = [f for f in frames if getattr(f, attr) is None]
        if missing:
            element = "ImagePositionPatient" if attr == "ipp" else "ImageOrientationPatient"
            raise FrameGeometryError(
                path,
                f"{len(missing)} of {len(frames)} frames have no {what} in their functional groups",
                expected=f"a {seq} ({element}) for every frame, in its "
                "PerFrameFunctionalGroupsSequence item or in the SharedFunctionalGroupsSequence",
                got=f"none for {', '.join(_frame_names(missing[:5]))}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                fix="the object was damaged by the software that wrote or edited it (a converter "
                "or an anonymizer): export it again from the scanner or archive; frames without "
                "a place cannot be put in a volume",
                files=_frame_names(missing),
            )


def _sortable(value):
    if isinstance(value, tuple):
        return (2, 0.0, "", value)
    try:
        return (0, float(value), "", ())
    except (TypeError, ValueError):
        return (1, 0.0, str(value), ())


def _format(name: str, value) -> str:
    if name == "echo time":
        return f"echo time {value:g} ms"
    if name == "b-value":
        return f"b-value {value:g}"
    if name == "gradient":
        return "gradient (" + ", ".join(f"{v:g}" for v in value) + ")"
    return f"{name} {value}"


def split_stacks(path: Path, ds) -> list[_Stack]:
    """The stacks of an Enhanced object, in a stable order (header only).

    Only values that differ between frames split them; a single stack has the label "".
    """
    frames = _frames(ds)
    _check_placed(path, frames)
    names = sorted({k for f in frames for k in f.values})
    varying = [k for k in names if len({repr(f.values.get(k)) for f in frames}) > 1]
    groups: dict[tuple, list[_Frame]] = {}
    for f in frames:
        groups.setdefault(tuple(f.values.get(k) for k in varying), []).append(f)
    keys = sorted(groups, key=lambda key: tuple(_sortable(v) for v in key))
    return [
        _Stack(
            label=", ".join(
                _format(k, v) for k, v in zip(varying, key, strict=True) if v is not None
            ),
            frames=groups[key],
        )
        for key in keys
    ]


def _orientation_key(f: _Frame):
    return tuple(np.round(f.iop / _COS_TOL).astype(np.int64))


def _stack_table(stacks: list[_Stack]) -> str:
    from m1vision.geometry import plane_name

    return "\n".join(
        f"  {i}: {s.label or '(one stack)'}: {len(s.frames)} frames, {plane_name(s.frames[0].iop)}"
        for i, s in enumerate(stacks)
    )


_STACK_WORDS = {
    "name": "stack",
    "noun": ("stack", "stacks"),
    "holder": "the Enhanced multi-frame object",
    "index_word": "a stack index",
    "label_word": "a label",
    "source": " from metadata['stacks'] or list_series",
    "fix_none": "pass stack=<index> or stack=<label> from the list to read_dicom (or "
    "series=<row> to read_series; list_series shows one row per stack)",
}


def _select(path: Path, stacks: list[_Stack], stack) -> int:
    labels = [s.label for s in stacks]
    return _choose(path, stack, labels, _stack_table(stacks), **_STACK_WORDS)


def _check_frame_count(path: Path, ds) -> None:
    """NumberOfFrames agrees with the functional groups and the native pixel data length."""
    n = int(_first(ds.get("NumberOfFrames")) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) != n:
        raise ImageReadError(
            path,
            f"NumberOfFrames is {n} but the PerFrameFunctionalGroupsSequence holds "
            f"{len(per_frame)} items (one per frame is expected); the object is damaged: "
            "export it again from the scanner or archive.",
        )
    fm = getattr(ds, "file_meta", None)
    ts = fm.get("TransferSyntaxUID") if fm is not None else None
    data = ds.get("PixelData")
    if data is None or (ts is not None and ts.is_encapsulated):
        return
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    samples = int(ds.get("SamplesPerPixel", 1))
    bits = int(ds.get("BitsAllocated", 16))
    frame_bits = rows * cols * samples * bits
    if frame_bits == 0:
        return
    expected = math.ceil(n * frame_bits / 8)
    got = len(data)
    if got < expected or got > expected + 1 + (frame_bits // 8):
        held = got * 8 / frame_bits
        raise ImageReadError(
            path,
            f"NumberOfFrames is {n} but the pixel data hold {held:.4g} frames ({got} bytes; "
            f"{n} frames of {rows} x {cols} x {bits} bits need {expected}); the file is "
            "truncated or its header is wrong: copy or export it again, or, when the pixel "
            "data are known to be complete, correct NumberOfFrames with pydicom.",
        )


def plan(path: Path, ds, *, stack=None, strict: bool = True) -> _Plan:
    """Header work before decoding: frame count, stacks, selection and the series checks."""

    if not isinstance(strict, bool):
        raise InvalidParameterError(f"strict must be True or False, got {strict!r}.")
    _check_frame_count(path, ds)
    stacks = split_stacks(path, ds)
    index = _select(path, stacks, stack)
    frames = stacks[index].frames
    orientations = {_orientation_key(f) for f in frames}
    if len(orientations) > 1 and strict:
        first = _orientation_key(frames[0])
        odd = [f for f in frames if _orientation_key(f) != first]
        raise FrameGeometryError(
            path,
            f"the frames of one stack have {len(orientations)} orientations",
            expected="one PlaneOrientationSequence (ImageOrientationPatient) for every frame "
            "of a stack, or the orientations told apart by StackID",
            got=f"{len(odd)} of {len(frames)} frames oriented otherwise than frame "
            f"{frames[0].number}",
            fix="pass strict=False to read the frames of the most common orientation (the "
            "others are listed in metadata['irregularities'])",
            files=_frame_names(odd),
        )
    import pydicom

    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    items = []
    for f in frames:
        mini = pydicom.Dataset()
        mini.InstanceNumber = f.number  # duplicates keep the first frame
        items.append(
            _Slice(
                path=path,
                name=f"frame {f.number}",
                ds=mini,
                uid="",
                iop=f.iop,
                ipp=f.ipp,
                spacing=f.spacing,
                size=(rows, cols),
                frames=1,
                frame=f,
            )
        )
    notes: list[dict] = []
    items = _check_orientation(path, items, strict, notes)
    thickness = frames[0].thickness or _first(ds.get("SpacingBetweenSlices"))
    geometry = _check_geometry(path, items, strict, notes, single_step=thickness, unit="frames")
    return _Plan(stacks=stacks, index=index, geometry=geometry, notes=notes)


def assemble(path: Path, ds, raw: np.ndarray, p: _Plan) -> MedicalImage:
    """Rescale the planned frames of the decoded ``raw`` (n, rows, cols) and lay them out."""
    from m1vision.geometry import plane_name

    geo = p.geometry
    n = int(_first(ds.get("NumberOfFrames")) or 1)
    if raw.ndim == 2 and n == 1:
        raw = raw[None]
    if raw.ndim != 3 or raw.shape[0] != n:
        raise ImageReadError(
            path,
            f"the decoded pixel data have shape {raw.shape}, expected {n} frames of "
            f"{ds.get('Rows')} x {ds.get('Columns')} (NumberOfFrames, Rows, Columns); the file "
            "is damaged or its header is wrong: export it again.",
        )
    stack = np.empty((geo.n_out, *raw.shape[1:]), dtype=np.float32)
    frames = [s.frame for s in geo.slices]
    for frame, slot in zip(frames, geo.slots, strict=True):
        dst = stack[slot]
        values = _rescale(raw[frame.number - 1], frame.slope, frame.intercept, dst)
        if values is not None:
            dst[...] = values
    _fill_gaps(stack, geo)
    pixels, affine, spacing, ras = _layout_volume(stack, geo)

    meta = _dicom_metadata(ds)
    for k in ("instance_number", "image_position_patient", "slice_location"):
        meta.pop(k, None)
    meta.update(_geometry_metadata(geo, affine, ras, p.notes))
    chosen = p.stacks[p.index]
    meta.update(
        {
            "format": "dicom",
            "frames": n,
            "frames_read": len(frames),
            "functional_groups": True,
            "sorted_by": "PlanePositionSequence along the slice normal",
            "spacing_source_z": "PlanePositionSequence",
            "stack": p.index,
            "stack_label": chosen.label,
            "stacks": [
                {
                    "label": s.label,
                    "frames": len(s.frames),
                    "orientation": plane_name(s.frames[0].iop),
                }
                for s in p.stacks
            ],
            "image_orientation_patient": [float(v) for v in geo.iop],
        }
    )
    if geo.pixel_spacing is not None:
        meta["pixel_spacing"] = [float(v) for v in geo.pixel_spacing]
    if frames[0].thickness is not None:
        meta["slice_thickness"] = frames[0].thickness
    rescales = {(f.slope, f.intercept) for f in frames}
    if len(rescales) > 1:
        meta["rescale_per_frame"] = True
        meta.pop("rescale_slope", None)
        meta.pop("rescale_intercept", None)
    else:
        slope, inter = rescales.pop()
        if slope is not None:
            meta["rescale_slope"] = slope
        if inter is not None:
            meta["rescale_intercept"] = inter
    window = frames[0].window or _window(ds)
    return MedicalImage(
        pixels=pixels,
        spacing=spacing,
        window=window,
        modality=meta.get("modality"),
        metadata=meta,
        source=str(path),
    )
