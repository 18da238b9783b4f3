"""m1vision.io.write_nifti, checked with nibabel and by round trips through read_nifti."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import NIBABEL_DATA
from numpy.testing import assert_allclose, assert_array_equal

from m1vision.errors import InvalidImageError, InvalidParameterError, OutputExistsError
from m1vision.io import MedicalImage, read_nifti, read_series, write_nifti
from m1vision.synthetic import write_ct_series


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
