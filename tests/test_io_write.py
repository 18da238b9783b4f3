"""m1vision.io.write_image and read_image round trips: bit depth, channels, atomic writes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
    OutputExistsError,
)
from m1vision.io import (
    MedicalImage,
    read_any,
    read_image,
    write_image,
    write_nifti,
)

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


# The writers take the path first; a wrong type names the argument and the fix, and nothing
# is written.
WRONG_TYPES = {
    "image-swapped": (
        write_image,
        "x.png",
        lambda out: (np.zeros((4, 4), np.uint8), out),
        "path",
        "write_image(path, image)",
    ),
    "image-path-none": (
        write_image,
        "x.png",
        lambda out: (None, np.zeros((4, 4), np.uint8)),
        "path",
        "pathlib.Path(",
    ),
    "image-list": (
        write_image,
        "x.png",
        lambda out: (out, [[1, 2]]),
        "image",
        "numpy.asarray(image)",
    ),
    "nifti-swapped": (
        write_nifti,
        "v.nii.gz",
        lambda out: (np.zeros((2, 3, 4), np.float32), out),
        "path",
        "write_nifti(path, image)",
    ),
    "nifti-list": (write_nifti, "v.nii.gz", lambda out: (out, [[[1.0]]]), "image", "read_any"),
}


@pytest.mark.parametrize(
    ("writer", "name", "args", "argument", "fix"), WRONG_TYPES.values(), ids=WRONG_TYPES
)
def test_a_writer_given_wrong_types_names_the_argument_and_the_fix(
    tmp_path, writer, name, args, argument, fix
):
    with pytest.raises(InvalidTypeError) as info:
        writer(*args(tmp_path / name))
    message = str(info.value)
    assert message.startswith(f"{argument} must be"), message
    assert "Fix: " in message and fix in message, message
    assert list(tmp_path.iterdir()) == []
