"""The demo end to end (what `make demo` runs), into a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest


def run_demo(out):
    return subprocess.run(
        [sys.executable, "-m", "m1vision", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_demo_writes_every_output_and_reproduces_its_own_record(tmp_path):
    out = tmp_path / "outputs"
    run = run_demo(out)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doctor = json.loads((out / "doctor.json").read_text())
    assert {c["name"] for c in doctor["checks"]} >= {"os", "numpy", "opencv", "tensorflow_selftest"}
    figure = cv2.imread(str(out / "ct_edges.png"))
    assert figure is not None
    assert figure.shape[1] > figure.shape[0] > 200  # three panels side by side
    assert len(list((out / "batch").glob("*.png"))) == 8
    assert len(list((out / "batch").glob("batch_report-*.json"))) == 1
    assert len(list((out / "inference").glob("*_gradcam.png"))) == 6
    assert {p.name for p in (out / "volume").glob("*.nii.gz")} == {"ct.nii.gz", "ct_edges.nii.gz"}
    records = list((out / "experiments").glob("demo-*/record.json"))
    assert len(records) == 1
    assert "reproduced" in run.stdout.splitlines()
    assert "== outputs" in run.stdout

    again = run_demo(out)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "BatchReport: 0 ok, 8 skipped, 0 failed" in again.stdout  # resumable
    assert "outputs/doctor.json (replaced)" in again.stdout.replace(str(tmp_path) + "/", "")
    assert len(list((out / "experiments").glob("demo-*/record.json"))) == 2  # never overwritten
