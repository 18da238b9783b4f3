"""How fast does ``read_series`` load a CT series? Against a plain pydicom loop and SimpleITK.

A 512 x 512 x 300 CT series (int16, 150 MiB of files, :func:`m1vision.synthetic.write_ct_series`)
is written to a temporary folder with shuffled, extensionless names, then read, each reader
the same number of times (median of 3, the files in the page cache after a first warm-up read):

* ``m1vision.io.read_series`` (default threads, and ``workers=1``): finds files by content,
  groups, sorts by position, checks everything, applies each slice's modality LUT, lays the
  volume out like ``read_nifti``;
* a plain pydicom loop, as users write it: ``dcmread`` every file, sort by
  ImagePositionPatient z, ``pixel_array * RescaleSlope + RescaleIntercept``, ``np.stack`` to
  float32 (no checks at all);
* SimpleITK's ``ImageSeriesReader`` (GDCM sorts the files, float32 output, ``GetArrayFromImage``).

All three volumes are checked equal before any time counts.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import median_seconds, print_section


def _plain_pydicom(folder: Path) -> np.ndarray:
    import pydicom

    files = [p for p in folder.iterdir() if p.is_file()]
    slices = [pydicom.dcmread(f) for f in files]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack(
        [
            ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
            for ds in slices
        ]
    )


def _simpleitk(folder: Path) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return sitk.GetArrayFromImage(reader.Execute())


def run(*, quick: bool = False) -> dict:
    from m1vision.io import read_series
    from m1vision.synthetic import write_ct_series

    shape = (40, 128, 128) if quick else (300, 512, 512)
    repeats = 1 if quick else 3
    folder = Path(tempfile.mkdtemp(prefix="m1vision-bench-series-"))
    try:
        write_ct_series(folder, variant="shuffled", shape=shape, spacing=(1.0, 0.7, 0.7))
        # The generated axial series is already in read_nifti's layout, so all three agree
        # voxel for voxel (SimpleITK's and the plain loop's z runs inferior to superior too).
        ours = read_series(folder, progress=False).pixels
        # The plain loop and SimpleITK keep the stored row/column order (the same here).
        plain = _plain_pydicom(folder)
        itk = _simpleitk(folder)
        if not (np.array_equal(ours, plain) and np.array_equal(ours, itk)):
            raise RuntimeError("the three readers disagree; the benchmark is void")
        del ours, plain, itk
        cases = [
            ("m1vision read_series (threads)", lambda: read_series(folder, progress=False)),
            (
                "m1vision read_series (workers=1)",
                lambda: read_series(folder, workers=1, progress=False),
            ),
            ("plain pydicom loop (no checks)", lambda: _plain_pydicom(folder)),
            ("SimpleITK ImageSeriesReader", lambda: _simpleitk(folder)),
        ]
        seconds = {name: median_seconds(fn, repeats) for name, fn in cases}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    plain_s = seconds["plain pydicom loop (no checks)"]
    mb = shape[0] * shape[1] * shape[2] * 2 / 2**20
    rows = [[name, s, mb / s, plain_s / s] for name, s in seconds.items()]
    ours_s = seconds["m1vision read_series (threads)"]
    return {
        "title": f"DICOM series read ({shape[2]}x{shape[1]}x{shape[0]} CT, {len(rows)} readers)",
        "columns": ["reader", "seconds (median)", "MiB/s of files", "speed vs plain loop"],
        "rows": rows,
        "targets": [
            {
                "name": "read_series vs plain pydicom loop (speed ratio)",
                "value": plain_s / ours_s,
                "target": ">= 1 (at least as fast)",
                "met": ours_s <= plain_s,
            }
        ],
        "notes": (
            f"Median of {repeats} reads of {shape[0]} files with shuffled extensionless names, "
            f"after a warm-up read (files in the page cache); {os.cpu_count()} CPU cores, "
            "read_series' threads: min(4, cores). The three volumes are checked equal first. "
            "read_series does more than the loop: content-based file finding, grouping, all "
            "geometry checks, per-slice LUT, reorientation; the loop does no checks."
        ),
    }


if __name__ == "__main__":
    print_section(run(quick="--quick" in sys.argv))
