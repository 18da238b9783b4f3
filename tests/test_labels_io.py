"""m1vision.labels: label maps, the phantom's organs, NIfTI and DICOM SEG in and out.

Independent readers the files are checked with: nibabel (NIfTI voxels and world positions),
pydicom and highdicom (SEG attributes and segments), dcmqi's ``segimage2itkimage`` (ITK/DCMTK:
our SEG converted back to NIfTI, compared voxel by voxel in world coordinates).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from m1vision.errors import (
    GridMismatchError,
    InvalidParameterError,
    InvalidTypeError,
    LabelSidecarError,
    LabelValueError,
    OutputExistsError,
    SegOverlapError,
    SegReferenceError,
)
from m1vision.io import MedicalImage, read_series
from m1vision.labels import (
    DEFAULT_PALETTE,
    check_labels,
    default_color,
    grids_match,
    label_map,
    read_labels,
    sidecar_path,
    write_labels,
)
from m1vision.synthetic import PHANTOM_LABELS, ct_phantom, ct_phantom_labels, write_ct_series

SHAPE = (12, 40, 48)
SPACING = (2.5, 0.8, 0.7)
SEGIMAGE2ITK = Path(sys.executable).parent / "segimage2itkimage"


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels_series")
    return {
        v: write_ct_series(root / v, variant=v, shape=SHAPE, spacing=SPACING)
        for v in ("regular", "sagittal", "oblique")
    }


@pytest.fixture(scope="module")
def phantom_labels():
    return ct_phantom_labels(SHAPE, spacing=SPACING)


def _world(affine, voxels) -> np.ndarray:
    a = np.asarray(affine, float)
    return np.asarray(voxels, float) @ a[:3, :3].T + a[:3, 3]


# ------------------------------------------------------------------------ the phantom's organs


@pytest.fixture(scope="module")
def organs():
    """The phantom's labels and HU at one seed: ``(label pixels, HU)``."""
    shape = (24, 64, 64)
    return ct_phantom_labels(shape, seed=3), ct_phantom(shape, seed=3)


#: each organ's HU in the phantom
ORGAN_HU = {1: -850, 2: -850, 3: 60, 4: 80, 5: 150, 6: 700}


@pytest.mark.parametrize(
    ("value", "organ_hu"), ORGAN_HU.items(), ids=[PHANTOM_LABELS[v]["name"] for v in ORGAN_HU]
)
def test_each_phantom_label_covers_its_organs_values(organs, value, organ_hu):
    labels, hu = organs
    inside = hu[labels.pixels == value]
    assert inside.size > 20
    # noise SD 8 HU: every labelled voxel within 6 SD of its organ's value
    assert np.abs(inside - organ_hu).max() <= 48
    assert abs(inside.mean() - organ_hu) < 3


def test_phantom_labels_are_the_phantoms_organs(organs):
    labels, hu = organs
    assert labels.pixels.dtype == np.uint8
    assert sorted(labels.metadata["labels"]) == sorted(ORGAN_HU)
    # nothing of an organ is left unlabelled: bone and lung values occur only under labels
    assert (hu[labels.pixels == 0] < 600).all()
    assert (hu[(labels.pixels == 0) & (hu > -990)] > -700).all()
    # the patient's right lung is on the image's left (columns run right to left)
    cols = np.nonzero(labels.pixels == 1)[2].mean(), np.nonzero(labels.pixels == 2)[2].mean()
    assert cols[0] < cols[1]


def test_phantom_labels_are_deterministic_and_on_the_series_grid(series, phantom_labels):
    again = ct_phantom_labels(SHAPE, seed=7, spacing=SPACING)
    assert_array_equal(again.pixels, phantom_labels.pixels)
    image = read_series(series["regular"].folder)
    assert grids_match(phantom_labels, image)
    assert_allclose(phantom_labels.metadata["affine"], series["regular"].affine, atol=1e-9)


# ------------------------------------------------------------------------ conventions, checks


def test_label_map_fills_names_and_the_default_palette():
    lm = label_map(np.array([[[0, 3], [25, 3]]]), labels={3: {"name": "liver"}})
    assert lm.metadata["labels"] == {
        3: {"name": "liver", "color": default_color(3)},
        25: {"name": "label 25", "color": list(DEFAULT_PALETTE[24 % len(DEFAULT_PALETTE)])},
    }
    assert lm.pixels.dtype == np.uint8


def _map_of(kind: str) -> np.ndarray:
    rng = np.random.default_rng(3)
    if kind == "noisy-uint8":
        return rng.integers(0, 200, (5, 30, 700)).astype(np.uint8)
    if kind == "blocks-uint16":  # runs longer than a chunk of the scan
        px = np.zeros((3, 1500, 1000), np.uint16)
        px[:, 200:1400, 100:900] = 4000
        px[1, 700, 3], px[0, 0, 0] = 65535, 9  # 9: only the very first voxel
        return px
    if kind == "sparse-uint32":
        px = np.zeros((4, 50, 60), np.uint32)
        px[0, 0, 0], px[3, 49, 59], px[2, 10:20, 5] = 7, 2**31 + 5, 70000
        return px
    if kind == "strided-uint8":
        return rng.integers(0, 3, (4, 20, 30)).astype(np.uint8)[:, ::3, ::2]
    return np.zeros((2, 3, 4), np.uint8)  # "background-only"


@pytest.mark.parametrize(
    "kind", ["noisy-uint8", "blocks-uint16", "sparse-uint32", "strided-uint8", "background-only"]
)
def test_label_values_are_numpy_unique_less_the_background(kind):
    from m1vision.labels._core import label_values

    px = _map_of(kind)
    want = np.unique(px)
    assert_array_equal(label_values(px), want[want > 0])


@pytest.mark.parametrize(
    ("pixels", "phrase"),
    [
        (np.array([[0.0, 1.5]]), "non-integer"),
        (np.array([[0.0, np.nan]]), "non-integer"),
        (np.array([[0, -2]]), "negative"),
        (np.array([["a", "b"]]), "dtype"),
    ],
    ids=["fraction", "nan", "negative", "strings"],
)
def test_bad_label_values_are_refused(pixels, phrase):
    with pytest.raises(LabelValueError, match=phrase):
        check_labels(pixels)


def test_grid_mismatch_shows_both_grids_and_the_fix(phantom_labels):
    other = MedicalImage(
        np.zeros(SHAPE, np.float32),
        spacing=(3.0, 0.8, 0.7),
        metadata={
            "layout": "volume",
            "affine": np.diag([-0.7, -0.8, 3.0, 1.0])[[2, 1, 0, 3]].tolist(),
        },
    )
    with pytest.raises(GridMismatchError) as info:
        check_labels(phantom_labels, like=other)
    msg = str(info.value)
    assert 'resample(labels, like=like, interpolation="nearest")' in msg
    assert "2.5x0.8x0.7" in msg and "3x0.8x0.7" in msg
    assert info.value.first["shape"] == list(SHAPE)


def test_grids_within_the_tolerance_match(phantom_labels):
    a = np.asarray(phantom_labels.metadata["affine"])
    near, far = a.copy(), a.copy()
    near[:3, 3] += 0.004
    far[:3, 3] += 0.05
    as_image = lambda aff: MedicalImage(  # noqa: E731
        np.zeros(SHAPE, np.float32), spacing=SPACING, metadata={"affine": aff.tolist()}
    )
    assert grids_match(phantom_labels, as_image(near))
    assert not grids_match(phantom_labels, as_image(far))


# ------------------------------------------------------------------------ NIfTI


@pytest.mark.parametrize("dtype", ["uint8", "uint16"], ids=["uint8", "uint16"])
def test_nifti_round_trip_is_exact_and_nibabel_agrees(tmp_path, phantom_labels, dtype):
    pixels = phantom_labels.pixels.astype(dtype)
    marked = (3, 7, 41)
    pixels[marked] = 300 if dtype == "uint16" else 200
    names = {**phantom_labels.metadata["labels"], int(pixels[marked]): {"name": "marker"}}
    lm = label_map(pixels, like=phantom_labels, labels=names)
    path = write_labels(tmp_path / "organs.nii.gz", lm)
    back = read_labels(path)
    assert back.pixels.dtype == np.dtype(dtype)
    assert_array_equal(back.pixels, pixels)
    assert_allclose(back.metadata["affine"], phantom_labels.metadata["affine"], atol=1e-5)
    assert back.spacing == SPACING
    assert back.metadata["labels"] == lm.metadata["labels"]
    # nibabel, on its own: the file's integer dtype and the marked voxel's world position
    img = nib.load(path)
    assert img.get_data_dtype() == np.dtype(dtype)
    data = np.asanyarray(img.dataobj)
    ijk = np.argwhere(data == pixels[marked])
    assert ijk.shape == (1, 3)
    assert_allclose(
        nib.affines.apply_affine(img.affine, ijk[0]),
        _world(phantom_labels.metadata["affine"], [marked])[0],
        atol=1e-4,
    )
    side = json.loads(sidecar_path(path).read_text())
    assert side["schema"] == "m1vision.labels" and side["version"] == 1
    assert side["labels"]["3"] == {"name": "liver", "color": [177, 122, 101]}


def test_whole_number_float_nifti_reads_as_integers(tmp_path):
    data = np.zeros((4, 5, 6), np.float32)
    data[1, 2, 3] = 7.0
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "f.nii.gz")
    lm = read_labels(tmp_path / "f.nii.gz")
    assert lm.pixels.dtype == np.uint8 and lm.metadata["labels"][7]["name"] == "label 7"


@pytest.mark.parametrize(
    ("value", "phrase"), [(0.5, "non-integer"), (-3.0, "negative")], ids=["fraction", "negative"]
)
def test_nifti_with_bad_values_names_the_file(tmp_path, value, phrase):
    data = np.zeros((4, 5, 6), np.float32)
    data[1, 2, 3] = value
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(LabelValueError, match=phrase) as info:
        read_labels(path)
    assert "bad.nii.gz" in str(info.value)


def test_sidecar_naming_absent_labels_is_refused(tmp_path, phantom_labels):
    path = write_labels(tmp_path / "organs.nii.gz", phantom_labels)
    side = sidecar_path(path)
    data = json.loads(side.read_text())
    data["labels"]["42"] = {"name": "kidney", "color": [1, 2, 3]}
    side.write_text(json.dumps(data))
    with pytest.raises(LabelSidecarError, match=r"\[42\]") as info:
        read_labels(path)
    assert "organs.json" in str(info.value)


def test_itksnap_and_slicer_tables_give_names_and_colours(tmp_path):
    lm = label_map(np.array([[[0, 1, 2], [2, 2, 0]]], np.uint8))
    nib_path = tmp_path / "a.nii.gz"
    from m1vision.io import write_nifti

    write_nifti(nib_path, lm)
    (tmp_path / "a.label").write_text(
        "################################################\n"
        "# ITK-SnAP Label Description File\n"
        "################################################\n"
        '    0     0    0    0        0  0  0    "Clear Label"\n'
        '    1   255    0    0        1  1  1    "Left kidney"\n'
        '    2     0  255    0        1  1  1    "Spleen"\n'
        '    3     0    0  255        1  1  1    "Unused label"\n'
    )
    got = read_labels(nib_path).metadata["labels"]
    assert got == {
        1: {"name": "Left kidney", "color": [255, 0, 0]},
        2: {"name": "Spleen", "color": [0, 255, 0]},
    }
    (tmp_path / "a.label").unlink()
    (tmp_path / "a.ctbl").write_text(
        "# Color table file\n1 kidney 10 20 30 255\n2 spleen 4 5 6 255\n"
    )
    assert read_labels(nib_path).metadata["labels"][2] == {"name": "spleen", "color": [4, 5, 6]}


def test_nothing_is_written_when_a_target_exists(tmp_path, phantom_labels):
    sidecar_path(tmp_path / "x.nii.gz").write_text("{}")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_labels(tmp_path / "x.nii.gz", phantom_labels)
    assert not (tmp_path / "x.nii.gz").exists()
    write_labels(tmp_path / "x.nii.gz", phantom_labels, overwrite=True)
    assert read_labels(tmp_path / "x.nii.gz").metadata["labels"][6]["name"] == "spine"


def test_read_with_like_checks_the_grid(tmp_path, phantom_labels):
    path = write_labels(tmp_path / "x.nii.gz", phantom_labels)
    wrong = ct_phantom_labels(SHAPE, spacing=(2.0, 0.8, 0.7))
    with pytest.raises(GridMismatchError, match=r"x\.nii\.gz"):
        read_labels(path, like=wrong)
    with pytest.raises(GridMismatchError, match="resample"):
        write_labels(tmp_path / "y.nii.gz", phantom_labels, like=wrong)
    assert not (tmp_path / "y.nii.gz").exists()


@pytest.mark.parametrize("suffix", [".nii.gz", ".dcm"], ids=["nifti", "seg"])
def test_the_fix_of_a_grid_mismatch_on_reading_runs_as_written(
    tmp_path, series, phantom_labels, suffix
):
    import m1vision
    from m1vision.labels._core import grids_match

    source = series["regular"].folder if suffix == ".dcm" else None
    path = write_labels(tmp_path / f"x{suffix}", phantom_labels, source=source)
    like = ct_phantom_labels((6, 20, 24), spacing=(4.0, 1.6, 1.6))
    with pytest.raises(GridMismatchError) as info:
        read_labels(path, like=like)
    fix = str(info.value).split("Fix: bring the labels onto the image's grid with ")[1]
    assert repr(str(path)) in fix
    moved = eval(fix.rstrip("."), {"m1vision": m1vision, "like": like})  # as pasted
    read_labels(path)  # the file itself is fine
    assert moved.pixels.shape == like.pixels.shape
    assert grids_match(moved, like)


# ------------------------------------------------------------------------ DICOM SEG


def _on_series(series, variant, phantom_labels):
    image = read_series(series[variant].folder)
    return image, label_map(
        phantom_labels.pixels, like=image, labels=phantom_labels.metadata["labels"]
    )


@pytest.mark.parametrize("variant", ["regular", "sagittal", "oblique"])
def test_seg_round_trip_is_exact_and_deidentified(tmp_path, series, phantom_labels, variant):
    image, lm = _on_series(series, variant, phantom_labels)
    path = write_labels(tmp_path / "organs.dcm", lm, source=series[variant].folder)
    back = read_labels(path, like=series[variant].folder)
    assert_array_equal(back.pixels, lm.pixels)
    assert_allclose(back.metadata["affine"], image.metadata["affine"], atol=1e-9)
    assert back.metadata["labels"] == lm.metadata["labels"]
    # the SEG alone (empty frames left out): the slices holding labels, at the same places
    alone = read_labels(path)
    for value in lm.metadata["labels"]:
        ours = _world(lm.metadata["affine"], np.argwhere(lm.pixels == value))
        theirs = _world(alone.metadata["affine"], np.argwhere(alone.pixels == value))
        assert_allclose(theirs, ours, atol=1e-3)  # argwhere order: both in the layout's order
    assert len(pydicom.dcmread(path).PerFrameFunctionalGroupsSequence) < 12 * len(
        lm.metadata["labels"]
    )
    # pydicom: what the file says and does not say
    ds = pydicom.dcmread(path)
    src = pydicom.dcmread(series[variant].files[0], stop_before_pixels=True)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    raw = path.read_bytes()
    for identifier in (b"GEN-0001", b"Phantom^Generated", b"20260101"):
        assert identifier not in raw
    assert str(ds.PatientName) == "" and ds.PatientID == ""
    # highdicom: segments and their colours
    seg = hd.seg.segread(path)
    labels = {int(n): seg.get_segment_description(n).SegmentLabel for n in seg.segment_numbers}
    assert sorted(labels.values()) == sorted(e["name"] for e in lm.metadata["labels"].values())
    desc = seg.get_segment_description(3)
    rgb = hd.color.CIELabColor.from_dicom_value(desc.RecommendedDisplayCIELabValue).to_rgb()
    assert [int(c) for c in rgb] == PHANTOM_LABELS[3]["color"]


@pytest.mark.parametrize("variant", ["regular", "oblique"])
def test_dcmqi_reads_our_seg_at_the_same_world_positions(tmp_path, series, phantom_labels, variant):
    assert SEGIMAGE2ITK.is_file(), "dcmqi (segimage2itkimage) is in the test extra"
    _, lm = _on_series(series, variant, phantom_labels)
    path = write_labels(tmp_path / "organs.dcm", lm, source=series[variant].folder)
    out = tmp_path / "dcmqi"
    out.mkdir()
    subprocess.run(
        [
            str(SEGIMAGE2ITK),
            "--inputDICOM",
            str(path),
            "--outputDirectory",
            str(out),
            "-t",
            "nifti",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    meta = json.loads((out / "meta.json").read_text())
    segments = [s for group in meta["segmentAttributes"] for s in group]
    assert len(segments) == len(lm.metadata["labels"])
    ours_world = {}
    for value in lm.metadata["labels"]:
        ours_world[value] = _world(lm.metadata["affine"], np.argwhere(lm.pixels == value))
    for s in segments:
        value = int(s["TrackingIdentifier"].rsplit(" ", 1)[1])
        img = nib.load(out / f"{s['labelID']}.nii.gz")
        ijk = np.argwhere(np.asanyarray(img.dataobj) > 0)
        theirs = nib.affines.apply_affine(img.affine, ijk)
        ours = ours_world[value]
        assert theirs.shape == ours.shape, s["SegmentLabel"]
        order = lambda w: w[np.lexsort(np.round(w, 2).T)]  # noqa: E731
        assert_allclose(order(theirs), order(ours), atol=1e-3)


def test_seg_needs_a_source(tmp_path, phantom_labels):
    with pytest.raises(SegReferenceError, match="source="):
        write_labels(tmp_path / "x.dcm", phantom_labels)
    assert not (tmp_path / "x.dcm").exists()


def test_seg_off_the_source_grid_is_refused(tmp_path, series):
    shifted = ct_phantom_labels(SHAPE, spacing=(2.0, 0.8, 0.7))
    with pytest.raises(GridMismatchError, match="resample"):
        write_labels(tmp_path / "x.dcm", shifted, source=series["regular"].folder)
    assert not (tmp_path / "x.dcm").exists()


def test_seg_of_another_series_is_refused(tmp_path, series, phantom_labels):
    _, lm = _on_series(series, "regular", phantom_labels)
    path = write_labels(tmp_path / "x.dcm", lm, source=series["regular"].folder)
    with pytest.raises(SegReferenceError, match="ReferencedSeriesSequence"):
        read_labels(path, like=series["sagittal"].folder)


def test_more_labels_than_a_seg_holds(tmp_path, series):
    pixels = np.arange(1, 65537, dtype=np.uint32).reshape(1, 256, 256)
    with pytest.raises(LabelValueError, match="65535"):
        write_labels(tmp_path / "x.dcm", pixels, source=series["regular"].folder)
    assert not (tmp_path / "x.dcm").exists()


def _highdicom_seg(series, path, masks, seg_type, **kwargs):
    """A SEG written by highdicom directly (as another tool would): masks (n, Z, H, W)."""
    files = sorted(series["regular"].files)
    sources = [pydicom.dcmread(f) for f in files]
    for ds in sources:  # type 2 attributes highdicom copies; the generator leaves them out
        for keyword in (
            "PatientBirthDate",
            "PatientSex",
            "StudyTime",
            "ReferringPhysicianName",
            "AccessionNumber",
            "StudyID",
        ):
            setattr(ds, keyword, "")
    tissue = hd.sr.CodedConcept("85756007", "SCT", "Tissue")
    descs = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=f"part {i + 1}",
            segmented_property_category=tissue,
            segmented_property_type=tissue,
            algorithm_type="MANUAL",
        )
        for i in range(masks.shape[0])
    ]
    # layout (z, row, col) with z up is the order of the regular series' files
    arr = np.moveaxis(masks, 0, -1)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=arr,
        segmentation_type=seg_type,
        segment_descriptions=descs,
        series_instance_uid=hd.UID(),
        series_number=5,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
        **kwargs,
    )
    seg.save_as(path)
    return path


def test_overlapping_segments_are_refused_or_split(tmp_path, series):
    masks = np.zeros((2, *SHAPE), bool)
    masks[0, 2:6, 5:20, 5:20] = True
    masks[1, 4:8, 15:30, 15:30] = True
    path = _highdicom_seg(series, tmp_path / "o.dcm", masks, "BINARY")
    with pytest.raises(SegOverlapError, match="overlap='split'") as info:
        read_labels(path)
    assert "o.dcm" in str(info.value)
    # highdicom left the empty frames out: the SEG alone covers slices 2-7; like= places it
    assert read_labels(path, overlap="split")[0].shape == (6, *SHAPE[1:])
    layers = read_labels(path, overlap="split", like=series["regular"].folder)
    assert len(layers) == 2
    assert_array_equal(layers[0].pixels == 1, masks[0])
    assert_array_equal(layers[1].pixels == 2, masks[1])


def test_fractional_and_labelmap_segs_are_read(tmp_path, series):
    frac = np.zeros((1, *SHAPE), np.float32)
    frac[0, 3:7, 10:20, 10:30] = 0.8
    frac[0, 3:7, 20:25, 10:30] = 0.3  # below the 0.5 threshold
    path = _highdicom_seg(
        series, tmp_path / "f.dcm", frac, "FRACTIONAL", fractional_type="PROBABILITY"
    )
    lm = read_labels(path, like=series["regular"].folder)
    assert_array_equal(lm.pixels == 1, frac[0] >= 0.5)
    masks = np.zeros((2, *SHAPE), bool)
    masks[0, 1:4, 2:9, 3:9] = True
    masks[1, 6:9, 20:30, 20:30] = True
    path = _highdicom_seg(series, tmp_path / "l.dcm", masks, "LABELMAP")
    lm = read_labels(path, like=read_series(series["regular"].folder))
    assert lm.metadata["seg_type"] == "LABELMAP"
    assert_array_equal(lm.pixels, masks[0] * 1 + masks[1] * 2)
    assert lm.metadata["labels"][2]["name"] == "part 2"


def test_dcmqi_is_installed_with_the_tests():
    assert shutil.which("segimage2itkimage") or SEGIMAGE2ITK.is_file()


def test_seg_keeps_values_that_are_not_one_to_n(tmp_path, series, phantom_labels):
    image = read_series(series["regular"].folder)
    pixels = np.zeros(SHAPE, np.uint16)
    pixels[2:5, 10:20, 10:20] = 7
    pixels[6:9, 20:30, 5:15] = 3000
    lm = label_map(pixels, like=image, labels={3000: {"name": "kidney"}})
    path = write_labels(tmp_path / "sparse.dcm", lm, source=series["regular"].folder)
    back = read_labels(path, like=image)
    assert back.pixels.dtype == np.uint16
    assert_array_equal(back.pixels, pixels)
    assert back.metadata["labels"] == lm.metadata["labels"]
    assert sorted(int(n) for n in hd.seg.segread(path).segment_numbers) == [1, 2]


def test_seg_of_an_empty_map_is_refused(tmp_path, series):
    image = read_series(series["regular"].folder)
    empty = label_map(np.zeros(SHAPE, np.uint8), like=image)
    with pytest.raises(LabelValueError, match="no label"):
        write_labels(tmp_path / "e.dcm", empty, source=series["regular"].folder)
    assert not (tmp_path / "e.dcm").exists()


def test_an_array_takes_the_grid_of_like(phantom_labels):
    lm = check_labels(phantom_labels.pixels.astype(np.int32), like=phantom_labels)
    assert lm.pixels.dtype == np.uint8
    assert lm.metadata["affine"] == phantom_labels.metadata["affine"]
    assert check_labels(np.zeros((2, 3, 4), np.uint8), like=np.zeros((2, 3, 4))).shape == (2, 3, 4)
    with pytest.raises(GridMismatchError, match=r"shape \(2, 3, 5\)"):
        check_labels(np.zeros((2, 3, 4), np.uint8), like=np.zeros((2, 3, 5)))


def test_a_mask_over_a_real_ct_slice_as_seg(tmp_path):
    """pydicom's real CT_small.dcm as the source: a picture's 2-D mask in, the mask back."""
    from pydicom.data import get_testdata_file

    source = Path(get_testdata_file("CT_small.dcm", download=False))
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(source, folder / "ct.dcm")
    mask = np.zeros((128, 128), np.uint8)
    mask[30:60, 40:90] = 2
    path = write_labels(
        tmp_path / "m.dcm", label_map(mask, labels={2: {"name": "muscle"}}), source=folder
    )
    back = read_labels(path)
    assert back.shape == (1, 128, 128)
    assert_array_equal(back.pixels[0], mask)
    assert back.metadata["labels"][2]["name"] == "muscle"
    src = pydicom.dcmread(source, stop_before_pixels=True)
    raw = path.read_bytes()
    assert str(src.PatientID).encode() not in raw and str(src.PatientName).encode() not in raw
    assert pydicom.dcmread(path).StudyInstanceUID == src.StudyInstanceUID


@pytest.mark.parametrize(
    ("call", "fix"),
    [
        (
            lambda out: write_labels(label_map(np.zeros((2, 3, 4), np.uint8)), out),
            "write_labels(path, labels)",
        ),
        (lambda out: read_labels(np.zeros((2, 3, 4), np.uint8)), "pass its path"),
        (lambda out: read_labels(None), "pass its path"),
        (lambda out: sidecar_path(3), "pass its path"),
    ],
    ids=["write-swapped", "read-array", "read-none", "sidecar-int"],
)
def test_a_path_argument_of_another_type_names_it_and_the_fix(tmp_path, call, fix):
    with pytest.raises(InvalidTypeError) as info:
        call(tmp_path / "seg.nii.gz")
    message = str(info.value)
    assert message.startswith("path must be a str or pathlib.Path"), message
    assert "Fix: " in message and fix in message, message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "error", "start"),
    [
        (0, InvalidParameterError, "value must be >= 1, got 0. Fix: pass 1 or more."),
        (-2, InvalidParameterError, "value must be >= 1"),
        ("3", InvalidTypeError, "value must be an integer, got '3'"),
    ],
    ids=["background", "negative", "str"],
)
def test_default_color_of_no_label_value_is_a_documented_error(value, error, start):
    with pytest.raises(error) as info:
        default_color(value)
    assert str(info.value).startswith(start)
    assert "Fix: " in str(info.value)
