"""m1vision.geometry against nibabel: orientation codes, voxel <-> world, the layout conversion."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine as nib_apply_affine
from nibabel.orientations import aff2axcodes, io_orientation

from m1vision import geometry
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError
from m1vision.geometry import (
    apply_affine,
    axcodes,
    canonical_to_layout,
    check_affine,
    check_spacing,
    default_affine,
    dicom_affine,
    orientation_letters,
    plane_name,
    ras_to_voxel,
    to_layout,
    volume_geometry,
    voxel_to_ras,
)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _affine(perm, signs, *, zooms=(2.5, 0.7, 0.9), rotation=None, shear=0.0):
    """An anisotropic affine: permuted, flipped axes, then rotated (oblique), optional shear."""
    a = np.eye(4)
    m = np.zeros((3, 3))
    for voxel_axis, (ras_axis, sign) in enumerate(zip(perm, signs, strict=True)):
        m[ras_axis, voxel_axis] = sign * zooms[voxel_axis]
    m[:, 0] += shear * m[:, 1]  # a gantry-tilt-like shear of the first axis
    a[:3, :3] = (np.eye(3) if rotation is None else rotation) @ m
    a[:3, 3] = (12.0, -30.5, 41.0)
    return a


CASES = {}
for _perm in itertools.permutations(range(3)):
    for _signs in itertools.product((1, -1), repeat=3):
        _code = "".join(aff2axcodes(_affine(_perm, _signs)))
        CASES[f"{_code}-straight"] = _affine(_perm, _signs)
        CASES[f"{_code}-oblique"] = _affine(
            _perm, _signs, rotation=_rotation(0, 17) @ _rotation(2, -11)
        )
CASES["tilted-shear"] = _affine((2, 1, 0), (1, -1, -1), shear=math.tan(math.radians(12)))
CASES["oblique-40deg"] = _affine((2, 1, 0), (1, -1, -1), rotation=_rotation(1, 40))
IDS = list(CASES)


@pytest.mark.parametrize("name", IDS, ids=IDS)
def test_axcodes_and_io_orientation_match_nibabel(name):
    a = CASES[name]
    assert axcodes(a) == aff2axcodes(a)
    np.testing.assert_array_equal(geometry.io_orientation(a), io_orientation(a))


@pytest.mark.parametrize("name", IDS, ids=IDS)
def test_voxel_world_mapping_matches_nibabel(name):
    a = CASES[name]
    rng = np.random.default_rng(3)
    points = rng.uniform(-5, 60, size=(20, 3))
    np.testing.assert_allclose(apply_affine(a, points), nib_apply_affine(a, points), atol=1e-9)
    voxel = (3, 7, 11)
    ras = voxel_to_ras(a, voxel)
    np.testing.assert_allclose(ras, nib_apply_affine(a, voxel), atol=1e-9)
    np.testing.assert_allclose(ras_to_voxel(a, ras), voxel, atol=1e-9)


@pytest.mark.parametrize("name", IDS, ids=IDS)
def test_to_layout_agrees_with_nibabel_closest_canonical(name):
    """A stored array reoriented into the layout puts each voxel at the same world point, and
    is nibabel's closest-canonical (RAS) array read back in the layout's axis order."""
    a = CASES[name]
    rng = np.random.default_rng(7)
    stored = rng.normal(size=(4, 5, 6)).astype(np.float32)
    pixels, affine, perm = to_layout(stored, a)
    assert axcodes(affine) == ("S", "P", "L")
    # the same voxel, found through both affines, lies at the same world point
    out_index = (1, 2, 3)
    stored_index = np.rint(nib_apply_affine(np.linalg.inv(a) @ affine, out_index)).astype(int)
    assert pixels[out_index] == stored[tuple(stored_index)]
    np.testing.assert_allclose(
        nib_apply_affine(affine, out_index), nib_apply_affine(a, stored_index), atol=1e-9
    )
    assert [stored.shape[p] for p in perm] == list(pixels.shape)
    # nibabel: stored array as NIfTI (i, j, k) with affine a, then as_closest_canonical
    canon = nib.as_closest_canonical(nib.Nifti1Image(stored, a))
    data = np.asarray(canon.dataobj)
    np.testing.assert_array_equal(pixels, data.transpose(2, 1, 0)[:, ::-1, ::-1])
    np.testing.assert_allclose(affine, canon.affine @ canonical_to_layout(data.shape), atol=1e-9)


def test_to_layout_of_the_layout_is_the_identity_without_copy():
    stack = np.arange(24.0).reshape(2, 3, 4)
    a = default_affine((3.0, 0.5, 0.8))
    pixels, affine, perm = to_layout(stack, a)
    assert perm == [0, 1, 2] and np.shares_memory(pixels, stack)
    np.testing.assert_array_equal(affine, a)


@pytest.mark.parametrize(
    ("iop", "codes", "name"),
    [
        ([1, 0, 0, 0, 1, 0], ("S", "P", "L"), "axial"),
        ([1, 0, 0, 0, 0, -1], ("P", "I", "L"), "coronal"),
        ([0, 1, 0, 0, 0, -1], ("R", "I", "P"), "sagittal"),
    ],
    ids=["axial", "coronal", "sagittal"],
)
def test_dicom_affine_orientations(iop, codes, name):
    """ImageOrientationPatient (LPS) -> RAS: a stack stepping along the normal."""
    step = 2.0 * np.cross(iop[:3], iop[3:])
    a = dicom_affine(iop, [-100.0, -120.0, 30.0], (0.7, 0.9), step)
    assert axcodes(a) == codes
    assert plane_name(iop) == name
    # voxel (0, 0, 0) is the first pixel's centre, in RAS (LPS with x and y negated)
    np.testing.assert_allclose(voxel_to_ras(a, (0, 0, 0)), (100.0, 120.0, 30.0))
    # one column step moves 0.9 mm along the row direction, one row step 0.7 mm down a column
    np.testing.assert_allclose(
        np.subtract(voxel_to_ras(a, (0, 0, 1)), voxel_to_ras(a, (0, 0, 0))),
        np.array(iop[:3]) * 0.9 * [-1, -1, 1],
    )
    np.testing.assert_allclose(
        np.subtract(voxel_to_ras(a, (0, 1, 0)), voxel_to_ras(a, (0, 0, 0))),
        np.array(iop[3:]) * 0.7 * [-1, -1, 1],
    )


def test_plane_name_oblique_and_unknown():
    r = _rotation(0, 20)
    iop = np.concatenate([r @ [1, 0, 0], r @ [0, 1, 0]])
    assert plane_name(iop) == "oblique axial"
    assert plane_name(None) == "unknown"


def test_default_affine_is_the_layout():
    a = default_affine((3.0, 1.0, 0.5))
    assert aff2axcodes(a) == ("S", "P", "L")
    np.testing.assert_allclose(nib.affines.voxel_sizes(a), (3.0, 1.0, 0.5))


@pytest.mark.parametrize(
    "spacing",
    [(1.0, 1.0), (1.0, 0.0, 1.0), (1.0, -2.0, 1.0), "111", (1.0, float("nan"), 1.0)],
    ids=["two", "zero", "negative", "string", "nan"],
)
def test_check_spacing_refuses(spacing):
    with pytest.raises((InvalidParameterError, TypeError), match="spacing"):
        check_spacing(spacing)


@pytest.mark.parametrize(
    "affine",
    [np.eye(3), np.zeros((4, 4)), np.full((4, 4), np.nan), "eye"],
    ids=["3x3", "singular", "nan", "string"],
)
def test_check_affine_refuses(affine):
    with pytest.raises(InvalidParameterError, match="affine"):
        check_affine(affine)


def test_check_affine_completes_a_3x4():
    np.testing.assert_array_equal(check_affine(np.eye(4)[:3]), np.eye(4))


def test_volume_geometry_of_array_and_image():
    from m1vision.io import MedicalImage

    _, spacing, affine = volume_geometry(np.zeros((2, 3, 4), np.float32))
    assert spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(affine, default_affine(spacing))
    a = CASES["tilted-shear"]
    img = MedicalImage(np.zeros((2, 3, 4), np.float32), spacing=(2.0, 1.0, 1.0),
                       metadata={"affine": a[:3].tolist()})  # fmt: skip
    _, spacing, affine = volume_geometry(img)
    assert spacing == (2.0, 1.0, 1.0)
    np.testing.assert_array_equal(affine, a)
    with pytest.raises(InvalidImageError, match="3-D"):
        volume_geometry(np.zeros((3, 4)))


def test_orientation_letters_of_an_oblique_volume_follow_its_dominant_axes():
    a = CASES["oblique-40deg"]  # 40 degrees about A-P: the columns still run mostly R->L
    letters = orientation_letters(a, "axial")
    assert letters == {"top": "A", "bottom": "P", "left": "R", "right": "L"}


def test_geometry_and_planes_names_are_the_same_objects():
    from m1vision import planes

    for name in ("default_affine", "orientation_letters", "voxel_to_ras", "volume_geometry",
                 "plane_geometry", "PLANES"):  # fmt: skip
        assert getattr(planes, name) is getattr(geometry, name)


def test_geometry_imports_numpy_only():
    code = (
        "import sys, m1vision.geometry; "
        "bad = [m for m in ('cv2', 'nibabel', 'pydicom', 'tensorflow', 'm1vision.io', "
        "'m1vision.planes') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


BAD_POINTS = {
    "voxel-two": (
        lambda: voxel_to_ras(np.eye(4), (1, 2)),
        InvalidParameterError,
        "voxel",
        "voxel=(0, 0, 0)",
    ),
    "voxel-str": (
        lambda: voxel_to_ras(np.eye(4), ("a", 1, 2)),
        InvalidTypeError,
        "voxel[0]",
        "float()",
    ),
    "point-none": (
        lambda: ras_to_voxel(np.eye(4), None),
        InvalidParameterError,
        "point",
        "point=(0, 0, 0)",
    ),
    "point-nan": (
        lambda: ras_to_voxel(np.eye(4), (np.nan, 0, 0)),
        InvalidParameterError,
        "point[0]",
        "finite",
    ),
    "points-str": (
        lambda: apply_affine(np.eye(4), "abc"),
        InvalidParameterError,
        "points",
        "[[0, 0, 0]",
    ),
    "points-two": (
        lambda: apply_affine(np.eye(4), [[1, 2]]),
        InvalidParameterError,
        "points",
        "[[0, 0, 0]",
    ),
    "plane-array": (
        lambda: geometry.plane_geometry(np.zeros(3)),
        InvalidParameterError,
        "plane",
        "pass one of",
    ),
    "iop-five": (
        lambda: geometry.orientation_problem([1, 0, 0, 0, 1]),
        InvalidParameterError,
        "iop",
        "[1, 0, 0, 0, 1, 0]",
    ),
    "iop-none": (
        lambda: geometry.slice_normal(None),
        InvalidParameterError,
        "iop",
        "ImageOrientationPatient",
    ),
    "iop-str": (
        lambda: plane_name("axial"),
        InvalidParameterError,
        "iop",
        "ImageOrientationPatient",
    ),
    "ipp-two": (
        lambda: dicom_affine([1, 0, 0, 0, 1, 0], [0, 0], (1, 1), [0, 0, 1]),
        InvalidParameterError,
        "ipp",
        "ipp=(0, 0, 0)",
    ),
    "pixel-spacing-scalar": (
        lambda: dicom_affine([1, 0, 0, 0, 1, 0], [0, 0, 0], 0.5, [0, 0, 1]),
        InvalidParameterError,
        "pixel_spacing",
        "pixel_spacing=(row, column) in mm",
    ),
    "shape-none": (
        lambda: geometry.grid_corners(None, np.eye(4)),
        InvalidParameterError,
        "shape",
        "pixels.shape",
    ),
    "shape-negative": (
        lambda: geometry.grid_corners((2, -1, 3), np.eye(4)),
        InvalidParameterError,
        "shape[1]",
        "pass 0 or more",
    ),
    "shape-float": (
        lambda: geometry.grid_distance((2, 2, 2), np.eye(4), (1.5, 2, 2), np.eye(4)),
        InvalidTypeError,
        "shape_b[0]",
        "int()",
    ),
    "shape-xyz-str": (
        lambda: canonical_to_layout("abc"),
        InvalidParameterError,
        "shape_xyz",
        "pixels.shape",
    ),
    "spacing-zero": (
        lambda: check_spacing((0, 1, 1)),
        InvalidParameterError,
        "spacing",
        "MedicalImage.spacing",
    ),
}


@pytest.mark.parametrize(("call", "error", "argument", "fix"), BAD_POINTS.values(), ids=BAD_POINTS)
def test_bad_points_and_options_name_the_argument_and_the_fix(call, error, argument, fix):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{argument} must "), message
    assert "Fix:" in message and fix in message, message
