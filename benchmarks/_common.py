"""What the benchmark scripts share: a median of timed calls, and printing a section.

Each ``bench_*.py`` puts the repository root on ``sys.path`` and imports this module as
``benchmarks._common``.
"""

from __future__ import annotations

import statistics
import time


def median_seconds(fn, n: int, *, warmup: bool = False) -> float:
    """The median wall time of ``n`` calls of ``fn`` (after one untimed call with ``warmup``)."""
    if warmup:
        fn()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_section(section: dict) -> None:
    """Print a benchmark section's rows, targets and notes (a script run on its own)."""
    for row in section["rows"]:
        print(row)
    for target in section.get("targets", []):
        print(target)
    if section.get("notes"):
        print(section["notes"])
