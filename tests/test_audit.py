"""m1vision.io.audit on a generated messy collection, and ``python -m m1vision audit``.

Independent checks: SimpleITK's GDCM series grouping and reader (files, size, spacing and
direction per series), a strict ``read_series`` on each folder (the verdicts), pydicom's
decoded pixels compared file by file (the duplicates), and pydicom decoding a file (whether
a transfer syntax is decodable here).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from m1vision._atomic import check_versioned
from m1vision.errors import (
    ImageReadError,
    InvalidParameterError,
    OutputExistsError,
    RecordError,
    SeriesError,
    SeriesNotFoundError,
)
from m1vision.io import AuditReport, audit, read_series
from m1vision.synthetic import MESSY_SERIES, write_messy_collection

FILES_PER_SERIES = 6


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return write_messy_collection(
        tmp_path_factory.mktemp("collection"), files_per_series=FILES_PER_SERIES, size=24
    )


@pytest.fixture(scope="module")
def report(gen) -> AuditReport:
    return audit(gen.root, progress=False)


@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "audit"
    return report.write(out)


def _row(report, folder):
    (row,) = [r for r in report if r.folder == folder]
    return row


# --- counts --------------------------------------------------------------------------------


def test_one_row_per_series_and_every_file_accounted_for(gen, report):
    assert sorted(r.folder for r in report) == sorted(s["folder"] for s in gen.series)
    assert report.files == gen.n_files
    in_series = sum(r.files for r in report)
    assert in_series + len(report.unreadable) + len(report.skipped) == gen.n_files
    assert Counter(r.modality for r in report) == Counter(m for _, m, _, _ in MESSY_SERIES)
    assert [r.id for r in report] == [f"S{i}" for i in range(1, len(report) + 1)]


@pytest.mark.parametrize("series", MESSY_SERIES, ids=lambda s: s[0])
def test_row_counts_and_orientation(gen, report, series):
    folder, modality, variant, _ = series
    row = _row(report, folder)
    expected = next(s for s in gen.series if s["folder"] == folder)
    assert (row.modality, row.files) == (modality, expected["files"])
    want = {"sagittal": "sagittal", "coronal": "coronal"}.get(variant, "axial")
    assert row.orientation == want
    assert row.transfer_syntaxes == ("Explicit VR Little Endian",)
    assert row.decodable is True


# --- verdicts, against a strict read_series of the same folder ----------------------------


@pytest.mark.parametrize("series", MESSY_SERIES, ids=lambda s: s[0])
def test_verdict_is_what_a_strict_read_does(gen, report, series):
    folder = series[0]
    row = _row(report, folder)
    try:
        read_series(gen.root / folder, progress=False)
        raised = ""
    except SeriesError as exc:
        raised = f"{type(exc).__name__}: {exc.problem}"
    assert row.strict_error == raised
    assert row.verdict == ("ok" if not raised else "irregular")
    assert (row.verdict == "ok") == next(s["regular"] for s in gen.series if s["folder"] == folder)


@pytest.mark.parametrize(
    ("folder", "kind"), [("ct/gap", "missing slices"), ("ct/tilted", "gantry tilt")]
)
def test_irregularities_are_named(report, folder, kind):
    row = _row(report, folder)
    assert len(row.irregularities) == 1
    assert row.irregularities[0].startswith(f"{kind}: ")


# --- duplicates ------------------------------------------------------------------------------


def test_the_copied_series_is_found_image_by_image(gen, report):
    ((original, copy),) = gen.duplicated
    a, b = _row(report, original), _row(report, copy)
    assert (a.duplicate_images, b.duplicate_images) == (a.files, b.files)
    assert (a.duplicate_of, b.duplicate_of) == ((b.id,), (a.id,))
    expected = sorted(
        sorted([f"{original}/{p.name}", f"{copy}/{p.name}"])
        for p in (gen.root / original).iterdir()
    )
    assert sorted(d["files"] for d in report.duplicates) == expected
    assert all(
        d["series"] == sorted([a.id, b.id], key=lambda i: int(i[1:])) for d in report.duplicates
    )
    others = [r for r in report if r.folder not in (original, copy)]
    assert all(r.duplicate_images == 0 for r in others)


def test_duplicate_groups_hold_equal_pixels_and_nothing_equal_is_missed(gen, report):
    # independent: pydicom's decoded arrays of every image file, compared by value
    arrays = {}
    for r in report:
        for f in sorted((gen.root / r.folder).iterdir()):
            arrays[f"{r.folder}/{f.name}"] = pydicom.dcmread(f).pixel_array
    found = {frozenset(d["files"]) for d in report.duplicates}
    by_value: dict = {}
    for name, a in arrays.items():
        if a.min() == a.max():
            continue  # blank images are counted, not paired
        by_value.setdefault((a.shape, a.dtype.str, a.tobytes()), []).append(name)
    assert found == {frozenset(v) for v in by_value.values() if len(v) > 1}


def test_blank_images_are_counted_not_paired(gen, report):
    # the sagittal and coronal phantoms' outermost slices are air only
    blanks = {r.folder: r.blank_images for r in report}
    assert blanks["mr/knee_sag"] >= 1
    assert blanks["ct/chest"] == 0
    assert not any(f.startswith("mr/") for d in report.duplicates for f in d["files"])


# --- unreadable and skipped files ----------------------------------------------------------


def test_unreadable_files_are_listed_with_their_reason(gen, report):
    reasons = dict(report.unreadable)
    assert sorted(reasons) == sorted(gen.unreadable)
    assert reasons["misc/readme.txt"] == "not DICOM"
    assert reasons["misc/truncated.dcm"].startswith("pixel data cannot be decoded: ")
    # the reader's words for a cut-off file: the declared size against the bytes present
    cut = reasons["misc/truncated.dcm"]  # 24 x 24 int16 = 1152 bytes, half of them present
    assert re.search(r"\b576\b", cut) and re.search(r"\b1,?152\b", cut) and "bytes" in cut
    assert dict(report.skipped) == {"DICOMDIR": "DICOMDIR: an index of files, not an image"}


# --- no identifiers anywhere -------------------------------------------------------------


OUTPUTS = {
    "csv": lambda report, written: written["audit.csv"].read_text(),
    "json": lambda report, written: written["audit.json"].read_text(),
    "str": lambda report, written: str(report),
    "repr": lambda report, written: repr(report),
    "html": lambda report, written: report._repr_html_(),
}


def test_the_generated_folder_holds_identifiers_to_look_for(gen):
    assert len(gen.identifiers) > 3 * FILES_PER_SERIES  # names, IDs, dates and the UIDs


@pytest.mark.parametrize("where", list(OUTPUTS), ids=list(OUTPUTS))
def test_no_identifier_in_any_output(gen, report, written, where):
    text = OUTPUTS[where](report, written)
    leaked = [i for i in gen.identifiers if i in text]
    assert not leaked, f"{where} holds {leaked}"
    assert str(gen.root) not in text  # paths are relative to the root


# --- what is written -----------------------------------------------------------------------


def test_json_is_versioned_and_matches_the_csv(report, written):
    data = json.loads(written["audit.json"].read_text())
    check_versioned(data, schema="m1vision.audit", versions=(1,), source="x", error=RecordError)
    assert data == json.loads(json.dumps(report.to_dict()))
    rows = list(csv.DictReader(io.StringIO(written["audit.csv"].read_text())))
    assert [r["id"] for r in rows] == [s["id"] for s in data["series"]]
    assert [r["verdict"] for r in rows] == [s["verdict"] for s in data["series"]]
    assert [float(r["spacing_slice_mm"]) for r in rows] == [s["spacing"][2] for s in data["series"]]


def test_pictures_are_written(report, written):
    sheet = cv2.imread(str(written["contact_sheet.png"]))
    assert sheet.shape == report.contact_sheet().shape
    assert sheet.std() > 10  # tiles hold images, not a blank canvas
    assert set(report.tiles) == {r.id for r in report}
    scatter = cv2.imread(str(written["spacing.png"]))
    assert scatter is not None and scatter.shape[1] > scatter.shape[0]


def test_an_earlier_audit_is_not_replaced_unless_asked(report, written):
    before = {n: p.read_bytes() for n, p in written.items()}
    out = written["audit.csv"].parent
    with pytest.raises(OutputExistsError, match="overwrite"):
        report.write(out)
    assert {n: p.read_bytes() for n, p in written.items()} == before
    report.write(out, overwrite=True)
    assert written["audit.csv"].read_bytes() == before["audit.csv"]


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_same_report_with_any_number_of_workers(gen, report, workers):
    again = audit(gen.root, workers=workers, progress=False)
    assert again.rows == report.rows
    assert again.duplicates == report.duplicates
    assert again.unreadable == report.unreadable


# --- against SimpleITK (GDCM) ------------------------------------------------------------


def _letters(direction: np.ndarray) -> str:
    """Axis codes (LPS world) of the columns of a direction matrix."""
    out = ""
    for k in range(3):
        d = direction[:, k]
        i = int(np.argmax(np.abs(d)))
        out += ("LPS" if d[i] > 0 else "RAI")[i]
    return out


def _sitk_table(root: Path) -> dict:
    table = {}
    for folder, _, names in os.walk(root):
        if not names:
            continue
        reader = sitk.ImageSeriesReader()
        for sid in reader.GetGDCMSeriesIDs(folder):
            files = reader.GetGDCMSeriesFileNames(folder, sid)
            reader.SetFileNames(files)
            image = reader.Execute()
            direction = np.array(image.GetDirection()).reshape(3, 3)
            table[Path(folder).relative_to(root).as_posix()] = {
                "files": len(files),
                "size": image.GetSize(),
                "spacing": image.GetSpacing(),
                "axes": _letters(direction),
            }
    return table


def test_series_table_agrees_with_simpleitk(gen, report):
    itk = _sitk_table(gen.root)
    assert set(itk) == {r.folder for r in report}
    for r in report:
        s = itk[r.folder]
        assert (r.files, r.columns, r.rows, r.slices) == (s["files"], *s["size"]), r.folder
        np.testing.assert_allclose(r.spacing[:2], s["spacing"][1::-1], rtol=1e-6)
        if r.verdict == "ok":  # GDCM has no gap or tilt check: its z step is taken as it is
            np.testing.assert_allclose(r.spacing[2], s["spacing"][2], rtol=1e-5)
            assert r.axes == s["axes"], r.folder


# --- transfer syntaxes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"]
)
def test_decodable_says_whether_pydicom_decodes_it_here(tmp_path, name):
    src = get_testdata_file(name, download=False)
    shutil.copy(src, tmp_path / name)
    try:
        _ = pydicom.dcmread(src).pixel_array
        decodes = True
    except Exception:
        decodes = False
    rep = audit(tmp_path, progress=False)
    (row,) = rep.rows
    assert row.decodable is decodes
    assert row.transfer_syntaxes == (pydicom.dcmread(src).file_meta.TransferSyntaxUID.name,)
    assert rep.not_hashed == (0 if decodes else 1)
    assert rep.unreadable == ()


# --- bad input -----------------------------------------------------------------------------


def test_missing_root_names_the_path(tmp_path):
    with pytest.raises(ImageReadError, match="no such folder") as info:
        audit(tmp_path / "nowhere", progress=False)
    assert info.value.path == str(tmp_path / "nowhere")


@pytest.mark.parametrize("content", ["empty", "text-only"])
def test_root_without_dicom_says_what_it_found_and_the_fix(tmp_path, content):
    if content == "text-only":
        (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(SeriesNotFoundError, match="no DICOM image found to audit") as info:
        audit(tmp_path, progress=False)
    err = info.value
    assert err.folder == str(tmp_path)
    assert "Fix: point audit at the folder" in str(err)
    assert ("not DICOM" in err.got) == (content == "text-only")


@pytest.mark.parametrize("workers", [0, -1, 1.5, True], ids=str)
def test_bad_workers(tmp_path, workers):
    with pytest.raises(InvalidParameterError, match="workers"):
        audit(tmp_path, workers=workers, progress=False)


def _pydicom_collection(root, *, copies: int = 0, plans: int = 0):
    """MR_small.dcm and ``copies`` byte copies of it; ``plans`` copies of rtplan.dcm."""
    root.mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm"), root / "mr.dcm")
    for k in range(copies):
        shutil.copy(root / "mr.dcm", root / f"copy{k}.dcm")
    for k in range(plans):
        shutil.copy(get_testdata_file("rtplan.dcm"), root / f"plan{k}.dcm")
    return root


def test_copies_within_one_series_are_said_to_be_within_it(tmp_path):
    report = audit(_pydicom_collection(tmp_path / "arch", copies=2), workers=1, progress=False)
    (row,) = report.rows
    assert (row.duplicate_images, row.duplicate_of) == (3, ())
    assert "3 (within the series)" in str(report)
    assert "()" not in str(report)


@pytest.mark.parametrize(
    ("plans", "named", "counted"), [(3, 3, None), (7, 3, 4)], ids=["few-all-named", "many-counted"]
)
def test_the_printed_report_counts_many_files_skipped_for_one_reason(
    tmp_path, plans, named, counted
):
    report = audit(_pydicom_collection(tmp_path / "arch", plans=plans), workers=1, progress=False)
    assert len(report.skipped) == plans  # every file kept in the report and its JSON
    for shown in (str(report), report._repr_html_()):
        assert sum(f"plan{k}.dcm" in shown for k in range(plans)) == named
        assert (f"{counted} more file(s)" in shown) == (counted is not None)


# --- the command line ------------------------------------------------------------------------


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "m1vision", "audit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_end_to_end(gen, report, tmp_path):
    done = _cli(str(gen.root), "--out", "out", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert report.summary().split(";")[0] in done.stdout
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["audit.csv", "audit.json", "contact_sheet.png", "spacing.png"]
    data = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert [s["verdict"] for s in data["series"]] == [r.verdict for r in report]
    again = _cli(str(gen.root), "--out", "out", "--no-progress", cwd=tmp_path)
    assert again.returncode == 2
    assert "overwrite" in again.stderr


def test_cli_bad_root_exits_2_naming_it(tmp_path):
    done = _cli(str(tmp_path / "nowhere"), "--no-progress", cwd=tmp_path)
    assert done.returncode == 2
    assert str(tmp_path / "nowhere") in done.stderr
    assert not (tmp_path / "audit").exists()


@pytest.mark.parametrize("case", ["a-file", "under-a-file"])
def test_cli_out_that_is_a_file_exits_2_before_the_work(tmp_path, case):
    (tmp_path / "arch").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "arch")
    (tmp_path / "notes.txt").write_text("not a folder")
    out = {"a-file": "notes.txt", "under-a-file": "notes.txt/audit"}[case]
    done = _cli("arch", "--out", out, "--no-progress", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "is a file" in done.stderr and "Fix:" in done.stderr
    assert "Traceback" not in done.stderr and "audit of" not in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arch", "notes.txt"]


# --- objects that are no series of slices ---------------------------------------------------


def _slice_file(gen, **changes):
    ds = pydicom.dcmread(next((gen.root / "ct/chest").iterdir()))
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def test_a_multi_frame_object_is_one_row(tmp_path, gen):
    ds = _slice_file(gen, NumberOfFrames=3)
    ds.PixelData = ds.PixelData * 3
    (tmp_path / "mf").mkdir()
    ds.save_as(tmp_path / "mf" / "volume.dcm", enforce_file_format=True)
    (row,) = audit(tmp_path, progress=False).rows
    assert (row.folder, row.files, row.slices) == ("mf", 1, 3)
    assert (row.orientation, row.verdict) == ("multi-frame", "multi-frame")
    assert "?" in str(audit(tmp_path, progress=False))  # no slice spacing from positions


def test_slices_without_positions_are_not_a_volume(tmp_path, gen):
    for k in range(3):
        ds = _slice_file(gen, ImagePositionPatient=None, InstanceNumber=k + 1)
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID[:60]}.{k}"
        ds.save_as(tmp_path / f"sc{k}.dcm", enforce_file_format=True)
    rep = audit(tmp_path, progress=False)
    (row,) = rep.rows
    assert row.verdict == "not a volume"
    assert row.strict_error.startswith("SeriesGeometryError: slices without ImagePositionPatient")
    with pytest.raises(SeriesError, match="without ImagePositionPatient"):
        read_series(tmp_path, strict=False, progress=False)


def test_progress_bar_counts_every_file(gen, capsys):
    audit(gen.root, progress=True, workers=1)
    err = capsys.readouterr().err
    assert "auditing" in err
    assert f"{gen.n_files}/{gen.n_files}" in err


# --- Enhanced multi-frame objects ----------------------------------------------------------


def test_enhanced_objects_are_rows_per_stack_checked_like_their_classic_series(tmp_path):
    from m1vision.io import read_dicom
    from m1vision.synthetic import write_enhanced

    write_enhanced(tmp_path / "mr", modality="MR", shape=(6, 24, 20), echoes=2, seed=1)
    write_enhanced(tmp_path / "tilt", variant="tilted", shape=(6, 24, 20), seed=2)
    rep = audit(tmp_path, progress=False)
    rows = {(r.folder, r.stack): r for r in rep}
    assert {s for f, s in rows if f == "mr"} == {"echo time 10 ms", "echo time 20 ms"}

    def facts(r):
        return (r.modality, r.rows, r.columns, r.slices, r.spacing, r.axes, r.verdict)

    for (folder, _), row in rows.items():  # the same data written as a classic series
        if not folder.endswith("/series"):
            assert row.files == 1
            assert facts(row) == facts(rows[(f"{folder}/series", "")])
    tilt = rows[("tilt", "")]
    assert tilt.irregularities[0].startswith("gantry tilt: ")
    with pytest.raises(SeriesError) as info:
        read_dicom(tmp_path / "tilt" / "enhanced.dcm")
    assert tilt.strict_error == f"{type(info.value).__name__}: {info.value.problem}"
    assert set(rep.tiles) == {r.id for r in rep}
