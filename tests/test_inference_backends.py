"""Backend-neutral inference: the same tests under every Keras 3 backend.

`make test` runs this file twice: in the main pytest run (KERAS_BACKEND unset: TensorFlow)
and in a second run with KERAS_BACKEND=jax on the CPU (see the Makefile), so the code paths of
m1vision.inference._backend that are not TensorFlow's run in CI too. Under torch (installed
with m1vision[torch]) it runs the same way: KERAS_BACKEND=torch pytest on this file.

Reference outputs of the shipped model and the TensorFlow-only files (a SavedModel folder, a
model with a Lambda layer calling tf.*) are made by a real TensorFlow in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from repo_paths import DATA

from m1vision.errors import InvalidParameterError, ModelLoadError
from m1vision.explain import grad_cam
from m1vision.inference import (
    DeviceChoice,
    DeviceUnavailableError,
    Predictor,
    load_model,
    select_device,
)

pytestmark = pytest.mark.slow

BACKEND = keras.config.backend()
LESION = DATA / "models" / "lesion_cnn.keras"
CPU = {"tensorflow": "/CPU:0", "torch": "cpu", "jax": "cpu:0"}[BACKEND]
WORDS = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}[BACKEND]

_TF_SCRIPT = textwrap.dedent(
    """
    import json, sys, numpy as np, keras
    out = sys.argv[1]
    model = keras.saving.load_model(sys.argv[2], compile=False)
    x = np.random.default_rng(7).uniform(0, 255, (16, 128, 128, 1)).astype(np.float32)
    np.save(out + "/x.npy", x)
    np.save(out + "/tf_cpu.npy", model.predict_on_batch(x))
    model.export(out + "/savedmodel", verbose=False)
    inputs = keras.Input((8, 8, 1))
    # tf is imported inside the function: a Lambda's globals are those of the module that
    # loads it, so this is how such a function finds TensorFlow after loading
    relu = lambda t: __import__("tensorflow").nn.relu(t) * 2.0  # noqa: E731
    h = keras.layers.Lambda(relu, name="tf_relu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    lam = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(h))
    lam.save(out + "/lambda_tf.keras")
    print(json.dumps({"backend": keras.config.backend()}))
    """
)


@pytest.fixture(scope="module")
def tf_made(tmp_path_factory):
    """Files and reference outputs made by TensorFlow on the CPU, in a subprocess."""
    out = tmp_path_factory.mktemp("tf_made")
    env = {"KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
    import os

    done = subprocess.run(
        [sys.executable, "-c", _TF_SCRIPT, str(out), str(LESION)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"backend": "tensorflow"}
    return out


@pytest.fixture(scope="module")
def lesion():
    return load_model(LESION)


@pytest.fixture(scope="module")
def tiny():
    """conv (4 maps) -> global average pooling -> dense softmax: Grad-CAM has a closed form."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 1))
    maps = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="maps")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(maps)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(pooled))
    return model


def test_this_run_is_on_the_backend_asked_for():
    import os

    assert os.environ.get("KERAS_BACKEND", "tensorflow") == BACKEND


# --------------------------------------------------------------------------- select_device


def test_select_device_names_the_backends_cpu():
    choice = select_device("cpu")
    assert choice == DeviceChoice(CPU, "cpu", "the CPU was asked for (prefer='cpu')", BACKEND)


def test_select_device_auto_without_a_gpu_says_so():
    from m1vision.inference import _backend

    choice = select_device("auto")
    if _backend.list_gpus():
        pytest.fail("this test is written for CI's machines, which have no GPU")
    assert choice == DeviceChoice(CPU, "cpu", f"no GPU is visible to {WORDS}", BACKEND)
    with pytest.raises(DeviceUnavailableError, match=f"no GPU is visible to {WORDS}"):
        select_device("gpu")


def test_a_device_of_another_backend_is_refused(tiny):
    other = "torch" if BACKEND != "torch" else "jax"
    with pytest.raises(InvalidParameterError, match=f"belongs to the {other} backend"):
        Predictor(tiny, device=DeviceChoice("cpu", "cpu", "test", other))


# --------------------------------------------------------------------------- prediction


def test_predictor_equals_predict_on_batch(lesion, tf_made):
    x = np.load(tf_made / "x.npy")
    predictor = Predictor(lesion, device="cpu", batch_size=6)
    result = predictor.predict(x)
    np.testing.assert_allclose(result.probabilities, lesion.predict_on_batch(x), atol=1e-6)
    assert predictor.backend == BACKEND


def test_the_shipped_model_gives_tensorflows_outputs(lesion, tf_made):
    x = np.load(tf_made / "x.npy")
    reference = np.load(tf_made / "tf_cpu.npy")
    probabilities = Predictor(lesion, device="cpu").predict(x).probabilities
    assert np.abs(probabilities - reference).max() < 1e-4  # float32 CPU kernels: ~1e-6
    assert (probabilities.argmax(1) == reference.argmax(1)).all()


def test_inference_compiles_once_per_backend_rule(lesion, tf_made):
    x = np.load(tf_made / "x.npy")
    predictor = Predictor(lesion, device="cpu", batch_size=5)
    predictor.predict(x)  # batches of 5, 5, 5, 1
    predictor.predict(x[:3])
    expected = {"tensorflow": 1, "jax": 3, "torch": None}[BACKEND]  # jax: sizes 5, 1, 3
    assert predictor.tracing_count == expected


def test_predictions_do_not_depend_on_batching(lesion, tf_made):
    x = np.load(tf_made / "x.npy")
    whole = Predictor(lesion, device="cpu", batch_size=16).predict(x).probabilities
    pieces = Predictor(lesion, device="cpu", batch_size=3, prefetch=0).predict(x).probabilities
    np.testing.assert_allclose(whole, pieces, atol=1e-6)


# --------------------------------------------------------------------------- loading


def test_a_savedmodel_folder_runs_on_tensorflow_only(tf_made, lesion):
    folder = tf_made / "savedmodel"
    if BACKEND == "tensorflow":
        x = np.load(tf_made / "x.npy")[:4]
        out = Predictor(load_model(folder), device="cpu").predict(x).probabilities
        np.testing.assert_allclose(out, lesion.predict_on_batch(x), atol=1e-5)
        return
    with pytest.raises(ModelLoadError, match=f"backend is '{BACKEND}'") as info:
        load_model(folder)
    assert "KERAS_BACKEND=tensorflow" in str(info.value)
    assert "model.save('name.keras')" in str(info.value)


def test_a_lambda_calling_tensorflow_names_the_backend_and_the_fix(tf_made):
    path = tf_made / "lambda_tf.keras"
    with pytest.raises(ModelLoadError, match="Lambda layer with Python code"):
        load_model(path)  # safe mode refuses any Lambda, on every backend
    if BACKEND == "tensorflow":
        model = load_model(path, safe_mode=False)
        assert model.predict_on_batch(np.ones((1, 8, 8, 1), np.float32)).shape == (1, 2)
        return
    with pytest.raises(ModelLoadError, match=f"cannot run on the {BACKEND} backend") as info:
        load_model(path, safe_mode=False)
    assert "'tf_relu'" in str(info.value)
    assert "KERAS_BACKEND=tensorflow" in str(info.value)


# --------------------------------------------------------------------------- Grad-CAM


def test_grad_cam_matches_its_closed_form(tiny):
    # maps A (H, W, K) -> mean over pixels -> dense W (K, C): d logit_c / d A = W[:, c] / (H W),
    # so the heat is relu(A @ W[:, c]) scaled to a maximum of 1.
    image = np.random.default_rng(5).uniform(0, 1, (12, 12)).astype(np.float32)
    maps = keras.Model(tiny.inputs[0], tiny.get_layer("maps").output).predict_on_batch(
        image[None, :, :, None]
    )[0]
    kernel = keras.ops.convert_to_numpy(tiny.get_layer("head").kernel)
    for class_index in range(3):
        expected = np.maximum(maps @ kernel[:, class_index], 0.0)
        expected = expected / expected.max() if expected.max() > 0 else expected
        heat = grad_cam(tiny, image, class_index=class_index, device=CPU)
        np.testing.assert_allclose(heat, expected, atol=1e-5)


def test_grad_cam_of_the_shipped_model_points_at_the_lesion(lesion):
    from m1vision.synthetic import make_lesion_dataset

    images, _, masks = _one_lesion(make_lesion_dataset)
    heat = grad_cam(lesion, images, class_index=1)
    inside = heat[masks].mean()
    outside = heat[~masks].mean()
    assert inside > 2 * outside, (inside, outside)


def _one_lesion(make):
    data = make(8, size=128, seed=11, positive_fraction=1.0)
    i = int(np.argmax(data.labels))
    return data.images[i].astype(np.float32), data.labels[i], data.masks[i].astype(bool)


# --------------------------------------------------------------------------- volumes


@pytest.fixture(scope="module")
def volume():
    """A generated (Z, H, W) float32 volume: 6 slices of the demo model's data, 3 with a
    lesion, with an anisotropic spacing and its affine (the read_nifti layout)."""
    from m1vision.io import MedicalImage
    from m1vision.synthetic import make_lesion_dataset

    data = make_lesion_dataset(6, size=128, seed=5, positive_fraction=0.5)
    spacing = (2.5, 0.8, 0.8)
    affine = [
        [0.0, 0.0, -0.8, 50.0],
        [0.0, -0.8, 0.0, 60.0],
        [2.5, 0.0, 0.0, -30.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
    image = MedicalImage(
        data.images.astype(np.float32),
        spacing=spacing,
        modality="CT",
        metadata={"affine": affine},
        source="generated",
    )
    return image, data


def test_predict_volume_predicts_every_slice_like_predict(lesion, volume):
    image, data = volume
    predictor = Predictor(lesion, device="cpu", batch_size=4)
    result = predictor.predict_volume(image)
    slices = predictor.predict(list(image.pixels)).probabilities
    np.testing.assert_allclose(result.probabilities, slices, atol=1e-6)
    assert result.inputs == list(range(6))
    assert (result.classes == data.labels).mean() >= 5 / 6  # the demo model is ~97% right


def test_predict_volume_along_another_axis(lesion, volume):
    image, _ = volume
    from m1vision.io import MedicalImage

    turned = MedicalImage(np.ascontiguousarray(np.moveaxis(image.pixels, 0, 2)))
    predictor = Predictor(lesion, device="cpu")
    np.testing.assert_allclose(
        predictor.predict_volume(turned, axis=2).probabilities,
        predictor.predict_volume(image).probabilities,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("make", "axis", "error", "match"),
    [
        (lambda im: im.pixels[0], 0, TypeError, "must be a MedicalImage volume"),
        (lambda im: _as_image(im.pixels[0]), 0, "InvalidImageError", "volume of shape"),
        (lambda im: im, 3, InvalidParameterError, "axis must be 0, 1 or 2"),
    ],
    ids=["an-array", "a-2d-image", "axis-3"],
)
def test_predict_volume_refuses_what_is_no_volume(lesion, volume, make, axis, error, match):
    from m1vision import errors

    error = getattr(errors, error) if isinstance(error, str) else error
    with pytest.raises(error, match=match):
        Predictor(lesion, device="cpu").predict_volume(make(volume[0]), axis=axis)


def _as_image(pixels):
    from m1vision.io import MedicalImage

    return MedicalImage(pixels)


def test_grad_cam_volume_keeps_the_geometry_and_finds_the_lesions(lesion, volume):
    from m1vision.explain import grad_cam_volume

    image, data = volume
    heat = grad_cam_volume(lesion, image, class_index=1)
    assert heat.pixels.shape == image.pixels.shape and heat.pixels.dtype == np.float32
    assert heat.spacing == image.spacing
    assert heat.metadata["affine"] == image.metadata["affine"]
    assert heat.metadata["affine"] is not image.metadata["affine"]  # a copy, not shared
    assert heat.metadata["grad_cam"] == {"axis": 0, "class_index": 1, "layer": "last_conv"}
    for z in range(len(image.pixels)):  # each slice is grad_cam of that slice
        np.testing.assert_allclose(
            heat.pixels[z], grad_cam(lesion, image.pixels[z], class_index=1), atol=1e-5
        )
    masks = data.masks.astype(bool)
    assert (
        heat.pixels[masks].mean()
        > 2 * heat.pixels[~masks & (data.labels[:, None, None] == 1)].mean()
    )
