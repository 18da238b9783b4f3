"""m1vision.volume.apply_volume: slice by slice, geometry kept, in parallel, clear failures."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from m1vision.errors import InvalidImageError, InvalidParameterError, VolumeSliceError
from m1vision.io import MedicalImage, read_nifti, read_series, write_nifti
from m1vision.pipeline import Canny, GaussianBlur, Pipeline, Window
from m1vision.preprocess import canny, gaussian_blur, window
from m1vision.synthetic import write_ct_series
from m1vision.volume import apply_volume

EDGES = Pipeline([Window(center=40, width=400), GaussianBlur(ksize=3), Canny(low=50, high=150)])


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    gen = write_ct_series(tmp_path_factory.mktemp("vol"), variant="sagittal", shape=(8, 48, 40))
    return read_series(gen.folder)


def _by_hand(vol, axis):
    """The same edges, one slice at a time through the preprocess functions."""
    planes = []
    for k in range(vol.shape[axis]):
        plane = np.take(vol.pixels, k, axis=axis)
        blurred = gaussian_blur(window(plane, center=40, width=400), ksize=3)
        planes.append(canny(blurred, low=50, high=150))
    return np.stack(planes, axis=axis)


@pytest.mark.parametrize("axis", [0, 1, 2], ids=["axial", "coronal", "sagittal"])
def test_pipeline_over_a_volume_equals_slice_by_slice_and_keeps_geometry(ct, axis):
    out = apply_volume(EDGES, ct, axis=axis)
    assert out.shape == ct.shape and out.pixels.dtype == np.uint8
    assert out.spacing == ct.spacing and out.metadata["affine"] == ct.metadata["affine"]
    assert out.metadata["applied"]["axis"] == axis
    assert out.window is None  # uint8 edges are no longer in HU
    expected = np.stack(
        [EDGES(np.take(ct.pixels, k, axis=axis)) for k in range(ct.shape[axis])], axis=axis
    )
    assert_array_equal(out.pixels, expected)


def test_pipeline_steps_match_the_preprocess_functions(ct):
    out = apply_volume(EDGES, ct)
    assert_array_equal(out.pixels, _by_hand(ct, 0))


def test_threads_processes_and_one_worker_agree(ct):
    one = apply_volume(EDGES, ct, workers=1)
    four = apply_volume(EDGES, ct, workers=4)
    with ProcessPoolExecutor(2) as pool:
        procs = apply_volume(EDGES, ct, executor=pool)
    assert_array_equal(one.pixels, four.pixels)
    assert_array_equal(one.pixels, procs.pixels)


def test_input_is_not_modified_even_by_a_function_that_writes(ct):
    before = ct.pixels.copy()

    def scribble(plane):
        plane[:] = 0
        return plane

    apply_volume(scribble, ct)
    assert_array_equal(ct.pixels, before)


def test_result_writes_to_nifti_aligned_with_the_source(ct, tmp_path):
    edges = apply_volume(EDGES, ct)
    back = read_nifti(write_nifti(tmp_path / "edges.nii.gz", edges))
    assert_array_equal(back.pixels, edges.pixels)
    np.testing.assert_allclose(back.metadata["affine"], ct.metadata["affine"], atol=1e-4)


def test_a_failing_slice_names_itself(ct):
    def fails_on_three(plane):
        if plane is not None and fails_on_three.calls == 3:
            raise ValueError("boom")
        fails_on_three.calls += 1
        return plane

    fails_on_three.calls = 0
    with pytest.raises(
        VolumeSliceError, match=r"slice \d+ of 8 along axis 0.*ValueError: boom"
    ) as info:
        apply_volume(fails_on_three, ct, workers=1)
    assert isinstance(info.value.__cause__, ValueError)


BAD = [
    ("2-D image", np.zeros((4, 5), np.float32), {}, InvalidImageError, "call the function"),
    ("4-D", np.zeros((2, 3, 4, 5), np.float32), {}, InvalidImageError, r"\(Z, H, W\)"),
    ("axis 3", np.zeros((2, 3, 4), np.float32), {"axis": 3}, InvalidParameterError, "axis"),
    (
        "workers 0",
        np.zeros((2, 3, 4), np.float32),
        {"workers": 0},
        InvalidParameterError,
        "workers",
    ),
]


@pytest.mark.parametrize(
    ("image", "kwargs", "error", "word"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_gets_a_documented_error(image, kwargs, error, word):
    with pytest.raises(error, match=word):
        apply_volume(lambda s: s, image, **kwargs)


def test_functions_that_change_the_slice_size_are_refused(ct):
    with pytest.raises(InvalidImageError, match="slice size kept"):
        apply_volume(lambda s: s[::2], ct)
    with pytest.raises(TypeError, match="callable"):
        apply_volume("canny", ct)


def test_color_volumes_are_refused():
    color = MedicalImage(np.zeros((2, 4, 5, 3), np.uint8), metadata={"layout": "color-volume"})
    with pytest.raises(InvalidImageError, match="monochrome"):
        apply_volume(lambda s: s, color)
