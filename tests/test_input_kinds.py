"""Each batch job declares the input kinds it accepts: what a folder becomes depends on the
job, never on which modules a process imported first (each order runs in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from m1vision.io import MedicalImage, write_nifti
from m1vision.synthetic import ct_phantom, write_ct_series

_REPORT = """
import json, sys
from m1vision.batch import collect
from m1vision.pipeline import Pipeline, ToUint8, collect_inputs
folder = sys.argv[1]
from m1vision.pipeline._run import PipelineJob
job, _ = PipelineJob.plan(Pipeline([ToUint8()]), folder, sys.argv[2], suffix=".png")
print("M1VISION " + json.dumps({
    "batch.collect": [[i.key, i.kind] for i in collect(folder)],
    "collect_inputs": [[src.name, str(stem)] for src, stem in collect_inputs(folder)],
    "Pipeline.run": [[i.key, i.kind] for i in collect(folder, kinds=job.input_kinds())],
}))
"""

ORDERS = {
    "batch-first": "import m1vision.batch",
    "volume-first": "import m1vision.volume, m1vision.batch",
    "pipeline-first": "import m1vision.pipeline",
    "inference-first": "import m1vision.inference._folder",
    "bare": "import m1vision",
}


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    root = tmp_path_factory.mktemp("scans")
    write_ct_series(root / "series", shape=(3, 16, 16))
    volume = ct_phantom((4, 16, 16))
    write_nifti(root / "vol.nii.gz", MedicalImage(volume, spacing=(2.0, 1.0, 1.0)))
    write_nifti(root / "flat.nii", MedicalImage(volume[:1], spacing=(2.0, 1.0, 1.0)))
    return root


def _collected(order: str, scans, out) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", f"{order}\n{_REPORT}", str(scans), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("M1VISION "))
    return json.loads(line.removeprefix("M1VISION "))


@pytest.fixture(scope="module")
def answers(scans, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return {name: _collected(code, scans, out) for name, code in ORDERS.items()}


#: every other order is compared with this one (comparing it with itself could not fail)
REFERENCE_ORDER = "batch-first"
OTHER_ORDERS = sorted(set(ORDERS) - {REFERENCE_ORDER})


@pytest.mark.parametrize("order", OTHER_ORDERS, ids=OTHER_ORDERS)
def test_the_same_folder_gives_the_same_inputs_whatever_was_imported_first(answers, order):
    assert answers[order] == answers[REFERENCE_ORDER]


def test_pipeline_run_takes_volumes_and_plain_collect_takes_images(answers):
    got = answers["bare"]
    assert got["Pipeline.run"] == [
        ["flat.nii", "image"],
        ["series", "dicom_series"],
        ["vol.nii.gz", "nifti_volume"],
    ]
    assert got["collect_inputs"] == [
        ["flat.nii", "flat"],
        ["series", "series"],
        ["vol.nii.gz", "vol"],
    ]
    assert got["batch.collect"] == [
        ["flat.nii", "image"],
        ["series/IM0001.dcm", "image"],
        ["series/IM0002.dcm", "image"],
        ["series/IM0003.dcm", "image"],
        ["vol.nii.gz", "image"],
    ]
