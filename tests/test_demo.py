"""The demo end to end (what `make demo` runs), into a temporary folder.

One run of the demo is shared by every check of its outputs (the label and segmentation
files are checked in the folder it wrote); the last test runs it again into the same folder
to check that a second run resumes, replaces its own files and keeps every record.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

pytestmark = pytest.mark.slow  # every check reads the outputs of a whole demo run


def run_demo(out):
    return subprocess.run(
        [sys.executable, "-m", "m1vision", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``(out, run, records)``: the demo's folder, its process, its records right after it."""
    out = tmp_path_factory.mktemp("demo") / "outputs"
    run = run_demo(out)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out, run, sorted((out / "experiments").glob("demo-*/record.json"))


def test_demo_writes_every_output_and_reproduces_its_own_record(demo):
    out, run, records = demo
    doctor = json.loads((out / "doctor.json").read_text())
    assert {c["name"] for c in doctor["checks"]} >= {"os", "numpy", "opencv", "tensorflow_selftest"}
    figure = cv2.imread(str(out / "ct_edges.png"))
    assert figure is not None
    assert figure.shape[1] > figure.shape[0] > 200  # three panels side by side
    assert len(list((out / "batch").glob("*.png"))) == 8
    assert len(list((out / "batch").glob("batch_report-*.json"))) == 1
    assert len(list((out / "inference").glob("*_gradcam.png"))) == 6
    assert {p.name for p in (out / "volume").glob("*.nii.gz")} == {"ct.nii.gz", "ct_edges.nii.gz"}
    assert len(records) == 1
    assert "reproduced" in run.stdout.splitlines()
    assert "== outputs" in run.stdout
    assert {p.name for p in (out / "labels").iterdir()} >= {
        "organs.nii.gz", "organs.json", "organs_seg.dcm", "organs_stats.csv", "organs_overlay.png"
    }  # fmt: skip
    assert {p.name for p in (out / "segmentation").iterdir()} >= {
        "ct_seg.nii.gz", "ct_seg.json", "ct_seg.dcm", "ct_seg_stats.csv", "ct_seg_overlay.png"
    }  # fmt: skip
    checks = [line for line in run.stdout.splitlines() if line.startswith("  geometry check:")]
    assert len(checks) == 2 and all(line.endswith("agree") for line in checks)
    assert "Dice per organ against the phantom's labels: all >= 0.9: True" in run.stdout
    listed = run.stdout.split("== outputs", 1)[1]
    assert "organs_seg.dcm" in listed and "ct_seg.dcm" in listed


def test_demo_labels_open_aligned_in_nibabel(demo):
    import nibabel as nib
    import numpy as np

    from m1vision.demo import MARK_VALUE

    out, _, _ = demo
    labels = nib.load(out / "labels" / "organs.nii.gz")
    image = nib.load(out / "volume" / "ct.nii.gz")
    lab = np.asanyarray(labels.dataobj)
    hu = np.asanyarray(image.dataobj)
    assert lab.shape == hu.shape
    (ijk,) = np.argwhere(lab == MARK_VALUE)
    world_labels = nib.affines.apply_affine(labels.affine, ijk)
    world_image = nib.affines.apply_affine(image.affine, ijk)
    np.testing.assert_allclose(world_labels, world_image, atol=1e-4)


#: label maps the demo writes on the CT's grid, and organs with the HU range each lies over
LABEL_MAPS = {"labels": "labels/organs.nii.gz", "segmentation": "segmentation/ct_seg.nii.gz"}
ORGAN_HU = {"liver": (3, 20, 100), "spine": (6, 600, 800), "lung_right": (1, -900, -800)}


@pytest.mark.parametrize("organ", list(ORGAN_HU), ids=list(ORGAN_HU))
@pytest.mark.parametrize("where", list(LABEL_MAPS), ids=list(LABEL_MAPS))
def test_demo_label_maps_lay_each_organ_over_its_hu(demo, where, organ):
    # aligned in the pixels, not only the affines: the organ's median HU is the organ's
    import nibabel as nib
    import numpy as np

    out, _, _ = demo
    lab = np.asanyarray(nib.load(out / LABEL_MAPS[where]).dataobj)
    hu = np.asanyarray(nib.load(out / "volume" / "ct.nii.gz").dataobj)
    value, lo, hi = ORGAN_HU[organ]
    assert lo < float(np.median(hu[lab == value])) < hi


def test_demo_seg_reads_back_as_the_map_and_marks_the_same_place(demo):
    import highdicom as hd
    import nibabel as nib
    import numpy as np

    from m1vision import data
    from m1vision.demo import MARK_NAME, MARK_VALUE, demo_labels, seg_world_of
    from m1vision.labels import read_labels

    out, _, _ = demo
    ct = data.ct_series()
    expected, _ = demo_labels(ct)
    seg = read_labels(out / "labels" / "organs_seg.dcm", like=ct)
    np.testing.assert_array_equal(seg.pixels, expected.pixels)
    assert {v: e["name"] for v, e in seg.metadata["labels"].items()} == {
        v: e["name"] for v, e in expected.metadata["labels"].items()
    }
    nifti = read_labels(out / "labels" / "organs.nii.gz", like=ct)
    np.testing.assert_array_equal(nifti.pixels, expected.pixels)
    labels = nib.load(out / "labels" / "organs.nii.gz")
    (ijk,) = np.argwhere(np.asanyarray(labels.dataobj) == MARK_VALUE)
    world = nib.affines.apply_affine(labels.affine, ijk)
    # the SEG's own geometry, read by highdicom (its volume and LPS affine) and by the demo's
    # pydicom reading of the frame positions
    seg = hd.seg.segread(out / "labels" / "organs_seg.dcm")
    (number,) = [s.SegmentNumber for s in seg.SegmentSequence if s.SegmentLabel == MARK_NAME]
    volume = seg.get_volume(segment_numbers=[number], combine_segments=True)
    (seg_ijk,) = np.argwhere(volume.array > 0)
    lps = nib.affines.apply_affine(volume.affine, seg_ijk)
    np.testing.assert_allclose(lps * (-1, -1, 1), world, atol=1e-3)
    (by_pydicom,) = seg_world_of(out / "labels" / "organs_seg.dcm", MARK_NAME)
    np.testing.assert_allclose(by_pydicom, world, atol=1e-3)


def test_demo_labels_statistics_and_overlay(demo):
    from m1vision.labels import LabelTable

    out, _, _ = demo
    table = LabelTable.read_csv(out / "labels" / "organs_stats.csv")
    assert [r["name"] for r in table.rows][:3] == ["lung_right", "lung_left", "liver"]
    assert 50 < table.row("liver")["mean"] < 70
    assert table.row("geometry_mark")["voxels"] == 1
    picture = cv2.imread(str(out / "labels" / "organs_overlay.png"))
    assert picture.shape[0] == 256
    assert picture.shape[1] > 256  # the slice and its legend
    assert (picture[:, :256] != picture[:, :256, :1]).any()  # colour over the gray slice


def test_demo_segmentation_files_open_aligned_in_nibabel(demo):
    import nibabel as nib
    import numpy as np

    out, _, _ = demo
    assert {p.name for p in (out / "segmentation").iterdir()} >= {
        "ct_seg.nii.gz", "ct_seg.json", "ct_seg.dcm", "ct_seg_stats.csv", "ct_seg_overlay.png"
    }  # fmt: skip
    labels = nib.load(out / "segmentation" / "ct_seg.nii.gz")
    image = nib.load(out / "volume" / "ct.nii.gz")
    lab = np.asanyarray(labels.dataobj)
    hu = np.asanyarray(image.dataobj)
    assert lab.shape == hu.shape
    np.testing.assert_allclose(labels.affine, image.affine, atol=1e-4)
    picture = cv2.imread(str(out / "segmentation" / "ct_seg_overlay.png"))
    assert picture.shape[0] == 256 and picture.shape[1] > 256
    assert (picture[:, :256] != picture[:, :256, :1]).any()


def test_demo_segmentation_reaches_dice_and_seg_matches_nifti(demo):
    import highdicom as hd
    import nibabel as nib
    import numpy as np

    from m1vision import data
    from m1vision.labels import LabelTable, compare_labels, read_labels
    from m1vision.synthetic import ct_phantom_labels

    out, _, _ = demo
    ct = data.ct_series()
    nifti = read_labels(out / "segmentation" / "ct_seg.nii.gz", like=ct)
    seg = read_labels(out / "segmentation" / "ct_seg.dcm", like=ct)
    np.testing.assert_array_equal(seg.pixels, nifti.pixels)
    truth = ct_phantom_labels(ct.shape, spacing=ct.spacing)
    table = compare_labels(truth, nifti)
    assert {r["name"] for r in table.rows} == {
        "lung_right", "lung_left", "liver", "liver_lesion", "aorta", "spine"
    }  # fmt: skip
    assert min(r["dice"] for r in table.rows) >= 0.9
    stats = LabelTable.read_csv(out / "segmentation" / "ct_seg_stats.csv")
    assert 50 < stats.row("liver")["mean"] < 70
    # the SEG's own geometry (highdicom's LPS affine) puts the liver where the NIfTI does
    labels = nib.load(out / "segmentation" / "ct_seg.nii.gz")
    liver_nii = nib.affines.apply_affine(
        labels.affine, np.argwhere(np.asanyarray(labels.dataobj) == 3)
    )
    dcm = hd.seg.segread(out / "segmentation" / "ct_seg.dcm")
    (number,) = [s.SegmentNumber for s in dcm.SegmentSequence if s.SegmentLabel == "liver"]
    volume = dcm.get_volume(segment_numbers=[number], combine_segments=True)
    liver_seg = nib.affines.apply_affine(volume.affine, np.argwhere(volume.array > 0))
    liver_seg = liver_seg * (-1, -1, 1)
    assert len(liver_seg) == len(liver_nii)
    np.testing.assert_allclose(np.sort(liver_seg, axis=0), np.sort(liver_nii, axis=0), atol=1e-3)


def test_a_second_run_resumes_replaces_its_files_and_keeps_every_record(demo):
    """Last in this file: it runs the demo again into the folder the checks above read."""
    out, _, records = demo
    again = run_demo(out)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "BatchReport: 0 ok, 8 skipped, 0 failed" in again.stdout  # resumable
    assert f"{out / 'doctor.json'} (replaced)" in again.stdout
    assert f"{out / 'segmentation' / 'ct_seg.nii.gz'} (replaced)" in again.stdout
    now = sorted((out / "experiments").glob("demo-*/record.json"))
    assert len(now) == 2 and set(records) < set(now)  # a new record, the first one kept
