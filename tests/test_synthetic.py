"""The generated lesion data set: determinism, shapes, labels consistent with masks."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from m1vision.errors import InvalidParameterError, InvalidTypeError
from m1vision.synthetic import LABELS, SOURCES, make_lesion_dataset, split_indices


@pytest.fixture(scope="module")
def data():
    return make_lesion_dataset(60, seed=3)


def _digest(ds) -> str:
    h = hashlib.sha256()
    for a in (ds.images, ds.labels, ds.masks):
        h.update(a.tobytes())
    h.update("|".join(ds.sources).encode())
    return h.hexdigest()


def test_same_seed_gives_byte_identical_data(data):
    again = make_lesion_dataset(60, seed=3)
    assert _digest(again) == _digest(data)


def test_other_seed_gives_other_data(data):
    assert _digest(make_lesion_dataset(60, seed=4)) != _digest(data)


def test_case_depends_only_on_seed_and_index():
    # Same labels (all positive) -> a longer set starts with the shorter one.
    short = make_lesion_dataset(5, seed=1, positive_fraction=1.0)
    long = make_lesion_dataset(9, seed=1, positive_fraction=1.0)
    np.testing.assert_array_equal(long.images[:5], short.images)
    np.testing.assert_array_equal(long.masks[:5], short.masks)


def test_shapes_and_dtypes(data):
    assert data.images.shape == (60, 128, 128)
    assert data.images.dtype == np.uint8
    assert data.masks.shape == (60, 128, 128)
    assert data.masks.dtype == np.bool_
    assert data.labels.shape == (60,)
    assert np.issubdtype(data.labels.dtype, np.integer)
    assert len(data) == 60 == len(data.sources)
    assert set(data.sources) == set(SOURCES)
    assert LABELS == ("no lesion", "lesion")


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 1.0], ids=lambda f: f"fraction={f}")
def test_positive_fraction_is_exact(fraction):
    ds = make_lesion_dataset(12, size=48, seed=0, positive_fraction=fraction)
    assert int(ds.labels.sum()) == round(12 * fraction)


def test_masks_match_labels(data):
    has_mask = data.masks.any(axis=(1, 2))
    np.testing.assert_array_equal(has_mask, data.labels == 1)


def test_each_lesion_is_one_compact_blob_of_the_documented_size(data):
    for mask in data.masks[data.labels == 1]:
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
        assert n == 2  # background + one lesion
        area = stats[1, cv2.CC_STAT_AREA]
        # semi-axes a in [6, 14], b in [0.6 a, a]: area pi*a*b in [~68, ~616] px.
        assert 50 <= area <= 700
        assert not mask[0].any() and not mask[-1].any()
        assert not mask[:, 0].any() and not mask[:, -1].any()


def test_lesions_have_visible_contrast(data):
    """The lesion differs from the ring around it by clearly more than the noise."""
    ring_kernel = np.ones((9, 9), np.uint8)
    for image, mask in zip(
        data.images[data.labels == 1], data.masks[data.labels == 1], strict=True
    ):
        m8 = mask.astype(np.uint8)
        ring = cv2.dilate(m8, ring_kernel).astype(bool) & ~cv2.dilate(m8, np.ones((3, 3))).astype(
            bool
        )
        inner = cv2.erode(m8, np.ones((3, 3), np.uint8)).astype(bool)
        diff = abs(float(image[inner].mean()) - float(image[ring].mean()))
        assert diff > 12.0


def _body_outline(image: np.ndarray) -> np.ndarray:
    """The filled outline of the largest non-dark region (the body, holes included)."""
    fg = cv2.morphologyEx((image > 20).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5)))
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    body = np.zeros(image.shape, np.uint8)
    cv2.drawContours(body, [max(contours, key=cv2.contourArea)], -1, 1, cv2.FILLED)
    return body.astype(bool)


def test_lesions_lie_inside_the_body(data):
    """Every lesion lies within the body's outline, not in the air around it."""
    for image, mask in zip(
        data.images[data.labels == 1], data.masks[data.labels == 1], strict=True
    ):
        inside = _body_outline(image)[mask].mean()
        assert inside > 0.95


def test_size_scales():
    ds = make_lesion_dataset(4, size=64, seed=0, positive_fraction=1.0)
    assert ds.images.shape == (4, 64, 64)
    assert ds.masks.any(axis=(1, 2)).all()


def test_subset(data):
    sub = data.subset([2, 0])
    np.testing.assert_array_equal(sub.images[0], data.images[2])
    assert sub.sources == (data.sources[2], data.sources[0])


def test_split_indices_is_a_seeded_partition():
    train, test = split_indices(100, test_fraction=0.2, seed=5)
    assert len(test) == 20 and len(train) == 80
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    again = split_indices(100, test_fraction=0.2, seed=5)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(split_indices(100, test_fraction=0.2, seed=6)[1], test)


BAD = {
    "n zero": (lambda: make_lesion_dataset(0), InvalidParameterError, "n must be >= 1"),
    "n float": (lambda: make_lesion_dataset(2.5), TypeError, "n must be an integer"),
    "size small": (lambda: make_lesion_dataset(2, size=16), InvalidParameterError, "size"),
    "seed negative": (lambda: make_lesion_dataset(2, seed=-1), InvalidParameterError, "seed"),
    "fraction": (
        lambda: make_lesion_dataset(2, positive_fraction=1.5),
        InvalidParameterError,
        "positive_fraction",
    ),
    "split fraction": (
        lambda: split_indices(10, test_fraction=0.0),
        InvalidParameterError,
        "test_fraction",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_arguments(case):
    call, error, message = BAD[case]
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------------
# generated CT series
# --------------------------------------------------------------------------------------------


def test_ct_phantom_is_deterministic_and_in_hounsfield_units():
    from m1vision.synthetic import ct_phantom

    a, b = ct_phantom((6, 40, 48), seed=2), ct_phantom((6, 40, 48), seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ct_phantom((6, 40, 48), seed=3))
    assert a.min() == -1000.0  # air
    assert (a > 600).any() and (a < -700).any()  # bone, lung
    assert (a == np.round(a)).all()


@pytest.mark.parametrize("variant", ["regular", "shuffled", "mixed"], ids=str)
def test_series_files_are_byte_identical_for_the_same_call(tmp_path, variant):
    from m1vision.synthetic import write_ct_series

    one = write_ct_series(tmp_path / "a", variant=variant, shape=(4, 24, 20))
    two = write_ct_series(tmp_path / "b", variant=variant, shape=(4, 24, 20))
    assert [f.name for f in one.files] == [f.name for f in two.files]
    for f, g in zip(one.files, two.files, strict=True):
        assert f.read_bytes() == g.read_bytes()


def test_series_headers_are_real_ct_headers(tmp_path):
    import pydicom

    from m1vision.synthetic import write_ct_series

    gen = write_ct_series(tmp_path, shape=(3, 24, 20), spacing=(3.0, 0.5, 0.6))
    ds = pydicom.dcmread(gen.files[1])
    assert ds.file_meta.MediaStorageSOPClassUID.name == "CT Image Storage"
    assert (ds.Modality, ds.Rows, ds.Columns, ds.InstanceNumber) == ("CT", 24, 20, 2)
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 0.6]
    assert float(ds.RescaleIntercept) == -1024.0
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert float(ds.ImagePositionPatient[2]) == pytest.approx(-100.0 + 3.0)
    assert str(ds.PatientName) == "Phantom^Generated"  # made up, for the de-identification tests


def test_shuffled_names_have_no_extension_and_no_order(tmp_path):
    from m1vision.synthetic import write_ct_series

    gen = write_ct_series(tmp_path, variant="shuffled", shape=(8, 16, 16))
    names = [f.name for f in gen.files]
    assert all("." not in n for n in names)
    assert names != sorted(names)


def test_unknown_series_variant_is_refused(tmp_path):
    from m1vision.synthetic import write_ct_series

    with pytest.raises(InvalidParameterError, match="variant must be one of regular"):
        write_ct_series(tmp_path, variant="zigzag")


@pytest.mark.parametrize(
    ("writer", "argument"),
    [
        ("write_ct_series", "folder"),
        ("write_enhanced", "folder"),
        ("write_messy_collection", "root"),
    ],
    ids=["series", "enhanced", "collection"],
)
def test_a_writer_given_no_folder_names_the_argument_and_the_fix(writer, argument):
    from m1vision import synthetic

    with pytest.raises(InvalidTypeError) as info:
        getattr(synthetic, writer)(None)
    message = str(info.value)
    assert message.startswith(f"{argument} must be a str or pathlib.Path"), message
    assert "Fix: pass its path" in message
