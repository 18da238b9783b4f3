"""How long do ``import m1vision`` and the doctor take? (fresh processes, wall-clock)

Each figure is measured in a new Python process, as a user meets it: ``import m1vision``
(median of 5; the time inside the process, and the whole process including interpreter
start-up), ``python -m m1vision doctor --no-tensorflow --json`` (median of 3), the doctor
with TensorFlow (once: import, device listing and the self-test), and the TensorFlow
self-test alone after TensorFlow is imported.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import print_section  # noqa: E402

IMPORT_CODE = (
    "import time; t = time.perf_counter(); import m1vision; print(time.perf_counter() - t)"
)
SELFTEST_CODE = (
    "import json, time; t = time.perf_counter(); import tensorflow; "
    "imported = time.perf_counter() - t; from m1vision.doctor import tensorflow_selftest; "
    "t = time.perf_counter(); r = tensorflow_selftest('/CPU:0'); "
    "print(json.dumps({'import': imported, 'selftest': time.perf_counter() - t, 'ok': r['ok'], "
    "'diff': r['max_abs_diff']}))"
)
ENV_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
        env={**os.environ, **ENV_QUIET},
    )
    return time.perf_counter() - start, proc


def _median_runs(args: list[str], n: int) -> tuple[float, list[subprocess.CompletedProcess]]:
    times, procs = [], []
    for _ in range(n):
        seconds, proc = _run(args)
        if proc.returncode not in (0, 1):  # 1 = a check failed, still a full report
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr[-500:]}")
        times.append(seconds)
        procs.append(proc)
    return statistics.median(times), procs


def run(*, quick: bool = False) -> dict:
    py = sys.executable
    rows = []
    n_import = 3 if quick else 5
    wall, procs = _median_runs([py, "-c", IMPORT_CODE], n_import)
    inside = statistics.median(float(p.stdout.strip()) for p in procs)
    rows.append([f"import m1vision (inside the process, median of {n_import})", inside])
    rows.append([f"python -c 'import m1vision' (whole process, median of {n_import})", wall])

    n_doctor = 1 if quick else 3
    doctor_wall, procs = _median_runs(
        [py, "-m", "m1vision", "doctor", "--no-tensorflow", "--json"], n_doctor
    )
    report = json.loads(procs[-1].stdout)
    rows.append([f"doctor --no-tensorflow --json (median of {n_doctor})", doctor_wall])
    if "tensorflow" in report:
        raise RuntimeError("doctor --no-tensorflow produced a TensorFlow section")

    targets = [
        {
            "name": "doctor --no-tensorflow",
            "value": doctor_wall,
            "target": "about 1 s (< 2 s)",
            "met": doctor_wall < 2.0,
        }
    ]
    if not quick:
        tf_wall, procs = _median_runs([py, "-m", "m1vision", "doctor", "--json"], 1)
        tf_report = json.loads(procs[-1].stdout)
        rows.append(["doctor --json (with TensorFlow, once)", tf_wall])
        rows.append(
            ["  of which: TensorFlow import", tf_report.get("tensorflow", {}).get("import_seconds")]
        )
        _, procs = _median_runs([py, "-c", SELFTEST_CODE], 1)
        selftest = json.loads(procs[-1].stdout.strip().splitlines()[-1])
        rows.append(["tensorflow_selftest('/CPU:0') after import", selftest["selftest"]])
        targets.append(
            {
                "name": "TensorFlow self-test after import",
                "value": selftest["selftest"],
                "target": "< 2 s",
                "met": selftest["selftest"] < 2.0 and selftest["ok"],
            }
        )
    else:
        rows.append(["doctor --json (with TensorFlow)", "skipped (quick)"])
    return {
        "title": "Doctor and import time",
        "columns": ["what", "seconds"],
        "rows": rows,
        "targets": targets,
        "notes": (
            "Wall-clock seconds in fresh subprocesses of this Python (TF_CPP_MIN_LOG_LEVEL=2). "
            "`import m1vision` loads only its error types (submodules load on first use); the "
            "doctor without TensorFlow imports NumPy and OpenCV and reads the headers of every "
            "compiled file of NumPy, OpenCV and TensorFlow plus the installed metadata. With "
            "TensorFlow, the import dominates; the self-test (conv + dense model, eager and "
            "tf.function, CPU and every GPU) adds well under a second. Shared machines vary "
            "by 2x between runs."
        ),
    }


if __name__ == "__main__":
    print_section(run(quick="--quick" in sys.argv))
