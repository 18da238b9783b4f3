"""m1vision.widgets.explore: any image function on controls built from its signature."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import pytest
from skimage.filters import gaussian

from m1vision.errors import InvalidParameterError
from m1vision.pipeline import GaussianBlur, Pipeline
from m1vision.preprocess import to_uint8
from m1vision.widgets import explore


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(1)
    img = np.zeros((96, 128), np.uint8)
    img[24:72, 32:96] = 180
    return cv2.add(img, rng.integers(0, 40, img.shape, dtype=np.uint8))


def shown(fx) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(bytes(fx.image_widget.value), np.uint8), cv2.IMREAD_UNCHANGED)


CALLS = []


def brighten(
    image,
    gain: float = 1.5,
    offset: int = 10,
    invert: bool = False,
    channel: Literal["all", "none"] = "all",
    note: str = "free text",
    mask=None,
):
    CALLS.append((gain, offset, invert, channel))
    out = cv2.convertScaleAbs(image, alpha=gain, beta=offset)
    return 255 - out if invert else out


def test_controls_come_from_the_signature_and_defaults(image):
    fx = explore(brighten, image, gain=(0.5, 3.0))
    kinds = {name: type(c).__name__ for name, c in fx.controls.items()}
    assert kinds == {
        "gain": "FloatSlider",
        "offset": "IntSlider",
        "invert": "Checkbox",
        "channel": "Dropdown",
    }  # note and mask keep their defaults
    assert (fx.controls["gain"].min, fx.controls["gain"].max) == (0.5, 3.0)  # the user's range
    assert (fx.controls["offset"].min, fx.controls["offset"].max) == (0, 30)  # from 10
    assert fx.params == {"gain": 1.5, "offset": 10, "invert": False, "channel": "all"}
    assert np.array_equal(shown(fx), brighten(image, **fx.params))


@pytest.mark.parametrize(
    ("name", "value"),
    [("gain", 2.25), ("offset", 25), ("invert", True), ("channel", "none")],
    ids=["float", "int", "bool", "choice"],
)
def test_moving_a_control_shows_the_functions_output(image, name, value):
    fx = explore(brighten, image)
    fx.controls[name].value = value
    assert fx.params[name] == value
    assert np.array_equal(shown(fx), brighten(image, **fx.params))
    assert fx.last_error is None


def test_a_setting_seen_before_is_served_from_the_encoded_cache(image):
    fx = explore(brighten, image)
    fx.controls["offset"].value = 20
    calls = len(CALLS)
    fx.controls["offset"].value = 10
    fx.controls["offset"].value = 20
    assert len(CALLS) == calls  # both pictures were encoded before
    assert np.array_equal(shown(fx), brighten(image, **fx.params))


def test_a_scikit_image_function(image):
    fx = explore(gaussian, image, sigma=(0.5, 5.0))
    assert {"sigma", "truncate", "preserve_range"} <= set(fx.controls)
    fx.controls["sigma"].value = 2.0
    expected = gaussian(image, **fx.params).astype(np.float32)
    assert fx.params["sigma"] == 2.0
    assert np.array_equal(shown(fx), to_uint8(expected))


def test_an_opencv_builtin_with_named_controls_and_its_code(image):
    fx = explore(cv2.medianBlur, image, ksize=(1, 9, 2))
    fx.controls["ksize"].value = 5
    assert np.array_equal(shown(fx), cv2.medianBlur(image, 5))
    namespace = {"image": image}
    exec(fx.code(), namespace)
    assert np.array_equal(namespace["result"], cv2.medianBlur(image, 5))


def test_an_m1vision_step_exports_a_pipeline(image):
    fx = explore(GaussianBlur, image, ksize=(1, 15, 2))
    fx.controls["ksize"].value = 7
    pipe = fx.to_pipeline()
    assert Pipeline.from_json(pipe.to_json()).to_json() == pipe.to_json()
    assert np.array_equal(shown(fx), cv2.GaussianBlur(image, (7, 7), 0))  # OpenCV's own blur
    assert np.array_equal(pipe(image), shown(fx))
    namespace = {"image": image}
    exec(fx.code(), namespace)
    assert np.array_equal(namespace["result"], pipe(image))


def test_an_error_is_shown_and_the_explorer_keeps_working(image):
    fx = explore(GaussianBlur, image)  # ksize 0..15 from the default 5: even values fail
    good = bytes(fx.image_widget.value)
    fx.controls["ksize"].value = 4
    assert isinstance(fx.last_error, InvalidParameterError)
    assert "ksize" in fx.error_area.value and fx.error_area.layout.display is None
    assert bytes(fx.image_widget.value) == good  # the last good picture stays
    fx.controls["ksize"].value = 9
    assert fx.last_error is None and fx.error_area.layout.display == "none"


def test_an_output_that_is_not_an_image_is_shown_as_an_error(image):
    fx = explore(lambda img, k=1: float(img.mean()) * k, image)
    assert isinstance(fx.last_error, TypeError)
    assert "the output of" in str(fx.last_error)


def _no_default(image, radius):
    return image


def _tuple_default(image, size=(3, 3)):
    return image


BAD = {
    "no default": (lambda img: explore(_no_default, img), "'radius' .* no default"),
    "unknown type": (lambda img: explore(_tuple_default, img), "'size' .* no control fits"),
    "unknown name": (lambda img: explore(brighten, img, radius=(1, 2)), "not parameters"),
    "bad range": (lambda img: explore(brighten, img, gain=(3.0, 1.0)), "low < high"),
    "builtin without names": (lambda img: explore(cv2.medianBlur, img), "ksize=\\(1, 15, 2\\)"),
    "not a step": (lambda img: explore(brighten, img).to_pipeline(), "not an m1vision"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_names_the_parameter_and_the_fix(image, case):
    call, match = BAD[case]
    with pytest.raises(InvalidParameterError, match=match) as info:
        call(image)
    if case in ("no default", "unknown type"):
        assert "=(low, high)" in str(info.value)  # how to pass a range
