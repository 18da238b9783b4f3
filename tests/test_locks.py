"""The lock files and environment.yml agree with pyproject.toml (offline), and every pin
of the macOS arm64 lock has a native wheel on PyPI (network test).

Markers are evaluated with packaging for each platform's environment, as uv did when it
compiled the locks (``--python-version 3.11 --python-platform ...``, ``--extra test``).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from repo_paths import REPO as ROOT

from m1vision.doctor import read_lock

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())

# lock name -> (sys_platform, platform_machine, platform_system, uv --python-platform)
PLATFORMS = {
    "linux-x86_64": ("linux", "x86_64", "Linux", "x86_64-unknown-linux-gnu"),
    "macos-arm64": ("darwin", "arm64", "Darwin", "aarch64-apple-darwin"),
    "linux-aarch64": ("linux", "aarch64", "Linux", "aarch64-unknown-linux-gnu"),
}


def marker_env(lock: str) -> dict:
    sys_platform, machine, system, _ = PLATFORMS[lock]
    env = default_environment()
    env.update(
        sys_platform=sys_platform,
        platform_machine=machine,
        platform_system=system,
        os_name="posix",
        python_version="3.11",
        python_full_version="3.11.0",
        implementation_name="cpython",
        platform_python_implementation="CPython",
    )
    return env


def requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    reqs += [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]]
    return reqs


def applies(req: Requirement, lock: str) -> bool:
    return req.marker is None or req.marker.evaluate({**marker_env(lock), "extra": "test"})


def pins(lock: str) -> dict[str, str]:
    return read_lock(ROOT / "locks" / f"{lock}.txt")


@pytest.mark.parametrize("lock", PLATFORMS)
def test_lock_satisfies_pyproject(lock):
    pinned = pins(lock)
    checked = 0
    for req in requirements():
        if not applies(req, lock):
            continue
        name = canonicalize_name(req.name)
        assert name in pinned, f"{lock}: {req} is required but not pinned"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{lock}: {name}=={pinned[name]} does not satisfy {req}"
        )
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("lock", PLATFORMS)
def test_lock_has_no_other_platforms_builds(lock):
    pinned = pins(lock)
    wanted = {canonicalize_name(r.name) for r in requirements() if applies(r, lock)}
    for req in requirements():
        name = canonicalize_name(req.name)
        if not applies(req, lock) and name not in wanted:
            assert name not in pinned, f"{lock} pins {name}, meant only for other platforms"


@pytest.mark.parametrize("lock", PLATFORMS)
def test_lock_was_compiled_for_its_platform(lock):
    header = (ROOT / "locks" / f"{lock}.txt").read_text().splitlines()[1]
    assert "uv pip compile pyproject.toml --extra test --python-version 3.11" in header
    assert f"--python-platform {PLATFORMS[lock][3]}" in header
    assert header.endswith(f"-o locks/{lock}.txt")


def test_macos_lock_pins_the_known_good_stack():
    pinned = pins("macos-arm64")
    assert pinned["tensorflow"] == "2.18.1"
    assert pinned["tensorflow-metal"] == "1.2.0"
    assert "tensorflow-cpu" not in pinned
    assert re.fullmatch(r"2\.0\.\d+", pinned["numpy"])
    assert pinned["opencv-python"].startswith("4.")
    assert "opencv-python-headless" not in pinned
    assert pinned["keras"].startswith("3.")


@pytest.mark.parametrize(
    ("lock", "tensorflow"), [("linux-x86_64", "tensorflow-cpu"), ("linux-aarch64", "tensorflow")]
)
def test_linux_locks_pin_the_cpu_stack(lock, tensorflow):
    pinned = pins(lock)
    assert pinned[tensorflow] == "2.18.1"
    assert "tensorflow-metal" not in pinned
    assert pinned["opencv-python-headless"].startswith("4.")
    assert re.fullmatch(r"2\.0\.\d+", pinned["numpy"])


def test_environment_yml_agrees():
    assert "conda-forge" in ENVIRONMENT["channels"]
    deps = ENVIRONMENT["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    version = python.split("=", 1)[1]
    assert version == "3.11"
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(f"{version}.0")
    assert "pip" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip_section == ["-r locks/macos-arm64.txt", "-e ."]
    assert (ROOT / "locks" / "macos-arm64.txt").is_file()


def load_check_mac_wheels():
    spec = importlib.util.spec_from_file_location(
        "check_mac_wheels", ROOT / "tools" / "check_mac_wheels.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Recorded file names of real releases on PyPI (numpy 2.0.2 publishes both macOS arm64
# builds; pip on macOS 14 takes the macosx_14_0 one, the Accelerate build).
NUMPY_FILES = [
    "numpy-2.0.2.tar.gz",
    "numpy-2.0.2-cp311-cp311-macosx_10_9_x86_64.whl",
    "numpy-2.0.2-cp311-cp311-macosx_11_0_arm64.whl",
    "numpy-2.0.2-cp311-cp311-macosx_14_0_arm64.whl",
    "numpy-2.0.2-cp311-cp311-macosx_14_0_x86_64.whl",
    "numpy-2.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "numpy-2.0.2-cp312-cp312-macosx_14_0_arm64.whl",
]


@pytest.mark.parametrize(
    ("files", "pin", "macos", "expected"),
    [
        (
            NUMPY_FILES,
            ("numpy", "2.0.2"),
            (14, 0),
            ("numpy-2.0.2-cp311-cp311-macosx_14_0_arm64.whl", "wheel"),
        ),
        (
            NUMPY_FILES,
            ("numpy", "2.0.2"),
            (13, 0),
            ("numpy-2.0.2-cp311-cp311-macosx_11_0_arm64.whl", "wheel"),
        ),
        (NUMPY_FILES[:2], ("numpy", "2.0.2"), (14, 0), ("numpy-2.0.2.tar.gz", "sdist-only")),
        (
            ["numpy-2.0.1-cp311-cp311-macosx_14_0_arm64.whl"],
            ("numpy", "2.0.2"),
            (14, 0),
            (None, "missing"),
        ),
        (
            ["MarkupSafe-2.1.5-cp311-cp311-macosx_10_9_universal2.whl", "MarkupSafe-2.1.5.tar.gz"],
            ("markupsafe", "2.1.5"),
            (14, 0),
            ("MarkupSafe-2.1.5-cp311-cp311-macosx_10_9_universal2.whl", "wheel"),
        ),
    ],
    ids=["macos14-accelerate", "macos13", "sdist-only", "other-version", "universal2"],
)
def test_choose_like_pip(files, pin, macos, expected):
    tool = load_check_mac_wheels()
    name, version = pin
    target = tool.target_tags(macos, (3, 11))
    filename, _, kind = tool.choose(
        [{"filename": f} for f in files], name, version, target, "3.11.0"
    )
    assert (filename, kind) == expected


def test_choose_skips_yanked_and_requires_python():
    tool = load_check_mac_wheels()
    target = tool.target_tags((14, 0), (3, 11))
    files = [
        {"filename": "demo-1.0-py3-none-any.whl", "requires-python": ">=3.12"},
        {"filename": "demo-1.0-cp311-cp311-macosx_11_0_arm64.whl", "yanked": True},
        {"filename": "demo-1.0.tar.gz"},
    ]
    assert tool.choose(files, "demo", "1.0", target, "3.11.0")[2] == "sdist-only"


@pytest.mark.network
@pytest.mark.slow
def test_macos_lock_has_native_wheels_on_pypi():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_mac_wheels.py"), "locks/macos-arm64.txt"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    rows = {line.split()[1]: line for line in proc.stdout.splitlines()[1:-1]}
    assert len(rows) == len(pins("macos-arm64"))
    assert "macosx_12_0_arm64" in rows["tensorflow==2.18.1"]
    assert "arm64" in rows["tensorflow-metal==1.2.0"]
    assert "macosx_14_0_arm64" in rows["numpy==2.0.2"]  # the Accelerate build
