"""The shipped demo model (data/models): size, card, held-out accuracy, Grad-CAM, reproduction.

The held-out data are regenerated from the seed and split stored beside the model, so these
tests check the real shipped files against real data, not against copied numbers.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from repo_paths import DATA
from repo_paths import REPO as ROOT

from m1vision.preprocess import resize, to_uint8
from m1vision.synthetic import LABELS, make_lesion_dataset, split_indices

MODELS = DATA / "models"
SCRIPT = ROOT / "tools" / "train_demo_model.py"
MODEL = MODELS / "lesion_cnn.keras"
SIDECAR = MODELS / "lesion_cnn.json"
METRICS = MODELS / "lesion_cnn.metrics.json"
CARD = MODELS / "MODEL_CARD.md"


def _load_script():
    spec = importlib.util.spec_from_file_location("train_demo_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sidecar():
    return json.loads(SIDECAR.read_text())


@pytest.fixture(scope="module")
def metrics():
    return json.loads(METRICS.read_text())


@pytest.fixture(scope="module")
def held_out(sidecar):
    d = sidecar["data"]
    data = make_lesion_dataset(
        d["n"], size=d["size"], seed=d["seed"], positive_fraction=d["positive_fraction"]
    )
    _, test_idx = split_indices(len(data), test_fraction=d["test_fraction"], seed=d["seed"])
    return data.subset(test_idx)


@pytest.fixture(scope="module")
def model():
    import keras

    return keras.models.load_model(MODEL)


def test_shipped_files_exist_and_model_is_small():
    for path in (MODEL, SIDECAR, METRICS, CARD):
        assert path.is_file(), f"{path.name} missing: run make train-demo-model"
    assert MODEL.stat().st_size <= 2 * 1024 * 1024


def test_sidecar_describes_the_model(sidecar, metrics):
    assert sidecar["labels"] == list(LABELS)
    assert sidecar["input"]["shape"] == [128, 128, 1]
    assert sidecar["grad_cam_layer"] == "last_conv"
    d = sidecar["data"]
    s = metrics["settings"]
    assert (d["n"], d["seed"], d["test_fraction"]) == (s["n"], s["seed"], s["test_fraction"])


def test_sidecar_pipeline_makes_the_model_input(sidecar):
    from m1vision.pipeline import Pipeline

    pipeline = Pipeline.from_dict(sidecar["preprocessing"]["pipeline"])
    hu = np.random.default_rng(0).normal(0.0, 300.0, (300, 200)).astype(np.float32)
    out = pipeline(hu)
    assert out.shape == tuple(sidecar["input"]["shape"][:2])
    assert out.dtype == np.uint8
    # The documented steps: 8-bit by range, then a plain resize to the input size.
    expected = resize(to_uint8(hu), size=out.shape, keep_aspect=False)
    np.testing.assert_array_equal(out, expected)


def test_model_card_states_the_metrics(metrics):
    card = CARD.read_text()
    assert "not for diagnosis" in card.lower()
    stated = re.search(r"held-out accuracy \| ([0-9.]+) \(n = (\d+)\)", card)
    assert stated, "the card's table lost its held-out accuracy row"
    assert float(stated.group(1)) == pytest.approx(metrics["held_out_accuracy"], abs=1e-4)
    assert int(stated.group(2)) == metrics["held_out_n"]
    assert f"seed={metrics['seed']}" in card


@pytest.mark.slow
def test_model_matches_its_input_spec(model, sidecar):
    assert tuple(model.inputs[0].shape[1:]) == tuple(sidecar["input"]["shape"])
    assert int(model.outputs[0].shape[-1]) == len(sidecar["labels"])
    assert model.get_layer(sidecar["grad_cam_layer"]).output.shape[1:3] == (32, 32)


@pytest.mark.slow
def test_held_out_accuracy_equals_the_model_card(model, held_out, metrics):
    assert len(held_out) == metrics["held_out_n"]
    probs = model.predict(held_out.images[..., None].astype(np.float32), verbose=0)
    accuracy = float((probs.argmax(axis=1) == held_out.labels).mean())
    # Same weights, same data: equal up to a borderline case flipping on another CPU.
    assert accuracy == pytest.approx(metrics["held_out_accuracy"], abs=1.5 / len(held_out))
    assert accuracy >= 0.9


@pytest.mark.slow
def test_grad_cam_peak_falls_inside_the_lesion(model, held_out):
    from m1vision.explain import grad_cam

    positives = np.flatnonzero(held_out.labels == 1)
    assert len(positives) > 100
    hits = []
    for i in positives:
        heat = grad_cam(model, held_out.images[i], class_index=1)
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        hits.append(bool(held_out.masks[i][y, x]))
    rate = float(np.mean(hits))
    assert rate >= 0.9, f"Grad-CAM peak inside the lesion for only {rate:.1%} of positives"


def test_script_refuses_to_overwrite(tmp_path):
    script = _load_script()
    existing = tmp_path / "lesion_cnn.json"
    existing.write_text("keep me")
    assert script.main(["--out", str(tmp_path)]) == 1
    assert existing.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lesion_cnn.json"]


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_accuracy(tmp_path, metrics):
    """`make train-demo-model` into a temporary folder: same held-out accuracy."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    fresh = json.loads((tmp_path / "lesion_cnn.metrics.json").read_text())
    assert fresh["settings"] == metrics["settings"]
    assert fresh["held_out_n"] == metrics["held_out_n"]
    assert fresh["held_out_accuracy"] == pytest.approx(metrics["held_out_accuracy"], abs=0.01)
    assert (tmp_path / "lesion_cnn.keras").stat().st_size <= 2 * 1024 * 1024
    assert json.loads((tmp_path / "lesion_cnn.json").read_text()) == json.loads(SIDECAR.read_text())
