"""Enhanced multi-frame CT/MR: the same data as a classic series and as one Enhanced object.

Both forms are written by :func:`m1vision.synthetic.write_enhanced` with pydicom, the
Enhanced frames in shuffled order; they must read to identical pixels, affine and spacing.
dcm2niix converts the Enhanced files independently; nibabel's world coordinates of its voxels
must land on our voxels with our values.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import dcm2niix
import highdicom
import nibabel as nib
import numpy as np
import pydicom
import pytest
from numpy.testing import assert_array_equal

from m1vision.errors import (
    DuplicatePositionError,
    FrameGeometryError,
    GantryTiltError,
    ImageReadError,
    InvalidParameterError,
    MissingSlicesError,
    SeriesGeometryError,
    SeriesSelectionError,
    UnevenSpacingError,
)
from m1vision.io import list_series, read_any, read_dicom, read_series
from m1vision.synthetic import write_ct_series, write_enhanced

SHAPE = (6, 24, 20)
SPACING = (2.5, 0.8, 0.7)
ORIENTATIONS = {
    "axial": "regular",
    "sagittal": "sagittal",
    "coronal": "coronal",
    "oblique": "oblique",
}


def _write(tmp_path, modality, variant, rescale_per_frame=False, **kw):
    return write_enhanced(
        tmp_path / "gen",
        modality=modality,
        variant=variant,
        shape=SHAPE,
        spacing=SPACING,
        rescale_per_frame=rescale_per_frame,
        seed=3,
        **kw,
    )


@pytest.mark.parametrize("rescale", ["shared", "per-frame"])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_enhanced_reads_like_the_same_classic_series(tmp_path, modality, orientation, rescale):
    gen = _write(tmp_path, modality, ORIENTATIONS[orientation], rescale == "per-frame")
    assert list(gen.frame_order) != sorted(gen.frame_order)  # stored shuffled
    series = read_series(gen.series.folder)
    enhanced = read_dicom(gen.path)
    assert enhanced.pixels.dtype == np.float32
    assert_array_equal(enhanced.pixels, series.pixels)
    assert_array_equal(enhanced.metadata["affine"], series.metadata["affine"])
    assert enhanced.spacing == series.spacing
    assert enhanced.modality == modality
    assert enhanced.metadata["layout"] == "volume"
    assert enhanced.metadata["original_orientation"] == series.metadata["original_orientation"]
    assert enhanced.metadata.get("rescale_per_frame", False) == (rescale == "per-frame")
    if gen.series.expected is not None:  # written independently of any reader
        assert_array_equal(enhanced.pixels, gen.series.expected)
        np.testing.assert_allclose(enhanced.metadata["affine"], gen.series.affine, atol=1e-5)
    # read_any gives the same volume
    assert_array_equal(read_any(gen.path).pixels, enhanced.pixels)


def test_ct_values_are_hounsfield_units_and_mr_has_its_slope(tmp_path):
    ct = read_dicom(_write(tmp_path / "ct", "CT", "regular").path)
    assert ct.metadata["rescale_intercept"] == -1024.0
    assert float(ct.pixels.min()) == -1000.0  # air, not 24 (stored) or -2024
    assert ct.window == (40.0, 400.0)
    gen = _write(tmp_path / "mr", "MR", "regular")
    mr = read_dicom(gen.path)
    raw = pydicom.dcmread(gen.path).pixel_array
    assert mr.metadata["rescale_slope"] == 0.75
    assert float(mr.pixels.max()) == pytest.approx(float(raw.max()) * 0.75)


def test_a_compressed_enhanced_object_reads_like_the_uncompressed_one(tmp_path):
    gen = _write(tmp_path, "MR", "oblique", rescale_per_frame=True)
    ds = pydicom.dcmread(gen.path)
    ds.compress(pydicom.uid.RLELossless)  # pydicom's own encoder, one fragment per frame
    path = tmp_path / "rle.dcm"
    ds.save_as(path, enforce_file_format=True)
    img = read_dicom(path)
    assert img.metadata["transfer_syntax"] == "RLE Lossless"
    assert_array_equal(img.pixels, read_dicom(gen.path).pixels)


def test_frames_are_sorted_by_position_not_by_frame_number(tmp_path):
    gen = _write(tmp_path, "CT", "regular")
    img = read_dicom(gen.path)
    assert img.metadata["sorted_by"] == "PlanePositionSequence along the slice normal"
    ds = pydicom.dcmread(gen.path)
    z = list(gen.frame_order).index(0)  # the frame holding the most inferior slice
    assert z != 0
    assert_array_equal(img.pixels[0], ds.pixel_array[z] - 1024.0)  # slope 1, intercept -1024


def test_an_enhanced_file_in_a_folder_lists_and_reads_as_one_series(tmp_path):
    gen = _write(tmp_path, "CT", "sagittal")
    folder = tmp_path / "only"
    folder.mkdir()
    shutil.copy(gen.path, folder / "IMG")
    listing = list_series(folder)
    assert len(listing) == 1
    row = listing[0]
    assert (row.files, row.slices, row.orientation, row.stack) == (1, SHAPE[2], "sagittal", "")
    assert_array_equal(read_series(folder).pixels, read_dicom(gen.path).pixels)


# --------------------------------------------------------------------------- several stacks


@pytest.fixture
def echoes(tmp_path):
    gen = _write(tmp_path, "MR", "regular", echoes=3)
    folder = tmp_path / "echoes"
    folder.mkdir()
    shutil.copy(gen.path, folder / "multi_echo.dcm")
    return gen, folder


def test_each_stack_is_a_row_of_list_series(echoes):
    _, folder = echoes
    listing = list_series(folder)
    assert [r.stack for r in listing] == ["echo time 10 ms", "echo time 20 ms", "echo time 30 ms"]
    assert all(r.slices == SHAPE[0] and r.orientation == "axial" for r in listing)
    assert "echo time 20 ms" in str(listing)
    assert json.loads(json.dumps(listing.to_dict()))["series"][2]["stack"] == "echo time 30 ms"


@pytest.mark.parametrize("pick", [0, 1, 2])
def test_a_stack_is_picked_by_row_index_or_label(echoes, pick):
    gen, folder = echoes
    by_row = read_series(folder, series=pick)
    assert_array_equal(by_row.pixels, gen.echo_expected[pick])
    label = f"echo time {10 * (pick + 1)} ms"
    by_label = read_dicom(folder / "multi_echo.dcm", stack=label)
    assert_array_equal(by_label.pixels, by_row.pixels)
    assert by_label.metadata["stack_label"] == label
    assert len(by_label.metadata["stacks"]) == 3


def test_several_stacks_are_not_flattened(echoes):
    _, folder = echoes
    with pytest.raises(SeriesSelectionError, match="3 stacks") as info:
        read_dicom(folder / "multi_echo.dcm")
    assert "echo time 30 ms" in info.value.got and "stack=" in info.value.fix
    with pytest.raises(SeriesSelectionError, match="3 series"):
        read_series(folder)
    with pytest.raises(SeriesSelectionError, match="out of range"):
        read_dicom(folder / "multi_echo.dcm", stack=3)
    with pytest.raises(SeriesSelectionError, match="matches 0 stacks"):
        read_dicom(folder / "multi_echo.dcm", stack="echo time 99 ms")
    with pytest.raises(InvalidParameterError, match="stack must be"):
        read_dicom(folder / "multi_echo.dcm", stack=1.5)


def test_stack_on_a_classic_file_is_refused(tmp_path):
    gen = write_ct_series(tmp_path, shape=(2, 16, 16))
    with pytest.raises(InvalidParameterError, match="Enhanced multi-frame"):
        read_dicom(gen.files[0], stack=0)


# --------------------------------------------------------------------------- the series checks


@pytest.mark.parametrize(
    ("variant", "error", "kind"),
    [
        ("missing_slice", MissingSlicesError, "missing slices"),
        ("uneven", UnevenSpacingError, "uneven spacing"),
        ("tilted", GantryTiltError, "gantry tilt"),
    ],
    ids=["missing_slice", "uneven", "tilted"],
)
def test_gaps_uneven_steps_and_tilt_get_the_series_checks(tmp_path, variant, error, kind):
    gen = _write(tmp_path, "CT", variant)
    with pytest.raises(error) as info:
        read_dicom(gen.path)
    assert info.value.folder == str(gen.path)
    assert all(f.startswith("frame ") for f in info.value.files)
    lenient = read_dicom(gen.path, strict=False)
    series = read_series(gen.series.folder, strict=False)
    assert_array_equal(lenient.pixels, series.pixels)
    assert_array_equal(lenient.metadata["affine"], series.metadata["affine"])
    assert [n["kind"] for n in lenient.metadata["irregularities"]] == [kind]
    assert_array_equal(lenient.pixels, gen.series.expected)


def test_frames_sharing_a_position_without_a_stack_value_are_duplicates(tmp_path):
    gen = _write(tmp_path, "CT", "regular")
    src = pydicom.dcmread(gen.path)
    order = list(gen.frame_order)
    a, b = order.index(2), order.index(3)  # the frames holding series slices 2 and 3

    def repeat(ds):
        pos = ds.PerFrameFunctionalGroupsSequence[a].PlanePositionSequence[0].ImagePositionPatient
        ds.PerFrameFunctionalGroupsSequence[b].PlanePositionSequence[0].ImagePositionPatient = pos
        frames = ds.pixel_array.copy()
        frames[b] = frames[a] + 7
        ds.PixelData = frames.astype(src.pixel_array.dtype).tobytes()

    path = _edit(gen, tmp_path, repeat)
    with pytest.raises(DuplicatePositionError, match="2 slices share 1 position") as info:
        read_dicom(path)
    assert "do not tell apart" in info.value.fix
    assert sorted(info.value.files) == sorted([f"frame {a + 1}", f"frame {b + 1}"])
    lenient = read_dicom(path, strict=False)
    kept = min(a, b)  # the first frame (by frame number) at the position
    assert_array_equal(lenient.pixels[2], pydicom.dcmread(path).pixel_array[kept] - 1024.0)
    assert [n["kind"] for n in lenient.metadata["irregularities"]] == [
        "duplicate positions",
        "missing slices",
    ]


# --------------------------------------------------------------------------- bad input


def _edit(gen, tmp_path, change):
    ds = pydicom.dcmread(gen.path)
    change(ds)
    out = tmp_path / "edited.dcm"
    ds.save_as(out, enforce_file_format=True)
    return out


def test_pixel_data_shorter_than_the_frame_count_is_refused(tmp_path):
    gen = _write(tmp_path, "CT", "regular")
    frame_bytes = SHAPE[1] * SHAPE[2] * 2

    def cut(ds):
        ds.PixelData = ds.PixelData[:-frame_bytes]

    path = _edit(gen, tmp_path, cut)
    with pytest.raises(ImageReadError, match=r"NumberOfFrames is 6|6 frame\(s\)") as e:
        read_dicom(path)  # before decoding; whichever size check words it
    assert str(path) in str(e.value) and "export it again" in str(e.value)
    assert f"{5 * frame_bytes:,}".replace(",", "") in str(e.value).replace(",", "")


def test_a_frame_count_the_functional_groups_disagree_with_is_refused(tmp_path):
    gen = _write(tmp_path, "CT", "regular")

    def fewer_groups(ds):
        del ds.PerFrameFunctionalGroupsSequence[5]

    with pytest.raises(ImageReadError, match="NumberOfFrames is 6 but the PerFrame") as info:
        read_dicom(_edit(gen, tmp_path, fewer_groups))
    assert "holds 5 items" in str(info.value)


def test_frames_without_position_are_named(tmp_path):
    gen = _write(tmp_path, "CT", "regular")

    def drop(ds):
        for i in (1, 4):
            del ds.PerFrameFunctionalGroupsSequence[i].PlanePositionSequence

    path = _edit(gen, tmp_path, drop)
    with pytest.raises(FrameGeometryError, match="2 of 6 frames have no position") as info:
        read_dicom(path)
    assert info.value.files == ("frame 2", "frame 5")
    assert "PlanePositionSequence" in info.value.expected
    folder = tmp_path / "damaged"
    folder.mkdir()
    shutil.move(path, folder / "damaged.dcm")
    assert [r.orientation for r in list_series(folder)] == ["multi-frame"]  # listed, not read
    with pytest.raises(FrameGeometryError, match="no position"):
        read_series(folder)


def test_frames_without_orientation_are_named(tmp_path):
    gen = _write(tmp_path, "MR", "coronal")

    def drop(ds):
        iop = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence
        del ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence
        for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
            if i != 3:
                item.PlaneOrientationSequence = iop

    with pytest.raises(FrameGeometryError, match="have no orientation") as info:
        read_dicom(_edit(gen, tmp_path, drop))
    assert info.value.files == ("frame 4",)


def test_mixed_orientations_in_one_stack_are_refused_or_dropped_when_lenient(tmp_path):
    gen = _write(tmp_path, "CT", "regular")

    def rotate(ds):
        iop = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence
        del ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence
        for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
            item.PlaneOrientationSequence = pydicom.Sequence([pydicom.Dataset()])
            item.PlaneOrientationSequence[0].ImageOrientationPatient = (
                [1, 0, 0, 0, 0, -1] if i == 2 else iop[0].ImageOrientationPatient
            )

    path = _edit(gen, tmp_path, rotate)
    with pytest.raises(FrameGeometryError, match="2 orientations") as info:
        read_dicom(path)
    assert isinstance(info.value, SeriesGeometryError)
    assert info.value.files == ("frame 3",) and "strict=False" in info.value.fix
    lenient = read_dicom(path, strict=False)
    kinds = [n["kind"] for n in lenient.metadata["irregularities"]]
    assert kinds[0] == "inconsistent geometry"
    assert lenient.metadata["irregularities"][0]["dropped_files"] == ["frame 3"]


def test_enhanced_pet_is_read_through_the_same_groups(tmp_path):
    gen = _write(tmp_path, "CT", "coronal", rescale_per_frame=True)

    def pet(ds):
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.EnhancedPETImageStorage
        ds.Modality = "PT"

    img = read_dicom(_edit(gen, tmp_path, pet))
    assert img.modality == "PT" and img.metadata["sop_class"] == "Enhanced PET Image Storage"
    assert_array_equal(img.pixels, read_series(gen.series.folder).pixels)


def test_legacy_multi_frame_keeps_working(tmp_path):
    """NumberOfFrames + ImagePositionPatient + SpacingBetweenSlices, no functional groups."""
    gen = write_ct_series(tmp_path / "s", shape=(3, 16, 12))
    first = pydicom.dcmread(gen.files[0])
    first.NumberOfFrames = 3
    first.SpacingBetweenSlices = "2.5"
    first.PixelData = b"".join(pydicom.dcmread(f).PixelData for f in gen.files)
    path = tmp_path / "legacy.dcm"
    first.save_as(path, enforce_file_format=True)
    img = read_dicom(path)
    assert img.shape == (3, 16, 12) and img.spacing == (2.5, 0.8, 0.8)
    assert_array_equal(img.pixels, gen.expected)  # stored inferior first, as the file holds them
    assert img.metadata["layout"] == "volume"


def test_no_patient_identifiers_leave_the_reader(tmp_path):
    img = read_dicom(_write(tmp_path, "MR", "oblique").path)
    text = json.dumps(img.metadata)
    assert "Phantom^Generated" not in text and "GEN-0001" not in text
    assert "1.2.826.0" not in text  # pydicom's UID root: no UIDs either


# --------------------------------------------------------------------------- dcm2niix


@pytest.mark.parametrize("rescale", ["shared", "per-frame"])
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_dcm2niix_puts_every_voxel_where_we_do(tmp_path, modality, orientation, rescale):
    """dcm2niix's NIfTI, read by nibabel alone: each of its voxels' world position (its
    affine) falls on one of our voxels (our affine), and holds our value."""
    gen = _write(tmp_path, modality, ORIENTATIONS[orientation], rescale == "per-frame")
    ours = read_dicom(gen.path)
    source, out = tmp_path / "dicom", tmp_path / "nifti"
    source.mkdir()
    out.mkdir()
    shutil.copy(gen.path, source / "enhanced.dcm")
    done = subprocess.run(
        [dcm2niix.bin, "-z", "n", "-b", "n", "-f", "volume", "-o", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    img = nib.load(out / "volume.nii")
    data = np.asarray(img.get_fdata(), dtype=np.float64)
    assert sorted(data.shape) == sorted(ours.shape)
    ijk = np.indices(data.shape).reshape(3, -1).T
    world = nib.affines.apply_affine(img.affine, ijk)
    zrc = nib.affines.apply_affine(np.linalg.inv(np.array(ours.metadata["affine"])), world)
    index = np.rint(zrc).astype(int)
    np.testing.assert_allclose(zrc, index, atol=1e-3)
    values = ours.pixels[tuple(index.T)]
    np.testing.assert_allclose(values, data.reshape(-1), rtol=1e-6, atol=1e-4)


# --------------------------------------------------------------------------- highdicom


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_highdicom_legacy_converted_enhanced_reads_like_its_series(tmp_path, modality, orientation):
    """Another writer: highdicom converts the classic series (each slice its own rescale)
    into one Legacy Converted Enhanced CT/MR object; it must read like the series."""
    gen = write_ct_series(
        tmp_path / "series",
        variant=ORIENTATIONS[orientation],
        shape=SHAPE,
        spacing=SPACING,
        modality=modality,
        rescale_per_slice=True,
        seed=5,
    )
    datasets = [pydicom.dcmread(f) for f in gen.files]
    for ds in datasets:  # type 2 elements highdicom asks for, absent from the phantom
        ds.PatientBirthDate = ds.PatientSex = ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ds.PositionReferenceIndicator = ""
        ds.StudyID, ds.StudyTime, ds.AcquisitionNumber = "1", "120000", 1
        ds.SeriesDate = ds.ContentDate = ds.StudyDate
        ds.SeriesTime = ds.ContentTime = "120000"
        ds.FrameOfReferenceUID = pydicom.uid.generate_uid(entropy_srcs=["frame of reference"])
        ds.PatientPosition = "HFS"
    legacy = highdicom.legacy
    cls = (
        legacy.LegacyConvertedEnhancedCTImage
        if modality == "CT"
        else (legacy.LegacyConvertedEnhancedMRImage)
    )
    converted = cls(
        datasets,
        series_instance_uid=pydicom.uid.generate_uid(entropy_srcs=["series", modality]),
        series_number=9,
        sop_instance_uid=pydicom.uid.generate_uid(entropy_srcs=["instance", modality]),
        instance_number=1,
    )
    path = tmp_path / "converted.dcm"
    converted.save_as(path)
    assert "PerFrameFunctionalGroupsSequence" in pydicom.dcmread(path, stop_before_pixels=True)
    ours, series = read_dicom(path), read_series(gen.folder)
    assert_array_equal(ours.pixels, series.pixels)
    assert_array_equal(ours.metadata["affine"], series.metadata["affine"])
    assert ours.spacing == series.spacing
    assert ours.metadata["rescale_per_frame"] is True
