"""Per-label statistics in one pass (internal): counts, image statistics, centroid, box."""

from __future__ import annotations

import os

import numpy as np

from m1vision.errors import EmptyLabelError, InvalidParameterError
from m1vision.labels._table import LabelTable

#: Percentiles of the image reported per label (median is the 50th).
PERCENTILES = (5, 25, 75, 95)

STATS_COLUMNS = (
    "label", "name", "voxels", "volume_ml", "mean", "std", "min", "max", "median",
    *(f"p{q}" for q in PERCENTILES),
    "centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
    "bbox_z0", "bbox_z1", "bbox_row0", "bbox_row1", "bbox_col0", "bbox_col1",
)  # fmt: skip


def _affine_of(lm):
    a = lm.metadata.get("affine")
    if a is not None:
        return np.asarray(a, float)
    from m1vision.geometry import default_affine

    sp = lm.spacing if lm.spacing is not None and len(lm.spacing) == 3 else (1.0, 1.0, 1.0)
    return default_affine(sp)


def _requested(values, present, where: str):
    """The label values to measure: ``values`` (checked against ``present``) or all present.

    ``where`` completes "hold no voxel in ..." in the EmptyLabelError for absent values.
    """
    if values is None:
        return [int(v) for v in present]
    try:
        wanted = [int(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"values must be label values (integers), got {values!r}."
        ) from None
    missing = sorted(set(wanted) - {int(v) for v in present})
    if missing:
        raise EmptyLabelError(
            f"label value(s) {missing} hold no voxel in {where} (present: "
            f"{[int(v) for v in present]}); an empty label has nothing to measure. Fix: ask "
            "only for labels that are there (values=None measures every label present)."
        )
    return wanted


def label_stats(labels, image=None, *, values=None) -> LabelTable:
    """Per-label size, position and image statistics, in one pass over the voxels.

    Parameters
    ----------
    labels : MedicalImage or numpy.ndarray
        A label map (see :mod:`m1vision.labels`); a 2-D mask counts as one 1 mm slice.
    image : MedicalImage or numpy.ndarray, optional
        The image to measure under each label (HU for CT); it must be on the labels' grid
        (GridMismatchError otherwise, with the resample fix). Without it the image columns
        are None.
    values : list of int, optional, keyword-only
        The labels to report (default: every label present). A value with no voxel raises
        EmptyLabelError.

    Returns
    -------
    LabelTable
        One row per label, sorted by value, with the keys ``label, name, voxels, volume_ml``
        (voxels times the voxel volume, ``|det(affine)|``, in mL), ``mean, std`` (ddof=1 as
        SimpleITK; NaN for one voxel), ``min, max, median, p5, p25, p75, p95`` (NumPy's
        linear percentiles), ``centroid_x_mm, centroid_y_mm, centroid_z_mm`` (the mean
        voxel centre in RAS+ mm) and ``bbox_z0 .. bbox_col1`` (first and last index of the
        label along each axis, inclusive).

    Examples
    --------
    >>> from m1vision.labels import label_stats
    >>> from m1vision.synthetic import ct_phantom, ct_phantom_labels
    >>> labels = ct_phantom_labels((16, 64, 64), spacing=(2.5, 0.8, 0.8))
    >>> table = label_stats(labels, ct_phantom((16, 64, 64)))
    >>> row = table.row("spine")
    >>> row["voxels"] > 0, 690 < row["mean"] < 710, row["name"]
    (True, True, 'spine')
    """
    from m1vision.labels._core import check_grid, check_labels

    lm = check_labels(labels)
    pixels = lm.pixels if lm.ndim == 3 else lm.pixels[None]
    img = None
    if image is not None:
        check_grid(lm, image, name="labels", image_name="image")
        img = image.pixels if hasattr(image, "pixels") else np.asarray(image)
        img = img if img.ndim == 3 else img[None]
        if img.dtype.kind not in "iuf" or not np.isfinite(img.min()) or not np.isfinite(img.max()):
            raise InvalidParameterError(
                f"image must hold finite numbers (dtype {img.dtype}); replace NaN first, "
                "e.g. numpy.nan_to_num(image, nan=image_min)."
            )
    if lm.ndim == 3:
        affine = _affine_of(lm)
    else:  # a picture's mask: one 1 mm slice, rows and columns at the mask's spacing
        affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
        if lm.spacing is not None:
            affine[1, 1], affine[0, 2] = lm.spacing[0], lm.spacing[1]
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    info = lm.metadata["labels"]
    present = np.array(sorted(info), np.int64)
    wanted = _requested(values, present, "labels")
    acc = _accumulate(pixels, img, present)
    rows = []
    for value in wanted:
        k = int(np.searchsorted(present, value)) + 1  # compact index (0: background)
        n = int(acc["counts"][k])
        centre_vox = np.array([acc["sum_z"][k], acc["sum_r"][k], acc["sum_c"][k]], float) / n
        centre = affine[:3, :3] @ centre_vox + affine[:3, 3]
        row = {"label": value, "name": info[value]["name"], "voxels": n, "volume_ml": n * voxel_ml}
        if img is not None:
            row.update(acc["image"](k, n))
        else:
            row.update(dict.fromkeys(("mean", "std", "min", "max", "median")))
            row.update({f"p{q}": None for q in PERCENTILES})
        row.update(
            centroid_x_mm=float(centre[0]), centroid_y_mm=float(centre[1]),
            centroid_z_mm=float(centre[2]),
            bbox_z0=acc["box"][k][0], bbox_z1=acc["box"][k][1],
            bbox_row0=acc["box"][k][2], bbox_row1=acc["box"][k][3],
            bbox_col0=acc["box"][k][4], bbox_col1=acc["box"][k][5],
        )  # fmt: skip
        rows.append(row)
    colors = {v: info[v]["color"] for v in wanted}
    return LabelTable(rows, schema="m1vision.label_stats", columns=STATS_COLUMNS, colors=colors)


#: Slab size (voxels) of one accumulation step: small enough that its temporaries (8 bytes a
#: voxel) and its (slice, row, label) table stay in cache (4x faster than 1 << 22 slabs)...
_SLAB_VOXELS = 1 << 19
#: ...but at least this many times the histogram's bins (each slab adds its own histogram).
_SLAB_PER_BIN = 4
#: Most (labels x image values) histogram bins (32 MB per table) before grouping by sorting.
_MAX_HIST_BINS = 1 << 22


def _first_last(hist: np.ndarray):
    """Per column (label) of an (n, K) count table, the first and last row with a count."""
    any_ = hist > 0
    first = np.argmax(any_, axis=0)
    last = hist.shape[0] - 1 - np.argmax(any_[::-1], axis=0)
    return first, last


def _percentile(sorted_values_at, n: int, qs) -> list[float]:
    """NumPy's linear percentiles from an order-statistic function (k -> k-th smallest)."""
    out = []
    for q in qs:
        pos = (n - 1) * q / 100.0
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        a, b = sorted_values_at(lo), sorted_values_at(hi)
        out.append(float(a + (b - a) * (pos - lo)))
    return out


def _accumulate(pixels: np.ndarray, img, present: np.ndarray) -> dict:
    """One pass over the volume in slabs: counts, coordinate sums and boxes, image statistics.

    Labels are mapped to compact indices 1..K (0 the background) and every table is a
    ``bincount`` of ``index + K * something``. An image of whole numbers in a range small
    enough gets a (label, value) histogram, which gives exact means, SDs, minima, maxima
    and percentiles; any other image is grouped by sorting the labelled voxels.
    """
    nz, nr, nc = pixels.shape
    k = len(present) + 1
    top = int(present[-1]) if present.size else 0
    lut = None
    if top >= k and top < 1 << 24:  # values are not 1..K: a lookup table makes them compact
        lut = np.zeros(top + 1, np.intp)
        lut[present] = np.arange(1, k)
    counts_z = np.zeros((nz, k), np.int64)
    counts_r = np.zeros((nr, k), np.int64)
    counts_c = np.zeros((nc, k), np.int64)
    hist = None
    sorted_path = img is not None
    vmin = vmax = 0
    if img is not None:
        vmin, vmax = float(img.min()), float(img.max())
        nbins = int(vmax - vmin) + 1
        if (
            img.dtype.kind in "iu"
            or np.array_equal(img[:: max(1, nz // 8)], np.rint(img[:: max(1, nz // 8)]))
        ) and k * nbins <= _MAX_HIST_BINS:
            hist = np.zeros(k * nbins, np.int64)
            sorted_path = False
    slab_voxels = _SLAB_VOXELS
    if hist is not None:
        slab_voxels = min(max(slab_voxels, _SLAB_PER_BIN * hist.size), _MAX_HIST_BINS)
    step = max(1, slab_voxels // max(1, nr * nc))
    small_floats = img is not None and img.dtype.kind == "f" and max(-vmin, vmax) < 2**31
    zr = (np.arange(step * nr, dtype=np.intp) * k).reshape(step, nr, 1)
    cc = np.arange(nc, dtype=np.intp)[None, None, :] * k

    def compact(slab):
        if lut is not None:
            return lut[slab]
        if top >= k:
            li = np.searchsorted(present, slab) + 1
            li[slab == 0] = 0
            return li
        return slab.astype(np.intp)

    def one_slab(z0: int, with_hist: bool):
        """Tables of one slab (NumPy releases the GIL: slabs run in threads)."""
        z1 = min(nz, z0 + step)
        s = z1 - z0
        li = compact(pixels[z0:z1])
        # one table of (slice, row, label) counts gives the z and row projections
        table = np.bincount((li + zr[:s]).ravel(), minlength=s * nr * k).reshape(s, nr, k)
        cols = np.bincount((li + cc).ravel(), minlength=nc * k).reshape(nc, k)
        part = None
        if with_hist:
            vals = img[z0:z1]
            if small_floats:  # whole floats within int32: float64 sums are exact
                if not np.array_equal(np.trunc(vals), vals):
                    part = False  # not whole numbers: group by sorting instead
                else:
                    li *= nbins
                    li -= int(vmin)
                    np.add(li, vals, out=li, casting="unsafe")
                    part = np.bincount(li.ravel(), minlength=k * nbins)
                return z0, table.sum(axis=1), table.sum(axis=0), cols, part
            key = vals.astype(np.intp)  # exact for whole numbers, checked next
            if vals.dtype.kind == "f" and not np.array_equal(key, vals):
                part = False  # not whole numbers: group by sorting instead
            else:
                key -= int(vmin)
                li *= nbins
                key += li
                part = np.bincount(key.ravel(), minlength=k * nbins)
        return z0, table.sum(axis=1), table.sum(axis=0), cols, part

    from concurrent.futures import ThreadPoolExecutor

    starts_z = range(0, nz, step)
    workers = max(1, min(4, os.cpu_count() or 1, len(starts_z)))
    with_hist = hist is not None
    with ThreadPoolExecutor(workers) as pool:
        for z0, tz, tr, tc, part in pool.map(one_slab, starts_z, [with_hist] * len(starts_z)):
            counts_z[z0 : z0 + tz.shape[0]] = tz
            counts_r += tr
            counts_c += tc
            if part is False:
                hist, sorted_path = None, True
            elif part is not None and hist is not None:
                hist += part
    groups_l, groups_v = [], []
    if sorted_path:
        for z0 in starts_z:
            li = compact(pixels[z0 : z0 + step]).ravel()
            fg = li != 0
            groups_l.append(li[fg])
            groups_v.append(img[z0 : z0 + step].ravel()[fg])
    counts = counts_z.sum(axis=0)
    z0s, z1s = _first_last(counts_z)
    r0s, r1s = _first_last(counts_r)
    c0s, c1s = _first_last(counts_c)
    box = {
        j: (int(z0s[j]), int(z1s[j]), int(r0s[j]), int(r1s[j]), int(c0s[j]), int(c1s[j]))
        for j in range(k)
    }
    out = {
        "counts": counts,
        "sum_z": np.arange(nz) @ counts_z,
        "sum_r": np.arange(nr) @ counts_r,
        "sum_c": np.arange(nc) @ counts_c,
        "box": box,
        "image": None,
    }
    if hist is not None:
        table = hist.reshape(k, nbins)
        centres = np.arange(nbins, dtype=np.float64) + vmin

        def from_hist(j: int, n: int) -> dict:
            h = table[j]
            nz_bins = np.flatnonzero(h)
            hv, xv = h[nz_bins], centres[nz_bins]
            mean = float(hv @ xv / n)
            var = float(hv @ (xv - mean) ** 2 / (n - 1)) if n > 1 else float("nan")
            cum = np.cumsum(hv)

            def kth(i: int) -> float:
                return float(xv[int(np.searchsorted(cum, i + 1))])

            qs = _percentile(kth, n, (50, *PERCENTILES))
            return _image_row(mean, var, float(xv[0]), float(xv[-1]), qs)

        out["image"] = from_hist
    elif sorted_path:
        labs = np.concatenate(groups_l) if groups_l else np.zeros(0, np.intp)
        vals = np.concatenate(groups_v).astype(np.float64) if groups_v else np.zeros(0)
        order = np.argsort(labs, kind="stable")
        vals = vals[order]
        starts = np.concatenate([[0], np.cumsum(counts[1:])])

        def from_sorted(j: int, n: int) -> dict:
            seg = vals[starts[j - 1] : starts[j - 1] + n]
            mean = float(seg.mean())
            var = float(((seg - mean) ** 2).sum() / (n - 1)) if n > 1 else float("nan")
            qs = [float(v) for v in np.percentile(seg, (50, *PERCENTILES))]
            return _image_row(mean, var, float(seg.min()), float(seg.max()), qs)

        out["image"] = from_sorted
    return out


def _image_row(mean, var, lo, hi, qs) -> dict:
    return {
        "mean": mean,
        "std": float(np.sqrt(var)),
        "min": lo,
        "max": hi,
        "median": qs[0],
        **{f"p{q}": v for q, v in zip(PERCENTILES, qs[1:], strict=True)},
    }
