"""m1vision.viz: matplotlib figures made without pyplot, BGR shown as RGB."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from m1vision import viz
from m1vision.errors import InvalidParameterError


def _rendered_rgb(fig: Figure) -> np.ndarray:
    png = viz.figure_to_png(fig)
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return bgr[:, :, ::-1]


def test_show_draws_bgr_as_rgb():
    # A pure BGR-blue image must come out blue in the rendered figure, not red.
    blue_bgr = np.zeros((16, 16, 3), np.uint8)
    blue_bgr[:] = (255, 0, 0)
    fig = viz.show(blue_bgr)
    rgb = _rendered_rgb(fig)
    h, w = rgb.shape[:2]
    center = rgb[h // 2, w // 2]
    assert center.tolist() == [0, 0, 255]


def test_show_grid_layout_and_titles():
    images = [np.full((8, 8), i * 40, np.uint8) for i in range(5)]
    fig = viz.show(images, titles=list("abcde"), cols=3)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5
    geometry = [ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes]
    assert set(geometry) == {(2, 3)}
    assert [ax.get_title() for ax in fig.axes] == list("abcde")


def test_show_single_array_and_default_columns():
    assert len(viz.show(np.zeros((4, 4), np.float32)).axes) == 1
    fig = viz.show([np.zeros((4, 4), np.uint8)] * 6)
    assert fig.axes[0].get_subplotspec().get_geometry()[:2] == (2, 4)


def test_show_gray_uses_the_colormap_and_keeps_values():
    img = np.arange(16, dtype=np.float32).reshape(4, 4) * 100.0
    fig = viz.show(img, cmap="bone")
    im = fig.axes[0].images[0]
    assert im.get_cmap().name == "bone"
    assert np.array_equal(im.get_array(), img)


def test_bgra_becomes_rgba():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0] = 255
    bgra[..., 3] = 128
    assert viz.to_rgb(bgra)[0, 0].tolist() == [0, 0, 255, 128]


def test_side_by_side_shows_a_then_b_with_their_titles():
    a, b = np.zeros((4, 4)), np.arange(16.0).reshape(4, 4)
    fig = viz.side_by_side(a, b, titles=("in", "out"), cmap="bone")
    assert [ax.get_title() for ax in fig.axes] == ["in", "out"]
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes] == [(1, 2)] * 2
    shown = [ax.images[0] for ax in fig.axes]
    assert np.array_equal(shown[0].get_array(), a) and np.array_equal(shown[1].get_array(), b)
    assert {im.get_cmap().name for im in shown} == {"bone"}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: viz.show([]), InvalidParameterError, "images is empty"),
        (lambda: viz.show([np.zeros((4, 4))], titles=["a", "b"]), InvalidParameterError, "2 "),
        (lambda: viz.show(np.zeros((4, 4)), cmap="nope"), InvalidParameterError, "colormap"),
        (lambda: viz.show("img.png"), TypeError, "images must be"),
        (lambda: viz.show([np.zeros((2, 2, 2, 2))]), ValueError, r"images\[0\]"),
        (lambda: viz.histogram(np.zeros((4, 4)), window=(0, 0)), InvalidParameterError, "> 0"),
        (
            lambda: viz.histogram(np.zeros((4, 4)), window=(float("nan"), 400)),
            InvalidParameterError,
            "center must be finite",
        ),
        (
            lambda: viz.histogram(np.zeros((4, 4)), window=(40, float("nan"))),
            InvalidParameterError,
            "width must be finite",
        ),
        (lambda: viz.figure_to_png("fig"), TypeError, "Figure"),
    ],
    ids=["empty", "titles", "cmap", "path", "4d", "window", "nan_center", "nan_width", "not_fig"],
)
def test_bad_input_is_refused_clearly(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_histogram_marks_the_window():
    hu = np.linspace(-1000, 1000, 10_000, dtype=np.float32).reshape(100, 100)
    fig = viz.histogram(hu, window=(40, 400), bins=50)
    ax = fig.axes[0]
    from matplotlib.patches import Rectangle

    # the shaded window: a rectangle from -160 to 240 in data units
    xs = [
        (round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6))
        for p in ax.patches
        if isinstance(p, Rectangle)
    ]
    assert xs == [(-160.0, 240.0)]
    assert [line.get_xdata()[0] for line in ax.lines] == [40]
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "window 40 / 400"
    counts = ax.patches[0].get_data().values
    assert counts.sum() == hu.size  # every pixel is counted once


def test_figure_to_png_makes_a_png_of_the_figure_size():
    fig = viz.show(np.zeros((8, 8), np.uint8), size=2.0)
    png = viz.figure_to_png(fig, dpi=50)
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (100, 100)


def test_importing_m1vision_does_not_import_matplotlib_or_ipywidgets():
    code = (
        "import sys, m1vision, m1vision.render, m1vision.widgets; "
        "print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_viz_does_not_touch_pyplot():
    code = "import sys, numpy, m1vision.viz as v; v.show(numpy.zeros((4, 4))); print('matplotlib.pyplot' in sys.modules)"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
