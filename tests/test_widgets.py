"""m1vision.widgets: real ipywidgets objects driven from Python (no browser)."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

import m1vision.pipeline as pl
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.preprocess import WINDOW_PRESETS, auto_canny, gaussian_blur, window
from m1vision.render import ExplorerParams, RenderCache, histogram_picture, preview, render
from m1vision.widgets import EdgeExplorer, VolumeExplorer, WindowExplorer, explore_edges


@pytest.fixture(scope="module")
def hu() -> np.ndarray:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    return apply_modality_lut(ds.pixel_array, ds).astype(np.float32)


@pytest.fixture
def explorer(hu) -> EdgeExplorer:
    return EdgeExplorer(hu, window=(40.0, 400.0))


def shown(image_widget) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(bytes(image_widget.value), np.uint8), cv2.IMREAD_UNCHANGED)


def test_initial_picture_is_the_render_of_the_initial_params(explorer, hu):
    params = ExplorerParams(**explorer.params)
    assert (params.center, params.width, params.ksize, params.low, params.high) == (
        40.0,
        400.0,
        5,
        50.0,
        150.0,
    )
    assert np.array_equal(shown(explorer.image_widget), render(hu, params))
    assert explorer.last_error is None
    assert explorer.controls["high"].description == "high"  # the browser test finds it by this


CONTROL_MOVES = [
    ("high", 120.0),
    ("low", 12.0),
    ("ksize", 9),
    ("sigma", 1.5),
    ("l2_gradient", True),
    ("view", "overlay"),
    ("view", "side_by_side"),
    ("center", -100.0),
    ("width", 900.0),
    ("preset", "lung"),
    ("view", "curtain"),
    ("curtain", 0.3),
    ("zoom", 2.5),
    ("pan_x", 0.2),
]


@pytest.mark.parametrize(
    ("name", "value"), CONTROL_MOVES, ids=[f"{n}={v}" for n, v in CONTROL_MOVES]
)
def test_moving_a_control_shows_exactly_the_render(explorer, hu, name, value):
    explorer.controls[name].value = value
    params = explorer.params
    if name == "preset":
        assert (params["center"], params["width"]) == WINDOW_PRESETS[value]
    else:
        assert params[name] == value
    assert np.array_equal(shown(explorer.image_widget), render(hu, ExplorerParams(**params)))
    edges = render(hu, ExplorerParams(**params).replace(view="edges"))
    assert explorer.edge_fraction == np.count_nonzero(edges) / edges.size
    assert explorer.last_ms >= 0.0
    assert "edge pixels" in explorer.readout.value


def test_moving_a_window_slider_selects_the_matching_preset(explorer):
    controls = explorer.controls
    assert controls["preset"].value == "soft_tissue"  # (40, 400) is that preset
    controls["width"].value = 410.0
    assert controls["preset"].value == "custom"
    controls["width"].value = 350.0
    controls["center"].value = 50.0
    assert controls["preset"].value == "mediastinum"


THRESHOLD_MOVES = {
    "low past high": [("low", 200.0)],
    "high below low": [("low", 100.0), ("high", 20.0)],
    "low to 255": [("low", 255.0)],
    "high to 0": [("high", 0.0)],
    "zigzag": [("low", 180.0), ("high", 30.0), ("low", 90.0), ("high", 60.0), ("low", 70.0)],
    "equal": [("high", 50.0)],
}


@pytest.mark.parametrize("moves", THRESHOLD_MOVES.values(), ids=THRESHOLD_MOVES.keys())
def test_linked_thresholds_never_cross(explorer, hu, moves):
    # every picture the widget received, with the settings at that moment
    seen = []
    explorer.image_widget.observe(
        lambda change: seen.append((bytes(change["new"]), dict(explorer.params))), names="value"
    )
    for name, value in moves:
        other = "high" if name == "low" else "low"
        before_other = explorer.params[other]
        explorer.controls[name].value = value
        low, high = explorer.params["low"], explorer.params["high"]
        assert low <= high
        assert explorer.params[name] == value  # the moved slider keeps its value
        crossed = value > before_other if name == "low" else value < before_other
        assert explorer.params[other] == (value if crossed else before_other)
        assert explorer.last_error is None
    # every intermediate picture the widget showed was the render of consistent settings
    # (low <= high: ExplorerParams refuses anything else)
    assert seen
    for png, params in seen:
        picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
        assert params["low"] <= params["high"]
        assert np.array_equal(picture, render(hu, ExplorerParams(**params)))
    assert np.array_equal(
        shown(explorer.image_widget), render(hu, ExplorerParams(**explorer.params))
    )


def test_a_threshold_move_does_not_recompute_the_blur(explorer):
    counts = explorer.cache.counts
    before = dict(counts)
    explorer.controls["high"].value = 90.0
    explorer.controls["low"].value = 20.0
    assert counts["blurred"] == before["blurred"] == 1
    assert counts["windowed"] == before["windowed"] == 1
    assert counts["edges"] == before["edges"] + 2
    explorer.controls["ksize"].value = 7
    assert counts["blurred"] == 2
    assert counts["windowed"] == 1


def test_a_linked_move_renders_once(explorer):
    before = explorer.cache.counts["edges"]
    explorer.controls["low"].value = 220.0  # pushes high too: still one update
    assert explorer.cache.counts["edges"] == before + 1


def test_auto_sets_the_thresholds_of_auto_canny(explorer, hu):
    explorer.set_params(ksize=7, sigma=1.0)
    low, high = explorer.auto()
    expected = auto_canny(gaussian_blur(window(hu, center=40, width=400), ksize=7, sigma=1.0))
    assert (low, high) == (expected.low, expected.high)
    assert (explorer.params["low"], explorer.params["high"]) == (expected.low, expected.high)
    assert np.array_equal(shown(explorer.image_widget), expected.edges)


def test_auto_button_click_sets_the_thresholds(explorer, hu):
    explorer.controls["auto"].click()
    expected = auto_canny(gaussian_blur(window(hu, center=40, width=400), ksize=5))
    assert (explorer.params["low"], explorer.params["high"]) == (expected.low, expected.high)


def _fails_on_large(image: np.ndarray) -> np.ndarray:
    """A pre-processing step with a real limit: it refuses images over 64 px."""
    if max(image.shape) > 64:
        raise MemoryError(f"image of shape {image.shape} is too large for this step")
    return image


def test_an_error_in_an_update_is_shown_and_the_explorer_recovers(hu):
    ex = EdgeExplorer(hu, window=(40.0, 400.0), pipeline=_fails_on_large, preview_size=64)
    assert ex.last_error is None
    assert ex.controls["full_resolution"].layout.display is None  # offered: 128 > 64
    good = bytes(ex.image_widget.value)
    assert shown(ex.image_widget).shape == (64, 64)

    ex.controls["full_resolution"].value = True  # the real step now fails
    assert isinstance(ex.last_error, MemoryError)
    assert ex.error_area.layout.display is None
    assert "MemoryError" in ex.error_area.value
    assert "too large" in ex.error_area.value
    assert bytes(ex.image_widget.value) == good  # the last good picture stays

    ex.controls["high"].value = 100.0  # still failing: still shown, no exception escapes
    assert isinstance(ex.last_error, MemoryError)

    ex.controls["full_resolution"].value = False  # a valid state again
    assert ex.last_error is None
    assert ex.error_area.layout.display == "none"
    expected = render(hu, ExplorerParams(**ex.params), pipeline=_fails_on_large)
    assert ex.params["high"] == 100.0
    assert np.array_equal(shown(ex.image_widget), expected)


def test_an_error_while_building_is_shown_not_raised(hu):
    def broken(image):
        raise ValueError("broken step")

    ex = EdgeExplorer(hu, pipeline=broken)
    assert isinstance(ex.last_error, ValueError)
    assert "broken step" in ex.error_area.value
    assert len(ex.image_widget.value) == 0


def test_error_text_is_escaped(hu):
    def tagged(image):
        raise ValueError("<script>alert(1)</script>")

    ex = EdgeExplorer(hu, pipeline=tagged)
    assert "<script>" not in ex.error_area.value
    assert "&lt;script&gt;" in ex.error_area.value


def test_large_16bit_image_is_previewed_until_full_resolution():
    rng = np.random.default_rng(0)
    image = (rng.random((1024, 1024)) * 4000).astype(np.uint16)
    image = cv2.GaussianBlur(image, (0, 0), 8)
    ex = EdgeExplorer(image)
    assert ex.controls["full_resolution"].layout.display is None
    assert shown(ex.image_widget).shape == (512, 512)
    assert np.array_equal(shown(ex.image_widget), render(image, ExplorerParams(**ex.params)))
    ex.controls["full_resolution"].value = True
    full = shown(ex.image_widget)
    assert full.shape == (1024, 1024)
    assert np.array_equal(full, render(image, ExplorerParams(**ex.params)))
    assert np.array_equal(
        preview(image), ex.cache.source(ExplorerParams(**ex.params).replace(full_resolution=False))
    )


def test_small_image_hides_the_full_resolution_toggle(explorer):
    assert explorer.controls["full_resolution"].layout.display == "none"


def test_8bit_image_has_no_window_controls():
    img = np.zeros((64, 64), np.uint8)
    img[16:48, 16:48] = 200
    ex = explore_edges(img)
    assert {"preset", "center", "width"}.isdisjoint(ex.controls)
    assert ex.params["center"] is None
    ex.controls["high"].value = 60.0
    assert np.array_equal(shown(ex.image_widget), render(img, ExplorerParams(**ex.params)))
    with pytest.raises(InvalidParameterError, match="8-bit"):
        EdgeExplorer(img, window=(40, 400))


def test_color_8bit_image_overlay(hu):
    bgr = np.zeros((64, 64, 3), np.uint8)
    bgr[16:48, 16:48] = (10, 120, 240)
    ex = EdgeExplorer(bgr)
    ex.controls["view"].value = "overlay"
    assert shown(ex.image_widget).shape == (64, 64, 3)
    assert np.array_equal(shown(ex.image_widget), render(bgr, ExplorerParams(**ex.params)))


def test_wide_color_image_is_refused():
    with pytest.raises(InvalidImageError, match="to_gray"):
        EdgeExplorer(np.zeros((8, 8, 3), np.uint16))


def test_default_window_is_the_full_range(hu):
    ex = EdgeExplorer(hu)
    lo, hi = float(hu.min()), float(hu.max())
    assert (ex.params["center"], ex.params["width"]) == ((lo + hi) / 2, hi - lo)
    assert ex.controls["preset"].value == "full range"


def test_header_window_of_a_medical_image_is_used(hu):
    class Scan:  # the two attributes of m1vision.io.MedicalImage the explorer reads
        pixels = hu
        window = (-600.0, 1500.0)

    ex = EdgeExplorer(Scan())
    assert (ex.params["center"], ex.params["width"]) == (-600.0, 1500.0)
    assert ex.controls["preset"].value == "lung"


def test_params_restore_another_explorer(explorer, hu):
    explorer.set_params(ksize=9, sigma=2.0, low=20.0, high=70.0, view="overlay")
    copy = EdgeExplorer(hu, params=explorer.params)
    assert copy.params == explorer.params
    assert bytes(copy.image_widget.value) == bytes(explorer.image_widget.value)


def test_set_params_checks_names_and_thresholds(explorer):
    with pytest.raises(InvalidParameterError, match="unknown control"):
        explorer.set_params(treshold=3)
    with pytest.raises(InvalidParameterError, match="low <= high"):
        explorer.set_params(low=90.0, high=10.0)


def test_set_params_window_and_both_thresholds_in_one_update(explorer, hu):
    before = explorer.cache.counts["picture"]
    explorer.set_params(window=(-600.0, 1500.0), low=200.0, high=240.0)
    assert explorer.cache.counts["picture"] == before + 1
    p = explorer.params
    assert (p["center"], p["width"], p["low"], p["high"]) == (-600.0, 1500.0, 200.0, 240.0)


def test_a_pipeline_step_that_raises_is_shown_and_the_explorer_recovers(hu):
    from m1vision.pipeline import Pipeline, Step, register_step

    @register_step("test_widgets_refuse_large")
    class RefuseLarge(Step):
        """A step with a real size limit (like a model with a fixed input budget)."""

        def __init__(self, *, max_size: int = 64):
            self.max_size = max_size

        def __call__(self, image):
            if max(image.shape) > self.max_size:
                raise ValueError(f"{image.shape} exceeds max_size={self.max_size}")
            return image

    ex = EdgeExplorer(hu, pipeline=Pipeline([RefuseLarge(max_size=64)]), preview_size=64)
    assert ex.last_error is None
    ex.controls["full_resolution"].value = True
    assert type(ex.last_error).__name__ == "PipelineStepError"
    assert "test_widgets_refuse_large" in ex.error_area.value
    assert "exceeds max_size=64" in ex.error_area.value
    ex.controls["full_resolution"].value = False
    ex.controls["low"].value = 10.0
    assert ex.last_error is None
    assert np.array_equal(
        shown(ex.image_widget),
        render(hu, ExplorerParams(**ex.params), pipeline=RefuseLarge(max_size=64)),
    )


def test_medical_image_from_the_data_loaders_uses_its_header_window():
    from m1vision.data import ct_slice_512

    ct = ct_slice_512()
    ex = EdgeExplorer(ct)
    assert (ex.params["center"], ex.params["width"]) == ct.window
    assert "lung" in ex.controls["preset"].options
    assert np.array_equal(shown(ex.image_widget), render(ct.pixels, ExplorerParams(**ex.params)))


def test_non_ct_medical_image_gets_no_ct_presets():
    from m1vision.data import mr_slice

    ex = EdgeExplorer(mr_slice())
    assert list(ex.controls["preset"].options) == ["custom", "full range"]


# -- to_pipeline / code --------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {"window": (40.0, 400.0), "ksize": 5, "low": 50.0, "high": 150.0},
        {"window": (-600.0, 1500.0), "ksize": 9, "sigma": 2.5, "low": 5.0, "high": 40.0},
        {"window": (400.0, 1800.0), "ksize": 1, "l2_gradient": True, "low": 0.0, "high": 255.0},
    ],
    ids=["soft_tissue", "lung_blurred", "bone_l2"],
)
def test_to_pipeline_equals_the_full_resolution_render(hu, settings):
    ex = EdgeExplorer(hu)
    ex.set_params(view="overlay", **settings)
    out = ex.to_pipeline()(hu)
    params = ExplorerParams(**ex.params).replace(view="edges", full_resolution=True)
    assert np.array_equal(out, render(hu, params))


def test_to_pipeline_of_a_large_image_uses_the_full_resolution():
    image = np.zeros((1024, 600), np.uint16)
    image[100:900, 100:500] = 3000
    ex = EdgeExplorer(image, window=(1500.0, 3000.0))
    out = ex.to_pipeline()(image)
    assert out.shape == image.shape
    assert np.array_equal(
        out,
        render(
            image,
            ExplorerParams(
                **ex.params,
            ).replace(full_resolution=True),
        ),
    )


def test_to_pipeline_of_an_8bit_image_has_no_window_step():
    img = np.zeros((64, 64), np.uint8)
    img[16:48, 16:48] = 200
    pipe = EdgeExplorer(img).to_pipeline()
    assert [type(s) for s in pipe.steps] == [pl.GaussianBlur, pl.Canny]
    assert np.array_equal(pipe(img), render(img, ExplorerParams()))


def test_code_rebuilds_the_pipeline(explorer):
    explorer.set_params(ksize=7, sigma=1.5, low=33.0, high=99.0, l2_gradient=True)
    namespace: dict = {}
    exec(explorer.code(), namespace)
    assert namespace["pipeline"] == explorer.to_pipeline()


def test_to_pipeline_includes_the_explorers_pipeline(hu):
    pre = pl.Pipeline([pl.Window(center=40.0, width=400.0), pl.Clahe(clip_limit=3.0)])
    ex = EdgeExplorer(hu, pipeline=pre)
    # the pipeline made the image 8-bit: nothing left to window
    assert "center" not in ex.controls
    ex.set_params(ksize=3, low=40.0, high=120.0)
    pipe = ex.to_pipeline()
    assert [type(s) for s in pipe.steps] == [pl.Window, pl.Clahe, pl.GaussianBlur, pl.Canny]
    params = ExplorerParams(**ex.params).replace(full_resolution=True)
    assert np.array_equal(pipe(hu), render(hu, params, pipeline=pre))
    namespace: dict = {}
    exec(ex.code(), namespace)
    assert namespace["pipeline"] == pipe


def test_to_pipeline_refuses_a_plain_function_pipeline(hu):
    ex = EdgeExplorer(hu, pipeline=lambda image: image)
    with pytest.raises(InvalidParameterError, match="plain callable"):
        ex.to_pipeline()


# -- WindowExplorer ------------------------------------------------------------------------
@pytest.mark.parametrize("preset", list(WINDOW_PRESETS), ids=list(WINDOW_PRESETS))
def test_window_explorer_presets(hu, preset):
    wx = WindowExplorer(hu)
    wx.controls["preset"].value = preset
    center, width = WINDOW_PRESETS[preset]
    assert wx.params == {"center": center, "width": width}
    assert np.array_equal(shown(wx.image_widget), window(hu, center=center, width=width))
    lo, hi = center - width / 2, center + width / 2
    assert wx.clipped == (float(np.mean(hu < lo)), float(np.mean(hu > hi)))
    expected_hist = histogram_picture(hu, window=(center, width), bins=128)
    assert np.array_equal(shown(wx.histogram_widget), expected_hist)


def test_window_explorer_sliders_update_the_picture(hu):
    wx = WindowExplorer(hu, window=(40.0, 400.0))
    wx.controls["width"].value = 80.0
    assert wx.controls["preset"].value == "brain"
    assert np.array_equal(shown(wx.image_widget), window(hu, center=40, width=80))


def test_window_explorer_refuses_8bit():
    with pytest.raises(InvalidImageError, match="8-bit"):
        WindowExplorer(np.zeros((8, 8), np.uint8))


def test_window_explorer_16bit_has_no_ct_presets():
    image = np.arange(4096, dtype=np.uint16).reshape(64, 64)
    wx = WindowExplorer(image)
    assert list(wx.controls["preset"].options) == ["custom", "full range"]


def test_window_explorer_to_pipeline(hu):
    wx = WindowExplorer(hu, window=(-600.0, 1500.0))
    assert np.array_equal(wx.to_pipeline()(hu), window(hu, center=-600, width=1500))


# -- VolumeExplorer ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    z, y, x = np.mgrid[0:24, 0:48, 0:40].astype(np.float32)
    ball = ((z - 12) ** 2 / 100 + (y - 24) ** 2 / 300 + (x - 20) ** 2 / 200) < 1
    return np.where(ball, 60.0, -900.0).astype(np.float32)


@pytest.mark.parametrize("k", [3, 12, 20], ids=["below-middle", "middle", "above-middle"])
def test_volume_explorer_shows_the_chosen_slice(volume, k):
    vx = VolumeExplorer(volume, window=(-400.0, 1200.0))
    assert vx.controls["slice"].value == 12
    vx.controls["slice"].value = k
    params = ExplorerParams(**vx.edges.params)
    assert np.array_equal(shown(vx.edges.image_widget), render(volume[k], params))
    assert vx.params["slice"] == k


@pytest.mark.parametrize("axis", [1, 2], ids=["axis1", "axis2"])
def test_volume_explorer_axis_switch(volume, axis):
    vx = VolumeExplorer(volume, window=(-400.0, 1200.0))
    vx.controls["axis"].value = axis
    n = volume.shape[axis]
    assert vx.controls["slice"].max == n - 1
    assert vx.controls["slice"].value == n // 2
    vx.controls["slice"].value = n // 2 - 3
    expected = render(np.take(volume, n // 2 - 3, axis=axis), ExplorerParams(**vx.edges.params))
    assert np.array_equal(shown(vx.edges.image_widget), expected)


def test_volume_explorer_edge_controls_work_on_slices(volume):
    vx = VolumeExplorer(volume, window=(-400.0, 1200.0))
    vx.controls["high"].value = 60.0
    vx.controls["slice"].value = 5
    assert vx.edges.params["high"] == 60.0
    assert np.array_equal(
        shown(vx.edges.image_widget), render(volume[5], ExplorerParams(**vx.edges.params))
    )
    # the window sliders span the whole volume, not one slice
    assert vx.controls["center"].min <= -900.0
    assert vx.controls["center"].max >= 60.0


def test_volume_explorer_checks_its_input(volume):
    with pytest.raises(InvalidImageError, match="3-D"):
        VolumeExplorer(volume[0])
    with pytest.raises(InvalidParameterError, match="axis must be"):
        VolumeExplorer(volume, axis=3)
    with pytest.raises(InvalidParameterError, match="index must be"):
        VolumeExplorer(volume, index=24)


def test_cache_is_the_render_cache_behind_the_picture(explorer, hu):
    cache = explorer.cache
    assert isinstance(cache, RenderCache) and np.array_equal(cache.image, hu)
    before = dict(cache.counts)
    picture = cache.render(ExplorerParams(**explorer.params))
    assert dict(cache.counts) == before  # every stage of the shown picture is already in it
    assert np.array_equal(shown(explorer.image_widget), picture)


# -- controls from one table, tooltips, timings, keys and mm in VolumeExplorer -------------------
def _explorers(hu, volume):
    from m1vision.widgets import TriPlanarExplorer, explore

    return {
        "edges": lambda: EdgeExplorer(hu),
        "window": lambda: WindowExplorer(hu),
        "volume": lambda: VolumeExplorer(volume),
        "triplanar": lambda: TriPlanarExplorer(volume),
        "function": lambda: explore(cv2.medianBlur, hu.astype(np.uint8), ksize=(1, 9, 2)),
    }


@pytest.mark.parametrize("kind", ["edges", "window", "volume", "triplanar", "function"])
def test_every_control_has_a_tooltip_from_the_one_table(hu, volume, kind):
    from m1vision.widgets._common import CONTROLS

    ex = _explorers(hu, volume)[kind]()
    assert ex.controls
    for name, control in ex.controls.items():
        assert len(control.tooltip or "") > 15, name
        if kind == "function":
            assert f"'{name}' of medianBlur" in control.tooltip
            continue
        spec = CONTROLS[name]
        if name != "full_resolution":  # its tooltip names this explorer's preview size
            assert control.tooltip == spec["tooltip"], name
        for key in ("step", "min", "readout_format"):
            if key in spec and name not in ("low", "high"):  # thresholds: max may grow
                assert getattr(control, key) == spec[key], (name, key)


def test_edge_controls_say_what_ksize_sigma_low_high_mean(explorer):
    c = explorer.controls
    assert "kernel size" in c["ksize"].tooltip and "odd" in c["ksize"].tooltip
    assert "standard deviation" in c["sigma"].tooltip
    assert "Canny low threshold" in c["low"].tooltip
    assert "Canny high threshold" in c["high"].tooltip
    assert "preview of <= 512 px" in c["full_resolution"].tooltip
    assert len(c["view"].tooltips) == len(c["view"].options)  # one per view button


def test_edge_timings_only_when_asked(hu):
    assert " ms" not in EdgeExplorer(hu).readout.value
    timed = EdgeExplorer(hu, timings=True)
    assert timed.readout.value.endswith(f"{timed.last_ms:.1f} ms")


def test_volume_explorer_arrow_keys_and_mm(volume):
    vx = VolumeExplorer(volume, window=(-400.0, 1200.0))
    event = vx.key_events
    assert event.source is vx.edges.image_widget and event.watched_events == ["keydown"]
    assert event.prevent_default_action is True
    assert vx.position.value == "S 12.0 mm"  # 1 mm voxels for a bare array
    for key in ("ArrowUp", "ArrowUp", "PageUp"):
        event._handle_mouse_msg(None, {"type": "keydown", "key": key}, [])
    assert vx.controls["slice"].value == 23  # 12 + 1 + 1 + 10, clipped to the last slice
    assert vx.position.value == "S 23.0 mm"
    assert np.array_equal(
        shown(vx.edges.image_widget), render(volume[23], ExplorerParams(**vx.edges.params))
    )
    vx.controls["axis"].value = 2
    assert vx.position.value == "L 20.0 mm"  # column 20 of 40, 1 mm, towards the left
