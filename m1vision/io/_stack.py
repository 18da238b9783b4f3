"""Steps shared by a series of files and the frames of an Enhanced object (internal).

Choosing a row (:func:`_choose`), the geometry checks (consistency, sorting along the normal,
duplicates, gaps, uneven steps, gantry tilt: :func:`_check_geometry`), the rescale into float32
modality units (:func:`_rescale`) and the layout (:func:`_layout_volume`). The items are
:class:`~m1vision.io._listing._Slice` rows: one per file of a series (:mod:`._series`), one per
frame of an Enhanced multi-frame object (:mod:`._enhanced`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from m1vision.errors import (
    DuplicatePositionError,
    GantryTiltError,
    InvalidParameterError,
    MissingSlicesError,
    SeriesGeometryError,
    SeriesSelectionError,
    UnevenSpacingError,
)
from m1vision.geometry import axcodes, dicom_affine, plane_name, slice_normal, to_layout
from m1vision.io._dicom import _first
from m1vision.io._listing import _Slice

#: Relative tolerance on the steps between slices (and absolute floor, mm).
_STEP_RTOL, _STEP_ATOL = 0.01, 0.01
#: Orientation cosines / pixel spacings that differ by less than this are the same.
_COS_TOL, _SPACING_RTOL = 1e-4, 1e-4
#: A stack whose step leaves the slice normal by more than this (degrees) is tilted.
_TILT_TOL_DEG = 0.05
#: The fixes the errors suggest, for the files of a series and the frames of one object.
_FIXES = {
    "files": {
        "odd": "these files are not one volume: remove the odd ones, or pass strict=False to "
        "load the largest consistent set (the others are listed in metadata)",
        "duplicates": "this is several volumes in one series (echoes, b-values, acquisitions): "
        "move each into its own folder, or pass strict=False to keep the first slice (by "
        "InstanceNumber) at each position",
        "missing": "find the missing files (an incomplete export or copy), or pass strict=False "
        "to insert empty slices (filled with the minimum) where they are missing",
    },
    "frames": {
        "odd": "these frames are not one volume: pass strict=False to read the largest "
        "consistent set (the others are listed in metadata)",
        "duplicates": "the object holds several volumes its functional groups do not tell apart "
        "(no StackID, temporal, echo or diffusion values): pass strict=False to keep the first "
        "frame at each position, or export the volumes apart",
        "missing": "the object lacks frames (an incomplete export): export it again, or pass "
        "strict=False to insert empty slices (filled with the minimum) where frames are missing",
    },
}
#: How the layout reads, recorded in metadata.
_LAYOUT = "z: inferior->superior, rows: anterior->posterior, cols: right->left"


def _choose(where, choice, labels, table, *, name, noun, holder, index_word, label_word,
            source, fix_none) -> int:  # fmt: skip
    """The index of the row ``choice`` names: ``None`` (when there is one row), a row index or
    a label (exact, else case-insensitive); a SeriesSelectionError listing ``table`` otherwise.

    Shared by series of a folder and stacks of an Enhanced object (``noun``: singular, plural).
    """
    one, many = noun
    n = len(labels)
    if choice is None:
        if n == 1:
            return 0
        raise SeriesSelectionError(
            where,
            f"{holder} holds {n} {many}",
            expected=f"one {one}, or {name}= naming one",
            got=f"{n} {many}:\n{table}\n",
            fix=fix_none,
        )
    if isinstance(choice, bool) or not isinstance(choice, (int, str)):
        raise InvalidParameterError(
            f"{name} must be {index_word} (int) or {label_word} (str){source}, got "
            f"{type(choice).__name__}."
        )
    if isinstance(choice, int):
        if not 0 <= choice < n:
            raise SeriesSelectionError(
                where,
                f"{name}={choice} is out of range",
                expected=f"{index_word} 0..{n - 1}",
                got=f"{choice}; the {many} are:\n{table}\n",
                fix="pass one of the indices listed",
            )
        return choice
    hits = [i for i, label in enumerate(labels) if label == choice.strip()]
    if not hits:
        hits = [i for i, label in enumerate(labels) if label.lower() == choice.strip().lower()]
    if len(hits) != 1:
        raise SeriesSelectionError(
            where,
            f"{name}={choice!r} matches {len(hits)} {many}",
            expected=f"{label_word} that names exactly one {one}",
            got=f"{len(hits)} matches among:\n{table}\n",
            fix=f"pass the {index_word[2:]} instead ({name}=<int>)",
        )
    return hits[0]


def _geometry_key(s: _Slice):
    iop = None if s.iop is None else tuple(np.round(s.iop / _COS_TOL).astype(np.int64))
    sp = None if s.spacing is None else tuple(round(v, 4) for v in s.spacing)
    return (iop, sp, s.size)


def _describe_key(key) -> str:
    iop, sp, size = key
    iop_s = "none" if iop is None else "[" + ", ".join(f"{v * _COS_TOL:.4g}" for v in iop) + "]"
    return f"orientation {iop_s}, pixel spacing {sp}, size {size[0]}x{size[1]}"


def _check_consistent(folder, slices, strict, notes, unit="files"):
    keys = [_geometry_key(s) for s in slices]
    counts = Counter(keys)
    if len(counts) > 1:
        main = counts.most_common(1)[0][0]
        odd = [s for s, k in zip(slices, keys, strict=True) if k != main]
        kinds = []
        for k in counts:
            if k == main:
                continue
            for i, what in enumerate(("orientation", "pixel spacing", "size")):
                if k[i] != main[i] and what not in kinds:
                    kinds.append(what)
        got = "; ".join(f"{n} file(s) with {_describe_key(k)}" for k, n in counts.most_common())
        if strict:
            raise SeriesGeometryError(
                folder,
                f"the slices differ in {' and '.join(kinds)}",
                expected=f"every slice with the {_describe_key(main)}",
                got=got,
                fix=_FIXES[unit]["odd"],
                files=[s.name for s in odd],
            )
        notes.append(
            {
                "kind": "inconsistent geometry",
                "differs_in": kinds,
                "dropped_files": [s.name for s in odd],
                "kept": _describe_key(main),
            }
        )
        slices = [s for s, k in zip(slices, keys, strict=True) if k == main]
    missing = [s.name for s in slices if s.iop is None or s.ipp is None]
    if missing:
        raise SeriesGeometryError(
            folder,
            "slices without ImagePositionPatient / ImageOrientationPatient",
            expected="both elements in every slice, to place and sort the slices",
            got=f"{len(missing)} of {len(slices)} file(s) without them",
            fix="such images (secondary captures, projections) are no volume; read the files "
            "one by one with read_dicom",
            files=missing,
        )
    return slices


def _dedupe(folder, slices, step, strict, notes, unit="files"):
    """Drop (strict=False) or refuse (strict=True) slices sharing a position."""
    tol = max(1e-3, 0.01 * step) if step > 0 else 1e-3
    groups: list[list[_Slice]] = [[slices[0]]]
    for s in slices[1:]:
        if abs(s.position - groups[-1][0].position) <= tol:
            groups[-1].append(s)
        else:
            groups.append([s])
    dups = [g for g in groups if len(g) > 1]
    if not dups:
        return slices
    first = dups[0]
    tags = []
    for tag in (
        "EchoNumbers",
        "AcquisitionNumber",
        "TemporalPositionIdentifier",
        "DiffusionBValue",
    ):
        values = {str(s.ds.get(tag)) for s in first if s.ds.get(tag) is not None}
        if len(values) > 1:
            tags.append(f"{tag} {sorted(values)}")
    why = f" (they differ in {', '.join(tags)})" if tags else ""
    if strict:
        raise DuplicatePositionError(
            folder,
            f"{sum(len(g) for g in dups)} slices share {len(dups)} position(s){why}",
            expected="one slice per position",
            got=f"{len(first)} slices at {first[0].position:.3f} mm along the normal, first",
            fix=_FIXES[unit]["duplicates"],
            files=[s.name for g in dups for s in g],
        )

    def order(s):
        n = _first(s.ds.get("InstanceNumber"))
        return (n if n is not None else math.inf, s.name)

    kept = [min(g, key=order) for g in groups]
    notes.append(
        {
            "kind": "duplicate positions",
            "dropped_files": sorted({s.name for g in dups for s in g} - {s.name for s in kept}),
            "detail": f"kept the first slice by InstanceNumber at each of {len(dups)} positions"
            + why,
        }
    )
    return kept


def _typical_step(positions: np.ndarray) -> float:
    steps = np.diff(positions)
    steps = steps[steps > 1e-3]
    return float(np.median(steps)) if steps.size else 0.0


@dataclass
class _Geometry:
    """The sorted, checked stack: what steps 3-4 of :func:`read_series` decide."""

    slices: list  # the kept items, sorted along the normal
    slots: list[int]  # output slot of each kept item (gaps leave slots empty)
    n_out: int
    positions: np.ndarray  # along the normal, mm, of the kept items
    step: np.ndarray  # displacement between output slots, LPS mm
    z_spacing: float
    tilt: float  # degrees
    iop: np.ndarray
    pixel_spacing: tuple[float, float] | None


def _check_steps(where, slices, positions, step, strict, notes, unit="files"):
    """Gaps (missing slices) and uneven steps: (slices, positions, slots, n_out)."""
    slots = list(range(len(slices)))
    n_out = len(slices)
    steps = np.diff(positions)
    tol = max(_STEP_ATOL, _STEP_RTOL * step)
    ratio = steps / step
    gap_at = [
        i
        for i, r in enumerate(ratio)
        if r > 1.5 and abs(steps[i] - round(r) * step) <= tol * round(r)
    ]
    if gap_at:
        miss = [round(ratio[i]) - 1 for i in gap_at]
        pairs = [
            f"{slices[i].name} at {positions[i]:.2f} mm -> {slices[i + 1].name} at "
            f"{positions[i + 1]:.2f} mm ({m} missing)"
            for i, m in zip(gap_at, miss, strict=True)
        ]
        if strict:
            raise MissingSlicesError(
                where,
                f"{sum(miss)} slice(s) missing in {len(gap_at)} gap(s)",
                expected=f"a step of {step:.4g} mm between neighbouring slices",
                got="; ".join(pairs[:5]),
                fix=_FIXES[unit]["missing"],
                files=[slices[i].name for i in gap_at],
            )
        if sum(miss) <= len(slices):
            shift = np.zeros(len(slices), dtype=np.int64)
            for i, m in zip(gap_at, miss, strict=True):
                shift[i + 1 :] += m
            slots = [i + int(shift[i]) for i in range(len(slices))]
            n_out = len(slices) + sum(miss)
            inserted = sorted(set(range(n_out)) - set(slots))
            notes.append(
                {"kind": "missing slices", "detail": "; ".join(pairs), "inserted_slices": inserted}
            )
        else:  # a huge gap: keep the longest gap-free run
            bounds = [-1, *gap_at, len(slices) - 1]
            runs = [(bounds[k] + 1, bounds[k + 1]) for k in range(len(bounds) - 1)]
            a, b = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
            dropped = [s.name for i, s in enumerate(slices) if not a <= i <= b]
            notes.append(
                {
                    "kind": "missing slices",
                    "detail": "; ".join(pairs)
                    + "; the gaps exceed the slices present: kept the longest gap-free run",
                    "dropped_files": dropped,
                }
            )
            slices = slices[a : b + 1]
            positions = positions[a : b + 1]
            slots = list(range(len(slices)))
            n_out = len(slices)
        steps = np.diff(positions)
        gaps = set(gap_at) if n_out != len(slices) else set()
        steps = np.array([s for i, s in enumerate(steps) if i not in gaps])
    if steps.size and np.abs(steps - step).max() > tol:
        worst = int(np.argmax(np.abs(steps - step)))
        detail = (
            f"steps from {steps.min():.4g} to {steps.max():.4g} mm (typical {step:.4g} mm, "
            f"tolerance {tol:.3g} mm)"
        )
        if strict:
            raise UnevenSpacingError(
                where,
                "the slices are unevenly spaced",
                expected=f"every step {step:.4g} mm within {tol:.3g} mm",
                got=detail,
                fix="resample the series to even spacing with another tool, or pass "
                "strict=False to load it with the mean step (positions recorded in "
                "metadata['slice_positions'])",
                files=[slices[worst].name, slices[worst + 1].name],
            )
        notes.append(
            {"kind": "uneven spacing", "detail": detail + "; the affine uses the mean step"}
        )
    return slices, positions, slots, n_out


def _check_geometry(
    where, slices, strict, notes, *, single_step=None, unit: str = "files"
) -> _Geometry:
    """Steps 3-4: consistency, sorting along the normal, duplicates, gaps, even steps, tilt.

    Shared by series of files and the frames of an Enhanced multi-frame object: ``slices``
    are :class:`_Slice` items (a frame is one with ``name`` "frame N"); ``where`` names the
    folder or file in the errors and ``unit`` ("files" or "frames") picks the fixes they suggest;
    ``single_step`` is the slice thickness of a one-slice stack.
    """
    slices = _check_consistent(where, slices, strict, notes, unit)
    iop = slices[0].iop
    normal = slice_normal(iop)
    for s in slices:
        s.position = float(s.ipp @ normal)
    slices.sort(key=lambda s: (s.position, s.name))
    if len(slices) > 1:
        slices = _dedupe(
            where,
            slices,
            _typical_step(np.array([s.position for s in slices])),
            strict,
            notes,
            unit,
        )
    positions = np.array([s.position for s in slices])
    step = _typical_step(positions)
    slots, n_out = list(range(len(slices))), len(slices)
    if len(slices) > 1:
        slices, positions, slots, n_out = _check_steps(
            where, slices, positions, step, strict, notes, unit
        )
    # the slice step vector: first to last position over the output slots
    if n_out > 1:
        v = (slices[-1].ipp - slices[0].ipp) / (slots[-1] - slots[0])
    else:
        v = normal * (single_step or 1.0)
    z_spacing = round(float(abs(v @ normal)), 6)
    tilt = math.degrees(math.acos(min(1.0, z_spacing / float(np.linalg.norm(v)))))
    if n_out > 1 and tilt > _TILT_TOL_DEG:
        if strict:
            raise GantryTiltError(
                where,
                f"the stack is tilted by {tilt:.2f} degrees (gantry tilt)",
                expected="each slice displaced along its normal",
                got=f"a step of {np.linalg.norm(v):.4g} mm at {tilt:.2f} degrees to the normal",
                fix="pass strict=False to load it with the tilt as a shear in the affine "
                "(metadata['gantry_tilt_deg']), or resample it to an untilted grid",
                files=[slices[0].name, slices[-1].name],
            )
        notes.append({"kind": "gantry tilt", "detail": f"{tilt:.3f} degrees, kept as a shear"})
    return _Geometry(
        slices=slices,
        slots=slots,
        n_out=n_out,
        positions=positions,
        step=v,
        z_spacing=z_spacing,
        tilt=tilt,
        iop=iop,
        pixel_spacing=slices[0].spacing,
    )


def _exact_in_float32(raw: np.ndarray, slope: float, inter: float) -> bool:
    """Every value raw * slope + inter an integer below 2**24: float32 arithmetic is exact."""
    return (
        raw.dtype.kind in "iu"
        and raw.dtype.itemsize <= 2
        and float(slope).is_integer()
        and float(inter).is_integer()
        and abs(slope) * 65536 + abs(inter) < 2**24
    )


def _rescale(raw: np.ndarray, slope, inter, dst: np.ndarray):
    """``raw * slope + inter`` in modality units: written into the float32 ``dst`` when float32
    arithmetic is exact (returns None), else returned as float64 for the caller to store."""
    slope = 1.0 if slope is None else float(slope)
    inter = float(inter or 0.0)
    if _exact_in_float32(raw, slope, inter):  # no float64 pass
        np.multiply(raw, np.float32(slope), out=dst, dtype=np.float32)
        dst += np.float32(inter)
        return None
    return raw * np.float64(slope) + np.float64(inter)


def _fill_gaps(stack: np.ndarray, geo: _Geometry) -> None:
    """Slots no slice fills (inserted for missing slices) get the volume's minimum."""
    if geo.n_out != len(geo.slices):
        fill = float(min(stack[k].min() for k in geo.slots))
        for k in sorted(set(range(geo.n_out)) - set(geo.slots)):
            stack[k] = fill


def _layout_volume(stack: np.ndarray, geo: _Geometry):
    """Step 6: (pixels, affine, spacing, stored affine) in read_nifti's layout."""
    first = geo.slices[0]
    d_row, d_col = geo.pixel_spacing if geo.pixel_spacing else (1.0, 1.0)
    ras = dicom_affine(geo.iop, first.ipp - geo.step * geo.slots[0], (d_row, d_col), geo.step)
    pixels, affine, perm = to_layout(stack, ras)
    stored_spacing = (geo.z_spacing, d_row, d_col)
    spacing = tuple(float(stored_spacing[i]) for i in perm)
    return pixels, affine, spacing, ras


def _geometry_metadata(geo: _Geometry, affine, ras, notes) -> dict:
    """The facts of steps 3-6 every stacked volume records."""
    meta = {
        "layout": "volume",
        "orientation": _LAYOUT,
        "series_orientation": plane_name(geo.iop),
        "original_orientation": "".join(axcodes(ras[:, [2, 1, 0, 3]])),
        "affine": [[float(x) for x in row] for row in affine],
        "sorted_by": "ImagePositionPatient along the slice normal",
        "spacing_source_z": "ImagePositionPatient",
        "irregularities": notes,
    }
    if geo.pixel_spacing is None:
        meta["pixel_spacing_missing"] = True
    if geo.tilt > _TILT_TOL_DEG:
        meta["gantry_tilt_deg"] = round(geo.tilt, 4)
    if any(n["kind"] in ("uneven spacing", "missing slices") for n in notes):
        meta["slice_positions"] = [float(x) for x in geo.positions]
    return meta
