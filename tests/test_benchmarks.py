"""Every benchmark still runs (at its quick sizes) and returns a well-formed section.

Speed is never asserted here: `make bench` measures it. These runs check that the benchmark
code works and that what it compares is correct (the benchmarks verify their own outputs).
"""

from __future__ import annotations

import importlib.util
import numbers
from pathlib import Path

import pytest
from repo_paths import REPO

BENCHMARKS = sorted((REPO / "benchmarks").glob("bench_*.py"))


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_suite_covers_every_measured_goal():
    names = {p.stem.removeprefix("bench_") for p in BENCHMARKS}
    assert names >= {"doctor", "preprocess", "explorer", "inference", "labels", "overlay"}


@pytest.mark.slow
@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_runs_at_quick_sizes(path):
    section = load(path).run(quick=True)
    assert isinstance(section["title"], str)
    assert section["title"]
    width = len(section["columns"])
    assert section["rows"]
    assert all(len(row) == width for row in section["rows"])
    for target in section.get("targets", []):
        assert {"name", "value", "target", "met"} <= set(target)
        assert isinstance(target["met"], bool)
        assert isinstance(target["value"], numbers.Real)


def _run_py():
    return load(REPO / "benchmarks" / "run.py")


def test_sections_measured_elsewhere_keep_their_machine_and_date(tmp_path):
    import json

    run = _run_py()
    assert run.main(["--only", "inference_gpu", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    stored = json.loads(load(BENCHMARKS[0].parent / "bench_inference_gpu.py").RESULTS.read_text())
    (section,) = results["sections"]
    assert section["date"] == stored["run"]
    assert stored["machine"]["gpu"] in section["machine"]
    assert stored["machine"]["gpu"] not in results["machine"]["platform"]
    text = (tmp_path / "results.md").read_text()
    assert f"Machine: {section['machine']}. Measured: {stored['run']}." in text


def test_merge_keeps_other_sections_and_names_where_they_ran(tmp_path):
    import json

    run = _run_py()
    old_machine = {"platform": "Elsewhere-1.0", "cpu_count": 7, "python": "3.11.0"}
    stored = {
        "date": "2020-01-02 03:04 UTC",
        "quick": False,
        "machine": old_machine,
        "sections": [{"name": "old", "title": "Old", "columns": ["a"], "rows": [[1]]}],
    }
    (tmp_path / "results.json").write_text(json.dumps(stored))
    assert run.main(["--only", "inference_gpu", "--merge", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    sections = {s["name"]: s for s in results["sections"]}
    assert list(sections) == ["old", "inference_gpu"]
    assert sections["old"]["machine"] == "Elsewhere-1.0, 7 cores, Python 3.11.0"
    assert sections["old"]["date"] == "2020-01-02 03:04 UTC"
    assert results["merged"]["sections"] == ["inference_gpu"]


# The figures have one home: results.json, with the GPU files it reports. The page is written
# from it, never by hand.

STORED = REPO / "benchmarks" / "results" / "results.json"


def _stored_sections() -> dict:
    import json

    return {s["name"]: s for s in json.loads(STORED.read_text(encoding="utf-8"))["sections"]}


def test_the_benchmarks_page_is_what_run_py_writes_from_the_stored_results(tmp_path):
    import json

    run = _run_py()
    page = REPO / "docs" / "benchmarks.md"
    copy = tmp_path / "benchmarks.md"
    copy.write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    run.update_page(copy, run.to_markdown(json.loads(STORED.read_text(encoding="utf-8"))))
    assert copy.read_text(encoding="utf-8") == page.read_text(encoding="utf-8"), (
        "docs/benchmarks.md's tables differ from benchmarks/results/results.json: do not edit "
        "them by hand; re-run the benchmark (python benchmarks/run.py --only NAME --merge "
        "--page docs/benchmarks.md) or make bench."
    )


def test_the_stored_results_report_the_stored_gpu_files():
    sections = _stored_sections()
    gpu = load(REPO / "benchmarks" / "bench_inference_gpu.py").run()
    assert sections["inference_gpu"]["rows"] == gpu["rows"], (
        "results.json's GPU inference section is not gpu_inference_h200.json's: "
        "python benchmarks/run.py --only inference_gpu --merge --page docs/benchmarks.md"
    )
    segment_rows = load(REPO / "benchmarks" / "bench_segment.py")._gpu_rows()
    assert segment_rows
    assert all(row in sections["segment"]["rows"] for row in segment_rows), (
        "results.json's segmentation section does not hold gpu_segment.json's rows: "
        "python benchmarks/run.py --only segment --merge --page docs/benchmarks.md"
    )
