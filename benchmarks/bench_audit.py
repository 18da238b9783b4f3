"""How fast does ``m1vision.io.audit`` audit a collection? Against SimpleITK's characterize_data.

A messy collection of about 1000 files (:func:`m1vision.synthetic.write_messy_collection`:
CT and MR series of several spacings, sizes and orientations, a gap, a tilt, a copied series,
a text file, a truncated DICOM, a DICOMDIR; 128 x 128 slices) is written to a temporary
folder, then audited, each way the same number of times (median, after a warm-up run that
puts the files in the page cache):

* ``m1vision.io.audit`` (default workers, and ``workers=1``): headers, the series checks of
  ``read_series``, a pixel hash per image, one windowed middle slice per series;
* SimpleITK-Notebooks' characterize_data approach, per file: ``sitk.ImageFileReader`` with
  ``ReadImageInformation()`` (size, spacing, direction, SeriesInstanceUID), then ``Execute()``
  and ``sitk.Hash`` of the intensities for duplicates; files grouped per folder and series
  afterwards; on a process pool of the same size as the audit's (characterize_data runs a
  ``multiprocess`` pool too).

Both must agree on the counts (image files, series, duplicate groups, files that are not
readable images) before any time counts.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import median_seconds, print_section

_UID_TAG = "0020|000e"  # SeriesInstanceUID: grouping only, never reported


def _sitk_file(path: str):
    """characterize_data's per-file inspection: (folder, series key, hash, blank) or None."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
        _ = (reader.GetSize(), reader.GetSpacing(), reader.GetDirection())
        series = reader.GetMetaData(_UID_TAG) if reader.HasMetaDataKey(_UID_TAG) else ""
        image = reader.Execute()
    except RuntimeError:
        return None
    values = sitk.GetArrayViewFromImage(image)
    return str(Path(path).parent), series, sitk.Hash(image), bool(values.min() == values.max())


def _sitk_chunk(paths: list[str]):
    return [_sitk_file(p) for p in paths]


def characterize_data(root: Path, workers: int) -> dict:
    """The SimpleITK approach over every file under ``root``; returns its counts."""
    import SimpleITK as sitk

    from m1vision.batch._executors import _fork_context

    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # GDCM warns for every non-image file
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    size = max(1, len(paths) // (8 * workers))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    # The workers find the function by its module's import name: benchmarks/run.py loads this
    # file under another name, so refer to it through the importable one.
    from benchmarks.bench_audit import _sitk_chunk as work

    with ProcessPoolExecutor(workers, mp_context=_fork_context()) as pool:
        results = [r for chunk in pool.map(work, chunks) for r in chunk]
    images = [r for r in results if r is not None]
    hashes = defaultdict(int)
    for _, _, h, blank in images:
        if not blank:
            hashes[h] += 1
    return {
        "images": len(images),
        "series": len({(folder, series) for folder, series, _, _ in images}),
        "duplicate groups": sum(1 for n in hashes.values() if n > 1),
        "not images": len(results) - len(images),
    }


def ours(root: Path, workers: int | None) -> dict:
    from m1vision.io import audit

    report = audit(root, workers=workers, progress=False)
    return {
        "images": sum(r.files for r in report),
        "series": len(report.rows),
        "duplicate groups": len(report.duplicates),
        "not images": len(report.unreadable) + len(report.skipped),
    }


def run(*, quick: bool = False) -> dict:
    from m1vision.batch import available_cores
    from m1vision.synthetic import write_messy_collection

    per_series, size = (8, 32) if quick else (143, 128)
    repeats = 1 if quick else 3
    workers = available_cores()
    root = Path(tempfile.mkdtemp(prefix="m1vision-bench-audit-"))
    try:
        gen = write_messy_collection(root, files_per_series=per_series, size=size)
        counts = ours(root, None)  # warm-up of both, and the counts they must agree on
        theirs = characterize_data(root, workers)
        if counts != theirs:
            raise RuntimeError(f"the counts differ: audit {counts}, SimpleITK {theirs}")
        cases = [
            (f"m1vision.io.audit (workers={workers}, processes)", lambda: ours(root, None)),
            ("m1vision.io.audit (workers=1)", lambda: ours(root, 1)),
            (
                f"SimpleITK characterize_data approach ({workers} processes)",
                lambda: characterize_data(root, workers),
            ),
        ]
        seconds = {name: median_seconds(fn, repeats) for name, fn in cases}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    names = list(seconds)
    sitk_s = seconds[names[2]]
    rows = [[name, s, gen.n_files / s, sitk_s / s] for name, s in seconds.items()]
    ratio = sitk_s / seconds[names[0]]
    return {
        "title": f"Dataset audit ({gen.n_files} files, {counts['series']} series, "
        f"{size}x{size} slices)",
        "columns": ["auditor", "seconds (median)", "files/s", "speed vs SimpleITK"],
        "rows": rows,
        "targets": [
            {
                "name": "audit vs SimpleITK characterize_data approach (speed ratio)",
                "value": ratio,
                "target": ">= 1 (at least as fast)",
                "met": ratio >= 1.0,
            },
            {
                "name": "same counts (images, series, duplicate groups, not images)",
                "value": float(sum(counts[k] == theirs[k] for k in counts)),
                "target": f"{len(counts)} of {len(counts)} equal",
                "met": counts == theirs,  # checked above too: the run stops when they differ
            },
        ],
        "notes": (
            f"Median of {repeats} runs after a warm-up run (files in the page cache); "
            f"{workers} worker processes each (one per available core). Both found "
            f"{counts['images']} images in {counts['series']} series, "
            f"{counts['duplicate groups']} groups of duplicate images (blank images left "
            f"out by both) and {counts['not images']} files that are no readable image. The "
            "audit does more per file than the SimpleITK loop: the series checks of "
            "read_series (gaps, spacing, tilt), the transfer syntax's decodability, and one "
            "windowed middle slice per series for the contact sheet."
        ),
    }


if __name__ == "__main__":
    print_section(run(quick="--quick" in sys.argv))
