"""Per-label statistics in one pass (internal): counts, image statistics, centroid, box."""

from __future__ import annotations

import math

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
    img = lo = hi = None
    if image is not None:
        check_grid(lm, image, name="labels", image_name="image")
        img = image.pixels if hasattr(image, "pixels") else np.asarray(image)
        img = img if img.ndim == 3 else img[None]
        if img.dtype.kind in "iuf":
            lo, hi = img.min(), img.max()
        if img.dtype.kind not in "iuf" or not np.isfinite(lo) or not np.isfinite(hi):
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
    acc = _accumulate(pixels, img, present, lo, hi)
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


#: Slab size (voxels) of one accumulation step: large enough that its fixed costs (its
#: tables) are small beside its voxels' (its keys are built in L2-sized chunks)...
_SLAB_VOXELS = 1 << 21
#: ...but at least this many times the histogram's bins (each slab adds its own histogram).
_SLAB_PER_BIN = 4
#: Most (labels x image values) histogram bins (32 MB per table) before grouping by sorting.
_MAX_HIST_BINS = 1 << 22
#: Most runs of one label along the rows, per voxel, for which positions are counted run by
#: run; a noisier slab is counted voxel by voxel (as fast at runs of 5-6 voxels).
_MAX_RUNS_PER_VOXEL = 0.2
#: Voxels of one step of building histogram keys (their temporaries stay in the L2 cache).
_KEY_CHUNK = 1 << 17
#: Most threads (each holds its own histogram; memory bandwidth bounds the gain).
_MAX_WORKERS = 4


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


class _Scratch:
    """One thread's scratch arrays, reused from slab to slab (a fresh large array costs
    page faults on first touch)."""

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype``, named ``name``."""
        n = shape if isinstance(shape, int) else math.prod(shape)
        a = self._arrays.get(name)
        if a is None or a.dtype != dtype or a.size < n:
            a = self._arrays[name] = np.empty(n, dtype)
        return a[:n] if isinstance(shape, int) else a[:n].reshape(shape)


class _Histogram:
    """How a slab's (label, image value) histogram keys are built: ``row * nbins + value -
    vmin``, in int32 (every key is below ``_MAX_HIST_BINS``), copied once into the intp
    array ``bincount`` takes.

    ``raw`` rows are the label values themselves (no per-voxel lookup), otherwise the
    compact indices; ``row_of[j]`` is the row of compact index ``j``.
    """

    def __init__(self, img, lo, hi, present: np.ndarray, k: int):
        top = int(present[-1]) if present.size else 0
        self.vmin = lo
        self.nbins = int(hi) - int(lo) + 1
        self.raw = (top + 1) * self.nbins <= _MAX_HIST_BINS
        self.rows = top + 1 if self.raw else k
        self.size = self.rows * self.nbins
        self.row_of = np.concatenate([[0], present]) if self.raw else np.arange(k)
        self.check_whole = img.dtype.kind == "f"
        self.work = np.result_type(img.dtype, np.float32) if self.check_whole else None

    @staticmethod
    def fits(img, lo, hi, present: np.ndarray, k: int) -> bool:
        """Whether ``img`` looks whole-valued (ints; floats sampled) with few enough bins."""
        if img.dtype.kind == "f":
            lo_f, hi_f = float(lo), float(hi)
            if not (lo_f.is_integer() and hi_f.is_integer() and hi_f - lo_f < _MAX_HIST_BINS):
                return False
            sample = img[:: max(1, img.shape[0] // 8)]
            if not np.array_equal(sample, np.rint(sample)):
                return False
        return k * (int(hi) - int(lo) + 1) <= _MAX_HIST_BINS

    def keys(self, lab, vals, compact, scratch: _Scratch):
        """The flat intp histogram keys of one slab, or None if ``vals`` are not whole.

        Built in chunks of ``_KEY_CHUNK`` voxels, whose temporaries stay in the core's cache.
        """
        lab, vals = lab.reshape(-1), vals.reshape(-1)
        key = scratch.get("key", lab.shape, np.intp)
        for i in range(0, lab.size, _KEY_CHUNK):
            j = i + _KEY_CHUNK
            if not self._chunk_keys(lab[i:j], vals[i:j], key[i:j], compact, scratch):
                return None
        return key

    def _chunk_keys(self, lab, vals, key, compact, scratch: _Scratch) -> bool:
        """Fill ``key`` with the keys of one chunk; False if ``vals`` are not whole."""
        n = lab.size
        key32 = scratch.get("key32", n, np.int32)
        if self.check_whole:
            whole = scratch.get("whole", n, vals.dtype)
            np.trunc(vals, out=whole)
            differ = scratch.get("differ", n, bool)
            if np.not_equal(whole, vals, out=differ).any():
                return False
            # whole floats less their (whole) minimum: exact in float
            shifted = scratch.get("whole" if vals.dtype == self.work else "shifted", n, self.work)
            np.subtract(vals, self.vmin, out=shifted, dtype=self.work)
            np.copyto(key32, shifted, casting="unsafe")
        else:  # integers: wrapping int32 arithmetic is exact for differences below 2**31
            np.subtract(vals, self.vmin, out=key32, dtype=np.int32, casting="unsafe")
        row = scratch.get("row", n, np.int32)
        np.multiply(lab if self.raw else compact(lab), self.nbins, out=row, dtype=np.int32,
                    casting="unsafe")  # fmt: skip
        np.add(key32, row, out=key32)
        np.copyto(key, key32)
        return True


def _runs(lab2: np.ndarray, scratch: _Scratch):
    """Flat starts, lengths and values of the runs of one value along the rows of ``lab2``
    (2-D), or None when there are more than ``_MAX_RUNS_PER_VOXEL`` runs per voxel."""
    change = scratch.get("change", lab2.shape, bool)
    flat = lab2.reshape(-1)
    np.not_equal(flat[1:], flat[:-1], out=change.reshape(-1)[1:])
    change[:, 0] = True  # a row starts a run
    if np.count_nonzero(change) > _MAX_RUNS_PER_VOXEL * lab2.size:
        return None
    starts = np.flatnonzero(change)
    return starts, np.diff(starts, append=lab2.size), flat[starts]


class _Positions:
    """One thread's position tables: (row, label) counts, (column, label) counts of the slabs
    counted voxel by voxel, and (column, label) run edges (+1 at a run's first column, -1
    past its last) of the slabs counted run by run; the (slice, label) counts go straight
    into the shared ``counts_z`` (each slab owns its slices)."""

    def __init__(self, counts_z: np.ndarray, nr: int, nc: int, compact):
        self.counts_z, self.compact = counts_z, compact
        k = counts_z.shape[1]
        self.rows = np.zeros((nr, k), np.int64)
        self.cols = np.zeros((nc, k), np.int64)
        self.edges = np.zeros((nc + 1, k), np.int64)

    def add_runs(self, lab: np.ndarray, z0: int, scratch: _Scratch) -> bool:
        """Count slab ``lab`` (slices from ``z0``) run by run; False if it has too many runs."""
        s, nr, nc = lab.shape
        k = self.counts_z.shape[1]
        lab2 = lab.reshape(s * nr, nc)
        runs = _runs(lab2, scratch)
        if runs is None:
            return False
        starts, length, values = runs
        labelled = values != 0  # the background is not measured
        starts, length = starts[labelled], length[labelled]
        ids = self.compact(values[labelled])
        row, col0 = np.divmod(starts, nc)
        z, r = np.divmod(row, nr)
        self.counts_z[z0 : z0 + s] = np.bincount(z * k + ids, length, s * k).reshape(s, k)
        self.rows += np.bincount(r * k + ids, length, nr * k).reshape(nr, k).astype(np.int64)
        col0 *= k
        col0 += ids
        self.edges += np.bincount(col0, minlength=(nc + 1) * k).reshape(nc + 1, k)
        col0 += length * k
        self.edges -= np.bincount(col0, minlength=(nc + 1) * k).reshape(nc + 1, k)
        return True

    def add_voxels(self, lab: np.ndarray, z0: int, scratch: _Scratch) -> None:
        """Count slab ``lab`` (slices from ``z0``) voxel by voxel, a slice at a time (its
        tables stay in cache)."""
        _, nr, nc = lab.shape
        k = self.counts_z.shape[1]
        by_row = (np.arange(nr, dtype=np.intp) * k)[:, None]
        by_col = np.arange(nc, dtype=np.intp) * k
        key = scratch.get("position", (nr, nc), np.intp)
        for i, plane in enumerate(lab):
            ids = self.compact(plane)
            np.add(ids, by_row, out=key)
            table = np.bincount(key.reshape(-1), minlength=nr * k).reshape(nr, k)
            self.counts_z[z0 + i] = table.sum(axis=0)
            self.rows += table
            np.add(ids, by_col, out=key)
            self.cols += np.bincount(key.reshape(-1), minlength=nc * k).reshape(nc, k)

    def column_counts(self) -> np.ndarray:
        """The (column, label) counts of every slab."""
        return self.cols + np.cumsum(self.edges, axis=0)[:-1]


def _compacter(present: np.ndarray):
    """A function mapping label values to compact indices 1..K (0 the background), as intp."""
    k = len(present) + 1
    top = int(present[-1]) if present.size else 0
    if top < k:  # the values are 1..K already
        return lambda values: values.astype(np.intp)
    if top < 1 << 24:  # a lookup table
        lut = np.zeros(top + 1, np.intp)
        lut[present] = np.arange(1, k)
        return lambda values: lut[values]

    def search(values):
        ids = np.searchsorted(present, values) + 1
        ids[values == 0] = 0
        return ids

    return search


def _accumulate(pixels: np.ndarray, img, present: np.ndarray, lo=None, hi=None) -> dict:
    """One pass over the volume in slabs (in threads): counts, coordinate sums and boxes,
    image statistics.

    Labels are mapped to compact indices 1..K (0 the background). Positions come from the
    runs of one label along the rows (few in a coherent map; a noisy slab is counted voxel
    by voxel): (slice, label) and (row, label) counts weighted by run length, (column,
    label) counts from run edges. An image of whole numbers in a range small enough gets
    a (label, value) histogram, which gives exact means, SDs, minima, maxima and
    percentiles (``lo``, ``hi``: the image's minimum and maximum); any other image is
    grouped by sorting the labelled voxels.
    """
    from concurrent.futures import ThreadPoolExecutor

    from m1vision._checks import default_workers

    nz, nr, nc = pixels.shape
    k = len(present) + 1
    compact = _compacter(present)
    counts_z = np.zeros((nz, k), np.int64)
    histogram = None
    if img is not None and _Histogram.fits(img, lo, hi, present, k):
        histogram = _Histogram(img, lo, hi, present, k)
    slab_voxels = _SLAB_VOXELS
    if histogram is not None:
        slab_voxels = min(max(slab_voxels, _SLAB_PER_BIN * histogram.size), _MAX_HIST_BINS)
    step = max(1, slab_voxels // max(1, nr * nc))
    starts_z = range(0, nz, step)
    state = {"histogram": histogram is not None}  # False once a slab is not whole-valued

    def work(slabs):
        """The tables of some slabs (NumPy releases the GIL: workers run in threads)."""
        scratch = _Scratch()
        positions = _Positions(counts_z, nr, nc, compact)
        hist = np.zeros(histogram.size, np.int64) if histogram is not None else None
        for z0 in slabs:
            lab = pixels[z0 : z0 + step]
            if not positions.add_runs(lab, z0, scratch):
                positions.add_voxels(lab, z0, scratch)
            if state["histogram"]:
                key = histogram.keys(lab, img[z0 : z0 + step], compact, scratch)
                if key is None:
                    state["histogram"] = False
                else:
                    hist += np.bincount(key, minlength=histogram.size)
        return positions, hist

    workers = min(_MAX_WORKERS, default_workers(len(starts_z)))
    with ThreadPoolExecutor(workers) as pool:
        done = list(pool.map(work, [starts_z[w::workers] for w in range(workers)]))
    counts_r = sum(p.rows for p, _ in done)
    counts_c = sum(p.column_counts() for p, _ in done)
    hist = sum(h for _, h in done) if state["histogram"] else None
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
        out["image"] = _from_histogram(hist.reshape(histogram.rows, histogram.nbins),
                                       histogram.row_of, float(histogram.vmin))  # fmt: skip
    elif img is not None:
        out["image"] = _from_sorted(pixels, img, compact, counts, step)
    return out


def _from_histogram(table: np.ndarray, row_of: np.ndarray, vmin: float):
    """The image statistics of compact label ``j`` (``n`` voxels) from its histogram row."""
    centres = np.arange(table.shape[1], dtype=np.float64) + vmin

    def stats(j: int, n: int) -> dict:
        h = table[row_of[j]]
        nz_bins = np.flatnonzero(h)
        hv, xv = h[nz_bins], centres[nz_bins]
        mean = float(hv @ xv / n)
        var = float(hv @ (xv - mean) ** 2 / (n - 1)) if n > 1 else float("nan")
        cum = np.cumsum(hv)

        def kth(i: int) -> float:
            return float(xv[int(np.searchsorted(cum, i + 1))])

        qs = _percentile(kth, n, (50, *PERCENTILES))
        return _image_row(mean, var, float(xv[0]), float(xv[-1]), qs)

    return stats


def _from_sorted(pixels: np.ndarray, img, compact, counts: np.ndarray, step: int):
    """The image statistics of compact label ``j`` (``n`` voxels), the labelled voxels'
    values grouped by a stable sort on the label (a radix sort for 8- and 16-bit labels)."""
    groups_l, groups_v = [], []
    for z0 in range(0, pixels.shape[0], step):
        ids = compact(pixels[z0 : z0 + step]).ravel()
        fg = ids != 0
        groups_l.append(ids[fg])
        groups_v.append(img[z0 : z0 + step].ravel()[fg])
    labs = np.concatenate(groups_l).astype(np.min_scalar_type(len(counts) - 1))
    vals = np.concatenate(groups_v).astype(np.float64)[np.argsort(labs, kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts[1:])])

    def stats(j: int, n: int) -> dict:
        seg = vals[starts[j - 1] : starts[j - 1] + n]
        mean = float(seg.mean())
        var = float(((seg - mean) ** 2).sum() / (n - 1)) if n > 1 else float("nan")
        qs = [float(v) for v in np.percentile(seg, (50, *PERCENTILES))]
        return _image_row(mean, var, float(seg.min()), float(seg.max()), qs)

    return stats


def _image_row(mean, var, lo, hi, qs) -> dict:
    return {
        "mean": mean,
        "std": float(np.sqrt(var)),
        "min": lo,
        "max": hi,
        "median": qs[0],
        **{f"p{q}": v for q, v in zip(PERCENTILES, qs[1:], strict=True)},
    }
