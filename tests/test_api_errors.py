"""Bad input to the public functions raises an m1vision error, never a raw Python, NumPy or
OpenCV one.

Each public function of the array and file modules gets typical bad first arguments (None, a
string, a list, an int, arrays of the wrong rank, empty, NaN, complex or object arrays, a
missing file and a folder), its other required arguments a small valid-looking array. It may
accept the value (``has_image_extension("abc")`` is simply False) or raise an
:class:`~m1vision.errors.M1VisionError`; nothing else may escape.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from m1vision.errors import M1VisionError

MODULES = (
    "m1vision.data",
    "m1vision.draw",
    "m1vision.experiment",
    "m1vision.geometry",
    "m1vision.io",
    "m1vision.labels",
    "m1vision.planes",
    "m1vision.preprocess",
    "m1vision.render",
    "m1vision.viz",
    "m1vision.volume",
)

#: Public functions left out, and why.
LEFT_OUT = {
    # helpers over values their callers have checked: describe_grid writes the grids into
    # GridMismatchError's message (it must not raise while an error is being raised),
    # direction_letter names one column of a checked affine, letter_boxes lays out the
    # letters of a picture render_plane made
    "m1vision.geometry.describe_grid",
    "m1vision.geometry.direction_letter",
    "m1vision.planes.letter_boxes",
    # hashing a path that is no file is an OSError, as hashlib's own file_digest raises
    "m1vision.experiment.file_sha256",
    # the command line's entry: prints to stderr and returns an exit status
    "m1vision.experiment.reproduce_cli",
}

BAD = {
    "none": lambda tmp: None,
    "str": lambda tmp: "abc",
    "list": lambda tmp: [[1, 2], [3, 4]],
    "int": lambda tmp: 7,
    "1d": lambda tmp: np.arange(5, dtype=np.float32),
    "4d": lambda tmp: np.zeros((2, 2, 2, 2), np.float32),
    "empty": lambda tmp: np.zeros((0, 5), np.float32),
    "nan": lambda tmp: np.full((8, 8), np.nan, np.float32),
    "complex": lambda tmp: np.zeros((8, 8), np.complex64),
    "object": lambda tmp: np.array([[object()]]),
    "missing-file": lambda tmp: tmp / "missing.png",
    "folder": lambda tmp: tmp,
}


def _functions():
    out = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            qualified = f"{module_name}.{name}"
            if inspect.isclass(obj) or not callable(obj) or qualified in LEFT_OUT:
                continue
            params = list(inspect.signature(obj).parameters.values())
            if params and params[0].kind in (
                params[0].POSITIONAL_ONLY,
                params[0].POSITIONAL_OR_KEYWORD,
            ):
                out.append((qualified, obj))
    return out


FUNCTIONS = _functions()


def _call(function, first, **more):
    required = [
        p.name
        for p in list(inspect.signature(function).parameters.values())[1:]
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    extra = {name: np.zeros((8, 8), np.float32) for name in required}
    return function(first, **extra)


@pytest.mark.parametrize("bad", list(BAD), ids=list(BAD))
@pytest.mark.parametrize(("name", "function"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_bad_first_argument_raises_an_m1vision_error_or_is_accepted(
    name, function, bad, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a relative "abc" lands here, never in the checkout
    try:
        _call(function, BAD[bad](tmp_path))
    except M1VisionError:
        pass
    except Exception as exc:  # the property under test: nothing else escapes
        pytest.fail(f"{name}({bad}) let a raw {type(exc).__name__} escape: {exc}")


def test_the_audit_covers_the_array_and_file_functions():
    names = {n for n, _ in FUNCTIONS}
    for expected in (
        "m1vision.preprocess.window",
        "m1vision.draw.overlay_mask",
        "m1vision.io.write_image",
        "m1vision.labels.read_labels",
        "m1vision.volume.resample",
        "m1vision.geometry.voxel_to_ras",
        "m1vision.planes.extract_plane",
    ):
        assert expected in names


# ---------------------------------------------------------------------------------------------
# MedicalImage refuses what no reader, writer or view could use
# ---------------------------------------------------------------------------------------------

PIXELS = np.zeros((3, 4, 5), np.float32)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        pytest.param({"pixels": [[1, 2]]}, "InvalidTypeError", "pixels", id="pixels-list"),
        pytest.param({"pixels": None}, "InvalidTypeError", "pixels", id="pixels-none"),
        pytest.param({"spacing": 1.0}, "InvalidParameterError", "spacing", id="spacing-number"),
        pytest.param({"spacing": "1,1,1"}, "InvalidParameterError", "spacing", id="spacing-str"),
        pytest.param({"spacing": (1.0,)}, "InvalidParameterError", "spacing", id="spacing-one"),
        pytest.param({"spacing": (1, 1, 1, 1)}, "InvalidParameterError", "spacing", id="four"),
        pytest.param(
            {"spacing": (1.0, 0.0, 1.0)}, "InvalidParameterError", "spacing[1]", id="zero"
        ),
        pytest.param({"spacing": (1.0, 1.0, -2)}, "InvalidParameterError", "spacing[2]", id="neg"),
        pytest.param({"spacing": (np.nan, 1, 1)}, "InvalidParameterError", "spacing[0]", id="nan"),
        pytest.param({"spacing": ("1", 1, 1)}, "InvalidTypeError", "spacing[0]", id="str-size"),
        pytest.param({"window": (40.0,)}, "InvalidParameterError", "window", id="window-one"),
        pytest.param({"window": ("c", 400)}, "InvalidTypeError", "window[0]", id="window-str"),
    ],
)
def test_medical_image_refuses_what_nothing_could_use(kwargs, error, names):
    from m1vision import errors
    from m1vision.io import MedicalImage

    args = {"pixels": PIXELS} | kwargs
    with pytest.raises(getattr(errors, error)) as info:
        MedicalImage(**args)
    message = str(info.value)
    assert message.startswith(names) and "Fix:" in message


@pytest.mark.parametrize(
    "spacing",
    [
        pytest.param(None, id="none"),
        pytest.param((2.5, 0.8, 0.8), id="tuple"),
        pytest.param([1, 2], id="list-of-ints"),
        pytest.param(np.array([3.0, 1.0, 1.0], np.float32), id="float32-array"),
    ],
)
def test_medical_image_keeps_a_usable_spacing_as_given(spacing):
    from m1vision.io import MedicalImage

    image = MedicalImage(PIXELS, spacing=spacing, window=(40, 400))
    assert image.spacing is spacing and image.window == (40, 400)
