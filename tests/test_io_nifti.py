"""m1vision.io.read_nifti on nibabel's files; write_nifti checked with nibabel and round trips."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import NIBABEL_DATA
from numpy.testing import assert_allclose, assert_array_equal

from m1vision.errors import (
    ImageReadError,
    InvalidImageError,
    InvalidParameterError,
    OutputExistsError,
)
from m1vision.io import (
    MedicalImage,
    read_any,
    read_nifti,
    read_series,
    write_nifti,
)
from m1vision.synthetic import write_ct_series

# --------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------

NIFTIS = ["anatomical.nii", "standard.nii.gz", "reoriented_anat_moved.nii"]


@pytest.mark.parametrize("name", NIFTIS, ids=NIFTIS)
def test_nifti_spacing_and_shape_from_the_header(name):
    img = nib.load(NIBABEL_DATA / name)
    got = read_nifti(NIBABEL_DATA / name)
    canon = nib.as_closest_canonical(img)
    zx, zy, zz = (float(z) for z in canon.header.get_zooms()[:3])
    nx, ny, nz = canon.shape[:3]
    assert got.pixels.shape == (nz, ny, nx)
    assert got.spacing == (zz, zy, zx)
    assert got.pixels.dtype == np.float32
    assert got.metadata["original_orientation"] == "".join(nib.aff2axcodes(img.affine))


@pytest.mark.parametrize("name", NIFTIS, ids=NIFTIS)
def test_nifti_voxels_sit_where_the_file_says(name):
    """Each output voxel, mapped to world mm by metadata["affine"], lands on the voxel of the
    *original* file (its own affine, no reorientation) that holds the same value."""
    img = nib.load(NIBABEL_DATA / name)
    data = img.get_fdata(dtype=np.float32)
    got = read_nifti(NIBABEL_DATA / name)
    out_affine = np.asarray(got.metadata["affine"])
    rng = np.random.default_rng(0)
    idx = np.stack([rng.integers(0, n, 200) for n in got.pixels.shape], axis=1)
    world = out_affine @ np.c_[idx, np.ones(len(idx))].T
    orig = np.rint(np.linalg.inv(img.affine) @ world)[:3].astype(int).T
    assert_array_equal(got.pixels[tuple(idx.T)], data[tuple(orig.T)])


def test_nifti_layout_is_radiological(nifti_path):
    """Rows go anterior -> posterior, columns patient right -> left, slices up (RAS+ world)."""
    affine = np.asarray(read_nifti(nifti_path).metadata["affine"])
    z_dir, row_dir, col_dir = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    assert z_dir[2] > 0  # superior
    assert row_dir[1] < 0  # posterior
    assert col_dir[0] < 0  # towards the patient's left


def test_four_d_nifti_needs_a_frame():
    path = NIBABEL_DATA / "example4d.nii.gz"
    with pytest.raises(ImageReadError, match="pass frame=k") as info:
        read_any(path)
    assert str(path) in str(info.value)
    img = nib.as_closest_canonical(nib.load(path))
    got = read_nifti(path, frame=1)
    expected = img.get_fdata(dtype=np.float32)[..., 1].transpose(2, 1, 0)[:, ::-1, ::-1]
    assert_array_equal(got.pixels, expected)
    with pytest.raises(ImageReadError, match="out of range"):
        read_nifti(path, frame=2)


# --------------------------------------------------------------------------------------------
# write_nifti
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    root = tmp_path_factory.mktemp("nifti_series")
    out = {}
    for variant in ("regular", "sagittal", "oblique", "tilted"):
        gen = write_ct_series(root / variant, variant=variant, shape=(6, 32, 24))
        out[variant] = read_series(gen.folder, strict=False)
    return out


def _sources(series):
    return {
        "anatomical_LAS": read_nifti(NIBABEL_DATA / "anatomical.nii"),
        **{f"series_{k}": v for k, v in series.items()},
    }


SOURCES = ["anatomical_LAS", "series_regular", "series_sagittal", "series_oblique", "series_tilted"]


@pytest.mark.parametrize("name", SOURCES, ids=SOURCES)
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"], ids=["nii", "nii.gz"])
def test_round_trip_keeps_pixels_affine_spacing(series, tmp_path, name, suffix):
    img = _sources(series)[name]
    back = read_nifti(write_nifti(tmp_path / f"out{suffix}", img))
    assert_array_equal(back.pixels, img.pixels)
    assert_allclose(back.metadata["affine"], img.metadata["affine"], atol=1e-4)
    assert back.spacing == pytest.approx(img.spacing, abs=1e-4)


@pytest.mark.parametrize("name", SOURCES, ids=SOURCES)
def test_nibabel_sees_a_marked_voxel_at_the_same_world_position(series, tmp_path, name):
    img = _sources(series)[name]
    pixels = img.pixels.copy()
    zrc = (2, 5, 7)
    pixels[zrc] = -7777.25
    marked = MedicalImage(pixels, spacing=img.spacing, metadata=dict(img.metadata))
    path = write_nifti(tmp_path / "marked.nii.gz", marked)
    nii = nib.load(path)
    data = np.asarray(nii.dataobj)
    ijk = np.argwhere(data == -7777.25)
    assert len(ijk) == 1
    world_nib = nii.affine @ [*ijk[0], 1]
    world_ours = np.asarray(img.metadata["affine"]) @ [*zrc, 1]
    assert_allclose(world_nib, world_ours, atol=1e-4)
    assert int(nii.header["sform_code"]) == 1
    assert nii.header.get_xyzt_units()[0] == "mm"


def test_shear_goes_to_the_sform_only(series, tmp_path):
    nii = nib.load(write_nifti(tmp_path / "tilted.nii.gz", series["tilted"]))
    assert int(nii.header["qform_code"]) == 0
    assert_allclose(nii.get_sform(), nii.affine)
    plain = nib.load(write_nifti(tmp_path / "plain.nii.gz", series["regular"]))
    assert int(plain.header["qform_code"]) == 1
    assert_allclose(plain.get_qform(), plain.get_sform(), atol=1e-4)


def test_window_dtype_and_default_affine(tmp_path):
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 2, 3] = True
    nii = nib.load(write_nifti(tmp_path / "mask.nii", mask))
    assert nii.get_data_dtype() == np.uint8
    img = MedicalImage(np.ones((3, 4, 5), np.float64), spacing=(3.0, 2.0, 1.0), window=(40, 400))
    back = read_nifti(write_nifti(tmp_path / "w.nii.gz", img))
    assert back.window == (40.0, 400.0)
    assert back.spacing == (3.0, 2.0, 1.0)
    assert back.pixels.dtype == np.float32


def test_given_affine_wins(series, tmp_path):
    affine = np.array([[0, 0, -2.0, 10], [0, -3.0, 0, 20], [4.0, 0, 0, 30], [0, 0, 0, 1]])
    back = read_nifti(write_nifti(tmp_path / "a.nii.gz", series["regular"], affine=affine))
    assert_allclose(back.metadata["affine"], affine)
    assert back.spacing == (4.0, 3.0, 2.0)


def test_same_call_writes_the_same_bytes(series, tmp_path):
    a = write_nifti(tmp_path / "a.nii.gz", series["regular"]).read_bytes()
    b = write_nifti(tmp_path / "b.nii.gz", series["regular"]).read_bytes()
    assert a == b


def test_never_replaces_unless_asked_and_leaves_nothing_partial(series, tmp_path):
    path = write_nifti(tmp_path / "v.nii.gz", series["regular"])
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_nifti(path, series["sagittal"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii.gz"]
    write_nifti(path, series["oblique"], overwrite=True)
    assert read_nifti(path).shape == series["oblique"].shape


BAD = [
    ("suffix", "v.png", np.zeros((2, 3, 4), np.float32), {}, InvalidParameterError, ".nii.gz"),
    ("4-D", "v.nii", np.zeros((2, 3, 4, 5), np.float32), {}, InvalidImageError, "(Z, H, W)"),
    ("empty", "v.nii", np.zeros((0, 3, 4), np.float32), {}, InvalidImageError, "non-empty"),
    ("complex", "v.nii", np.zeros((2, 3, 4), np.complex64), {}, InvalidImageError, "complex64"),
    (
        "singular affine",
        "v.nii",
        np.zeros((2, 3, 4), np.float32),
        {"affine": np.zeros((4, 4))},
        InvalidParameterError,
        "invertible",
    ),
    (
        "affine shape",
        "v.nii",
        np.zeros((2, 3, 4), np.float32),
        {"affine": np.eye(3)},
        InvalidParameterError,
        "4x4",
    ),
]


@pytest.mark.parametrize(
    ("name", "image", "kwargs", "error", "word"),
    [b[1:] for b in BAD],
    ids=[b[0] for b in BAD],
)
def test_bad_input_gets_a_documented_error_and_writes_nothing(
    tmp_path, name, image, kwargs, error, word
):
    with pytest.raises(error, match=word.replace("(", r"\(").replace(")", r"\)")) as info:
        write_nifti(tmp_path / name, image, **kwargs)
    assert str(tmp_path / name) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_non_arrays_are_a_type_error(tmp_path):
    with pytest.raises(TypeError, match=r"MedicalImage or a numpy\.ndarray"):
        write_nifti(tmp_path / "v.nii", [[1, 2], [3, 4]])


@pytest.mark.parametrize("kind", ["nifti1", "nifti2"], ids=["nifti1", "nifti2"])
def test_header_of_a_hdr_img_pair_is_refused_with_the_way_to_read_it(tmp_path, kind):
    cls = nib.Nifti1Pair if kind == "nifti1" else nib.Nifti2Pair
    nib.save(cls(np.zeros((2, 3, 4), np.int16), np.eye(4)), tmp_path / "pair.hdr")
    alone = tmp_path / "pair_header.nii"
    alone.write_bytes((tmp_path / "pair.hdr").read_bytes())
    with pytest.raises(ImageReadError, match=r"\.hdr/\.img pair"):
        read_nifti(alone)
