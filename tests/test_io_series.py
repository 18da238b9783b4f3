"""m1vision.io.read_series / list_series on generated and real DICOM series.

Independent implementations the results are checked against:
* SimpleITK's ``ImageSeriesReader`` (ITK + GDCM, its own sorting and geometry), also through its
  NIfTI writer read back with ``read_nifti``;
* the generator's own geometry (:func:`m1vision.synthetic.write_ct_series` knows the volume and
  affine it wrote, without any reader);
* pydicom's modality LUT, slice by slice, through :func:`m1vision.io.read_dicom`.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from conftest import pydicom_file
from numpy.testing import assert_allclose, assert_array_equal

from m1vision.errors import (
    DuplicatePositionError,
    GantryTiltError,
    ImageReadError,
    InvalidParameterError,
    MissingSlicesError,
    SeriesError,
    SeriesGeometryError,
    SeriesNotFoundError,
    SeriesSelectionError,
    UnevenSpacingError,
)
from m1vision.io import list_series, read_any, read_dicom, read_nifti, read_series
from m1vision.synthetic import SERIES_VARIANTS, write_ct_series

SHAPE = (10, 48, 40)
SPACING = (2.5, 0.8, 0.7)
#: pydicom's real DICOMDIR series, found as the guide says (the wheel's data, never downloaded)
DICOMDIR_TESTS = str(pydicom_file("dicomdirtests/DICOMDIR").parent)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    return {
        v: write_ct_series(root / v, variant=v, shape=SHAPE, spacing=SPACING)
        for v in SERIES_VARIANTS
    }


def _sitk_read(folder, n_files=None):
    """SimpleITK's reading: (array (z, y, x) float32, affine of that index order -> RAS+)."""
    reader = sitk.ImageSeriesReader()
    ids = reader.GetGDCMSeriesIDs(str(folder))
    names = [reader.GetGDCMSeriesFileNames(str(folder), i) for i in ids]
    if n_files is not None:
        names = [n for n in names if len(n) == n_files]
    assert len(names) == 1
    reader.SetFileNames(names[0])
    reader.SetOutputPixelType(sitk.sitkFloat32)
    img = reader.Execute()
    return img, *_sitk_geometry(img)


def _sitk_geometry(img):
    m = np.eye(4)
    m[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())
    m[:3, 3] = img.GetOrigin()
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ m  # ITK is LPS
    return sitk.GetArrayFromImage(img), ras[:, [2, 1, 0, 3]]


def _assert_same_volume(ours, arr, affine):
    """Our volume and another reader's (array, affine) hold the same voxels at the same places.

    inv(our affine) @ their affine must be a signed permutation (the two layouts differ by axis
    order and flips only); their array, permuted so, must equal our pixels.
    """
    mapping = np.linalg.inv(np.asarray(ours.metadata["affine"])) @ affine
    perm = np.abs(mapping[:3, :3]).argmax(axis=1)
    signs = np.sign(mapping[np.arange(3), perm])
    expected = np.zeros((4, 4))
    expected[np.arange(3), perm] = signs
    expected[3, 3] = 1.0
    expected[:3, 3] = [0 if s > 0 else arr.shape[p] - 1 for p, s in zip(perm, signs, strict=True)]
    assert_allclose(mapping, expected, atol=1e-3)
    theirs = arr.transpose(perm)[tuple(slice(None, None, int(s)) for s in signs)]
    assert_allclose(ours.pixels, theirs, atol=1e-3)


SITK_VARIANTS = ["regular", "shuffled", "reversed", "sagittal", "coronal", "oblique", "rescale"]


@pytest.mark.parametrize("variant", SITK_VARIANTS, ids=SITK_VARIANTS)
def test_series_equals_simpleitk_image_series_reader(generated, variant):
    gen = generated[variant]
    vol = read_series(gen.folder)
    _, arr, affine = _sitk_read(gen.folder)
    _assert_same_volume(vol, arr, affine)


def test_mixed_folder_picks_one_series_like_simpleitk(generated):
    gen = generated["mixed"]
    vol = read_series(gen.folder, series="Phantom abdomen 2.5 mm")
    _, arr, affine = _sitk_read(gen.folder, n_files=SHAPE[0])
    _assert_same_volume(vol, arr, affine)


@pytest.mark.parametrize("variant", ["regular", "sagittal", "oblique"], ids=str)
def test_simpleitk_nifti_conversion_reads_the_same(generated, tmp_path, variant):
    img, _, _ = _sitk_read(generated[variant].folder)
    sitk.WriteImage(img, str(tmp_path / "converted.nii.gz"))
    converted = read_nifti(tmp_path / "converted.nii.gz")
    vol = read_series(generated[variant].folder)
    assert_allclose(converted.pixels, vol.pixels, atol=1e-3)
    assert_allclose(converted.metadata["affine"], vol.metadata["affine"], atol=1e-3)
    assert_allclose(converted.spacing, vol.spacing, atol=1e-4)


WITH_TRUTH = [v for v in SERIES_VARIANTS if v != "oblique"]


@pytest.mark.parametrize("variant", WITH_TRUTH, ids=WITH_TRUTH)
def test_series_equals_the_generated_truth(generated, variant):
    gen = generated[variant]
    vol = read_series(gen.folder, strict=False, series=0 if variant == "mixed" else None)
    assert vol.is_volume and vol.pixels.dtype == np.float32
    assert_array_equal(vol.pixels, gen.expected)
    if variant != "uneven":  # uneven steps: the affine has the mean step
        assert_allclose(vol.metadata["affine"], gen.affine, atol=1e-4)


@pytest.mark.parametrize("variant", ["sagittal", "coronal"], ids=str)
def test_sagittal_and_coronal_are_reoriented_like_read_nifti(generated, variant):
    axial = read_series(generated["regular"].folder)
    other = read_series(generated[variant].folder)
    assert other.metadata["series_orientation"] == variant
    assert_array_equal(other.pixels, axial.pixels)
    assert_allclose(other.metadata["affine"], axial.metadata["affine"], atol=1e-4)
    assert other.spacing == pytest.approx(axial.spacing)


STRICT_ERRORS = [
    ("missing_slice", MissingSlicesError, ["1 slice(s) missing", "IM0005.dcm", "2.5 mm"]),
    ("uneven", UnevenSpacingError, ["unevenly spaced", "3.5 mm", "strict=False"]),
    ("duplicates", DuplicatePositionError, ["EchoNumbers", "IM0003.dcm", "IM0900.dcm"]),
    ("mismatch", SeriesGeometryError, ["pixel spacing", "IM0002.dcm", "(0.8, 0.7)"]),
    ("tilted", GantryTiltError, ["12.00 degrees", "shear"]),
    ("mixed", SeriesSelectionError, ["2 series", "Phantom coronal reformat", "series="]),
]


@pytest.mark.parametrize(
    ("variant", "error", "words"), STRICT_ERRORS, ids=[s[0] for s in STRICT_ERRORS]
)
def test_strict_raises_a_documented_error_naming_folder_files_and_fix(
    generated, variant, error, words
):
    folder = generated[variant].folder
    with pytest.raises(error) as info:
        read_series(folder)
    text = str(info.value)
    assert str(folder) in text
    for word in [*words, "Expected", "got", "Fix:"]:
        assert word in text
    assert isinstance(info.value, SeriesError) and isinstance(info.value, ValueError)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is error and str(again) == text


NOTED = [
    ("missing_slice", "missing slices"),
    ("uneven", "uneven spacing"),
    ("duplicates", "duplicate positions"),
    ("mismatch", "inconsistent geometry"),
    ("tilted", "gantry tilt"),
]


@pytest.mark.parametrize(("variant", "kind"), NOTED, ids=[n[0] for n in NOTED])
def test_lenient_reading_records_each_irregularity(generated, variant, kind):
    vol = read_series(generated[variant].folder, strict=False)
    kinds = [n["kind"] for n in vol.metadata["irregularities"]]
    assert kind in kinds
    json.dumps(vol.metadata)


def test_lenient_missing_slice_is_inserted_where_it_belongs(generated):
    vol = read_series(generated["missing_slice"].folder, strict=False)
    note = vol.metadata["irregularities"][0]
    assert note["inserted_slices"] == [SHAPE[0] // 2]
    assert vol.shape == SHAPE


def test_tilt_is_a_shear_in_the_affine(generated):
    vol = read_series(generated["tilted"].folder, strict=False)
    affine = np.asarray(vol.metadata["affine"])
    assert vol.metadata["gantry_tilt_deg"] == pytest.approx(12.0, abs=1e-3)
    step = affine[:3, 0]  # world displacement of one slice
    assert np.degrees(np.arctan2(step[1], step[2])) == pytest.approx(12.0, abs=1e-3)
    assert vol.spacing[0] == pytest.approx(SPACING[0])  # distance between slice planes


def test_uneven_spacing_records_the_positions(generated):
    vol = read_series(generated["uneven"].folder, strict=False)
    positions = np.asarray(vol.metadata["slice_positions"])
    assert sorted(np.round(np.diff(positions), 3).tolist()) == [2.5] * 8 + [3.5]


@pytest.mark.parametrize("variant", ["rescale", "monochrome1"], ids=str)
def test_each_slice_equals_its_file_through_pydicoms_modality_lut(generated, variant):
    vol = read_series(generated[variant].folder)
    positions = []
    for f in generated[variant].files:
        single = read_dicom(f)
        z = single.metadata["image_position_patient"][2]
        positions.append((z, single.pixels))
    for k, (_, pixels) in enumerate(sorted(positions, key=lambda t: t[0])):
        assert_array_equal(vol.pixels[k], pixels)


def test_monochrome1_is_recorded_and_reads_as_the_phantom(generated):
    vol = read_series(generated["monochrome1"].folder)
    assert vol.metadata["inverted"] is True
    assert vol.metadata["photometric"] == "MONOCHROME1"
    assert_array_equal(vol.pixels, generated["monochrome1"].expected)


def test_rescale_per_slice_is_recorded(generated):
    vol = read_series(generated["rescale"].folder)
    assert vol.metadata["rescale_per_slice"] is True
    assert "rescale_slope" not in vol.metadata


def test_no_patient_or_study_identifiers_leave_the_reader(generated):
    gen = generated["regular"]
    vol = read_series(gen.folder)
    ds = pydicom.dcmread(gen.files[0])
    text = json.dumps(vol.metadata) + json.dumps(list_series(gen.folder).to_dict())
    for secret in ("Phantom^Generated", "GEN-0001", "20260101"):
        assert secret in str(ds.PatientName) + ds.PatientID + ds.StudyDate
        assert secret not in text
    for uid in (ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.SOPInstanceUID):
        assert str(uid) not in text


def test_list_series_one_row_per_series(generated, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(generated["mixed"].folder, folder)
    (folder / "notes.txt").write_text("not an image")
    listing = list_series(folder)
    rows = [(s.description, s.files, s.rows, s.columns, s.slices, s.orientation) for s in listing]
    assert rows == [
        ("Phantom abdomen 2.5 mm", 10, 48, 40, 10, "axial"),
        ("Phantom coronal reformat", 32, 6, 24, 32, "coronal"),
    ]
    assert listing.skipped == (("notes.txt", "not DICOM"),)
    assert "Phantom coronal reformat" in str(listing)
    assert read_series(folder, series=1).shape == (6, 32, 24)


def test_series_selection_errors(generated):
    folder = generated["mixed"].folder
    with pytest.raises(SeriesSelectionError, match="out of range"):
        read_series(folder, series=5)
    with pytest.raises(SeriesSelectionError, match="matches 0 series"):
        read_series(folder, series="no such description")
    with pytest.raises(InvalidParameterError, match="row index"):
        read_series(folder, series=1.0)
    assert read_series(folder, series="PHANTOM ABDOMEN 2.5 MM").shape == SHAPE


def test_read_any_reads_a_one_series_folder_and_refuses_others(generated, tmp_path):
    vol = read_any(generated["shuffled"].folder)
    assert_array_equal(vol.pixels, generated["shuffled"].expected)
    with pytest.raises(SeriesSelectionError):
        read_any(generated["mixed"].folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="no DICOM image series"):
        read_any(tmp_path / "empty")
    with pytest.raises(SeriesNotFoundError, match="no files at all"):
        read_series(tmp_path / "empty")
    with pytest.raises(ImageReadError, match="no such folder"):
        read_series(tmp_path / "missing")


def test_progress_bar_when_asked(generated, capsys):
    read_series(generated["regular"].folder, progress=True, workers=1)
    assert "decoding" in capsys.readouterr().err


def test_threads_give_the_same_volume(generated):
    one = read_series(generated["shuffled"].folder, workers=1)
    four = read_series(generated["shuffled"].folder, workers=4)
    assert_array_equal(one.pixels, four.pixels)


# --------------------------------------------------------------------------------------------
# pydicom's real series (dicomdirtests: extensionless names, DICOMDIRs, several series)
# --------------------------------------------------------------------------------------------


def test_real_listing_skips_dicomdir_localizers_and_objects_without_pixels():
    listing = list_series(DICOMDIR_TESTS)
    assert len(listing) == 12
    reasons = {reason.split(":")[0] for _, reason in listing.skipped}
    assert reasons == {"DICOMDIR", "localizer", "no pixel data", "not DICOM"}
    ct = [s for s in listing if s.description == "SmartScore - Gated 0.5 sec"]
    assert [(s.modality, s.files, s.orientation) for s in ct] == [("CT", 5, "axial")]


def test_real_ct_series_equals_simpleitk():
    folder = os.path.join(DICOMDIR_TESTS, "98892001", "CT5N")
    vol = read_series(os.path.join(DICOMDIR_TESTS, "98892001"))
    _, arr, affine = _sitk_read(folder)
    _assert_same_volume(vol, arr, affine)
    assert vol.spacing == pytest.approx((2.5, 0.488281, 0.488281))


def test_real_series_with_a_gap():
    folder = os.path.join(DICOMDIR_TESTS, "77654033", "CT2")
    with pytest.raises(MissingSlicesError, match="161 slice"):
        read_series(folder)
    vol = read_series(folder, strict=False)  # the gap dwarfs the slices: the longest run
    assert vol.shape[0] == 3
    assert vol.metadata["irregularities"][0]["dropped_files"] == ["17106"]


def test_real_series_of_three_orientations_is_no_volume():
    folder = os.path.join(DICOMDIR_TESTS, "98892003", "MR2")
    pilots = [s for s in list_series(folder) if s.files == 3]  # sagittal, coronal and axial
    assert len(pilots) == 2
    with pytest.raises(SeriesGeometryError, match="differ in orientation"):
        read_series(folder, series=pilots[0].index)


def _change_one_file(folder, what):
    f = sorted(folder.iterdir())[3]
    ds = pydicom.dcmread(f)
    if what == "orientation":
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0.8, 0.6]
    else:  # size: a quarter of the slice
        ds.PixelData = ds.pixel_array[::2, ::2].copy().tobytes()
        ds.Rows, ds.Columns = ds.Rows // 2, ds.Columns // 2
    ds.save_as(f)
    return f.name


@pytest.mark.parametrize(
    ("what", "words"),
    [("orientation", ["differ in orientation", "0.8, 0.6"]), ("size", ["differ in size", "24x20"])],
    ids=["orientation", "size"],
)
def test_one_odd_slice_is_named_and_dropped_when_lenient(generated, tmp_path, what, words):
    folder = tmp_path / what
    shutil.copytree(generated["regular"].folder, folder)
    odd = _change_one_file(folder, what)
    with pytest.raises(SeriesGeometryError) as info:
        read_series(folder)
    for word in [*words, odd, "strict=False"]:
        assert word in str(info.value)
    vol = read_series(folder, strict=False)
    notes = {n["kind"]: n for n in vol.metadata["irregularities"]}
    assert notes["inconsistent geometry"]["dropped_files"] == [odd]
    assert notes["inconsistent geometry"]["differs_in"] == [what]
    assert "missing slices" in notes  # its place is filled, so the geometry stays true
    assert vol.shape == SHAPE
