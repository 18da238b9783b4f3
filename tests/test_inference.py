"""Tests of m1vision.inference with real TensorFlow, real Keras models and real files.

The models are small (MobileNetV2 at 96x96 with alpha 0.35, weights=None: nothing is
downloaded) and built once per module; every test here is marked slow (TensorFlow).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

import m1vision.inference._device  # noqa: F401
from m1vision import inference
from m1vision.errors import (
    ImageReadError,
    InvalidImageError,
    InvalidParameterError,
    ModelLoadError,
    OutputExistsError,
)
from m1vision.inference import (
    DeviceChoice,
    DeviceUnavailableError,
    Predictor,
    SavedModelClassifier,
    load_model,
    model_input_spec,
    read_predictions,
    select_device,
)
from m1vision.io import write_image

pytestmark = pytest.mark.slow

SIZE = 96
CLASSES = 4
LABELS = ["air", "fat", "soft", "bone"]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet():
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=CLASSES, alpha=0.35
    )


@pytest.fixture(scope="module")
def saved(mobilenet, tmp_path_factory):
    """The model saved as .keras and exported as a SavedModel folder."""
    root = tmp_path_factory.mktemp("models")
    mobilenet.save(root / "mobilenet.keras")
    mobilenet.export(root / "mobilenet_savedmodel", verbose=False)
    return root / "mobilenet.keras", root / "mobilenet_savedmodel"


@pytest.fixture(scope="module")
def reloaded(saved):
    """(the .keras model, the SavedModel) loaded back with load_model."""
    return load_model(saved[0]), load_model(saved[1])


@pytest.fixture(scope="module")
def logits_model():
    """A tiny gray classifier whose last layer is linear (it outputs logits)."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="tiny_logits")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Six PNGs of different sizes, depths and channels (one in a sub-folder)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    images = {
        "gray8_big.png": rng.integers(0, 256, (130, 110), dtype=np.uint8),
        "gray8_small.png": rng.integers(0, 256, (40, 60), dtype=np.uint8),
        "color8.png": rng.integers(0, 256, (100, 120, 3), dtype=np.uint8),
        "exact.png": rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
        "gray16.png": rng.integers(0, 4096, (96, 96), dtype=np.uint16),
        "sub/deep.png": rng.integers(0, 256, (200, 150, 3), dtype=np.uint8),
    }
    for name, image in images.items():
        write_image(root / name, image)
    return root


def _reference_tensor(path, *, size, channels, normalize):
    """Build the model input of one file with plain OpenCV, independently of Predictor."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if normalize:
        image = image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if size * size < h * w else cv2.INTER_LINEAR
    if (h, w) != (size, size):
        image = cv2.resize(image, (size, size), interpolation=interp)
    if image.ndim == 2 and channels == 3:
        image = np.dstack([image] * 3)
    if image.ndim == 2:
        image = image[:, :, None]
    return image.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# lazy TensorFlow
# ---------------------------------------------------------------------------------------------


def test_importing_m1vision_inference_does_not_import_tensorflow():
    code = (
        "import sys, m1vision, m1vision.inference\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
        "assert 'keras' not in sys.modules, 'keras imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------------------------
# select_device
# ---------------------------------------------------------------------------------------------


def test_select_device_cpu_when_asked():
    choice = select_device("cpu")
    assert choice == DeviceChoice("/CPU:0", "cpu", "the CPU was asked for (prefer='cpu')")


def test_select_device_auto_matches_what_tensorflow_sees():
    choice = select_device("auto")
    if tf.config.list_physical_devices("GPU"):
        assert choice.kind == "gpu" or "failed the numerics self-test" in choice.reason
    else:
        assert choice == DeviceChoice("/CPU:0", "cpu", "no GPU is visible to TensorFlow")
        with pytest.raises(DeviceUnavailableError, match="no GPU is visible") as info:
            select_device("gpu")
        assert "tensorflow-metal==1.2.0" in str(info.value)
    assert inference._device._GPU_STATUS is not None  # assessed once per process, then cached
    assert select_device("auto") == choice


def test_select_device_rejects_unknown_preference():
    with pytest.raises(InvalidParameterError, match="prefer must be one of"):
        select_device("tpu")


def _failing_selftest(device):
    return {"ok": False, "max_abs_diff": 0.5, "tolerance": 1e-4, "detail": "conv differs by 0.5"}


def _crashing_selftest(device):
    raise RuntimeError("Metal device lost")


def _passing_selftest(device):
    return {"ok": True, "max_abs_diff": 2e-6, "tolerance": 1e-4, "detail": "all agree"}


@pytest.mark.parametrize(
    ("selftest", "expected"),
    [
        (_failing_selftest, "GPU:0 failed the numerics self-test: conv differs by 0.5"),
        (_crashing_selftest, "GPU:0 failed the numerics self-test: RuntimeError: Metal device"),
    ],
    ids=["wrong-numbers", "self-test-crashes"],
)
def test_a_gpu_failing_the_selftest_is_not_used(selftest, expected):
    # The GPU is simulated (this machine has none); the decision logic is the real one.
    gpu, reason = inference._device._assess_gpu([("/GPU:0", "METAL")], selftest)
    assert gpu is None
    assert reason.startswith(expected)
    assert inference._device._choose("auto", gpu, reason) == DeviceChoice("/CPU:0", "cpu", reason)
    with pytest.raises(DeviceUnavailableError, match="failed the numerics self-test"):
        inference._device._choose("gpu", gpu, reason)


def test_a_gpu_passing_the_selftest_is_used():
    gpu, reason = inference._device._assess_gpu([("/GPU:0", "METAL")], _passing_selftest)
    assert gpu == "/GPU:0"
    assert "passed the numerics self-test" in reason
    assert inference._device._choose("auto", gpu, reason).kind == "gpu"


# ---------------------------------------------------------------------------------------------
# load_model
# ---------------------------------------------------------------------------------------------


def test_reloaded_models_predict_like_the_original(mobilenet, reloaded):
    batch = np.random.default_rng(0).uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    expected = mobilenet.predict_on_batch(batch)
    from_keras, from_savedmodel = reloaded
    assert isinstance(from_savedmodel, SavedModelClassifier)
    np.testing.assert_allclose(from_keras.predict_on_batch(batch), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        from_savedmodel.predict_on_batch(batch), expected, rtol=1e-5, atol=1e-6
    )


def test_model_input_spec_of_keras_and_savedmodel(mobilenet, reloaded):
    expected = ((None, SIZE, SIZE, 3), "float32")
    assert model_input_spec(mobilenet) == expected
    assert model_input_spec(reloaded[0]) == expected
    assert model_input_spec(reloaded[1]) == expected


def test_model_input_spec_refuses_a_path(saved):
    with pytest.raises(TypeError, match="load_model"):
        model_input_spec(str(saved[0]))


def test_savedmodel_output_kind_is_read_from_the_graph(reloaded, logits_model, tmp_path):
    assert reloaded[1].output_kind == "probabilities"  # MobileNetV2 ends in softmax
    logits_model.export(tmp_path / "logits", verbose=False)
    assert load_model(tmp_path / "logits").output_kind == "logits"


def _png_named_keras(root):
    path = root / "x.keras"
    path.write_bytes(cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes())
    return path


def _text_named_keras(root):
    path = root / "t.keras"
    path.write_text("hello model\n")
    return path


def _empty_keras(root):
    path = root / "e.keras"
    path.write_bytes(b"")
    return path


def _zip_without_config(root):
    path = root / "z.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return path


def _wrong_suffix(root):
    path = root / "m.txt"
    path.write_text("x")
    return path


def _empty_folder(root):
    (root / "empty").mkdir()
    return root / "empty"


def _folder_of_images(root):
    (root / "imgs").mkdir()
    (root / "imgs" / "a.png").write_bytes(b"x")
    return root / "imgs"


NOT_A_MODEL = {
    "missing": (lambda root: root / "nope.keras", "does not exist"),
    "png-renamed": (_png_named_keras, "is a PNG image"),
    "text-renamed": (_text_named_keras, "is a text file"),
    "empty-file": (_empty_keras, "is empty"),
    "zip-without-config": (_zip_without_config, "without config.json"),
    "wrong-suffix": (_wrong_suffix, "expected a .keras"),
    "empty-folder": (_empty_folder, "it is empty"),
    "folder-of-images": (_folder_of_images, "no saved_model.pb (it holds a.png)"),
}


@pytest.mark.parametrize("case", list(NOT_A_MODEL), ids=list(NOT_A_MODEL))
def test_load_model_refuses_what_is_no_model(case, tmp_path):
    make, message = NOT_A_MODEL[case]
    path = make(tmp_path)
    with pytest.raises(ModelLoadError, match=re.escape(message)) as info:
        load_model(path)
    assert path.name in str(info.value)


def test_load_model_refuses_a_lambda_layer_in_safe_mode(tmp_path):
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path / "lambda.keras")
    message = str(info.value)
    assert "Lambda" in message
    assert "safe_mode=False" in message
    assert "register_keras_serializable" in message
    trusted = load_model(tmp_path / "lambda.keras", safe_mode=False)  # deliberately
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(trusted.predict_on_batch(x), 2 * x.reshape(1, 16))


class Triple(keras.layers.Layer):
    def call(self, x):
        return x * 3.0


def test_load_model_names_an_unregistered_custom_layer(tmp_path):
    inputs = keras.Input((2, 2, 1))
    model = keras.Model(inputs, keras.layers.Flatten()(Triple()(inputs)))
    model.save(tmp_path / "custom.keras")
    with pytest.raises(ModelLoadError, match="'Triple'") as info:
        load_model(tmp_path / "custom.keras")
    assert "register_keras_serializable" in str(info.value)
    assert "custom_objects" in str(info.value)
    loaded = load_model(tmp_path / "custom.keras", custom_objects={"Triple": Triple})
    x = np.ones((1, 2, 2, 1), np.float32)
    np.testing.assert_array_equal(loaded.predict_on_batch(x), np.full((1, 4), 3.0))


def test_load_model_type_errors():
    with pytest.raises(TypeError, match="path must be"):
        load_model(42)
    with pytest.raises(TypeError, match="safe_mode"):
        load_model(".", safe_mode="no")


# ---------------------------------------------------------------------------------------------
# Predictor
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet_predictor(mobilenet):
    from m1vision.pipeline import Normalize, Pipeline

    return Predictor(
        mobilenet,
        preprocess=Pipeline([Normalize(mode="mobilenet")]),
        batch_size=4,
        device="cpu",
        labels=LABELS,
        top_k=2,
    )


def test_predictor_equals_predict_on_batch_on_independently_prepared_tensors(
    mobilenet, mobilenet_predictor, image_folder
):
    paths = sorted(p for p in image_folder.rglob("*.png") if "gray16" not in p.name)
    result = mobilenet_predictor.predict(paths)
    tensors = np.stack([_reference_tensor(p, size=SIZE, channels=3, normalize=True) for p in paths])
    expected = mobilenet.predict_on_batch(tensors)
    assert result.probabilities.dtype == np.float32
    assert result.probabilities.shape == (len(paths), CLASSES)
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-4, atol=1e-6)
    assert result.inputs == [str(p) for p in paths]


def test_predictor_does_not_retrace_across_calls_and_batch_counts(mobilenet, image_folder):
    predictor = Predictor(mobilenet, batch_size=4, device="cpu")
    rng = np.random.default_rng(3)
    for n in (3, 9, 1, 4, 8):  # partial, several with a short last batch, exact multiples
        images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
        got = predictor.predict(images).probabilities
        assert got.shape == (n, CLASSES)  # a short last batch: its own rows, no padding rows
        expected = mobilenet.predict_on_batch(images.astype(np.float32))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    predictor.predict(sorted(image_folder.rglob("*.png")))
    assert predictor.tracing_count == 1


def test_top_k_lists_labels_and_scores_best_first(mobilenet_predictor, image_folder):
    result = mobilenet_predictor.predict(image_folder / "color8.png")
    (top,) = result.top_k
    row = result.probabilities[0]
    order = np.argsort(-row)
    assert [label for label, _ in top] == [LABELS[order[0]], LABELS[order[1]]]
    assert [score for _, score in top] == pytest.approx([row[order[0]], row[order[1]]])
    assert result.classes.tolist() == [order[0]]
    record = result.to_records()[0]
    assert record["input"] == str(image_folder / "color8.png")
    assert json.loads(json.dumps(record)) == record


def test_softmax_outputs_are_not_softmaxed_again(mobilenet, mobilenet_predictor):
    assert mobilenet_predictor.from_logits is False
    images = np.random.default_rng(4).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    result = Predictor(mobilenet, device="cpu").predict(images)
    np.testing.assert_allclose(
        result.probabilities, mobilenet.predict_on_batch(images.astype(np.float32)), rtol=1e-5
    )


def _numpy_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_logits_are_turned_into_probabilities_and_color_into_gray(logits_model):
    predictor = Predictor(logits_model, device="cpu")
    assert predictor.from_logits is True
    rng = np.random.default_rng(5)
    color = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    gray = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    result = predictor.predict([color, gray])
    logits = logits_model.predict_on_batch(gray[None, :, :, None].astype(np.float32))
    expected = _numpy_softmax(logits.astype(np.float64))[0]
    np.testing.assert_allclose(result.probabilities[0], expected, rtol=1e-5)
    np.testing.assert_allclose(result.probabilities[1], expected, rtol=1e-5)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_savedmodel_predictor_equals_keras_predictor(reloaded, mobilenet_predictor, image_folder):
    paths = sorted(image_folder.rglob("*.png"))
    sm = Predictor(
        reloaded[1],
        preprocess=mobilenet_predictor.preprocess,
        batch_size=4,
        device="cpu",
        labels=LABELS,
    )
    assert sm.from_logits is False  # read from the graph's Softmax
    np.testing.assert_allclose(
        sm.predict(paths).probabilities,
        mobilenet_predictor.predict(paths).probabilities,
        rtol=1e-4,
        atol=1e-6,
    )


def test_predictor_accepts_a_model_path(saved):
    predictor = Predictor(saved[0], device="cpu")
    assert predictor.input_shape == (None, SIZE, SIZE, 3)
    assert predictor.num_classes == CLASSES


def test_predict_raises_on_a_corrupt_file_naming_it(mobilenet_predictor, tmp_path, image_folder):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ImageReadError, match=r"broken\.png"):
        mobilenet_predictor.predict([image_folder / "exact.png", bad])


def test_predict_refuses_a_volume(mobilenet_predictor):
    with pytest.raises(InvalidImageError, match="volume"):
        mobilenet_predictor.predict([np.zeros((5, 32, 32), np.float32)])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"labels": ["a", "b"]}, InvalidParameterError, "labels has 2 names"),
        ({"labels": "abcd"}, TypeError, "labels must be"),
        ({"top_k": 5}, InvalidParameterError, "top_k must be <="),
        ({"batch_size": 0}, InvalidParameterError, "batch_size must be >= 1"),
        ({"preprocess": "normalize"}, TypeError, "preprocess must be a callable"),
        ({"device": "tpu"}, InvalidParameterError, "prefer must be one of"),
        ({"from_logits": "yes"}, TypeError, "from_logits"),
    ],
    ids=["labels-count", "labels-str", "top-k", "batch-size", "preprocess", "device", "logits"],
)
def test_predictor_option_errors(mobilenet, kwargs, error, match):
    with pytest.raises(error, match=match):
        Predictor(mobilenet, **{"device": "cpu", **kwargs})


# ---------------------------------------------------------------------------------------------
# predict_folder
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def folder_with_corrupt(image_folder, tmp_path):
    import shutil

    folder = tmp_path / "in"
    shutil.copytree(image_folder, folder)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return folder


GOOD_KEYS = sorted(
    ["color8.png", "exact.png", "gray16.png", "gray8_big.png", "gray8_small.png", "sub/deep.png"]
)


def test_predict_folder_records_a_corrupt_file_and_predicts_the_rest(
    mobilenet_predictor, folder_with_corrupt, tmp_path
):
    out = tmp_path / "out"
    report = mobilenet_predictor.predict_folder(folder_with_corrupt, out, progress=False)
    status = {item.key: item.status for item in report.items}
    assert sorted(k for k, s in status.items() if s == "ok") == GOOD_KEYS
    assert [k for k, s in status.items() if s == "failed"] == ["corrupt.png"]
    failed = next(i for i in report.items if i.key == "corrupt.png")
    assert "ImageReadError" in failed.error
    assert failed.top_k is None and failed.probabilities is None
    assert report.job["schema"] == "m1vision.prediction_run"
    records = {r["key"]: r for r in read_predictions(out)}
    assert sorted(records) == sorted([*GOOD_KEYS, "corrupt.png"])
    assert records["corrupt.png"]["status"] == "failed"
    direct = mobilenet_predictor.predict([folder_with_corrupt / k for k in GOOD_KEYS])
    written = np.array([records[k]["probabilities"] for k in GOOD_KEYS], np.float32)
    np.testing.assert_allclose(written, direct.probabilities, rtol=1e-5, atol=1e-7)
    assert records["exact.png"]["top_k"][0][0] in LABELS
    header = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert header["labels"] == LABELS and header["job"] == report.job["sha256"]


def test_predict_folder_resumes_skipping_done_inputs(
    mobilenet_predictor, folder_with_corrupt, tmp_path
):
    out = tmp_path / "out"
    first = mobilenet_predictor.predict_folder(folder_with_corrupt, out, progress=False)
    (folder_with_corrupt / "new.png").write_bytes(
        cv2.imencode(".png", np.full((50, 50), 9, np.uint8))[1].tobytes()
    )
    again = mobilenet_predictor.predict_folder(folder_with_corrupt, out, progress=False)
    status = {item.key: (item.status, item.reason) for item in again.items}
    assert sorted(k for k, (s, _) in status.items() if s == "skipped") == GOOD_KEYS
    assert status["new.png"] == ("ok", "new")
    assert status["corrupt.png"] == ("failed", "failed before")  # failed ones are tried again
    before = {i.key: i.probabilities for i in first.items if i.status == "ok"}
    for item in again.items:  # skipped items come back with their results
        if item.status == "skipped":
            assert item.probabilities == before[item.key]
    assert len(read_predictions(out)) == len(GOOD_KEYS) + 2


def test_predict_folder_overwrite_predicts_everything_again(
    mobilenet_predictor, folder_with_corrupt, tmp_path
):
    out = tmp_path / "out"
    mobilenet_predictor.predict_folder(folder_with_corrupt, out, progress=False)
    report = mobilenet_predictor.predict_folder(
        folder_with_corrupt, out, overwrite=True, progress=False
    )
    assert [i.status for i in report.items].count("ok") == len(GOOD_KEYS)
    assert all(i.status != "skipped" for i in report.items)


def test_a_retrained_model_does_not_append_to_the_older_models_predictions(
    folder_with_corrupt, tmp_path
):
    """A model retrained in place: same file name, shapes and labels, other weights."""
    from m1vision.errors import JobMismatchError

    def train(seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((32, 32, 1))
        x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        model.save(tmp_path / "model.keras")  # the retrained model replaces the file
        return Predictor(tmp_path / "model.keras", labels=["a", "b"], device="cpu")

    out = tmp_path / "out"
    old = train(1).predict_folder(folder_with_corrupt, out, progress=False)
    old_records = (out / "predictions.jsonl").read_text()
    with pytest.raises(JobMismatchError, match="model"):
        train(2).predict_folder(folder_with_corrupt, out, progress=False)
    assert (out / "predictions.jsonl").read_text() == old_records  # nothing written
    new = train(2).predict_folder(folder_with_corrupt, out, overwrite=True, progress=False)
    assert new.job["sha256"] != old.job["sha256"]
    assert all(i.status != "skipped" for i in new.items)


def test_predict_folder_fingerprint_holds_the_preprocessing(
    mobilenet, folder_with_corrupt, tmp_path
):
    from m1vision.errors import JobMismatchError
    from m1vision.pipeline import Normalize, Pipeline

    out = tmp_path / "out"
    first = Predictor(mobilenet, device="cpu", preprocess=Pipeline([Normalize(mode="unit")]))
    first.predict_folder(folder_with_corrupt / "exact.png", out, progress=False)
    other = Predictor(mobilenet, device="cpu", preprocess=Pipeline([Normalize(mode="mobilenet")]))
    with pytest.raises(JobMismatchError):
        other.predict_folder(folder_with_corrupt / "exact.png", out, progress=False)


def test_predict_folder_wants_a_folder_not_a_file(mobilenet_predictor, image_folder, tmp_path):
    out = tmp_path / "notes.jsonl"
    with pytest.raises(OutputExistsError, match="out_dir must be a folder"):
        mobilenet_predictor.predict_folder(image_folder, out, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("prefetch", "workers"), [(0, 1), (1, 2), (3, 3)], ids=["no-overlap", "one-ahead", "three"]
)
def test_overlap_settings_do_not_change_results(
    mobilenet, mobilenet_predictor, image_folder, prefetch, workers
):
    paths = sorted(image_folder.rglob("*.png"))
    predictor = Predictor(
        mobilenet,
        preprocess=mobilenet_predictor.preprocess,
        batch_size=2,
        device="cpu",
        prefetch=prefetch,
        workers=workers,
    )
    result = predictor.predict(paths)
    assert result.inputs == [str(p) for p in paths]  # order kept
    np.testing.assert_allclose(
        result.probabilities,
        mobilenet_predictor.predict(paths).probabilities,
        rtol=1e-4,
        atol=1e-6,
    )


@pytest.mark.slow
def test_predictor_remembers_the_model_file(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = tmp_path / "tiny.keras"
    model.save(path)
    assert Predictor(str(path), device="cpu").model_path == path
    assert Predictor(model, device="cpu").model_path is None


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    return path


def test_a_predictor_config_round_trips_through_json_exactly(tiny_model_file):
    from m1vision.pipeline import Pipeline, Resize, ToUint8

    predictor = Predictor(
        tiny_model_file,
        preprocess=Pipeline([ToUint8(), Resize(size=(8, 8))]),
        batch_size=3,
        labels=["no", "yes"],
        top_k=2,
        workers=2,
        prefetch=1,
        executor="threads",
        device="cpu",
    )
    config = predictor.to_config()
    text = json.dumps(config)
    rebuilt = Predictor.from_config(json.loads(text))
    assert json.dumps(rebuilt.to_config()) == text
    assert rebuilt.preprocess == predictor.preprocess and rebuilt.device == predictor.device
    image = np.arange(100, dtype=np.uint16).reshape(10, 10)
    np.testing.assert_array_equal(
        rebuilt.predict([image]).probabilities, predictor.predict([image]).probabilities
    )


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda path: Predictor(keras.saving.load_model(path), device="cpu"), "model object"),
        (lambda path: Predictor(path, preprocess=np.asarray, device="cpu"), "plain function"),
    ],
    ids=["model-object", "plain-function"],
)
def test_a_predictor_config_refuses_what_it_cannot_rebuild(tiny_model_file, build, words):
    with pytest.raises(InvalidParameterError, match=words):
        build(tiny_model_file).to_config()


def test_from_config_names_missing_and_unknown_keys(tiny_model_file):
    config = Predictor(tiny_model_file, device="cpu").to_config()
    del config["top_k"]
    with pytest.raises(InvalidParameterError, match=r"missing \['top_k'\], unknown \['x'\]"):
        Predictor.from_config({**config, "x": 1})
