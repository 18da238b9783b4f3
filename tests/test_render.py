"""m1vision.render: the explorer's pictures, computed without widgets, on a real CT slice."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from m1vision.draw import overlay_edges
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError
from m1vision.preprocess import canny, gaussian_blur, to_uint8, window
from m1vision.render import (
    ExplorerParams,
    RenderCache,
    edge_fraction,
    encode_png,
    histogram_picture,
    preview,
    render,
    zoom_region,
)


@pytest.fixture(scope="module")
def hu() -> np.ndarray:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    return apply_modality_lut(ds.pixel_array, ds).astype(np.float32)


def _as_dtype(hu: np.ndarray, dtype: str) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The CT in another dtype, with the window that shows the same soft-tissue picture."""
    if dtype == "float32":
        return hu, (40.0, 400.0)
    if dtype == "float64":
        return hu.astype(np.float64), (40.0, 400.0)
    if dtype == "int16":
        return hu.astype(np.int16), (40.0, 400.0)
    if dtype == "uint16":  # stored values: HU + 1024, as many scanners write them
        return (hu + 1024).astype(np.uint16), (1064.0, 400.0)
    return window(hu, center=40, width=400), None  # uint8: already a picture


def _decode(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)


DTYPES = ["float32", "float64", "int16", "uint16", "uint8"]
VIEWS = ["edges", "overlay", "side_by_side"]


@pytest.mark.parametrize("view", VIEWS, ids=VIEWS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPES)
def test_render_composes_window_blur_canny(hu, dtype, view):
    image, win = _as_dtype(hu, dtype)
    center, width = win if win else (None, None)
    params = ExplorerParams(center=center, width=width, ksize=5, sigma=1.0, low=40, high=100)
    picture = render(image, params.replace(view=view))

    windowed = window(image, center=center, width=width) if win else image
    edges = canny(gaussian_blur(windowed, ksize=5, sigma=1.0), low=40, high=100)
    assert picture.dtype == np.uint8
    if view == "edges":
        assert np.array_equal(picture, edges)
        assert 0.01 < edge_fraction(picture) < 0.5  # a CT slice has edges, not everywhere
    elif view == "overlay":
        assert picture.shape == (*image.shape, 3)
        mask = edges != 0
        assert (picture[mask] == (0, 255, 0)).all()
        assert (picture[~mask] == windowed[~mask][:, None]).all()
    else:
        assert picture.shape == (image.shape[0], 2 * image.shape[1], 3)
        left, right = picture[:, : image.shape[1]], picture[:, image.shape[1] :]
        assert (left == windowed[:, :, None]).all()
        assert (right == edges[:, :, None]).all()


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint16"], ids=str)
def test_every_dtype_gives_the_same_soft_tissue_edges(hu, dtype):
    # The CT in HU (float32) and as stored integers must window to the same picture.
    reference = render(hu, ExplorerParams(center=40, width=400))
    image, (center, width) = _as_dtype(hu, dtype)
    assert np.array_equal(render(image, ExplorerParams(center=center, width=width)), reference)


def test_render_without_window_uses_the_8bit_policy(hu):
    picture = render(hu, ExplorerParams(ksize=3, low=20, high=60))
    expected = canny(gaussian_blur(to_uint8(hu), ksize=3), low=20, high=60)
    assert np.array_equal(picture, expected)


def test_render_does_not_modify_the_input(hu):
    image = hu.copy()
    render(image, ExplorerParams(center=40, width=400, view="overlay"))
    assert np.array_equal(image, hu)


def test_render_color_input_keeps_color_in_the_overlay():
    bgr = np.zeros((64, 64, 3), np.uint8)
    bgr[16:48, 16:48] = (200, 30, 10)
    picture = render(bgr, ExplorerParams(view="overlay", ksize=1, low=10, high=30))
    edges = canny(bgr, low=10, high=30)
    assert np.array_equal(picture, overlay_edges(bgr, edges))
    assert picture[32, 32].tolist() == [200, 30, 10]


# -- preview -------------------------------------------------------------------------------
def test_preview_of_a_large_16bit_image_averages_blocks():
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 4000, size=(512, 512)).astype(np.uint16)
    big = np.kron(blocks, np.ones((4, 4), np.uint16))  # 2048 x 2048, constant 4x4 blocks
    small = preview(big, max_size=512)
    assert small.dtype == np.uint16
    assert np.array_equal(small, blocks)  # area interpolation of constant blocks is exact


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((2048, 2048), (512, 512)), ((1000, 250), (512, 128)), ((300, 400), (300, 400))],
    ids=["square", "tall", "fits"],
)
def test_preview_keeps_the_aspect_ratio(shape, expected):
    assert preview(np.zeros(shape, np.uint16), max_size=512).shape == expected


def test_full_resolution_renders_the_whole_image():
    image = np.zeros((1024, 768), np.uint16)
    image[256:768, 200:600] = 3000
    small = render(image, ExplorerParams(center=1500, width=3000))
    full = render(image, ExplorerParams(center=1500, width=3000, full_resolution=True))
    assert small.shape == (512, 384)
    assert full.shape == (1024, 768)
    expected = canny(gaussian_blur(window(image, center=1500, width=3000), ksize=5))
    assert np.array_equal(full, expected)


# -- the cache -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "recomputed"),
    [
        ({"high": 120.0}, {"edges", "picture"}),
        ({"low": 10.0}, {"edges", "picture"}),
        ({"l2_gradient": True}, {"edges", "picture"}),
        ({"ksize": 7}, {"blurred", "edges", "picture"}),
        ({"sigma": 2.0}, {"blurred", "edges", "picture"}),
        ({"center": -600.0, "width": 1500.0}, {"windowed", "blurred", "edges", "picture"}),
        ({"view": "overlay"}, {"picture"}),
        ({}, set()),
        ({"full_resolution": True}, {"source", "windowed", "blurred", "edges", "picture"}),
    ],
    ids=["high", "low", "l2", "ksize", "sigma", "window", "view", "nothing", "full_res"],
)
def test_cache_recomputes_only_the_stages_a_change_touches(hu, change, recomputed):
    cache = RenderCache(hu)
    params = ExplorerParams(center=40, width=400)
    first = cache.render(params)
    before = dict(cache.counts)
    assert before == dict.fromkeys(RenderCache.STAGES, 1)
    second = cache.render(params.replace(**change))
    diff = {stage for stage in RenderCache.STAGES if cache.counts[stage] != before[stage]}
    assert diff == recomputed
    assert np.array_equal(second, render(hu, params.replace(**change)))
    if not change:
        assert second is first


def test_cache_after_a_failing_stage_still_works(hu):
    calls = []

    def flaky(image):
        calls.append(image.shape)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return image

    cache = RenderCache(hu, pipeline=flaky)
    with pytest.raises(RuntimeError, match="first call fails"):
        cache.render(ExplorerParams(center=40, width=400))
    picture = cache.render(ExplorerParams(center=40, width=400))
    assert np.array_equal(picture, render(hu, ExplorerParams(center=40, width=400)))


def test_pipeline_output_is_checked(hu):
    cache = RenderCache(hu, pipeline=lambda image: image[None])
    with pytest.raises(InvalidImageError, match="the pipeline's output"):
        cache.render(ExplorerParams(center=40, width=400))


def test_cache_refuses_non_callable_pipeline(hu):
    with pytest.raises(TypeError, match="pipeline must be callable"):
        RenderCache(hu, pipeline="clahe")


def test_render_refuses_a_dict_for_params(hu):
    with pytest.raises(TypeError, match="ExplorerParams"):
        render(hu, {"low": 1, "high": 2})


# -- params --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"center": 40.0}, InvalidParameterError, "both center and width"),
        ({"center": 40.0, "width": 0.0}, InvalidParameterError, "width must be > 0"),
        ({"ksize": 4}, InvalidParameterError, "ksize must be odd"),
        ({"ksize": 0}, InvalidParameterError, "ksize must be >= 1"),
        ({"ksize": 5.0}, TypeError, "ksize must be an integer"),
        ({"sigma": -1.0}, InvalidParameterError, "sigma must be >= 0"),
        ({"low": 100.0, "high": 50.0}, InvalidParameterError, "low <= high"),
        ({"low": float("nan")}, InvalidParameterError, "low must be finite"),
        ({"aperture": 4}, InvalidParameterError, "aperture must be one of"),
        ({"view": "both"}, InvalidParameterError, "view must be one of"),
        ({"l2_gradient": "yes"}, TypeError, "l2_gradient must be True or False"),
        ({"preview_size": 8}, InvalidParameterError, "preview_size must be >= 16"),
        ({"full_resolution": 1}, InvalidTypeError, "full_resolution must be True or False"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_params_are_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        ExplorerParams(**kwargs)


def test_params_round_trip_through_a_dict():
    params = ExplorerParams(center=-600, width=1500, ksize=7, low=12, high=34, view="overlay")
    assert ExplorerParams(**params.to_dict()) == params
    assert isinstance(params.center, float)
    assert params.to_dict()["center"] == -600.0


# -- encode / edge fraction / histogram ----------------------------------------------------
@pytest.mark.parametrize(
    "array",
    [
        np.arange(256, dtype=np.uint8).reshape(16, 16),
        np.random.default_rng(1).integers(0, 256, (20, 30, 3)).astype(np.uint8),
        np.random.default_rng(2).integers(0, 65536, (20, 30)).astype(np.uint16),
    ],
    ids=["gray", "bgr", "uint16"],
)
def test_encode_png_round_trips_exactly(array):
    assert np.array_equal(_decode(encode_png(array)), array)


def _png_bit_depth(png: bytes) -> int:
    return png[24]  # IHDR: 8-byte signature, length, "IHDR", width, height, then bit depth


@pytest.mark.parametrize("bilevel", [None, True], ids=["auto", "asked"])
def test_encode_png_writes_edge_maps_as_1_bit(hu, bilevel):
    edges = render(hu, ExplorerParams(center=40, width=400))
    png = encode_png(edges, bilevel=bilevel)
    assert _png_bit_depth(png) == 1
    assert np.array_equal(_decode(png), edges)
    assert _png_bit_depth(encode_png(edges, bilevel=False)) == 8


def test_encode_png_keeps_8_bits_for_other_gray_images(hu):
    picture = window(hu, center=40, width=400)
    assert _png_bit_depth(encode_png(picture)) == 8
    with pytest.raises(InvalidParameterError, match="bilevel=True needs"):
        encode_png(picture, bilevel=True)


def test_encode_png_refuses_float():
    with pytest.raises(InvalidImageError, match="PNG holds uint8 or uint16"):
        encode_png(np.zeros((4, 4), np.float32))


def test_encode_png_checks_compression():
    with pytest.raises(InvalidParameterError, match="compression must be 0-9"):
        encode_png(np.zeros((4, 4), np.uint8), compression=10)


def test_edge_fraction_counts_nonzero_pixels():
    edges = np.zeros((10, 10), np.uint8)
    edges[2, :7] = 255
    assert edge_fraction(edges) == 0.07


def test_histogram_picture_marks_the_window():
    # values 0..999 evenly: every bin has the same count, so every bar is full height
    image = np.arange(1000, dtype=np.float32).reshape(25, 40)
    pic = histogram_picture(image, window=(500.0, 200.0), bins=10, size=(50, 100))
    assert pic.shape == (50, 100, 3)
    x_of = lambda v: round(v / 999 * 99)  # noqa: E731
    assert pic[0, x_of(450)].tolist() == [250, 225, 200]  # inside the window: shaded
    assert pic[0, x_of(200)].tolist() == [255, 255, 255]  # outside: white
    assert pic[0, x_of(500)].tolist() == [0, 0, 220]  # the centre line
    assert (pic[-1, :, 0] != 255).all()  # bars reach the bottom everywhere


def test_histogram_picture_checks_size():
    with pytest.raises(InvalidParameterError, match="size must be"):
        histogram_picture(np.zeros((4, 4)), size=64)


# -- zoom and pan from the full-resolution image; the curtain view ------------------
@pytest.fixture(scope="module")
def radiograph() -> np.ndarray:
    from m1vision.data import phantom

    return phantom(size=2048)


def test_a_zoomed_region_is_cut_from_the_full_resolution_image(radiograph):
    p = ExplorerParams(center=32768.0, width=65535.0, zoom=4.0, pan_x=0.3, pan_y=0.6)
    cache = RenderCache(radiograph)
    r0, r1, c0, c1 = zoom_region(radiograph.shape, zoom=4.0, pan_x=0.3, pan_y=0.6)
    assert (r1 - r0, c1 - c0) == (512, 512)
    assert np.array_equal(cache.source(p), radiograph[r0:r1, c0:c1])  # real pixels, no resampling
    crop = render(radiograph[r0:r1, c0:c1], p.replace(zoom=1.0, full_resolution=True))
    assert np.array_equal(cache.render(p), crop)


def test_a_deep_zoom_shows_each_real_pixel_as_a_block(radiograph):
    p = ExplorerParams(center=32768.0, width=65535.0, zoom=16.0, view="overlay")
    r0, r1, c0, c1 = zoom_region(radiograph.shape, zoom=16.0)
    picture = render(radiograph, p)
    assert picture.shape[:2] == (512, 512)
    crop = render(radiograph[r0:r1, c0:c1], p.replace(zoom=1.0, full_resolution=True))
    assert np.array_equal(picture, np.repeat(np.repeat(crop, 4, axis=0), 4, axis=1))


ZOOM_REGIONS = {
    "centre": ((100, 200), 2.0, 0.5, 0.5, (25, 75, 50, 150)),
    "top left corner": ((100, 200), 4.0, 0.0, 0.0, (0, 25, 0, 50)),
    "bottom right corner": ((100, 200), 4.0, 1.0, 1.0, (75, 100, 150, 200)),
    "huge zoom": ((100, 200), 1000.0, 0.5, 0.5, (50, 51, 100, 101)),
}


@pytest.mark.parametrize("case", list(ZOOM_REGIONS), ids=list(ZOOM_REGIONS))
def test_zoom_region_stays_inside_the_image(case):
    shape, zoom, pan_x, pan_y, expected = ZOOM_REGIONS[case]
    assert zoom_region(shape, zoom=zoom, pan_x=pan_x, pan_y=pan_y) == expected


def test_the_curtain_view_wipes_from_the_image_to_the_overlay():
    hu = np.full((64, 64), -1000.0, np.float32)
    hu[16:48, 16:48] = 40.0
    p = ExplorerParams(center=40, width=400, view="curtain", curtain=0.25)
    picture = render(hu, p)
    windowed = render(hu, p.replace(view="side_by_side"))[:, :64]
    overlay = render(hu, p.replace(view="overlay"))
    assert np.array_equal(picture[:, :16], windowed[:, :16])
    assert (picture[:, 16] == (0, 255, 255)).all()
    assert np.array_equal(picture[:, 17:], overlay[:, 17:])


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"zoom": 0.5}, "zoom must be >= 1"), ({"pan_x": 1.5}, "pan_x must be a fraction"),
     ({"curtain": -0.1}, "curtain must be >= 0"), ({"zoom": float("nan")}, "zoom must be finite")],
    ids=["zoom<1", "pan>1", "curtain<0", "zoom nan"],
)  # fmt: skip
def test_zoom_pan_and_curtain_are_checked(changes, match):
    with pytest.raises(InvalidParameterError, match=match):
        ExplorerParams(**changes)


# -- one checker per operation: the explorer, the function and the step say the same ----------
SAME_CHECKS = {
    "even ksize": ({"ksize": 4}, "GaussianBlur", {"ksize": 4}, "gaussian_blur"),
    "negative sigma": ({"sigma": -1.0}, "GaussianBlur", {"sigma": -1.0}, "gaussian_blur"),
    "low above high": ({"low": 90, "high": 30}, "Canny", {"low": 90, "high": 30}, "canny"),
    "zero width": ({"center": 40, "width": 0}, "Window", {"center": 40, "width": 0}, "window"),
    "nan center": (
        {"center": float("nan"), "width": 400},
        "Window",
        {"center": float("nan"), "width": 400},
        "window",
    ),
}


@pytest.mark.parametrize("case", list(SAME_CHECKS), ids=list(SAME_CHECKS))
def test_explorer_function_and_step_refuse_with_the_same_message(case):
    from m1vision import pipeline, preprocess

    explorer_kwargs, step_name, kwargs, function_name = SAME_CHECKS[case]
    with pytest.raises(InvalidParameterError) as by_explorer:
        ExplorerParams(**explorer_kwargs)
    with pytest.raises(InvalidParameterError) as by_step:
        getattr(pipeline, step_name)(**kwargs)
    with pytest.raises(InvalidParameterError) as by_function:
        getattr(preprocess, function_name)(np.zeros((8, 8), np.uint8), **kwargs)
    message = str(by_explorer.value)
    assert message in str(by_step.value)
    assert message in str(by_function.value)
