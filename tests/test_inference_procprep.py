"""Predictor's process executor: workers preparing into shared-memory batch buffers."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from m1vision.errors import ImageReadError, InvalidParameterError
from m1vision.inference import Predictor
from m1vision.io import write_image
from m1vision.pipeline import GaussianBlur, Normalize, Pipeline

pytestmark = pytest.mark.slow

SIZE = 32


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """23 PNGs of other sizes and depths than the model's input (resize, gray -> 3)."""
    root = tmp_path_factory.mktemp("procprep")
    rng = np.random.default_rng(11)
    paths = []
    for i in range(23):
        if i % 3 == 0:
            image = rng.integers(0, 4096, (50, 41), dtype=np.uint16)
        else:
            image = rng.integers(0, 256, (40 + i, 37, 3), dtype=np.uint8)
        paths.append(write_image(root / f"img_{i:02d}.png", image))
    return paths


PREPROCESS = Pipeline([GaussianBlur(ksize=3), Normalize(mode="unit")])


def _shm_exists(name: str) -> bool:
    return Path("/dev/shm", name.lstrip("/")).exists()


def _processes(model, **kwargs) -> Predictor:
    options = {"batch_size": 5, "device": "cpu", "workers": 2, "executor": "processes"}
    return Predictor(model, preprocess=PREPROCESS, **(options | kwargs))


def test_processes_give_the_same_results_as_threads(model, files):
    threads = Predictor(model, preprocess=PREPROCESS, batch_size=5, device="cpu", workers=2)
    expected = threads.predict(files)
    with _processes(model) as predictor:
        got = predictor.predict(files)
        again = predictor.predict(files[:7])  # the warm workers and ring, a shorter run
    assert expected.executor.startswith("threads (2 workers); prepared on the CPU")
    assert got.executor.startswith("processes (2 workers, ")
    assert "3 shared-memory batch buffers" in got.executor
    np.testing.assert_array_equal(got.probabilities, expected.probabilities)
    np.testing.assert_array_equal(again.probabilities, expected.probabilities[:7])
    assert got.inputs == expected.inputs and got.top_k == expected.top_k


def test_processes_prepare_what_prepare_returns(model, files):
    predictor = _processes(model, batch_size=4)
    try:
        shared = predictor._shared_batches()
        batches = [b.copy() for b in shared.batches(files[:9], str)]
    finally:
        predictor.close()
    expected = np.stack([predictor.prepare(f) for f in files[:9]])
    assert [len(b) for b in batches] == [4, 4, 1]
    np.testing.assert_array_equal(np.concatenate(batches), expected)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/shm is Linux's")
def test_close_unlinks_the_shared_memory(model, files):
    predictor = _processes(model)
    predictor.predict(files[:10])
    names = predictor._shared.names
    assert names and all(_shm_exists(n) for n in names)
    predictor.close()
    assert not any(_shm_exists(n) for n in names)
    predictor.close()  # idempotent


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/shm is Linux's")
def test_a_bad_file_raises_naming_it_and_frees_the_workers(model, files, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    predictor = _processes(model)
    predictor.predict(files[:5])
    names = predictor._shared.names
    with pytest.raises(ImageReadError) as info:
        predictor.predict([*files[:7], bad, *files[7:12]])
    assert any("input 7" in note and "bad.png" in note for note in info.value.__notes__)
    assert predictor._shared is None or not predictor._shared.alive
    assert not any(_shm_exists(n) for n in names)
    np.testing.assert_array_equal(  # the next call starts new workers
        predictor.predict(files[:6]).probabilities,
        Predictor(model, preprocess=PREPROCESS, device="cpu").predict(files[:6]).probabilities,
    )
    predictor.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/dev/shm is Linux's")
def test_an_interrupt_during_a_run_frees_the_shared_memory(model, files, monkeypatch):
    predictor = _processes(model)
    predictor.predict(files[:5])
    names = predictor._shared.names
    calls = []

    def interrupted(out):  # the per-batch step after the model: an interrupt mid-run
        calls.append(len(out))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return np.full((len(out), 3), 1 / 3, np.float32)

    monkeypatch.setattr(predictor, "_outputs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        predictor.predict(files)
    assert not any(_shm_exists(n) for n in names)
    predictor.close()


def test_a_lambda_preprocess_cannot_run_in_processes(model, files):
    predictor = Predictor(model, preprocess=lambda image: image, device="cpu", executor="processes")
    with pytest.raises(InvalidParameterError, match="preprocess cannot be sent"):
        predictor.predict(files[:3])


def test_an_open_input_size_cannot_run_in_processes(files):
    inputs = keras.Input((None, None, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    predictor = Predictor(model, device="cpu", executor="processes")
    with pytest.raises(InvalidParameterError, match="input size is open"):
        predictor.predict(files[:3])


def test_auto_uses_threads_on_a_cpu(model, files):
    result = Predictor(model, preprocess=PREPROCESS, device="cpu").predict(files[:4])
    assert result.executor.startswith("threads (")


def test_executor_must_be_known(model):
    with pytest.raises(InvalidParameterError, match="executor must be"):
        Predictor(model, device="cpu", executor="dask")
