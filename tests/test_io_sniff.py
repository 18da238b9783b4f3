"""m1vision.io: formats recognised by content, paths and dispatch (read_any)."""

from __future__ import annotations

import gzip
import shutil

import cv2
import numpy as np
import pydicom
import pytest
from numpy.testing import assert_array_equal
from test_io_write import _test_image

from m1vision.errors import (
    ImageReadError,
    InvalidTypeError,
)
from m1vision.io import (
    IMAGE_EXTENSIONS,
    has_image_extension,
    read_any,
    read_dicom,
    read_image,
    read_nifti,
    sniff_format,
    write_image,
)

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


def test_path_type_errors():
    with pytest.raises(TypeError, match=r"str or pathlib\.Path"):
        read_any(b"\x89PNG")
    with pytest.raises(TypeError, match=r"str or pathlib\.Path"):
        read_image(12)


def test_dicom_whose_preamble_holds_a_tiff_header_is_dicom_everywhere(ct_path):
    """CT_small.dcm's 128-byte preamble starts with a TIFF header (a dual DICOM/TIFF file):
    every place that tells formats apart checks the DICM marker first."""
    from m1vision.inference._models import _sniff

    assert ct_path.read_bytes()[:4] == b"II*\x00"
    assert sniff_format(ct_path) == "dicom"
    assert _sniff(ct_path) == "is a DICOM file"


@pytest.mark.parametrize("kind", ["nifti1", "nifti2"], ids=["nifti1", "nifti2"])
def test_nifti_dims_reads_dim_and_pixdim_as_stored(tmp_path, kind):
    import nibabel as nib

    from m1vision.io._sniff import nifti_dims

    cls = nib.Nifti1Image if kind == "nifti1" else nib.Nifti2Image
    img = cls(np.zeros((3, 4, 5), np.int16), np.diag([0.5, 0.75, 2.0, 1.0]))
    head = img.to_bytes()[:540]
    dims, pixdim = nifti_dims(head)
    assert dims[:4] == (3, 3, 4, 5)
    assert pixdim[1:4] == (0.5, 0.75, 2.0)
    assert nifti_dims(b"\x00" * 540) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("CT_small.dcm", True), ("ExplVR_LitEndNoMeta.dcm", None), ("README.txt", False)],
    ids=["dicm-marker", "preamble-less", "text"],
)
def test_dicom_kind(name, expected):
    from conftest import pydicom_file

    from m1vision.io._sniff import DICOM_HEAD, dicom_kind

    assert dicom_kind(pydicom_file(name).read_bytes()[:DICOM_HEAD]) is expected


@pytest.mark.parametrize(
    ("call", "fix"),
    [
        (lambda: has_image_extension(None), "Fix: pass its path"),
        (lambda: sniff_format(3), "Fix: pass its path"),
        (lambda: read_any(b"\x89PNG"), "Fix: pass the file's path; to decode an image in memory"),
        (lambda: read_image(np.zeros((4, 4), np.uint8)), "Fix: pass its path"),
    ],
    ids=["extension-none", "sniff-int", "read-bytes", "read-array"],
)
def test_a_path_of_another_type_names_the_argument_and_the_fix(call, fix):
    with pytest.raises(InvalidTypeError) as info:
        call()
    message = str(info.value)
    assert message.startswith("path must be a str or pathlib.Path"), message
    assert fix in message, message
