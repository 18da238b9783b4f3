"""m1vision.io on real files: round trips, content-based dispatch, bad inputs, DICOM and NIfTI."""

from __future__ import annotations

import gzip
import json
import shutil

import cv2
import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import CORRUPT_KINDS, NIBABEL_DATA, pydicom_file
from numpy.testing import assert_array_equal
from pydicom.pixels import apply_modality_lut, get_decoder

from m1vision.errors import (
    ImageReadError,
    InvalidImageError,
    InvalidParameterError,
    OutputExistsError,
)
from m1vision.io import (
    IMAGE_EXTENSIONS,
    MedicalImage,
    has_image_extension,
    read_any,
    read_dicom,
    read_image,
    read_nifti,
    sniff_format,
    write_image,
)
from m1vision.preprocess import window

# --------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------


def _test_image(dtype, channels: int) -> np.ndarray:
    """A gradient plus seeded noise using the dtype's range, so bit depth and channel order
    both matter (each channel differs)."""
    rng = np.random.default_rng(42)
    top = np.iinfo(dtype).max
    ramp = np.linspace(0, top, 48 * 40).reshape(48, 40)
    base = np.clip(ramp + rng.normal(0, top * 0.02, ramp.shape), 0, top)
    if channels == 1:
        return base.astype(dtype)
    return np.stack([base, base[::-1], top - base][:channels], axis=-1).astype(dtype)


LOSSLESS = [".png", ".tif", ".tiff", ".bmp"]
ROUND_TRIPS = [
    (dtype, suffix, channels)
    for dtype in (np.uint8, np.uint16)
    for suffix in (*LOSSLESS, ".jpg")
    for channels in (1, 3)
    if not (dtype == np.uint16 and suffix in (".bmp", ".jpg"))
]


@pytest.mark.parametrize(
    ("dtype", "suffix", "channels"),
    ROUND_TRIPS,
    ids=[f"{np.dtype(d).name}-{s[1:]}-{'gray' if c == 1 else 'bgr'}" for d, s, c in ROUND_TRIPS],
)
def test_round_trip(tmp_path, dtype, suffix, channels):
    image = _test_image(dtype, channels)
    before = image.copy()
    path = write_image(tmp_path / f"img{suffix}", image)
    assert_array_equal(image, before)  # the input is not modified
    back = read_image(path)
    assert back.dtype == image.dtype
    assert back.shape == image.shape
    if suffix == ".jpg":  # lossy: close, and every channel in its place (not swapped)
        err = np.abs(back.astype(np.int32) - image.astype(np.int32))
        assert err.mean() < 6.0
        got = back.reshape(-1, channels).T.astype(float)
        want = image.reshape(-1, channels).T.astype(float)
        corr = np.corrcoef(got, want)[:channels, channels:]  # corr[i, j]: got i vs want j
        assert (np.diag(corr) > 0.95).all()
        if channels == 3:
            assert corr[0, 2] < 0  # R = max - B in _test_image: a B/R swap would show
    else:
        assert_array_equal(back, image)
    via_any = read_any(path)
    assert isinstance(via_any, MedicalImage)
    assert_array_equal(via_any.pixels, back)
    assert via_any.spacing is None
    assert via_any.modality is None


def test_round_trip_float32_tiff(tmp_path):
    image = np.linspace(-1000.5, 3000.25, 30 * 20, dtype=np.float32).reshape(30, 20)
    back = read_image(write_image(tmp_path / "hu.tif", image))
    assert back.dtype == np.float32
    assert_array_equal(back, image)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16], ids=["uint8", "uint16"])
@pytest.mark.parametrize("suffix", [".png", ".tif"], ids=["png", "tif"])
def test_read_modes_convert_channels_and_keep_depth(tmp_path, dtype, suffix):
    color = _test_image(dtype, 3)
    gray = _test_image(dtype, 1)
    color_path = write_image(tmp_path / f"c{suffix}", color)
    gray_path = write_image(tmp_path / f"g{suffix}", gray)

    as_gray = read_image(color_path, mode="gray")
    assert as_gray.shape == color.shape[:2]
    assert as_gray.dtype == dtype
    expected = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    # the decoders' fixed-point BT.601 weights differ from cvtColor's by < 0.01 % of the range
    tolerance = 1 if dtype == np.uint8 else 8
    assert np.abs(as_gray.astype(np.int64) - expected.astype(np.int64)).max() <= tolerance

    as_color = read_image(gray_path, mode="color")
    assert as_color.shape == (*gray.shape, 3)
    assert as_color.dtype == dtype
    for c in range(3):
        assert_array_equal(as_color[..., c], gray)


def test_read_image_rejects_unknown_mode(png8_path):
    with pytest.raises(InvalidParameterError, match="mode must be one of"):
        read_image(png8_path, mode="rgb")


@pytest.mark.parametrize(
    ("dtype", "suffix", "shape", "match"),
    [
        (np.uint16, ".jpg", (8, 8), "takes uint8, got uint16"),
        (np.uint16, ".bmp", (8, 8), "takes uint8, got uint16"),
        (np.float32, ".png", (8, 8), "write .tif for float32"),
        (np.int16, ".tif", (8, 8), "takes uint8, uint16, float32, got int16"),
        (np.uint8, ".jpg", (8, 8, 4), "got 4"),
        (np.uint8, ".png", (8, 8, 2), "got 2"),
        (np.uint8, ".png", (4, 8, 8, 3), "for a volume write one slice"),
    ],
    ids=["u16-jpg", "u16-bmp", "f32-png", "i16-tif", "bgra-jpg", "2ch-png", "4d"],
)
def test_write_rejects_dtype_or_channels_the_format_cannot_hold(
    tmp_path, dtype, suffix, shape, match
):
    target = tmp_path / f"out{suffix}"
    with pytest.raises(InvalidImageError, match=match) as info:
        write_image(target, np.zeros(shape, dtype))
    assert str(target) in str(info.value)
    assert not target.exists()


def test_write_rejects_unknown_suffix_and_non_arrays(tmp_path, ct_image):
    with pytest.raises(InvalidParameterError, match=r"'\.dcm' is not a format"):
        write_image(tmp_path / "x.dcm", np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match=r"pass image\.pixels"):
        write_image(tmp_path / "x.png", ct_image)
    with pytest.raises(InvalidImageError, match="NaN"):
        write_image(tmp_path / "x.tif", np.full((4, 4), np.nan, np.float32))


# --------------------------------------------------------------------------------------------
# write_image: atomic, no silent overwrite
# --------------------------------------------------------------------------------------------


def test_write_creates_parents_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "a" / "b" / "out.png"
    assert write_image(target, np.ones((5, 5), np.uint8)) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]


def test_write_refuses_to_overwrite_and_keeps_the_original(tmp_path):
    target = write_image(tmp_path / "out.png", np.full((5, 5), 1, np.uint8))
    original = target.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_image(target, np.full((5, 5), 2, np.uint8))
    assert target.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp file left


def test_write_overwrite_true_replaces(tmp_path):
    target = write_image(tmp_path / "out.png", np.full((5, 5), 1, np.uint8))
    write_image(target, np.full((5, 5), 2, np.uint8), overwrite=True)
    assert_array_equal(read_image(target), np.full((5, 5), 2, np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


# --------------------------------------------------------------------------------------------
# paths and dispatch on content
# --------------------------------------------------------------------------------------------


def test_non_ascii_paths(tmp_path, ct_path):
    folder = tmp_path / "données ünïcødé" / "画像 フォルダ"
    image = _test_image(np.uint16, 1)
    path = write_image(folder / "Schädel – 頭部.png", image)
    assert_array_equal(read_image(path), image)
    assert_array_equal(read_any(path).pixels, image)
    dicom_copy = folder / "Röntgen 頭部.dcm"
    shutil.copyfile(ct_path, dicom_copy)
    assert read_any(dicom_copy).modality == "CT"


def test_png_named_dcm_is_read_as_png(tmp_path):
    image = _test_image(np.uint8, 3)
    path = write_image(tmp_path / "x.png", image).rename(tmp_path / "really_a_png.dcm")
    assert sniff_format(path) == "png"
    got = read_any(path)
    assert got.metadata["format"] == "png"
    assert_array_equal(got.pixels, image)
    with pytest.raises(ImageReadError, match="not a DICOM file"):
        read_dicom(path)


def test_dicom_without_extension_is_read_as_dicom(tmp_path, ct_path):
    path = tmp_path / "IM000001"
    shutil.copyfile(ct_path, path)
    got = read_any(path)
    assert got.modality == "CT"
    assert_array_equal(got.pixels, read_dicom(ct_path).pixels)


def test_dicom_without_preamble_is_read_as_dicom(tmp_path, ct_path):
    ds = pydicom.dcmread(ct_path)
    ds.preamble = None
    path = tmp_path / "nopreamble"
    pydicom.dcmwrite(path, ds, enforce_file_format=False)
    assert path.read_bytes()[128:132] != b"DICM"
    assert sniff_format(path) == "dicom"
    assert_array_equal(read_any(path).pixels, read_dicom(ct_path).pixels)


def test_image_read_as_dicom_points_to_the_right_reader(png8_path, ct_path):
    with pytest.raises(ImageReadError, match="read_any"):
        read_image(ct_path)
    with pytest.raises(ImageReadError, match="not a NIfTI file"):
        read_nifti(png8_path)


@pytest.mark.parametrize(
    "name", ["scan.nii.gz", "scan_without_extension"], ids=["nii.gz", "gz-no-extension"]
)
def test_nifti_gz_dispatch(tmp_path, nifti_path, name):
    path = tmp_path / name
    path.write_bytes(gzip.compress(nifti_path.read_bytes(), mtime=0))
    assert sniff_format(path) == "nifti"
    got = read_any(path)
    assert_array_equal(got.pixels, read_nifti(nifti_path).pixels)
    assert got.spacing == (2.0, 2.0, 2.0)


def test_nifti_renamed_is_read_by_content(tmp_path, nifti_path):
    path = tmp_path / "volume.bin"
    shutil.copyfile(nifti_path, path)
    assert_array_equal(read_any(path).pixels, read_nifti(nifti_path).pixels)


def test_jpeg_named_png_is_read_as_jpeg(tmp_path, jpeg_color_path):
    path = tmp_path / "wrong.png"
    shutil.copyfile(jpeg_color_path, path)
    got = read_any(path)
    assert got.metadata["format"] == "jpeg"
    assert got.pixels.shape == (256, 256, 3)


def test_progressive_jpeg_and_trailing_bytes_are_complete(tmp_path):
    image = _test_image(np.uint8, 3)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    progressive = tmp_path / "progressive.jpg"
    progressive.write_bytes(buf.tobytes())
    assert read_image(progressive).shape == image.shape
    padded = tmp_path / "padded.jpg"
    padded.write_bytes(buf.tobytes() + b"\x00" * 16)  # some cameras pad after EOI
    assert read_image(padded).shape == image.shape


def test_has_image_extension_and_extension_set():
    assert {".png", ".dcm", ".nii", ".nii.gz"} <= IMAGE_EXTENSIONS
    assert has_image_extension("A/B/brain.Nii.Gz")
    assert has_image_extension("slice.TIFF")
    assert not has_image_extension("table.csv")
    assert not has_image_extension("backup.gz")


# --------------------------------------------------------------------------------------------
# bad inputs: always ImageReadError naming the file and the reason
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CORRUPT_KINDS), ids=list(CORRUPT_KINDS))
def test_bad_input_raises_image_read_error_naming_the_file(corrupt_files, kind):
    path = corrupt_files[kind]
    with pytest.raises(ImageReadError) as info:
        read_any(path)
    err = info.value
    assert err.path == str(path)
    assert str(path) in str(err)
    assert CORRUPT_KINDS[kind] in str(err)
    assert isinstance(err, OSError)  # callers catching OSError see it too


@pytest.mark.parametrize(
    "kind",
    ["truncated_png", "bad_crc_png", "truncated_jpeg", "truncated_bmp", "text_named_png"],
    ids=["truncated_png", "bad_crc_png", "truncated_jpeg", "truncated_bmp", "text_named_png"],
)
def test_read_image_detects_damage_opencv_would_decode(corrupt_files, kind):
    path = corrupt_files[kind]
    with pytest.raises(ImageReadError, match=CORRUPT_KINDS[kind]):
        read_image(path)


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS Lossless Image Compression"),
        ("JPEGLSNearLossless_16.dcm", "JPEG-LS Lossy (Near-Lossless) Image Compression"),
        ("JPGExtended.dcm", "JPEG Extended (Process 2 and 4)"),
    ],
    ids=["jpeg-ls-lossless", "jpeg-ls-near-lossless", "jpeg-extended-12bit"],
)
def test_unsupported_dicom_compression_names_syntax_and_packages(name, syntax):
    path = pydicom_file(name)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    uid = ds.file_meta.TransferSyntaxUID
    if "JPEG-LS" in syntax and get_decoder(uid).is_available:
        pytest.skip("a JPEG-LS decoder is installed here, so this file decodes")
    with pytest.raises(ImageReadError) as info:
        read_dicom(path)
    message = str(info.value)
    assert str(path) in message
    assert syntax in message
    assert str(uid) in message
    assert "pylibjpeg-libjpeg" in message
    assert "python-gdcm" in message


# --------------------------------------------------------------------------------------------
# DICOM values
# --------------------------------------------------------------------------------------------

REAL_DICOMS = ["CT_small.dcm", "MR_small.dcm", "693_J2KI.dcm", "rtdose.dcm"]


@pytest.mark.parametrize("name", REAL_DICOMS, ids=REAL_DICOMS)
def test_read_dicom_agrees_with_pydicom_modality_lut(name):
    path = pydicom_file(name)
    ds = pydicom.dcmread(path)
    expected = apply_modality_lut(ds.pixel_array, ds)
    if ds.Modality == "RTDOSE":  # dose = stored value x DoseGridScaling (PS3.3 C.8.8.3)
        expected = expected.astype(np.float64) * float(ds.DoseGridScaling)
    got = read_dicom(path)
    assert got.pixels.dtype == np.float32
    assert_array_equal(got.pixels, np.asarray(expected).astype(np.float32))
    assert got.modality == ds.Modality
    assert got.source == str(path)


def test_ct_is_in_hounsfield_units_from_the_header(ct_path, ct_image):
    ds = pydicom.dcmread(ct_path)
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    raw = ds.pixel_array.astype(np.float64)
    assert_array_equal(ct_image.pixels, (raw * slope + intercept).astype(np.float32))
    assert ct_image.metadata["rescale_intercept"] == intercept


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MR_small.dcm", (600.0, 1600.0)),
        ("693_J2KI.dcm", (40.0, 100.0)),
        ("examples_overlay.dcm", (450.0, 790.0)),  # multi-valued: [450, 200] / [790, 443]
        ("CT_small.dcm", None),
    ],
    ids=["mr", "ct-512", "multi-valued", "no-window"],
)
def test_default_window_is_the_first_header_pair(name, expected):
    path = pydicom_file(name)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    got = read_dicom(path).window
    assert got == expected
    if expected is not None:
        first_center = ds.WindowCenter if ds["WindowCenter"].VM == 1 else ds.WindowCenter[0]
        assert got[0] == float(first_center)


@pytest.mark.parametrize("name", REAL_DICOMS, ids=REAL_DICOMS)
def test_spacing_comes_from_the_header(name):
    path = pydicom_file(name)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    got = read_dicom(path)
    in_plane = tuple(float(v) for v in ds.PixelSpacing)
    if got.pixels.ndim == 3:
        offsets = np.asarray(ds.GridFrameOffsetVector, dtype=float)
        assert got.spacing == (float(abs(offsets[1] - offsets[0])), *in_plane)
    else:
        assert got.spacing == in_plane


def test_multi_frame_dose_is_a_volume():
    path = pydicom_file("rtdose.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    dose = read_dicom(path)
    assert dose.pixels.shape == (int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    assert dose.is_volume
    assert dose.metadata["dose_units"] == str(ds.DoseUnits)


def test_metadata_is_json_safe_and_patient_free(ct_path, ct_image):
    ds = pydicom.dcmread(ct_path, stop_before_pixels=True)
    text = json.dumps(ct_image.metadata)
    patient_group = [str(elem.value) for elem in ds.group_dataset(0x0010)]
    identifiers = [
        *patient_group,  # PatientName, PatientID, birth date, sex, age...
        str(ds.get("InstitutionName", "")),
        str(ds.get("StudyDate", "")),
        str(ds.get("StudyInstanceUID", "")),
        str(ds.get("AccessionNumber", "")),
    ]
    assert str(ds.PatientName) in identifiers
    for value in identifiers:
        if len(value) > 2:  # one-letter values (sex "M") would match anything
            assert value not in text, value
    assert ct_image.metadata["transfer_syntax_uid"] == str(ds.file_meta.TransferSyntaxUID)


CR_MONOCHROME1 = "dicomdirtests/77654033/CR1/6154"


def test_monochrome1_is_inverted_for_display_and_recorded():
    path = pydicom_file("CT_small.dcm").parent / CR_MONOCHROME1
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    got = read_dicom(path)
    values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    # K from the header by hand: stored range 0..2**BitsStored-1 through slope/intercept
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    k = intercept + ((2 ** int(ds.BitsStored) - 1) * slope + intercept)
    assert got.metadata["photometric"] == "MONOCHROME1"
    assert got.metadata["inverted"] is True
    assert got.metadata["inversion_constant"] == pytest.approx(k)
    np.testing.assert_allclose(got.pixels, k - values, rtol=0, atol=1e-3)
    # what a conformant viewer shows (window, then invert) is what windowing our pixels shows
    center, width = float(ds.WindowCenter), float(ds.WindowWidth)
    conformant = 255 - window(values.astype(np.float32), center=center, width=width).astype(int)
    ours = window(got.pixels, center=got.window[0], width=got.window[1]).astype(int)
    assert np.abs(ours - conformant).max() <= 1
    assert got.window[1] == width


def test_monochrome1_copy_of_ct_small(tmp_path, ct_path, ct_image):
    ds = pydicom.dcmread(ct_path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    got = read_dicom(path)
    k = got.metadata["inversion_constant"]
    assert_array_equal(got.pixels, (k - ct_image.pixels.astype(np.float64)).astype(np.float32))
    assert ct_image.metadata.get("inverted") is None  # MONOCHROME2 is left alone


def test_color_dicom_becomes_bgr():
    path = pydicom_file("SC_rgb_small_odd.dcm")
    ds = pydicom.dcmread(path)
    got = read_dicom(path)
    assert got.metadata["layout"] == "color"
    assert_array_equal(got.pixels, ds.pixel_array[..., ::-1])
    assert got.window is None


# --------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------

NIFTIS = ["anatomical.nii", "standard.nii.gz", "reoriented_anat_moved.nii"]


@pytest.mark.parametrize("name", NIFTIS, ids=NIFTIS)
def test_nifti_spacing_and_shape_from_the_header(name):
    img = nib.load(NIBABEL_DATA / name)
    got = read_nifti(NIBABEL_DATA / name)
    canon = nib.as_closest_canonical(img)
    zx, zy, zz = (float(z) for z in canon.header.get_zooms()[:3])
    nx, ny, nz = canon.shape[:3]
    assert got.pixels.shape == (nz, ny, nx)
    assert got.spacing == (zz, zy, zx)
    assert got.pixels.dtype == np.float32
    assert got.metadata["original_orientation"] == "".join(nib.aff2axcodes(img.affine))


@pytest.mark.parametrize("name", NIFTIS, ids=NIFTIS)
def test_nifti_voxels_sit_where_the_file_says(name):
    """Each output voxel, mapped to world mm by metadata["affine"], lands on the voxel of the
    *original* file (its own affine, no reorientation) that holds the same value."""
    img = nib.load(NIBABEL_DATA / name)
    data = img.get_fdata(dtype=np.float32)
    got = read_nifti(NIBABEL_DATA / name)
    out_affine = np.asarray(got.metadata["affine"])
    rng = np.random.default_rng(0)
    idx = np.stack([rng.integers(0, n, 200) for n in got.pixels.shape], axis=1)
    world = out_affine @ np.c_[idx, np.ones(len(idx))].T
    orig = np.rint(np.linalg.inv(img.affine) @ world)[:3].astype(int).T
    assert_array_equal(got.pixels[tuple(idx.T)], data[tuple(orig.T)])


def test_nifti_layout_is_radiological(nifti_path):
    """Rows go anterior -> posterior, columns patient right -> left, slices up (RAS+ world)."""
    affine = np.asarray(read_nifti(nifti_path).metadata["affine"])
    z_dir, row_dir, col_dir = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    assert z_dir[2] > 0  # superior
    assert row_dir[1] < 0  # posterior
    assert col_dir[0] < 0  # towards the patient's left


def test_four_d_nifti_needs_a_frame():
    path = NIBABEL_DATA / "example4d.nii.gz"
    with pytest.raises(ImageReadError, match="pass frame=k") as info:
        read_any(path)
    assert str(path) in str(info.value)
    img = nib.as_closest_canonical(nib.load(path))
    got = read_nifti(path, frame=1)
    expected = img.get_fdata(dtype=np.float32)[..., 1].transpose(2, 1, 0)[:, ::-1, ::-1]
    assert_array_equal(got.pixels, expected)
    with pytest.raises(ImageReadError, match="out of range"):
        read_nifti(path, frame=2)


def test_path_type_errors():
    with pytest.raises(TypeError, match=r"str or pathlib\.Path"):
        read_any(b"\x89PNG")
    with pytest.raises(TypeError, match=r"str or pathlib\.Path"):
        read_image(12)
