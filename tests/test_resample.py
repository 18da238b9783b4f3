"""m1vision.volume.resample / reorient and the Resample / Reorient pipeline steps.

Checked against SimpleITK's resampler (``sitk.Resample`` onto the same grid, given in ITK's
LPS and (x, y, z) order) and nibabel's orientation functions (``io_orientation``,
``ornt_transform``, ``apply_orientation``, ``inv_ornt_aff``), on oblique, anisotropic grids.
"""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from numpy.testing import assert_allclose, assert_array_equal
from sitk_support import to_sitk

import m1vision._resample as resample_module
from m1vision.errors import GridMismatchError, InvalidParameterError, MemoryBudgetError
from m1vision.io import MedicalImage
from m1vision.labels import label_map
from m1vision.pipeline import Pipeline, Reorient, Resample
from m1vision.synthetic import ct_phantom, ct_phantom_labels
from m1vision.volume import orientation_of, reorient, resample

SHAPE = (14, 40, 36)
SPACING = (2.5, 0.8, 0.7)


def _rotation(ax: float, az: float) -> np.ndarray:
    a, b = math.radians(ax), math.radians(az)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rz = np.array([[math.cos(b), -math.sin(b), 0], [math.sin(b), math.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def _volume(oblique: bool) -> MedicalImage:
    """The phantom on an anisotropic grid, optionally rotated (oblique) in the world."""
    labels = ct_phantom_labels(SHAPE, spacing=SPACING)
    affine = np.asarray(labels.metadata["affine"])
    if oblique:
        rot = np.eye(4)
        rot[:3, :3] = _rotation(17.0, -11.0)
        affine = rot @ affine
        affine[:3, 3] += (3.3, -7.1, 12.4)
    return MedicalImage(
        ct_phantom(SHAPE, seed=1),
        spacing=SPACING,
        metadata={"layout": "volume", "affine": affine.tolist()},
    )


def _sitk_resample(src: MedicalImage, shape, affine, interpolator, fill):
    ref = to_sitk(np.zeros(shape, np.float32), affine)
    out = sitk.Resample(
        to_sitk(src.pixels, src.metadata["affine"]),
        ref,
        sitk.Transform(),
        interpolator,
        float(fill),
        sitk.sitkUnknown,
    )
    return sitk.GetArrayFromImage(out)


def _inside(src_shape, src_affine, shape, affine, margin: float) -> np.ndarray:
    """Output voxels whose position falls at least ``margin`` voxels inside the input's
    centres (-0.5: all of them, the fill value outside included)."""
    m = np.linalg.solve(np.asarray(src_affine), np.asarray(affine))
    idx = np.indices(shape).reshape(3, -1).T
    pos = idx @ m[:3, :3].T + m[:3, 3]
    if margin < 0:
        return np.ones(shape, bool)
    ok = ((pos >= margin) & (pos <= np.array(src_shape) - 1 - margin)).all(axis=1)
    return ok.reshape(shape)


@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "oblique"])
@pytest.mark.parametrize(
    ("interpolation", "itk", "margin", "atol"),
    [
        ("linear", sitk.sitkLinear, -0.5, 0.02),
        ("nearest", sitk.sitkNearestNeighbor, -0.5, 0.0),
        ("bspline", sitk.sitkBSpline, 3.0, 0.5),
    ],
    ids=["linear", "nearest", "bspline"],
)
def test_resample_to_a_spacing_agrees_with_simpleitk(oblique, interpolation, itk, margin, atol):
    src = _volume(oblique)
    # no output voxel falls exactly halfway between input voxels (ties round either way)
    out = resample(src, spacing=(1.9, 1.13, 0.97), interpolation=interpolation, fill=-1000)
    assert out.spacing == (1.9, 1.13, 0.97)
    # the first voxel's centre and the axes' directions are kept
    a, b = np.asarray(src.metadata["affine"]), np.asarray(out.metadata["affine"])
    assert_allclose(b[:3, 3], a[:3, 3])
    assert_allclose(b[:3, :3] / [1.9, 1.13, 0.97], a[:3, :3] / SPACING, atol=1e-12)
    expected = _sitk_resample(src, out.shape, b, itk, -1000)
    inside = _inside(SHAPE, a, out.shape, b, margin)
    assert inside.mean() > 0.3
    assert_allclose(out.pixels[inside], expected[inside], atol=atol, rtol=0)


def test_resample_like_an_oblique_grid_agrees_with_simpleitk():
    src = _volume(False)
    target = _volume(True)
    t_aff = np.asarray(target.metadata["affine"]).copy()
    t_aff[:3, :3] *= 1.3  # other voxel sizes, rotated: a grid no axis of the input follows
    centre = np.asarray(src.metadata["affine"]) @ [*(np.array(SHAPE) - 1) / 2, 1.0]
    t_aff[:3, 3] = centre[:3] - t_aff[:3, :3] @ (np.array([12, 30, 30]) - 1) / 2  # same centre
    like = MedicalImage(
        np.zeros((12, 30, 30), np.float32), metadata={"layout": "volume", "affine": t_aff.tolist()}
    )
    out = resample(src, like=like, fill=-1000)
    assert out.shape == like.shape
    assert_allclose(out.metadata["affine"], t_aff)
    expected = _sitk_resample(src, like.shape, t_aff, sitk.sitkLinear, -1000)
    assert_allclose(out.pixels, expected, atol=0.02)  # the fill outside included
    assert 0.2 < (out.pixels > -1000).mean() < 0.95


def test_nearest_keeps_label_values_and_comes_back_exactly():
    labels = ct_phantom_labels(SHAPE, spacing=SPACING)
    fine = resample(labels, spacing=(1.25, 0.4, 0.35), interpolation="nearest")
    assert fine.pixels.dtype == labels.pixels.dtype
    assert set(np.unique(fine.pixels)) <= set(np.unique(labels.pixels))
    assert fine.metadata["labels"] == labels.metadata["labels"]
    back = resample(fine, like=labels, interpolation="nearest")
    assert_array_equal(back.pixels, labels.pixels)
    assert_allclose(back.metadata["affine"], labels.metadata["affine"])
    odd = resample(labels, spacing=(1.7, 0.93, 1.1), interpolation="nearest")
    assert set(np.unique(odd.pixels)) <= set(np.unique(labels.pixels))


def test_slabs_give_the_same_result(monkeypatch):
    src = _volume(True)
    whole = resample(src, spacing=(1.9, 1.13, 0.97))
    monkeypatch.setattr(resample_module, "_SLAB_BYTES", 1)  # one output slice per call
    sliced = resample(src, spacing=(1.9, 1.13, 0.97))
    assert_array_equal(sliced.pixels, whole.pixels)


@pytest.mark.parametrize(
    "spacing",
    [(1.0, 0.0, 1.0), (1.0, -0.5, 1.0), -2.0, (1.0, float("nan"), 1.0)],
    ids=["zero", "negative", "negative-scalar", "nan"],
)
def test_non_positive_spacing_is_refused(spacing):
    with pytest.raises(InvalidParameterError, match=r"spacing\[\d\] must be a finite number"):
        resample(_volume(False), spacing=spacing)
    with pytest.raises(InvalidParameterError, match="Resample: spacing"):
        Resample(spacing=spacing)


def test_labels_need_nearest_and_one_target():
    labels = ct_phantom_labels(SHAPE, spacing=SPACING)
    with pytest.raises(InvalidParameterError, match='interpolation="nearest"'):
        resample(labels, spacing=1.0)
    with pytest.raises(InvalidParameterError, match=r"exactly one of spacing= .* or like="):
        resample(labels, interpolation="nearest")
    with pytest.raises(InvalidParameterError, match="exactly one"):
        resample(labels, spacing=1.0, like=labels, interpolation="nearest")


# --------------------------------------------------------------------------- reorient


@pytest.mark.parametrize("codes", ["RAS", "LPS", "SPL", "ILA", "PIR"])
@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "oblique"])
def test_reorient_agrees_with_nibabel(codes, oblique):
    src = _volume(oblique)
    a = np.asarray(src.metadata["affine"])
    out = reorient(src, codes)
    start = nib.orientations.io_orientation(a)
    transform = nib.orientations.ornt_transform(start, nib.orientations.axcodes2ornt(codes))
    expected = nib.orientations.apply_orientation(src.pixels, transform)
    expected_affine = a @ nib.orientations.inv_ornt_aff(transform, src.shape)
    assert_array_equal(out.pixels, expected)
    assert_allclose(out.metadata["affine"], expected_affine, atol=1e-9)
    assert "".join(nib.aff2axcodes(out.metadata["affine"])) == codes
    assert orientation_of(out) == codes
    back = reorient(out, orientation_of(src))
    assert_array_equal(back.pixels, src.pixels)
    assert_allclose(back.metadata["affine"], a, atol=1e-9)


@pytest.mark.parametrize(
    "codes", ["RAX", "RRS", "", "RASL", 3], ids=["letter", "twice", "empty", "four", "int"]
)
def test_bad_orientation_codes(codes):
    with pytest.raises(InvalidParameterError, match="one of R/L, one of A/P and one of S/I"):
        reorient(_volume(False), codes)


# --------------------------------------------------------------------------- steps


def test_steps_round_trip_as_json_and_invert_exactly():
    # LPS: axes (x, y, z), so half the voxel size of each axis is (0.35, 0.4, 1.25) mm
    pipe = Pipeline(
        [Reorient(orientation="LPS"), Resample(spacing=(0.35, 0.4, 1.25), interpolation="nearest")]
    )
    again = Pipeline.from_json(pipe.to_json())
    assert again == pipe and again.to_json() == pipe.to_json()
    assert again[1].spacing == (0.35, 0.4, 1.25)
    labels = ct_phantom_labels(SHAPE, spacing=SPACING)
    reoriented = pipe[0](labels)
    result = pipe[1](reoriented)
    back = pipe[0].inverse(pipe[1].inverse(result, like=reoriented), like=labels)
    assert_array_equal(back.pixels, labels.pixels)
    assert_allclose(back.metadata["affine"], labels.metadata["affine"], atol=1e-9)
    assert back.metadata["labels"] == labels.metadata["labels"]


def test_image_step_inverse_brings_a_mask_back_to_the_scan_grid():
    """MONAI's Invertd: segment at 1.5 mm, bring the mask back with nearest."""
    scan = _volume(True)
    step = Resample(spacing=1.5)
    small = step(scan)
    body = lambda hu: hu > -500  # noqa: E731
    mask = label_map(body(small.pixels).astype(np.uint8), like=small)  # "segment" the body
    back = step.inverse(mask, like=scan, interpolation="nearest")
    assert back.shape == scan.shape
    assert_allclose(back.metadata["affine"], scan.metadata["affine"])
    truth = body(scan.pixels)
    dice = 2 * (truth & (back.pixels == 1)).sum() / (truth.sum() + (back.pixels == 1).sum())
    assert dice > 0.93  # a 1.5 mm mask on a 0.7-2.5 mm grid: its outline moves, not the body
    assert_allclose(np.argwhere(back.pixels == 1).mean(0), np.argwhere(truth).mean(0), atol=0.5)


def test_reorient_inverse_checks_the_grid():
    labels = ct_phantom_labels(SHAPE, spacing=SPACING)
    step = Reorient(orientation="RAS")
    other = ct_phantom_labels(SHAPE, spacing=(2.0, 0.8, 0.7))
    with pytest.raises(GridMismatchError, match="resample"):
        step.inverse(step(labels), like=other)


@pytest.mark.parametrize(
    "kwargs",
    [{"spacing": 1e-4}, {"spacing": 1e-4, "interpolation": "nearest"}],
    ids=["linear", "nearest"],
)
def test_an_output_past_the_memory_is_refused_before_allocating(kwargs):
    volume = np.zeros((4, 16, 16), np.float32)
    with pytest.raises(MemoryBudgetError) as info:
        resample(volume, **kwargs)
    message = str(info.value)
    assert message.startswith("resample of a volume of shape (4, 16, 16) gives an output")
    assert "Nothing was allocated. Fix: ask for larger voxels" in message
    assert isinstance(info.value, MemoryError)
