"""The shipped demo segmenter (data/models/phantom_seg.*): cards, Dice on generated phantoms of
sizes and spacings it was not trained on, and the same probabilities on every Keras backend.

`make test` runs this file under TensorFlow and again under JAX (and torch where installed)
through `make test-backends`. The phantoms and their labels are regenerated here from
m1vision.synthetic; the figures are measured, not copied from the card.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from repo_paths import DATA
from repo_paths import REPO as ROOT

from m1vision.data import model_path
from m1vision.numerics import PREDICTION_TOLERANCES
from m1vision.synthetic import PHANTOM_LABELS

keras = pytest.importorskip("keras")

MODELS = DATA / "models"
SCRIPT = ROOT / "tools" / "train_demo_segmenter.py"
CARD_JSON = MODELS / "phantom_seg.json"
METRICS = MODELS / "phantom_seg.metrics.json"
CARD = MODELS / "phantom_seg.md"
BACKEND = keras.config.backend()


def _load_script():
    spec = importlib.util.spec_from_file_location("train_demo_segmenter", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _load_script()


@pytest.fixture(scope="module")
def card():
    return json.loads(CARD_JSON.read_text())


@pytest.fixture(scope="module")
def metrics():
    return json.loads(METRICS.read_text())


@pytest.fixture(scope="module")
def model():
    from m1vision.inference import load_model

    return load_model(model_path("phantom_seg.keras"))


def test_shipped_files_exist_and_the_model_is_small():
    path = model_path("phantom_seg.keras")
    assert path.parent == MODELS
    for p in (path, CARD_JSON, METRICS, CARD):
        assert p.is_file(), f"{p.name} missing: run make train-demo-segmenter"
    assert path.stat().st_size <= 2 * 1024 * 1024


def test_card_states_spacing_intensity_and_the_phantom_labels(card, script):
    seg = card["segmentation"]
    assert (seg["mode"], seg["axis"]) == ("slices", 0)
    assert seg["spacing"] == list(script.SPACING)
    assert [[w["level"], w["width"]] for w in seg["intensity"]["windows"]] == [
        list(w) for w in script.WINDOWS
    ]
    assert seg["input"]["shape"][-1] == len(seg["intensity"]["windows"])
    expected = {"0": {"name": "background", "color": [0, 0, 0]}}
    expected.update({str(k): v for k, v in PHANTOM_LABELS.items()})
    assert seg["labels"] == expected
    assert seg["output"]["classes"] == len(expected)
    assert card["training"] == json.loads(METRICS.read_text())["settings"]


def test_model_matches_its_card(model, card):
    seg = card["segmentation"]
    assert list(model.inputs[0].shape[1:]) == seg["input"]["shape"]
    assert int(model.outputs[0].shape[-1]) == seg["output"]["classes"]


def test_prepare_is_the_cards_window_formula(script, card):
    hu = np.array([[-1000.0, -850.0, -160.0, 40.0, 240.0, 700.0, 1200.0]], np.float32)
    x = script.prepare(hu, [(w["level"], w["width"]) for w in card["segmentation"]["intensity"]["windows"]])
    np.testing.assert_allclose(x[0, :, 0], [0, 0, 0, 0.5, 1, 1, 1], atol=1e-7)
    np.testing.assert_allclose(x[0, :, 1], [0, 0.075, 0.42, 0.52, 0.62, 0.85, 1], atol=1e-6)


def test_model_card_states_the_measured_dice(metrics):
    text = CARD.read_text()
    assert "not for diagnosis" in text.lower()
    for name in [e["name"] for e in PHANTOM_LABELS.values()] + ["mean"]:
        stated = re.search(rf"\| {name} \| ([0-9.]+) \| ([0-9.]+) \|", text)
        assert stated, f"the card's Dice table lost its {name} row"
        assert float(stated.group(1)) == metrics["held_out_dice"][name]
        assert float(stated.group(2)) == metrics["other_dice"][name]
    assert metrics["held_out_dice"]["mean"] >= 0.9
    assert metrics["other_dice"]["mean"] >= 0.9


# A held-out case comes from the card; the others have sizes and spacings of no training case
# (the example first).
OTHER = [
    pytest.param((48, 160, 160), (2.5, 1.0, 1.0), 1234, id="48x160x160-2.5x1x1"),
    pytest.param((24, 208, 184), (5.0, 0.7, 0.85), 77, id="24x208x184-5x0.7x0.85"),
]


def _dice(script, model, card, shape, spacing, seed):
    from m1vision.labels import compare_labels

    image, labels = script.phantom_case(shape, spacing, seed)
    predicted = script.segment_slices(model, image, card)
    assert predicted.shape == labels.shape
    assert predicted.metadata["affine"] == labels.metadata["affine"]
    table = compare_labels(labels, predicted, values=sorted(PHANTOM_LABELS))
    return {PHANTOM_LABELS[int(r["label"])]["name"]: r["dice"] for r in table.rows}


@pytest.mark.slow
@pytest.mark.parametrize(("shape", "spacing", "seed"), OTHER)
def test_shipped_weights_reach_the_dice_target_on_other_sizes_and_spacings(
    script, model, card, shape, spacing, seed
):
    dice = _dice(script, model, card, shape, spacing, seed)
    assert np.mean(list(dice.values())) >= 0.9, dice
    assert min(dice.values()) >= 0.7, dice


@pytest.mark.slow
def test_shipped_weights_reach_the_dice_target_on_a_held_out_phantom(script, model, card, metrics):
    shape, spacing, seed = card["data"]["held_out"][0]
    assert seed >= card["data"]["train_seeds"][1]  # never trained on
    dice = _dice(script, model, card, tuple(shape), tuple(spacing), seed)
    assert np.mean(list(dice.values())) >= 0.9, dice


_TF_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    model = keras.saving.load_model(sys.argv[1], compile=False)
    np.save(sys.argv[3], model.predict_on_batch(np.load(sys.argv[2])))
    """
)


@pytest.mark.slow
def test_every_backend_gives_tensorflows_probabilities(script, model, card, tmp_path):
    """The precision-aware check of the shipped weights: this backend's probabilities on real
    phantom slices against TensorFlow's on the CPU, within PREDICTION_TOLERANCES["cpu"]."""
    from m1vision.synthetic import ct_phantom

    windows = [(w["level"], w["width"]) for w in card["segmentation"]["intensity"]["windows"]]
    x = script.prepare(ct_phantom((12, 128, 128), seed=5)[::3], windows)
    np.save(tmp_path / "x.npy", x)
    done = subprocess.run(
        [sys.executable, "-c", _TF_SCRIPT, str(model_path("phantom_seg.keras")),
         str(tmp_path / "x.npy"), str(tmp_path / "tf.npy")],
        env={**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reference = np.load(tmp_path / "tf.npy")
    probabilities = np.asarray(keras.ops.convert_to_numpy(model.predict_on_batch(x)))
    assert probabilities.shape == (4, 128, 128, card["segmentation"]["output"]["classes"])
    assert np.abs(probabilities - reference).max() <= PREDICTION_TOLERANCES["cpu"]
    top2 = np.sort(reference, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2 * PREDICTION_TOLERANCES["cpu"]
    assert (probabilities.argmax(-1) == reference.argmax(-1))[clear].all()


def test_script_refuses_to_overwrite(tmp_path, script):
    existing = tmp_path / "phantom_seg.json"
    existing.write_text("keep me")
    assert script.main(["--out", str(tmp_path)]) == 1
    assert existing.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phantom_seg.json"]
