"""Volume inputs that fail clearly: each degenerate input gets a documented error from
m1vision.errors naming the file and the fix, before any large allocation; lenient series
reading never invents a tilt or spacing and never drops a slice without recording it.

Every bad file is generated here from a good one (a CT series of m1vision.synthetic, pydicom's
MR_small, a NIfTI written by nibabel, a PNG and BMP written by OpenCV). "Before any large
allocation" is measured with tracemalloc (NumPy reports its buffers to it): the peak stays
far below the size the header declares.
"""

from __future__ import annotations

import copy
import gzip
import struct
import tracemalloc

import cv2
import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import pydicom_file
from numpy.testing import assert_array_equal
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEG2000Lossless

from m1vision.errors import (
    ImageReadError,
    InvalidImageError,
    PixelDataError,
    SeriesGeometryError,
)
from m1vision.io import (
    MedicalImage,
    list_series,
    read_any,
    read_dicom,
    read_image,
    read_nifti,
    read_series,
)
from m1vision.synthetic import write_ct_series

SHAPE = (6, 16, 16)
SPACING = (2.5, 0.8, 0.7)
#: A declared image of this many bytes or more must never be allocated.
HUGE = 10**11
#: Peak Python/NumPy memory a refused file may cost (bytes).
SMALL_PEAK = 20 * 2**20


def peak_while(func, *args, **kwargs):
    """(the exception func raises, the tracemalloc peak in bytes while it ran)."""
    tracemalloc.start()
    try:
        func(*args, **kwargs)
    except Exception as exc:
        _, peak = tracemalloc.get_traced_memory()
        return exc, peak
    finally:
        tracemalloc.stop()
    raise AssertionError(f"{func.__name__} raised nothing")


def series(tmp_path, name="series"):
    gen = write_ct_series(tmp_path / name, shape=SHAPE, spacing=SPACING)
    return gen.folder, sorted(gen.files)


def rewrite(path, **elements):
    ds = pydicom.dcmread(path)
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.save_as(path)


# --------------------------------------------------------------------------------------------
# DICOM series: degenerate ImageOrientationPatient
# --------------------------------------------------------------------------------------------

DEGENERATE_IOP = {
    "zero-row": ([0, 0, 0, 0, 1, 0], "row direction [0, 0, 0] has zero length"),
    "zero-column": ([1, 0, 0, 0, 0, 0], "column direction [0, 0, 0] has zero length"),
    "non-orthogonal": ([1, 0, 0, 0.70710678, 0.70710678, 0], "45 degrees apart"),
    "parallel": ([0, 1, 0, 0, 1, 0], "0 degrees apart"),
}


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
@pytest.mark.parametrize("kind", list(DEGENERATE_IOP), ids=list(DEGENERATE_IOP))
def test_degenerate_orientation_in_every_slice_is_refused(tmp_path, kind, strict):
    """No slice normal exists: neither mode may derive a spacing, order or tilt from it."""
    iop, phrase = DEGENERATE_IOP[kind]
    folder, files = series(tmp_path)
    for f in files:
        rewrite(f, ImageOrientationPatient=iop)
    with pytest.raises(SeriesGeometryError) as info:
        read_series(folder, strict=strict)
    text = str(info.value)
    assert phrase in text
    assert str(folder) in text
    assert files[0].name in info.value.files
    assert "Fix:" in text
    assert list_series(folder)[0].orientation == "degenerate"


def test_one_degenerate_slice_strict_names_it(tmp_path):
    folder, files = series(tmp_path)
    rewrite(files[2], ImageOrientationPatient=[1, 0, 0, 0, 0, 0])
    with pytest.raises(SeriesGeometryError) as info:
        read_series(folder)
    assert info.value.files == (files[2].name,)
    assert "strict=False" in info.value.fix


def test_one_degenerate_slice_lenient_is_recorded_and_no_tilt_invented(tmp_path):
    folder, files = series(tmp_path)
    good = read_series(folder)
    rewrite(files[2], ImageOrientationPatient=[1, 0, 0, 0.70710678, 0.70710678, 0])
    vol = read_series(folder, strict=False)
    kinds = {n["kind"]: n for n in vol.metadata["irregularities"]}
    assert kinds["degenerate orientation"]["dropped_files"] == [files[2].name]
    assert "gantry_tilt_deg" not in vol.metadata
    assert vol.spacing == good.spacing
    assert vol.metadata["affine"] == good.metadata["affine"]
    assert vol.shape == good.shape  # its position is kept, filled and recorded
    assert "missing slices" in kinds


# --------------------------------------------------------------------------------------------
# DICOM series: an unreadable member
# --------------------------------------------------------------------------------------------


def cut_header(path):
    """Cut a slice inside its image pixel module, before the pixel data (pydicom then
    parses the rest quietly: the classic 'shorter volume' case)."""
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xe0\x7f\x10\x00")])  # the PixelData tag


def garble(path):
    """A slice whose data set starts with a sequence of garbage pydicom cannot parse."""
    data = path.read_bytes()
    (meta_length,) = struct.unpack("<I", data[140:144])  # (0002,0000) group length
    start = 144 + meta_length
    path.write_bytes(
        data[:start] + b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\x12\x34" * 40
    )


@pytest.mark.parametrize("damage", [cut_header, garble], ids=["cut-before-pixels", "garbled"])
def test_unreadable_slice_strict_raises_naming_it(tmp_path, damage):
    folder, files = series(tmp_path)
    damage(files[3])
    with pytest.raises(ImageReadError) as info:
        read_series(folder)
    text = str(info.value)
    assert str(files[3]) in text
    assert "strict=False" in text
    assert "Fix:" in text


@pytest.mark.parametrize("damage", [cut_header, garble], ids=["cut-before-pixels", "garbled"])
def test_unreadable_slice_lenient_is_recorded_never_dropped_silently(tmp_path, damage):
    folder, files = series(tmp_path)
    good = read_series(folder)
    damage(files[3])
    vol = read_series(folder, strict=False)
    kinds = {n["kind"]: n for n in vol.metadata["irregularities"]}
    assert kinds["unreadable files"]["dropped_files"] == [files[3].name]
    assert vol.shape == good.shape
    assert vol.metadata["affine"] == good.metadata["affine"]
    keep = [k for k in range(SHAPE[0]) if k not in kinds["missing slices"]["inserted_slices"]]
    assert len(keep) == SHAPE[0] - 1
    assert_array_equal(vol.pixels[keep], good.pixels[keep])


def test_cut_slice_alone_reads_as_cut_not_as_an_object_without_an_image(tmp_path):
    _, files = series(tmp_path)
    cut_header(files[0])
    with pytest.raises(ImageReadError, match="cut off or damaged"):
        read_dicom(files[0])


# --------------------------------------------------------------------------------------------
# declared image size against the pixel data, before allocating
# --------------------------------------------------------------------------------------------


@pytest.fixture
def mr(tmp_path):
    return pydicom.dcmread(pydicom_file("MR_small.dcm"))


def huge_native(mr, path):
    ds = copy.deepcopy(mr)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 100  # 720 GB declared
    ds.save_as(path)
    return path


def huge_frames_compressed(mr, path):
    ds = copy.deepcopy(mr)
    ds.compress(JPEG2000Lossless)
    ds.NumberOfFrames = 5000  # one fragment, 5000 frames declared
    ds.Rows, ds.Columns = 8192, 8192
    ds.save_as(path)
    return path


def huge_rows_compressed(mr, path):
    ds = copy.deepcopy(mr)
    ds.compress(JPEG2000Lossless)
    ds.Rows, ds.Columns = 60000, 60000  # the stream says 64 x 64
    ds.save_as(path)
    return path


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (huge_native, "the pixel data hold 8,192 bytes"),
        (huge_frames_compressed, "at most 1 frame(s)"),
        (huge_rows_compressed, "stream is 64 x 64 pixels"),
    ],
    ids=["native", "compressed-frames", "compressed-rows"],
)
def test_declared_size_far_above_the_data_is_refused_before_allocating(mr, tmp_path, make, phrase):
    path = make(mr, tmp_path / "huge.dcm")
    err, peak = peak_while(read_dicom, path)
    assert isinstance(err, PixelDataError)
    assert phrase in str(err)
    assert str(path) in str(err)
    assert "Fix:" in str(err)
    assert peak < SMALL_PEAK


def test_series_of_huge_declared_slices_is_refused_before_allocating(tmp_path):
    folder, files = series(tmp_path)
    for f in files:
        rewrite(f, Rows=60000, Columns=60000)
    err, peak = peak_while(read_series, folder, strict=False)
    assert isinstance(err, PixelDataError)
    assert "60000" in str(err)
    assert peak < SMALL_PEAK
    # a single one among good slices: strict names it, lenient records it
    folder, files = series(tmp_path, "one")
    rewrite(files[1], Rows=60000, Columns=60000)
    with pytest.raises(PixelDataError) as info:
        read_series(folder)
    assert str(files[1]) in str(info.value)
    vol = read_series(folder, strict=False)
    kinds = {n["kind"]: n for n in vol.metadata["irregularities"]}
    assert kinds["undecodable slices"]["dropped_files"] == [files[1].name]
    assert vol.shape == SHAPE


def test_frame_count_above_the_data_in_a_cut_multiframe(mr, tmp_path):
    ds = copy.deepcopy(mr)
    ds.compress(JPEG2000Lossless)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame, frame])
    ds.NumberOfFrames = 3
    path = tmp_path / "frames.dcm"
    ds.save_as(path)
    with pytest.raises(PixelDataError, match="at most 2 frame"):
        read_dicom(path)


# --------------------------------------------------------------------------------------------
# NIfTI: empty axes, impossible sizes, singular geometry
# --------------------------------------------------------------------------------------------


def nifti(path, shape=(4, 5, 6), affine=None, **header):
    img = nib.Nifti1Image(
        np.arange(np.prod(shape), dtype=np.int16).reshape(shape),
        np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine,
    )
    for key, value in header.items():
        img.header[key] = value
    nib.save(img, path)
    return path


def patch_dim(path, axis, value):
    """Set dim[axis] of a NIfTI-1 file's header in place (gzip or not)."""
    data = path.read_bytes()
    packed = data.startswith(b"\x1f\x8b")
    raw = bytearray(gzip.decompress(data) if packed else data)
    struct.pack_into("<h", raw, 40 + 2 * axis, value)
    path.write_bytes(gzip.compress(bytes(raw), mtime=0) if packed else bytes(raw))
    return path


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"], ids=["nii", "nii-gz"])
@pytest.mark.parametrize("axis", [1, 2, 3], ids=["x", "y", "z"])
def test_nifti_zero_dimension_is_refused(tmp_path, axis, suffix):
    path = patch_dim(nifti(tmp_path / f"empty{suffix}"), axis, 0)
    with pytest.raises(ImageReadError) as info:
        read_nifti(path)
    text = str(info.value)
    assert "zero-length axis" in text
    assert str(path) in text
    assert "Fix:" in text
    with pytest.raises(ImageReadError, match="zero-length axis"):
        read_any(path)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"], ids=["nii", "nii-gz"])
def test_nifti_declaring_far_more_voxels_than_its_bytes_is_refused_before_allocating(
    tmp_path, suffix
):
    path = nifti(tmp_path / f"huge{suffix}")
    for axis in (1, 2, 3):
        patch_dim(path, axis, 30000)  # 27e12 voxels of int16 declared
    err, peak = peak_while(read_nifti, path)
    assert isinstance(err, ImageReadError)
    assert "(30000, 30000, 30000)" in str(err)
    assert "truncated or its header is wrong" in str(err)
    assert peak < SMALL_PEAK


SINGULAR = {
    "sform-zero-axis": ({"sform": np.diag([2.0, 0.0, 3.0, 1.0])}, "sform (sform_code 1)"),
    "sform-nan": ({"sform": np.diag([2.0, np.nan, 3.0, 1.0])}, "not a finite 4x4 matrix"),
    "sform-rank-2": (
        {"sform": np.array([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])},
        "singular",
    ),
    "qform-zero-pixdim": ({"qform": True, "pixdim": (1.0, 2.0, 0.0, 3.0)}, "(2.0, 0.0, 3.0)"),
    "no-form-zero-pixdim": ({"pixdim": (1.0, 0.0, 2.0, 3.0)}, "(0.0, 2.0, 3.0)"),
    "sform-nan-pixdim": (
        {"sform": np.diag([2.0, 2.0, 3.0, 1.0]), "pixdim": (1.0, np.nan, 2.0, 3.0)},
        "non-finite",
    ),
}


def singular_nifti(path, spec):
    """A NIfTI-1 file whose header fields are patched in place (nibabel's writer would
    replace a degenerate affine by its own)."""
    nib.save(nib.Nifti1Image(np.ones((4, 5, 6), np.int16), np.diag([2.0, 2.0, 3.0, 1.0])), path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<hh", raw, 252, 1 if spec.get("qform") else 0, 1 if "sform" in spec else 0)
    if "sform" in spec:  # srow_x, srow_y, srow_z
        struct.pack_into("<12f", raw, 280, *np.asarray(spec["sform"], np.float32)[:3].ravel())
    if "pixdim" in spec:
        struct.pack_into("<4f", raw, 76, *spec["pixdim"])
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("kind", list(SINGULAR), ids=list(SINGULAR))
def test_nifti_singular_geometry_is_refused(tmp_path, kind):
    spec, phrase = SINGULAR[kind]
    path = singular_nifti(tmp_path / "singular.nii", spec)
    with pytest.raises(ImageReadError) as info:
        read_nifti(path)
    text = str(info.value)
    assert phrase in text
    assert str(path) in text
    assert "set_sform" in text  # the fix


def test_nifti_singular_geometry_fix_from_the_message_works(tmp_path):
    path = singular_nifti(tmp_path / "singular.nii", SINGULAR["sform-zero-axis"][0])
    img = nib.load(path)
    a = np.diag([2.0, 2.0, 3.0, 1.0])
    img.set_sform(a, code=1)
    img.set_qform(a, code=1)
    nib.save(img, tmp_path / "fixed.nii.gz")
    assert read_nifti(tmp_path / "fixed.nii.gz").spacing == (3.0, 2.0, 2.0)


# --------------------------------------------------------------------------------------------
# PNG / BMP / TIFF: empty or impossible declared sizes
# --------------------------------------------------------------------------------------------


def png_with_size(path, width, height):
    _, buf = cv2.imencode(".png", np.zeros((8, 8), np.uint16))
    data = bytearray(buf.tobytes())
    struct.pack_into(">II", data, 16, width, height)
    import zlib

    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # IHDR CRC
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("size", "phrase"),
    [
        ((0, 8), "empty image of 0 x 8"),
        ((8, 0), "empty image of 8 x 0"),
        ((60000, 60000), "more than its"),
    ],
    ids=["zero-width", "zero-height", "huge"],
)
def test_png_declared_size_is_checked_before_decoding(tmp_path, size, phrase):
    path = png_with_size(tmp_path / "bad.png", *size)
    err, peak = peak_while(read_image, path)
    assert isinstance(err, ImageReadError)
    assert phrase in str(err)
    assert str(path) in str(err)
    assert peak < SMALL_PEAK


@pytest.mark.parametrize(
    ("patch", "phrase"),
    [((18, "<i", 0), "image of 0 x"), ((22, "<i", 40000), "truncated BMP")],
    ids=["zero-width", "taller-than-file"],
)
def test_bmp_declared_size_is_checked_before_decoding(tmp_path, patch, phrase):
    _, buf = cv2.imencode(".bmp", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buf.tobytes())
    offset, fmt, value = patch
    struct.pack_into(fmt, data, offset, value)
    path = tmp_path / "bad.bmp"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=phrase):
        read_image(path)


def tiff_with_size(path, width, height, compression, pixels=None):
    """An 8x8 16-bit TIFF (``pixels``, zeros by default) written by OpenCV whose IFD then
    declares width x height."""
    params = [cv2.IMWRITE_TIFF_COMPRESSION, compression]
    pixels = np.zeros((8, 8), np.uint16) if pixels is None else pixels
    _, buf = cv2.imencode(".tif", pixels, params)
    data = bytearray(buf.tobytes())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for k in range(count):
        at = ifd + 2 + 12 * k
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            struct.pack_into("<H" if kind == 3 else "<I", data, at + 8, (width, height)[tag - 256])
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("size", "compression", "phrase"),
    [
        ((0, 8), 1, "empty image of 0 x 8"),
        ((60000, 60000), 1, "truncated TIFF"),
        ((60000, 60000), 5, "truncated TIFF"),
    ],
    ids=["zero-width", "huge-uncompressed", "huge-lzw"],
)
def test_tiff_declared_size_is_checked_before_decoding(tmp_path, size, compression, phrase):
    path = tiff_with_size(tmp_path / "bad.tif", *size, compression)
    err, peak = peak_while(read_image, path)
    assert isinstance(err, ImageReadError)
    assert phrase in str(err)
    assert str(path) in str(err)
    assert peak < SMALL_PEAK


@pytest.mark.parametrize("compression", [1, 5], ids=["uncompressed", "lzw"])
def test_tiff_size_check_passes_whole_tiffs(tmp_path, compression):
    pixels = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
    path = tiff_with_size(tmp_path / f"ok{compression}.tif", 8, 8, compression, pixels)
    np.testing.assert_array_equal(read_image(path), pixels)


# --------------------------------------------------------------------------------------------
# predict_volume on an empty volume
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(0, 8, 8), (3, 0, 8), (3, 8, 0)], ids=["z", "rows", "cols"])
def test_predict_volume_on_an_empty_volume(shape):
    import keras

    from m1vision.inference import Predictor

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    volume = MedicalImage(np.zeros(shape, np.float32), source="/data/empty.nii.gz")
    with pytest.raises(InvalidImageError) as info:
        Predictor(model, device="cpu").predict_volume(volume)
    assert str(shape) in str(info.value)
    assert "/data/empty.nii.gz" in str(info.value)


# --------------------------------------------------------------------------------------------
# the batch engine's volume input kinds report the same errors, one item each
# --------------------------------------------------------------------------------------------


def test_batch_volume_inputs_fail_with_the_documented_errors(mr, tmp_path):
    from m1vision.pipeline import GaussianBlur, Pipeline, Window

    root = tmp_path / "scans"
    root.mkdir()
    patch_dim(nifti(root / "empty.nii.gz"), 3, 0)
    huge_native(mr, root / "huge.dcm")
    _, files = series(root, "tilted")
    for f in files:
        rewrite(f, ImageOrientationPatient=[1, 0, 0, 0.70710678, 0.70710678, 0])
    write_ct_series(root / "good", shape=SHAPE, spacing=SPACING)
    out = tmp_path / "out"
    report = Pipeline([Window(center=40, width=400), GaussianBlur(ksize=3)]).run(
        root, out, progress=False
    )
    errors = {i.key: (i.status, (i.error or "").split(":")[0]) for i in report.items}
    assert errors == {
        "empty.nii.gz": ("failed", "ImageReadError"),
        "good": ("ok", ""),
        "huge.dcm": ("failed", "PixelDataError"),
        "tilted": ("failed", "SeriesGeometryError"),
    }
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith(("batch_", "m1")))
    assert written == ["good.nii.gz"]
