"""stats_folder: label statistics over image/label pairs through the batch engine."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from m1vision.cohort import match_pairs, stats_folder
from m1vision.errors import ImageWriteError, InvalidParameterError, OutputExistsError
from m1vision.io import MedicalImage, read_nifti, write_nifti
from m1vision.labels import (
    LabelTable,
    label_map,
    label_stats,
    read_labels,
    write_labels,
)
from m1vision.synthetic import ct_phantom, ct_phantom_labels

SHAPE = (6, 32, 32)
CASES = ("a", "b", "c")


def write_case(root, case, seed, *, labels_dir="labels", name=None, pixels=None):
    labels = ct_phantom_labels(SHAPE, seed=seed)
    image = MedicalImage(
        ct_phantom(SHAPE, seed=seed),
        labels.spacing,
        metadata={"layout": "volume", "affine": labels.metadata["affine"]},
    )
    write_nifti(root / "images" / f"{case}.nii.gz", image, overwrite=True)
    if pixels is not None:
        labels = label_map(pixels, like=labels, labels=None)
    target = root / labels_dir / f"{name or case}.nii.gz"
    write_labels(target, labels, overwrite=True)
    return target


@pytest.fixture
def folders(tmp_path):
    for seed, case in enumerate(CASES):
        write_case(tmp_path, case, seed)
    return tmp_path


def expected_rows(root, case, labels_dir="labels", name=None):
    image = read_nifti(root / "images" / f"{case}.nii.gz")
    labels = read_labels(root / labels_dir / f"{name or case}.nii.gz", like=image)
    return [{"case": case, **row} for row in label_stats(labels, image).rows]


def run(root, **kwargs):
    return stats_folder(
        root / "images", root / "labels", root / "stats.csv", progress=False, **kwargs
    )


def test_one_csv_of_every_case_equal_to_label_stats(folders):
    report = run(folders)
    assert repr(report).startswith("BatchReport: 3 ok, 0 skipped, 0 failed")
    want = [row for case in CASES for row in expected_rows(folders, case)]
    table = LabelTable.read_csv(folders / "stats.csv")
    assert table.schema == "m1vision.label_stats_folder"
    assert table.columns[0] == "case"
    assert len(table.rows) == len(want)
    for got, exp in zip(table.rows, want, strict=True):
        assert set(got) == set(exp)
        for key, value in exp.items():
            if isinstance(value, float) and np.isnan(value):
                assert np.isnan(got[key])
            else:
                assert got[key] == value, (exp["case"], exp["label"], key)
    assert (
        (folders / "stats.csv").read_text().startswith("# m1vision.label_stats_folder version 1\n")
    )
    left = sorted(p.name for p in folders.iterdir() if not p.name.startswith("batch_report-"))
    assert left == ["images", "labels", "stats.csv", "stats.csv.m1vision-manifest.json"]


def test_resume_recomputes_only_the_changed_case(folders):
    run(folders)
    before = (folders / "stats.csv").read_text()
    again = run(folders)
    assert [(i.key, i.status, i.reason) for i in again.items] == [
        (c, "skipped", "unchanged") for c in CASES
    ]
    assert (folders / "stats.csv").read_text() == before  # rows from the manifest

    # b's label map changes: label 3 (liver) is gone
    pixels = read_labels(folders / "labels" / "b.nii.gz").pixels.copy()
    pixels[pixels == 3] = 0
    write_case(folders, "b", 1, pixels=pixels)
    third = run(folders)
    assert [(i.key, i.status, i.reason) for i in third.items] == [
        ("a", "skipped", "unchanged"),
        ("b", "ok", "input changed"),
        ("c", "skipped", "unchanged"),
    ]
    table = LabelTable.read_csv(folders / "stats.csv")
    assert 3 not in [r["label"] for r in table.rows if r["case"] == "b"]
    assert 3 in [r["label"] for r in table.rows if r["case"] == "a"]
    want = [row for case in CASES for row in expected_rows(folders, case)]
    assert [(r["case"], r["label"], r["voxels"]) for r in table.rows] == [
        (r["case"], r["label"], r["voxels"]) for r in want
    ]


def test_a_changed_sidecar_or_image_recomputes_its_case(folders):
    run(folders)
    sidecar = folders / "labels" / "c.json"
    sidecar.write_text(sidecar.read_text().replace('"liver"', '"hepar"'))
    report = run(folders)
    assert [i.reason for i in report.items] == ["unchanged", "unchanged", "input changed"]
    names = {r["name"] for r in LabelTable.read_csv(folders / "stats.csv").rows if r["case"] == "c"}
    assert "hepar" in names

    image = read_nifti(folders / "images" / "a.nii.gz")
    shifted = MedicalImage(image.pixels + 10.0, image.spacing, metadata=image.metadata)
    write_nifti(folders / "images" / "a.nii.gz", shifted, overwrite=True)
    report = run(folders)
    assert [i.reason for i in report.items] == ["input changed", "unchanged", "unchanged"]
    rows = LabelTable.read_csv(folders / "stats.csv").rows
    assert [r["mean"] for r in rows if r["case"] == "a"] == [
        r["mean"] for r in expected_rows(folders, "a")
    ]


def test_labels_beside_images_by_a_name_rule(tmp_path):
    for seed, case in enumerate(("p1", "p2")):
        write_case(tmp_path, case, seed, labels_dir="images", name=f"{case}_seg")
    pairs = match_pairs(tmp_path / "images", tmp_path / "images", match="{case}_seg")
    assert [(c, i.name, lab.name) for c, i, lab in pairs] == [
        ("p1", "p1.nii.gz", "p1_seg.nii.gz"),
        ("p2", "p2.nii.gz", "p2_seg.nii.gz"),
    ]
    report = stats_folder(
        tmp_path / "images", tmp_path / "images", tmp_path / "out" / "s.csv",
        match="{case}_seg", progress=False, workers=2,
    )  # fmt: skip
    assert [i.status for i in report.items] == ["ok", "ok"]
    assert report.table.rows == LabelTable.read_csv(tmp_path / "out" / "s.csv").rows


def test_an_image_without_labels_is_refused_before_anything_is_written(folders):
    (folders / "labels" / "b.nii.gz").unlink()
    with pytest.raises(InvalidParameterError, match=r"1 image\(s\).*b \(looked for b.nii.gz"):
        run(folders)
    assert sorted(p.name for p in folders.iterdir()) == ["images", "labels"]


def test_one_case_off_the_grid_fails_alone(folders):
    other = ct_phantom_labels((SHAPE[0], 32, 40))
    write_labels(folders / "labels" / "b.nii.gz", other, overwrite=True)
    report = run(folders)
    assert [i.status for i in report.items] == ["ok", "failed", "ok"]
    assert "GridMismatchError" in report.items[1].error
    assert "resample" in report.items[1].error
    cases = {r["case"] for r in LabelTable.read_csv(folders / "stats.csv").rows}
    assert cases == {"a", "c"}


def test_a_csv_of_someone_else_is_not_replaced(folders):
    (folders / "stats.csv").write_text("mine\n")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        run(folders)
    assert (folders / "stats.csv").read_text() == "mine\n"
    assert repr(run(folders, overwrite=True)).startswith("BatchReport: 3 ok")


def test_the_stats_command(folders):
    out = folders / "cli.csv"
    done = subprocess.run(
        [sys.executable, "-m", "m1vision", "stats", str(folders / "images"),
         str(folders / "labels"), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "3 ok" in done.stdout
    assert str(out) in done.stdout
    want = [row for case in CASES for row in expected_rows(folders, case)]
    got = LabelTable.read_csv(out).rows
    assert [(r["case"], r["label"], r["voxels"]) for r in got] == [
        (r["case"], r["label"], r["voxels"]) for r in want
    ]


def test_the_stats_command_says_what_is_missing(folders):
    (folders / "labels" / "a.nii.gz").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "m1vision", "stats", str(folders / "images"),
         str(folders / "labels"), "--out", str(folders / "cli.csv")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "InvalidParameterError" in done.stderr
    assert "looked for a.nii.gz" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (folders / "cli.csv").exists()


@pytest.mark.parametrize(
    ("which", "fragment"),
    [
        ("images-file", "this is one file. Fix: pass the folder holding it"),
        ("labels-missing", "none is there. Fix: check the path"),
    ],
    ids=["images-is-a-file", "labels-missing"],
)
def test_the_stats_command_says_which_folder_is_wrong_and_the_fix(folders, which, fragment):
    images, labels = folders / "images", folders / "labels"
    if which == "images-file":
        images = images / "a.nii.gz"
    else:
        labels = folders / "nowhere"
    done = subprocess.run(
        [sys.executable, "-m", "m1vision", "stats", str(images), str(labels),
         "--out", str(folders / "cli.csv")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert not (folders / "cli.csv").exists()


@pytest.mark.parametrize("case", ["a-file", "under-a-file"])
def test_an_output_folder_that_is_a_file_stops_before_any_work(folders, case):
    (folders / "notes.txt").write_text("not a folder")
    out = {"a-file": folders / "notes.txt", "under-a-file": folders / "notes.txt" / "sub"}[case]
    with pytest.raises(ImageWriteError, match=r"is a file.*Fix:"):
        stats_folder(folders / "images", folders / "labels", out / "stats.csv", progress=False)
    assert (folders / "notes.txt").read_text() == "not a folder"
    assert sorted(p.name for p in folders.iterdir()) == ["images", "labels", "notes.txt"]


@pytest.mark.slow
def test_the_stats_command_stopped_by_ctrl_c_says_so_and_the_rerun_finishes(tmp_path):
    import os
    import signal
    import time

    from manifest_support import manifest_records

    # few cases (so the engine runs them on threads), each large enough to take a while
    cases = [f"case{k}" for k in range(6)]
    for seed, case in enumerate(cases):
        labels = ct_phantom_labels((24, 128, 128), seed=seed)
        image = MedicalImage(
            ct_phantom((24, 128, 128), seed=seed), labels.spacing, metadata=labels.metadata
        )
        write_nifti(tmp_path / "images" / f"{case}.nii.gz", image)
        write_labels(tmp_path / "labels" / f"{case}.nii.gz", labels)
    out = tmp_path / "cli.csv"
    manifest = out.with_name(f"{out.name}.m1vision-manifest.json")
    child = subprocess.Popen(
        [sys.executable, "-m", "m1vision", "stats", str(tmp_path / "images"),
         str(tmp_path / "labels"), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    lock = tmp_path / ".m1vision.lock"  # made once the run holds its output folder
    deadline = time.monotonic() + 60
    while not lock.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(child.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "interrupted (Ctrl-C)" in err and "Run the same command again" in err
    assert "Traceback" not in err
    done = set(manifest_records(manifest)) if manifest.exists() else set()
    assert len(done) < len(cases)
    assert not [p.name for p in tmp_path.rglob(".*") if p.name != ".m1vision.lock"]

    report = stats_folder(tmp_path / "images", tmp_path / "labels", out, progress=False)
    assert {item.key for item in report.skipped} == done
    assert len(report.table.rows) and {r["case"] for r in report.table.rows} == set(cases)


def test_the_stats_command_names_the_flag_of_the_fix(folders, capsys):
    from m1vision.cli import main

    (folders / "cli.csv").write_text("mine\n")
    code = main(["stats", str(folders / "images"), str(folders / "labels"),
                 "--out", str(folders / "cli.csv")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "Pass overwrite=True" in err
    assert "(on the command line: overwrite=True is --overwrite)" in err
    assert (folders / "cli.csv").read_text() == "mine\n"
    code = main(["stats", str(folders / "images"), str(folders / "labels"),
                 "--out", str(folders / "cli.csv"), "--overwrite"])  # fmt: skip
    assert code == 0
    assert LabelTable.read_csv(folders / "cli.csv").rows


def test_a_seg_label_file_is_placed_on_its_image(tmp_path):
    from m1vision.io import read_series
    from m1vision.synthetic import write_ct_series

    series = write_ct_series(tmp_path / "series", shape=SHAPE, seed=5).folder
    ct = read_series(series)
    write_nifti(tmp_path / "images" / "s1.nii.gz", ct)
    organs = label_map(ct_phantom_labels(SHAPE).pixels, like=ct)
    write_labels(tmp_path / "labels" / "s1.dcm", organs, source=series)
    report = run(tmp_path)
    assert [i.status for i in report.items] == ["ok"]
    image = read_nifti(tmp_path / "images" / "s1.nii.gz")
    want = label_stats(read_labels(tmp_path / "labels" / "s1.dcm", like=image), image).rows
    assert [r["voxels"] for r in report.table.rows] == [r["voxels"] for r in want]
    assert [r["mean"] for r in report.table.rows] == [r["mean"] for r in want]
