"""m1vision.volume.apply_volume: slice by slice, geometry kept, in parallel, clear failures."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
    VolumeSliceError,
)
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


# --------------------------------------------------------------------------------------------
# volumes through the batch engine (Pipeline.run): one volume in, one .nii.gz out
# --------------------------------------------------------------------------------------------


@pytest.fixture
def scans(tmp_path):
    """A folder of series folders, a NIfTI volume, a multi-frame DICOM, a 2-D image and a
    broken series (a slice missing)."""
    import shutil

    from conftest import pydicom_file

    from m1vision.io import write_image

    root = tmp_path / "scans"
    write_ct_series(root / "patient1" / "ct_a", shape=(6, 40, 32))
    write_ct_series(root / "patient2" / "ct_b", variant="shuffled", shape=(5, 32, 32), seed=4)
    write_ct_series(root / "broken", variant="missing_slice", shape=(6, 32, 32), seed=5)
    sag = write_ct_series(tmp_path / "sag", variant="sagittal", shape=(5, 24, 20), seed=6)
    write_nifti(root / "mr.nii.gz", read_series(sag.folder))
    shutil.copy(pydicom_file("rtdose.dcm"), root / "dose.dcm")
    write_image(root / "slice.png", (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64))
    return root


VOLUME_EDGES = Pipeline([GaussianBlur(ksize=3), Canny(low=50, high=150)])
FLOAT_EDGES = Pipeline([Window(center=40, width=400), *VOLUME_EDGES.steps])


def test_a_batch_of_volumes_writes_one_nifti_each_with_the_inputs_geometry(scans, tmp_path):
    from m1vision.pipeline import ToUint8

    pipeline = Pipeline([ToUint8(), GaussianBlur(ksize=3), Canny(low=50, high=150)])
    out = tmp_path / "out"
    report = pipeline.run(scans, out, progress=False)
    status = {item.key: item.status for item in report.items}
    assert status == {
        "broken": "failed",
        "dose.dcm": "ok",
        "mr.nii.gz": "ok",
        "patient1/ct_a": "ok",
        "patient2/ct_b": "ok",
        "slice.png": "ok",
    }
    outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert [o for o in outputs if not o.startswith(("batch_report-", "m1vision-manifest"))] == [
        "dose.nii.gz",
        "mr.nii.gz",
        "patient1/ct_a.nii.gz",
        "patient2/ct_b.nii.gz",
        "slice.png",
    ]
    for key, source in [
        ("patient1/ct_a", read_series(scans / "patient1" / "ct_a")),
        ("mr.nii.gz", read_nifti(scans / "mr.nii.gz")),
    ]:
        got = read_nifti(out / (key.removesuffix(".nii.gz") + ".nii.gz"))
        np.testing.assert_allclose(got.metadata["affine"], source.metadata["affine"], atol=1e-4)
        assert_array_equal(got.pixels, pipeline.apply_volume(source).pixels)


def test_a_failing_volume_fails_only_its_item_and_leaves_no_partial_nifti(scans, tmp_path):
    out = tmp_path / "out"
    report = FLOAT_EDGES.run(scans / "broken", out, progress=False)
    (item,) = report.items
    assert item.status == "failed"
    assert item.error.startswith("MissingSlicesError: ") and "IM0003.dcm" in item.error
    assert not (out / "broken.nii.gz").exists()
    leftovers = [p.name for p in out.iterdir() if not p.name.startswith(("batch_report-", "m1"))]
    assert leftovers == []  # no temporary file either


def test_volume_batches_resume(scans, tmp_path):
    out = tmp_path / "out"
    series = [scans / "patient1" / "ct_a", scans / "patient2" / "ct_b", scans / "broken"]
    first = FLOAT_EDGES.run(series, out, progress=False)
    assert first.counts == {"ok": 2, "skipped": 0, "failed": 1}
    stamp = (out / "ct_a.nii.gz").stat().st_mtime_ns
    again = FLOAT_EDGES.run(series, out, progress=False)
    assert again.counts == {"ok": 0, "skipped": 2, "failed": 1}
    assert {i.key: i.reason for i in again.items if i.status == "skipped"} == {
        "ct_a": "unchanged",
        "ct_b": "unchanged",
    }
    assert (out / "ct_a.nii.gz").stat().st_mtime_ns == stamp
    # a slice of ct_b changes: only ct_b is recomputed
    victim = sorted((scans / "patient2" / "ct_b").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[-2:] = b"\x00\x08"
    victim.write_bytes(bytes(data))
    third = FLOAT_EDGES.run(series, out, progress=False)
    assert {i.key: (i.status, i.reason) for i in third.items if i.key != "broken"} == {
        "ct_a": ("skipped", "unchanged"),
        "ct_b": ("ok", "input changed"),
    }


def test_pipeline_apply_volume_is_apply_volume(ct):
    assert_array_equal(
        EDGES.apply_volume(ct, axis=1).pixels, apply_volume(EDGES, ct, axis=1).pixels
    )


@pytest.mark.parametrize(
    ("call", "argument", "fix"),
    [
        (lambda v: apply_volume(v, gaussian_blur), "func", "apply_volume(func, volume)"),
        (lambda v: apply_volume(gaussian_blur, v.tolist()), "image", "MedicalImage(pixels"),
    ],
    ids=["swapped", "volume-list"],
)
def test_apply_volume_wrong_types_name_the_argument_and_the_fix(call, argument, fix):
    with pytest.raises(InvalidTypeError) as info:
        call(np.zeros((2, 8, 8), np.float32))
    message = str(info.value)
    assert message.startswith(f"{argument} must be"), message
    assert "Fix: " in message and fix in message, message
