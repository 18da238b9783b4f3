"""Preparation on the model's device (Predictor(prepare_on="device")), checked against the CPU path.

Backend-neutral: it runs under the Keras backend of the process (TensorFlow by default; also
``KERAS_BACKEND=jax`` or ``torch``). The device path is forced on the CPU here (no GPU): the
same keras.ops run there as on a GPU. The independent reference is OpenCV (``cv2.resize``)
and the CPU path of the Predictor (:meth:`Predictor.prepare`, m1vision.preprocess).
"""

from __future__ import annotations

import json

import cv2
import keras
import numpy as np
import pytest
from repo_paths import DATA

from m1vision.errors import InvalidParameterError
from m1vision.inference import Predictor, _device_prep
from m1vision.io import MedicalImage, write_image
from m1vision.pipeline import (
    Canny,
    Clahe,
    GaussianBlur,
    Normalize,
    Pipeline,
    Resize,
    ToGray,
    ToUint8,
    Window,
)

pytestmark = pytest.mark.slow

LESION = DATA / "models" / "lesion_cnn.keras"
SAMPLES = DATA / "samples"


def _lesion_pipeline() -> Pipeline:
    card = json.loads((DATA / "models" / "lesion_cnn.json").read_text("utf-8"))
    return Pipeline.from_dict(card["preprocessing"]["pipeline"])


def _sample_files() -> list:
    return sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".png", ".tif", ".jpg"))


@pytest.fixture(scope="module")
def lesion():
    from m1vision.inference import load_model

    return load_model(LESION)


def _tiny(shape, dtype="float32"):
    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape, dtype=dtype)
    x = keras.layers.GlobalAveragePooling2D()(keras.ops.cast(inputs, "float32"))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


# ---------------------------------------------------------------------------------------------
# the interpolation matrices against OpenCV
# ---------------------------------------------------------------------------------------------

RESIZES = [
    pytest.param((512, 512), (224, 224), "area", id="area-shrink-fractional"),
    pytest.param((256, 128), (128, 64), "area", id="area-shrink-by-2"),
    pytest.param((40, 60), (96, 96), "area", id="area-enlarge"),
    pytest.param((130, 110), (96, 96), "area", id="area-shrink-one-axis-enlarge-other"),
    pytest.param((40, 60), (96, 97), "linear", id="linear-enlarge"),
    pytest.param((200, 150), (96, 96), "linear", id="linear-shrink"),
    pytest.param((37, 53), (96, 20), "nearest", id="nearest-mixed"),
]


@pytest.mark.parametrize(("src", "dst", "interpolation"), RESIZES)
def test_resize_matrices_equal_opencv_on_float_images(src, dst, interpolation):
    image = np.random.default_rng(0).uniform(-1000, 3000, src).astype(np.float32)
    both = dst[0] <= src[0] and dst[1] <= src[1]
    rows = _device_prep.resize_matrix(src[0], dst[0], interpolation, both).astype(np.float64)
    cols = _device_prep.resize_matrix(src[1], dst[1], interpolation, both).astype(np.float64)
    flag = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
    expected = cv2.resize(image, dst[::-1], interpolation=flag[interpolation])
    np.testing.assert_allclose(rows @ image @ cols.T, expected, rtol=1e-5, atol=2e-3)


# ---------------------------------------------------------------------------------------------
# each step: the device part (keras.ops) against the CPU path, on the Predictor's input
# ---------------------------------------------------------------------------------------------

rng = np.random.default_rng(11)
CT = rng.normal(40, 300, (150, 170)).astype(np.float32)
U16 = rng.integers(0, 4096, (130, 110), dtype=np.uint16)
U8 = rng.integers(0, 256, (100, 120), dtype=np.uint8)
BGR = rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)
BGRA = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
I16 = rng.integers(-1024, 2000, (80, 80)).astype(np.int16)

# (image, pipeline steps, model input shape, the size in the output of one level of the last
# integer image, where OpenCV's rounding may differ by one). Resizing uint8 with linear
# weights (INTER_LINEAR, INTER_AREA when enlarging) is fixed-point SIMD arithmetic in OpenCV:
# up to 15% of the pixels of a noise image one level away (U8LIN below); elsewhere < 2%.
U8LIN = 0.15
STEPS = [
    pytest.param(CT, [Window(preset="soft_tissue")], (96, 96, 1), 1.0, id="window-float"),
    pytest.param(U16, [ToUint8()], (96, 96, 1), 1.0, id="to_uint8-range-uint16"),
    pytest.param(U16, [ToUint8(mode="dtype")], (64, 64, 1), 1.0, id="to_uint8-dtype"),
    pytest.param(CT, [ToUint8(in_range=(-200, 300))], (150, 170, 1), 1.0, id="to_uint8-in_range"),
    pytest.param(U8, [Normalize(mode="unit")], (96, 96, 3), 1 / 255, id="normalize-unit-uint8"),
    pytest.param(U16, [Normalize(mode="unit")], (96, 96, 1), 0.0, id="normalize-unit-uint16"),
    pytest.param(CT, [Normalize(mode="unit")], (96, 96, 1), 0.0, id="normalize-unit-float"),
    pytest.param(
        U16, [Normalize(mode="mobilenet")], (224, 224, 3), 1 / 127.5, id="normalize-mobilenet"
    ),
    pytest.param(
        BGR, [Normalize(mode="imagenet")], (64, 64, 3), 1 / 255 / 0.224, id="imagenet-bgr"
    ),
    pytest.param(U8, [Normalize(mode="imagenet")], (64, 64, 1), 1 / 255 / 0.2, id="imagenet-gray"),
    pytest.param(
        CT,
        [Window(center=40, width=400), Resize(size=(64, 48)), Normalize()],
        (64, 48, 1),
        1 / 255,
        id="window-letterbox-normalize",
    ),
    pytest.param(
        U8,
        [Resize(size=(50, 50), keep_aspect=True, pad_value=7, interpolation="nearest")],
        (50, 50, 1),
        1.0,
        id="resize-nearest-letterbox-pad",
    ),
    pytest.param(
        CT, [Resize(size=(300, 200), keep_aspect=False)], (96, 96, 1), 0.0, id="resize-float"
    ),
    pytest.param(BGR, [], (96, 96, 1), 1.0, U8LIN, id="bgr-to-gray-model"),
    pytest.param(BGRA, [], (96, 96, 3), 1.0, U8LIN, id="bgra-alpha-dropped"),
    pytest.param(U8, [], (96, 96, 3), 1.0, id="gray-to-3-channels"),
    pytest.param(I16, [], (40, 40, 1), 1.0, id="int16-resize"),
    pytest.param(U16, [], (96, 96, 1), 1.0, id="none-uint16-resize"),
]


@pytest.mark.parametrize(
    ("image", "steps", "shape", "level", "fraction"),
    [p if len(p.values) == 5 else pytest.param(*p.values, 0.02, id=p.id) for p in STEPS],
)
def test_each_step_on_the_device_equals_the_cpu_path(image, steps, shape, level, fraction):
    model = _tiny(shape)
    predictor = Predictor(model, preprocess=Pipeline(steps) if steps else None, device="cpu")
    expected = predictor.prepare(image)  # the CPU path: OpenCV
    device_plan, _ = predictor._device_plan()
    assert [s.name for s in device_plan.device_steps] == [s.name for s in steps]
    staged = device_plan.decode(image)
    assert staged.dtype == (np.float32 if image.dtype == np.float32 else image.dtype)
    got = keras.ops.convert_to_numpy(
        device_plan.apply(keras.ops.convert_to_tensor(staged[None]), staged.dtype.name)
    )[0]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    diff = np.abs(got.astype(np.float64) - expected)
    # float32 rounding everywhere; one level of the last integer image where OpenCV rounds
    # (fixed-point weights, ties): rare, and never more than one level
    assert diff.max() <= 1e-4 * max(1.0, float(np.abs(expected).max())) + level * 1.0001
    assert np.mean(diff > 1e-3 + 1e-4 * np.abs(expected)) < fraction


def test_device_ops_are_a_function_set_on_batches():
    """What a Segmenter calls: window, then resize, on a batch tensor (N, H, W, C)."""
    batch = np.stack([CT[:64, :64], CT[64:128, :64]])[..., None]
    x = keras.ops.convert_to_tensor(batch)
    y, kind = _device_prep.window(x, "float32", center=40, width=400)
    y, kind = _device_prep.resize(y, kind, size=(32, 32), interpolation="area")
    expected = [
        cv2.resize(
            np.clip(np.rint((b - (-160)) * 255 / 400), 0, 255).astype(np.uint8),
            (32, 32),
            interpolation=cv2.INTER_AREA,
        )
        for b in batch[..., 0]
    ]
    got = keras.ops.convert_to_numpy(y)[..., 0]
    assert kind == "uint8"
    assert np.abs(got - np.stack(expected)).max() <= 1


# ---------------------------------------------------------------------------------------------
# the split of a pipeline
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "cpu", "device"),
    [
        pytest.param(
            [GaussianBlur(ksize=3), Window(preset="lung"), Normalize()],
            ["gaussian_blur"],
            ["window", "normalize"],
            id="blur-then-tail",
        ),
        pytest.param(
            [Window(preset="lung"), Canny()], ["window", "canny"], [], id="canny-last-stays"
        ),
        pytest.param(
            [Clahe(), ToUint8(mode="percentile"), Normalize()],
            ["clahe", "to_uint8"],
            ["normalize"],
            id="percentile-stays",
        ),
        pytest.param(
            [Resize(size=(64, 64), interpolation="cubic"), Normalize()],
            ["resize"],
            ["normalize"],
            id="cubic-stays",
        ),
        pytest.param([ToGray(), Window(preset="bone")], ["to_gray"], ["window"], id="gray-cpu"),
    ],
)
def test_a_pipeline_splits_at_its_last_cpu_only_step(steps, cpu, device):
    device_plan, why = _device_prep.plan(Pipeline(steps), (None, 64, 64, 1), "float32")
    got_cpu = [s.name for s in device_plan.cpu_steps] if device_plan.cpu_steps else []
    assert got_cpu == cpu
    assert [s.name for s in device_plan.device_steps] == device
    assert bool(why) == bool(cpu)


# ---------------------------------------------------------------------------------------------
# the Predictor: the bundled model and data, both executors, volumes, the choice, the config
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_the_bundled_model_predicts_the_same_prepared_on_the_device(lesion, executor):
    files = _sample_files()  # 8- and 16-bit, gray and color, several sizes: groups by shape
    assert len({cv2.imread(str(f), cv2.IMREAD_UNCHANGED).shape for f in files}) > 3
    pipe = _lesion_pipeline()
    cpu = Predictor(lesion, preprocess=pipe, device="cpu", prepare_on="cpu", batch_size=4)
    on_device = Predictor(
        lesion,
        preprocess=pipe,
        device="cpu",
        prepare_on="device",
        batch_size=4,
        executor=executor,
        workers=2,
    )
    with on_device:
        expected, got = cpu.predict(files), on_device.predict(files)
    assert got.executor.startswith(executor)
    assert "decoded on the CPU, to_uint8, resize, channels, cast on" in got.executor
    np.testing.assert_array_equal(got.probabilities.argmax(1), expected.probabilities.argmax(1))
    assert np.abs(got.probabilities - expected.probabilities).max() < 0.02
    assert got.inputs == expected.inputs


def test_the_bundled_model_on_lesion_cases_prepared_on_the_device(lesion, tmp_path):
    from m1vision.synthetic import make_lesion_dataset

    data = make_lesion_dataset(24, size=160, seed=5, positive_fraction=0.5)
    files = [write_image(tmp_path / f"c{i:02d}.png", im) for i, im in enumerate(data.images)]
    pipe = _lesion_pipeline()
    a = Predictor(lesion, preprocess=pipe, device="cpu", prepare_on="cpu", batch_size=8)
    b = Predictor(lesion, preprocess=pipe, device="cpu", prepare_on="device", batch_size=8)
    pa, pb = a.predict(files).probabilities, b.predict(files).probabilities
    np.testing.assert_array_equal(pa.argmax(1), pb.argmax(1))
    assert np.abs(pa - pb).max() < 0.02


def test_predict_volume_prepared_on_the_device(lesion):
    hu = np.random.default_rng(2).normal(40, 200, (6, 150, 140)).astype(np.float32)
    volume = MedicalImage(hu, spacing=(2.0, 1.0, 1.0))
    pipe = Pipeline([Window(preset="soft_tissue")])
    a = Predictor(lesion, preprocess=pipe, device="cpu", prepare_on="cpu")
    b = Predictor(lesion, preprocess=pipe, device="cpu", prepare_on="device")
    pa, pb = a.predict_volume(volume).probabilities, b.predict_volume(volume).probabilities
    np.testing.assert_array_equal(pa.argmax(1), pb.argmax(1))
    assert np.abs(pa - pb).max() < 0.02


def test_auto_prepares_on_the_cpu_when_the_model_runs_on_the_cpu(lesion):
    result = Predictor(lesion, device="cpu").predict([np.zeros((128, 128), np.float32)])
    assert result.executor.endswith("prepared on the CPU (the model runs on the CPU)")


def test_prepare_on_device_refuses_when_nothing_could_run_there():
    model = _tiny((None, None, 1))
    predictor = Predictor(
        model, preprocess=np.float32, device="cpu", prepare_on="device", executor="threads"
    )
    with pytest.raises(InvalidParameterError, match="prepare_on='device' cannot be used"):
        predictor.predict([np.zeros((8, 8), np.float32)])


def test_prepare_on_is_checked_and_travels_in_the_config(tmp_path):
    path = tmp_path / "m.keras"
    _tiny((16, 16, 1)).save(path)
    with pytest.raises(InvalidParameterError, match="prepare_on must be 'auto', 'cpu' or"):
        Predictor(path, device="cpu", prepare_on="gpu")
    predictor = Predictor(
        path, preprocess=Pipeline([Normalize()]), device="cpu", prepare_on="device"
    )
    config = predictor.to_config()
    assert config["prepare_on"] == "device"
    again = Predictor.from_config(json.loads(json.dumps(config)))
    assert again.prepare_on == "device" and again.to_config() == config
    del config["prepare_on"]  # configurations written before it: the default
    assert Predictor.from_config(config).prepare_on == "auto"


def test_open_input_size_models_batch_same_size_images_on_the_device():
    model = _tiny((None, None, 1))
    images = [np.full((20, 30), 50, np.uint8), np.full((20, 30), 200, np.uint8)]
    pipe = Pipeline([Normalize()])
    a = Predictor(model, preprocess=pipe, device="cpu", prepare_on="cpu").predict(images)
    b = Predictor(model, preprocess=pipe, device="cpu", prepare_on="device").predict(images)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


def _runner_and_batches(n_batches: int = 5):
    inputs = keras.Input((24, 24, 3))
    head = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(inputs)))
    pred = Predictor(
        model, preprocess=Pipeline([Normalize(mode="mobilenet")]), batch_size=4,
        device="cpu", prepare_on="device", workers=1,
    )  # fmt: skip
    device_plan, _ = pred._where()
    rng = np.random.default_rng(1)
    batches = [
        [([0, 1, 2, 3], rng.integers(0, 65535, (4, 40, 40, 1), dtype=np.uint16))]
        for _ in range(n_batches)
    ]
    return pred._device_runner(device_plan), batches


def test_device_runner_clock_names_its_stages_and_resize_constants_are_reused():
    """The stage clock of a device runner (gpu_inference.py --stages) and, on torch, the
    resize matrices made once per device (no per-batch copy from the host)."""
    from m1vision.inference._clock import StageClock

    runner, batches = _runner_and_batches(3)
    runner._stage_clock = clock = StageClock()
    outputs = list(runner.run(batches, owned=True))
    assert len(outputs) == 3 and outputs[0].shape == (4, 2)
    expected = {"stage": 3, "device preparation": 3}
    if keras.config.backend() == "torch":
        import torch

        expected |= {"model": 3, "download": 3}
        x = torch.zeros(1)
        key = (40, 24, "area", True)
        first = _device_prep._constant(x, _device_prep.resize_matrix, *key)
        assert _device_prep._constant(x, _device_prep.resize_matrix, *key) is first
        assert_equal = np.testing.assert_array_equal
        assert_equal(first.numpy(), _device_prep.resize_matrix(*key))
    assert clock.counts == expected


# ---------------------------------------------------------------------------------------------
# the staging thread of the device runner
# ---------------------------------------------------------------------------------------------


def _stage_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "m1vision-stage" and t.is_alive()]


def test_staging_in_a_thread_gives_what_staging_in_turn_gives():
    runner, batches = _runner_and_batches()
    assert runner.threaded  # the default
    threaded = list(runner.run(batches, owned=True))
    runner.threaded = False
    in_turn = list(runner.run(batches, owned=True))
    assert len(threaded) == len(in_turn) == 5
    for a, b in zip(threaded, in_turn, strict=True):
        np.testing.assert_array_equal(a, b)
    assert _stage_threads() == []


def test_an_error_while_staging_is_raised_to_the_caller_and_the_thread_ends():
    from m1vision.errors import ImageReadError

    runner, batches = _runner_and_batches()
    seen = []

    def failing():
        for i, groups in enumerate(batches):
            if i == 3:
                raise ImageReadError("c12.png", "not a PNG")
            seen.append(i)
            yield groups

    outputs = []
    with pytest.raises(ImageReadError, match=r"c12\.png"):
        for out in runner.run(failing(), owned=True):
            outputs.append(out)
    assert len(outputs) == 3 and seen == [0, 1, 2]
    assert _stage_threads() == []


def test_closing_the_run_early_stops_the_staging_thread_before_the_batches_close():
    runner, batches = _runner_and_batches(50)
    read = []

    def source():
        for i, groups in enumerate(batches):
            read.append(i)
            yield groups

    feed = source()
    run = runner.run(feed, owned=True)
    assert next(run).shape == (4, 2)
    run.close()
    assert _stage_threads() == []
    feed.close()  # not running in another thread any more: closes without an error
    assert len(read) <= 4  # the thread read at most the queue's depth ahead, then stopped
