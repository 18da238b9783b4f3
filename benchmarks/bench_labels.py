"""How fast is ``label_stats``? Against SimpleITK's label statistics filters, in one run.

A CT-like volume (``ct_phantom``, float32 HU) and a label map of 100 labels on it (uint8: the
volume cut into 10 x 10 blocks of columns and rows, one label each, the air left as background
except in the middle slice, so that all 100 labels occur), 512 x 512 x 300 voxels
(``--quick``: 128 x 128 x 40). Timed, median of 3 after a warm-up:

* ``m1vision.labels.label_stats(labels, image)``: counts, mL, mean, SD, min, max, median and
  four percentiles, centroid and bounding box per label, one pass;
* SimpleITK ``LabelStatisticsImageFilter`` (count, mean, sigma, min, max, approximate
  median from a histogram, bounding box) plus ``LabelShapeStatisticsImageFilter`` (size,
  centroid), the two filters a SimpleITK user runs for the same table; the time includes
  ``GetImageFromArray`` of both arrays (SimpleITK needs its own images).

Counts and means are checked equal (means within 1e-6 relative) before any time counts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import median_seconds, print_section


def _data(shape):
    from m1vision.labels import label_map
    from m1vision.synthetic import ct_phantom

    image = ct_phantom(shape, seed=0)
    nz, nr, nc = shape
    rows = (np.arange(nr) * 10 // nr).astype(np.uint8)
    cols = (np.arange(nc) * 10 // nc).astype(np.uint8)
    labels = np.empty(shape, np.uint8)
    labels[:] = (rows[:, None] * 10 + cols[None, :] + 1)[None]
    labels[image[:, :, :] < -900] = 0  # the air is background...
    blocks = rows[:, None] * 10 + cols[None, :] + 1
    labels[nz // 2] = np.where(labels[nz // 2] == 0, blocks, labels[nz // 2])  # ...not all
    spacing = (1.0, 0.7, 0.7)
    return image, label_map(labels, spacing=spacing)


def _sitk(image, labels, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(image)
    lab = sitk.GetImageFromArray(labels)
    img.SetSpacing(spacing[::-1])
    lab.SetSpacing(spacing[::-1])
    stats = sitk.LabelStatisticsImageFilter()
    stats.Execute(img, lab)
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(lab)
    out = {}
    for v in stats.GetLabels():
        if v == 0:
            continue
        out[v] = (
            stats.GetCount(v), stats.GetMean(v), stats.GetSigma(v), stats.GetMinimum(v),
            stats.GetMaximum(v), stats.GetMedian(v), stats.GetBoundingBox(v),
            shape.GetCentroid(v),
        )  # fmt: skip
    return out


def run(*, quick: bool = False) -> dict:
    from m1vision.labels import label_stats

    shape = (40, 128, 128) if quick else (300, 512, 512)
    repeats = 1 if quick else 3
    image, labels = _data(shape)
    ours = label_stats(labels, image)
    theirs = _sitk(image, labels.pixels, labels.spacing)
    if len(ours) != 100 or sorted(theirs) != [r["label"] for r in ours]:
        raise RuntimeError("the label sets differ; the benchmark is void")
    for r in ours:
        count, mean = theirs[r["label"]][:2]
        if count != r["voxels"] or abs(mean - r["mean"]) > 1e-6 * max(1.0, abs(mean)):
            raise RuntimeError(f"label {r['label']}: counts or means differ; the benchmark is void")
    cases = [
        ("m1vision label_stats", lambda: label_stats(labels, image)),
        (
            "SimpleITK LabelStatistics + LabelShapeStatistics",
            lambda: _sitk(image, labels.pixels, labels.spacing),
        ),
    ]
    seconds = {name: median_seconds(fn, repeats, warmup=True) for name, fn in cases}
    ours_s = seconds["m1vision label_stats"]
    itk_s = seconds["SimpleITK LabelStatistics + LabelShapeStatistics"]
    rows = [[name, s, itk_s / s] for name, s in seconds.items()]
    return {
        "title": f"Label statistics ({shape[2]}x{shape[1]}x{shape[0]}, 100 labels)",
        "columns": ["implementation", "seconds (median)", "speed vs SimpleITK"],
        "rows": rows,
        "targets": [
            {
                "name": "label_stats at 512x512x300, 100 labels (s)",
                "value": ours_s,
                "target": "<= 1 s",
                "met": ours_s <= 1.0,
            },
            {
                "name": "label_stats vs SimpleITK (speed ratio)",
                "value": itk_s / ours_s,
                "target": ">= 1 (at least as fast)",
                "met": ours_s <= itk_s,
            },
        ],
        "notes": (
            f"Median of {repeats} runs after a warm-up, {len(os.sched_getaffinity(0))} CPU cores. "
            "m1vision also "
            "gives exact medians and percentiles (SimpleITK's median is a histogram estimate); "
            "SimpleITK's time includes converting the arrays to its images. Counts and means "
            "are checked equal first."
        ),
    }


if __name__ == "__main__":
    print_section(run(quick="--quick" in sys.argv))
