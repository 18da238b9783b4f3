"""m1vision.batch: one engine, resume that is never stale, input kinds, the report.

The stale cases are here, each with real files: another pipeline into the same
folder, a changed input, a run killed mid-way (a real subprocess, SIGKILL), and a job whose
fingerprint changes (what a retrained model is to a prediction job).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from manifest_support import manifest_records
from repo_paths import TESTS

from m1vision import batch
from m1vision.batch import MANIFEST_NAME, BatchItem, InputKind, Job
from m1vision.errors import ImageWriteError, JobMismatchError, OutputExistsError
from m1vision.io import read_any, read_image, write_image
from m1vision.pipeline import Canny, GaussianBlur, Pipeline, Step, ToUint8, register_step

A = Pipeline([ToUint8(), GaussianBlur(ksize=3), Canny(low=30, high=90)])
B = Pipeline([ToUint8(), GaussianBlur(ksize=3), Canny(low=50, high=90)])


def _image(seed: int, shape=(48, 40)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.uint16)
    y, x = rng.integers(4, 20, size=2)
    img[y : y + 20, x : x + 16] = 3000 + 100 * seed
    return img + rng.integers(0, 50, size=shape, dtype=np.uint16)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "in"
    for k in range(5):
        write_image(root / ("sub" if k % 2 else ".") / f"img{k}.png", _image(k))
    return root


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _check_outputs(report, pipeline):
    for item in report.items:
        assert item.status in ("ok", "skipped")
        np.testing.assert_array_equal(
            read_image(item.output), pipeline(read_any(item.input).pixels)
        )


# ----------------------------------------------------------------- stale case 1: another job


def test_another_pipeline_into_the_same_folder_stops_before_writing(folder, tmp_path):
    out = tmp_path / "out"
    A.run(folder, out, progress=False)
    before = _snapshot(out)
    with pytest.raises(JobMismatchError) as info:
        B.run(folder, out, progress=False)
    message = str(info.value)
    assert "pipeline.steps[2].params.low: 50.0 here, 30.0 there" in message
    assert "overwrite=True" in message and "another output folder" in message
    assert "Nothing was written" in message
    assert info.value.manifest == out / MANIFEST_NAME
    assert isinstance(info.value, OutputExistsError)  # also a FileExistsError
    assert _snapshot(out) == before  # not a byte, not an mtime changed

    again = B.run(folder, out, progress=False, overwrite=True)
    assert again.counts == {"ok": 5, "skipped": 0, "failed": 0}
    assert again.reasons == {"overwrite": 5}
    _check_outputs(again, B)
    # and now the folder is B's: B resumes, A is refused
    assert B.run(folder, out, progress=False).reasons == {"unchanged": 5}
    with pytest.raises(JobMismatchError):
        A.run(folder, out, progress=False)


def test_another_suffix_is_another_job(folder, tmp_path):
    A.run(folder, tmp_path / "out", progress=False)
    with pytest.raises(JobMismatchError, match=r'suffix: "_e\.png" here, "\.png" there'):
        A.run(folder, tmp_path / "out", progress=False, suffix="_e.png")


def test_outputs_without_a_manifest_are_not_taken_over(folder, tmp_path):
    out = tmp_path / "out"
    write_image(out / "img0.png", np.zeros((4, 4), np.uint8))  # e.g. an older m1vision's
    before = _snapshot(out)
    with pytest.raises(OutputExistsError, match=r"no m1vision-manifest\.json says"):
        A.run(folder, out, progress=False)
    assert _snapshot(out) == before
    assert A.run(folder, out, progress=False, overwrite=True).counts["ok"] == 5


@pytest.mark.parametrize("case", ["a-file", "under-a-file"])
def test_an_out_dir_that_is_a_file_stops_before_any_work(folder, tmp_path, case):
    (tmp_path / "notes.txt").write_text("not a folder")
    out = {"a-file": tmp_path / "notes.txt", "under-a-file": tmp_path / "notes.txt" / "out"}[case]
    before = _snapshot(tmp_path)
    with pytest.raises(ImageWriteError, match=r"out_dir=.*is a file.*Fix:"):
        batch.run(MeanJob(b"weights v1"), folder, out, progress_bar=False)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "cannot be read as a manifest"),
        ('{"schema": "m1vision.other", "version": 1}', "expected 'm1vision.batch_manifest'"),
        ('{"schema": "m1vision.batch_manifest", "version": 99}', "Upgrade m1vision"),
        (
            '{"schema": "m1vision.batch_manifest", "version": 3, "items": {"key": ["a.png"]}}',
            "not the columns of records .* damaged",
        ),
    ],
    ids=["not-json", "other-schema", "newer-version", "damaged-columns"],
)
def test_a_damaged_or_foreign_manifest_stops_the_run(folder, tmp_path, content, fragment):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text(content)
    with pytest.raises(OutputExistsError, match=fragment):
        A.run(folder, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]


# ----------------------------------------------------------------- stale case 2: changed input


def test_a_changed_input_is_recomputed_and_says_why(folder, tmp_path):
    out = tmp_path / "out"
    A.run(folder, out, progress=False)
    write_image(folder / "img0.png", _image(42), overwrite=True)  # new content
    report = A.run(folder, out, progress=False)
    by_key = {item.key: item for item in report.items}
    assert by_key["img0.png"].status == "ok"
    assert by_key["img0.png"].reason == "input changed"
    assert report.reasons == {"input changed": 1, "unchanged": 4}
    _check_outputs(report, A)  # img0's output is the new input's


def test_runs_record_each_inputs_content_hash_and_stat(folder, tmp_path):
    out = tmp_path / "out"
    A.run(folder, out, progress=False)
    recorded = manifest_records(out / MANIFEST_NAME)["img0.png"]
    st = (folder / "img0.png").stat()
    assert (
        recorded["input"]["sha256"]
        == hashlib.sha256((folder / "img0.png").read_bytes()).hexdigest()
    )
    assert recorded["input"]["size"] == st.st_size
    # the stat the hash is reused on; null where it was too recent to trust (racily clean)
    assert recorded["input"]["stat"] in (
        [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev],
        None,
    )
    written = (out / "img0.png").read_bytes()
    assert recorded["output_file"]["sha256"] == hashlib.sha256(written).hexdigest()
    assert recorded["output_file"]["size"] == len(written)


def test_a_touched_input_is_hashed_again_and_kept_when_its_content_is_the_same(folder, tmp_path):
    out = tmp_path / "out"
    A.run(folder, out, progress=False)
    st = (folder / "img0.png").stat()
    os.utime(folder / "img0.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a touch
    report = A.run(folder, out, progress=False)
    assert report.reasons == {"unchanged": 5}
    assert manifest_records(out / MANIFEST_NAME)["img0.png"]["input"]["stat"] in (None, [
        st.st_mtime_ns + 10**9, (folder / "img0.png").stat().st_ctime_ns, st.st_ino, st.st_dev
    ])  # fmt: skip


def test_a_deleted_output_and_a_failed_input_are_recomputed(folder, tmp_path):
    out = tmp_path / "out"
    (folder / "broken.png").write_bytes(b"not a png")
    first = A.run(folder, out, progress=False)
    assert first.counts == {"ok": 5, "skipped": 0, "failed": 1}
    (out / "sub" / "img1.png").unlink()
    write_image(folder / "broken.png", _image(7), overwrite=True)  # repaired
    second = A.run(folder, out, progress=False)
    reasons = {item.key: (item.status, item.reason) for item in second.items}
    assert reasons["sub/img1.png"] == ("ok", "output missing")
    assert reasons["broken.png"] == ("ok", "failed before")
    _check_outputs(second, A)


# ----------------------------------------------------------------- stale case 3: killed run

CHILD = """
import sys
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, {tests!r})
from batch_support import slow_pipeline
with ThreadPoolExecutor(max_workers=1) as pool:
    slow_pipeline(0.15).run({src!r}, {out!r}, executor=pool, chunksize=1, progress=False)
print("finished")
"""


FORK_CHILD = """
import os, signal, sys
from m1vision.io import write_image
from m1vision.pipeline import Canny, Pipeline
import numpy as np
for k in range(16):
    write_image({src!r} + f"/img{{k:02d}}.png", np.full((16, 16), k * 10, np.uint8))
fired = []
def ctrl_c_during_fork():  # the signal lands while the worker pool forks
    if not fired:
        fired.append(True)
        os.kill(os.getpid(), signal.SIGINT)
os.register_at_fork(after_in_parent=ctrl_c_during_fork)
try:
    report = Pipeline([Canny(low=10, high=30)]).run({src!r}, {out!r}, progress=False)
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(130)
print("finished", report.executor)
"""


def test_a_ctrl_c_while_the_worker_pool_forks_is_not_lost(tmp_path):
    code = FORK_CHILD.format(src=str(tmp_path / "in"), out=str(tmp_path / "out"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, (done.stdout, done.stderr)
    assert done.stdout.strip() == "interrupted"
    assert "Exception ignored" not in done.stderr


@pytest.mark.slow
def test_a_killed_run_resumes_with_what_its_manifest_recorded(tmp_path):
    sys.path.insert(0, str(TESTS))
    try:
        from batch_support import slow_pipeline
    finally:
        sys.path.remove(str(TESTS))
    src, out = tmp_path / "in", tmp_path / "out"
    n = 40
    for k in range(n):
        write_image(src / f"img{k:02d}.png", _image(k))
    code = CHILD.format(tests=str(TESTS), src=str(src), out=str(out))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    recorded = {}
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:  # until the manifest holds a few finished files
            try:
                recorded = json.loads((out / MANIFEST_NAME).read_text())["items"]["key"]
            except (OSError, ValueError):
                recorded = {}
            if len(recorded) >= 3:
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL and "finished" not in child.stdout.read()
    assert 3 <= len(recorded) < n

    # the manifest on disk is whole (atomic), names the job and what was done
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["schema"] == "m1vision.batch_manifest" and manifest["version"] == 3
    done = set(manifest_records(out / MANIFEST_NAME))
    assert not list(out.glob("batch_report-*.json"))  # killed before its report
    # no temporary file left either; only the killed run's lock file, which blocks nobody
    assert [p.name for p in out.rglob(".*")] == [".m1vision.lock"]

    pipeline = slow_pipeline(0.0 + 0.15)  # the same job: same parameters, same fingerprint
    report = pipeline.run(src, out, executor=ThreadPoolExecutor(2), progress=False)
    assert report.counts["failed"] == 0 and len(report) == n
    assert {item.key for item in report.skipped} == done
    assert all(item.reason == "unchanged" for item in report.skipped)
    assert {item.reason for item in report.ok} <= {"new", "interrupted"}
    assert len(report.ok) == n - len(done)
    fast = Pipeline(list(pipeline)[1:])
    for item in report.items:
        np.testing.assert_array_equal(read_image(item.output), fast(read_any(item.input).pixels))


# ----------------------------------------------------------------- a job's fingerprint hook


@dataclasses.dataclass(frozen=True, kw_only=True)
class MeanItem(BatchItem):
    """What a prediction item is to BatchItem: more fields, nothing else."""

    mean: float | None = None


def _means(payload, tasks):
    scale = payload["scale"]
    out = []
    for _key, src, _kind, dst in tasks:
        assert dst is None
        out.append(
            {
                "status": "ok",
                "seconds": 0.001,
                "error": None,
                "mean": scale * float(read_any(src).pixels.mean()),
            }
        )
    return out


class MeanJob(Job):
    """A record-only job (like predictions): no file per input, results in the manifest."""

    schema = "test.mean"
    item_type = MeanItem
    name = "means"

    def __init__(self, model_bytes: bytes):
        self.model_bytes = model_bytes  # stands for a model file: its hash is the identity

    def config(self):
        import hashlib

        return {"model_sha256": hashlib.sha256(self.model_bytes).hexdigest(), "scale": 2.0}

    def output_path(self, inp, out_dir):
        return None

    def worker(self):
        return _means, {"scale": 2.0}

    def processes_ok(self):
        return False


def test_a_job_whose_fingerprint_changes_is_refused_and_items_keep_their_extra_fields(
    folder, tmp_path
):
    out = tmp_path / "means"
    first = batch.run(MeanJob(b"weights v1"), folder, out, progress_bar=False)
    assert first.counts == {"ok": 5, "skipped": 0, "failed": 0}
    expected = {i.key: 2.0 * float(read_any(i.input).pixels.mean()) for i in first.items}
    assert {i.key: i.mean for i in first.items} == pytest.approx(expected)
    assert all(type(i) is MeanItem and i.output is None for i in first.items)

    again = batch.run(MeanJob(b"weights v1"), folder, out, progress_bar=False)
    assert again.reasons == {"unchanged": 5}
    assert {i.key: i.mean for i in again.items} == pytest.approx(expected)  # from the manifest
    # the report: one item per line, each as the JSON encoder writes its dict
    text = again.path.read_text()
    assert json.loads(text) == again.to_dict()
    lines = [line.strip().rstrip(",") for line in text.splitlines() if '{"key":' in line]
    assert lines == [
        json.dumps(i.to_dict(), ensure_ascii=False, separators=(",", ":")) for i in again.items
    ]

    before = _snapshot(out)
    with pytest.raises(JobMismatchError, match="model_sha256") as info:
        batch.run(MeanJob(b"weights v2, retrained"), folder, out, progress_bar=False)
    assert info.value.differences[0].startswith("model_sha256: ")
    assert _snapshot(out) == before
    new = batch.run(MeanJob(b"weights v2"), folder, out, progress_bar=False, overwrite=True)
    assert new.reasons == {"overwrite": 5}


# ----------------------------------------------------------------- input kinds (the hook)


def _is_stack(folder: Path) -> bool:
    return (folder / "STACK").is_file()


def _read_stack(folder: Path):
    return np.stack([read_image(p) for p in sorted(folder.glob("*.png"))])


def _apply_per_slice(function, stack, src):
    return np.stack([function(s) for s in stack])


def _write_max(path: Path, result, source):
    write_image(path, result.max(axis=0), overwrite=True)


STACK = InputKind(
    name="test_stack",
    folder=True,
    matches=_is_stack,
    read=_read_stack,
    apply=_apply_per_slice,
    output_stem=lambda key: key,
    output_suffix="_max.png",
    write=_write_max,
)


def test_a_collected_input_is_an_immutable_value_with_its_path(folder):
    import pickle

    inputs = batch.collect(folder)
    inp = inputs[0]
    assert inp.key == "img0.png" and inp.kind == "image"
    assert inp.path == folder.absolute() / "img0.png" and isinstance(inp.path, Path)
    assert inp.fspath == str(inp.path) and inp.stat.st_size == inp.path.stat().st_size
    assert inp == batch.Input("img0.png", folder.absolute() / "img0.png", "image")
    assert len({inp, batch.Input("img0.png", inp.fspath, "image")}) == 1
    assert inp != batch.Input("img0.png", inp.fspath, "other")
    assert pickle.loads(pickle.dumps(inp)) == inp
    with pytest.raises(dataclasses.FrozenInstanceError):
        inp.key = "other.png"


def test_a_folder_kind_makes_a_folder_one_input_with_one_output(tmp_path, monkeypatch):
    monkeypatch.setitem(batch._inputs._KINDS, STACK.name, STACK)
    src = tmp_path / "in"
    for k in range(3):
        write_image(src / "series1" / f"{k}.png", _image(k))
    (src / "series1" / "STACK").write_text("")
    write_image(src / "plain.png", _image(9))
    inputs = batch.collect(src)
    assert [(i.key, i.kind) for i in inputs] == [("plain.png", "image"), ("series1", "test_stack")]

    report = A.run(src, tmp_path / "out", progress=False, executor=ThreadPoolExecutor(2))
    assert report.counts == {"ok": 2, "skipped": 0, "failed": 0}
    out = tmp_path / "out" / "series1_max.png"
    expected = np.stack([A(s) for s in _read_stack(src / "series1")]).max(axis=0)
    np.testing.assert_array_equal(read_image(out), expected)

    write_image(src / "series1" / "1.png", _image(11), overwrite=True)  # one file of the series
    again = A.run(src, tmp_path / "out", progress=False, executor=ThreadPoolExecutor(2))
    assert {i.key: i.reason for i in again.items} == {
        "plain.png": "unchanged",
        "series1": "input changed",
    }


# ----------------------------------------------------------------- executors and the report


def test_the_report_says_which_executor_ran(folder, tmp_path):
    report = A.run(folder, tmp_path / "a", progress=False)
    assert report.executor.endswith("(default)")
    assert report.executor.split("(")[0] in ("ThreadPoolExecutor", "ProcessPoolExecutor")
    assert "executor: " in str(report)
    with ThreadPoolExecutor(max_workers=3) as pool:
        given = A.run(folder, tmp_path / "b", progress=False, executor=pool)
    assert given.executor == "ThreadPoolExecutor(max_workers=3)"


@pytest.mark.parametrize(
    ("cores", "n_todo", "expected"),
    [
        (16, 960, "ProcessPoolExecutor(max_workers=16"),
        (4, 16, "ProcessPoolExecutor(max_workers=4"),
        (4, 15, "ThreadPoolExecutor(max_workers=4)"),
        (2, 960, "ProcessPoolExecutor(max_workers=2"),
        (1, 960, "ThreadPoolExecutor(max_workers=1)"),
        (16, 3, "ThreadPoolExecutor(max_workers=3)"),
    ],
    ids=["16-cores", "4-cores-enough", "4-cores-too-few", "2-cores", "1-core", "few-inputs"],
)
def test_the_default_executor_picks_processes_when_they_win(monkeypatch, cores, n_todo, expected):
    monkeypatch.setattr(batch._executors, "available_cores", lambda: cores)
    executor, name = batch.default_executor(n_todo)
    try:
        assert name.startswith(expected)
        kind = ProcessPoolExecutor if "Process" in expected else ThreadPoolExecutor
        assert isinstance(executor, kind)
        assert executor._max_workers == min(cores, n_todo)
    finally:
        executor.shutdown()
        batch.shutdown_workers()
    _, name = batch.default_executor(n_todo, processes=False)
    assert name.startswith("ThreadPoolExecutor")


@pytest.mark.slow
def test_processes_and_threads_give_the_same_outputs(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(batch._executors, "PROCESS_MIN_WORKERS", 2)
    monkeypatch.setattr(batch._executors, "PROCESS_MIN_ITEMS_PER_WORKER", 1)
    procs = A.run(folder, tmp_path / "p", progress=False)
    assert procs.executor.startswith("ProcessPoolExecutor(") and "started" in procs.executor
    # the pool stays warm for the next run of the same steps, and a new step starts another
    warm = A.run(folder, tmp_path / "w", progress=False)
    assert warm.executor.endswith("warm) (default)")

    @register_step("test_batch_identity")
    class Identity(Step):  # registered after the pool forked: its workers would not know it
        def __call__(self, image):
            return image

    with_new_step = Pipeline([Identity(), *A])
    fresh = with_new_step.run(folder, tmp_path / "n", progress=False)
    assert fresh.executor.endswith("started) (default)") and fresh.counts["ok"] == 5
    batch.shutdown_workers()
    assert A.run(folder, tmp_path / "s", progress=False).executor.endswith("started) (default)")
    batch.shutdown_workers()
    threads = A.run(folder, tmp_path / "t", progress=False, executor=ThreadPoolExecutor(2))
    for a, b in zip(procs.items, threads.items, strict=True):
        assert a.key == b.key and a.status == b.status == "ok"
        np.testing.assert_array_equal(read_image(a.output), read_image(b.output))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_process_pool_started_while_opencv_runs_threads_does_not_hang(
    folder, tmp_path, monkeypatch
):
    """OpenCV's pool threads are not copied by a fork, but their locks are: a worker forked
    while they live hangs when it sets its thread count. The pool is started with OpenCV held
    to one thread, and OpenCV gets its threads back after."""
    monkeypatch.setattr(batch._executors, "PROCESS_MIN_WORKERS", 2)
    monkeypatch.setattr(batch._executors, "PROCESS_MIN_ITEMS_PER_WORKER", 1)
    monkeypatch.setattr(batch._executors, "available_cores", lambda: 2)
    batch.shutdown_workers()
    threads = max(2, cv2.getNumThreads())
    cv2.setNumThreads(threads)
    picture = np.random.default_rng(0).integers(0, 255, (2048, 2048), np.uint8)
    for _ in range(3):  # OpenCV's parallel loops: its pool threads now wait for work
        cv2.GaussianBlur(picture, (9, 9), 0)
    try:
        report = A.run(folder, tmp_path / "out", progress=False)
        assert report.executor.startswith("ProcessPoolExecutor(") and report.counts["ok"] == 5
        assert cv2.getNumThreads() == threads
    finally:
        batch.shutdown_workers()


def test_the_progress_helper_counts(capsys):
    with batch.progress(4, desc="things", initial=1) as bar:
        bar.update(3)
    assert "things" in capsys.readouterr().err
    with batch.progress(4, show=False) as bar:
        bar.update(4)
    assert capsys.readouterr().err == ""
