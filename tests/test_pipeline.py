"""m1vision.pipeline: steps, exact (de)serialisation, errors naming the step, batch runs.

Everything runs for real: real preprocessing, real files written and read back, a real
process pool and a real Dask cluster.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path, PurePath

import cv2
import numpy as np
import pytest

from m1vision import batch, preprocess
from m1vision import pipeline as pl
from m1vision.batch import MANIFEST_NAME
from m1vision.errors import (
    ImageReadError,
    InvalidImageError,
    InvalidParameterError,
    OutputExistsError,
    PipelineConfigError,
    PipelineStepError,
)
from m1vision.io import read_any, read_image, write_image
from m1vision.pipeline import (
    AutoCanny,
    Canny,
    Clahe,
    GaussianBlur,
    Normalize,
    Pipeline,
    Resize,
    Step,
    ToGray,
    ToUint8,
    Window,
    collect_inputs,
    get_step,
    register_step,
    step_names,
)

# ---------------------------------------------------------------------------------------------
# test images and test-only steps
# ---------------------------------------------------------------------------------------------


def _phantom(shape, dtype, seed: int) -> np.ndarray:
    """Shapes on a background with some noise: edges for Canny, texture for CLAHE."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    img = np.zeros((h, w), np.float32)
    cv2.ellipse(img, (w // 2, h // 2), (w // 3, h // 3), 15, 0, 360, 0.6, -1)
    cv2.rectangle(img, (w // 5, h // 5), (w // 2, h // 2), 0.9, -1)
    cv2.circle(img, (2 * w // 3, 2 * h // 3), max(2, h // 8), 0.3, -1)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    if dtype == np.float32:  # CT-like Hounsfield units
        return (img * 2000 - 1000).astype(np.float32)
    top = np.iinfo(dtype).max
    out = np.rint(img * top).astype(dtype)
    if len(shape) == 3:
        out = np.stack([out, np.roll(out, 3, axis=1), np.roll(out, 5, axis=0)], axis=2)
    return out


IMAGES = {
    "color-u8": _phantom((48, 64, 3), np.uint8, 1),
    "gray-u16": _phantom((48, 64), np.uint16, 2),
    "ct-f32": _phantom((48, 64), np.float32, 3),
}

RECORDED_THREADS: list[int] = []


@register_step("test_record_cv_threads")
class RecordCvThreads(Step):
    """Test step: records OpenCV's thread count while the pipeline runs, returns the image."""

    def __call__(self, image):
        RECORDED_THREADS.append(cv2.getNumThreads())
        return image


@register_step("test_add_axes")
class AddAxes(Step):
    """Test step: returns a 4-D array, which the next real step must refuse."""

    def __call__(self, image):
        return image[..., None, None]


# ---------------------------------------------------------------------------------------------
# steps: parameters, registry, behaviour
# ---------------------------------------------------------------------------------------------

STEP_CASES = [
    ("to_gray", {}),
    ("to_uint8", {}),
    ("to_uint8", {"mode": "percentile", "percentiles": (2, 98.5)}),
    ("to_uint8", {"mode": "range", "in_range": (-1000, 400.5)}),
    ("window", {"preset": "lung"}),
    ("window", {"center": -600, "width": 1500}),
    ("window", {"center": 0.1, "width": 0.7}),
    ("gaussian_blur", {}),
    ("gaussian_blur", {"ksize": 7, "sigma": 1.5}),
    ("canny", {}),
    ("canny", {"low": 0.1, "high": 99.5, "aperture": 5, "l2_gradient": True}),
    ("auto_canny", {}),
    ("auto_canny", {"sigma": 0.2, "ignore_background": False}),
    ("clahe", {}),
    ("clahe", {"clip_limit": 3.5, "tile_grid": (4, 6)}),
    ("resize", {"size": (32, 40)}),
    (
        "resize",
        {
            "size": (24, 80),
            "keep_aspect": False,
            "letterbox": False,
            "interpolation": "cubic",
            "pad_value": -1024,
        },
    ),
    ("normalize", {}),
    ("normalize", {"mode": "imagenet"}),
]
STEP_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(STEP_CASES)]

FUNCTIONS = {
    "to_gray": preprocess.to_gray,
    "to_uint8": preprocess.to_uint8,
    "window": preprocess.window,
    "gaussian_blur": preprocess.gaussian_blur,
    "canny": preprocess.canny,
    "auto_canny": lambda image, **kw: preprocess.auto_canny(image, **kw).edges,
    "clahe": preprocess.clahe,
    "resize": preprocess.resize,
    "normalize": preprocess.normalize,
}


#: the names and classes of DEVELOPERS-NOTES.md's contract
DOCUMENTED_STEPS = {
    "to_gray": ToGray,
    "to_uint8": ToUint8,
    "window": Window,
    "gaussian_blur": GaussianBlur,
    "canny": Canny,
    "auto_canny": AutoCanny,
    "clahe": Clahe,
    "resize": Resize,
    "normalize": Normalize,
}


@pytest.mark.parametrize(("name", "cls"), DOCUMENTED_STEPS.items(), ids=list(DOCUMENTED_STEPS))
def test_builtin_step_is_registered_under_its_documented_name(name, cls):
    assert get_step(name) is cls
    assert cls.name == name


def test_every_documented_step_has_a_round_trip_case():
    assert {name for name, _ in STEP_CASES} == set(DOCUMENTED_STEPS)


def _as_json(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize(("name", "params"), STEP_CASES, ids=STEP_IDS)
def test_step_params_round_trip(name, params):
    step = get_step(name)(**params)
    got = step.params()
    assert list(got) == list(type(step).param_names())
    for key, value in params.items():  # what was given is kept (numbers compare by value)
        assert got[key] == _as_json(value)
    assert _as_json(got) == got  # JSON-safe: pairs are lists, nothing else needs converting
    rebuilt = get_step(name)(**_as_json(got))
    assert rebuilt == step
    assert repr(rebuilt) == repr(step)  # pairs come back as tuples, not lists
    assert hash(rebuilt) == hash(step)


@pytest.mark.parametrize("image_kind", list(IMAGES), ids=list(IMAGES))
@pytest.mark.parametrize(("name", "params"), STEP_CASES, ids=STEP_IDS)
def test_step_computes_what_its_function_computes(name, params, image_kind):
    image = IMAGES[image_kind]
    before = image.copy()
    got = get_step(name)(**params)(image)
    expected = FUNCTIONS[name](image, **params)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(image, before)


def test_equal_steps_whatever_number_type_or_zero_sign():
    assert Canny(low=50, high=150) == Canny(low=50.0, high=150.0)
    assert hash(Canny(low=50, high=150)) == hash(Canny())
    assert Window(center=-0.0, width=1) == Window(center=0.0, width=1.0)
    assert (
        Pipeline([Window(center=-0.0, width=1)]).to_json()
        == Pipeline([Window(center=0, width=1)]).to_json()
    )
    assert Canny(low=50) != Canny(low=51)
    assert GaussianBlur() != Canny()


BAD_PARAMS = [
    (GaussianBlur, {"ksize": 4}, InvalidParameterError, "ksize must be odd"),
    (GaussianBlur, {"ksize": 0}, InvalidParameterError, "ksize must be >= 1"),
    (GaussianBlur, {"ksize": 5.0}, TypeError, "ksize must be an integer"),
    (GaussianBlur, {"sigma": -1}, InvalidParameterError, "sigma must be >= 0"),
    (GaussianBlur, {"sigma": float("nan")}, InvalidParameterError, "sigma must be finite"),
    (Canny, {"low": 200, "high": 100}, InvalidParameterError, "low <= high"),
    (Canny, {"aperture": 4}, InvalidParameterError, "aperture must be one of"),
    (Canny, {"l2_gradient": "yes"}, TypeError, "l2_gradient must be True or False"),
    (AutoCanny, {"sigma": 1.0}, InvalidParameterError, "sigma must be < 1"),
    (Window, {}, InvalidParameterError, "needs center and width"),
    (Window, {"preset": "lung", "center": 40}, InvalidParameterError, "not both"),
    (Window, {"preset": "lungs"}, InvalidParameterError, "preset must be one of"),
    (Window, {"center": 40, "width": 0}, InvalidParameterError, "width must be > 0"),
    (ToUint8, {"mode": "minmax"}, InvalidParameterError, "mode must be one of"),
    (ToUint8, {"percentiles": (99, 1)}, InvalidParameterError, "0 <= low < high <= 100"),
    (ToUint8, {"in_range": (10, -10)}, InvalidParameterError, "low <= high"),
    (ToUint8, {"in_range": 5}, InvalidParameterError, "in_range must be a pair"),
    (Clahe, {"tile_grid": (0, 8)}, InvalidParameterError, "tile_grid[0] must be >= 1"),
    (Clahe, {"tile_grid": (8, 8, 8)}, InvalidParameterError, "tile_grid must be a pair"),
    (Clahe, {"clip_limit": -1}, InvalidParameterError, "clip_limit must be >= 0"),
    (Resize, {"size": (0, 10)}, InvalidParameterError, "size[0] must be >= 1"),
    (Resize, {"size": "224x224"}, InvalidParameterError, "size must be a pair"),
    (Resize, {"size": (8, 8), "interpolation": "bicubic"}, InvalidParameterError, "one of"),
    (Normalize, {"mode": "zscore"}, InvalidParameterError, "mode must be one of"),
]
BAD_IDS = [f"{cls.__name__}-{'-'.join(map(str, kw)) or 'none'}" for cls, kw, *_ in BAD_PARAMS]


@pytest.mark.parametrize(("cls", "params", "error", "fragment"), BAD_PARAMS, ids=BAD_IDS)
def test_bad_params_fail_when_the_step_is_built(cls, params, error, fragment):
    with pytest.raises(error) as info:
        cls(**params)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}: ")
    assert fragment in message


@pytest.mark.parametrize(("cls", "params", "error", "fragment"), BAD_PARAMS, ids=BAD_IDS)
def test_bad_params_in_a_dict_are_a_config_error_naming_the_step(cls, params, error, fragment):
    doc = Pipeline([ToGray()]).to_dict()
    doc["steps"].append({"name": cls.name, "params": _as_json(params)})
    with pytest.raises(PipelineConfigError) as info:
        Pipeline.from_dict(doc)
    message = str(info.value)
    assert f"step 1 ({cls.name!r})" in message
    assert fragment in message
    assert isinstance(info.value.__cause__, error)


def test_unknown_step_lists_the_known_names():
    doc = {"schema": "m1vision.pipeline", "version": 1, "steps": [{"name": "gausian_blur"}]}
    with pytest.raises(PipelineConfigError, match="unknown pipeline step 'gausian_blur'") as info:
        Pipeline.from_dict(doc)
    message = str(info.value)
    assert "Did you mean 'gaussian_blur'?" in message
    for name in step_names():
        assert name in message
    with pytest.raises(PipelineConfigError, match="Known steps: auto_canny, canny"):
        get_step("sharpen")


def test_unknown_parameter_lists_the_accepted_ones():
    doc = {
        "schema": "m1vision.pipeline",
        "version": 1,
        "steps": [{"name": "gaussian_blur", "params": {"kernel": 5}}],
    }
    with pytest.raises(PipelineConfigError, match=r"\['kernel'\]; it accepts \['ksize', 'sigma'\]"):
        Pipeline.from_dict(doc)


BAD_DOCS = {
    "a-list": ([{"name": "to_gray"}], "must be a dict"),
    "no-schema": ({"version": 1, "steps": []}, "schema is None"),
    "other-schema": ({"schema": "x", "version": 1, "steps": []}, "schema is 'x'"),
    "newer-version": ({"schema": "m1vision.pipeline", "version": 2, "steps": []}, "Upgrade"),
    "no-version": ({"schema": "m1vision.pipeline", "steps": []}, "version None"),
    "extra-key": ({"schema": "m1vision.pipeline", "version": 1, "steps": [], "x": 1}, "['x']"),
    "steps-not-list": ({"schema": "m1vision.pipeline", "version": 1, "steps": "to_gray"}, "list"),
    "step-no-name": ({"schema": "m1vision.pipeline", "version": 1, "steps": [{}]}, "step 0"),
    "params-not-dict": (
        {"schema": "m1vision.pipeline", "version": 1, "steps": [{"name": "clahe", "params": 2}]},
        "params must be a dict",
    ),
}


@pytest.mark.parametrize(("doc", "fragment"), BAD_DOCS.values(), ids=BAD_DOCS.keys())
def test_malformed_descriptions_are_config_errors(doc, fragment):
    with pytest.raises(PipelineConfigError) as info:
        Pipeline.from_dict(doc)
    assert fragment in str(info.value)


def test_text_that_is_not_json_is_a_config_error():
    with pytest.raises(PipelineConfigError, match="not valid JSON"):
        Pipeline.from_json('{"schema": ')


class _Unregistered(Step):
    def __call__(self, image):
        return image


NOT_A_PIPELINE = {
    "a-function": (lambda: [ToGray(), lambda image: image], TypeError,
                   r"steps\[1\] must be an m1vision.pipeline.Step"),
    "one-step": (lambda: GaussianBlur(), TypeError, "must be a list of steps"),
    "unregistered": (lambda: [_Unregistered()], PipelineConfigError, "not a registered step"),
}  # fmt: skip


@pytest.mark.parametrize(("steps", "error", "match"), NOT_A_PIPELINE.values(), ids=NOT_A_PIPELINE)
def test_pipeline_accepts_only_registered_steps(steps, error, match):
    with pytest.raises(error, match=match):
        Pipeline(steps())


class _Other(Step):
    def __call__(self, image):
        return image


BAD_REGISTRATIONS = {
    "taken-name": ("canny", _Other, PipelineConfigError,
                   re.escape("'canny' is taken by m1vision.pipeline.Canny")),
    "not-a-step": ("test_not_a_step", dict, TypeError,
                   re.escape("subclass of m1vision.pipeline.Step")),
    "bad-name": ("has space", None, InvalidParameterError, "step name"),
}  # fmt: skip


@pytest.mark.parametrize(("name", "cls", "error", "match"), BAD_REGISTRATIONS.values(),
                         ids=BAD_REGISTRATIONS)  # fmt: skip
def test_register_step_refuses_a_taken_name_and_non_steps(name, cls, error, match):
    with pytest.raises(error, match=match):
        decorate = register_step(name)
        decorate(cls)
    assert get_step("canny") is Canny
    assert "test_not_a_step" not in step_names()


# ---------------------------------------------------------------------------------------------
# serialisation
# ---------------------------------------------------------------------------------------------

PIPELINES = {
    "empty": Pipeline([]),
    "edges": Pipeline([ToGray(), GaussianBlur(ksize=5, sigma=0.1), Canny(low=0.1, high=0.3)]),
    "ct-window": Pipeline([Window(center=-600.5, width=1500.25), Clahe(tile_grid=(4, 8))]),
    "model-input": Pipeline(
        [
            ToUint8(mode="percentile", percentiles=(0.5, 99.5)),
            Resize(size=(224, 192), pad_value=-1.5, interpolation="area"),
            Normalize(mode="mobilenet"),
        ]
    ),
    "every-step": Pipeline(
        [
            ToGray(),
            ToUint8(in_range=(-1024, 3071)),
            Window(preset="bone"),
            GaussianBlur(),
            Canny(l2_gradient=True),
            AutoCanny(),
            Clahe(),
            Resize(size=(64, 64)),
            Normalize(),
        ]
    ),
    "custom-step": Pipeline([RecordCvThreads(), GaussianBlur(ksize=3)]),
}


@pytest.mark.parametrize("pipeline", PIPELINES.values(), ids=PIPELINES.keys())
def test_json_round_trip_is_exact(pipeline):
    text = pipeline.to_json()
    again = Pipeline.from_json(text)
    assert again == pipeline
    assert again.to_json() == text  # byte-identical
    assert json.loads(text) == pipeline.to_dict() == again.to_dict()
    assert Pipeline.from_dict(pipeline.to_dict()) == pipeline
    assert [repr(s) for s in again] == [repr(s) for s in pipeline]  # tuples stay tuples
    assert hash(again) == hash(pipeline)


@pytest.mark.parametrize("pipeline", PIPELINES.values(), ids=PIPELINES.keys())
def test_repr_rebuilds_the_pipeline(pipeline):
    namespace = {name: getattr(pl, name) for name in pl.__all__}
    namespace.update(RecordCvThreads=RecordCvThreads)
    assert eval(repr(pipeline), namespace) == pipeline


def test_to_dict_follows_the_documented_schema():
    p = Pipeline([GaussianBlur(ksize=3, sigma=1), Clahe(tile_grid=(2, 4))])
    assert p.to_dict() == {
        "schema": "m1vision.pipeline",
        "version": 1,
        "steps": [
            {"name": "gaussian_blur", "params": {"ksize": 3, "sigma": 1.0}},
            {"name": "clahe", "params": {"clip_limit": 2.0, "tile_grid": [2, 4]}},
        ],
    }


def test_floats_and_signs_survive_exactly():
    width = 0.1 + 0.2  # 0.30000000000000004: needs all 17 digits
    p = Pipeline([Window(center=-1e-7, width=width), Canny(low=1 / 3, high=2 / 3)])
    again = Pipeline.from_json(p.to_json())
    assert again[0].center == -1e-7
    assert again[0].width == width
    assert (again[1].low, again[1].high) == (1 / 3, 2 / 3)
    assert type(again[0].center) is float


def test_a_dict_written_by_hand_with_tuples_or_lists_gives_the_same_pipeline():
    by_hand = {
        "schema": "m1vision.pipeline",
        "version": 1,
        "steps": [{"name": "resize", "params": {"size": (32, 32)}}, {"name": "to_gray"}],
    }
    p = Pipeline.from_dict(by_hand)
    assert p == Pipeline([Resize(size=[32, 32]), ToGray()])
    assert p[0].size == (32, 32)


def test_save_and_load(tmp_path):
    p = PIPELINES["ct-window"]
    path = p.save(tmp_path / "pipe.json")
    assert Pipeline.load(path) == p
    with pytest.raises(OutputExistsError):
        p.save(path)
    path.write_text('{"schema": "m1vision.pipeline", "version": 1, "steps": [{"name": "x"}]}')
    with pytest.raises(PipelineConfigError, match=re.escape("pipe.json")):
        Pipeline.load(path)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing.json", "No such file"),
        (".", "Is a directory"),
        ("latin1.json", "'utf-8' codec can't decode"),
    ],
    ids=["missing", "folder", "not-utf8"],
)
def test_load_of_no_pipeline_file_names_it_and_the_fix(tmp_path, name, reason):
    (tmp_path / "latin1.json").write_bytes(b'{"schema": "\xe9"}')
    path = tmp_path / name
    with pytest.raises(PipelineConfigError) as info:
        Pipeline.load(path)
    message = str(info.value)
    assert message.startswith(f"cannot read the pipeline file {str(path)!r}: {reason}"), message
    assert message.endswith("Fix: check the path, or write one with pipeline.save(path).")


# ---------------------------------------------------------------------------------------------
# calling a pipeline, and its errors
# ---------------------------------------------------------------------------------------------


def test_pipeline_is_its_steps_in_order():
    image = IMAGES["gray-u16"]
    before = image.copy()
    p = Pipeline([ToUint8(), GaussianBlur(ksize=5, sigma=1.2), Canny(low=20, high=60)])
    expected = preprocess.canny(
        preprocess.gaussian_blur(preprocess.to_uint8(image), ksize=5, sigma=1.2), low=20, high=60
    )
    np.testing.assert_array_equal(p(image), expected)
    np.testing.assert_array_equal(image, before)
    assert Pipeline([])(image) is image
    np.testing.assert_array_equal(p[1:](preprocess.to_uint8(image)), expected)


def test_step_error_names_the_step_and_a_nan_input():
    image = IMAGES["color-u8"].astype(np.float32)
    image[3, 4, 1] = np.nan
    p = Pipeline([ToGray(), GaussianBlur(ksize=3)])
    with pytest.raises(PipelineStepError) as info:
        p(image)
    err = info.value
    message = str(err)
    assert "step 0 ('to_gray'" in message
    assert "shape (48, 64, 3) and dtype float32" in message
    assert "InvalidImageError: image holds 1 NaN" in message
    assert isinstance(err.__cause__, InvalidImageError)
    assert (err.index, err.step_name, err.params) == (0, "to_gray", {})
    assert (err.shape, err.dtype) == ((48, 64, 3), "float32")


def test_step_error_reports_what_the_failing_step_received():
    p = Pipeline([AddAxes(), GaussianBlur(ksize=5, sigma=2)])
    with pytest.raises(PipelineStepError) as info:
        p(np.zeros((8, 9), np.uint16))
    message = str(info.value)
    assert 'step 1 (\'gaussian_blur\', params {"ksize": 5, "sigma": 2.0})' in message
    assert "shape (8, 9, 1, 1) and dtype uint16" in message
    assert isinstance(info.value.__cause__, InvalidImageError)
    assert info.value.params == {"ksize": 5, "sigma": 2.0}


def test_step_error_for_a_4d_array_and_for_a_non_array():
    with pytest.raises(PipelineStepError, match=r"shape \(2, 8, 8, 3\) and dtype uint8"):
        Pipeline([Canny()])(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(PipelineStepError, match="input of type list") as info:
        Pipeline([Canny()])([[0, 1], [1, 0]])
    assert isinstance(info.value.__cause__, TypeError)


# ---------------------------------------------------------------------------------------------
# collecting inputs
# ---------------------------------------------------------------------------------------------


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_collect_inputs_scans_folders_recursively_in_order(tmp_path):
    _touch(
        tmp_path,
        "b.png",
        "a.DCM",
        "c.Jpeg",
        "vol.nii.gz",
        "t1.nii",
        "z/scan.tiff",
        "z/y/img.bmp",
        "m.tif",
        "notes.txt",
        "archive.tar.gz",
        ".hidden.png",
        "._b.png",
        ".git/x.png",
    )
    found = collect_inputs(tmp_path)
    assert [(src.relative_to(tmp_path).as_posix(), stem.as_posix()) for src, stem in found] == [
        ("a.DCM", "a"),
        ("b.png", "b"),
        ("c.Jpeg", "c"),
        ("m.tif", "m"),
        ("t1.nii", "t1"),
        ("vol.nii.gz", "vol"),
        ("z/scan.tiff", "z/scan"),
        ("z/y/img.bmp", "z/y/img"),
    ]
    assert all(isinstance(stem, PurePath) for _, stem in found)


def test_collect_inputs_takes_files_by_name_and_lists(tmp_path):
    _touch(tmp_path, "IM0001", "dir/a.png", "dir/sub/b.png", "x.nii.gz")
    found = collect_inputs([tmp_path / "IM0001", str(tmp_path / "dir"), tmp_path / "x.nii.gz"])
    assert [(src.name, str(stem)) for src, stem in found] == [
        ("IM0001", "IM0001"),
        ("a.png", "a"),
        ("b.png", "sub/b"),
        ("x.nii.gz", "x"),
    ]
    assert collect_inputs(tmp_path / "dir", exclude=tmp_path / "dir" / "sub") == [
        (tmp_path / "dir" / "a.png", PurePath("a"))
    ]


COLLECT_ERRORS = {
    "missing": ((), "missing", ImageReadError, "no such file or folder"),
    "no-images": (("empty/readme.txt",), "empty", InvalidParameterError,
                  r"no image files .*\.nii\.gz"),
    "same-stem": (("two/a.png", "two/a.tif"), "two", InvalidParameterError,
                  r"a\.png.* and .*a\.tif.* both be written"),
    "same-stem-ignoring-case": (("case/Scan.png", "case/scan.jpg"), "case", InvalidParameterError,
                                "ignoring case"),
    "not-a-path": ((), 3, TypeError, "inputs must be a path"),
    "a-list-with-a-non-path": ((), ["", 3], TypeError, r"inputs\[1\] must be a path"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("files", "inputs", "error", "match"), COLLECT_ERRORS.values(), ids=COLLECT_ERRORS
)
def test_collect_inputs_errors(tmp_path, files, inputs, error, match):
    _touch(tmp_path, *files)
    if isinstance(inputs, str):
        inputs = tmp_path / inputs
    elif isinstance(inputs, list):
        inputs = [tmp_path / item if isinstance(item, str) else item for item in inputs]
    with pytest.raises(error, match=match):
        collect_inputs(inputs)


# ---------------------------------------------------------------------------------------------
# batch runs
# ---------------------------------------------------------------------------------------------

EDGES = Pipeline([ToUint8(), GaussianBlur(ksize=3), Canny(low=30, high=90)])
GOOD = ["a.png", "ct.dcm", "sub/b.png", "sub/deeper/c.tif"]
CORRUPT = {
    "zero.png": "empty (0 bytes)",
    "sub/cut.png": "truncated PNG",
    "text.png": "not an image",
}


@pytest.fixture
def batch_in(tmp_path, ct_path) -> Path:
    """A folder of 4 good images (color PNG, 16-bit PNG, 8-bit TIFF, a CT DICOM) and 3 bad."""
    root = tmp_path / "in"
    write_image(root / "a.png", IMAGES["color-u8"])
    write_image(root / "sub" / "b.png", IMAGES["gray-u16"])
    write_image(root / "sub" / "deeper" / "c.tif", _phantom((40, 30), np.uint8, 4))
    shutil.copyfile(ct_path, root / "ct.dcm")
    (root / "zero.png").write_bytes(b"")
    whole = (root / "a.png").read_bytes()
    (root / "sub" / "cut.png").write_bytes(whole[: len(whole) // 2])
    (root / "text.png").write_text("this is not a PNG\n")
    (root / "readme.txt").write_text("not an input")
    return root


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    return {name: read_image(folder / name) for name in _files(folder) if name.endswith(".png")}


def _expected_output(source: Path, pipeline: Pipeline = EDGES) -> np.ndarray:
    return pipeline(read_any(source).pixels)


def test_batch_over_a_folder_with_corrupt_files(batch_in, tmp_path):
    out = tmp_path / "out"
    report = EDGES.run(batch_in, out, progress=False)

    assert report.counts == {"ok": 4, "skipped": 0, "failed": 3}
    assert re.fullmatch(r"BatchReport: 4 ok, 0 skipped, 3 failed in \d+\.\d s", repr(report))
    rel = [Path(item.input).relative_to(batch_in).as_posix() for item in report.items]
    assert rel == ["a.png", "ct.dcm", "sub/b.png", "sub/cut.png", "sub/deeper/c.tif", "text.png",
                   "zero.png"]  # fmt: skip
    for item in report.failed:
        name = Path(item.input).relative_to(batch_in).as_posix()
        assert item.error.startswith("ImageReadError: ")
        assert CORRUPT[name] in item.error
        assert Path(item.input).name in item.error
    assert {Path(i.input).relative_to(batch_in).as_posix() for i in report.ok} == set(GOOD)

    # exactly the outputs of the good files, the manifest and the report: nothing partial
    assert report.path.parent == out
    assert re.fullmatch(r"batch_report-\d{8}T\d{6}\.json", report.path.name)
    assert _files(out) == sorted(
        ["a.png", "ct.png", "sub/b.png", "sub/deeper/c.png", report.path.name, MANIFEST_NAME]
    )
    assert [item.key for item in report.items] == rel  # the input key: relative, extension kept
    assert {item.reason for item in report.items} == {"new"}
    for item in report.ok:
        assert item.status == "ok" and item.error is None and item.seconds > 0
        np.testing.assert_array_equal(
            read_image(item.output), _expected_output(Path(item.input)), strict=True
        )

    on_disk = json.loads(report.path.read_text())
    assert on_disk == report.to_dict()
    assert on_disk["schema"] == "m1vision.batch_report" and on_disk["version"] == 2
    assert on_disk["job"]["config"]["pipeline"] == EDGES.to_dict() == report.pipeline
    assert on_disk["counts"] == {"ok": 4, "skipped": 0, "failed": 3}
    assert "failed" in str(report) and "zero.png" in str(report)


def test_rerun_skips_and_overwrite_rewrites(batch_in, tmp_path):
    out = tmp_path / "out"
    first = EDGES.run(batch_in, out, progress=False)
    first_text = first.path.read_text()
    expected = _outputs(out)
    tampered = np.zeros_like(expected["a.png"])
    write_image(out / "a.png", tampered, overwrite=True)

    second = EDGES.run(batch_in, out, progress=False)
    assert second.counts == {"ok": 1, "skipped": 3, "failed": 3}
    assert all(item.seconds == 0 for item in second.skipped)
    assert second.reasons == {"unchanged": 3, "output truncated": 1, "failed before": 3}  # smaller
    np.testing.assert_array_equal(read_image(out / "a.png"), expected["a.png"])  # the edit undone
    assert second.path != first.path
    assert first.path.read_text() == first_text  # an earlier report is never replaced

    third = EDGES.run(batch_in, out, progress=False, overwrite=True)
    assert third.counts == {"ok": 4, "skipped": 0, "failed": 3}
    got = _outputs(out)
    for name, image in expected.items():
        np.testing.assert_array_equal(got[name], image)
    assert len(list(out.glob("batch_report-*.json"))) == 3
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_out_dir_inside_the_input_folder_is_not_read_back(batch_in):
    out = batch_in / "results"
    first = EDGES.run(batch_in, out, progress=False)
    second = EDGES.run(batch_in, out, progress=False)
    assert len(first) == len(second) == 7
    assert second.counts["skipped"] == 4


def test_a_file_named_directly_keeps_its_name(tmp_path, ct_path):
    src = tmp_path / "IM0001"  # DICOM files often have no extension
    shutil.copyfile(ct_path, src)
    p = Pipeline([Window(preset="soft_tissue"), Canny(low=40, high=120)])
    report = p.run([src], tmp_path / "out", progress=False, suffix="_edges.png")
    assert report.counts["ok"] == 1
    assert report.items[0].output == str(tmp_path / "out" / "IM0001_edges.png")
    np.testing.assert_array_equal(
        read_image(tmp_path / "out" / "IM0001_edges.png"), p(read_any(src).pixels)
    )


def test_float_results_go_to_tif(tmp_path):
    write_image(tmp_path / "in" / "x.png", IMAGES["gray-u16"])
    p = Pipeline([GaussianBlur(ksize=3), Normalize()])
    report = p.run(tmp_path / "in", tmp_path / "out", progress=False, suffix=".tif")
    assert report.counts["ok"] == 1
    got = read_image(tmp_path / "out" / "x.tif")
    np.testing.assert_array_equal(got, p(IMAGES["gray-u16"]), strict=True)


def test_a_volume_becomes_a_nifti_and_one_slice_is_processed_as_an_image(tmp_path):
    # a volume input is one .nii.gz output (tests/test_volume.py has more)
    import nibabel as nib

    root = tmp_path / "in"
    root.mkdir()
    volume = np.stack([IMAGES["ct-f32"].T] * 3, axis=2)  # nibabel (x, y, z)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), root / "vol.nii.gz")
    nib.save(nib.Nifti1Image(volume[:, :, :1], np.eye(4)), root / "one.nii.gz")
    report = EDGES.run(root, tmp_path / "out", progress=False)
    assert report.counts == {"ok": 2, "skipped": 0, "failed": 0}
    vol = read_any(root / "vol.nii.gz")
    np.testing.assert_array_equal(
        read_any(tmp_path / "out" / "vol.nii.gz").pixels, [EDGES(s) for s in vol.pixels]
    )
    np.testing.assert_array_equal(
        read_image(tmp_path / "out" / "one.png"), EDGES(read_any(root / "one.nii.gz").pixels[0])
    )


def test_a_failing_step_fails_its_file_with_the_step_named(tmp_path):
    write_image(tmp_path / "in" / "ok.png", IMAGES["gray-u16"])
    write_image(tmp_path / "in" / "color.png", IMAGES["color-u8"])
    report = Pipeline([AddAxes(), Canny()]).run(tmp_path / "in", tmp_path / "out", progress=False)
    assert report.counts == {"ok": 0, "skipped": 0, "failed": 2}
    for item in report.items:
        assert item.error.startswith("PipelineStepError: pipeline step 1 ('canny'")
        assert "dtype uint" in item.error
    assert _files(tmp_path / "out") == sorted([report.path.name, MANIFEST_NAME])


REJECTED_UP_FRONT = {
    "bad-suffix": (EDGES, {"suffix": ".xyz"}, InvalidParameterError, "suffix must end"),
    "float-to-png": (Pipeline([Normalize()]), {}, PipelineConfigError, "returns float32"),
    "not-an-executor": (EDGES, {"executor": "dask"}, TypeError, "concurrent.futures.Executor"),
    "bad-chunksize": (EDGES, {"chunksize": 0}, InvalidParameterError, "chunksize must be >= 1"),
}


@pytest.mark.parametrize(
    ("pipeline", "kwargs", "error", "fragment"), REJECTED_UP_FRONT.values(), ids=REJECTED_UP_FRONT
)
def test_bad_run_arguments_fail_before_anything_is_written(
    batch_in, tmp_path, pipeline, kwargs, error, fragment
):
    with pytest.raises(error, match=re.escape(fragment)):
        pipeline.run(batch_in, tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_colliding_outputs_and_out_dir_equal_to_input_fail_up_front(batch_in, tmp_path):
    write_image(batch_in / "a.tif", IMAGES["color-u8"])
    with pytest.raises(InvalidParameterError, match="both be written"):
        EDGES.run(batch_in, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidParameterError, match="out_dir is the input folder"):
        EDGES.run(batch_in, batch_in, progress=False)


def test_progress_bar_is_shown_and_can_be_turned_off(tmp_path, capsys):
    for k in range(3):
        write_image(tmp_path / "in" / f"{k}.png", IMAGES["gray-u16"])
    EDGES.run(tmp_path / "in", tmp_path / "o1", progress=False)
    assert capsys.readouterr().err == ""
    EDGES.run(tmp_path / "in", tmp_path / "o2")
    err = capsys.readouterr().err
    assert "Pipeline.run" in err and "3/3" in err


def test_opencv_runs_one_thread_per_file_during_the_run_and_is_restored(tmp_path):
    for k in range(4):
        write_image(tmp_path / "in" / f"{k}.png", IMAGES["gray-u16"])
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        RECORDED_THREADS.clear()
        report = Pipeline([RecordCvThreads(), Canny()]).run(
            tmp_path / "in", tmp_path / "out", progress=False
        )
        assert report.counts["ok"] == 4
        assert RECORDED_THREADS == [1, 1, 1, 1]
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_a_given_thread_pool_gives_the_same_outputs_and_stays_usable(batch_in, tmp_path):
    EDGES.run(batch_in, tmp_path / "default", progress=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        report = EDGES.run(batch_in, tmp_path / "pool", executor=pool, progress=False, chunksize=3)
        assert pool.submit(sum, [1, 2]).result() == 3  # not shut down by run
    assert report.counts == {"ok": 4, "skipped": 0, "failed": 3}
    assert report.executor == "ThreadPoolExecutor(max_workers=2)"
    default, pooled = _outputs(tmp_path / "default"), _outputs(tmp_path / "pool")
    assert default.keys() == pooled.keys() and len(default) == 4
    for name in default:
        np.testing.assert_array_equal(pooled[name], default[name])


@pytest.fixture(scope="module")
def spawn_pool():
    # "spawn", as on macOS: nothing is inherited, so the task and its arguments must pickle
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as ex:
        yield ex


@pytest.mark.slow
def test_a_process_pool_gives_the_same_outputs(batch_in, tmp_path, spawn_pool):
    local = EDGES.run(batch_in, tmp_path / "local", progress=False)
    remote = EDGES.run(batch_in, tmp_path / "pool", executor=spawn_pool, progress=False)
    assert remote.counts == local.counts == {"ok": 4, "skipped": 0, "failed": 3}
    assert [i.error for i in remote.items] == [i.error for i in local.items]
    default, pooled = _outputs(tmp_path / "local"), _outputs(tmp_path / "pool")
    assert default.keys() == pooled.keys() and len(default) == 4
    for name in default:
        np.testing.assert_array_equal(pooled[name], default[name])


@pytest.mark.slow
def test_a_custom_step_reaches_spawned_workers(batch_in, tmp_path, spawn_pool):
    # test_record_cv_threads is registered by this test module: the workers import it first
    p = Pipeline([RecordCvThreads(), Canny()])
    report = p.run(batch_in, tmp_path / "out", executor=spawn_pool, progress=False)
    assert report.counts == {"ok": 4, "skipped": 0, "failed": 3}


@pytest.mark.slow
def test_a_step_whose_module_workers_cannot_import_fails_each_file(batch_in, tmp_path, spawn_pool):
    p = Pipeline([AddAxes(), Canny()])
    modules = {"modules": ["m1vision_no_such_module"], "pipeline": p.to_dict()}
    job = pl._run.PipelineJob(p, ".png")
    job.worker = lambda: (pl._run._run_files, modules)
    report = batch.run(job, batch_in, tmp_path / "out", executor=spawn_pool, progress_bar=False)
    assert report.counts["failed"] == 7
    assert all(
        i.error.startswith("PipelineConfigError: the module 'm1vision_no_such_module'")
        for i in report.items
    )


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_outputs(batch_in, tmp_path):
    import distributed

    local = EDGES.run(batch_in, tmp_path / "local", progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        executor = client.get_executor()
        remote = EDGES.run(batch_in, tmp_path / "dask", executor=executor, progress=False)
        again = EDGES.run(
            batch_in, tmp_path / "dask", executor=executor, progress=False, overwrite=True
        )
    assert remote.counts == local.counts == again.counts == {"ok": 4, "skipped": 0, "failed": 3}
    assert remote.executor.startswith("ClientExecutor(scheduler=tcp://")
    default, dask_out = _outputs(tmp_path / "local"), _outputs(tmp_path / "dask")
    assert default.keys() == dask_out.keys() and len(default) == 4
    for name in default:
        np.testing.assert_array_equal(dask_out[name], default[name])
