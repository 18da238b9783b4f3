"""The Segmenter's device blend (torch tensors where the model runs, the GPU's code path),
forced onto the CPU: the same windows, weights and labels as the host blend and the slow,
obvious reference of test_segmenter.py; NaN refused on the device; the stage clock.

Runs under Keras' torch backend only (``KERAS_BACKEND=torch pytest
tests/test_segmenter_device.py``, torch installed; ``make test-backends`` does where torch is
installed); other runs leave the module out (``tests/conftest.py``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from m1vision.errors import InvalidImageError
from m1vision.io import MedicalImage

if keras.config.backend() != "torch":
    pytest.skip("the device blend runs under Keras' torch backend", allow_module_level=True)

from test_segmenter import (
    TOL,
    conv_model,
    pointwise_model,
    reference,
    volume,
)

from m1vision.inference import Segmenter
from m1vision.inference._clock import StageClock


def _pair(model, **kwargs):
    """The same Segmenter twice: blending on the device (torch, CPU) and on the host."""
    device = Segmenter(model, device="cpu", **kwargs)
    device._device_blend = True
    host = Segmenter(model, device="cpu", **kwargs)
    host._device_blend = False
    return device, host


CASES = [
    pytest.param("patches", (6, 8, 8), (7, 13, 21), False, id="patches-uneven"),
    pytest.param("patches", (6, 8, 8), (5, 11, 17), True, id="patches-tta"),
    pytest.param("patches", (8, 8, 8), (3, 5, 30), False, id="patches-padded-axes"),
    pytest.param("slices", (8, 8), (3, 13, 19), True, id="slices-tta"),
    pytest.param("slices", (16, 16), (3, 9, 12), False, id="slices-smaller-than-window"),
]


@pytest.mark.parametrize(("mode", "window", "shape", "tta"), CASES)
def test_device_blend_equals_the_reference_and_the_host(mode, window, shape, tta):
    vol = volume(shape, seed=3)
    model = conv_model(window, seed=1)
    device, host = _pair(model, mode=mode, tta=tta, overlap=0.5, batch_size=3)
    probs = device.segment(vol, probabilities=True)
    assert probs.metadata["segmentation"]["blended_on"] == "cpu"
    assert probs.pixels.dtype == np.float32 and probs.pixels.flags.c_contiguous
    full_window = (1, *window) if mode == "slices" else window
    overlap = (0.0, 0.5, 0.5) if mode == "slices" else (0.5, 0.5, 0.5)
    slow = reference(model, vol.pixels, full_window, overlap, "gaussian", tta, mode == "slices")
    assert_allclose(probs.pixels, slow, atol=TOL)
    on_host = host.segment(vol, probabilities=True)
    assert on_host.metadata["segmentation"]["blended_on"] == "host"
    assert_allclose(probs.pixels, on_host.pixels, atol=1e-6)
    labels, host_labels = device.segment(vol), host.segment(vol)
    assert labels.pixels.dtype == np.uint8
    assert_array_equal(labels.pixels, host_labels.pixels)
    assert labels.metadata["labels"] == host_labels.metadata["labels"]
    assert len(np.unique(labels.pixels)) > 1  # more than one label: the argmax is checked


@pytest.mark.parametrize("classes", [1, 3], ids=["sigmoid", "softmax"])
def test_device_blend_turns_logits_into_probabilities(classes):
    inputs = keras.Input((6, 8, 8, 1))
    conv = keras.layers.Conv3D(classes, 3, padding="same")
    model = keras.Model(inputs, conv(inputs))
    rng = np.random.default_rng(4)
    kernel = rng.normal(0, 0.05, (3, 3, 3, 1, classes)).astype(np.float32)
    conv.set_weights([kernel, rng.normal(0, 0.3, classes).astype(np.float32)])
    vol = volume((7, 13, 21), seed=2)
    device, host = _pair(model, overlap=0.5)
    assert device.from_logits
    probs = device.segment(vol, probabilities=True).pixels
    assert_allclose(probs, host.segment(vol, probabilities=True).pixels, atol=1e-6)
    assert_array_equal(device.segment(vol).pixels, host.segment(vol).pixels)


@pytest.mark.parametrize(
    "dtype", [np.int16, np.uint8, np.float64], ids=["int16", "uint8", "float64"]
)
def test_device_blend_of_other_dtypes_and_a_card_intensity(dtype):
    """Integers are uploaded as they are and made float32 on the device; the card's
    intensity preparation runs there; the caller's array is left alone."""
    rng = np.random.default_rng(6)
    px = rng.integers(0, 200, (5, 11, 17)).astype(dtype)
    before = px.copy()
    vol = MedicalImage(px, spacing=(1.0, 1.0, 1.0), metadata={"layout": "volume"})
    card = {"intensity": {"clip": [20.0, 150.0], "mean": 60.0, "std": 40.0}}
    device, host = _pair(conv_model((6, 8, 8), seed=1), overlap=0.5, card=card)
    assert_allclose(
        device.segment(vol, probabilities=True).pixels,
        host.segment(vol, probabilities=True).pixels,
        atol=1e-6,
    )
    assert_array_equal(device.segment(vol).pixels, host.segment(vol).pixels)
    assert_array_equal(px, before)


def test_device_blend_refuses_nan_with_the_hosts_message():
    px = volume((5, 11, 17)).pixels
    px[1, 2, 3], px[4, 0, 0] = np.nan, np.inf
    vol = MedicalImage(px, spacing=(1.0, 1.0, 1.0), metadata={"layout": "volume"})
    device, host = _pair(pointwise_model((6, 8, 8)), overlap=0.5)
    with pytest.raises(InvalidImageError) as on_device:
        device.segment(vol)
    with pytest.raises(InvalidImageError) as on_host:
        host.segment(vol)
    assert "2 NaN or infinite" in str(on_device.value)
    assert str(on_device.value) == str(on_host.value)


def test_stage_clock_names_every_stage_once_per_batch():
    vol = volume((7, 13, 21), seed=1)
    device, _ = _pair(conv_model((6, 8, 8)), overlap=0.5, batch_size=4)
    device._stage_clock = clock = StageClock()
    out = device.segment(vol)
    batches = -(-out.metadata["segmentation"]["windows"] // 4)
    assert clock.counts == {
        "checks": 1,
        "upload": 1,
        "prepare": 1,
        "cut windows": batches,
        "model": batches,
        "accumulate": batches,
        "normalise": 1,
        "argmax": 1,
        "labels present": 1,
        "download": 1,
        "output": 1,
    }
    assert all(s >= 0 for s in clock.seconds.values())
