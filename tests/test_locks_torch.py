"""locks/macos-arm64-torch.txt: the m1vision[torch] extra resolved for macOS arm64.

The default install is unchanged: the torch lock holds every pin of locks/macos-arm64.txt at
the same version and adds only torch and what it needs. (That each pin has a native arm64
wheel is checked by `make check-mac-wheels`-style runs of tools/check_mac_wheels.py.)
"""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement
from repo_paths import REPO as ROOT

from m1vision.doctor import read_lock

LOCK = ROOT / "locks" / "macos-arm64-torch.txt"
BASE = ROOT / "locks" / "macos-arm64.txt"


def test_torch_lock_adds_torch_and_changes_nothing_else():
    base, torch = read_lock(BASE), read_lock(LOCK)
    assert {name: torch.get(name) for name in base} == base
    added = set(torch) - set(base)
    assert "torch" in added
    assert added <= {
        "torch",
        "sympy",
        "mpmath",
        "filelock",
        "networkx",
        "jinja2",
        "fsspec",
        "typing-extensions",
        "markupsafe",
        "setuptools",
    }


def test_torch_lock_satisfies_the_extra_and_was_compiled_for_macos_arm64():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["torch"]
    pinned = read_lock(LOCK)
    for req in map(Requirement, extra):
        assert req.specifier.contains(pinned[req.name]), (req, pinned[req.name])
    header = LOCK.read_text().splitlines()[1]
    assert "--extra test --extra torch" in header
    assert "--python-platform aarch64-apple-darwin -c locks/macos-arm64.txt" in header
    assert header.endswith("-o locks/macos-arm64-torch.txt")


@pytest.mark.parametrize("lock", ["linux-x86_64", "macos-arm64", "linux-aarch64"])
def test_default_locks_have_no_torch(lock):
    assert "torch" not in read_lock(ROOT / "locks" / f"{lock}.txt")
