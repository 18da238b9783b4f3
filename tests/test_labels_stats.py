"""m1vision.labels.label_stats / LabelTable and compare_labels.

Checked against SimpleITK (LabelStatisticsImageFilter, LabelShapeStatisticsImageFilter,
LabelOverlapMeasuresImageFilter, HausdorffDistanceImageFilter) on an oblique, anisotropic grid,
and against slow obvious references written here (per-label NumPy on masks; brute-force
surface-to-surface distances).
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from numpy.testing import assert_allclose
from sitk_support import LPS, to_sitk

import m1vision.labels._stats as stats_module
from m1vision.errors import EmptyLabelError, GridMismatchError, OutputExistsError
from m1vision.io import MedicalImage
from m1vision.labels import LabelTable, label_map, label_stats
from m1vision.synthetic import ct_phantom, ct_phantom_labels

SHAPE = (20, 48, 44)
SPACING = (2.5, 0.8, 0.7)


def _oblique(lm: MedicalImage) -> np.ndarray:
    a = np.asarray(lm.metadata["affine"]).copy()
    t = math.radians(14.0)
    rot = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    a[:3, :3] = rot @ a[:3, :3]
    a[:3, 3] += (5.0, -3.0, 8.0)
    return a


@pytest.fixture(scope="module")
def phantom():
    labels = ct_phantom_labels(SHAPE, spacing=SPACING)
    affine = _oblique(labels)
    labels = label_map(
        labels.pixels, spacing=SPACING, affine=affine, labels=labels.metadata["labels"]
    )
    image = MedicalImage(
        ct_phantom(SHAPE, seed=4),
        spacing=SPACING,
        metadata={"layout": "volume", "affine": affine.tolist()},
    )
    return labels, image


@pytest.mark.parametrize("kind", ["whole-HU", "fractional"])
def test_label_stats_agree_with_simpleitk_and_numpy(phantom, kind):
    labels, image = phantom
    pixels = image.pixels if kind == "whole-HU" else image.pixels * np.float32(0.37) + 0.11
    img = MedicalImage(pixels, spacing=SPACING, metadata=image.metadata)
    table = label_stats(labels, img)
    s_img = to_sitk(pixels, labels.metadata["affine"])
    s_lab = to_sitk(labels.pixels, labels.metadata["affine"])
    st = sitk.LabelStatisticsImageFilter()
    st.Execute(s_img, s_lab)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(s_lab)
    assert [r["label"] for r in table] == sorted(v for v in st.GetLabels() if v)
    for r in table:
        v = r["label"]
        assert r["voxels"] == st.GetCount(v) == shape.GetNumberOfPixels(v)
        assert r["volume_ml"] == pytest.approx(shape.GetPhysicalSize(v) / 1000.0, rel=1e-9)
        assert r["mean"] == pytest.approx(st.GetMean(v), rel=1e-9, abs=1e-9)
        assert r["std"] == pytest.approx(st.GetSigma(v), rel=1e-7)
        assert r["min"] == pytest.approx(st.GetMinimum(v)) and r["max"] == pytest.approx(
            st.GetMaximum(v)
        )
        x0, x1, y0, y1, z0, z1 = st.GetBoundingBox(v)  # ITK index order (col, row, z)
        assert (r["bbox_col0"], r["bbox_col1"], r["bbox_row0"], r["bbox_row1"]) == (x0, x1, y0, y1)
        assert (r["bbox_z0"], r["bbox_z1"]) == (z0, z1)
        lps = np.array(shape.GetCentroid(v))
        assert_allclose(
            [r["centroid_x_mm"], r["centroid_y_mm"], r["centroid_z_mm"]], LPS @ lps, atol=1e-6
        )
        # the slow obvious reference for what SimpleITK does not give exactly
        values = pixels[labels.pixels == v].astype(np.float64)
        assert r["median"] == pytest.approx(np.median(values), abs=1e-6)
        for q in (5, 25, 75, 95):
            assert r[f"p{q}"] == pytest.approx(np.percentile(values, q), abs=1e-6)


def test_both_grouping_paths_agree(phantom, monkeypatch):
    labels, image = phantom
    by_histogram = label_stats(labels, image)
    monkeypatch.setattr(stats_module, "_MAX_HIST_BINS", 0)  # force grouping by sorting
    monkeypatch.setattr(stats_module, "_SLAB_VOXELS", 5000)  # and many slabs
    by_sorting = label_stats(labels, image)
    for a, b in zip(by_histogram.rows, by_sorting.rows, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-9), key
            else:
                assert a[key] == b[key], key


def _reference(px: np.ndarray, image: np.ndarray, affine) -> dict:
    """The slow obvious reference: per label, its mask, its voxel indices, NumPy statistics."""
    a = np.asarray(affine, float)
    out = {}
    for v in np.unique(px[px > 0]):
        idx = np.argwhere(px == v)
        vals = image[px == v].astype(np.float64)
        lo, hi = idx.min(axis=0), idx.max(axis=0)
        out[int(v)] = {
            "voxels": len(idx),
            "mean": vals.mean(),
            "std": vals.std(ddof=1) if len(vals) > 1 else math.nan,
            "min": vals.min(),
            "max": vals.max(),
            "median": np.median(vals),
            **{f"p{q}": np.percentile(vals, q) for q in (5, 25, 75, 95)},
            "centroid": a[:3, :3] @ idx.mean(axis=0) + a[:3, 3],
            "box": (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]),
        }
    return out


def _assert_like_reference(table, ref: dict) -> None:
    assert [r["label"] for r in table] == sorted(ref)
    for r in table:
        want = ref[r["label"]]
        assert r["voxels"] == want["voxels"]
        for key in ("mean", "std", "min", "max", "median", "p5", "p25", "p75", "p95"):
            assert r[key] == pytest.approx(want[key], rel=1e-12, abs=1e-9, nan_ok=True), key
        centre = [r["centroid_x_mm"], r["centroid_y_mm"], r["centroid_z_mm"]]
        assert_allclose(centre, want["centroid"], rtol=1e-12, atol=1e-9)
        box = tuple(r[f"bbox_{a}{e}"] for a in ("z", "row", "col") for e in (0, 1))
        assert box == want["box"]


def _label_pixels(kind: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    shape = (17, 13, 19)
    z, r, c = np.indices(shape)
    blocks = ((r // 4) * 5 + c // 4 + 1).astype(np.uint8)
    blocks[(z + r + c) % 7 == 0] = 0  # background runs inside the labels
    if kind == "blocks":
        return blocks
    if kind == "noisy":
        return rng.integers(0, 5, shape).astype(np.uint8)
    if kind == "mixed":  # noisy odd slices: slabs of both kinds in one map
        return np.where(z % 2 == 1, rng.integers(0, 5, shape), blocks).astype(np.uint8)
    if kind == "one-column":
        return rng.integers(0, 3, (9, 11, 1)).astype(np.uint8)
    if kind == "strided":  # a view, not C-contiguous
        return np.swapaxes(blocks, 1, 2)[:, ::-1]
    # "sparse-values": values far from 1..K, too many for a histogram row per value
    return np.array([0, 3, 200, 60000], np.uint16)[blocks % 4]


@pytest.mark.parametrize(
    "kind", ["blocks", "noisy", "mixed", "one-column", "strided", "sparse-values"]
)
@pytest.mark.parametrize(
    "max_runs", [1.0, -1.0, stats_module._MAX_RUNS_PER_VOXEL], ids=["runs", "voxels", "auto"]
)
def test_run_and_voxel_counting_agree_with_the_reference(kind, max_runs, monkeypatch):
    monkeypatch.setattr(stats_module, "_MAX_RUNS_PER_VOXEL", max_runs)
    monkeypatch.setattr(stats_module, "_SLAB_VOXELS", 300)  # slabs of a slice or two...
    monkeypatch.setattr(stats_module, "_SLAB_PER_BIN", 0)  # ...whatever the histogram's size
    px = _label_pixels(kind)
    image = np.random.default_rng(5).integers(-50, 200, px.shape).astype(np.int16)
    lm = label_map(px, spacing=(2.0, 0.9, 0.6))
    _assert_like_reference(label_stats(lm, image), _reference(px, image, lm.metadata["affine"]))


def _image_of(kind: str, shape) -> np.ndarray:
    whole = np.random.default_rng(6).integers(0, 250, shape)
    if kind == "uint32-near-2**32":  # above 2**31: the int32 keys wrap and come back
        return (whole + (2**32 - 300)).astype(np.uint32)
    if kind == "int64-offset-2**40":
        return whole.astype(np.int64) - 2**40
    if kind == "float32-fraction":  # grouped by sorting
        return (whole * 0.37 + 0.11).astype(np.float32)
    if kind == "float32-one-fraction-late":  # whole in the sampled slices, not in slice 5
        out = (whole - 1000).astype(np.float32)
        out[5, 3, 4] += 0.5
        return out
    return whole.astype(kind)


@pytest.mark.parametrize(
    "kind",
    ["uint8", "int16", "uint32-near-2**32", "int64-offset-2**40", "float16", "float64",
     "float32-fraction", "float32-one-fraction-late"],
)  # fmt: skip
def test_image_dtypes_agree_with_the_reference(kind, monkeypatch):
    monkeypatch.setattr(stats_module, "_SLAB_VOXELS", 300)
    monkeypatch.setattr(stats_module, "_SLAB_PER_BIN", 0)
    px = _label_pixels("blocks")
    image = _image_of(kind, px.shape)
    lm = label_map(px, spacing=(2.0, 0.9, 0.6))
    _assert_like_reference(label_stats(lm, image), _reference(px, image, lm.metadata["affine"]))


@pytest.mark.parametrize(
    ("dtype", "values"),
    [("uint16", (7, 300, 5000)), ("uint32", (3, 70000, 2**30))],
    ids=["uint16-sparse", "uint32-huge"],
)
def test_sparse_and_large_label_values(dtype, values):
    pixels = np.zeros((4, 9, 11), dtype)
    pixels[0, :2, :3] = values[0]
    pixels[1:3, 4, 5:] = values[1]
    pixels[3, 8, 10] = values[2]
    lm = label_map(pixels, spacing=(2.0, 1.0, 0.5))
    table = label_stats(lm, np.arange(pixels.size, dtype=np.float32).reshape(pixels.shape))
    assert [r["label"] for r in table] == list(values)
    assert [r["voxels"] for r in table] == [6, 12, 1]
    r = table.row(values[2])
    assert (r["bbox_z0"], r["bbox_row1"], r["bbox_col1"], r["mean"]) == (3, 8, 10, pixels.size - 1)
    assert math.isnan(r["std"])  # one voxel: no SD (ddof=1)
    assert r["volume_ml"] == pytest.approx(0.001)


def test_without_an_image_and_on_a_mask():
    mask = np.zeros((30, 40), np.uint8)
    mask[5:10, 20:30] = 2
    table = label_stats(label_map(mask))
    r = table.row(2)
    assert r["voxels"] == 50 and r["mean"] is None
    assert (r["bbox_row0"], r["bbox_row1"], r["bbox_col0"], r["bbox_col1"]) == (5, 9, 20, 29)


def test_bad_input(phantom):
    labels, image = phantom
    with pytest.raises(EmptyLabelError, match=r"\[9\]"):
        label_stats(labels, image, values=[3, 9])
    other = ct_phantom((*SHAPE[:2], 40))
    with pytest.raises(GridMismatchError, match="resample"):
        label_stats(labels, other)


def test_table_prints_writes_csv_and_reads_back(phantom, tmp_path):
    labels, image = phantom
    table = label_stats(labels, image)
    text = str(table)
    assert text.splitlines()[0].split()[:4] == ["label", "name", "voxels", "volume_ml"]
    assert "liver" in text
    path = table.to_csv(tmp_path / "stats.csv")
    assert path.read_text().splitlines()[0] == "# m1vision.label_stats version 1"
    back = LabelTable.read_csv(path)
    assert back.rows == table.rows and back.columns == table.columns
    with pytest.raises(OutputExistsError):
        table.to_csv(tmp_path / "stats.csv")
    assert {"label", "name", "voxels", "volume_ml", "mean", "std", "min", "max"} <= set(
        table.rows[0]
    )


def test_table_as_pandas(phantom):
    import pandas as pd

    labels, image = phantom
    table = label_stats(labels, image)
    frame = table.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(table.columns)
    assert frame["voxels"].tolist() == [r["voxels"] for r in table]
    assert frame.loc[frame["name"] == "liver", "mean"].item() == table.row("liver")["mean"]


def test_table_without_pandas_says_how_to_get_it(phantom, monkeypatch):
    labels, _ = phantom
    monkeypatch.setitem(sys.modules, "pandas", None)  # pandas is optional for users
    with pytest.raises(ImportError, match="pip install pandas"):
        label_stats(labels).to_pandas()


def test_bar_chart_uses_the_label_colours(phantom, tmp_path):
    labels, image = phantom
    table = label_stats(labels, image)
    picture = table.bar_chart("volume_ml", path=tmp_path / "bars.png")
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8
    for v in (1, 3, 6):
        r, g, b = labels.metadata["labels"][v]["color"]
        assert (picture == [b, g, r]).all(axis=2).sum() > 20, v
    assert (tmp_path / "bars.png").stat().st_size > 0


# --------------------------------------------------------------------------- compare_labels


@pytest.fixture(scope="module")
def pair(phantom):
    """The phantom's labels and a "prediction": shifted, grown, one organ lost, one added."""
    from scipy import ndimage

    ref, _ = phantom
    px = ref.pixels.copy()
    liver = px == 3
    px[liver] = 0
    px[np.roll(liver, (1, 2), axis=(1, 2)) & (px == 0)] = 3  # 1 row, 2 columns further
    aorta = ndimage.binary_dilation(px == 5, iterations=1)
    px[aorta & (px == 0)] = 5
    px[px == 4] = 0  # the lesion is missed
    px[2:4, 3:6, 3:6] = 9  # a label the reference does not have
    names = {**ref.metadata["labels"], 9: {"name": "ghost", "color": [9, 9, 9]}}
    names.pop(4)
    pred = label_map(px, like=ref, labels=names)
    return ref, pred


def _surface_points(mask: np.ndarray, affine) -> np.ndarray:
    """World (RAS mm) positions of the voxels of ``mask`` with a face neighbour outside it,
    found by comparing with the six shifted copies (the obvious way)."""
    padded = np.pad(mask, 1)
    inner = np.ones_like(mask)
    for axis in range(3):
        for step in (-1, 1):
            inner &= np.roll(padded, step, axis=axis)[1:-1, 1:-1, 1:-1]
    idx = np.argwhere(mask & ~inner).astype(float)
    a = np.asarray(affine, float)
    return idx @ a[:3, :3].T + a[:3, 3]


def test_compare_agrees_with_simpleitk_and_brute_force(pair):
    from scipy.spatial.distance import cdist

    from m1vision.labels import compare_labels

    ref, pred = pair
    table = compare_labels(ref, pred)
    assert [r["label"] for r in table] == [1, 2, 3, 4, 5, 6, 9]
    affine = ref.metadata["affine"]
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(to_sitk(ref.pixels, affine), to_sitk(pred.pixels, affine))
    for r in table:
        v = r["label"]
        a, b = ref.pixels == v, pred.pixels == v
        if not (a.any() and b.any()):
            continue
        assert r["dice"] == pytest.approx(overlap.GetDiceCoefficient(v), rel=1e-12)
        assert r["iou"] == pytest.approx(overlap.GetJaccardCoefficient(v), rel=1e-12)
        hd = sitk.HausdorffDistanceImageFilter()
        hd.Execute(to_sitk(a.astype(np.uint8), affine), to_sitk(b.astype(np.uint8), affine))
        assert r["hd_mm"] == pytest.approx(hd.GetHausdorffDistance(), abs=1e-6)
        d = cdist(_surface_points(a, affine), _surface_points(b, affine))
        d_ab, d_ba = d.min(axis=1), d.min(axis=0)
        assert r["hd95_mm"] == pytest.approx(
            max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)), abs=1e-6
        )
        assert r["assd_mm"] == pytest.approx(
            (d_ab.sum() + d_ba.sum()) / (d_ab.size + d_ba.size), abs=1e-6
        )
    same = compare_labels(ref, ref)
    assert all(r["dice"] == 1.0 and r["hd95_mm"] == 0.0 for r in same)


def test_compare_empty_labels_follow_the_documented_conventions(pair):
    from m1vision.labels import compare_labels

    ref, pred = pair
    table = compare_labels(ref, pred)
    missed, ghost = table.row(4), table.row("ghost")
    assert (missed["dice"], missed["iou"], missed["pred_voxels"]) == (0.0, 0.0, 0)
    assert math.isinf(missed["hd95_mm"]) and math.isinf(missed["assd_mm"])
    assert missed["volume_diff_rel"] == -1.0
    assert ghost["dice"] == 0.0 and math.isinf(ghost["volume_diff_rel"])
    assert table.overall["label"] == "mean"
    assert table.overall["dice"] == pytest.approx(np.mean([r["dice"] for r in table]))
    with pytest.raises(EmptyLabelError, match=r"\[7\]"):
        compare_labels(ref, pred, values=[3, 7])
    assert [r["label"] for r in compare_labels(ref, pred, values=[3])] == [3]


def test_compare_refuses_other_grids_and_writes_csv(pair, tmp_path):
    from m1vision.labels import compare_labels

    ref, pred = pair
    shifted = ct_phantom_labels(SHAPE, spacing=SPACING)  # the axial grid, not the oblique one
    with pytest.raises(GridMismatchError, match="prediction and reference are not on one grid"):
        compare_labels(ref, shifted)
    table = compare_labels(ref, pred)
    assert {"label", "dice", "iou", "hd95_mm", "assd_mm"} <= set(table.rows[0])
    back = LabelTable.read_csv(table.to_csv(tmp_path / "compare.csv"))
    assert back.rows == table.rows and back.overall == table.overall
    assert str(table).splitlines()[-1].split()[0] == "mean"
