"""Compressed DICOM in the default install: every transfer syntax m1vision promises decodes
through read_dicom, read_any and read_series, on real files of pydicom's wheel and on series
generated here, checked against the uncompressed original (lossless) or within a stated bound
(lossy), and against GDCM through SimpleITK (an independent decoder). What cannot be decoded
raises PixelDataError naming the file, the transfer syntax (name and UID) and a fix.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from conftest import pydicom_file
from numpy.testing import assert_array_equal
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGLossless,
    RLELossless,
    generate_uid,
)

from m1vision.errors import ImageReadError, PixelDataError
from m1vision.io import read_any, read_dicom, read_series
from m1vision.io._pixels import READ_TRANSFER_SYNTAXES, transfer_syntax_support


def gdcm_pixels(path) -> np.ndarray:
    """GDCM's decode (through SimpleITK), in modality units, color as BGR like m1vision."""
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float64)
    if arr.shape[0] == 1 and arr.ndim in (3, 4):  # one frame
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[..., ::-1]
    return arr


def jpeg_ls_near(path) -> int:
    """The NEAR parameter of a JPEG-LS stream's first scan (its error bound, T.87 A.2)."""
    ds = pydicom.dcmread(path)
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    sos = stream.index(b"\xff\xda")
    components = stream[sos + 4]
    return stream[sos + 5 + 2 * components]


# --------------------------------------------------------------------------------------------
# real files, lossless: equal to the uncompressed original
# --------------------------------------------------------------------------------------------

LOSSLESS = [
    ("MR_small_RLE.dcm", "MR_small.dcm", "RLE Lossless"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm", "JPEG 2000 Image Compression (Lossless Only)"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm", "JPEG-LS Lossless Image Compression"),
    (
        "SC_rgb_jpeg_gdcm.dcm",
        "SC_rgb_rle.dcm",
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
    ),
    ("SC_rgb_gdcm_KY.dcm", "SC_rgb_rle.dcm", "JPEG 2000 Image Compression"),
]


@pytest.mark.parametrize(
    ("name", "reference", "syntax"),
    LOSSLESS,
    ids=["rle", "jpeg2000-lossless", "jpeg-ls-lossless", "jpeg-lossless-sv1", "jpeg2000-rgb"],
)
def test_lossless_syntax_equals_the_uncompressed_original(name, reference, syntax):
    path = pydicom_file(name)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID.name == syntax
    got = read_dicom(path)
    want = read_dicom(pydicom_file(reference))
    assert got.pixels.dtype == want.pixels.dtype
    assert_array_equal(got.pixels, want.pixels)
    assert got.metadata["transfer_syntax"] == syntax
    assert_array_equal(read_any(path).pixels, got.pixels)


@pytest.mark.parametrize(
    "name",
    [
        "image_dfl.dcm",
        "693_J2KI.dcm",
        "JPEGLSNearLossless_08.dcm",
        "JPEGLSNearLossless_16.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
    ids=[
        "deflated",
        "jpeg2000-lossy",
        "jpeg-ls-near-8",
        "jpeg-ls-near-16",
        "jpeg-baseline",
        "jpeg-ls-lossless",
    ],
)
def test_decoded_like_gdcm(name):
    """pylibjpeg (libjpeg, OpenJPEG) and GDCM decode the same stream to the same values."""
    path = pydicom_file(name)
    assert_array_equal(read_dicom(path).pixels.astype(np.float64), gdcm_pixels(path))


def test_jpeg_extended_12_bit_within_one_level_of_gdcm():
    """12-bit JPEG Extended is lossy; two decoders' inverse DCTs round apart by at most 1."""
    path = pydicom_file("JPGExtended.dcm")
    got = read_dicom(path)
    assert got.metadata["transfer_syntax"] == "JPEG Extended (Process 2 and 4)"
    assert got.pixels.shape == (1024, 256)
    assert np.abs(got.pixels.astype(np.float64) - gdcm_pixels(path)).max() <= 1.0


# --------------------------------------------------------------------------------------------
# real files, lossy: within the bound the syntax itself states
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["SC_rgb_jls_lossy_line.dcm", "SC_rgb_jls_lossy_sample.dcm"], ids=["line", "sample"]
)
def test_jpeg_ls_near_lossless_within_its_near_bound(name):
    """JPEG-LS near-lossless guarantees |decoded - original| <= NEAR for every sample."""
    path = pydicom_file(name)
    near = jpeg_ls_near(path)
    assert near > 0  # really lossy
    got = read_dicom(path).pixels.astype(np.int64)
    original = read_dicom(pydicom_file("SC_rgb_rle.dcm")).pixels.astype(np.int64)
    error = np.abs(got - original)
    assert error.max() <= near
    assert error.max() > 0  # the bound is met, not trivially


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("SC_rgb_small_odd_jpeg.dcm", "SC_rgb_small_odd.dcm"),
        ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm"),
    ],
    ids=["odd-size", "dcmtk"],
)
def test_jpeg_baseline_within_eight_levels_of_the_original(name, reference):
    """8-bit JPEG baseline of these files: every sample within 8 of 255 levels (3 %)."""
    got = read_dicom(pydicom_file(name)).pixels.astype(np.int64)
    original = read_dicom(pydicom_file(reference)).pixels.astype(np.int64)
    assert got.shape == original.shape
    assert np.abs(got - original).max() <= 8


# --------------------------------------------------------------------------------------------
# generated files: J2K lossy, deflated, HTJ2K-labelled streams
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mr():
    return pydicom.dcmread(pydicom_file("MR_small.dcm"))


def test_generated_jpeg2000_lossy_within_five_percent_rms(mr, tmp_path):
    ds = copy.deepcopy(mr)
    ds.compress(JPEG2000, j2k_cr=[20])
    path = tmp_path / "lossy.dcm"
    ds.save_as(path)
    got = read_dicom(path).pixels.astype(np.float64)
    original = read_dicom(pydicom_file("MR_small.dcm")).pixels.astype(np.float64)
    rms = np.sqrt(np.mean((got - original) ** 2))
    assert 0 < rms <= 0.05 * np.ptp(original)
    assert_array_equal(got, gdcm_pixels(path))


def test_generated_deflated_equals_the_original(mr, tmp_path):
    ds = copy.deepcopy(mr)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    ds.save_as(path)
    assert path.stat().st_size < pydicom_file("MR_small.dcm").stat().st_size
    got = read_any(path)
    assert got.metadata["transfer_syntax"] == "Deflated Explicit VR Little Endian"
    assert_array_equal(got.pixels, read_dicom(pydicom_file("MR_small.dcm")).pixels)


@pytest.mark.parametrize(
    "uid", [HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K], ids=["lossless", "rpcl", "lossy"]
)
def test_htj2k_syntaxes_reach_a_decoder(mr, tmp_path, uid):
    """A Part 1 (non-HT) reversible JPEG 2000 codestream, which HTJ2K decoders also read,
    labelled with each HTJ2K syntax reaches pylibjpeg-openjpeg through read_dicom. Real HT
    codestreams (OpenJPEG's HT block decoder) are tested in test_io_htj2k.py."""
    ds = copy.deepcopy(mr)
    ds.compress(JPEG2000Lossless)
    ds.file_meta.TransferSyntaxUID = uid
    path = tmp_path / "htj2k.dcm"
    ds.save_as(path)
    got = read_dicom(path)
    assert got.metadata["transfer_syntax_uid"] == str(uid)
    assert_array_equal(got.pixels, read_dicom(pydicom_file("MR_small.dcm")).pixels)


def test_jpeg_lossless_process_14_equals_the_original(tmp_path):
    """Process 14 (UID .57) allows any predictor; the real SV1 stream of pydicom's file uses
    predictor 1, so it is also a conformant Process 14 stream: labelled so, it decodes the same."""
    ds = pydicom.dcmread(pydicom_file("SC_rgb_jpeg_gdcm.dcm"))
    ds.file_meta.TransferSyntaxUID = JPEGLossless
    path = tmp_path / "p14.dcm"
    ds.save_as(path)
    got = read_dicom(path)
    assert got.metadata["transfer_syntax"] == "JPEG Lossless, Non-Hierarchical (Process 14)"
    assert_array_equal(got.pixels, read_dicom(pydicom_file("SC_rgb_rle.dcm")).pixels)


# --------------------------------------------------------------------------------------------
# a series of compressed slices, generated
# --------------------------------------------------------------------------------------------

SERIES_SYNTAXES = {
    "rle": [RLELossless],
    "jpeg2000-lossless": [JPEG2000Lossless],
    "deflated": [DeflatedExplicitVRLittleEndian],
    "mixed": [
        RLELossless,
        JPEG2000Lossless,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRLittleEndian,
    ],
}


def write_series(folder, mr, syntaxes, n=6):
    """n axial slices 2.5 mm apart from MR_small's pixels (each slice different), the
    k-th written in syntaxes[k % len(syntaxes)]."""
    folder.mkdir()
    series_uid = generate_uid(entropy_srcs=["m1vision-codec-series"])
    base = mr.pixel_array.astype(np.int16)
    for k in range(n):
        ds = copy.deepcopy(mr)
        ds.PixelData = (base + np.int16(7 * k)).tobytes()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["m1vision-codec-slice", str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, 2.5 * k]
        syntax = syntaxes[k % len(syntaxes)]
        if syntax in (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian):
            ds.file_meta.TransferSyntaxUID = syntax
        else:
            ds.compress(syntax)
        ds.save_as(folder / f"slice{k:02d}.dcm")
    return folder


@pytest.mark.parametrize("kind", list(SERIES_SYNTAXES), ids=list(SERIES_SYNTAXES))
def test_compressed_series_reads_like_the_uncompressed_one(mr, tmp_path, kind):
    plain = read_series(write_series(tmp_path / "plain", mr, [ExplicitVRLittleEndian]))
    packed = read_series(write_series(tmp_path / "packed", mr, SERIES_SYNTAXES[kind]))
    assert packed.shape == (6, 64, 64)
    assert_array_equal(packed.pixels, plain.pixels)
    assert packed.metadata["affine"] == plain.metadata["affine"]
    assert packed.spacing == plain.spacing
    assert packed.metadata["irregularities"] == []


def test_compressed_series_with_series_argument_decodes_late(mr, tmp_path):
    """series= given: the files are decoded after the series is picked (another code path)."""
    folder = write_series(tmp_path / "packed", mr, [JPEG2000Lossless])
    plain = read_series(write_series(tmp_path / "plain", mr, [ExplicitVRLittleEndian]))
    assert_array_equal(read_series(folder, series=0).pixels, plain.pixels)


# --------------------------------------------------------------------------------------------
# what cannot be decoded: PixelDataError with the file, the syntax by name and UID, a fix
# --------------------------------------------------------------------------------------------


def test_non_conformant_real_stream_names_file_syntax_and_a_working_fix():
    """pydicom's JPEG-lossy.dcm is a known non-conformant 12-bit stream every decoder here
    refuses: the fix is another decoder or a fresh export, not a package already installed."""
    path = pydicom_file("JPEG-lossy.dcm")
    with pytest.raises(PixelDataError) as info:
        read_dicom(path)
    err = info.value
    text = str(err)
    assert str(path) in text
    assert "JPEG Extended (Process 2 and 4)" in text
    assert "1.2.840.10008.1.2.4.51" in text
    assert "gdcmconv --raw" in text
    assert "pip install" not in text  # the decoders are installed already
    assert err.transfer_syntax_uid == "1.2.840.10008.1.2.4.51"
    assert isinstance(err, ImageReadError)


def cut_stream(src, dst, fraction=0.5):
    """A copy of src whose first frame's compressed stream is cut after ``fraction``."""
    ds = pydicom.dcmread(src)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: int(len(frame) * fraction)]])
    ds.save_as(dst)
    return dst


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90"),
        ("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80"),
        ("SC_rgb_jpeg_gdcm.dcm", "1.2.840.10008.1.2.4.70"),
        ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),
    ],
    ids=["jpeg2000", "jpeg-ls", "jpeg-lossless-sv1", "rle"],
)
def test_cut_stream_is_refused_not_decoded_partly(tmp_path, name, syntax):
    """libjpeg and OpenJPEG return a partial image for a cut stream without an error: the
    missing end marker is caught before decoding."""
    path = cut_stream(pydicom_file(name), tmp_path / "cut.dcm")
    with pytest.raises(PixelDataError) as info:
        read_dicom(path)
    text = str(info.value)
    assert str(path) in text
    assert syntax in text
    assert pydicom.uid.UID(syntax).name in text
    assert "Fix:" in text


def test_unknown_transfer_syntax_names_the_uid_and_the_export_fix(mr, tmp_path):
    ds = copy.deepcopy(mr)
    ds.compress(RLELossless)
    private = UID("1.2.826.0.1.3680043.9.9999.77")
    ds.file_meta.TransferSyntaxUID = private
    path = tmp_path / "private.dcm"
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    with pytest.raises(PixelDataError) as info:
        read_dicom(path)
    text = str(info.value)
    assert str(path) in text
    assert f"unknown (UID {private})" in text
    assert "Explicit VR Little Endian (UID 1.2.840.10008.1.2.1)" in text


def test_missing_decoder_names_packages_that_really_decode_it(tmp_path):
    """With pydicom's JPEG 2000 plugins removed (pydicom's own Decoder.remove_plugin, in a
    subprocess), the fix names pylibjpeg-openjpeg, which decodes the file once present."""
    path = pydicom_file("MR_small_jp2klossless.dcm")
    script = (
        "import json, sys\n"
        "from pydicom.pixels import get_decoder\n"
        "from pydicom.uid import JPEG2000Lossless\n"
        "d = get_decoder(JPEG2000Lossless)\n"
        "for p in list(d.available_plugins): d.remove_plugin(p)\n"
        "from m1vision.io import read_dicom\n"
        "try:\n"
        "    read_dicom(sys.argv[1])\n"
        "except Exception as e:\n"
        "    print(json.dumps([type(e).__name__, str(e)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    kind, text = json.loads(out.stdout)
    assert kind == "PixelDataError"
    assert "pylibjpeg-openjpeg" in text
    assert "1.2.840.10008.1.2.4.90" in text
    assert str(path) in text
    # the named packages are the ones that decode it here
    assert_array_equal(read_dicom(path).pixels, read_dicom(pydicom_file("MR_small.dcm")).pixels)


def test_read_series_raises_what_read_dicom_raises_for_the_file(mr, tmp_path):
    folder = write_series(tmp_path / "series", mr, [JPEG2000Lossless])
    bad = folder / "slice03.dcm"
    cut_stream(bad, bad)
    with pytest.raises(PixelDataError) as one:
        read_dicom(bad)
    with pytest.raises(PixelDataError) as many:
        read_series(folder)
    assert str(many.value) == str(one.value)
    with pytest.raises(PixelDataError) as late:  # series= given: decoded after the pick
        read_series(folder, series=0)
    assert str(late.value) == str(one.value)


@pytest.mark.parametrize("series", [None, 0], ids=["one-series", "series-given"])
def test_lenient_read_series_records_the_undecodable_slice(mr, tmp_path, series):
    folder = write_series(tmp_path / "series", mr, [RLELossless])
    bad = folder / "slice03.dcm"
    cut_stream(bad, bad, fraction=0.3)
    vol = read_series(folder, strict=False, series=series)
    kinds = {n["kind"]: n for n in vol.metadata["irregularities"]}
    assert kinds["undecodable slices"]["dropped_files"] == ["slice03.dcm"]
    # its position is kept as an inserted slice, so the geometry stays true
    assert "missing slices" in kinds
    assert vol.shape == (6, 64, 64)
    plain = read_series(write_series(tmp_path / "plain", mr, [ExplicitVRLittleEndian]))
    keep = [0, 1, 2, 4, 5]
    assert_array_equal(vol.pixels[keep], plain.pixels[keep])


# --------------------------------------------------------------------------------------------
# what this environment decodes
# --------------------------------------------------------------------------------------------


def test_every_promised_syntax_decodes_in_the_default_install():
    table = transfer_syntax_support()
    assert [r["uid"] for r in table] == [u for u, _, _ in READ_TRANSFER_SYNTAXES]
    assert [r["name"] for r in table if not r["decodes"]] == []


def test_doctor_lists_the_decoded_syntaxes():
    out = subprocess.run(
        [sys.executable, "-m", "m1vision", "doctor", "--no-tensorflow", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    info = json.loads(out.stdout)
    check = next(c for c in info["checks"] if c["name"] == "dicom_codecs")
    assert check["status"] == "ok"
    for family in ("JPEG-LS", "JPEG 2000", "HTJ2K", "RLE", "Deflated", "lossless SV1"):
        assert family in check["value"]
    rows = info["dicom_codecs"]["transfer_syntaxes"]
    htj2k = next(r for r in rows if r["uid"] == str(HTJ2KLossless))
    assert htj2k["decodes"] and "pylibjpeg" in htj2k["plugins"]


def test_pixel_data_error_pickles_with_its_syntax():
    import pickle

    err = PixelDataError(
        "a.dcm", "why", transfer_syntax="RLE Lossless", transfer_syntax_uid="1.2.840.10008.1.2.5"
    )
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.transfer_syntax_uid) == (
        PixelDataError,
        str(err),
        "1.2.840.10008.1.2.5",
    )


def test_jpeg_ls_near_parameter_is_read_from_the_stream():
    """The helper above reads NEAR from the SOS marker: 0 for a lossless stream."""
    assert jpeg_ls_near(pydicom_file("MR_small_jpeg_ls_lossless.dcm")) == 0


# --------------------------------------------------------------------------------------------
# the batch engine reads compressed inputs like uncompressed ones
# --------------------------------------------------------------------------------------------


def test_batch_run_over_compressed_inputs_equals_the_uncompressed_run(mr, tmp_path):
    import shutil

    from m1vision.pipeline import Canny, GaussianBlur, Pipeline, Window

    pipeline = Pipeline(
        [Window(center=600, width=1600), GaussianBlur(ksize=3), Canny(low=50, high=150)]
    )
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir()
    packed.mkdir()
    write_series(plain / "mr_series", mr, [ExplicitVRLittleEndian])
    write_series(packed / "mr_series", mr, [JPEG2000Lossless, RLELossless])
    shutil.copy(pydicom_file("MR_small.dcm"), plain / "mr.dcm")
    shutil.copy(pydicom_file("MR_small_jpeg_ls_lossless.dcm"), packed / "mr.dcm")
    cut = cut_stream(pydicom_file("MR_small_jp2klossless.dcm"), packed / "cut.dcm")
    ds = pydicom.dcmread(cut)
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["m1vision-cut"])  # its own series
    ds.save_as(cut)

    reference = pipeline.run(plain, tmp_path / "out_plain", progress=False)
    report = pipeline.run(packed, tmp_path / "out_packed", progress=False)
    assert {i.key: i.status for i in reference.items} == {"mr.dcm": "ok", "mr_series": "ok"}
    status = {i.key: i.status for i in report.items}
    assert status == {"cut.dcm": "failed", "mr.dcm": "ok", "mr_series": "ok"}
    error = next(i.error for i in report.items if i.key == "cut.dcm")
    assert error.startswith("PixelDataError: ") and "1.2.840.10008.1.2.4.90" in error
    for out in ("mr_series.nii.gz", "mr.png"):
        got = read_any(tmp_path / "out_packed" / out)
        want = read_any(tmp_path / "out_plain" / out)
        assert_array_equal(getattr(got, "pixels", got), getattr(want, "pixels", want))
