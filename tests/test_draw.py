"""Drawing functions: exact pixels where defined, shapes, no mutation, clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from m1vision import draw
from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
    M1VisionError,
)


@pytest.fixture
def gray():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60), dtype=np.uint8)


@pytest.fixture
def bgr(gray):
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


@pytest.fixture
def mask():
    m = np.zeros((40, 60), bool)
    m[10:20, 5:15] = True  # a 10x10 square
    m[30:33, 40:50] = True  # a 3x10 bar
    return m


# --------------------------------------------------------------------------- overlay_heatmap


def test_overlay_heatmap_alpha_one_is_the_colormap(gray):
    heat = np.tile(np.linspace(0, 1, 60, dtype=np.float32), (40, 1))
    out = draw.overlay_heatmap(gray, heat, alpha=1.0, colormap="jet")
    expected = cv2.applyColorMap(np.rint(heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    np.testing.assert_array_equal(out, expected)


def test_overlay_heatmap_alpha_zero_is_the_image(bgr):
    heat = np.ones(bgr.shape[:2], np.float32)
    np.testing.assert_array_equal(draw.overlay_heatmap(bgr, heat, alpha=0.0), bgr)


def test_overlay_heatmap_blends_linearly():
    img = np.full((2, 2), 100, np.uint8)
    heat = np.ones((2, 2), np.float32)  # jet at 1.0 is BGR (0, 0, 128)
    out = draw.overlay_heatmap(img, heat, alpha=0.25)
    # 0.75 * 100 + 0.25 * (0, 0, 128) = (75, 75, 107)
    assert out[0, 0].tolist() == [75, 75, 107]


def test_overlay_heatmap_uint8_heatmap_is_read_as_0_255(gray):
    heat8 = np.tile(np.arange(60, dtype=np.uint8) * 4, (40, 1))
    out8 = draw.overlay_heatmap(gray, heat8, alpha=1.0)
    outf = draw.overlay_heatmap(gray, heat8.astype(np.float32) / 255, alpha=1.0)
    np.testing.assert_array_equal(out8, outf)


# --------------------------------------------------------------------------- overlay_mask


def test_overlay_mask_exact_pixels(gray, mask):
    out = draw.overlay_mask(gray, mask, color=(10, 20, 250), alpha=0.5)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR).astype(np.float32)
    expected = base.copy()
    expected[mask] = 0.5 * base[mask] + 0.5 * np.array([10, 20, 250], np.float32)
    np.testing.assert_array_equal(out, np.rint(expected).astype(np.uint8))
    np.testing.assert_array_equal(out[~mask], base[~mask].astype(np.uint8))


def test_overlay_mask_opaque_paints_color(gray, mask):
    out = draw.overlay_mask(gray, mask, color=(1, 2, 3), alpha=1.0)
    assert (out[mask] == [1, 2, 3]).all()


def test_overlay_mask_takes_16_bit_images(mask):
    img16 = np.zeros((40, 60), np.uint16)
    img16[:, 30:] = 4000
    out = draw.overlay_mask(img16, mask, alpha=0.0)
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 59].tolist() == [255, 255, 255]


# --------------------------------------------------------------------------- masks, boxes, contours


def test_heatmap_to_mask_threshold():
    heat = np.array([[0.0, 0.49, 0.5, 1.0]], np.float32)
    assert draw.heatmap_to_mask(heat, threshold=0.5).tolist() == [[False, False, True, True]]
    assert draw.heatmap_to_mask(heat, threshold=1.0).tolist() == [[False, False, False, True]]


def test_mask_to_boxes_exact(mask):
    assert draw.mask_to_boxes(mask) == [(5, 10, 10, 10), (40, 30, 10, 3)]
    assert draw.mask_to_boxes(mask, min_area=31) == [(5, 10, 10, 10)]
    assert draw.mask_to_boxes(np.zeros((5, 5), bool)) == []


def test_mask_to_boxes_joins_diagonal_neighbours():
    m = np.eye(4, dtype=bool)  # 8-connected: one region
    assert draw.mask_to_boxes(m) == [(0, 0, 4, 4)]


def test_mask_contours_outline_the_regions(mask):
    contours = draw.mask_contours(mask)
    assert len(contours) == 2
    assert all(c.dtype == np.int32 and c.shape[1:] == (1, 2) for c in contours)
    boxes = sorted(cv2.boundingRect(c) for c in contours)
    assert boxes == sorted(draw.mask_to_boxes(mask))
    assert draw.mask_contours(np.zeros((5, 5), bool)) == []


def test_draw_contours_draws_the_outline_only(mask):
    img = np.zeros((40, 60), np.uint8)
    out = draw.draw_contours(img, draw.mask_contours(mask), color=(0, 0, 255))
    red = (out == [0, 0, 255]).all(axis=2)
    # The outline of the 10x10 square: its border pixels, not its inside.
    square = np.zeros_like(mask)
    square[10:20, 5:15] = True
    border = square & ~cv2.erode(square.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert red[border].all()
    assert not red[11:19, 6:14].any()
    assert not red[~cv2.dilate(mask.astype(np.uint8), np.ones((3, 3))).astype(bool)].any()


def test_draw_contours_accepts_k_by_2_points():
    pts = np.array([[1, 1], [1, 4], [4, 4], [4, 1]], np.int32)
    out = draw.draw_contours(np.zeros((6, 6), np.uint8), [pts], color=(0, 255, 0))
    assert out[1, 1].tolist() == [0, 255, 0]
    assert out[2, 2].tolist() == [0, 0, 0]


def test_draw_boxes_exact_outline():
    img = np.zeros((30, 30), np.uint8)
    out = draw.draw_boxes(img, [(3, 4, 10, 6)], color=(255, 0, 0))
    blue = (out == [255, 0, 0]).all(axis=2)
    expected = np.zeros((30, 30), bool)
    expected[4, 3:13] = expected[9, 3:13] = True  # rows y and y + h - 1
    expected[4:10, 3] = expected[4:10, 12] = True  # columns x and x + w - 1
    np.testing.assert_array_equal(blue, expected)


def test_draw_boxes_caption_has_filled_background_and_text():
    img = np.zeros((100, 100), np.uint8)
    out = draw.draw_boxes(img, [(20, 50, 40, 30)], labels=["lesion"], scores=[0.93])
    above = out[30:50, 20:70]  # the caption goes above the box
    yellow = (above == [0, 255, 255]).all(axis=2)
    dark = above.max(axis=2) < 100  # black text on yellow
    assert yellow.sum() > 100
    assert dark[yellow.any(axis=1)].sum() > 10  # text strokes inside the caption band
    # Without a caption nothing is drawn above the box.
    plain = draw.draw_boxes(img, [(20, 50, 40, 30)])
    assert not plain[30:50].any()


def test_draw_boxes_caption_fits_at_top_edge():
    out = draw.draw_boxes(np.zeros((60, 60), np.uint8), [(0, 0, 30, 30)], labels=["x"])
    assert (out[0:5, 0:5] == [0, 255, 255]).all(axis=2).any()


def test_draw_boxes_dark_color_gets_white_text():
    img = np.zeros((100, 100), np.uint8)
    out = draw.draw_boxes(img, [(20, 50, 40, 30)], labels=["abc"], color=(128, 0, 0))
    assert (out[30:50, 20:70] > 200).all(axis=2).any()


def test_draw_boxes_accepts_array_and_mask_to_boxes_output(gray, mask):
    boxes = draw.mask_to_boxes(mask)
    a = draw.draw_boxes(gray, boxes)
    b = draw.draw_boxes(gray, np.array(boxes))
    np.testing.assert_array_equal(a, b)
    assert draw.draw_boxes(gray, []).shape == (40, 60, 3)


# --------------------------------------------------------------------------- common contracts

CALLS = {
    "overlay_heatmap": lambda img, m: draw.overlay_heatmap(img, m.astype(np.float32) * 0.8),
    "overlay_mask": lambda img, m: draw.overlay_mask(img, m),
    "overlay_edges": lambda img, m: draw.overlay_edges(img, m.astype(np.uint8)),
    "draw_boxes": lambda img, m: draw.draw_boxes(
        img, draw.mask_to_boxes(m), labels=["a", "b"], scores=[0.5, 0.25]
    ),
    "draw_contours": lambda img, m: draw.draw_contours(img, draw.mask_contours(m)),
}


@pytest.mark.parametrize("name", list(CALLS), ids=list(CALLS))
@pytest.mark.parametrize("kind", ["gray", "bgr", "bgra", "uint16"], ids=str)
def test_returns_new_bgr_uint8_and_never_mutates(name, kind, gray, mask):
    image = {
        "gray": gray,
        "bgr": cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR),
        "bgra": cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA),
        "uint16": gray.astype(np.uint16) * 200,
    }[kind]
    before, mask_before = image.copy(), mask.copy()
    out = CALLS[name](image, mask)
    assert out.shape == (40, 60, 3)
    assert out.dtype == np.uint8
    assert not np.shares_memory(out, image)
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(mask, mask_before)


BAD = {
    "heatmap shape": (
        lambda img: draw.overlay_heatmap(img, np.zeros((10, 10), np.float32)),
        InvalidImageError,
        "must match",
    ),
    "heatmap range": (
        lambda img: draw.overlay_heatmap(img, np.full(img.shape, 2.0, np.float32)),
        InvalidImageError,
        r"\[0, 1\]",
    ),
    "heatmap nan": (
        lambda img: draw.overlay_heatmap(img, np.full(img.shape, np.nan, np.float32)),
        InvalidImageError,
        "NaN",
    ),
    "heatmap alpha": (
        lambda img: draw.overlay_heatmap(img, np.zeros(img.shape, np.float32), alpha=1.5),
        InvalidParameterError,
        "alpha",
    ),
    "colormap": (
        lambda img: draw.overlay_heatmap(img, np.zeros(img.shape, np.float32), colormap="nope"),
        InvalidParameterError,
        "colormap",
    ),
    "mask shape": (
        lambda img: draw.overlay_mask(img, np.zeros((3, 3), bool)),
        InvalidImageError,
        "mask has height x width",
    ),
    "mask 3-D": (
        lambda img: draw.overlay_mask(img, np.zeros((*img.shape, 3), bool)),
        InvalidImageError,
        "2-D",
    ),
    "mask alpha": (
        lambda img: draw.overlay_mask(img, np.zeros(img.shape, bool), alpha=-0.1),
        InvalidParameterError,
        "alpha",
    ),
    "mask color range": (
        lambda img: draw.overlay_mask(img, np.zeros(img.shape, bool), color=(0, 0, 300)),
        InvalidParameterError,
        "0-255",
    ),
    "mask color length": (
        lambda img: draw.overlay_mask(img, np.zeros(img.shape, bool), color=(0, 0)),
        InvalidParameterError,
        "triple",
    ),
    "mask list": (lambda img: draw.overlay_mask(img, [[1]]), TypeError, "ndarray"),
    "image list": (
        lambda img: draw.overlay_mask([[1]], np.zeros((1, 1), bool)),
        TypeError,
        "numpy.ndarray",
    ),
    "threshold": (
        lambda img: draw.heatmap_to_mask(np.zeros(img.shape, np.float32), threshold=0),
        InvalidParameterError,
        "threshold",
    ),
    "min_area": (
        lambda img: draw.mask_to_boxes(np.zeros(img.shape, bool), min_area=0),
        InvalidParameterError,
        "min_area",
    ),
    "box float": (
        lambda img: draw.draw_boxes(img, [(1.5, 2, 3, 4)]),
        InvalidParameterError,
        "integer",
    ),
    "box size": (
        lambda img: draw.draw_boxes(img, [(1, 2, 0, 4)]),
        InvalidParameterError,
        "width or height",
    ),
    "box length": (
        lambda img: draw.draw_boxes(img, [(1, 2, 3)]),
        InvalidParameterError,
        r"\(x, y, w, h\)",
    ),
    "labels length": (
        lambda img: draw.draw_boxes(img, [(1, 2, 3, 4)], labels=["a", "b"]),
        InvalidParameterError,
        "one entry per box",
    ),
    "scores value": (
        lambda img: draw.draw_boxes(img, [(1, 2, 3, 4)], scores=["high"]),
        TypeError,
        "scores",
    ),
    "thickness": (
        lambda img: draw.draw_boxes(img, [(1, 2, 3, 4)], thickness=0),
        InvalidParameterError,
        "thickness",
    ),
    "contour shape": (
        lambda img: draw.draw_contours(img, [np.zeros((3, 3), np.int32)]),
        InvalidParameterError,
        "contours",
    ),
    "contour float": (
        lambda img: draw.draw_contours(img, [np.zeros((3, 1, 2), np.float32)]),
        InvalidParameterError,
        "integer",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_raises_clear_error(case, gray):
    call, error, message = BAD[case]
    with pytest.raises(error, match=message):
        call(gray)


# Each message starts with the argument's name and says the fix; a wrong type is an
# InvalidTypeError (also a TypeError).
NAMED = {
    "mask-list": (lambda img: draw.overlay_mask(img, [[1]]), InvalidTypeError, "mask", "asarray"),
    "mask-3d": (
        lambda img: draw.overlay_mask(img, np.zeros((2, 40, 60), bool)),
        InvalidImageError,
        "mask",
        "mask[k]",
    ),
    "mask-empty": (
        lambda img: draw.mask_to_boxes(np.zeros((0, 4))),
        InvalidImageError,
        "mask",
        "Fix:",
    ),
    "mask-str-dtype": (
        lambda img: draw.mask_contours(np.full((4, 4), "a")),
        InvalidImageError,
        "mask",
        "astype(bool)",
    ),
    "heatmap-none": (
        lambda img: draw.heatmap_to_mask(None),
        InvalidTypeError,
        "heatmap",
        "grad_cam",
    ),
    "heatmap-int": (
        lambda img: draw.overlay_heatmap(img, np.zeros((40, 60), np.int32)),
        InvalidImageError,
        "heatmap",
        "normalize(heatmap)",
    ),
    "heatmap-nan": (
        lambda img: draw.overlay_heatmap(img, np.full((40, 60), np.nan, np.float32)),
        InvalidImageError,
        "heatmap",
        "nan_to_num",
    ),
    "alpha-str": (
        lambda img: draw.overlay_mask(img, img > 0, alpha="a"),
        InvalidTypeError,
        "alpha",
        "float()",
    ),
    "threshold-str": (
        lambda img: draw.heatmap_to_mask(np.zeros((4, 4), np.float32), threshold="a"),
        InvalidTypeError,
        "threshold",
        "float()",
    ),
    "color-str": (
        lambda img: draw.overlay_mask(img, img > 0, color="123"),
        InvalidParameterError,
        "color",
        "color=(0, 0, 255)",
    ),
    "color-300": (
        lambda img: draw.overlay_edges(img, img, color=(0, 0, 300)),
        InvalidParameterError,
        "color values",
        "clip them",
    ),
    "alpha-2": (
        lambda img: draw.overlay_heatmap(img, np.zeros(img.shape, np.float32), alpha=2),
        InvalidParameterError,
        "alpha",
        "alpha=0.4",
    ),
    "image-path": (
        lambda img: draw.overlay_edges("scan.png", img),
        InvalidTypeError,
        "image",
        "read_any",
    ),
}


@pytest.mark.parametrize(("call", "error", "argument", "fix"), NAMED.values(), ids=NAMED)
def test_bad_input_names_the_argument_and_the_fix(call, error, argument, fix, gray):
    with pytest.raises(error) as info:
        call(gray)
    assert isinstance(info.value, M1VisionError)
    message = str(info.value)
    assert message.startswith(f"{argument} "), message
    assert "Fix:" in message and fix in message, message
