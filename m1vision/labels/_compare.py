"""Comparing two label maps (internal): overlap, surface distances, volumes per label."""

from __future__ import annotations

import numpy as np

from m1vision.labels._table import LabelTable

COMPARE_COLUMNS = (
    "label", "name", "ref_voxels", "pred_voxels", "dice", "iou", "hd_mm", "hd95_mm", "assd_mm",
    "ref_ml", "pred_ml", "volume_diff_ml", "volume_diff_rel",
)  # fmt: skip


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (outside the array counts)."""
    from scipy import ndimage

    inner = ndimage.binary_erosion(
        mask, structure=ndimage.generate_binary_structure(mask.ndim, 1), border_value=0
    )
    return mask & ~inner


def _distances(a_surf, b_surf, spacing):
    """Distances (mm) from each surface voxel of a to the nearest of b, and back."""
    from scipy import ndimage

    to_b = ndimage.distance_transform_edt(~b_surf, sampling=spacing)
    to_a = ndimage.distance_transform_edt(~a_surf, sampling=spacing)
    return to_b[a_surf], to_a[b_surf]


def _crop(shape, boxes):
    """The slices of the union of ``boxes`` ((z0, z1, r0, r1, c0, c1), inclusive), padded by 1."""
    lo = np.min([[b[0], b[2], b[4]] for b in boxes], axis=0) - 1
    hi = np.max([[b[1], b[3], b[5]] for b in boxes], axis=0) + 2
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def compare_labels(reference, prediction, *, values=None) -> LabelTable:
    """Dice, IoU, Hausdorff distances, ASSD and volumes of two label maps, per label.

    Parameters
    ----------
    reference, prediction : MedicalImage or numpy.ndarray
        Two label maps on one grid (GridMismatchError otherwise, with the resample fix).
        Distances are in mm on the physical grid: voxel sizes from the affine (anisotropic
        spacing respected; a sheared affine's shear is not).
    values : list of int, optional, keyword-only
        The labels to compare; default every label present in either map. A value present in
        neither raises EmptyLabelError.

    Returns
    -------
    LabelTable
        One row per label with ``label, name, ref_voxels, pred_voxels, dice, iou, hd_mm``
        (Hausdorff, the maximum), ``hd95_mm``, ``assd_mm``, ``ref_ml, pred_ml``,
        ``volume_diff_ml`` (prediction minus reference) and ``volume_diff_rel`` (that over
        the reference volume); ``table.overall`` holds the mean of each column over the
        labels (label "mean"), printed and written as the CSV's last row.

    Notes
    -----
    * Dice ``2|A and B| / (|A| + |B|)``, IoU ``|A and B| / |A or B|``, counted in voxels.
    * Surfaces are the voxels of a label with a face neighbour outside it (the array's edge
      counts as outside). HD is the largest surface-to-surface distance either way, HD95 the
      larger of the two directed 95th percentiles (NumPy's linear percentile), ASSD the mean
      of all distances both ways, as in MetricsReloaded and MONAI.
    * Empty labels (MetricsReloaded's conventions): a label in only one map gets Dice 0,
      IoU 0, and HD, HD95 and ASSD ``inf`` (there is no surface to measure to), and
      ``volume_diff_rel`` ``inf`` when the reference is the empty one. A label in neither map
      is not measured: asking for one raises EmptyLabelError.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.labels import compare_labels, label_map
    >>> ref = np.zeros((1, 8, 8), np.uint8); ref[0, 2:6, 2:6] = 1
    >>> pred = np.zeros_like(ref); pred[0, 2:6, 3:7] = 1
    >>> row = compare_labels(label_map(ref), label_map(pred)).row(1)
    >>> row["dice"], row["iou"], row["hd_mm"]
    (0.75, 0.6, 1.0)
    """
    from m1vision.labels._core import check_grid, check_labels
    from m1vision.labels._stats import _affine_of, _requested, label_stats

    ref = check_labels(reference, name="reference")
    pred = check_labels(prediction, name="prediction")
    check_grid(pred, ref, name="prediction", image_name="reference")
    ref_px = ref.pixels if ref.ndim == 3 else ref.pixels[None]
    pred_px = pred.pixels if pred.ndim == 3 else pred.pixels[None]
    if ref.ndim == 3:
        affine = _affine_of(ref)
        spacing = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    else:
        spacing = (1.0, *(ref.spacing or (1.0, 1.0)))
    voxel_ml = (
        float(np.prod(spacing)) / 1000.0
        if ref.ndim == 2
        else (abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0)
    )
    names = {**pred.metadata["labels"], **ref.metadata["labels"]}
    present = sorted(names)
    wanted = _requested(values, present, "the reference nor in the prediction")
    ref_box = {r["label"]: r for r in label_stats(ref)} if ref.metadata["labels"] else {}
    pred_box = {r["label"]: r for r in label_stats(pred)} if pred.metadata["labels"] else {}

    def box(row):
        return (row["bbox_z0"], row["bbox_z1"], row["bbox_row0"], row["bbox_row1"],
                row["bbox_col0"], row["bbox_col1"])  # fmt: skip

    rows = []
    for v in wanted:
        boxes = [box(t[v]) for t in (ref_box, pred_box) if v in t]
        region = _crop(ref_px.shape, boxes)
        a = ref_px[region] == v
        b = pred_px[region] == v
        na, nb = int(a.sum()), int(b.sum())
        both = int(np.count_nonzero(a & b))
        row = {"label": v, "name": names[v]["name"], "ref_voxels": na, "pred_voxels": nb}
        if na and nb:
            d_ab, d_ba = _distances(_surface(a), _surface(b), spacing)
            row.update(
                dice=2.0 * both / (na + nb),
                iou=both / (na + nb - both),
                hd_mm=float(max(d_ab.max(), d_ba.max())),
                hd95_mm=float(max(np.percentile(d_ab, 95), np.percentile(d_ba, 95))),
                assd_mm=float((d_ab.sum() + d_ba.sum()) / (d_ab.size + d_ba.size)),
            )
        else:
            inf = float("inf")
            row.update(dice=0.0, iou=0.0, hd_mm=inf, hd95_mm=inf, assd_mm=inf)
        ref_ml, pred_ml = na * voxel_ml, nb * voxel_ml
        row.update(
            ref_ml=ref_ml,
            pred_ml=pred_ml,
            volume_diff_ml=pred_ml - ref_ml,
            volume_diff_rel=(pred_ml - ref_ml) / ref_ml if na else float("inf"),
        )
        rows.append(row)
    overall = {"label": "mean", "name": ""}
    for c in COMPARE_COLUMNS[2:]:
        overall[c] = float(np.mean([r[c] for r in rows])) if rows else float("nan")
    colors = {v: names[v]["color"] for v in wanted}
    return LabelTable(rows, schema="m1vision.label_compare", columns=COMPARE_COLUMNS,
                      colors=colors, overall=overall)  # fmt: skip
