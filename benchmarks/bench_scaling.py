"""Scaling over cores: the naive loop against ``Pipeline.run`` with 1-16 threads and processes.

    python benchmarks/bench_scaling.py [--quick] [--images N] [--machine NAME] [--out FILE]

Generated, deterministic 8-bit color 512x512 PNGs (the ``rgb512`` phantoms of
``bench_preprocess``) in a temporary folder; the job is color -> gray -> Gaussian blur 5x5 ->
Canny 50/150 -> PNG:

* **naive**: the sequential loop a user writes first (``cv2.imread`` ... ``cv2.imwrite``,
  OpenCV's own default threads);
* **Pipeline.run, default**: no executor given: what users get (the report says which
  executor the default picked);
* **threads / processes**: ``Pipeline.run`` with a ``ThreadPoolExecutor`` or a
  ``ProcessPoolExecutor`` (fork on Linux) of 1, 2, 4, 8, 16 workers (up to the cores).

Every variant writes into a fresh folder; ``Pipeline.run`` outputs must equal the naive
loop's, file for file. "x naive" is the naive loop's wall time over the variant's, measured in
the same run; "% of linear" is img/s over ``workers`` times the single-thread rate (the naive
loop's CPU time with ``cv2.setNumThreads(1)``). Best of ``repeats`` wall times.

Needs only NumPy, OpenCV and tqdm besides m1vision (it runs on the 16-core accelerator
machine from a copy of the repository). Targets: default ``Pipeline.run`` >= 12x
the naive loop at 16 cores, >= 1.7x at 2 cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from m1vision.batch import available_cores, shutdown_workers  # noqa: E402
from m1vision.pipeline import Canny, GaussianBlur, Pipeline, ToGray  # noqa: E402

PIPELINE = Pipeline([ToGray(), GaussianBlur(ksize=5), Canny(low=50, high=150)])
TARGETS = {16: 12.0, 2: 1.7}  # cores -> default Pipeline.run / naive


def _preprocess_bench():
    spec = importlib.util.spec_from_file_location("bench_preprocess", HERE / "bench_preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine_name() -> str:
    """``$M1VISION_BENCH_MACHINE`` if set, else the CPU model and core count."""
    name = os.environ.get("M1VISION_BENCH_MACHINE")
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 1
    described = f"{model}, {cores} cores, {platform.system()} {platform.machine()}"
    return f"{name} ({described})" if name else described


def naive(files: list[Path], out: Path) -> None:
    """The loop a user writes first."""
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        img = cv2.imread(str(f))
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        edges = cv2.Canny(cv2.GaussianBlur(gray, (5, 5), 0), 50, 150)
        cv2.imwrite(str(out / f.name), edges)


def _same(a: Path, b: Path, names: list[str]) -> bool:
    return all(
        np.array_equal(
            cv2.imread(str(a / n), cv2.IMREAD_UNCHANGED),
            cv2.imread(str(b / n), cv2.IMREAD_UNCHANGED),
        )
        for n in names
    )


def _executor(kind: str, workers: int):
    if kind == "threads":
        return ThreadPoolExecutor(max_workers=workers)
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))


def measure(*, quick: bool = False, images: int | None = None, repeats: int | None = None) -> dict:
    """Measure every variant on this machine: ``{"machine", "cores", "images", "rows", ...}``."""
    cores = available_cores()
    n = images or (24 if quick else max(240, 60 * cores))
    size = 128 if quick else 512
    repeats = repeats or (1 if quick else 3)
    counts = [w for w in (1, 2, 4, 8, 16) if w <= cores] or [1]
    if quick:
        counts = counts[:2]
    default_threads = cv2.getNumThreads()
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="m1vision-bench-scaling-") as tmp:
        work = Path(tmp)
        files = _preprocess_bench().make_rgb_set(work / "in", n, size)
        names = [f.name for f in files]

        def timed(label, fn, *, at_least: int = 1) -> float:
            """Best wall time: runs of 4 s or more once, shorter ones up to `repeats` times."""
            walls = []
            while len(walls) < max(at_least, 1 if walls and walls[0] > 4 else repeats):
                out = work / f"{label}_{len(walls)}"
                t0 = time.perf_counter()
                fn(out)
                walls.append(time.perf_counter() - t0)
                if label != "naive" and not _same(work / "naive_0", out, names[:: max(1, n // 64)]):
                    raise RuntimeError(f"{label}: outputs differ from the naive loop's")
                if len(walls) > 1 or label != "naive":
                    shutil.rmtree(out)
            return min(walls)

        cv2.setNumThreads(default_threads)
        naive_wall = timed("naive", lambda out: naive(files, out), at_least=2)
        cv2.setNumThreads(1)
        c0 = time.process_time()
        naive(files, work / "single")
        single_ips = n / (time.process_time() - c0)
        cv2.setNumThreads(default_threads)

        def add(executor, workers, wall):
            ips = n / wall
            row = {
                "executor": executor,
                "workers": workers,
                "ips": round(ips, 1),
                "x_naive": round(naive_wall / wall, 2),
                "linear": round(ips / (workers * single_ips), 3),
            }
            rows.append(row)
            print(f"  {row}", flush=True)

        add("naive loop", 1, naive_wall)
        picked = {}

        def default_run(out):
            report = PIPELINE.run(work / "in", out, progress=False)
            picked.setdefault("first", report.executor)
            picked["executor"] = report.executor
            if report.counts["ok"] != n:
                raise RuntimeError(f"Pipeline.run default: {report!r}")

        shutdown_workers()  # the first run starts the default pool; later runs find it warm
        t0 = time.perf_counter()
        default_run(work / "default_first")
        first_wall = time.perf_counter() - t0
        shutil.rmtree(work / "default_first")
        add(f"Pipeline.run default, first run: {picked['first']}", cores, first_wall)
        default_wall = timed("default", default_run, at_least=2)
        add(f"Pipeline.run default: {picked['executor']}", cores, default_wall)
        shutdown_workers()
        for kind in ("threads", "processes"):
            for workers in counts:

                def given(out, kind=kind, workers=workers):
                    with _executor(kind, workers) as ex:
                        report = PIPELINE.run(work / "in", out, progress=False, executor=ex)
                    if report.counts["ok"] != n:
                        raise RuntimeError(f"Pipeline.run {kind} {workers}: {report!r}")

                add(f"Pipeline.run {kind}", workers, timed(f"{kind}{workers}", given))
    return {
        "schema": "m1vision.bench_scaling",
        "version": 1,
        "machine": machine_name(),
        "cores": cores,
        "images": n,
        "size": size,
        "repeats": repeats,
        "single_thread_ips": round(single_ips, 1),
        "default_x_naive": round(naive_wall / default_wall, 2),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": quick,
        "rows": rows,
    }


def _short(executor: str) -> str:
    """A table label: "default, first run (processes, pool started)", "threads"..."""
    label = executor.removeprefix("Pipeline.run ")
    if not label.startswith("default"):
        return label
    head, _, picked = label.partition(": ")
    kind = "processes" if picked.startswith("ProcessPool") else "threads"
    pool = ", pool started" if "started" in picked else ", warm pool" if "warm" in picked else ""
    return f"{head} ({kind}{pool})"


def stored() -> list[dict]:
    """Measurements kept in ``benchmarks/results/scaling/`` (one JSON per machine)."""
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((HERE / "results" / "scaling").glob("*.json"))
    ]


def _slug(m: dict) -> str:
    return f"{m['cores']}cores"


def run(*, quick: bool = False) -> dict:
    """The section of ``make bench``: this machine measured now, beside the stored others.

    A full run stores this machine's figures in ``benchmarks/results/scaling/<N>cores.json``
    (the 16-core ones come from the accelerator machine: ``python benchmarks/bench_scaling.py
    --out ...`` there). Rows of every stored machine are shown, each with its machine. With
    ``M1VISION_BENCH_REUSE=1`` this machine's stored figures are shown again, not re-measured
    (to re-render the table after adding another machine's file).
    """
    cores = available_cores()
    reuse = HERE / "results" / "scaling" / f"{cores}cores.json"
    if os.environ.get("M1VISION_BENCH_REUSE") == "1" and reuse.exists() and not quick:
        here = json.loads(reuse.read_text(encoding="utf-8"))  # re-render only
    else:
        here = measure(quick=quick)
    if not quick:
        folder = HERE / "results" / "scaling"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{_slug(here)}.json").write_text(json.dumps(here, indent=2) + "\n")
    machines = {_slug(m): m for m in stored()}
    machines[_slug(here)] = here
    ordered = sorted(machines.values(), key=lambda m: m["cores"])
    rows, targets, loads = [], [], []
    for m in ordered:
        if "load_average" in m:
            before, after = m["load_average"]
            loads.append(f"{m['cores']} cores {before:.1f}/{after:.1f}")
        for r in m["rows"]:
            rows.append(
                [
                    m["machine"].split(" (")[0],
                    m["cores"],
                    _short(r["executor"]),
                    r["workers"],
                    r["ips"],
                    r["x_naive"],
                    f"{r['linear']:.0%}",
                ]
            )
        target = TARGETS.get(m["cores"])
        first = [
            r["x_naive"]
            for r in m["rows"]
            if r["executor"].startswith("Pipeline.run default, first")
        ]
        if target is not None:
            targets.append(
                {
                    "name": f"default Pipeline.run / naive loop at {m['cores']} cores "
                    f"({m['date']}, {m['images']} images; first run of the process: "
                    f"{first[0] if first else '-'}x)"
                    + (" (quick sizes: not a figure)" if m.get("quick") else ""),
                    "value": m["default_x_naive"],
                    "target": f">= {target}",
                    "met": bool(m["default_x_naive"] >= target),
                }
            )
    return {
        "title": "Scaling over cores: Pipeline.run vs the naive loop",
        "columns": ["machine", "cores", "executor", "workers", "img/s", "x naive", "% of linear"],
        "rows": rows,
        "targets": targets,
        "notes": (
            "Generated 8-bit color 512x512 PNGs (60 per core, at least 240); color -> gray -> "
            "GaussianBlur 5x5 -> Canny 50/150 -> PNG. Naive: sequential cv2.imread ... "
            "cv2.imwrite with OpenCV's default threads. Pipeline.run: the same steps (outputs "
            "checked equal to the naive loop's on a sample of 64 files), reading with "
            "m1vision.io.read_any, writing atomically, keeping the resume manifest and the "
            "JSON report. 'default' is no executor given (the row names what the default "
            "picked); its first run in a process starts the worker pool, later runs find it "
            "warm (the target row is the warm one; the first run is in the table). The "
            "threads/processes rows get a fresh executor per run (start-up included). % of "
            "linear: img/s over workers x the single-thread rate (the naive loop's CPU time "
            "with cv2.setNumThreads(1)). Ratios come from one run on one machine; the machines "
            "are measured separately (the 16-core rows on the accelerator machine, with "
            "`python benchmarks/bench_scaling.py --out benchmarks/results/scaling/16cores.json`). "
            f"Load average before/after: {', '.join(loads) or 'not recorded'} (a load above 0 "
            "on the 2-core machine means other work shared its cores during the run)."
        ),
        "details": ordered,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--images", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--out", type=Path, help="write this machine's figures as JSON here")
    args = parser.parse_args(argv)
    result = measure(quick=args.quick, images=args.images, repeats=args.repeats)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
