"""Every benchmark still runs (at its quick sizes) and returns a well-formed section.

Speed is never asserted here: `make bench` measures it. These runs check that the benchmark
code works and that what it compares is correct (the benchmarks verify their own outputs).
"""

from __future__ import annotations

import importlib.util
import numbers
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("bench_*.py"))


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_suite_covers_every_issue_figure():
    names = {p.stem.removeprefix("bench_") for p in BENCHMARKS}
    assert names >= {"doctor", "preprocess", "explorer", "inference"}


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
