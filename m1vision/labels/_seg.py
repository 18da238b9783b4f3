"""DICOM SEG label maps (internal): write with highdicom against a source series, read back.

Writing: one BINARY segment per label value, frames in the order of the source's slices, the
empty frames left out (as dcmqi and 3D Slicer write: a 100-organ CT would otherwise hold
100 x 300 frames), segment labels from the names, colours as CIELab, the label value kept as
the segment's TrackingID (``"m1vision label <value>"``) so values that are not 1..N come back
as they were. Read alone, a SEG gives the slices that hold labels (at their true positions);
read with ``like=`` its source, it is placed in the source's grid.

De-identification: highdicom copies the patient and study modules of the source. The SEG keeps
what referencing the source needs (StudyInstanceUID, the referenced series and instance UIDs,
FrameOfReferenceUID) and empties every patient and study identifier it copied (PatientName,
PatientID, PatientBirthDate, PatientSex, AccessionNumber, StudyID, StudyDate, StudyTime,
ReferringPhysicianName), and drops others (OtherPatientIDs...).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from m1vision import geometry
from m1vision.errors import (
    GridMismatchError,
    ImageReadError,
    ImageWriteError,
    InvalidTypeError,
    LabelValueError,
    SegOverlapError,
    SegReferenceError,
)
from m1vision.io import MedicalImage

#: SegmentNumber is an unsigned 16-bit value: at most this many labels fit one SEG.
MAX_SEGMENTS = 65535

_TRACKING = re.compile(r"^m1vision label (\d+)$")
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS <-> RAS (its own inverse)

# Emptied (type 2: kept, empty) and dropped (type 3) patient/study identifiers.
_EMPTIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
_DROPPED = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAge",
    "PatientWeight",
    "PatientSize",
    "PatientAddress",
    "PatientComments",
    "PatientBirthTime",
    "IssuerOfPatientID",
    "EthnicGroup",
    "StudyDescription",
    "PhysiciansOfRecord",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
)


def _source_datasets(source, path: Path, action: str = "write"):
    """The source series as a list of pydicom datasets (headers), or SegReferenceError."""
    import pydicom

    if source is None:
        raise SegReferenceError(
            f"cannot write {str(path)!r}: a DICOM SEG must reference the image series it "
            "segments, and no source= was given. Fix: pass source= the series folder (or "
            "its pydicom datasets), e.g. write_labels(path, labels, source='ct_series/')."
        )
    items = source
    origin = "source="
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        folder = Path(source)
        origin = f"source={str(folder)!r}"
        if not folder.is_dir():
            raise SegReferenceError(
                f"cannot {action} {str(path)!r}: {origin} is not a folder; pass the folder of the "
                "series' DICOM files or a list of their pydicom datasets."
            )
        items = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    datasets = []
    for item in items:
        if isinstance(item, pydicom.Dataset):
            datasets.append(item)
            continue
        try:
            ds = pydicom.dcmread(item, stop_before_pixels=True)
        except Exception:  # not DICOM: other files in the folder
            continue
        if "ImagePositionPatient" in ds:
            datasets.append(ds)
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if not datasets:
        raise SegReferenceError(
            f"cannot {action} {str(path)!r}: {origin} holds no DICOM image slices (files with "
            "ImagePositionPatient). Fix: pass the folder of the image series the labels "
            "belong to."
        )
    if len(series) != 1 or "" in series:
        raise SegReferenceError(
            f"cannot {action} {str(path)!r}: {origin} holds {len(series)} series "
            f"({', '.join(sorted(series))}); a SEG references one. Fix: pass one series' "
            "folder or datasets (m1vision.io.list_series shows what a folder holds)."
        )
    if any(int(ds.get("NumberOfFrames") or 1) > 1 for ds in datasets):
        raise SegReferenceError(
            f"cannot {action} {str(path)!r}: {origin} is a multi-frame image; write_labels "
            "references series of single-slice files. Fix: pass such a series."
        )
    return datasets


def _frame_geometry(ds):
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    return ipp, iop[:3], iop[3:], dr, dc


def _frames_from_labels(pixels, affine, datasets, path: Path):
    """The label frames (n, rows, cols) in the order of ``datasets``, read off the map's grid."""
    inv = np.linalg.inv(np.asarray(affine, float))
    frames = np.empty(
        (len(datasets), int(datasets[0].Rows), int(datasets[0].Columns)), pixels.dtype
    )
    shape = np.array(pixels.shape)
    for f, ds in enumerate(datasets):
        ipp, x, y, dr, dc = _frame_geometry(ds)
        rows, cols = int(ds.Rows), int(ds.Columns)
        if (rows, cols) != frames.shape[1:]:
            raise SegReferenceError(
                f"cannot write {str(path)!r}: the source's slices differ in size "
                f"({frames.shape[1:]} and {(rows, cols)}); pass one consistent series."
            )
        to_vox = inv @ _LPS  # LPS point -> (z, row, col) of the map
        v0 = (to_vox @ [*ipp, 1.0])[:3]
        dv_c = to_vox[:3, :3] @ (x * dc)  # one source column step
        dv_r = to_vox[:3, :3] @ (y * dr)  # one source row step
        r, c = np.mgrid[0:rows, 0:cols]
        corner_idx = np.array([[0, 0], [rows - 1, 0], [0, cols - 1], [rows - 1, cols - 1]])
        corner_vox = v0 + corner_idx[:, :1] * dv_r + corner_idx[:, 1:] * dv_c
        steps_ok = all(
            np.allclose(np.abs(d), np.round(np.abs(d)), atol=1e-3)
            and np.count_nonzero(np.round(d)) == 1
            for d in (dv_r, dv_c)
        )
        inside = (np.round(corner_vox) >= 0).all() and (np.round(corner_vox) < shape).all()
        if not steps_ok or not inside or not np.allclose(v0, np.round(v0), atol=1e-2):
            raise GridMismatchError(
                f"cannot write {str(path)!r}: the labels are not on the grid of the source "
                f"series (its slice {f} at {np.round(ipp, 3).tolist()} mm LPS falls at voxel "
                f"{np.round(v0, 3).tolist()} of the labels, shape {tuple(pixels.shape)}). Fix: "
                "bring them onto the series' grid with m1vision.volume.resample(labels, "
                'like=m1vision.io.read_series(source), interpolation="nearest").'
            )
        vz, vr, vc = (np.rint(v0[i] + r * dv_r[i] + c * dv_c[i]).astype(np.intp) for i in range(3))
        frames[f] = pixels[vz, vr, vc]
    return frames


def _deidentify(ds) -> None:
    for keyword in _EMPTIED:
        setattr(ds, keyword, "")
    for keyword in _DROPPED:
        if keyword in ds:
            delattr(ds, keyword)


def _deidentified_headers(datasets):
    """Header copies of the source slices (no pixel data), patient and study identifiers emptied.

    highdicom copies the patient and study modules from its source images, so it is given
    these: nothing identifying reaches the SEG, whatever highdicom copies.
    """
    import copy

    import pydicom

    out = []
    for ds in datasets:
        new = pydicom.Dataset()
        for elem in ds:
            if elem.tag != 0x7FE00010:  # PixelData
                new.add(copy.deepcopy(elem))
        if hasattr(ds, "file_meta"):
            new.file_meta = copy.deepcopy(ds.file_meta)
        _deidentify(new)
        out.append(new)
    return out


def write_seg(path: Path, labels: MedicalImage, source, *, overwrite: bool) -> Path:
    """Write ``labels`` (checked, 3-D) as a DICOM SEG referencing ``source``."""
    import highdicom as hd

    from m1vision import __version__
    from m1vision._atomic import atomic_path

    datasets = _source_datasets(source, path)
    info = labels.metadata["labels"]
    values = sorted(info)
    if len(values) > MAX_SEGMENTS:
        raise LabelValueError(
            f"cannot write {str(path)!r}: the labels hold {len(values)} values and a DICOM SEG "
            f"holds at most {MAX_SEGMENTS} segments. Fix: merge or renumber labels, or write "
            "NIfTI (.nii.gz)."
        )
    if not values:
        raise LabelValueError(
            f"cannot write {str(path)!r}: the label map holds no label (all 0); a DICOM SEG "
            "needs at least one segment. Fix: check the labels, or write NIfTI (.nii.gz)."
        )
    affine = labels.metadata.get("affine")
    if labels.ndim == 2 and len(datasets) == 1:
        frames = labels.pixels[None]
        if frames.shape[1:] != (int(datasets[0].Rows), int(datasets[0].Columns)):
            raise GridMismatchError(
                f"cannot write {str(path)!r}: the mask has shape {labels.shape}, the source "
                f"image {(int(datasets[0].Rows), int(datasets[0].Columns))}. Fix: resize the "
                "mask to the image (nearest neighbour)."
            )
    else:
        if labels.ndim != 3 or affine is None:
            raise GridMismatchError(
                f"cannot write {str(path)!r}: a SEG of a series needs a (Z, H, W) label map with "
                f"metadata['affine'], got shape {labels.shape}. Fix: build it with "
                "m1vision.labels.label_map(pixels, like=m1vision.io.read_series(source))."
            )
        frames = _frames_from_labels(labels.pixels, affine, datasets, path)
    index = {v: i + 1 for i, v in enumerate(values)}  # label value -> segment number 1..N
    # segment numbers 1..N (0 stays 0): the values' ranks, without a table as large as the
    # largest value
    seg_frames = np.searchsorted(np.asarray(values), frames).astype(np.uint16) + 1
    seg_frames[frames == 0] = 0
    tissue = hd.sr.CodedConcept("85756007", "SCT", "Tissue")
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=index[v],
            segment_label=info[v]["name"][:64],
            segmented_property_category=tissue,
            segmented_property_type=tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            tracking_id=f"m1vision label {v}",
            tracking_uid=hd.UID(),
            display_color=hd.color.CIELabColor.from_rgb(*info[v]["color"]),
        )
        for v in values
    ]
    try:
        seg = hd.seg.Segmentation(
            source_images=_deidentified_headers(datasets),
            pixel_array=seg_frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=300,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="m1vision",
            manufacturer_model_name="m1vision.labels",
            software_versions=str(__version__),
            device_serial_number="0",
            series_description="m1vision labels",
            omit_empty_frames=True,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise SegReferenceError(
            f"cannot write {str(path)!r}: highdicom refused the source series: "
            f"{type(exc).__name__}: {str(exc).rstrip('.')}. Fix: pass the image series the "
            "labels were made on (single-slice images with FrameOfReferenceUID, positions and "
            "orientations)."
        ) from exc
    if "ContentCreatorName" not in seg:
        seg.ContentCreatorName = ""  # type 2: present, empty (no person named)
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            seg.save_as(tmp, enforce_file_format=True)
    except (FileExistsError, ImageWriteError):
        raise  # already says the file and the fix
    except OSError as exc:
        raise ImageWriteError(f"cannot write {str(path)!r}: {exc}") from exc
    return path


def _series_uid_of(like):
    """(SeriesInstanceUID, image) of a series folder given as like=, else (None, like)."""
    import pydicom

    if isinstance(like, str) or hasattr(like, "__fspath__"):
        from m1vision.io import read_series

        folder = Path(like)
        datasets = _source_datasets(folder, folder, "read the SEG against")
        return str(datasets[0].SeriesInstanceUID), read_series(folder)
    if isinstance(like, list | tuple) and like and isinstance(like[0], pydicom.Dataset):
        raise InvalidTypeError(
            "like= takes a MedicalImage or a series folder; for datasets, pass their folder."
        )
    return None, like


def read_seg(path: Path, *, like=None, overlap: str = "error"):
    """Read a DICOM SEG as a label map in the package layout (or layers with overlap="split")."""
    import highdicom as hd

    from m1vision.labels._core import check_grid, label_map, read_expression

    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise ImageReadError(
            path, f"highdicom cannot read it as a DICOM SEG: {type(exc).__name__}: {exc}"
        ) from exc
    series_uid, like = _series_uid_of(like)
    if series_uid is not None:
        referenced = {
            str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])
        }
        if series_uid not in referenced:
            raise SegReferenceError(
                f"{str(path)!r} segments the series {sorted(referenced)}, not the series given "
                f"as like= ({series_uid}). Fix: pass the series the SEG was made on (its "
                "ReferencedSeriesSequence), or read the SEG without like=."
            )
    seg_type = seg.segmentation_type.value
    numbers = [int(n) for n in seg.segment_numbers]
    values, info = {}, {}
    for n in numbers:
        desc = seg.get_segment_description(n)
        match = _TRACKING.match(str(desc.get("TrackingID", "")))
        values[n] = int(match.group(1)) if match else n
        color = desc.get("RecommendedDisplayCIELabValue")
        rgb = None
        if color is not None:
            rgb = [int(c) for c in hd.color.CIELabColor.from_dicom_value(color).to_rgb()]
        info[values[n]] = {"name": str(desc.SegmentLabel), **({"color": rgb} if rgb else {})}
    if len(set(values.values())) != len(values):
        values = {n: n for n in numbers}
        info = {n: {"name": str(seg.get_segment_description(n).SegmentLabel)} for n in numbers}
    try:
        geometry_vol = None
        out = None
        layers: list[np.ndarray] = []
        if seg_type == "LABELMAP":
            vol = seg.get_volume(combine_segments=True, skip_overlap_checks=True)
            arr = np.asarray(vol.array)
            out = np.zeros(arr.shape, np.uint32)
            for n in numbers:
                out[arr == n] = values[n]
            geometry_vol = vol
            layers = [out]
        else:
            for n in numbers:
                vol = seg.get_volume(segment_numbers=[n], combine_segments=False)
                mask = np.asarray(vol.array)[..., 0] if vol.array.ndim == 4 else vol.array
                mask = mask >= 0.5 if seg_type == "FRACTIONAL" else mask > 0
                if geometry_vol is None:
                    geometry_vol = vol
                    layers = [np.zeros(mask.shape, np.uint32)]
                for k, layer in enumerate(layers):
                    clash = np.count_nonzero(layer[mask])
                    if not clash:
                        layer[mask] = values[n]
                        break
                    if overlap == "error":
                        others = sorted({int(v) for v in np.unique(layer[mask]) if v})
                        raise SegOverlapError(
                            f"{str(path)!r}: segment {n} ({info[values[n]]['name']!r}) "
                            f"overlaps label(s) {others} in {clash} voxels; one label map "
                            "holds one label per voxel. Fix: read_labels(path, "
                            "overlap='split') gives a list of label maps whose segments do "
                            "not overlap."
                        )
                    if k == len(layers) - 1:
                        layers.append(np.zeros(mask.shape, np.uint32))
    except (SegOverlapError, SegReferenceError):
        raise
    except Exception as exc:
        raise ImageReadError(
            path,
            f"its frames do not make one regular volume ({type(exc).__name__}: {exc}); "
            "m1vision reads SEGs of regularly spaced slices.",
        ) from exc
    aff_ras = _LPS @ np.asarray(geometry_vol.affine, float)
    results = []
    for layer in layers:
        px, aff, _ = geometry.to_layout(layer, aff_ras)
        spacing = tuple(float(v) for v in np.linalg.norm(aff[:3, :3], axis=0))
        present = {int(v) for v in np.unique(px) if v}
        lm = label_map(
            px, spacing=spacing, affine=aff, labels={v: e for v, e in info.items() if v in present}
        )
        if like is not None:
            lm = _onto(lm, like, path)
            check_grid(
                lm, like, name=str(path), image_name="like", expression=read_expression(path)
            )
        meta = {**lm.metadata, "format": "dicom-seg", "seg_type": seg_type}
        results.append(MedicalImage(lm.pixels, lm.spacing, None, "SEG", meta, str(path)))
    if overlap == "split":
        return results
    return results[0]


def _onto(lm: MedicalImage, like, path: Path) -> MedicalImage:
    """``lm`` placed into like's grid when it covers part of it (frames omitted); else as is."""
    from m1vision.labels._core import grid_of, label_map

    shape, _, affine = grid_of(like, "like")
    if affine is None or len(shape) != 3:
        return lm
    rel = np.linalg.inv(affine) @ np.asarray(lm.metadata["affine"], float)
    offset = rel[:3, 3]
    if not (
        np.allclose(rel[:3, :3], np.eye(3), atol=1e-3)
        and np.allclose(offset, np.round(offset), atol=1e-2)
    ):
        return lm  # not a part of like's grid: check_grid reports it
    off = np.round(offset).astype(int)
    end = off + np.array(lm.shape)
    if (off < 0).any() or (end > np.array(shape)).any():
        return lm
    if tuple(shape) == lm.shape and not off.any():
        px = lm.pixels
    else:
        px = np.zeros(shape, lm.pixels.dtype)
        px[off[0] : end[0], off[1] : end[1], off[2] : end[2]] = lm.pixels
    return label_map(px, like=like, labels=lm.metadata["labels"])
