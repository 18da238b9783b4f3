"""m1vision.preprocess: the dtype policy, the math, no mutation, and every bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from m1vision import preprocess as pp
from m1vision._checks import INTERPOLATIONS
from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
    M1VisionError,
    MemoryBudgetError,
)

DTYPES = [np.uint8, np.uint16, np.int16, np.float32, np.float64]
SHAPES = [(64, 64), (48, 80), (64, 64, 3)]


def make_image(dtype, shape, seed=0):
    """A deterministic image with structure (a bright square on a gradient) plus noise."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    base = np.linspace(0.0, 0.3, w)[None, :] * np.ones((h, 1))
    base[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] += 0.6
    base += rng.normal(0, 0.02, size=(h, w))
    base = np.clip(base, 0, 1)
    if len(shape) == 3:
        base = np.stack([base, base * 0.9, base * 0.8], axis=2)
    if dtype in (np.float32, np.float64):
        return (base * 1000 - 500).astype(dtype)  # HU-like
    if dtype == np.int16:
        return (base * 3000 - 1000).astype(np.int16)
    info = np.iinfo(dtype)
    return (base * info.max).astype(dtype)


def dtype_id(d):
    return np.dtype(d).name


# ---------------------------------------------------------------- no mutation, any dtype
FUNCTIONS = {
    "to_gray": lambda x: pp.to_gray(x),
    "to_bgr": lambda x: pp.to_bgr(x),
    "to_uint8": lambda x: pp.to_uint8(x),
    "to_uint8_percentile": lambda x: pp.to_uint8(x, mode="percentile"),
    "window": lambda x: pp.window(x, center=100, width=400),
    "gaussian_blur": lambda x: pp.gaussian_blur(x, ksize=5, sigma=1.2),
    "canny": lambda x: pp.canny(x, low=30, high=90),
    "auto_canny": lambda x: pp.auto_canny(x).edges,
    "clahe": lambda x: pp.clahe(x),
    "resize": lambda x: pp.resize(x, size=(32, 40)),
    "normalize_unit": lambda x: pp.normalize(x, mode="unit"),
    "normalize_imagenet": lambda x: pp.normalize(x, mode="imagenet"),
}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_accepts_dtype_and_never_mutates_input(name, dtype, shape):
    image = make_image(dtype, shape)
    before = image.copy()
    out = FUNCTIONS[name](image)
    np.testing.assert_array_equal(image, before)
    assert isinstance(out, np.ndarray)
    assert out.shape[:2] == ((32, 40) if name == "resize" else image.shape[:2])
    assert np.isfinite(out.astype(np.float64)).all()


# ---------------------------------------------------------------- to_uint8
@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.float32], ids=dtype_id)
def test_to_uint8_range_maps_min_and_max_to_0_and_255(dtype):
    image = make_image(dtype, (40, 40))
    out = pp.to_uint8(image)
    assert out.dtype == np.uint8
    assert out[image == image.min()].max() == 0
    assert out[image == image.max()].min() == 255
    expected = np.rint((image.astype(np.float64) - image.min()) * 255 / np.ptp(image))
    np.testing.assert_allclose(out, expected, atol=1)


def test_to_uint8_returns_uint8_input_as_is():
    image = make_image(np.uint8, (8, 8))
    assert pp.to_uint8(image, mode="percentile") is image


def test_to_uint8_constant_image_is_zero():
    assert not pp.to_uint8(np.full((5, 5), 1234, np.uint16)).any()


def test_to_uint8_in_range_clips():
    image = np.array([[-2000, -1000, 0, 1000, 3000]], np.int16)
    out = pp.to_uint8(image, in_range=(-1000, 1000))
    assert out.tolist() == [[0, 0, 128, 255, 255]]


def test_to_uint8_percentile_clips_hot_pixels():
    image = np.tile(np.arange(1000, dtype=np.uint16), (10, 1))
    image[0, 0] = 65535
    out = pp.to_uint8(image, mode="percentile", percentiles=(1, 99))
    lo, hi = np.percentile(image, [1, 99])
    assert out[0, 0] == 255 and out[0, 1] == 0
    assert out[5, 600] == np.rint((600 - lo) * 255 / (hi - lo))


def test_to_uint8_dtype_mode_uses_full_range():
    image = np.array([[0, 32768, 65535]], np.uint16)
    assert pp.to_uint8(image, mode="dtype").tolist() == [[0, 128, 255]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "linear"}, "mode must be one of"),
        ({"in_range": (10, 5)}, "low <= high"),
        ({"in_range": 5}, "pair"),
        ({"mode": "percentile", "percentiles": (50, 10)}, "percentiles"),
    ],
    ids=["unknown-mode", "reversed-range", "scalar-range", "reversed-percentiles"],
)
def test_to_uint8_bad_options(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        pp.to_uint8(make_image(np.uint16, (8, 8)), **kwargs)


# ---------------------------------------------------------------- window
@pytest.mark.parametrize("preset", list(pp.WINDOW_PRESETS))
def test_window_presets_map_edges_of_the_window(preset):
    center, width = pp.WINDOW_PRESETS[preset]
    hu = np.array([[center - width / 2, center, center + width / 2, -5000, 5000]], np.float32)
    assert pp.window(hu, preset=preset).tolist() == [[0, 128, 255, 0, 255]]
    np.testing.assert_array_equal(
        pp.window(hu, preset=preset), pp.window(hu, center=center, width=width)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"center": 40}, InvalidParameterError, "center and width"),
        ({"center": 40, "width": 0}, InvalidParameterError, "width must be > 0"),
        ({"preset": "liver"}, InvalidParameterError, "preset must be one of"),
        ({"preset": "lung", "center": 1}, InvalidParameterError, "not both"),
        ({"center": "40", "width": 400}, TypeError, "center must be a number"),
        ({"center": float("nan"), "width": 400}, InvalidParameterError, "finite"),
    ],
    ids=["no-width", "zero-width", "unknown-preset", "preset-and-center", "str", "nan"],
)
def test_window_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        pp.window(np.zeros((4, 4), np.float32), **kwargs)


# ---------------------------------------------------------------- blur
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_gaussian_blur_keeps_dtype_and_ksize_1_is_identity(dtype):
    image = make_image(dtype, (32, 32))
    assert pp.gaussian_blur(image, ksize=3).dtype == image.dtype
    np.testing.assert_array_equal(pp.gaussian_blur(image, ksize=1, sigma=0), image)


def test_gaussian_blur_int16_matches_float_computation():
    image = make_image(np.int16, (32, 32))
    expected = np.rint(cv2.GaussianBlur(image.astype(np.float32), (7, 7), 2.0))
    np.testing.assert_array_equal(pp.gaussian_blur(image, ksize=7, sigma=2.0), expected)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ksize": 4}, InvalidParameterError, "ksize must be odd, got 4; use 3 or 5"),
        ({"ksize": 0}, InvalidParameterError, "ksize must be >= 1"),
        ({"ksize": 3.0}, TypeError, "ksize must be an integer"),
        ({"ksize": True}, TypeError, "ksize must be an integer"),
        ({"sigma": -1}, InvalidParameterError, "sigma must be >= 0"),
    ],
    ids=["even", "zero", "float", "bool", "negative-sigma"],
)
def test_gaussian_blur_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        pp.gaussian_blur(np.zeros((8, 8), np.uint8), **kwargs)


# ---------------------------------------------------------------- canny / auto_canny
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_canny_follows_the_8bit_policy(dtype):
    image = make_image(dtype, (64, 64))
    edges = pp.canny(image, low=40, high=120)
    assert edges.dtype == np.uint8
    assert set(np.unique(edges)) <= {0, 255}
    expected = cv2.Canny(pp.to_uint8(image), 40, 120)
    np.testing.assert_array_equal(edges, expected)
    assert edges.any()  # the square's border


def test_canny_color_input_is_made_gray_first():
    image = make_image(np.uint8, (64, 64, 3))
    np.testing.assert_array_equal(
        pp.canny(image, low=10, high=30), cv2.Canny(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 10, 30)
    )


@pytest.mark.parametrize(
    ("image", "kwargs", "error", "match"),
    [
        (
            np.zeros((8, 8), np.uint8),
            {"low": 100, "high": 50},
            InvalidParameterError,
            "low <= high",
        ),
        (np.zeros((8, 8), np.uint8), {"low": -1}, InvalidParameterError, "low must be >= 0"),
        (np.zeros((8, 8), np.uint8), {"aperture": 4}, InvalidParameterError, "aperture"),
        (np.full((8, 8), np.nan, np.float32), {}, InvalidImageError, "NaN"),
        (np.zeros((2, 8, 8, 1), np.uint8), {}, InvalidImageError, "shape"),
        (np.zeros((8, 8, 2), np.uint8), {}, InvalidImageError, "channels"),
        (np.zeros((0, 8), np.uint8), {}, InvalidImageError, "empty"),
        (np.zeros((8, 8), np.complex64), {}, InvalidImageError, "dtype"),
        ([[0, 1], [1, 0]], {}, TypeError, "numpy.ndarray"),
    ],
    ids=[
        "low-gt-high",
        "negative",
        "aperture",
        "nan",
        "4d",
        "two-channels",
        "empty",
        "complex",
        "list",
    ],
)
def test_canny_bad_input(image, kwargs, error, match):
    with pytest.raises(error, match=match):
        pp.canny(image, **kwargs)


def test_auto_canny_uses_the_median_rule_on_the_foreground():
    image = make_image(np.uint16, (64, 64))
    gray = pp.to_uint8(image)
    foreground = gray[gray > gray.min()]
    median = float(np.median(foreground))
    result = pp.auto_canny(image, sigma=0.25)
    assert (result.low, result.high) == (int(0.75 * median), int(min(255, 1.25 * median)))
    np.testing.assert_array_equal(result.edges, cv2.Canny(gray, result.low, result.high))
    _edges, low, high = result  # unpacks like a tuple
    assert low <= high


def test_auto_canny_background_does_not_drive_thresholds_to_zero():
    image = np.zeros((64, 64), np.uint8)
    image[16:48, 16:48] = 180
    assert pp.auto_canny(image).low > 0
    assert pp.auto_canny(image, ignore_background=False).high == 0


@pytest.mark.parametrize("sigma", [-0.1, 1.0], ids=["negative", "one"])
def test_auto_canny_bad_sigma(sigma):
    with pytest.raises(InvalidParameterError, match="sigma"):
        pp.auto_canny(np.zeros((8, 8), np.uint8), sigma=sigma)


# ---------------------------------------------------------------- clahe
@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.uint8, np.uint8), (np.uint16, np.uint16), (np.int16, np.uint8), (np.float32, np.uint8)],
    ids=dtype_id,
)
def test_clahe_dtype_policy_and_values_are_opencvs(dtype, expected):
    image = make_image(dtype, (64, 64))
    out = pp.clahe(image, clip_limit=3.0, tile_grid=(4, 4))
    assert out.dtype == expected
    direct = image if dtype in (np.uint8, np.uint16) else pp.to_uint8(image)
    np.testing.assert_array_equal(
        out, cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4)).apply(direct)
    )


def test_clahe_color_equalises_lightness_only():
    image = make_image(np.uint8, (64, 64, 3))
    out = pp.clahe(image)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    np.testing.assert_array_equal(out, cv2.cvtColor(lab, cv2.COLOR_LAB2BGR))
    assert not np.array_equal(out, image)


@pytest.mark.parametrize("tile_grid", [(0, 8), 8, (8, 8, 8)], ids=["zero", "scalar", "three"])
def test_clahe_bad_tile_grid(tile_grid):
    with pytest.raises(InvalidParameterError):
        pp.clahe(np.zeros((8, 8), np.uint8), tile_grid=tile_grid)


# ---------------------------------------------------------------- resize
def test_resize_letterbox_centres_and_pads():
    image = np.full((100, 200), 200, np.uint8)
    out = pp.resize(image, size=(64, 64), pad_value=7)
    assert out.shape == (64, 64)
    assert (out[:16] == 7).all() and (out[48:] == 7).all() and (out[16:48] == 200).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_resize_keeps_dtype(dtype):
    out = pp.resize(make_image(dtype, (48, 80)), size=(24, 24))
    assert out.dtype == dtype and out.shape == (24, 24)


def test_resize_without_aspect_stretches():
    assert pp.resize(np.zeros((10, 40), np.uint8), size=(20, 20), keep_aspect=False).shape == (
        20,
        20,
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"size": (0, 10)}, InvalidParameterError),
        ({"size": 10}, InvalidParameterError),
        ({"size": (10, 10), "interpolation": "bicubic"}, InvalidParameterError),
        ({"size": (10.5, 10)}, TypeError),
    ],
    ids=["zero", "scalar", "interpolation", "float"],
)
def test_resize_bad_options(kwargs, error):
    with pytest.raises(error):
        pp.resize(np.zeros((8, 8), np.uint8), **kwargs)


# ---------------------------------------------------------------- normalize
@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (np.array([[0, 255]], np.uint8), [[0.0, 1.0]]),
        (np.array([[0, 65535]], np.uint16), [[0.0, 1.0]]),
        (np.array([[-32768, 32767]], np.int16), [[0.0, 1.0]]),
        (np.array([[-1000.0, 0.0, 1000.0]], np.float32), [[0.0, 0.5, 1.0]]),
    ],
    ids=["uint8", "uint16", "int16", "float32"],
)
def test_normalize_unit(image, expected):
    out = pp.normalize(image, mode="unit")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_normalize_imagenet_bgr_order():
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = (255, 0, 0)  # pure blue
    out = pp.normalize(bgr, mode="imagenet")[0, 0]
    np.testing.assert_allclose(
        out, [(1 - 0.406) / 0.225, (0 - 0.456) / 0.224, (0 - 0.485) / 0.229], rtol=1e-6
    )


# ---------------------------------------------------------------- color conversions
def test_to_gray_matches_opencv_and_keeps_int16():
    bgr = make_image(np.uint8, (16, 16, 3))
    np.testing.assert_array_equal(pp.to_gray(bgr), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert pp.to_gray(make_image(np.int16, (16, 16, 3))).dtype == np.int16
    bgra = np.dstack([bgr, np.full((16, 16), 255, np.uint8)])
    np.testing.assert_array_equal(pp.to_gray(bgra), pp.to_gray(bgr))


def test_single_channel_3d_is_gray():
    image = make_image(np.uint8, (16, 16))[:, :, None]
    np.testing.assert_array_equal(pp.to_gray(image), image[:, :, 0])
    np.testing.assert_array_equal(pp.to_bgr(image), np.repeat(image, 3, axis=2))


# ---------------------------------------------------------------- one checker per operation
# The function and its pipeline step call the same checker (m1vision._checks), so a bad
# option gets the same error from both: same type, same message (the step adds its name).
SAME_CHECK = {
    "to_uint8-mode": (pp.to_uint8, "ToUint8", {"mode": "linear"}),
    "to_uint8-reversed-range": (pp.to_uint8, "ToUint8", {"in_range": (10, 5)}),
    "to_uint8-percentiles-unused": (pp.to_uint8, "ToUint8", {"percentiles": (50, 10)}),
    "window-no-width": (pp.window, "Window", {"center": 40}),
    "window-nan-width": (pp.window, "Window", {"center": 40, "width": float("nan")}),
    "window-preset-and-center": (pp.window, "Window", {"preset": "lung", "center": 1}),
    "blur-even": (pp.gaussian_blur, "GaussianBlur", {"ksize": 4}),
    "blur-float-ksize": (pp.gaussian_blur, "GaussianBlur", {"ksize": 3.0}),
    "canny-reversed": (pp.canny, "Canny", {"low": 100, "high": 50}),
    "canny-aperture": (pp.canny, "Canny", {"aperture": 4}),
    "canny-l2-not-bool": (pp.canny, "Canny", {"l2_gradient": "yes"}),
    "auto_canny-sigma": (pp.auto_canny, "AutoCanny", {"sigma": 1.0}),
    "auto_canny-aperture": (pp.auto_canny, "AutoCanny", {"aperture": 9}),
    "auto_canny-l2-not-bool": (pp.auto_canny, "AutoCanny", {"l2_gradient": 1}),
    "clahe-grid": (pp.clahe, "Clahe", {"tile_grid": (0, 8)}),
    "clahe-scalar-grid": (pp.clahe, "Clahe", {"tile_grid": 8}),
    "resize-interpolation": (pp.resize, "Resize", {"size": (8, 8), "interpolation": "bicubic"}),
    "resize-size": (pp.resize, "Resize", {"size": (0, 8)}),
    "resize-letterbox-not-bool": (pp.resize, "Resize", {"size": (8, 8), "letterbox": None}),
    "normalize-mode": (pp.normalize, "Normalize", {"mode": "zscore"}),
}


@pytest.mark.parametrize(("function", "step_name", "kwargs"), SAME_CHECK.values(), ids=SAME_CHECK)
def test_function_and_step_reject_a_bad_option_alike(function, step_name, kwargs):
    from m1vision import pipeline

    with pytest.raises((InvalidParameterError, TypeError)) as by_function:
        function(np.zeros((8, 8), np.uint8), **kwargs)
    with pytest.raises(type(by_function.value)) as by_step:
        getattr(pipeline, step_name)(**kwargs)
    assert str(by_step.value) == f"{step_name}: {by_function.value}"


def test_auto_canny_aperture_and_l2_reach_opencv_from_the_function_and_the_step():
    from m1vision.pipeline import AutoCanny

    image = make_image(np.uint16, (64, 64))
    result = pp.auto_canny(image, aperture=5, l2_gradient=True)
    gray = pp.to_uint8(image)
    expected = cv2.Canny(gray, result.low, result.high, apertureSize=5, L2gradient=True)
    np.testing.assert_array_equal(result.edges, expected)
    assert not np.array_equal(expected, cv2.Canny(gray, result.low, result.high))
    np.testing.assert_array_equal(AutoCanny(aperture=5, l2_gradient=True)(image), expected)


def test_resize_interpolations_are_one_list():
    assert tuple(pp._INTERPOLATIONS) == INTERPOLATIONS


@pytest.mark.parametrize(
    ("name", "flag"),
    [("nearest", cv2.INTER_NEAREST), ("linear", cv2.INTER_LINEAR), ("cubic", cv2.INTER_CUBIC),
     ("area", cv2.INTER_AREA), ("lanczos", cv2.INTER_LANCZOS4)],
    ids=INTERPOLATIONS,
)  # fmt: skip
def test_resize_interpolation_is_opencvs(name, flag):
    image = make_image(np.uint8, (16, 12))
    out = pp.resize(image, size=(8, 10), keep_aspect=False, interpolation=name)
    np.testing.assert_array_equal(out, cv2.resize(image, (10, 8), interpolation=flag))


# ---------------------------------------------------------------- the errors' class and text
# A wrong type is an InvalidTypeError (an M1VisionError and a TypeError); a wrong value an
# InvalidParameterError or InvalidImageError. Each message starts with the argument's name
# and says the fix.
WRONG = {
    "window-center-str": (
        lambda img: pp.window(img, center="40", width=400),
        InvalidTypeError,
        "center",
        "float()",
    ),
    "blur-ksize-str": (
        lambda img: pp.gaussian_blur(img, ksize="5"),
        InvalidTypeError,
        "ksize",
        "ksize=1",
    ),
    "blur-sigma-none": (
        lambda img: pp.gaussian_blur(img, sigma=None),
        InvalidTypeError,
        "sigma",
        "float",
    ),
    "canny-low-str": (lambda img: pp.canny(img, low="a"), InvalidTypeError, "low", "float()"),
    "canny-l2-str": (
        lambda img: pp.canny(img, l2_gradient="yes"),
        InvalidTypeError,
        "l2_gradient",
        "l2_gradient=True or l2_gradient=False",
    ),
    "resize-size-str": (
        lambda img: pp.resize(img, size=(8, "8")),
        InvalidTypeError,
        "size[1]",
        "size[1]=1",
    ),
    "image-list": (
        lambda img: pp.to_gray([[1, 2]]),
        InvalidTypeError,
        "image",
        "numpy.asarray(image)",
    ),
    "image-path": (
        lambda img: pp.to_uint8("scan.png"),
        InvalidTypeError,
        "image",
        "read_any(path)",
    ),
    "resize-size-scalar": (
        lambda img: pp.resize(img, size=8),
        InvalidParameterError,
        "size",
        "size=(height, width)",
    ),
    "resize-size-negative": (
        lambda img: pp.resize(img, size=(-1, 8)),
        InvalidParameterError,
        "size[0]",
        "pass 1 or more",
    ),
    "clahe-clip-negative": (
        lambda img: pp.clahe(img, clip_limit=-1),
        InvalidParameterError,
        "clip_limit",
        "pass 0.0 or more",
    ),
    "normalize-mode-unknown": (
        lambda img: pp.normalize(img, mode="zscore"),
        InvalidParameterError,
        "mode",
        "pass one of those",
    ),
    "blur-sigma-nan": (
        lambda img: pp.gaussian_blur(img, sigma=float("nan")),
        InvalidParameterError,
        "sigma",
        "pass a finite number",
    ),
}


@pytest.mark.parametrize(("call", "error", "argument", "fix"), WRONG.values(), ids=WRONG)
def test_bad_input_is_a_documented_error_naming_the_argument_and_the_fix(
    call, error, argument, fix
):
    with pytest.raises(error) as info:
        call(np.zeros((8, 8), np.uint8))
    assert isinstance(info.value, M1VisionError)
    message = str(info.value)
    assert message.startswith(f"{argument} must be"), message
    assert "Fix:" in message and fix in message, message


def test_a_wrong_type_is_caught_as_a_type_error_too():
    with pytest.raises(TypeError, match="ksize must be an integer"):
        pp.gaussian_blur(np.zeros((8, 8), np.uint8), ksize=3.0)


@pytest.mark.parametrize(
    ("dtype", "size"),
    [(np.uint8, (10**6, 10**6)), (np.int16, (200_000, 300_000))],
    ids=["uint8", "int16"],
)
def test_resize_past_the_memory_is_refused_before_allocating(dtype, size):
    image = np.zeros((8, 8, 3) if dtype == np.uint8 else (8, 8), dtype)
    with pytest.raises(MemoryBudgetError) as info:
        pp.resize(image, size=size)
    message = str(info.value)
    assert message.startswith(f"resize: size={size} gives an output of shape")
    assert "Nothing was allocated. Fix: ask for a smaller size" in message
