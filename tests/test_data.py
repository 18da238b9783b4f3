"""m1vision.data: the sample loaders, the registry, and the generated files in data/samples."""

from __future__ import annotations

import importlib.metadata
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from numpy.testing import assert_array_equal
from repo_paths import REPO

from m1vision import data
from m1vision.errors import ImageReadError, InvalidParameterError, InvalidTypeError
from m1vision.io import read_any, read_image

LOADERS = ["ct_slice", "ct_slice_512", "mr_slice", "volume", "dose_volume"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails: proves the loaders never download."""

    def refuse(*args, **kwargs):
        raise AssertionError("a sample loader tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", LOADERS, ids=LOADERS)
def test_loader_matches_registry_offline(no_network, name):
    image = getattr(data, name)()
    info = data.SAMPLES[name]
    assert image.pixels.shape == info.shape
    assert image.pixels.dtype.name == info.dtype
    assert np.isfinite(image.pixels).all()
    assert Path(image.source) == data.sample_path(name)


@pytest.mark.parametrize("name", list(data.SAMPLES), ids=list(data.SAMPLES))
def test_every_sample_exists_and_reads_as_registered(name):
    info = data.SAMPLES[name]
    path = data.sample_path(name)
    assert path.is_file()
    assert path.name == Path(info.file).name
    assert info.description and info.source and info.licence
    # the registry describes phantom()'s output, not the file inside scikit-image
    pixels = data.phantom() if name == "phantom" else read_any(path).pixels
    assert pixels.shape == info.shape
    assert pixels.dtype.name == info.dtype


@pytest.mark.parametrize(
    ("origin", "dist", "licence_file", "phrase"),
    [
        ("pydicom", "pydicom", "LICENSE", "released under an MIT license"),
        ("nibabel", "nibabel", "COPYING", "covered by the MIT license"),
        ("scikit-image", "scikit-image", "LICENSE.txt", "License: BSD-3-Clause"),
    ],
    ids=["pydicom", "nibabel", "scikit-image"],
)
def test_licence_claims_match_the_wheels_licence_texts(origin, dist, licence_file, phrase):
    files = importlib.metadata.files(dist)
    text = next(f for f in files if f.name == licence_file).read_text(encoding="utf-8")
    assert phrase in text
    spdx = "MIT" if "MIT" in phrase else "BSD-3-Clause"
    sources = [i for i in data.SAMPLES.values() if i.source.startswith(origin + ":")]
    assert sources
    for info in sources:
        assert info.licence.startswith(spdx), info.name


def test_ct_slice_is_hounsfield():
    ct = data.ct_slice()
    ds = pydicom.dcmread(data.sample_path("ct_slice"))
    assert ct.modality == "CT"
    assert_array_equal(ct.pixels, ds.pixel_array.astype(np.float32) + float(ds.RescaleIntercept))


def test_ct_slice_512_decodes_jpeg2000_with_installed_plugins():
    ct = data.ct_slice_512()
    assert "JPEG 2000" in ct.metadata["transfer_syntax"]
    assert ct.window == (40.0, 100.0)
    # a CT of a body: air and soft tissue both present
    assert (ct.pixels < -900).any()
    assert ((ct.pixels > 0) & (ct.pixels < 100)).any()


def test_dose_volume_has_dose_grid_scaling_applied():
    dose = data.dose_volume()
    ds = pydicom.dcmread(data.sample_path("dose_volume"))
    assert dose.metadata["dose_units"] == str(ds.DoseUnits)
    assert_array_equal(dose.pixels, (ds.pixel_array * float(ds.DoseGridScaling)).astype(np.float32))


def test_volume_is_a_3d_nifti():
    import nibabel as nib

    vol = data.volume()
    assert vol.is_volume
    assert vol.spacing == (2.0, 2.0, 2.0)
    assert vol.metadata["format"] == "nifti1"
    # nibabel's voxels, whatever the layout: the same values, as many times each
    stored = np.asarray(nib.load(data.sample_path("volume")).get_fdata(), np.float32)
    assert_array_equal(np.sort(vol.pixels, axis=None), np.sort(stored, axis=None))


# --------------------------------------------------------------------------------------------
# phantom
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "top"),
    [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)],
    ids=["uint8", "uint16", "float32"],
)
@pytest.mark.parametrize("size", [64, 512], ids=["64", "512"])
def test_phantom_fills_the_dtype_range(dtype, top, size):
    p = data.phantom(size=size, dtype=dtype)
    assert p.shape == (size, size)
    assert p.dtype == dtype
    assert p.min() == 0
    assert p.max() == top


def test_phantom_at_native_size_is_skimage_scaled():
    from skimage.data import shepp_logan_phantom

    original = shepp_logan_phantom()
    got = data.phantom(size=400, dtype=np.float32)
    assert_array_equal(got, (original / original.max()).astype(np.float32))
    assert_array_equal(data.phantom(size=400), np.round(original / original.max() * 65535))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 8}, InvalidParameterError, "size must be >= 16"),
        ({"size": 64.0}, TypeError, "size must be an integer"),
        ({"dtype": np.int16}, InvalidParameterError, "dtype must be one of"),
        ({"dtype": "not a dtype"}, InvalidParameterError, "dtype must be one of"),
    ],
    ids=["too-small", "float-size", "int16", "garbage-dtype"],
)
def test_phantom_rejects_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.phantom(**kwargs)


# --------------------------------------------------------------------------------------------
# registry, paths, generated files
# --------------------------------------------------------------------------------------------


def test_sample_path_unknown_name_lists_the_samples():
    with pytest.raises(InvalidParameterError, match="ct_slice_512") as info:
        data.sample_path("ct_big")
    assert "'ct_big'" in str(info.value)


def test_missing_generated_sample_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("M1VISION_SAMPLES", str(tmp_path))
    assert data.samples_dir() == tmp_path
    with pytest.raises(ImageReadError, match=r"tools/make_sample_data\.py"):
        data.sample_path("phantom_png16")


def test_samples_dir_is_the_repository_folder():
    assert data.samples_dir() == REPO / "data" / "samples"
    assert data.batch_dir() == REPO / "data" / "samples" / "batch"
    assert len(list(data.batch_dir().glob("*.png"))) == 8


def test_generated_pngs_hold_what_the_readme_says():
    assert_array_equal(read_image(data.sample_path("phantom_png16")), data.phantom())
    assert_array_equal(read_image(data.sample_path("phantom_tiff16")), data.phantom())
    ct = read_image(data.sample_path("ct_png16")).astype(np.float64) - 1024
    assert_array_equal(ct, np.round(data.ct_slice().pixels))
    assert_array_equal(read_image(data.sample_path("mr_png16")), np.round(data.mr_slice().pixels))
    color = read_image(data.sample_path("ct_color_jpeg"))
    assert color.shape == (256, 256, 3)
    assert not np.array_equal(color[..., 0], color[..., 2])  # really colored


def test_data_folder_is_small_and_every_file_is_documented():
    files = [p for p in (REPO / "data").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3 * 1024 * 1024
    readme = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    card = (REPO / "data" / "models" / "MODEL_CARD.md").read_text(encoding="utf-8")
    for p in files:
        if p.parent == REPO / "data" / "models":  # the demo model: its model card says what
            assert p.name == "MODEL_CARD.md" or f"`{p.name}`" in card, p.name
        elif p.parent != REPO / "data":
            rel = p.relative_to(REPO / "data").as_posix()
            assert f"`{rel}`" in readme, rel


def _run_generator(out: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "tools" / "make_sample_data.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.mark.slow
def test_generator_is_deterministic_and_matches_the_committed_pixels(tmp_path):
    first, second = tmp_path / "a" / "samples", tmp_path / "b" / "samples"
    _run_generator(first)
    _run_generator(second)
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert names == sorted(i.file for i in data.SAMPLES.values() if i.origin == "generated")
    for rel in names:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
        # pixels (not bytes: another libpng may compress differently) match the committed files
        assert_array_equal(read_image(first / rel), read_image(data.samples_dir() / rel))
    assert (first.parent / "README.md").read_bytes() == (second.parent / "README.md").read_bytes()


# --------------------------------------------------------------------------------------------
# the generated CT series
# --------------------------------------------------------------------------------------------


def test_ct_series_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    from m1vision.data import ct_series, ct_series_dir
    from m1vision.synthetic import ct_phantom

    monkeypatch.setenv("M1VISION_CACHE", str(tmp_path))
    folder = ct_series_dir()
    assert folder.parent == tmp_path
    assert len(list(folder.glob("IM*.dcm"))) == 64
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no temporary folder left
    stamp = (folder / "IM0001.dcm").stat().st_mtime_ns
    assert ct_series_dir() == folder
    assert (folder / "IM0001.dcm").stat().st_mtime_ns == stamp
    vol = ct_series()
    assert vol.shape == (64, 256, 256) and vol.spacing == (2.5, 0.8, 0.8)
    assert vol.modality == "CT" and vol.window == (40.0, 400.0)
    np.testing.assert_array_equal(vol.pixels, ct_phantom((64, 256, 256), seed=0))


@pytest.mark.parametrize(
    ("call", "error", "start"),
    [
        (
            lambda: data.sample_path(["ct_slice"]),
            InvalidParameterError,
            "no sample named ['ct_slice']",
        ),
        (lambda: data.sample_path(None), InvalidParameterError, "no sample named None"),
        (lambda: data.model_path(None), InvalidTypeError, "name must be the file name"),
    ],
    ids=["sample-list", "sample-none", "model-none"],
)
def test_a_name_of_another_type_is_a_documented_error_with_the_fix(call, error, start):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert message.startswith(start), message
    assert "Fix: pass" in message
