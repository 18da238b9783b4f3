"""draw_labels and the legend helpers: exact pixels against slow obvious references."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from m1vision import draw
from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
    LabelSidecarError,
    LabelValueError,
    M1VisionError,
)
from m1vision.labels import DEFAULT_PALETTE, default_color, label_map
from m1vision.synthetic import ct_phantom_labels


def bgr(rgb):
    return [rgb[2], rgb[1], rgb[0]]


@pytest.fixture
def picture():
    return np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)


@pytest.fixture
def labels():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 6, (6, 8), dtype=np.uint8)
    return np.repeat(np.repeat(small, 5, axis=0), 5, axis=1)  # 30 x 40, blocks of 5 px


INFO = {2: {"name": "liver", "color": [10, 200, 30]}, 4: {"name": "spleen", "color": [0, 0, 255]}}


def colour_of(value, info):
    entry = info.get(value, {})
    return bgr(entry.get("color", default_color(value)))


def slow_fill(picture, labels, info, opacity, hidden=()):
    out = picture.astype(np.float64).copy()
    for r in range(labels.shape[0]):
        for c in range(labels.shape[1]):
            v = int(labels[r, c])
            if v and v not in hidden:
                out[r, c] = (1 - opacity) * out[r, c] + opacity * np.array(colour_of(v, info))
    return np.rint(out).astype(np.uint8)


def slow_outline(labels):
    h, w = labels.shape
    edge = np.zeros((h, w), bool)
    for r in range(h):
        for c in range(w):
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                rr, cc = r + dr, c + dc
                other = labels[rr, cc] if 0 <= rr < h and 0 <= cc < w else 0
                if other != labels[r, c]:
                    edge[r, c] = True
    return edge & (labels > 0)


@pytest.mark.parametrize("opacity", [0.4, 0.75], ids=["0.4", "0.75"])
def test_fill_blends_each_label_in_its_colour(picture, labels, opacity):
    out = draw.draw_labels(picture, labels, labels_info=INFO, opacity=opacity)
    assert out.dtype == np.uint8
    assert out.shape == picture.shape
    np.testing.assert_array_equal(out, slow_fill(picture, labels, INFO, opacity))


def test_opacity_one_paints_the_colours_and_zero_changes_nothing(picture, labels):
    out = draw.draw_labels(picture, labels, labels_info=INFO, opacity=1.0)
    for v in range(1, 6):
        assert (out[labels == v] == colour_of(v, INFO)).all()
    np.testing.assert_array_equal(out[labels == 0], picture[labels == 0])
    np.testing.assert_array_equal(draw.draw_labels(picture, labels, opacity=0.0), picture)


def test_default_colours_are_the_labels_palette(picture):
    values = np.arange(0, 45, dtype=np.uint16).reshape(5, 9)  # wraps the 20-colour palette
    out = draw.draw_labels(np.zeros((5, 9, 3), np.uint8), values, opacity=1.0)
    for v in range(1, 45):
        r, c = divmod(v, 9)
        assert out[r, c].tolist() == bgr(DEFAULT_PALETTE[(v - 1) % len(DEFAULT_PALETTE)])
    assert out[0, 0].tolist() == [0, 0, 0]


def test_large_sparse_values_keep_their_own_colours():
    values = np.array([[0, 70_000], [1_000_000, 3]], np.uint32)
    info = {1_000_000: {"name": "big", "color": [1, 2, 3]}}
    out = draw.draw_labels(np.zeros((2, 2, 3), np.uint8), values, labels_info=info, opacity=1.0)
    assert out[0, 1].tolist() == bgr(default_color(70_000))
    assert out[1, 0].tolist() == [3, 2, 1]
    assert out[1, 1].tolist() == bgr(default_color(3))
    assert out[0, 0].tolist() == [0, 0, 0]


def test_outline_is_the_4_neighbour_boundary(picture, labels):
    out = draw.draw_labels(picture, labels, labels_info=INFO, opacity=1.0, outline=True)
    edge = slow_outline(labels)
    changed = (out != picture).any(axis=2)
    assert edge.any()
    assert not (changed & ~edge).any()  # nothing off the boundary
    for v in range(1, 6):
        assert (out[edge & (labels == v)] == colour_of(v, INFO)).all()


def test_outline_of_a_square_is_its_one_pixel_ring():
    lab = np.zeros((8, 8), np.uint8)
    lab[2:6, 2:6] = 1
    out = draw.draw_labels(np.zeros((8, 8, 3), np.uint8), lab, opacity=1.0, outline=True)
    drawn = out.any(axis=2)
    ring = np.zeros((8, 8), bool)
    ring[2:6, 2:6] = True
    ring[3:5, 3:5] = False
    np.testing.assert_array_equal(drawn, ring)


def test_a_label_at_the_edge_is_closed_there():
    lab = np.ones((4, 5), np.uint8)
    drawn = draw.draw_labels(np.zeros((4, 5, 3), np.uint8), lab, outline=True, opacity=1.0)
    expected = np.ones((4, 5), bool)
    expected[1:3, 1:4] = False
    np.testing.assert_array_equal(drawn.any(axis=2), expected)


def test_hidden_labels_are_not_drawn(picture, labels):
    out = draw.draw_labels(picture, labels, labels_info=INFO, opacity=0.4, hidden=(2, 5, 99))
    np.testing.assert_array_equal(out, slow_fill(picture, labels, INFO, 0.4, hidden=(2, 5)))
    np.testing.assert_array_equal(out[labels == 2], picture[labels == 2])


def test_dashed_draws_only_the_dash_pattern(picture, labels):
    solid = draw.draw_labels(picture, labels, opacity=1.0)
    dashed = draw.draw_labels(picture, labels, opacity=1.0, style="dashed")
    r, c = np.indices(labels.shape)
    on = ((r + c) // 4) % 2 == 0
    np.testing.assert_array_equal(dashed[on], solid[on])
    np.testing.assert_array_equal(dashed[~on], picture[~on])


def test_compare_styles_show_both_maps():
    pic = np.zeros((20, 20, 3), np.uint8)
    reference = np.zeros((20, 20), np.uint8)
    reference[4:16, 4:16] = 1
    prediction = np.zeros((20, 20), np.uint8)
    prediction[6:18, 6:18] = 1
    out = draw.draw_labels(pic, prediction, opacity=0.5, **draw.COMPARE_STYLES["prediction"])
    out = draw.draw_labels(out, reference, opacity=1.0, **draw.COMPARE_STYLES["reference"])
    colour = bgr(default_color(1))
    assert out[4, 4].tolist() == colour  # the reference's corner: a dash
    assert out[10, 10].tolist() == [round(0.5 * v) for v in colour]  # inside both: filled
    assert out[17, 17].tolist() == [round(0.5 * v) for v in colour]  # prediction only
    assert out[2, 2].tolist() == [0, 0, 0]


@pytest.mark.parametrize("shape", [(60, 80), (45, 100), (7, 9)], ids=["x2", "aspect", "smaller"])
def test_a_slice_of_another_size_is_resized_by_nearest_pixel_centres(labels, shape):
    pic = np.zeros((*shape, 3), np.uint8)
    out = draw.draw_labels(pic, labels, opacity=1.0)
    expected_lab = np.zeros(shape, labels.dtype)
    for i in range(shape[0]):
        for j in range(shape[1]):  # pixel centres: floor((i + 1/2) * n_in / n_out), exactly
            r = math.floor(Fraction(2 * i + 1, 2) * labels.shape[0] / shape[0])
            c = math.floor(Fraction(2 * j + 1, 2) * labels.shape[1] / shape[1])
            expected_lab[i, j] = labels[r, c]
    expected = draw.draw_labels(pic, expected_lab, opacity=1.0)
    np.testing.assert_array_equal(out, expected)


def test_a_label_map_gives_its_names_and_colours():
    lm = ct_phantom_labels((4, 48, 48))
    one = label_map(
        lm.pixels[2],
        labels={
            int(v): e for v, e in lm.metadata["labels"].items() if v in np.unique(lm.pixels[2])
        },
    )
    one.metadata["labels"][1]["color"] = [1, 2, 3]
    pic = np.zeros((48, 48, 3), np.uint8)
    out = draw.draw_labels(pic, one, opacity=1.0)
    assert (out[lm.pixels[2] == 1] == [3, 2, 1]).all()
    forced = draw.draw_labels(pic, one, labels_info={}, opacity=1.0)  # given info wins
    assert (forced[lm.pixels[2] == 1] == bgr(default_color(1))).all()


def test_gray_pictures_bool_masks_and_no_mutation():
    gray = np.full((3, 3), 100, np.uint8)
    mask = np.zeros((3, 3), bool)
    mask[1, 1] = True
    before = gray.copy(), mask.copy()
    out = draw.draw_labels(
        gray, mask, labels_info={1: {"name": "m", "color": [200, 0, 0]}}, opacity=0.5
    )
    assert out.shape == (3, 3, 3)
    assert out[1, 1].tolist() == [50, 50, 150]
    assert out[0, 0].tolist() == [100, 100, 100]
    np.testing.assert_array_equal(gray, before[0])
    np.testing.assert_array_equal(mask, before[1])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": np.array([[0.5, 1.0]])}, LabelValueError, "integers"),
        ({"labels": np.array([[-1, 1]])}, LabelValueError, "negative"),
        ({"labels": np.zeros((2, 2, 2), np.uint8)}, InvalidImageError, "one 2-D"),
        ({"picture": np.zeros((2, 2, 3), np.float32)}, InvalidImageError, "window"),
        ({"picture": np.zeros((2, 2, 4), np.uint8)}, InvalidImageError, "BGRA"),
        ({"opacity": 1.5}, InvalidParameterError, "opacity"),
        ({"style": "dotted"}, InvalidParameterError, "style"),
        ({"hidden": 3}, TypeError, "hidden"),
        ({"labels_info": {1: {"color": [300, 0, 0]}}}, LabelSidecarError, "0-255"),
    ],
    ids=[
        "float",
        "negative",
        "3d",
        "float-picture",
        "bgra",
        "opacity",
        "style",
        "hidden",
        "colour",
    ],
)
def test_bad_input_is_refused_with_the_fix(kwargs, error, match):
    args = {"picture": np.zeros((2, 2, 3), np.uint8), "labels": np.array([[0, 1], [1, 0]])}
    args.update(kwargs)
    picture, labels = args.pop("picture"), args.pop("labels")
    with pytest.raises(error, match=match):
        draw.draw_labels(picture, labels, **args)


def test_legend_entries_html_and_picture():
    entries = draw.legend_entries(INFO, values=[0, 2, 3, 4], hidden=(4,))
    assert entries == [(2, "liver", (30, 200, 10)), (3, "label 3", tuple(bgr(default_color(3))))]
    lm = label_map(np.array([[0, 1], [2, 2]], np.uint8), labels={2: {"name": "a<b"}})
    assert [e[:2] for e in draw.legend_entries(lm)] == [(1, "label 1"), (2, "a<b")]
    html = draw.legend_html(draw.legend_entries(lm))
    assert "a&lt;b" in html
    assert f"rgb({','.join(map(str, default_color(2)))})" in html
    pic = draw.draw_legend(entries, row_height=20, width=100)
    assert pic.shape == (44, 100, 3)
    assert pic[2 + 10, 6].tolist() == [30, 200, 10]
    assert pic[2 + 20 + 10, 6].tolist() == bgr(default_color(3))
    assert (pic[2:22, 30:] > 0).any()  # the text


@pytest.mark.parametrize(
    "take",
    [lambda v: v[:, 20, :], lambda v: v[:, :, 30], lambda v: v[3].T, lambda v: v[3, ::2, ::2]],
    ids=["coronal", "sagittal", "transposed", "strided"],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32], ids=["u8", "u16", "i32"])
def test_views_of_a_volume_draw_as_their_copies(take, dtype):
    volume = ct_phantom_labels((8, 64, 64)).pixels.astype(dtype)
    view = take(volume)
    pic = np.random.default_rng(2).integers(0, 256, (*view.shape, 3), dtype=np.uint8)
    for outline in (False, True):
        got = draw.draw_labels(pic, view, outline=outline)
        want = draw.draw_labels(pic, np.ascontiguousarray(view), outline=outline)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        draw.draw_labels(pic, view, opacity=0.4),
        slow_fill(pic, np.ascontiguousarray(view), {}, 0.4),
    )


LEGEND_BAD = {
    "html-entries-none": (lambda: draw.legend_html(None), InvalidTypeError, "entries"),
    "html-entries-str": (lambda: draw.legend_html("liver"), InvalidTypeError, "entries"),
    "html-entry-pair": (
        lambda: draw.legend_html([(1, "liver")]),
        InvalidParameterError,
        "entries[0]",
    ),
    "picture-colour-300": (
        lambda: draw.draw_legend([(1, "liver", (300, 0, 0))]),
        InvalidParameterError,
        "entries[0]",
    ),
    "picture-value-str": (
        lambda: draw.draw_legend([(1, "liver", (1, 2, 3)), ("2", "spleen", (1, 2, 3))]),
        InvalidParameterError,
        "entries[1]",
    ),
    "entries-values-str": (
        lambda: draw.legend_entries({1: {"name": "liver"}}, values=["a"]),
        InvalidTypeError,
        "values[0]",
    ),
    "entries-values-scalar": (
        lambda: draw.legend_entries({1: {"name": "liver"}}, values=3),
        InvalidTypeError,
        "values",
    ),
    "entries-info-list": (lambda: draw.legend_entries([1, 2]), InvalidTypeError, "labels_info"),
    "entries-hidden-str": (
        lambda: draw.legend_entries({1: {"name": "liver"}}, hidden="1"),
        InvalidTypeError,
        "hidden",
    ),
}


@pytest.mark.parametrize(("call", "error", "argument"), LEGEND_BAD.values(), ids=LEGEND_BAD)
def test_bad_legend_input_names_the_argument_and_the_fix(call, error, argument):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, M1VisionError)
    message = str(info.value)
    assert message.startswith(f"{argument} must be"), message
    assert "Fix:" in message, message


def test_legend_entries_checked_are_drawn_as_given():
    entries = [(np.int64(1), "liver", [75, 25, 230])]
    assert draw.legend_html(entries) == draw.legend_html([(1, "liver", (75, 25, 230))])
    assert draw.draw_legend(entries)[2 + 9, 8].tolist() == [75, 25, 230]
