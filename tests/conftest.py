"""Shared pytest fixtures (owner: io). Use them freely in any test module.

Real files only, nothing downloaded: pydicom's and nibabel's test files from the installed
wheels, and the generated samples in data/samples (``python tools/make_sample_data.py``).

=========================  =========  ===========================================================
fixture                    scope      value
=========================  =========  ===========================================================
``ct_path``                session    Path of pydicom's CT_small.dcm (128x128 CT, HU = raw - 1024)
``ct_image``               session    ``read_dicom(ct_path)``: MedicalImage, float32 HU (128, 128);
                                      treat as read-only (copy the pixels before changing them)
``mr_path``                session    Path of pydicom's MR_small.dcm (64x64 MR)
``nifti_path``             session    Path of nibabel's anatomical.nii (3-D, 33x41x25, LAS, 2 mm)
``png16_path``             session    data/samples/phantom_512_u16.png (512x512 uint16 gray)
``png8_path``              session    data/samples/phantom_256_u8.png (256x256 uint8 gray)
``jpeg_color_path``        session    data/samples/ct_693_bone_color.jpg (256x256x3 uint8 BGR)
``batch_folder``           session    data/samples/batch (8 16-bit PNGs, the demo batch input)
``corrupt_files``          function   dict kind -> Path of bad inputs made in ``tmp_path``; kinds in
                                      :data:`CORRUPT_KINDS` (every one makes read_any raise
                                      ImageReadError naming the file)
=========================  =========  ===========================================================
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from repo_paths import DATA

#: kind -> a phrase the ImageReadError message contains for that kind of bad file.
CORRUPT_KINDS = {
    "missing": "no such file",
    "directory": "directory",
    "zero_byte": "empty (0 bytes)",
    "text_named_png": "not an image",
    "truncated_png": "truncated PNG",
    "bad_crc_png": "fails its CRC",
    "truncated_jpeg": "truncated JPEG",
    "truncated_bmp": "truncated BMP",
    "truncated_nifti_gz": "nibabel cannot read it",
    "dicom_no_pixels": "without pixel data",
    "dicom_truncated_pixels": "the file is cut off",
}

NIBABEL_DATA = Path(__import__("nibabel").__file__).parent / "tests" / "data"

#: Test modules of Keras' torch backend (the device blend, torch tensors on the CPU): collected
#: only when KERAS_BACKEND=torch, as ``make test-backends`` runs them where torch is installed;
#: left out of other runs rather than reported as skipped.
TORCH_ONLY_MODULES = ["test_segmenter_device.py"]
collect_ignore = [] if os.environ.get("KERAS_BACKEND") == "torch" else TORCH_ONLY_MODULES


def pydicom_file(name: str) -> Path:
    """Path of a pydicom test file shipped in the wheel (never downloads)."""
    found = get_testdata_file(name, download=False)
    assert found is not None, f"pydicom's wheel should ship {name}"
    return Path(found)


def _sample(rel: str) -> Path:
    path = DATA / "samples" / rel
    if not path.exists():
        pytest.fail(f"{path} is missing; run `python tools/make_sample_data.py`.")
    return path


@pytest.fixture(scope="session")
def ct_path() -> Path:
    return pydicom_file("CT_small.dcm")


@pytest.fixture(scope="session")
def ct_image(ct_path):
    from m1vision.io import read_dicom

    return read_dicom(ct_path)


@pytest.fixture(scope="session")
def mr_path() -> Path:
    return pydicom_file("MR_small.dcm")


@pytest.fixture(scope="session")
def nifti_path() -> Path:
    return NIBABEL_DATA / "anatomical.nii"


@pytest.fixture(scope="session")
def png16_path() -> Path:
    return _sample("phantom_512_u16.png")


@pytest.fixture(scope="session")
def png8_path() -> Path:
    return _sample("phantom_256_u8.png")


@pytest.fixture(scope="session")
def jpeg_color_path() -> Path:
    return _sample("ct_693_bone_color.jpg")


@pytest.fixture(scope="session")
def batch_folder() -> Path:
    return _sample("batch")


def _png_bytes(shape=(32, 32)) -> bytes:
    import cv2

    image = (np.arange(np.prod(shape)) % 251).astype(np.uint8).reshape(shape)
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def _jpeg_bytes(shape=(64, 64, 3)) -> bytes:
    import cv2

    rng = np.random.default_rng(7)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 256, shape, dtype=np.uint8))
    assert ok
    return buf.tobytes()


def _bmp_bytes(shape=(32, 32)) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".bmp", np.full(shape, 9, np.uint8))
    assert ok
    return buf.tobytes()


@pytest.fixture
def corrupt_files(tmp_path, ct_path) -> dict[str, Path]:
    """Bad inputs by kind (see CORRUPT_KINDS), made fresh in ``tmp_path``."""
    files: dict[str, Path] = {}
    files["missing"] = tmp_path / "does_not_exist.png"
    files["directory"] = tmp_path / "a_folder.png"
    files["directory"].mkdir()
    files["zero_byte"] = tmp_path / "empty.png"
    files["zero_byte"].write_bytes(b"")
    files["text_named_png"] = tmp_path / "notes.png"
    files["text_named_png"].write_text("this is a text file, not a picture\n", encoding="utf-8")

    png = _png_bytes()
    files["truncated_png"] = tmp_path / "cut.png"
    files["truncated_png"].write_bytes(png[: len(png) * 2 // 3])
    bad = bytearray(png)
    bad[60] ^= 0xFF  # flip a byte inside the IDAT data: the chunk CRC no longer matches
    files["bad_crc_png"] = tmp_path / "bitrot.png"
    files["bad_crc_png"].write_bytes(bytes(bad))

    jpeg = _jpeg_bytes()
    files["truncated_jpeg"] = tmp_path / "cut.jpg"
    files["truncated_jpeg"].write_bytes(jpeg[: len(jpeg) // 2])

    bmp = _bmp_bytes()
    files["truncated_bmp"] = tmp_path / "cut.bmp"
    files["truncated_bmp"].write_bytes(bmp[: len(bmp) // 2])

    nii_gz = gzip.compress((NIBABEL_DATA / "anatomical.nii").read_bytes(), mtime=0)
    files["truncated_nifti_gz"] = tmp_path / "cut.nii.gz"
    files["truncated_nifti_gz"].write_bytes(nii_gz[: len(nii_gz) // 2])

    ds = pydicom.dcmread(ct_path)
    del ds.PixelData
    files["dicom_no_pixels"] = tmp_path / "no_pixels.dcm"
    ds.save_as(files["dicom_no_pixels"])

    raw = ct_path.read_bytes()
    files["dicom_truncated_pixels"] = tmp_path / "cut.dcm"
    files["dicom_truncated_pixels"].write_bytes(raw[: len(raw) - 4000])
    assert set(files) == set(CORRUPT_KINDS)
    return files
