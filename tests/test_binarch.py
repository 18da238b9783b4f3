"""m1vision.binarch on header cuts of real published macOS wheels and real ELF files here.

The fixtures come from tools/cut_wheel_fixtures.py (see tests/fixtures/binaries/MANIFEST.json).
Expected architectures are derived from each source wheel's platform tag (what PyPI says the
wheel is built for), not from the reader's output.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

import pytest
from repo_paths import FIXTURES

from m1vision.binarch import (
    BinaryFormatError,
    BinaryInfo,
    package_binaries,
    read_architectures,
    summarize,
)
from m1vision.errors import InvalidParameterError, M1VisionError

BINARIES = FIXTURES / "binaries"
MANIFEST = json.loads((BINARIES / "MANIFEST.json").read_text())["fixtures"]

# A wheel's platform tag names what it is built for (PEP 425 / packaging's mac tags).
TAG_ARCHS = {"arm64": {"arm64"}, "x86_64": {"x86_64"}, "universal2": {"x86_64", "arm64"}}


def tag_of(entry: dict) -> tuple[str, str]:
    """('11.0', 'arm64') from a platform tag like macosx_11_0_arm64."""
    _, major, minor, arch = entry["platform_tag"].split("_", 3)
    return f"{major}.{minor}", arch


@pytest.fixture(params=sorted(MANIFEST), ids=lambda name: name.split("-_")[0])
def fixture_file(request, tmp_path):
    name = request.param
    data = gzip.decompress((BINARIES / name).read_bytes())
    path = tmp_path / name.removesuffix(".gz")
    path.write_bytes(data)
    return path, MANIFEST[name], data


def test_fixture_matches_its_manifest(fixture_file):
    _, entry, data = fixture_file
    assert len(data) == entry["cut_size"]
    assert hashlib.sha256(data).hexdigest() == entry["cut_sha256"]
    assert entry["wheel"].endswith(f"{entry['platform_tag']}.whl")
    # only the recorded ranges carry bytes: nothing of the original body was kept
    kept = bytearray(len(data))
    for start, length in entry["kept"]:
        kept[start : start + length] = data[start : start + length]
    assert bytes(kept) == data
    assert entry["kept_bytes"] < 4096 < entry["member_size"]


def test_architectures_follow_the_wheel_tag(fixture_file):
    path, entry, _ = fixture_file
    info = read_architectures(path)
    _, arch = tag_of(entry)
    assert set(info.architectures) == TAG_ARCHS[arch]
    assert len(info.architectures) == len(TAG_ARCHS[arch])
    assert info.format == ("mach-o-fat" if arch == "universal2" else "mach-o")
    assert info.runs_on("arm64") == ("arm64" in TAG_ARCHS[arch])
    assert info.runs_on("x86_64") == ("x86_64" in TAG_ARCHS[arch])


def test_min_macos_matches_the_wheel_tag(fixture_file):
    path, entry, _ = fixture_file
    info = read_architectures(path)
    version, _ = tag_of(entry)
    by_arch = dict(zip(info.architectures, info.min_macos, strict=True))
    for arch, min_macos in by_arch.items():
        # arm64 Macs started with macOS 11, so an arm64 slice never targets older
        expected = "11.0" if arch == "arm64" and version.startswith("10.") else version
        assert min_macos == expected, (arch, min_macos)


def test_arm64_alias_aarch64():
    assert BinaryInfo("elf", ("aarch64",)).runs_on("arm64")
    assert BinaryInfo("mach-o", ("arm64",)).runs_on("aarch64")
    assert not BinaryInfo("mach-o", ("x86_64",)).runs_on("arm64")


def numpy_extension_files() -> list[Path]:
    dist = importlib.metadata.distribution("numpy")
    files = [Path(dist.locate_file(f)) for f in dist.files if f.name.endswith(".so")]
    return sorted(files)[:5]


@pytest.mark.skipif(sys.platform != "linux", reason="ELF files exist on Linux")
@pytest.mark.parametrize("path", numpy_extension_files(), ids=lambda p: p.name)
def test_elf_extension_of_this_venv(path):
    info = read_architectures(path)
    assert info.format == "elf"
    # the interpreter loaded these, so they are built for this machine
    assert info.architectures == (platform.machine(),)
    assert info.min_macos == ()


def test_python_executable_matches_this_machine():
    info = read_architectures(Path(sys.executable).resolve())
    assert info.runs_on(platform.machine())


def test_package_binaries_numpy():
    entries = package_binaries("numpy")
    names = [name for name, _ in entries]
    assert names == sorted(names)
    assert any(n.startswith("numpy/_core/_multiarray_umath.") for n in names)
    summary = summarize(entries)
    assert summary["files"] == len(entries)
    assert summary["architectures"] == {platform.machine(): len(entries)}


def test_package_binaries_pure_python_package_has_none():
    assert package_binaries("packaging") == []


def test_package_binaries_unknown_distribution():
    with pytest.raises(InvalidParameterError, match="no-such-dist-xyz"):
        package_binaries("no-such-dist-xyz")


def test_summarize_groups_by_architecture_set():
    entries = [
        ("a.so", BinaryInfo("mach-o", ("arm64",))),
        ("b.so", BinaryInfo("mach-o-fat", ("x86_64", "arm64"))),
        ("c.so", BinaryInfo("mach-o", ("x86_64",))),
    ]
    s = summarize(entries)
    assert s["architectures"] == {"arm64": 2, "x86_64": 2}
    assert s["formats"] == {"mach-o": 2, "mach-o-fat": 1}
    assert s["by_architecture_set"] == {
        "arm64": ["a.so"],
        "arm64+x86_64": ["b.so"],
        "x86_64": ["c.so"],
    }


@pytest.mark.parametrize(
    "content",
    [
        b"# just a text file\n",
        b"\x7fEL",  # shorter than a magic
        b"\x7fELF\x02\x01\x01",  # ELF magic, header cut off
        b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + b"\x00" * 64,  # a Java class file's magic
        b"\xcf\xfa\xed\xfe\x0c\x00\x00\x01",  # arm64 Mach-O magic, header cut off
        b"",
    ],
    ids=["text", "short", "elf-truncated", "java-class", "macho-truncated", "empty"],
)
def test_non_binary_raises(tmp_path, content):
    path = tmp_path / "fake.so"
    path.write_bytes(content)
    with pytest.raises(BinaryFormatError, match=r"fake\.so") as info:
        read_architectures(path)
    assert isinstance(info.value, M1VisionError)
    assert isinstance(info.value, ValueError)


def test_truncated_load_commands_raise(tmp_path):
    name = next(n for n in MANIFEST if "arm64" in n)
    data = gzip.decompress((BINARIES / name).read_bytes())
    path = tmp_path / "cut.so"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BinaryFormatError, match="file ends inside the load commands"):
        read_architectures(path)


def test_folder_and_missing_file(tmp_path):
    with pytest.raises(BinaryFormatError, match="folder"):
        read_architectures(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_architectures(tmp_path / "missing.so")
