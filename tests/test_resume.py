"""Resume that is never stale, with the file operations researchers really do.

Each scenario is its own test, with real files, real DICOM series, real processes and a real
Keras model: inputs rewritten in place with their mtime put back (what ``cp -p``, ``rsync
-a``, ``tar x`` and ``touch -r`` do), a slice of a series replaced, outputs truncated, edited
or deleted, a model file replaced under a Predictor, two runs into one folder, renamed
inputs, a moved output folder, clock skew and a manifest of the previous format. No test
waits for a clock to tick: what a same-tick change leaves is built directly.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from manifest_support import manifest_records
from repo_paths import FIXTURES, TESTS

from m1vision import _hashing
from m1vision.batch import MANIFEST_NAME, Manifest
from m1vision.errors import InvalidTypeError, OutputExistsError, OutputFolderBusyError
from m1vision.io import read_any, read_image, read_nifti, write_image
from m1vision.pipeline import Canny, GaussianBlur, Pipeline, ToUint8
from m1vision.synthetic import write_ct_series

FIXTURE_V1 = FIXTURES / "batch_manifest_v1.json"
EDGES = Pipeline([ToUint8(), GaussianBlur(ksize=3), Canny(low=30, high=90)])
SHAPE = (40, 48)


def _image(seed: int, shape=SHAPE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.uint8)
    y, x = rng.integers(4, 16, size=2)
    img[y : y + 18, x : x + 20] = 120 + 10 * seed
    return img + rng.integers(0, 40, size=shape, dtype=np.uint8)


@pytest.fixture
def bmps(tmp_path) -> Path:
    """Uncompressed images: every file has the same size, so a rewrite keeps the size."""
    root = tmp_path / "in"
    for k in range(4):
        write_image(root / f"img{k}.bmp", _image(k))
    return root


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """What `cp -p other path` does: new bytes, same size here, the old mtime put back."""
    st = path.stat()
    assert len(data) == st.st_size
    with open(path, "r+b") as fh:  # in place: same inode
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


def _bmp_bytes(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".bmp", image)
    assert ok
    return buf.tobytes()


def _reasons(report) -> dict[str, tuple[str, str]]:
    return {item.key: (item.status, item.reason) for item in report.items}


def _assert_fresh(report, pipeline=EDGES):
    for item in report.items:
        assert item.status in ("ok", "skipped"), item
        if item.output and item.output.endswith(".png"):
            expected = pipeline(read_any(item.input).pixels)
            np.testing.assert_array_equal(read_image(item.output), expected)


# --------------------------------------------------------------------------- inputs


def test_an_input_rewritten_in_place_with_its_mtime_restored_is_recomputed(bmps, tmp_path):
    out = tmp_path / "out"
    EDGES.run(bmps, out, progress=False)
    _rewrite_keeping_size_and_mtime(bmps / "img1.bmp", _bmp_bytes(_image(9)))
    report = EDGES.run(bmps, out, progress=False)
    assert _reasons(report)["img1.bmp"] == ("ok", "input changed")
    assert report.reasons == {"input changed": 1, "unchanged": 3}
    _assert_fresh(report)


def test_one_slice_of_a_series_replaced_by_a_same_size_file_is_recomputed(tmp_path):
    import pydicom

    series = write_ct_series(tmp_path / "scans" / "ct", shape=(5, 24, 20), seed=1).folder
    out = tmp_path / "out"
    first = EDGES.run(tmp_path / "scans", out, progress=False)
    assert _reasons(first) == {"ct": ("ok", "new")}
    before = read_nifti(out / "ct.nii.gz").pixels

    victim = series / "IM0003.dcm"
    ds = pydicom.dcmread(victim)
    pixels = ds.pixel_array.copy()
    pixels[4:12, 4:12] += 400  # a lesion drawn in: same size, same header
    ds.PixelData = pixels.tobytes()
    replacement = tmp_path / "replacement.dcm"
    ds.save_as(replacement)
    _rewrite_keeping_size_and_mtime(victim, replacement.read_bytes())

    again = EDGES.run(tmp_path / "scans", out, progress=False)
    assert _reasons(again) == {"ct": ("ok", "input changed")}
    after = read_nifti(out / "ct.nii.gz").pixels
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, EDGES.apply_volume(read_any(series)).pixels)


def test_a_folder_of_series_where_one_series_gains_a_file(tmp_path):
    whole = write_ct_series(tmp_path / "whole", shape=(6, 24, 20), seed=2)
    scans = tmp_path / "scans"
    (scans / "a").mkdir(parents=True)
    for f in whole.files[:5]:
        shutil.copy2(f, scans / "a" / f.name)
    write_ct_series(scans / "b", shape=(4, 24, 20), seed=3)
    out = tmp_path / "out"
    EDGES.run(scans, out, progress=False)
    assert read_nifti(out / "a.nii.gz").pixels.shape[0] == 5

    (scans / "a" / ".DS_Store").write_bytes(b"Finder was here")  # hidden: not content
    assert EDGES.run(scans, out, progress=False).reasons == {"unchanged": 2}

    shutil.copy2(whole.files[5], scans / "a" / whole.files[5].name)  # the sixth slice
    report = EDGES.run(scans, out, progress=False)
    assert _reasons(report) == {"a": ("ok", "input changed"), "b": ("skipped", "unchanged")}
    assert read_nifti(out / "a.nii.gz").pixels.shape[0] == 6


def test_renamed_inputs_are_never_taken_for_each_other(bmps, tmp_path):
    out = tmp_path / "out"
    EDGES.run(bmps, out, progress=False)
    # swap two same-size files by renaming (mtimes travel with the files)
    os.rename(bmps / "img0.bmp", bmps / "tmp.bmp")
    os.rename(bmps / "img1.bmp", bmps / "img0.bmp")
    os.rename(bmps / "tmp.bmp", bmps / "img1.bmp")
    os.rename(bmps / "img2.bmp", bmps / "renamed.bmp")
    report = EDGES.run(bmps, out, progress=False)
    assert _reasons(report) == {
        "img0.bmp": ("ok", "input changed"),
        "img1.bmp": ("ok", "input changed"),
        "img3.bmp": ("skipped", "unchanged"),
        "renamed.bmp": ("ok", "new"),
    }
    _assert_fresh(report)


@pytest.mark.parametrize(
    "offset_ns",
    [365 * 86400 * 10**9, -20 * 365 * 86400 * 10**9],
    ids=["mtime-a-year-in-the-future", "mtime-twenty-years-ago"],
)
def test_clock_skew_in_mtimes_neither_hides_a_change_nor_forces_a_recompute(
    bmps, tmp_path, offset_ns
):
    for p in bmps.iterdir():  # e.g. files from a server whose clock is off, or an old archive
        os.utime(p, ns=(time.time_ns(), time.time_ns() + offset_ns))
    out = tmp_path / "out"
    EDGES.run(bmps, out, progress=False)
    assert EDGES.run(bmps, out, progress=False).reasons == {"unchanged": 4}
    _rewrite_keeping_size_and_mtime(bmps / "img2.bmp", _bmp_bytes(_image(11)))
    report = EDGES.run(bmps, out, progress=False)
    assert report.reasons == {"input changed": 1, "unchanged": 3}
    _assert_fresh(report)


# --------------------------------------------------------------------------- outputs


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "edited":
        st = path.stat()
        path.write_bytes(data[:-20] + bytes(b ^ 0xFF for b in data[-20:]))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:
        path.unlink()


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("truncated", "output truncated"),
        ("edited", "output changed"),
        ("deleted", "output missing"),
    ],
    ids=["truncated", "edited-same-size-mtime-restored", "deleted"],
)
def test_a_damaged_output_is_recomputed_and_the_report_says_why(bmps, tmp_path, how, reason):
    out = tmp_path / "out"
    EDGES.run(bmps, out, progress=False)
    _damage(out / "img2.png", how)
    report = EDGES.run(bmps, out, progress=False)
    assert _reasons(report)["img2.bmp"] == ("ok", reason)
    assert report.reasons == {reason: 1, "unchanged": 3}
    assert f"1 {reason}" in str(report)
    _assert_fresh(report)
    assert EDGES.run(bmps, out, progress=False).reasons == {"unchanged": 4}


def test_a_moved_output_folder_resumes_from_its_relative_manifest(bmps, tmp_path):
    EDGES.run(bmps, tmp_path / "out", progress=False)
    os.rename(tmp_path / "out", tmp_path / "moved")
    assert EDGES.run(bmps, tmp_path / "moved", progress=False).reasons == {"unchanged": 4}
    # a copy (new inodes, mtimes kept): hashed again, found the same
    shutil.copytree(tmp_path / "moved", tmp_path / "copied")
    report = EDGES.run(bmps, tmp_path / "copied", progress=False)
    assert report.reasons == {"unchanged": 4}
    _assert_fresh(report)


# --------------------------------------------------------------------------- the stat cache


def test_a_recorded_hash_is_reused_only_while_the_whole_stat_matches(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"a" * 1000)
    record, hashed = _hashing.identify(path)
    assert hashed == 1 and record["sha256"] == hashlib.sha256(b"a" * 1000).hexdigest()
    assert _hashing.identify(path, record) == (record, 0)  # the cache: no read
    _rewrite_keeping_size_and_mtime(path, b"b" * 1000)  # ctime moved: hashed again
    again, hashed = _hashing.identify(path, record)
    assert hashed == 1 and again["sha256"] == hashlib.sha256(b"b" * 1000).hexdigest()


def test_a_racily_clean_record_is_hashed_again(bmps, tmp_path):
    """A change within the clock tick of the hash leaves the stat as recorded. What that
    leaves behind is built here: a record with the file's current stat but the hash of other
    bytes, in a manifest written within the racy window. Loading drops that stat."""
    out = tmp_path / "out"
    EDGES.run(bmps, out, progress=False)
    path = out / MANIFEST_NAME
    manifest = Manifest.load(path)
    target = bmps / "img1.bmp"
    st = target.stat()
    manifest.items["img1.bmp"]["input"] = {
        "sha256": hashlib.sha256(b"the bytes before the same-tick change").hexdigest(),
        "size": st.st_size,
        "stat": _hashing.stat_key(st),
    }
    manifest.save()
    assert manifest_records(path)["img1.bmp"]["input"]["stat"] == _hashing.stat_key(st)
    # the manifest written in the same tick as the file's last change
    os.utime(path, ns=(st.st_atime_ns, max(st.st_mtime_ns, st.st_ctime_ns)))
    assert Manifest.load(path).items["img1.bmp"]["input"]["stat"] is None
    report = EDGES.run(bmps, out, progress=False)
    assert _reasons(report)["img1.bmp"] == ("ok", "input changed")

    # the same record in a manifest written well after the change is trusted (the cache)
    later = time.time_ns() + 10 * _hashing.RACY_WINDOW_NS
    manifest = Manifest.load(path)
    manifest.items["img1.bmp"]["input"]["stat"] = _hashing.stat_key(target.stat())
    manifest.save()
    os.utime(path, ns=(later, later))
    kept = Manifest.load(path).items["img1.bmp"]["input"]["stat"]
    assert kept == _hashing.stat_key(target.stat())


def test_a_files_kind_is_sniffed_again_unless_its_whole_stat_is_the_recorded_one(bmps, tmp_path):
    """Collecting a resume skips a kind's content check only for files whose size, mtime,
    ctime, inode and device are those recorded with their kind; a rewrite is checked again."""
    from m1vision.batch import InputKind, register_input_kind, unregister_input_kind

    asked = []

    def matches(path):
        asked.append(path.name)
        return path.suffix == ".bmp" and path.read_bytes()[:2] == b"BM"

    register_input_kind(InputKind(name="sniffed_bmp", matches=matches, read=read_any))
    try:
        out = tmp_path / "out"
        first = EDGES.run(bmps, out, progress=False)
        assert sorted(asked) == [f"img{k}.bmp" for k in range(4)]
        assert first.reasons == {"new": 4}
        manifest = out / MANIFEST_NAME
        recorded = manifest_records(manifest)
        assert {k: e["kind"] for k, e in recorded.items()} == {
            f"img{k}.bmp": "sniffed_bmp" for k in range(4)
        }
        later = time.time_ns() + 10 * _hashing.RACY_WINDOW_NS  # stats no longer racy
        os.utime(manifest, ns=(later, later))
        asked.clear()
        again = EDGES.run(bmps, out, progress=False)
        assert again.reasons == {"unchanged": 4} and asked == []
        _rewrite_keeping_size_and_mtime(bmps / "img1.bmp", _bmp_bytes(_image(9)))
        os.utime(manifest, ns=(later, later))
        asked.clear()
        third = EDGES.run(bmps, out, progress=False)
        assert asked == ["img1.bmp"]
        assert third.reasons == {"input changed": 1, "unchanged": 3}
        _assert_fresh(third)
    finally:
        unregister_input_kind("sniffed_bmp")


def test_one_rule_hashes_files_folders_and_models_alike(tmp_path):
    from m1vision import experiment
    from m1vision.batch import file_sha256, input_fingerprint

    folder = tmp_path / "saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "variables.index").write_bytes(b"index")
    expected = hashlib.sha256()
    for rel, data in [("saved_model.pb", b"graph"), ("variables/variables.index", b"index")]:
        expected.update(rel.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode())
    assert _hashing.path_sha256(folder) == expected.hexdigest()
    assert input_fingerprint(folder)["sha256"] == expected.hexdigest()
    assert file_sha256 is _hashing.file_sha256 is experiment.file_sha256


def _walked(folder: Path) -> list[tuple[str, Path]]:
    """The folder rule, the slow obvious way: os.walk, hidden parts out, links to folders not
    entered, regular files (links to them too) in the order of their parts."""
    found = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            path = Path(here) / name
            if not name.startswith(".") and path.is_file():
                found.append((path.relative_to(folder).parts, path))
    return [("/".join(parts), path) for parts, path in sorted(found)]


def test_a_folders_files_are_those_of_the_folder_rule_with_their_stat(tmp_path):
    folder = tmp_path / "series"
    for rel in ["b", "a/c", "a.d/e", "a/z/y", ".hidden/x", "a/.DS_Store", "sub/.git/k"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(rel.encode())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w").write_bytes(b"w")
    (folder / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (folder / "link_to_b").symlink_to(folder / "b")
    (folder / "broken").symlink_to(folder / "gone")
    files = _hashing.folder_files(folder)
    assert files == _walked(folder)
    assert [rel for rel, _ in files] == ["a/c", "a/z/y", "a.d/e", "b", "link_to_b"]
    record, hashed = _hashing.identify(folder)
    assert hashed == 5 and list(record["files"]) == [rel for rel, _ in files]
    for rel, path in files:
        st = path.stat()
        assert record["files"][rel] == {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size": st.st_size,
            "stat": _hashing.stat_key(st),
        }
    assert record["sha256"] == _hashing.tree_sha256(folder)


# --------------------------------------------------------------------------- the previous format


def _v1_folder(tmp_path) -> tuple[Path, Path]:
    """Inputs, outputs and the manifest exactly as m1vision with manifest version 1 wrote
    them (tests/fixtures/batch_manifest_v1.json, written by that code), inputs carrying the
    recorded sizes and mtimes: that code would have skipped every one."""
    v1 = json.loads(FIXTURE_V1.read_text())
    assert v1["version"] == 1
    src, out = tmp_path / "in", tmp_path / "out"

    def image(seed, shape=(48, 40)):  # the images the fixture was made from
        rng = np.random.default_rng(seed)
        img = np.zeros(shape, np.uint16)
        y, x = rng.integers(4, 20, size=2)
        img[y : y + 20, x : x + 16] = 3000 + 100 * seed
        return img + rng.integers(0, 50, size=shape, dtype=np.uint16)

    for k in range(5):
        key = f"sub/img{k}.png" if k % 2 else f"img{k}.png"
        write_image(src / key, image(k))
        rec = v1["items"][key]["input"]
        assert (src / key).stat().st_size == rec["size"]
        os.utime(src / key, ns=(rec["mtime_ns"], rec["mtime_ns"]))
        write_image(out / key, np.zeros((4, 4), np.uint8))  # stale: not what EDGES makes
    shutil.copy(FIXTURE_V1, out / MANIFEST_NAME)
    return src, out


def test_a_manifest_of_the_previous_version_is_migrated_and_its_items_recomputed(tmp_path):
    src, out = _v1_folder(tmp_path)
    pipeline = Pipeline([ToUint8(), GaussianBlur(ksize=3), Canny(low=30, high=90)])
    report = pipeline.run(src, out, progress=False)
    assert report.reasons == {"older manifest": 5}
    _assert_fresh(report, pipeline)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["version"] == 3 and manifest["job"] == json.loads(FIXTURE_V1.read_text())["job"]
    assert pipeline.run(src, out, progress=False).reasons == {"unchanged": 5}


def _as_version_2(path: Path) -> dict:
    """Rewrite the manifest at ``path`` as version 2 wrote it (one record per input key), its
    mtime kept; return the records."""
    st = path.stat()
    data = json.loads(path.read_text())
    records = manifest_records(path)
    path.write_text(json.dumps({**data, "version": 2, "items": records}))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return records


def test_a_version_2_manifest_is_read_and_its_records_reused_without_hashing(tmp_path, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    write_ct_series(src / "ct", shape=(3, 16, 16))  # a folder input: a record per file
    for k in range(3):
        write_image(src / f"img{k}.png", _image(k))
    EDGES.run(src, out, progress=False)
    path = out / MANIFEST_NAME
    later = time.time_ns() + 10 * _hashing.RACY_WINDOW_NS  # no stat racy: hashes reusable
    os.utime(path, ns=(later, later))
    records = _as_version_2(path)
    assert all(rec["input"].get("files") or rec["input"]["stat"] for rec in records.values())
    hashed = []
    file_sha256 = _hashing.file_sha256
    monkeypatch.setattr(_hashing, "file_sha256", lambda p: hashed.append(p) or file_sha256(p))
    report = EDGES.run(src, out, progress=False)
    assert report.reasons == {"unchanged": 4} and hashed == []
    assert json.loads(path.read_text())["version"] == 3  # written anew in the current version
    assert manifest_records(path) == records
    os.utime(path, ns=(later, later))
    assert EDGES.run(src, out, progress=False).reasons == {"unchanged": 4} and hashed == []


def test_a_manifest_of_the_previous_version_still_refuses_another_job(tmp_path):
    from m1vision.errors import JobMismatchError

    src, out = _v1_folder(tmp_path)
    other = Pipeline([ToUint8(), GaussianBlur(ksize=5), Canny(low=30, high=90)])
    with pytest.raises(JobMismatchError, match="ksize: 5 here, 3 there"):
        other.run(src, out, progress=False)


@pytest.mark.parametrize("version", [0, 4], ids=["older-unknown", "newer"])
def test_a_manifest_of_an_unknown_version_is_refused_with_the_fix(tmp_path, bmps, version):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text(
        json.dumps({"schema": "m1vision.batch_manifest", "version": version, "items": {}})
    )
    with pytest.raises(OutputExistsError, match=f"unsupported .* version {version}") as info:
        EDGES.run(bmps, out, progress=False)
    assert "reads version 1, 2, 3" in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]


# --------------------------------------------------------------------------- one run per folder

HOLDER = """
import sys
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, {tests!r})
from batch_support import gated_pipeline
with ThreadPoolExecutor(max_workers=1) as pool:
    gated_pipeline({release!r}).run({src!r}, {out!r}, executor=pool, chunksize=1, progress=False)
print("finished")
"""


def _start_holder(src: Path, out: Path, release: Path) -> subprocess.Popen:
    """A child process running into ``out``, its images held until ``release`` exists."""
    code = HOLDER.format(tests=str(TESTS), release=str(release), src=str(src), out=str(out))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    lock = out / ".m1vision.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the child holds the lock and has named itself
        try:
            if json.loads(lock.read_text()).get("pid") == child.pid:
                return child
        except (OSError, ValueError):
            pass
        if child.poll() is not None:
            break
        time.sleep(0.02)
    child.kill()
    raise AssertionError("the holder process did not take the lock")


def test_a_second_run_into_a_busy_folder_fails_at_once_naming_the_folder_and_holder(bmps, tmp_path):
    from batch_support import gated_pipeline

    out, release = tmp_path / "out", tmp_path / "release"
    child = _start_holder(bmps, out, release)
    try:
        with pytest.raises(OutputFolderBusyError) as info:
            gated_pipeline(release).run(bmps, out, progress=False)
        # at once, not after the holder: the holder cannot finish before `release` exists
        assert child.poll() is None and not release.exists()
        assert info.value.pid == child.pid and info.value.folder == out
        assert str(out) in str(info.value) and f"process {child.pid}" in str(info.value)
        assert "another output folder" in str(info.value)
    finally:
        release.touch()
        child.wait(timeout=120)
    assert child.returncode == 0 and "finished" in child.stdout.read()
    assert gated_pipeline(release).run(bmps, out, progress=False).reasons == {"unchanged": 4}


def test_a_killed_runs_lock_blocks_nobody(bmps, tmp_path):
    from batch_support import gated_pipeline

    out, release = tmp_path / "out", tmp_path / "release"
    child = _start_holder(bmps, out, release)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert json.loads((out / ".m1vision.lock").read_text())["pid"] == child.pid  # stale file
    release.touch()
    report = gated_pipeline(release).run(bmps, out, progress=False)
    assert report.counts["failed"] == 0 and len(report) == 4
    assert not (out / ".m1vision.lock").exists()  # released and removed at the end


def _race(src: str, out: str, release: str, barrier, queue) -> None:
    sys.path.insert(0, str(TESTS))
    from batch_support import gated_pipeline

    barrier.wait()
    try:
        report = gated_pipeline(release).run(src, out, chunksize=1, progress=False)
        queue.put(("ran", dict(report.reasons)))
    except OutputFolderBusyError as exc:
        queue.put(("busy", exc.pid))


def test_two_runs_started_together_into_one_folder_one_runs_one_is_refused(bmps, tmp_path):
    # fork where there is one (as the engine's own workers): starts in milliseconds
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    out, release = tmp_path / "out", tmp_path / "release"
    args = (str(bmps), str(out), str(release), barrier, queue)
    procs = [ctx.Process(target=_race, args=args) for _ in "ab"]
    for p in procs:
        p.start()
    try:  # the winner holds its images until `release` exists: the loser meets its lock
        refused = queue.get(timeout=120)
    finally:
        release.touch()
    ran = queue.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
    assert refused[0] == "busy" and refused[1] in {p.pid for p in procs}
    assert ran == ("ran", {"new": 4})


# --------------------------------------------------------------------------- models


@pytest.fixture
def two_models(tmp_path):
    import keras

    def build(seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((SHAPE[0], SHAPE[1], 1))
        x = keras.layers.GlobalAveragePooling2D()(inputs)
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))

    first, second = tmp_path / "m1.keras", tmp_path / "m2.keras"
    build(1).save(first)
    build(2).save(second)
    return first, second


def test_a_model_file_replaced_under_a_predictor_cannot_mislabel_its_results(
    bmps, tmp_path, two_models
):
    from m1vision import experiment
    from m1vision.errors import JobMismatchError
    from m1vision.inference import Predictor

    model_path, other = two_models
    loaded_sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
    predictor = Predictor(model_path, device="cpu", batch_size=4)
    assert predictor.model_sha256 == loaded_sha
    os.replace(other, model_path)  # a retrained model copied over the file
    out = tmp_path / "pred"
    predictor.predict_folder(bmps, out, progress=False)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["job"]["config"]["model"]["sha256"] == loaded_sha  # what made them

    with pytest.raises(JobMismatchError, match=r"model\.sha256"):  # the new file is another job
        Predictor(model_path, device="cpu", batch_size=4).predict_folder(bmps, out, progress=False)

    path = experiment.record(
        "replaced", pipeline=Pipeline([ToUint8()]), inputs=bmps, predictor=predictor,
        out_dir=tmp_path / "exp",
    )  # fmt: skip
    assert experiment.load_record(path)["model"]["sha256"] == loaded_sha


def test_a_model_changed_while_loading_is_refused(tmp_path, two_models, monkeypatch):
    from m1vision.errors import ModelLoadError
    from m1vision.inference import _models

    model_path, other = two_models
    real = _models._load_keras_file

    def load_then_replace(p, **kwargs):  # the file is replaced while Keras reads it
        model = real(p, **kwargs)
        os.replace(other, model_path)
        return model

    monkeypatch.setattr(_models, "_load_keras_file", load_then_replace)
    with pytest.raises(ModelLoadError, match="changed on disk while it was being loaded"):
        _models.load_model_identified(model_path)


def _holds_the_lock_file(fd: int, lock: str, queue) -> None:
    try:
        queue.put(os.path.samestat(os.fstat(fd), os.stat(lock)))
    except OSError:
        queue.put(False)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is the case under test")
def test_a_worker_forked_during_a_run_does_not_keep_its_lock(tmp_path):
    from m1vision._atomic import _HELD, LOCK_NAME, folder_lock

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with folder_lock(tmp_path):
        (fd,) = _HELD
        child = ctx.Process(
            target=_holds_the_lock_file, args=(fd, str(tmp_path / LOCK_NAME), queue)
        )
        child.start()
        assert queue.get(timeout=60) is False  # its copy was closed at fork
        child.join(timeout=60)
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / LOCK_NAME))  # ours is not


def test_a_savedmodel_folder_has_one_hash_from_loading_to_records(tmp_path, two_models):
    import keras

    from m1vision.inference import Predictor, load_model

    folder = tmp_path / "exported"
    keras.saving.load_model(two_models[0]).export(folder, verbose=False)
    expected = _hashing.tree_sha256(folder)
    assert load_model(folder).sha256 == expected
    predictor = Predictor(folder, device="cpu", batch_size=4)
    assert predictor.model_sha256 == expected
    bmps = tmp_path / "in"
    write_image(bmps / "a.bmp", _image(1))
    predictor.predict_folder(bmps, tmp_path / "pred", progress=False)
    manifest = json.loads((tmp_path / "pred" / MANIFEST_NAME).read_text())
    assert manifest["job"]["config"]["model"] == {"file": "exported", "sha256": expected}


@pytest.mark.parametrize("path", [None, 3, np.zeros(2)], ids=["none", "int", "array"])
def test_input_fingerprint_of_no_path_names_the_argument_and_the_fix(path):
    from m1vision.batch import input_fingerprint

    with pytest.raises(InvalidTypeError) as info:
        input_fingerprint(path)
    assert str(info.value).startswith("path must be a str or pathlib.Path")
    assert "Fix: pass its path" in str(info.value)
