"""Label overlays in the explorers: pictures, cursor, label picker, state, record, exports."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest

from m1vision.draw import COMPARE_STYLES, draw_labels
from m1vision.errors import GridMismatchError, InvalidParameterError, RecordError
from m1vision.experiment import array_sha256, record, reproduce
from m1vision.io import MedicalImage, write_image
from m1vision.labels import label_map
from m1vision.pipeline import GaussianBlur, Pipeline
from m1vision.synthetic import PHANTOM_LABELS, ct_phantom, ct_phantom_labels
from m1vision.views import View
from m1vision.views.overlay import label_centroid
from m1vision.views.planes import PLANES, TriPlanarView, extract_plane, plane_geometry
from m1vision.widgets import TriPlanarExplorer

SHAPE = (20, 48, 48)
LIVER = 3


def bgr(value: int) -> tuple[int, int, int]:
    r, g, b = PHANTOM_LABELS[value]["color"]
    return b, g, r


@pytest.fixture(scope="module")
def labels():
    return ct_phantom_labels(SHAPE)


@pytest.fixture(scope="module")
def ct(labels):
    return MedicalImage(ct_phantom(SHAPE), spacing=labels.spacing, modality="CT",
                        metadata={"affine": labels.metadata["affine"]})  # fmt: skip


@pytest.fixture(scope="module")
def eroded(labels):
    """A second map: the labels eroded by one voxel in plane (a 'prediction')."""
    px = labels.pixels
    out = np.zeros_like(px)
    for value in PHANTOM_LABELS:
        for k in range(px.shape[0]):
            m = cv2.erode((px[k] == value).astype(np.uint8), np.ones((3, 3), np.uint8))
            out[k][m > 0] = value
    return label_map(out, like=labels)


def params(ct, labels, **changes):
    index = label_centroid(labels.pixels, LIVER)
    return {"index": list(index), "center": 40.0, "width": 400.0, "max_size": 96, **changes}


def plain_planes(ct, labels, p=None):
    p = p or params(ct, labels, crosshair=False)
    return TriPlanarView(ct, p).pictures()


def slices(pixels, p):
    return [extract_plane(pixels, plane, p["index"][plane_geometry(plane)[0]]) for plane in PLANES]


# -- pictures -------------------------------------------------------------------------------
@pytest.mark.parametrize("outline", [False, True], ids=["filled", "outlined"])
def test_the_planes_with_an_overlay_are_draw_labels_over_the_plain_planes(ct, labels, outline):
    p = params(ct, labels, crosshair=False)
    shown = TriPlanarView(
        ct, p, labels=labels, overlay={"outline": outline, "opacity": 0.5}
    ).pictures()
    plain = plain_planes(ct, labels, p)
    expected = [
        draw_labels(pic, lab, labels_info=labels.metadata["labels"], opacity=0.5, outline=outline)
        for pic, lab in zip(plain, slices(labels.pixels, p), strict=True)
    ]
    for got, want in zip(shown, expected, strict=True):
        assert np.array_equal(got, want)
    assert not np.array_equal(shown[0], cv2.cvtColor(plain[0], cv2.COLOR_GRAY2BGR))


def test_outlined_and_filled_differ_and_outline_leaves_the_inside_alone(ct, labels):
    p = params(ct, labels, crosshair=False, max_size=48)
    filled = TriPlanarView(ct, p, labels=labels, overlay={"opacity": 1.0}).pictures()[0]
    outlined = TriPlanarView(
        ct, p, labels=labels, overlay={"opacity": 1.0, "outline": True}
    ).pictures()[0]
    z, r, c = p["index"]
    assert labels.pixels[z, r, c] == LIVER
    assert tuple(filled[r, c]) == bgr(LIVER)  # axial picture is 48 x 48: one pixel a voxel
    assert tuple(outlined[r, c]) != bgr(LIVER)
    assert (np.all(outlined == bgr(LIVER), axis=2)).sum() > 0


def test_hidden_labels_are_not_drawn(ct, labels):
    p = params(ct, labels, crosshair=False, max_size=48)
    shown = TriPlanarView(
        ct, p, labels=labels, overlay={"opacity": 1.0, "hidden": [LIVER]}
    ).pictures()[0]
    assert not np.all(shown == bgr(LIVER), axis=2).any()
    plain = cv2.cvtColor(plain_planes(ct, labels, p)[0], cv2.COLOR_GRAY2BGR)
    liver = labels.pixels[p["index"][0]] == LIVER
    assert np.array_equal(shown[liver], plain[liver])


def test_reference_and_prediction_are_drawn_in_the_compare_styles(ct, labels, eroded):
    p = params(ct, labels, crosshair=False)
    shown = TriPlanarView(ct, p, labels=eroded, reference=labels).pictures()
    plain = plain_planes(ct, labels, p)
    info = labels.metadata["labels"]
    for got, pic, pred, ref in zip(shown, plain, slices(eroded.pixels, p),
                                   slices(labels.pixels, p), strict=True):  # fmt: skip
        want = draw_labels(pic, pred, labels_info=eroded.metadata["labels"], opacity=0.4,
                           **COMPARE_STYLES["prediction"])  # fmt: skip
        want = draw_labels(want, ref, labels_info=info, opacity=0.4, **COMPARE_STYLES["reference"])
        assert np.array_equal(got, want)
    alone = TriPlanarView(ct, p, labels=eroded).pictures()
    assert not np.array_equal(alone[0], shown[0])


def test_the_overlay_off_shows_the_plain_planes(ct, labels):
    p = params(ct, labels)
    shown = TriPlanarView(ct, p, labels=labels, overlay={"show": False}).pictures()
    for got, want in zip(shown, TriPlanarView(ct, p).pictures(), strict=True):
        assert np.array_equal(got, want)


# -- cursor and label picker ----------------------------------------------------------------
def test_the_label_under_the_cursor_is_named_beside_the_value(ct, labels):
    tx = TriPlanarExplorer(ct, labels=labels, max_size=48, index=params(ct, labels)["index"])
    z, r, c = tx.params["index"]
    tx.handle_event("axial", {"type": "mousemove", "dataX": c + 0.5, "dataY": r + 0.5})
    assert tx.cursor_voxel == (z, r, c)
    value = ct.pixels[z, r, c]
    assert tx.cursor.value.startswith(f"{value:.6g} HU \u00b7 liver at voxel")
    tx.handle_event("axial", {"type": "mousemove", "dataX": 0, "dataY": 0})  # air
    assert "\u00b7" not in tx.cursor.value


@pytest.mark.parametrize("value", sorted(PHANTOM_LABELS), ids=lambda v: PHANTOM_LABELS[v]["name"])
def test_jumping_to_a_label_lands_inside_it(ct, labels, value):
    tx = TriPlanarExplorer(ct, labels=labels, max_size=48)
    tx.controls["label"].value = value
    assert labels.pixels[tuple(tx.params["index"])] == value


def test_the_centroid_of_a_ring_is_a_voxel_of_the_ring():
    ring = np.zeros((1, 9, 9), np.uint8)
    ring[0, 1:8, 1:8] = 2
    ring[0, 2:7, 2:7] = 0
    voxel = label_centroid(ring, 2)
    assert ring[voxel] == 2
    assert voxel in {(0, 1, 4), (0, 4, 1), (0, 7, 4), (0, 4, 7)}
    with pytest.raises(InvalidParameterError, match="label 5 is not in the label map"):
        label_centroid(ring, 5)


def test_the_hide_list_and_opacity_slider_change_the_pictures(ct, labels):
    tx = TriPlanarExplorer(ct, labels=labels, max_size=48, index=params(ct, labels)["index"])
    assert len(tx.controls["hidden"].options) == len(PHANTOM_LABELS)
    before = tx.picture("axial")
    tx.controls["hidden"].value = (LIVER,)
    assert tx.state()["overlay"]["hidden"] == [LIVER]
    assert not np.array_equal(before, tx.picture("axial"))
    tx.set_overlay(opacity=1.0, hidden=())
    assert tx.state()["overlay"]["opacity"] == 1.0
    assert "liver" in tx.legend.value
    with pytest.raises(InvalidParameterError, match="opacity must be within 0-1"):
        tx.set_overlay(opacity=2.0)


# -- state, record, exports -----------------------------------------------------------------
def test_the_state_round_trips_through_json_to_the_same_pictures(ct, labels, eroded):
    tx = TriPlanarExplorer(ct, labels=eroded, reference=labels, max_size=64, outline=True,
                           hidden=[5], opacity=0.6)  # fmt: skip
    state = json.loads(json.dumps(tx.state()))
    assert state["overlay"]["maps"] == ["labels", "reference"]
    assert state["overlay"]["hidden"] == [5] and state["overlay"]["outline"] is True
    arrays = tx.view().arrays()
    again = TriPlanarExplorer.from_state(state, ct, **arrays)
    assert again.state() == tx.state()
    shown = [array_sha256(p) for p in tx.view().pictures()]
    assert [array_sha256(p) for p in again.view().pictures()] == shown
    bare = View.from_state(state, ct.pixels, labels=arrays["labels"],
                           reference=arrays["reference"])  # fmt: skip
    assert [array_sha256(p) for p in bare.pictures()] == shown
    with pytest.raises(RecordError, match=r"reference=\.\.\."):
        View.from_state(state, ct, labels=arrays["labels"])


def test_a_recorded_explorer_with_an_overlay_is_replayed(ct, labels, tmp_path):
    tx = TriPlanarExplorer(ct, labels=labels, max_size=48, hidden=[1])
    write_image(tmp_path / "in" / "a.png", np.zeros((8, 8), np.uint8))
    path = record("overlay", pipeline=Pipeline([GaussianBlur()]), inputs=tmp_path / "in",
                  out_dir=tmp_path / "experiments", explorers=[tx])  # fmt: skip
    assert reproduce(path).ok
    entry = json.loads(path.read_text())["explorers"][0]
    assert "labels" in entry["arrays"]
    again = TriPlanarExplorer.from_record(path)
    assert [array_sha256(p) for p in again.view().pictures()] == entry["shown_sha256"]
    assert again.state()["overlay"] == tx.state()["overlay"]
    kept = path.parent / entry["arrays"]["labels"]["array"]
    np.save(kept, np.zeros_like(labels.pixels))
    assert [d.kind for d in reproduce(path).differences] == ["explorer-input"]


def test_the_static_png_holds_the_overlay_colours(ct, labels):
    tx = TriPlanarExplorer(ct, labels=labels, max_size=48, opacity=1.0,
                           index=params(ct, labels)["index"])  # fmt: skip
    bundle = tx._repr_mimebundle_()
    png = cv2.imdecode(np.frombuffer(base64.b64decode(bundle["image/png"]), np.uint8),
                       cv2.IMREAD_COLOR)  # fmt: skip
    assert np.all(png == bgr(LIVER), axis=2).sum() > 20
    assert "labels overlaid" in bundle["text/plain"]


def test_the_gif_sweep_holds_the_overlay_colours(ct, labels, tmp_path):
    from PIL import Image

    tx = TriPlanarExplorer(ct, labels=labels, max_size=48, opacity=1.0)
    out = tx.export_sweep(tmp_path / "sweep.gif", plane="axial")
    with Image.open(out) as gif:
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            frames.append(np.asarray(gif.convert("RGB")))
    assert len(frames) == SHAPE[0]
    r, g, b = PHANTOM_LABELS[LIVER]["color"]
    near = [np.all(np.abs(f.astype(int) - (r, g, b)) <= 8, axis=2).sum() for f in frames]
    has_liver = [(labels.pixels[k] == LIVER).any() for k in range(SHAPE[0])]
    assert all(n > 0 for n, h in zip(near, has_liver, strict=True) if h)


# -- bad input --------------------------------------------------------------------------------
def test_labels_on_another_grid_are_refused_with_both_grids_and_the_fix(ct, labels):
    other = ct_phantom_labels((SHAPE[0], 40, 40))
    with pytest.raises(GridMismatchError, match="resample") as info:
        TriPlanarExplorer(ct, labels=other)
    assert "40" in str(info.value) and "48" in str(info.value)
    with pytest.raises(GridMismatchError):
        TriPlanarView(ct, params(ct, labels), labels=labels, reference=other)


def test_a_reference_without_labels_is_refused(ct, labels):
    with pytest.raises(InvalidParameterError, match="give labels="):
        TriPlanarExplorer(ct, reference=labels)


# -- the 2-D explorers: a mask --------------------------------------------------------------------
@pytest.fixture(scope="module")
def slice_and_mask(ct, labels):
    k = label_centroid(labels.pixels, LIVER)[0]
    return ct.pixels[k], labels.pixels[k]


@pytest.mark.parametrize("view_name", ["overlay", "edges", "curtain"])
def test_the_edge_view_draws_the_mask_over_its_picture(slice_and_mask, view_name):
    from m1vision.views import EdgeView

    image, mask = slice_and_mask
    p = {"center": 40.0, "width": 400.0, "view": view_name}
    shown = EdgeView(image, p, labels=mask, overlay={"outline": True}).pictures()[0]
    plain = EdgeView(image, p).pictures()[0]
    assert np.array_equal(shown, draw_labels(plain, mask, outline=True))


def test_the_edge_view_side_by_side_draws_the_mask_on_the_image_half(slice_and_mask):
    from m1vision.views import EdgeView

    image, mask = slice_and_mask
    p = {"center": 40.0, "width": 400.0, "view": "side_by_side"}
    shown = EdgeView(image, p, labels=mask).pictures()[0]
    plain = EdgeView(image, p).pictures()[0]
    half = plain.shape[1] // 2
    assert np.array_equal(shown[:, :half], draw_labels(plain[:, :half], mask))
    assert np.array_equal(shown[:, half:], plain[:, half:])


def test_a_zoomed_edge_view_draws_the_mask_of_the_region_shown(slice_and_mask):
    from m1vision.views import EdgeView
    from m1vision.views.edges import zoom_region

    image, mask = slice_and_mask
    p = {"center": 40.0, "width": 400.0, "view": "overlay", "zoom": 2.0, "pan_x": 0.4}
    shown = EdgeView(image, p, labels=mask).pictures()[0]
    plain = EdgeView(image, p).pictures()[0]
    r0, r1, c0, c1 = zoom_region(image.shape, zoom=2.0, pan_x=0.4, pan_y=0.5)
    assert np.array_equal(shown, draw_labels(plain, mask[r0:r1, c0:c1]))


def test_the_edge_explorer_with_a_mask_round_trips_its_state(slice_and_mask):
    from m1vision.widgets import EdgeExplorer

    image, mask = slice_and_mask
    ex = EdgeExplorer(image, window=(40, 400), labels=mask, opacity=0.7, hidden=[LIVER])
    ex.controls["outline"].value = True
    state = json.loads(json.dumps(ex.state()))
    assert state["overlay"]["outline"] is True and state["overlay"]["hidden"] == [LIVER]
    again = EdgeExplorer.from_state(state, image, **ex.view().arrays())
    assert again.state() == ex.state()
    assert np.array_equal(again.view().pictures()[0], ex.view().pictures()[0])
    shown = cv2.imdecode(np.frombuffer(bytes(ex.image_widget.value), np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(shown, ex.view().pictures()[0])
    with pytest.raises(InvalidParameterError, match="labels=mask"):
        ex.set_image(image)


def test_a_mask_of_another_shape_is_refused(slice_and_mask):
    from m1vision.widgets import EdgeExplorer

    image, mask = slice_and_mask
    with pytest.raises(GridMismatchError, match="resample"):
        EdgeExplorer(image, labels=mask[:-2])
