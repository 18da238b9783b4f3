"""The Segmenter: sliding window + blending against the whole volume at once and against a
slow, obvious reference; the output grid; labels; bad input; folders, resume, parts, Dask.

Models are tiny Keras models with set weights, built here in milliseconds:

* a **pointwise** model (a 1x1 convolution + softmax: p(label 1) = sigmoid(a * x + b)), whose
  output at a voxel depends only on that voxel: sliding windows with any blending, padding
  and TTA must give the whole-volume result to float32 precision (tolerance 1e-5);
* a **3x3 convolution** model, whose windows disagree near their inner edges (a window sees
  zeros where the volume goes on): checked against the plain-loop reference to 1e-5 (it uses
  the same blending) and against the whole volume at once, to 1e-5 wherever no window sees the voxel
  within the kernel's reach of an inner window edge (elsewhere the windows' zero padding
  makes them differ, as with every sliding-window method).
"""

from __future__ import annotations

import json
import logging
import math

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    JobMismatchError,
    MemoryBudgetError,
    SegmentationModelError,
)
from m1vision.inference import Segmenter, _windows
from m1vision.io import MedicalImage
from m1vision.synthetic import ct_phantom

A, B = 0.05, -1.0  # p(label 1) = sigmoid(0.05 x - 1)
TOL = 1e-5
SPACING = (2.5, 0.8, 0.7)
# an oblique grid: rows and columns turned 30 degrees about z
_c, _s = math.cos(math.pi / 6), math.sin(math.pi / 6)
AFFINE = [
    [0.0, -0.8 * _c, -0.7 * _s, 10.0],
    [0.0, -0.8 * _s, 0.7 * _c, -20.0],
    [2.5, 0.0, 0.0, 5.0],
    [0.0, 0.0, 0.0, 1.0],
]


def pointwise_model(spatial, *, logits=False):
    """p = softmax([0, A x + B]) per voxel, for an input of ``spatial`` size (None: open)."""
    rank = len(spatial)
    inputs = keras.Input((*spatial, 1))
    conv = (keras.layers.Conv2D if rank == 2 else keras.layers.Conv3D)(
        2, 1, activation=None if logits else "softmax"
    )
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((1,) * rank + (1, 2), np.float32)
    kernel[..., 0, 1] = A
    conv.set_weights([kernel, np.array([0.0, B], np.float32)])
    return model


def conv_model(spatial, seed=0, classes=3):
    """A fixed 3x3(x3) convolution (zero padding) + softmax."""
    rank = len(spatial)
    inputs = keras.Input((*spatial, 1))
    conv = (keras.layers.Conv2D if rank == 2 else keras.layers.Conv3D)(
        classes, 3, padding="same", activation="softmax"
    )
    model = keras.Model(inputs, conv(inputs))
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, 0.05, (3,) * rank + (1, classes)).astype(np.float32)
    conv.set_weights([kernel, rng.normal(0, 0.1, classes).astype(np.float32)])
    return model


def run_model(model, batch) -> np.ndarray:
    """The model on a batch, as NumPy on any backend (no gradient kept)."""
    return keras.ops.convert_to_numpy(model.predict_on_batch(np.asarray(batch, np.float32)))


def expected_pointwise(pixels):
    return 1.0 / (1.0 + np.exp(-(A * pixels.astype(np.float64) + B)))


def volume(shape, seed=0, spacing=(2.0, 0.8, 0.7)):
    rng = np.random.default_rng(seed)
    px = rng.normal(20, 40, shape).astype(np.float32)
    return MedicalImage(px, spacing=spacing, metadata={"layout": "volume"})


# -- the slow, obvious reference ----------------------------------------------------------


def ref_starts(n, w, overlap):
    if w >= n:
        return [0]
    step = max(1, int(w * (1 - overlap)))
    starts, start = [], 0
    while True:
        starts.append(min(start, n - w))
        if start + w >= n:
            return starts
        start += step


def ref_weights(window, blend):
    if blend == "constant":
        return np.ones(window)
    w = np.ones(window)
    for idx in np.ndindex(*window):
        for i, n in zip(idx, window, strict=True):
            d = i - (n - 1) / 2
            w[idx] *= math.exp(-(d**2) / (2 * (0.125 * n) ** 2))
    return np.maximum(w, max(w.min(), 1e-3))


def reference(model, pixels, window, overlap, blend="gaussian", tta=False, slices=False):
    """Plain loops: pad, visit every window, run the model on it alone, blend, crop."""
    pads = [((max(w - n, 0)) // 2, max(w - n, 0) - (max(w - n, 0)) // 2)
            for n, w in zip(pixels.shape, window, strict=True)]  # fmt: skip
    padded = np.pad(pixels.astype(np.float64), pads)
    weights = ref_weights(window, blend)
    k = model.outputs[0].shape[-1]
    acc = np.zeros((k, *padded.shape))
    total = np.zeros(padded.shape)
    starts = [ref_starts(n, w, o) for n, w, o in zip(padded.shape, window, overlap, strict=True)]
    spatial_axes = [1, 2] if slices else [0, 1, 2]
    flip_sets = [()]
    if tta:
        flip_sets = [c for r in range(len(spatial_axes) + 1)
                     for c in __import__("itertools").combinations(spatial_axes, r)]  # fmt: skip
    for z in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                patch = padded[z : z + window[0], y : y + window[1], x : x + window[2]]
                out = np.zeros((*window, k))
                for flips in flip_sets:
                    p = np.flip(patch, flips) if flips else patch
                    inp = p[0] if slices else p
                    y_hat = run_model(model, inp[None, ..., None])[0]
                    if slices:
                        y_hat = y_hat[None]
                    out += np.flip(y_hat, flips) if flips else y_hat
                out /= len(flip_sets)
                for c in range(k):
                    acc[c, z : z + window[0], y : y + window[1], x : x + window[2]] += (
                        out[..., c] * weights
                    )
                total[z : z + window[0], y : y + window[1], x : x + window[2]] += weights
    acc /= total
    crop = tuple(slice(b, b + n) for (b, _), n in zip(pads, pixels.shape, strict=True))
    return acc[(slice(None), *crop)]


# -- sliding window equals the whole volume ------------------------------------------------

CASES = [
    pytest.param("slices", (8, 8), (5, 19, 23), id="slices-uneven"),
    pytest.param("slices", (16, 16), (3, 9, 12), id="slices-smaller-than-window"),
    pytest.param("patches", (6, 8, 8), (7, 13, 21), id="patches-uneven"),
    pytest.param("patches", (8, 8, 8), (3, 5, 30), id="patches-padded-axes"),
]


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize("tta", [False, True], ids=["plain", "tta"])
@pytest.mark.parametrize(("mode", "window", "shape"), CASES)
def test_pointwise_model_windows_equal_the_whole_volume(mode, window, shape, blend, tta):
    vol = volume(shape)
    seg = Segmenter(pointwise_model(window), mode=mode, blend=blend, tta=tta, device="cpu")
    probs = seg.segment(vol, probabilities=True)
    assert probs.pixels.shape == (2, *shape)
    whole = expected_pointwise(vol.pixels)
    assert_allclose(probs.pixels[1], whole, atol=TOL)
    assert_allclose(probs.pixels.sum(axis=0), 1.0, atol=TOL)
    # and the model itself, open-sized, on the whole volume at once
    open_model = pointwise_model((None,) * len(window))
    batch = vol.pixels[..., None] if mode == "slices" else vol.pixels[None, ..., None]
    at_once = run_model(open_model, batch)
    at_once = at_once[..., 1] if mode == "slices" else at_once[0, ..., 1]
    assert_allclose(probs.pixels[1], at_once, atol=TOL)
    labels = seg.segment(vol)
    assert_array_equal(labels.pixels, (whole > 0.5).astype(np.uint8))


def test_logits_are_turned_into_probabilities():
    vol = volume((4, 10, 10))
    seg = Segmenter(pointwise_model((8, 8), logits=True), device="cpu")
    assert seg.from_logits
    probs = seg.segment(vol, probabilities=True).pixels
    assert_allclose(probs[1], expected_pointwise(vol.pixels), atol=TOL)


@pytest.mark.parametrize("tta", [False, True], ids=["plain", "tta"])
@pytest.mark.parametrize("blend", ["gaussian", "constant"])
@pytest.mark.parametrize(
    ("mode", "window", "shape"),
    [
        pytest.param("slices", (8, 8), (3, 13, 19), id="slices"),
        pytest.param("patches", (6, 8, 8), (5, 11, 17), id="patches"),
    ],
)
def test_convolution_model_equals_the_slow_reference(mode, window, shape, blend, tta):
    vol = volume(shape, seed=3)
    model = conv_model(window, seed=1)
    seg = Segmenter(model, mode=mode, blend=blend, tta=tta, overlap=0.5, batch_size=3, device="cpu")
    fast = seg.segment(vol, probabilities=True).pixels
    full_window = (1, *window) if mode == "slices" else window
    overlap = (0.0, 0.5, 0.5) if mode == "slices" else (0.5, 0.5, 0.5)
    slow = reference(model, vol.pixels, full_window, overlap, blend, tta, slices=mode == "slices")
    assert_allclose(fast, slow, atol=TOL)


def test_convolution_model_windows_equal_the_whole_volume_away_from_inner_edges():
    """Exact wherever no window sees the voxel within the kernel's reach of an inner edge
    (where a window sees zeros that the volume does not have)."""
    shape, window = (10, 40, 36), (8, 16, 16)
    vol = volume(shape, seed=5)
    seg = Segmenter(conv_model(window, seed=2), overlap=0.5, device="cpu")
    fast = seg.segment(vol, probabilities=True).pixels
    whole = run_model(conv_model((None, None, None), seed=2), vol.pixels[None, ..., None])
    at_once = np.moveaxis(whole[0], -1, 0)
    clean = np.ones(shape, bool)
    for axis, (n, w) in enumerate(zip(shape, window, strict=True)):
        near = np.zeros(n, bool)
        for start in ref_starts(n, w, 0.5):
            for edge, inner in ((start, start > 0), (start + w - 1, start + w < n)):
                if inner:
                    near[max(edge - 1, 0) : edge + 2] = True
        clean &= ~near.reshape([-1 if a == axis else 1 for a in range(3)])
    assert clean.mean() > 0.1
    assert_allclose(fast[:, clean], at_once[:, clean], atol=TOL)
    assert not np.allclose(fast, at_once, atol=TOL)  # the edges do differ: the test can fail


def test_window_maths():
    assert _windows.scan_starts(300, 128, 0.5) == [0, 64, 128, 172]
    assert _windows.pad_widths((5, 200), (8, 128)) == [(1, 2), (0, 0)]
    w = _windows.importance_map((16, 16, 16))
    assert_allclose(w, ref_weights((16, 16, 16), "gaussian"), rtol=1e-6)
    assert w.dtype == np.float32 and float(w.min()) == pytest.approx(1e-3)
    assert list(_windows.window_slices((4, 4), (4, 4), (0.5, 0.5))) == [(slice(0, 4), slice(0, 4))]


# -- the output grid and the model card ----------------------------------------------------


def _save(model, folder, card=None, name="seg"):
    path = folder / f"{name}.keras"
    model.save(path)
    if card is not None:
        path.with_suffix(".json").write_text(json.dumps(card))
    return path


CARD = {
    "name": "pointwise",
    "segmentation": {
        "spacing": [2.0, 2.0, 2.0],
        "intensity": {"clip": [-100, 1000]},
        "labels": {"1": {"name": "bright", "color": [255, 0, 0]}},
    },
}


def test_card_spacing_output_on_the_input_grid(tmp_path):
    image = MedicalImage(
        ct_phantom((12, 40, 44)), spacing=SPACING, metadata={"layout": "volume", "affine": AFFINE}
    )
    path = _save(pointwise_model((8, 8, 8)), tmp_path, CARD)
    seg = Segmenter(path, device="cpu")
    assert seg.spacing == (2.0, 2.0, 2.0) and seg.mode == "patches"
    out = seg.segment(image)
    assert out.shape == image.shape and out.spacing == image.spacing
    assert_allclose(out.metadata["affine"], image.metadata["affine"])
    assert out.metadata["labels"][1] == {"name": "bright", "color": [255, 0, 0]}
    assert out.metadata["segmentation"]["model_spacing"] == [2.0, 2.0, 2.0]
    probs = seg.segment(image, probabilities=True)
    assert probs.pixels.shape == (2, *image.shape) and probs.metadata["classes"][1] == "bright"
    # the card's clip reached the model: air (-1000 HU) counts as -100
    assert image.pixels[0, 0, 0] == -1000
    assert_allclose(probs.pixels[1, 0, 0, 0], expected_pointwise(np.float32(-100)), atol=TOL)
    assert set(np.unique(out.pixels)) == {0, 1}


def test_slices_card_spacing_keeps_the_slice_axis(tmp_path):
    image = volume((6, 30, 34), spacing=(3.0, 0.8, 0.8))
    card = {"segmentation": {"spacing": [1.6, 1.6]}}
    seg = Segmenter(pointwise_model((8, 8)), card=card, device="cpu")
    out = seg.segment(image, probabilities=True)
    assert out.metadata["segmentation"]["model_spacing"] == [3.0, 1.6, 1.6]
    assert out.pixels.shape == (2, *image.shape)
    assert_allclose(out.metadata["affine"], image.metadata.get("affine") or out.metadata["affine"])


def test_labels_argument_overrides_the_card_and_2d_pictures(tmp_path):
    path = _save(pointwise_model((8, 8)), tmp_path, {"segmentation": {"labels": ["bg", "card"]}})
    assert Segmenter(path, device="cpu").labels == {1: {"name": "card"}}
    seg = Segmenter(path, labels={1: "given"}, device="cpu")
    picture = np.full((12, 9), 100.0, np.float32)
    out = seg.segment(picture)
    assert out.shape == (12, 9) and out.metadata["labels"][1]["name"] == "given"
    assert out.metadata["layout"] == "slice"


@pytest.mark.tf_only  # SavedModel folders load on TensorFlow only (documented)
def test_a_savedmodel_folder_segments(tmp_path):
    folder = tmp_path / "saved"
    pointwise_model((8, 8)).export(str(folder))
    seg = Segmenter(folder, device="cpu")
    assert seg.model_sha256 is not None
    vol = volume((2, 10, 12))
    probs = seg.segment(vol, probabilities=True)
    assert_allclose(probs.pixels[1], expected_pointwise(vol.pixels), atol=TOL)


# -- bad input -----------------------------------------------------------------------------


def test_classifier_is_no_segmentation_model():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    with pytest.raises(SegmentationModelError, match="not a per-pixel map"):
        Segmenter(model, device="cpu")


def test_window_larger_than_volume_is_padded_and_said(caplog):
    seg = Segmenter(pointwise_model((8, 16, 16)), device="cpu")
    with caplog.at_level(logging.INFO, logger="m1vision.inference"):
        out = seg.segment(volume((3, 10, 20)))
    assert out.metadata["segmentation"]["padded"] == [[2, 3], [3, 3], [0, 0]]
    assert "padded" in caplog.text


def test_window_not_divisible_where_the_model_needs_it():
    card = {"segmentation": {"divisible_by": 4}}
    with pytest.raises(SegmentationModelError, match=r"not divisible by 4.*use 8 or 12"):
        Segmenter(pointwise_model((None, None)), window=(10, 8), card=card, device="cpu")
    with pytest.raises(SegmentationModelError, match="fixed at"):
        Segmenter(pointwise_model((8, 8)), window=(16, 16), device="cpu")
    # an open model without window takes the slice, rounded up to the multiple
    seg = Segmenter(pointwise_model((None, None)), card=card, device="cpu")
    out = seg.segment(volume((2, 10, 13)), probabilities=True)
    assert out.metadata["segmentation"]["window"] == [1, 12, 16]


def test_channel_count_mismatch():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
    seg = Segmenter(model, device="cpu")
    with pytest.raises(SegmentationModelError, match="3 channel"):
        seg.segment(volume((2, 8, 8)))
    rgb = Segmenter(model, preprocess=lambda s: np.repeat(s[..., None], 3, -1), device="cpu")
    assert rgb.segment(volume((2, 8, 8))).shape == (2, 8, 8)


def test_2d_model_asked_for_3d_patches():
    seg = Segmenter(pointwise_model((8, 8)), mode="patches", device="cpu")
    with pytest.raises(SegmentationModelError, match="mode='slices'"):
        seg.segment(volume((4, 8, 8)))
    with pytest.raises(SegmentationModelError, match="mode='patches'"):
        Segmenter(pointwise_model((4, 8, 8)), mode="slices", device="cpu")


@pytest.mark.parametrize(
    ("pixels", "match"),
    [
        pytest.param(np.full((2, 4, 4), np.nan, np.float32), "NaN", id="nan"),
        pytest.param(np.zeros((0, 4, 4), np.float32), "empty", id="empty"),
    ],
)
def test_nan_and_empty_volumes(pixels, match):
    seg = Segmenter(pointwise_model((8, 8)), device="cpu")
    with pytest.raises(InvalidImageError, match=match):
        seg.segment(MedicalImage(pixels, spacing=(1.0, 1.0, 1.0), metadata={"layout": "volume"}))


def test_unknown_label_in_labels():
    with pytest.raises(InvalidParameterError, match="labels= names label 5"):
        Segmenter(pointwise_model((8, 8)), labels={5: "tumour"}, device="cpu")


def test_memory_budget_is_checked_before_allocating():
    import tracemalloc

    seg = Segmenter(conv_model((8, 8, 8), classes=4), max_memory=10_000_000, device="cpu")
    vol = volume((100, 128, 128))
    need = seg.estimate_memory(vol)
    assert need >= 4 * 5 * vol.pixels.size > 10_000_000
    tracemalloc.start()
    try:
        with pytest.raises(MemoryBudgetError) as caught:
            seg.segment(vol)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = str(caught.value)
    # the volume, the estimate, the budget and the fixes
    assert "(100, 128, 128) (6.2 MiB as float32" in text
    assert f"needs about {need / 2**20:.1f} MiB" in text
    assert "4 * (4 + 1) bytes per voxel = 31.2 MiB" in text
    assert "budget of 9.5 MiB (max_memory=10000000)" in text
    assert f"max_memory={need}" in text
    assert "fewer classes" in text
    assert "m1vision.volume.resample" in text
    # raised before the accumulators (or anything volume-sized beyond the NaN check) exist
    assert peak < vol.pixels.size * 2


def test_memory_budget_of_the_estimate_is_enough():
    seg = Segmenter(pointwise_model((8, 8, 8)), device="cpu")
    vol = volume((9, 20, 17))
    tight = Segmenter(pointwise_model((8, 8, 8)), max_memory=seg.estimate_memory(vol))
    assert_array_equal(tight.segment(vol).pixels, seg.segment(vol).pixels)


@pytest.mark.parametrize("probabilities", [False, True], ids=["labels", "probabilities"])
def test_segment_allocates_no_more_than_the_estimate(probabilities):
    """What segment allocates on the host (traced: NumPy's arrays, Python's objects) stays
    within estimate_memory, less than 1 byte per voxel above it (a whole-volume argmax alone
    would add 24): no volume-sized copy beyond the accumulators and the output."""
    import tracemalloc

    seg = Segmenter(conv_model((16, 32, 32), classes=4), overlap=0, batch_size=2, device="cpu")
    vol = volume((48, 160, 160))
    seg.segment(volume((16, 32, 32)))  # the model's first call
    need = seg.estimate_memory(vol, probabilities=probabilities)
    tracemalloc.start()
    try:
        out = seg.segment(vol, probabilities=probabilities)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    accumulators = 4 * (4 + 1) * vol.pixels.size
    assert accumulators < need
    # the slack: the Python objects of the calls (about 0.4 MiB here, whatever the size)
    assert accumulators <= peak <= need + 2**20 < need + vol.pixels.size
    assert out.pixels.nbytes == (16 if probabilities else 1) * vol.pixels.size


# -- folders, resume, parts, CLI, Dask ----------------------------------------------------


@pytest.fixture
def cohort(tmp_path):
    from m1vision.io import write_nifti

    folder = tmp_path / "in"
    folder.mkdir()
    for i, shape in enumerate([(4, 20, 22), (3, 18, 16), (5, 12, 12), (2, 16, 16)]):
        write_nifti(folder / f"case{i}.nii.gz", volume(shape, seed=i))
    return folder


def test_segment_folder_writes_label_maps_and_resumes(tmp_path, cohort):
    from m1vision.io import read_nifti
    from m1vision.labels import read_labels

    path = _save(pointwise_model((8, 8)), tmp_path, {"segmentation": {"labels": ["bg", "hi"]}})
    seg = Segmenter(path, device="cpu")
    report = seg.segment_folder(cohort, tmp_path / "out", stats=True, progress=False)
    assert report.counts["ok"] == 4
    item = report.items[0]
    got = read_labels(item.output)
    expected = seg.segment(read_nifti(cohort / "case0.nii.gz"))
    assert_array_equal(got.pixels, expected.pixels)
    assert got.metadata["labels"][1]["name"] == "hi"
    assert (tmp_path / "out" / "case0.stats.csv").is_file() and item.labels["hi"] > 0
    again = seg.segment_folder(cohort, tmp_path / "out", stats=True, progress=False)
    assert again.counts["skipped"] == 4 and again.items[0].labels == item.labels
    other = Segmenter(path, overlap=0.25, device="cpu")
    with pytest.raises(JobMismatchError):
        other.segment_folder(cohort, tmp_path / "out", stats=True, progress=False)
    retrained = conv_model((8, 8), classes=2)
    path2 = _save(retrained, tmp_path, {"segmentation": {"labels": ["bg", "hi"]}}, name="seg2")
    path.write_bytes(path2.read_bytes())  # same name, other weights
    with pytest.raises(JobMismatchError):
        Segmenter(path, device="cpu").segment_folder(cohort, tmp_path / "out", progress=False)


def test_parts_split_the_inputs_deterministically(tmp_path, cohort):
    seg = Segmenter(pointwise_model((8, 8)), device="cpu")
    keys = []
    for i in (1, 2, 3):
        report = seg.segment_folder(cohort, tmp_path / "out", part=f"{i}/3", progress=False)
        assert all(it.status == "ok" for it in report.items)
        assert report.out_dir.endswith(f"part-{i}-of-3")
        keys.append({it.key for it in report.items})
    assert sorted(k for part in keys for k in part) == sorted(p.name for p in cohort.iterdir())
    again = seg.segment_folder(cohort, tmp_path / "out", part=(2, 3), progress=False)
    assert {it.key for it in again.items} == keys[1]
    with pytest.raises(InvalidParameterError, match="1 <= i <= n"):
        seg.segment_folder(cohort, tmp_path / "out", part="4/3", progress=False)


def test_seg_output_references_the_series(tmp_path):
    import pydicom

    from m1vision.io import read_series
    from m1vision.labels import read_labels
    from m1vision.synthetic import write_ct_series

    write_ct_series(tmp_path / "in" / "ct", shape=(6, 32, 32), spacing=(2.5, 0.8, 0.8))
    inputs = keras.Input((16, 16, 1))
    conv = keras.layers.Conv2D(2, 1, activation="softmax")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([[[[0.0, 0.02]]]], np.float32), np.array([0.0, -1.0], np.float32)])
    seg = Segmenter(model, labels=["bg", "dense"], device="cpu")
    report = seg.segment_folder(tmp_path / "in", tmp_path / "out", format="seg", progress=False)
    assert report.counts["ok"] == 1, report.items[0].error
    out = report.items[0].output
    assert out.endswith("ct.dcm")
    ds = pydicom.dcmread(out)
    assert ds.Modality == "SEG"
    back = read_labels(out, like=read_series(tmp_path / "in" / "ct"))
    assert back.metadata["labels"][1]["name"] == "dense"


def test_cli_segment(tmp_path, cohort):
    from m1vision.cli import main

    path = _save(pointwise_model((8, 8)), tmp_path)
    code = main(["segment", str(cohort), "--model", str(path), "--out", str(tmp_path / "o"),
                 "--stats", "--device", "cpu", "--no-progress"])  # fmt: skip
    assert code == 0
    assert len(list((tmp_path / "o").glob("*.nii.gz"))) == 4
    assert len(list((tmp_path / "o").glob("*.stats.csv"))) == 4
    missing = ["segment", str(cohort), "--model", str(tmp_path / "nope.keras"), "--out", "x"]
    assert main(missing) == 2  # a documented error, printed, not a traceback


def test_cli_segment_seg_of_nifti_inputs_says_the_flag_that_fixes_it(tmp_path, cohort, capsys):
    from m1vision.cli import main

    path = _save(pointwise_model((8, 8)), tmp_path)
    code = main(["segment", str(cohort), "--model", str(path), "--out", str(tmp_path / "o"),
                 "--format", "seg", "--device", "cpu", "--no-progress"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("no series folder") == 4
    assert "format='nifti' into another output folder" in err
    assert "(on the command line: format='nifti' is --format nifti)" in err
    assert not list((tmp_path / "o").glob("*.dcm"))


def _cached_segmenters() -> int:
    from m1vision.inference import _segfolder

    return len(_segfolder._CACHE)


@pytest.mark.slow
def test_dask_workers_load_the_model_once(tmp_path, cohort):
    import distributed

    from m1vision.inference import _segfolder

    path = _save(pointwise_model((8, 8)), tmp_path)
    seg = Segmenter(path, device="cpu")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        report = seg.segment_folder(
            cohort, tmp_path / "out", executor=client.get_executor(), progress=False
        )
        loads = client.run(_cached_segmenters)
    assert report.counts["ok"] == 4
    assert list(loads.values()) == [1]  # four cases, one model loaded on the worker
    assert _segfolder._CACHE == {}  # this process used its own Segmenter
    local = seg.segment_folder(cohort, tmp_path / "local", progress=False)
    from m1vision.labels import read_labels

    for a, b in zip(report.items, local.items, strict=True):
        assert_array_equal(read_labels(a.output).pixels, read_labels(b.output).pixels)
