"""m1vision._atomic: nothing half-written, nothing silently overwritten."""

from __future__ import annotations

import json
import os
import re

import pytest

from m1vision._atomic import atomic_path, atomic_write_bytes, atomic_write_json, check_out_folder
from m1vision.errors import ImageWriteError, OutputExistsError


def test_write_creates_parents_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_existing_file_is_not_overwritten(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 1}
    atomic_write_json(target, {"a": 2}, overwrite=True)
    assert json.loads(target.read_text()) == {"a": 2}


def test_failure_midway_leaves_nothing(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_target_appearing_meanwhile_is_not_replaced(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(OutputExistsError), atomic_path(target) as tmp:
        tmp.write_text("mine")
        target.write_text("theirs")  # another writer got there first
    assert target.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_temporary_keeps_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "x.png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"")


def test_written_files_get_the_usual_permissions(tmp_path):
    from m1vision import _atomic

    path = atomic_write_bytes(tmp_path / "out.bin", b"x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_atomic._UMASK
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")  # what open() gives
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


@pytest.mark.parametrize("overwrite", [False, True], ids=["new", "overwrite"])
def test_write_bytes_leaves_only_the_target(tmp_path, overwrite):
    target = tmp_path / "out.png"
    if overwrite:
        target.write_bytes(b"old")
    atomic_write_bytes(target, b"new", overwrite=overwrite)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_write_bytes_failing_midway_leaves_nothing(tmp_path):
    class Unwritable:  # the buffer protocol is missing: the write fails after the create
        pass

    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "sub" / "out.bin", Unwritable())
    assert [p.name for p in (tmp_path / "sub").iterdir()] == []


def test_threads_writing_one_folder_get_distinct_temporaries(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    def write(i):
        return atomic_write_bytes(tmp_path / f"{i % 8}.bin", bytes([i % 256]) * 1000,
                                  overwrite=True)  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(400)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}.bin" for i in range(8)]
    assert all(len(set((tmp_path / f"{i}.bin").read_bytes())) == 1 for i in range(8))


# ---------------------------------------------------------------- the one versioned header


def test_versioned_puts_the_header_first_and_refuses_a_clash():
    from m1vision._atomic import versioned

    data = versioned("m1vision.thing", 2, {"items": [1]})
    assert list(data) == ["schema", "version", "items"]
    with pytest.raises(ValueError, match="header key"):
        versioned("m1vision.thing", 2, {"version": 3})


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"schema": "m1vision.other", "version": 1}, "expected 'm1vision.thing'"),
        ([1, 2], "schema is 'list'"),
        ({"schema": "m1vision.thing", "version": 3}, "Upgrade m1vision"),
        ({"schema": "m1vision.thing", "version": 0}, "reads version 1, 2."),
    ],
    ids=["other-schema", "not-a-dict", "newer", "older"],
)
def test_check_versioned_names_the_file_and_the_fix(data, fragment):
    from m1vision._atomic import check_versioned
    from m1vision.errors import RecordError

    with pytest.raises(RecordError, match=re.escape(fragment)) as info:
        check_versioned(
            data, schema="m1vision.thing", versions=(1, 2), source="x.json", error=RecordError
        )
    assert str(info.value).startswith("x.json: ")


def _out_folder_case(tmp_path, case):
    """An output folder path of the kind ``case`` names (a file, a folder under a file)."""
    (tmp_path / "notes.txt").write_text("not a folder")
    return {
        "a-file": tmp_path / "notes.txt",
        "under-a-file": tmp_path / "notes.txt" / "out",
    }[case]


@pytest.mark.parametrize("case", ["a-file", "under-a-file"])
def test_check_out_folder_names_the_file_in_the_way_and_the_fix(tmp_path, case):
    folder = _out_folder_case(tmp_path, case)
    with pytest.raises(ImageWriteError) as info:
        check_out_folder(folder, name="out_dir")
    message = str(info.value)
    assert f"out_dir={str(folder)!r}" in message
    assert f"{str(tmp_path / 'notes.txt')!r}" in message and "is a file" in message
    assert "Fix:" in message and "Nothing was written" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_check_out_folder_accepts_a_missing_folder_and_makes_nothing(tmp_path):
    assert check_out_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "write",
    [
        lambda p: atomic_write_bytes(p, b"data"),
        lambda p: atomic_write_json(p, {"a": 1}),
        lambda p: atomic_path(p).__enter__(),
    ],
    ids=["bytes", "json", "path"],
)
def test_a_write_under_a_file_says_which_file_is_in_the_way(tmp_path, write):
    (tmp_path / "notes.txt").write_text("not a folder")
    target = tmp_path / "notes.txt" / "out.json"
    with pytest.raises(ImageWriteError) as info:
        write(target)
    message = str(info.value)
    assert f"cannot write {str(target)!r}" in message
    assert f"{str(tmp_path / 'notes.txt')!r}" in message and "is a file" in message
    assert "Fix:" in message
    assert ".out." not in message  # no temporary name
    assert (tmp_path / "notes.txt").read_text() == "not a folder"


@pytest.mark.parametrize(
    "write",
    [
        lambda p: atomic_write_bytes(p, b"data"),
        lambda p: atomic_write_bytes(p, b"data", overwrite=True),
        lambda p: atomic_path(p).__enter__(),
    ],
    ids=["bytes", "bytes-overwrite", "path"],
)
def test_a_ctrl_c_right_after_the_temporary_is_made_leaves_nothing(tmp_path, monkeypatch, write):
    import m1vision._atomic as atomic

    real_open = os.open

    def open_then_interrupted(*args, **kwargs):  # the signal lands as the call returns
        real_open(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "open", open_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / "out.json")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
