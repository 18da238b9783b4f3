"""m1vision.experiment: record, reproduce in a fresh process, explain every difference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from repo_paths import DATA

from m1vision import experiment
from m1vision.errors import InvalidTypeError, RecordError
from m1vision.io import read_image, write_image
from m1vision.pipeline import Canny, GaussianBlur, Pipeline, ToUint8


def make_inputs(folder: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        image = (rng.normal(30000, 4000, (64, 64))).clip(0, 65535).astype(np.uint16)
        image[16 + i : 48, 16:48] += 20000
        paths.append(write_image(folder / f"scan{i}.png", image))
    return paths


PIPELINE = Pipeline([ToUint8(), GaussianBlur(ksize=5, sigma=1.0), Canny(low=40, high=120)])


@pytest.fixture
def recorded(tmp_path):
    make_inputs(tmp_path / "inputs")
    path = experiment.record(
        "edges", pipeline=PIPELINE, inputs=tmp_path / "inputs", out_dir=tmp_path / "experiments"
    )
    return path


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "m1vision", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_record_holds_what_a_replay_needs(recorded, tmp_path):
    data = json.loads(recorded.read_text())
    assert data["schema"] == experiment.SCHEMA
    assert data["version"] == experiment.SCHEMA_VERSION
    assert Pipeline.from_dict(data["pipeline"]) == PIPELINE
    assert [i["path"] for i in data["inputs"]] == [
        f"../../inputs/scan{i}.png" for i in range(3)
    ]  # relative to the record's folder
    for entry in data["inputs"]:
        source = recorded.parent / entry["path"]
        assert entry["sha256"] == experiment.file_sha256(source)
    for out in data["outputs"]:
        produced = PIPELINE(read_image(recorded.parent / out["input"]))
        assert out["sha256"] == experiment.array_sha256(produced)
        assert out["summary"]["dtype"] == "uint8"
    assert data["environment"]["numpy"] == np.__version__
    assert data["metrics"] == {
        "inputs": 3,
        "ok": 3,
        "failed": 0,
        "mean_nonzero_fraction": data["metrics"]["mean_nonzero_fraction"],
    }
    assert 0 < data["metrics"]["mean_nonzero_fraction"] < 0.5


def test_reproduce_in_a_fresh_process_gives_identical_hashes(recorded):
    out = run_cli("reproduce", recorded)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("reproduced")
    assert "compared 3 output(s) exactly" in out.stdout


def test_changed_input_is_detected_and_named(recorded, tmp_path):
    target = tmp_path / "inputs" / "scan1.png"
    image = read_image(target)
    image[0, 0] += 1
    write_image(target, image, overwrite=True)
    out = run_cli("reproduce", recorded)
    assert out.returncode == 1
    assert "input-changed: ../../inputs/scan1.png: sha256" in out.stdout
    assert "NOT reproduced" in out.stdout
    assert "scan0.png" not in out.stdout  # only the changed file is named


def test_missing_input_is_detected_and_named(recorded, tmp_path):
    (tmp_path / "inputs" / "scan2.png").unlink()
    result = experiment.reproduce(recorded)
    assert not result.ok
    assert [(d.kind, d.subject) for d in result.differences] == [
        ("input-missing", "../../inputs/scan2.png")
    ]
    assert result.outputs_compared == 2


def test_output_difference_is_explained_by_how_much(recorded):
    data = json.loads(recorded.read_text())
    data["pipeline"]["steps"][2]["params"]["low"] = 5.0  # as if the code had changed
    recorded.write_text(json.dumps(data))
    result = experiment.reproduce(recorded)
    assert {d.kind for d in result.differences} == {"output-differs"}
    assert all("pixels differ" in d.detail for d in result.differences)


def test_environment_drift_is_shown_side_by_side(recorded):
    data = json.loads(recorded.read_text())
    data["environment"]["opencv_threads"] = 99
    recorded.write_text(json.dumps(data))
    result = experiment.reproduce(recorded)
    assert result.ok  # drift alone is information, not a failure
    import cv2

    assert result.environment == [("opencv_threads", 99, cv2.getNumThreads())]
    assert "opencv_threads  99 ->" in str(result)


def test_records_are_never_overwritten(tmp_path):
    make_inputs(tmp_path / "inputs")
    kwargs = {"pipeline": PIPELINE, "inputs": tmp_path / "inputs", "out_dir": tmp_path / "exp"}
    first = experiment.record("same", **kwargs)
    second = experiment.record("same", **kwargs)
    assert first != second
    assert first.exists()
    assert second.exists()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"version": experiment.SCHEMA_VERSION + 1}, "written by a newer m1vision"),
        ({"version": 0}, "older than any version"),
        ({"schema": "something.else"}, "not an m1vision experiment record"),
    ],
    ids=["newer", "older", "foreign"],
)
def test_schema_check(recorded, edit, match):
    data = json.loads(recorded.read_text())
    data.update(edit)
    recorded.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=match):
        experiment.load_record(recorded)
    out = run_cli("reproduce", recorded)
    assert out.returncode == 2
    assert "version" in out.stderr or "schema" in out.stderr


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("nope.json", "Fix: check the path"),
        ("experiments", "Fix: pass one of the records in"),
        ("experiments/record.json", "Fix: pass one of the records in"),
    ],
    ids=["missing-file", "folder-of-records", "record-json-beside-them"],
)
def test_no_record_says_what_is_expected_and_names_the_records_below(tmp_path, given, fragment):
    inner = tmp_path / "experiments" / "fig3-20261205T010203Z" / "record.json"
    inner.parent.mkdir(parents=True)
    inner.write_text("{}")
    with pytest.raises(RecordError) as info:
        experiment.load_record(tmp_path / given)
    message = str(info.value)
    assert "no record at" in message and "written by m1vision.experiment.record" in message
    assert fragment in message
    assert (repr(str(inner)) in message) == (fragment != "Fix: check the path")


def test_unreadable_record(tmp_path):
    bad = tmp_path / "record.json"
    bad.write_text("{not json")
    with pytest.raises(RecordError, match="not a readable JSON record"):
        experiment.load_record(bad)
    with pytest.raises(RecordError, match="no record at"):
        experiment.load_record(tmp_path / "nope.json")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: experiment.load_record(None), "path"),
        (lambda: experiment.load_record(3), "path"),
        (lambda: experiment.load_record({"record": "x"}), "path"),
        (lambda: experiment.reproduce(None), "record_path"),
        (lambda: experiment.reproduce(np.zeros(2)), "record_path"),
    ],
    ids=["load-none", "load-int", "load-dict", "reproduce-none", "reproduce-array"],
)
def test_a_record_path_of_another_type_names_the_argument_and_the_fix(call, argument):
    with pytest.raises(InvalidTypeError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{argument} must be a str or pathlib.Path"), message
    assert "Fix: pass its path" in message


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "../escape"}, RecordError),
        ({"name": ""}, RecordError),
        ({"tolerance": -1}, RecordError),
        ({"pipeline": "canny"}, TypeError),
    ],
    ids=["path-name", "empty-name", "negative-tolerance", "not-a-pipeline"],
)
def test_record_bad_arguments(tmp_path, kwargs, error):
    make_inputs(tmp_path / "inputs")
    args = {"name": "ok", "pipeline": PIPELINE, "inputs": tmp_path / "inputs"}
    args.update(kwargs)
    with pytest.raises(error):
        experiment.record(**args, out_dir=tmp_path / "exp")
    assert not (tmp_path / "exp").exists() or not any((tmp_path / "exp").iterdir())


def test_set_seed_makes_numpy_and_random_repeat():
    import random

    experiment.set_seed(11)
    a = (random.random(), np.random.rand())  # noqa: NPY002
    experiment.set_seed(11)
    assert a == (random.random(), np.random.rand())  # noqa: NPY002
    with pytest.raises(TypeError):
        experiment.set_seed(-1)


@pytest.mark.slow
def test_predictor_run_is_recorded_and_reproduced_within_tolerance(tmp_path):
    import keras

    from m1vision.inference import Predictor
    from m1vision.pipeline import Normalize, Resize

    make_inputs(tmp_path / "inputs")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model_path = tmp_path / "model.keras"
    model.save(model_path)
    predictor = Predictor(
        str(model_path),
        preprocess=Pipeline([ToUint8(), Resize(size=(32, 32)), Normalize(mode="unit")]),
        labels=["a", "b"],
        device="cpu",
    )
    path = experiment.record(
        "predict",
        pipeline=PIPELINE,
        inputs=tmp_path / "inputs",
        predictor=predictor,
        out_dir=tmp_path / "exp",
    )
    data = json.loads(path.read_text())
    assert data["model"]["sha256"] == experiment.file_sha256(model_path)
    assert len(data["predictions"]["items"]) == 3
    assert experiment.reproduce(path, device="cpu").ok

    data["predictions"]["items"][0]["probabilities"][0] += 0.01
    path.write_text(json.dumps(data))
    result = experiment.reproduce(path, device="cpu")
    assert [(d.kind, d.subject) for d in result.differences] == [
        ("prediction", "../../inputs/scan0.png")
    ]
    assert "tolerance 0.0001" in str(result)


@pytest.mark.slow
def test_one_call_records_the_explorer_export_and_a_predictor_run(tmp_path):
    """The loop from explorer to pipeline to model to record, in one record() call."""
    from m1vision import data
    from m1vision.inference import Predictor
    from m1vision.widgets import EdgeExplorer

    ct = data.ct_slice()
    slices = tmp_path / "slices"
    for k, offset in enumerate((0, 40)):
        write_image(slices / f"slice{k}.png", (ct.pixels + 1024 + offset).astype(np.uint16))
    # The slices store HU + 1024 (+ an offset); soft tissue 40/400 HU is centre 1064 there.
    explorer = EdgeExplorer(read_image(slices / "slice0.png"))
    explorer.set_params(center=1064.0, width=400.0, ksize=5, low=30, high=90)
    sidecar = json.loads((DATA / "models" / "lesion_cnn.json").read_text())
    predictor = Predictor(
        str(DATA / "models" / "lesion_cnn.keras"),
        preprocess=Pipeline.from_dict(sidecar["preprocessing"]["pipeline"]),
        labels=sidecar["labels"],
        device="cpu",
    )
    path = experiment.record(
        "explored",
        pipeline=explorer.to_pipeline(),
        inputs=slices,
        predictor=predictor,
        out_dir=tmp_path / "exp",
    )
    data_ = json.loads(path.read_text())
    assert Pipeline.from_dict(data_["pipeline"]) == explorer.to_pipeline()
    assert data_["model"]["labels"] == ["no lesion", "lesion"]
    assert len(data_["predictions"]["items"]) == 2
    out = run_cli("reproduce", path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "compared 2 output(s) exactly and 2 prediction(s) within tolerance" in out.stdout
