"""m1vision.io.read_dicom on real files: modality LUT, windows, spacing, MONOCHROME1, color."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from conftest import pydicom_file
from numpy.testing import assert_array_equal
from pydicom.pixels import apply_modality_lut

from m1vision.io import (
    read_dicom,
)
from m1vision.preprocess import window

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
