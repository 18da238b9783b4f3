"""Run every benchmark in this folder in one process and write one JSON + one Markdown table.

    python benchmarks/run.py [--out benchmarks/results] [--quick] [--only NAME ...] [--merge]

Each ``benchmarks/bench_*.py`` defines ``run(*, quick: bool = False) -> dict`` returning::

    {"title": str,                      # section heading
     "columns": [str, ...],             # table header
     "rows": [[value, ...], ...],       # table body (numbers or text)
     "targets": [{"name": str, "value": float, "target": str, "met": bool}, ...],
     "notes": str,                      # optional: how it was measured
     "machine": str, "date": str}       # optional: where and when, if not here and now

Every section in ``results.json`` carries its ``machine`` and ``date``: a benchmark measured in
this run gets this machine and this run's date; one measured elsewhere (the GPU figures of the
accelerator machine, the browser test's latencies) reads its stored file and says where and when
it was measured; a table with a ``machine`` column names the machine in each row.

Ratios are measured within one run on one machine, never against stored numbers. ``--quick``
uses small sizes (used by the tests to check every benchmark still runs, not for figures).
``--only NAME --merge`` re-runs some benchmarks and keeps the other sections of the stored
results (each section names its own machine and date where they differ).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from m1vision._atomic import atomic_write_json, atomic_write_text  # noqa: E402

PAGE_START = "<!-- benchmarks:start (written by make bench) -->"
PAGE_END = "<!-- benchmarks:end -->"


def update_page(page: Path, table: str) -> None:
    """Replace the text between the two marker lines of ``page`` with ``table``."""
    text = page.read_text(encoding="utf-8")
    if PAGE_START not in text or PAGE_END not in text:
        raise SystemExit(f"{page}: the markers {PAGE_START!r} / {PAGE_END!r} are missing")
    head, rest = text.split(PAGE_START, 1)
    _, tail = rest.split(PAGE_END, 1)
    body = table.split("\n", 2)[2].replace("\n## ", "\n### ")  # drop the H1, nest the sections
    atomic_write_text(page, f"{head}{PAGE_START}\n{body.strip()}\n{PAGE_END}{tail}", overwrite=True)


def discover(only: list[str] | None = None) -> list[Path]:
    paths = sorted(HERE.glob("bench_*.py"))
    if only:
        paths = [p for p in paths if p.stem.removeprefix("bench_") in only or p.stem in only]
    return paths


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        # the cores this process may use (a run pinned with taskset names its share)
        "cpu_count": (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),
        "python": platform.python_version(),
    }
    try:
        import cv2
        import numpy

        info["numpy"] = numpy.__version__
        info["opencv"] = cv2.__version__
    except ImportError:
        pass
    return info


def describe(info: dict) -> str:
    """One line naming a machine from :func:`machine`'s dict."""
    return f"{info['platform']}, {info['cpu_count']} cores, Python {info['python']}" + (
        f", NumPy {info['numpy']}, OpenCV {info['opencv']}" if "numpy" in info else ""
    )


def stamp(section: dict, info: dict, date: str) -> dict:
    """Give ``section`` its ``machine`` and ``date`` where it does not name them itself."""
    if "machine" not in section:
        if "machine" in section.get("columns", []):  # rows from several machines
            each = [d for d in section.get("details", []) if isinstance(d, dict)]
            dated = bool(each) and all("machine" in d and "date" in d for d in each)
            section["machine"] = "named in each row" + (
                " (" + "; ".join(f"{d['machine']}: {d['date']}" for d in each) + ")"
                if dated
                else ""
            )
            if dated:  # the latest of its machines' runs
                section.setdefault("date", max(d["date"] for d in each))
        else:
            section["machine"] = describe(info)
    section.setdefault("date", date)
    return section


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def to_markdown(results: dict) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"This run: {describe(results['machine'])}, {results['date']}"
        f"{' (quick sizes)' if results['quick'] else ''}."
        + (
            f" Re-run on {results['merged']['date']}: {', '.join(results['merged']['sections'])}."
            if results.get("merged")
            else ""
        ),
        "",
    ]
    for section in results["sections"]:
        lines += [f"## {section['title']}", ""]
        if section.get("machine"):
            lines += [f"Machine: {section['machine']}. Measured: {section.get('date', '?')}.", ""]
        if section.get("error"):
            lines += [f"Failed: `{section['error']}`", ""]
            continue
        cols = section["columns"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in section["rows"]]
        lines.append("")
        for t in section.get("targets", []):
            mark = "met" if t["met"] else "NOT met"
            lines.append(f"- {t['name']}: {_cell(t['value'])} (target {t['target']}): {mark}")
        if section.get("notes"):
            lines += ["", section["notes"]]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run m1vision's benchmarks.")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", nargs="*", help="benchmark names (e.g. preprocess)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the stored sections of the benchmarks not run (with --only)",
    )
    parser.add_argument(
        "--page",
        type=Path,
        help="also put the tables into this page (docs/benchmarks.md), between the lines "
        f"{PAGE_START!r} and {PAGE_END!r}",
    )
    args = parser.parse_args(argv)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": args.quick,
        "machine": machine(),
        "sections": [],
    }
    failed = False
    for path in discover(args.only):
        name = path.stem.removeprefix("bench_")
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            section = load(path).run(quick=args.quick)
        except Exception as exc:  # one failing benchmark does not hide the others
            failed = True
            section = {"title": name, "error": f"{type(exc).__name__}: {exc}"}
            print(f"   FAILED: {section['error']}", flush=True)
        section["name"] = name
        section["seconds"] = round(time.perf_counter() - start, 2)
        stamp(section, results["machine"], results["date"])
        results["sections"].append(section)
        print(to_markdown({**results, "sections": [section]}).split("\n", 4)[-1], flush=True)
    suffix = "-quick" if args.quick else ""
    stored_path = args.out / f"results{suffix}.json"
    if args.merge and stored_path.exists():
        import json

        stored = json.loads(stored_path.read_text(encoding="utf-8"))
        rerun_before = set(stored.get("merged", {}).get("sections", []))
        for s in stored["sections"]:  # files written before sections carried their own
            date = stored["merged"]["date"] if s["name"] in rerun_before else stored["date"]
            stamp(s, stored["machine"], date)
        fresh = {s["name"]: s for s in results["sections"]}
        merged = [fresh.pop(s["name"], s) for s in stored["sections"]]
        results["sections"] = merged + list(fresh.values())
        results["machine"], results["date"] = stored["machine"], stored["date"]
        rerun = {p.stem.removeprefix("bench_") for p in discover(args.only)}
        results["merged"] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "sections": sorted(rerun | rerun_before),
        }
    atomic_write_json(args.out / f"results{suffix}.json", results, overwrite=True)
    atomic_write_text(args.out / f"results{suffix}.md", to_markdown(results), overwrite=True)
    print(f"wrote {args.out / f'results{suffix}.json'} and .md")
    if args.page is not None and not args.quick and (args.merge or not args.only):
        update_page(args.page, to_markdown(results))
        print(f"updated the tables of {args.page}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
