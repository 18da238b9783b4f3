"""Browser latency of the tri-planar explorer: key press on a slider -> new picture in the page.

Measured by the browser test (``tests/test_browser.py``, JupyterLab 4 and Jupyter Notebook 7 in
headless Chromium, kernel on the same machine), which ``make bench`` runs first with
``M1VISION_RECORD_LATENCY=1`` so that it writes ``benchmarks/results/browser_latency.json``;
this benchmark reports that file (it does not start a browser itself: the browser test owns
the server and the page). Each sample: the next slice number typed into the axial slider's
readout, from Enter to the new 512x512 axial picture decoded in the page; 20 moves per front
end.
Target: p95 <= 150 ms on CI's 2-core machine.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "browser_latency.json"
TARGET_MS = 150.0


def run(*, quick: bool = False) -> dict:
    title = "Tri-planar explorer in the browser: key press -> new picture (ms)"
    columns = ["front end", "p50 ms", "p95 ms", "moves"]
    if not RESULTS.is_file():
        return {
            "title": title,
            "columns": columns,
            "rows": [["(not measured)", "", "", ""]],
            "targets": [],
            "notes": (
                f"{RESULTS.name} is missing: run `.venv/bin/python -m pytest "
                "tests/test_browser.py -m browser -k triplanar` to measure."
            ),
        }
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    if results.get("schema") != "m1vision.browser_latency" or results.get("version") != 1:
        raise ValueError(
            f"{RESULTS} is not a version-1 m1vision.browser_latency file; run `make bench` "
            "(it re-runs the browser test with M1VISION_RECORD_LATENCY=1)."
        )
    machine = results["machine"]
    where = f"{machine['platform']}, {machine['cpu_count']} cores"
    rows, targets = [], []
    for name, figures in sorted(results["front_ends"].items()):
        rows.append([name, figures["p50_ms"], figures["p95_ms"], figures["n"]])
        targets.append(
            {
                "name": f"key press -> new 512x512 picture p95, {name}",
                "value": figures["p95_ms"],
                "target": f"<= {TARGET_MS:g} ms",
                "met": figures["p95_ms"] <= TARGET_MS,
            }
        )
    return {
        "title": title,
        "columns": columns,
        "rows": rows,
        "targets": targets,
        "notes": results["what"] + " (figures from the last browser test run, not re-measured).",
        "machine": where,
        "date": results["date"],
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
