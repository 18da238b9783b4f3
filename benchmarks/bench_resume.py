"""What content identity costs a batch: first runs and resumes against their peers.

    python benchmarks/bench_resume.py [--quick]

Two batches, generated deterministically in a temporary folder, through ``Pipeline.run``
with its default executor:

* **PNG batch**: 1000 8-bit 512x512 PNGs (the ``rgb512`` phantoms of ``bench_preprocess``),
  gray -> Gaussian blur 5x5 -> Canny 50/150 -> PNG (the job of ``bench_scaling``);
* **series**: one 300-slice 512x512 CT series folder (:func:`m1vision.synthetic.write_ct_series`),
  one input, Window -> Gaussian blur -> Canny per slice -> one ``.nii.gz``.

Measured, in one process, interleaved, best of ``repeats``:

* **first run, content identity** (this m1vision: every input and output stat'ed and hashed);
* **first run, stat only**: the same run with the engine's identity step replaced by a stat
  (size and mtime, as the version 1 manifest recorded; the peer the first run is held to);
* **resume, unchanged** (after a first resume has settled the stats the run left "racily
  clean"): the folder re-run with nothing to do;
* **resume right after the run**: the same, at once, when the files written in the last
  :data:`m1vision._hashing.RACY_WINDOW_NS` are hashed again;
* **plain listing + stats**: one ``os.scandir`` per folder of the inputs with each file's
  ``DirEntry.stat()``, and one ``os.stat`` of every output: the least any resume that looks at
  the files can do (no manifest, no report, no Python per item beyond the stat).

Resumes are timed by wall clock and by the process' CPU time (``time.process_time``: robust to
other work on a shared machine), medians of 9, interleaved with the listing.

Targets: resume of the unchanged 1000-file folder within 1.2x of the plain listing
plus stats; a first run within 3% of the stat-only run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from benchmarks._common import print_section  # noqa: E402
from m1vision import _hashing  # noqa: E402
from m1vision.batch import _engine, shutdown_workers  # noqa: E402
from m1vision.pipeline import Canny, GaussianBlur, Pipeline, ToGray, Window  # noqa: E402

PNG_JOB = Pipeline([ToGray(), GaussianBlur(ksize=5), Canny(low=50, high=150)])
SERIES_JOB = Pipeline(
    [Window(center=40, width=400), GaussianBlur(ksize=3), Canny(low=50, high=150)]
)
TARGET_RESUME = 1.2
TARGET_FIRST = 1.03


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stat_only_identify(path, cached=None):
    """The identity the version 1 manifest recorded: size and mtime (a folder: total size,
    newest mtime), no read of the bytes."""
    del cached
    path = Path(path)
    files = [p for _, p in _hashing.folder_files(path)] if path.is_dir() else [path]
    stats = [os.stat(p) for p in files]
    size = sum(s.st_size for s in stats)
    return {"size": size, "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}, 0


def _no_output_record(path, cached=None, st=None):
    del path, cached, st
    return None, False


class _StatOnly:
    """The engine's identity step replaced by a stat, for the length of a ``with`` block."""

    def __enter__(self):
        shutdown_workers()  # forked workers must see the replacement
        self.saved = (_engine.identify, _engine.file_record)
        _engine.identify, _engine.file_record = _stat_only_identify, _no_output_record

    def __exit__(self, *exc):
        _engine.identify, _engine.file_record = self.saved
        shutdown_workers()


def _listing(src: Path, outputs: list[Path]) -> None:
    """The peer of a resume: one ``os.scandir`` per folder of the inputs with the stat of each
    file (``DirEntry.stat``), and one ``os.stat`` of every output."""
    stack = [str(src)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat()
    for out in outputs:
        os.stat(out)


def _first_runs(job, src: Path, work: Path, label: str, repeats: int) -> dict:
    walls: dict[str, list[float]] = {"content": [], "stat": []}
    for r in range(repeats):
        for variant in ("stat", "content"):  # interleaved: drifts of a shared machine cancel
            out = work / f"{label}-{variant}-{r}"
            if variant == "stat":
                with _StatOnly():
                    t0 = time.perf_counter()
                    report = job.run(src, out, progress=False)
                    walls[variant].append(time.perf_counter() - t0)
            else:
                shutdown_workers()
                t0 = time.perf_counter()
                report = job.run(src, out, progress=False)
                walls[variant].append(time.perf_counter() - t0)
            if report.counts["failed"] or report.counts["skipped"]:
                raise RuntimeError(f"{label} {variant}: {report!r}")
            if r < repeats - 1 or variant == "stat":
                shutil.rmtree(out)
    return {k: min(v) for k, v in walls.items()} | {"out": work / f"{label}-content-{repeats - 1}"}


class _Timed:
    """Time the engine's own resume step (manifest read + decide) inside a run."""

    def __enter__(self):
        self.seconds = 0.0
        self.saved = (_engine.decide, _engine.Manifest.__dict__["load"])
        load, decide = _engine.Manifest.load, _engine.decide

        def timed(fn):
            def wrapper(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - t0

            return wrapper

        _engine.decide = timed(decide)
        _engine.Manifest.load = staticmethod(timed(load))
        return self

    def __exit__(self, *exc):
        _engine.decide = self.saved[0]
        _engine.Manifest.load = self.saved[1]


def _resumes(job, src: Path, out: Path, n_inputs: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    report = job.run(src, out, progress=False)  # at once: the racily clean files again
    right_after = time.perf_counter() - t0
    if report.reasons != {"unchanged": n_inputs}:
        raise RuntimeError(f"resume: {report!r}")
    time.sleep(_hashing.RACY_WINDOW_NS / 1e9 + 0.1)  # what a later session sees
    job.run(src, out, progress=False)  # settles the stats hashed again above
    outputs = [Path(item.output) for item in report.items]
    resume, listing, deciding, resume_cpu, listing_cpu = [], [], [], [], []
    for _ in range(max(9, repeats)):  # interleaved; medians
        with _Timed() as step:
            t0, c0 = time.perf_counter(), time.process_time()
            again = job.run(src, out, progress=False)
            resume.append(time.perf_counter() - t0)
            resume_cpu.append(time.process_time() - c0)
        deciding.append(step.seconds)
        t0, c0 = time.perf_counter(), time.process_time()
        _listing(src, outputs)
        listing.append(time.perf_counter() - t0)
        listing_cpu.append(time.process_time() - c0)
        if again.reasons != {"unchanged": n_inputs}:
            raise RuntimeError(f"resume: {again!r}")
    return {
        "right_after": right_after,
        "resume": statistics.median(resume),
        "deciding": statistics.median(deciding),
        "listing": statistics.median(listing),
        "resume_cpu": statistics.median(resume_cpu),
        "listing_cpu": statistics.median(listing_cpu),
    }


def _cpu_share(job, files: list[Path], out: Path) -> dict:
    """CPU per image, one thread: the job (read, steps, atomic write) against the identity
    (stat + SHA-256 of the input and of the output). Robust to a busy machine, unlike walls."""
    import cv2

    from m1vision.io import read_any, write_image

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    out.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.process_time()
        for f in files:
            write_image(out / f.name, job(read_any(f).pixels), overwrite=True,
                        png_compression=None, fsync=False)  # fmt: skip
        job_cpu = time.process_time() - t0
        t0 = time.process_time()
        for f in files:
            _hashing.identify(f)
            _hashing.file_record(out / f.name)
        identity_cpu = time.process_time() - t0
    finally:
        cv2.setNumThreads(threads)
    return {"job": job_cpu / len(files), "identity": identity_cpu / len(files)}


def run(*, quick: bool = False) -> dict:
    from m1vision.synthetic import write_ct_series

    n = 40 if quick else 1000
    size = 128 if quick else 512
    shape = (20, 64, 64) if quick else (300, 512, 512)
    repeats = 1 if quick else 2
    rows, figures = [], {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="m1vision-bench-resume-") as tmp:
        work = Path(tmp)
        pngs = _load("bench_preprocess").make_rgb_set(work / "png", n, size)
        cpu = _cpu_share(PNG_JOB, pngs[: min(n, 100)], work / "cpu")
        write_ct_series(work / "scans" / "ct", shape=shape, spacing=(1.0, 0.7, 0.7))
        # warm-up: imports and first-use costs land on no timed run
        write_ct_series(work / "warm" / "ct", shape=(4, 32, 32))
        SERIES_JOB.run(work / "warm", work / "warm-series", progress=False)
        PNG_JOB.run(pngs[:4], work / "warm-png", progress=False)
        cases = [
            (f"{n} PNGs {size}x{size}", PNG_JOB, work / "png", n),
            (f"series {shape[0]} slices {shape[2]}x{shape[1]}", SERIES_JOB, work / "scans", 1),
        ]
        mean_png = sum(p.stat().st_size for p in pngs) / len(pngs) / 1024
        rows += [
            [cases[0][0], f"CPU per image: job (read {mean_png:.0f} KiB, steps, write)",
             cpu["job"], 1.0],
            [cases[0][0], "CPU per image: identity (SHA-256 of input and output)",
             cpu["identity"], cpu["identity"] / cpu["job"]],
        ]  # fmt: skip
        for label, job, src, n_inputs in cases:
            # the series' runs are long: once each (its ratio is the noisier one)
            runs = repeats if n_inputs > 1 else 1
            first = _first_runs(job, src, work, label.split()[0], runs)
            res = _resumes(job, src, first["out"], n_inputs, repeats)
            figures[label] = (first, res)
            content, stat, listing = first["content"], first["stat"], res["listing"]
            after = res["right_after"]
            rows += [
                [label, "first run, content identity", content, content / stat],
                [label, "first run, stat only (v1 manifest)", stat, 1.0],
                [label, "resume right after the run", after, after / listing],
                [label, "resume, unchanged", res["resume"], res["resume"] / listing],
                [
                    label,
                    "  of which manifest read + decide",
                    res["deciding"],
                    res["deciding"] / listing,
                ],
                [label, "plain listing + stats", listing, 1.0],
                [
                    label,
                    "resume, unchanged: CPU time",
                    res["resume_cpu"],
                    res["resume_cpu"] / res["listing_cpu"],
                ],
                [label, "plain listing + stats: CPU time", res["listing_cpu"], 1.0],
            ]
    png_first, png_res = figures[cases[0][0]]
    ser_first, _ = figures[cases[1][0]]
    resume_ratio = png_res["resume"] / png_res["listing"]
    resume_cpu_ratio = png_res["resume_cpu"] / png_res["listing_cpu"]
    decide_ratio = png_res["deciding"] / png_res["listing"]
    first_ratio = png_first["content"] / png_first["stat"]
    series_ratio = ser_first["content"] / ser_first["stat"]
    load_after = os.getloadavg()[0]
    busy = (
        " (above the core count: other work shared the cores, and ratios within a few % are "
        "within the noise)"
        if max(load_before, load_after) > (os.cpu_count() or 1)
        else ""
    )
    return {
        "title": "Resume: content identity against a listing and a stat-only first run",
        "columns": ["batch", "run", "seconds", "ratio to its peer"],
        "rows": rows,
        "targets": [
            {
                "name": f"resume of {n} unchanged PNGs / plain listing + stats",
                "value": resume_ratio,
                "target": f"<= {TARGET_RESUME}",
                "met": resume_ratio <= TARGET_RESUME,
            },
            {
                "name": f"resume of {n} unchanged PNGs / plain listing + stats, CPU time",
                "value": resume_cpu_ratio,
                "target": f"<= {TARGET_RESUME}",
                "met": resume_cpu_ratio <= TARGET_RESUME,
            },
            {
                "name": f"resume of {n} unchanged PNGs, manifest read + decide / listing + stats",
                "value": decide_ratio,
                "target": f"<= {TARGET_RESUME}",
                "met": decide_ratio <= TARGET_RESUME,
            },
            {
                "name": f"first run of {n} PNGs, content / stat only",
                "value": first_ratio,
                "target": f"<= {TARGET_FIRST}",
                "met": first_ratio <= TARGET_FIRST,
            },
            {
                "name": "CPU per image of identity / of the job (PNG batch, one thread)",
                "value": cpu["identity"] / cpu["job"],
                "target": f"<= {TARGET_FIRST - 1:.2f}",
                "met": cpu["identity"] / cpu["job"] <= TARGET_FIRST - 1,
            },
            {
                "name": f"first run of a {shape[0]}-slice series, content / stat only",
                "value": series_ratio,
                "target": f"<= {TARGET_FIRST}",
                "met": series_ratio <= TARGET_FIRST,
            },
        ],
        "notes": (
            f"Pipeline.run with its default executor on {os.cpu_count()} cores; first runs best "
            f"of {repeats}, stat-only and content runs interleaved, each into a new folder; "
            "resumes median of 9 after the stats settled (the ratio column: against the "
            "listing of the same files, median of 9, interleaved; wall and CPU time). The resume "
            "includes everything Pipeline.run does: collecting (one scandir walk, kinds reused "
            "for files whose stat is recorded), planning, reading the manifest, stat of every "
            "input and output, writing the report; the listing is scandir + a stat per input "
            "and an os.stat per output. 'Stat only' replaces the "
            "engine's identity step by the size + mtime stat the version 1 manifest kept (no "
            "output record): the peer, not a mode m1vision offers. Load average before/after: "
            f"{load_before:.1f}/{load_after:.1f}{busy}."
        ),
    }


if __name__ == "__main__":
    print_section(run(quick="--quick" in sys.argv))
