"""m1vision.widgets.TriPlanarExplorer: real ipywidgets and ipyevents, events fed from Python."""

from __future__ import annotations

import base64
import re

import cv2
import nibabel as nib
import numpy as np
import pytest

from m1vision.data import volume as sample_volume
from m1vision.errors import InvalidParameterError, OutputExistsError
from m1vision.planes import PLANES, TriPlanarParams, plane_geometry, render_plane, voxel_to_display
from m1vision.preprocess import WINDOW_PRESETS
from m1vision.widgets import TriPlanarExplorer


class _CT:
    """A MedicalImage-like CT volume: HU, anisotropic spacing, the package's affine."""

    def __init__(self, pixels, spacing):
        self.pixels, self.spacing, self.window, self.modality = pixels, spacing, None, "CT"
        sz, sr, sc = spacing
        affine = [[0, 0, -sc, 100.0], [0, -sr, 0, 50.0], [sz, 0, 0, -30.0], [0, 0, 0, 1]]
        self.metadata = {"affine": affine}


@pytest.fixture(scope="module")
def ct() -> _CT:
    """A deterministic phantom: air, a body ellipsoid of soft tissue, a bone rod."""
    z, y, x = np.mgrid[0:20, 0:48, 0:40].astype(np.float32)
    body = ((y - 24) / 20) ** 2 + ((x - 20) / 16) ** 2 < 1
    rod = ((y - 30) / 4) ** 2 + ((x - 14) / 4) ** 2 < 1
    hu = np.where(body, 40.0 + z, -1000.0)
    hu = np.where(rod & (z > 4), 900.0, hu)
    return _CT(hu.astype(np.float32), (2.5, 0.8, 0.8))


def shown(image_widget) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(bytes(image_widget.value), np.uint8), cv2.IMREAD_UNCHANGED)


def assert_shows_its_params(tx, volume):
    params = TriPlanarParams(**{**tx.params, "index": tuple(tx.params["index"])})
    for plane in PLANES:
        assert np.array_equal(
            shown(tx.image_widgets[plane]), render_plane(volume, plane, params)
        ), plane


def test_initial_view_is_the_middle_voxel_in_a_ct_window(ct):
    tx = TriPlanarExplorer(ct)
    assert tx.params["index"] == [10, 24, 20]
    assert tx.controls["preset"].value == "full range"
    assert "soft_tissue" in tx.controls["preset"].options  # a CT gets the CT presets
    assert tx.last_error is None
    assert_shows_its_params(tx, ct)
    # physical aspect: the coronal plane is 20 x 2.5 mm high, 40 x 0.8 mm wide
    h, w = shown(tx.image_widgets["coronal"]).shape[:2]
    assert abs(h / w - 50.0 / 32.0) < 0.02


@pytest.mark.parametrize("plane", PLANES)
def test_a_slice_slider_moves_the_crosshair_and_redraws_only_that_plane(ct, plane):
    tx = TriPlanarExplorer(ct)
    before = {p: tx.cache.counts[p] for p in PLANES}
    old = {p: bytes(tx.image_widgets[p].value) for p in PLANES}
    tx.controls[plane].value = 3
    assert tx.params["index"][plane_geometry(plane)[0]] == 3
    assert_shows_its_params(tx, ct)
    for p in PLANES:
        assert tx.cache.counts[p] == before[p] + (p == plane)
        assert bytes(tx.image_widgets[p].value) != old[p]  # every crosshair moved


@pytest.mark.parametrize("plane", PLANES)
def test_a_click_moves_the_crosshair_to_the_voxel_clicked(ct, plane):
    tx = TriPlanarExplorer(ct)
    target = (15, 30, 14)  # in the bone rod
    s_axis = plane_geometry(plane)[0]
    tx.controls[plane].value = target[s_axis]  # the plane that holds the target
    hw = shown(tx.image_widgets[plane]).shape[:2]
    x, y = voxel_to_display(plane, target, hw, ct.pixels.shape)
    tx.handle_event(plane, {"type": "click", "dataX": x, "dataY": y})
    assert tuple(tx.params["index"]) == target
    assert [tx.controls[p].value for p in PLANES] == [15, 30, 14]
    assert_shows_its_params(tx, ct)


def test_moving_the_mouse_shows_value_voxel_and_ras_without_moving_the_crosshair(ct):
    tx = TriPlanarExplorer(ct)
    index = tx.params["index"]
    hw = shown(tx.image_widgets["axial"]).shape[:2]
    x, y = voxel_to_display("axial", (10, 30, 14), hw, ct.pixels.shape)
    tx.handle_event("axial", {"type": "mousemove", "dataX": x, "dataY": y})
    assert tx.cursor_voxel == (10, 30, 14)
    ras = nib.affines.apply_affine(np.asarray(ct.metadata["affine"]), (10, 30, 14))
    text = tx.cursor.value
    assert text.startswith("900 HU at voxel (z 10, row 30, col 14)")
    assert "value under the mouse" in tx.cursor_label.value  # the line says what it shows
    numbers = [float(v) for v in re.findall(r"RAS \(([-\d.]+), ([-\d.]+), ([-\d.]+)\)", text)[0]]
    assert np.allclose(numbers, ras, atol=0.05)
    assert tx.params["index"] == index


def test_a_window_preset_applies_to_all_three_planes(ct):
    tx = TriPlanarExplorer(ct)
    tx.controls["preset"].value = "bone"
    assert (tx.params["center"], tx.params["width"]) == WINDOW_PRESETS["bone"]
    assert_shows_its_params(tx, ct)


def test_edge_controls_apply_to_all_three_planes(ct):
    tx = TriPlanarExplorer(ct, window=(40.0, 400.0))
    green = (0, 255, 0)
    assert all(shown(tx.image_widgets[p]).ndim == 2 for p in PLANES)  # gray without edges
    tx.set_params(edges=True, low=20.0, high=60.0)
    assert tx.params["edges"] and (tx.params["low"], tx.params["high"]) == (20.0, 60.0)
    assert all(np.all(shown(tx.image_widgets[p]) == green, axis=2).any() for p in PLANES)
    assert_shows_its_params(tx, ct)


def test_params_restore_the_same_view(ct):
    tx = TriPlanarExplorer(ct)
    tx.set_params(index=(4, 11, 30), center=300.0, width=1500.0, edges=True)
    again = TriPlanarExplorer(ct, params=tx.params)
    assert again.params == tx.params
    for plane in PLANES:
        assert bytes(again.image_widgets[plane].value) == bytes(tx.image_widgets[plane].value)


def test_a_bad_event_is_shown_and_the_explorer_keeps_working(ct):
    tx = TriPlanarExplorer(ct)
    tx.handle_event("axial", {"type": "mousemove"})  # no position
    assert isinstance(tx.last_error, KeyError)
    assert tx.error_area.layout.display is None and "KeyError" in tx.error_area.value
    tx.controls["axial"].value = 2
    assert tx.last_error is None and tx.error_area.layout.display == "none"
    assert_shows_its_params(tx, ct)


BAD = {
    "index outside": ({"index": (20, 0, 0)}, "index\\[0\\] must be < 20"),
    "unknown name": ({"zoom": 2}, "unknown setting"),
    "low above high": ({"low": 200.0, "high": 100.0}, "low <= high"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_set_params_checks_before_anything_moves(ct, case):
    tx = TriPlanarExplorer(ct)
    before = tx.params
    changes, match = BAD[case]
    with pytest.raises(InvalidParameterError, match=match):
        tx.set_params(**changes)
    assert tx.params == before


def test_the_mime_bundle_carries_a_static_picture_and_a_text_line(ct):
    tx = TriPlanarExplorer(ct)
    bundle = tx._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    png = cv2.imdecode(
        np.frombuffer(base64.b64decode(bundle["image/png"]), np.uint8), cv2.IMREAD_COLOR
    )
    pictures = [shown(tx.image_widgets[p]) for p in PLANES]
    x = 0
    for picture in pictures:  # the three planes, side by side, as the widgets show them
        h, w = picture.shape[:2]
        assert np.array_equal(png[:h, x : x + w], cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR))
        x += w + 4
    assert bundle["text/plain"] == (
        "TriPlanarExplorer: volume 20x48x40, crosshair (z 10, row 24, col 20), window -50/1900"
    )


@pytest.mark.parametrize("plane", PLANES)
def test_every_plane_has_mouse_events_wired(ct, plane):
    tx = TriPlanarExplorer(ct)
    event = tx.events[plane]
    assert event.source is tx.image_widgets[plane]
    assert set(event.watched_events) == {"mousemove", "click"}


def test_a_real_nifti_volume(tmp_path):
    vol = sample_volume()
    tx = TriPlanarExplorer(vol)
    assert tx.params["index"] == [12, 20, 16]
    assert_shows_its_params(tx, vol)
    assert tx.cache.letters["axial"]["left"] == "R"


# -- export for reports ------------------------------------------------------------------------
def test_export_png_writes_the_static_picture_and_refuses_to_overwrite(ct, tmp_path):
    tx = TriPlanarExplorer(ct)
    out = tx.export_png(tmp_path / "view.png")
    bundle = tx._repr_mimebundle_()
    assert out.read_bytes() == base64.b64decode(bundle["image/png"])
    with pytest.raises(OutputExistsError):
        tx.export_png(out)
    tx.controls["axial"].value = 3
    tx.export_png(out, overwrite=True)
    assert out.read_bytes() == base64.b64decode(tx._repr_mimebundle_()["image/png"])


def test_a_gif_sweep_has_one_frame_per_slice_close_to_the_pictures(ct, tmp_path):
    from PIL import Image, ImageSequence

    z = np.arange(ct.pixels.shape[0], dtype=np.float32)[:, None, None]
    ct = _CT(ct.pixels + 5.0 * z, ct.spacing)  # every slice differs (Pillow merges repeats)
    tx = TriPlanarExplorer(ct, window=(40.0, 400.0))
    out = tx.export_sweep(tmp_path / "sweep.gif", plane="axial", fps=5)
    with Image.open(out) as gif:
        frames = [np.asarray(f.convert("RGB"))[:, :, ::-1] for f in ImageSequence.Iterator(gif)]
        assert gif.info["duration"] == 200
    assert len(frames) == ct.pixels.shape[0]
    for k in (0, 7, 19):
        expected = render_plane(ct, "axial", TriPlanarParams(**{
            **tx.params, "index": (k, *tx.params["index"][1:])}))  # fmt: skip
        expected = cv2.cvtColor(expected, cv2.COLOR_GRAY2BGR)
        assert np.abs(frames[k].astype(int) - expected).mean() < 2.0  # GIF palette only


def test_an_mp4_sweep_of_the_sagittal_plane(ct, tmp_path):
    tx = TriPlanarExplorer(ct)
    out = tx.export_sweep(tmp_path / "sweep.mp4", plane="sagittal", step=2)
    video = cv2.VideoCapture(str(out))
    try:
        count = 0
        while video.read()[0]:
            count += 1
    finally:
        video.release()
    assert count == ct.pixels.shape[2] // 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [({"path": "sweep.avi"}, InvalidParameterError, ".gif or .mp4"),
     ({"path": "s.gif", "fps": 0}, InvalidParameterError, "fps must be > 0"),
     ({"path": "s.gif", "plane": "oblique"}, InvalidParameterError, "plane")],
    ids=["format", "fps", "plane"],
)  # fmt: skip
def test_sweep_arguments_are_checked(ct, tmp_path, kwargs, error, match):
    kwargs = {**kwargs, "path": tmp_path / kwargs["path"]}
    with pytest.raises(error, match=match):
        TriPlanarExplorer(ct).export_sweep(**kwargs)
    assert not list(tmp_path.iterdir())


# -- keys, positions in mm, timings, smooth thick slices -----------------------------------------
def press(event, key: str) -> None:
    """What ipyevents sends for a key pressed with the mouse over the picture."""
    event._handle_mouse_msg(None, {"type": "keydown", "key": key, "ctrlKey": False}, [])


@pytest.mark.parametrize("plane", PLANES)
def test_arrow_keys_over_a_picture_step_its_slice(ct, plane):
    tx = TriPlanarExplorer(ct)
    event = tx.key_events[plane]
    assert event.source is tx.image_widgets[plane]
    assert event.watched_events == ["keydown"]
    assert event.prevent_default_action is True  # the front end's shortcuts never see it
    assert event.wait == 0  # a throttled key would not be stopped
    axis = plane_geometry(plane)[0]
    start = tx.params["index"][axis]
    press(event, "ArrowUp")
    press(event, "ArrowUp")
    press(event, "ArrowDown")
    assert tx.params["index"][axis] == start + 1
    assert_shows_its_params(tx, ct)
    press(event, "End")
    assert tx.params["index"][axis] == ct.pixels.shape[axis] - 1
    press(event, "x")  # not a slice key: nothing moves
    assert tx.params["index"][axis] == ct.pixels.shape[axis] - 1
    others = [a for a in range(3) if a != axis]
    assert [tx.params["index"][a] for a in others] == [[10, 24, 20][a] for a in others]


def test_slice_positions_in_mm_beside_the_sliders(ct):
    tx = TriPlanarExplorer(ct)
    affine = np.asarray(ct.metadata["affine"], float)

    def expected(axis):
        world = int(np.argmax(np.abs(affine[:3, axis])))
        mm = nib.affines.apply_affine(affine, tx.params["index"])[world]
        return f"{('RAS' if mm >= 0 else 'LPI')[world]} {abs(mm):.1f} mm"

    for _ in range(2):
        for plane in PLANES:
            assert tx.positions[plane].value == expected(plane_geometry(plane)[0]), plane
        tx.set_params(index=(3, 40, 5))
    assert tx.positions["axial"].value == "I 22.5 mm"  # z 3 of 2.5 mm from -30 mm


def test_render_timings_only_when_asked(ct):
    assert " ms" not in TriPlanarExplorer(ct).readout.value
    assert re.search(r"\d+\.\d ms$", TriPlanarExplorer(ct, timings=True).readout.value)


def test_every_control_says_what_it_does(ct):
    tx = TriPlanarExplorer(ct)
    for name, control in tx.controls.items():
        assert len(control.tooltip or "") > 20, name
    assert "kernel size" in tx.controls["ksize"].tooltip
    assert "standard deviation" in tx.controls["sigma"].tooltip
    assert "low threshold" in tx.controls["low"].tooltip
    assert "high threshold" in tx.controls["high"].tooltip
    assert "arrow keys" in tx.controls["axial"].tooltip


def test_the_smooth_toggle(ct):
    tx = TriPlanarExplorer(ct)
    assert tx.params["smooth"] is True  # thick slices (2.5 mm) show smooth by default
    smooth = shown(tx.image_widgets["coronal"])
    tx.controls["smooth"].value = False
    sharp = shown(tx.image_widgets["coronal"])
    assert not np.array_equal(smooth, sharp)
    assert_shows_its_params(tx, ct)
    # a view restored from params without the field (recorded before it) stays sharp
    old = {k: v for k, v in tx.params.items() if k != "smooth"}
    assert TriPlanarExplorer(ct, params=old).params["smooth"] is False
