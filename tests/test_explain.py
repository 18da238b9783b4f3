"""Grad-CAM on small real Keras models: layer choice, shapes, ranges, localisation, errors.

The shipped demo model's localisation is tested in test_demo_model.py.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.explain import conv_layer_names, grad_cam

pytestmark = pytest.mark.slow


def _spot_detector(*, sequential: bool):
    """A fixed-weight CNN whose "spot" class score is the mean of a bright-spot map.

    conv (3x3 box filter, ReLU after -0.5 offset) -> GAP -> dense: class 1 grows with the
    bright area, class 0 shrinks, so the evidence for class 1 is exactly where the spot is.
    """
    layers = [
        keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="spots"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ]
    if sequential:
        model = keras.Sequential([keras.Input((32, 32, 1)), *layers])
    else:
        inputs = keras.Input((32, 32, 1))
        x = inputs
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    model.get_layer("spots").set_weights(
        [np.full((3, 3, 1, 1), 1 / 9, np.float32), np.array([-0.5], np.float32)]
    )
    model.get_layer("out").set_weights(
        [np.array([[-50.0, 50.0]], np.float32), np.array([0.3, -0.3], np.float32)]
    )
    return model


def _spot_image():
    img = np.zeros((32, 32), np.float32)
    img[20:26, 4:10] = 1.0
    return img


@pytest.mark.parametrize("sequential", [False, True], ids=["functional", "sequential"])
def test_heatmap_marks_the_evidence(sequential):
    model = _spot_detector(sequential=sequential)
    img = _spot_image()
    heat = grad_cam(model, img, class_index=1)
    assert heat.shape == (32, 32)
    assert heat.dtype == np.float32
    assert float(heat.max()) == pytest.approx(1.0)
    assert float(heat.min()) >= 0.0
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert img[y, x] == 1.0
    assert heat[0:10, 20:32].max() == 0.0  # far from the spot: no evidence
    # closed form: one map A = relu(3x3 box mean - 0.5) with a positive weight for class 1,
    # so the heat is A / max(A) (SciPy's correlate as the independent box filter)
    from scipy import ndimage

    spots = np.maximum(ndimage.correlate(img, np.full((3, 3), 1 / 9), mode="constant") - 0.5, 0)
    np.testing.assert_allclose(heat, spots / spots.max(), atol=1e-5)


def test_default_class_is_the_predicted_one():
    model = _spot_detector(sequential=False)
    img = _spot_image()
    predicted = int(np.argmax(model.predict(img[None, :, :, None], verbose=0)[0]))
    assert predicted == 1
    np.testing.assert_array_equal(grad_cam(model, img), grad_cam(model, img, class_index=1))


def test_evidence_against_a_class_gives_zeros():
    # Class 0 falls where the spot is: no positive evidence anywhere.
    heat = grad_cam(_spot_detector(sequential=False), _spot_image(), class_index=0)
    assert not heat.any()


def test_resized_to_the_image_and_preprocess_used():
    model = _spot_detector(sequential=False)
    big = np.zeros((96, 64), np.uint8)
    big[60:78, 8:20] = 255
    calls = []

    def prep(image):
        calls.append(image.shape)
        import cv2

        return cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32) / 255

    heat = grad_cam(model, big, class_index=1, preprocess=prep)
    assert calls == [(96, 64)]
    assert heat.shape == (96, 64)
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert 60 <= y < 78 and 8 <= x < 20


def test_default_layer_is_the_last_conv_layer():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(2, 3, name="first")(inputs)
    x = keras.layers.Conv2D(2, 3, name="second")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    assert conv_layer_names(model) == ["first", "second"]
    img = np.random.default_rng(0).random((16, 16), np.float32)
    np.testing.assert_array_equal(grad_cam(model, img), grad_cam(model, img, layer="second"))
    assert grad_cam(model, img, layer="first").shape == (16, 16)


def test_unbuilt_sequential_model_is_built_on_first_use():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.layers.Conv2D(3, 3), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    )
    heat = grad_cam(model, np.random.default_rng(1).random((20, 20), np.float32))
    assert heat.shape == (20, 20)
    assert 0.0 <= float(heat.min()) <= float(heat.max()) <= 1.0


def test_mobilenetv2_untrained():
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=10)
    img = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)

    def prep(image):
        import cv2

        return cv2.resize(image, (96, 96)).astype(np.float32) / 127.5 - 1.0

    heat = grad_cam(model, img, preprocess=prep)
    assert heat.shape == (120, 100)
    assert heat.dtype == np.float32
    assert 0.0 <= float(heat.min()) <= float(heat.max()) <= 1.0
    assert conv_layer_names(model)[-1] == "Conv_1"


def test_errors():
    model = _spot_detector(sequential=False)
    img = _spot_image()
    with pytest.raises(InvalidParameterError, match=r"no layer named 'nope'.*spots"):
        grad_cam(model, img, layer="nope")
    with pytest.raises(InvalidParameterError, match="no spatial"):
        grad_cam(model, img, layer="gap")
    with pytest.raises(InvalidParameterError, match="class_index must be < 2"):
        grad_cam(model, img, class_index=2)
    with pytest.raises(InvalidImageError, match=r"expects input of shape \(batch, 32, 32, 1\)"):
        grad_cam(model, np.zeros((40, 40), np.float32))
    with pytest.raises(TypeError, match=r"keras\.Model"):
        grad_cam("model.keras", img)
    with pytest.raises(TypeError, match="layer must be a layer name"):
        grad_cam(model, img, layer=3)
    with pytest.raises(TypeError, match="preprocess must return an ndarray"):
        grad_cam(model, img, preprocess=lambda im: im.tolist())

    dense_only = keras.Sequential(
        [keras.Input((32, 32, 1)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    with pytest.raises(InvalidParameterError, match="no convolution layer"):
        grad_cam(dense_only, img)


def test_input_not_modified():
    model = _spot_detector(sequential=False)
    img = _spot_image()
    before = img.copy()
    grad_cam(model, img, preprocess=lambda im: im * 1.0)
    np.testing.assert_array_equal(img, before)
