"""m1vision._platform: the set-up decision on recorded probes of every kind of machine.

The probe dicts below are what ``probe()`` returns on each machine (``sysctl`` values as
macOS reports them: ``hw.optional.arm64`` is 1 on Apple Silicon even for a translated
process, ``sysctl.proc_translated`` is 1 only under Rosetta 2).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
from repo_paths import FIXTURES
from repo_paths import REPO as ROOT

from m1vision import _platform

PROBES = json.loads((FIXTURES / "probes.json").read_text())
NATIVE_ARM64 = PROBES["native_arm64"]
ROSETTA = PROBES["rosetta"]
INTEL_MAC = PROBES["intel_mac"]
LINUX_X86_64 = PROBES["linux_x86_64"]
LINUX_AARCH64 = {**LINUX_X86_64, "machine": "aarch64"}
OLD_PYTHON_ARM64 = {**NATIVE_ARM64, "python_version": "3.9.18"}
NEW_PYTHON_ARM64 = {**NATIVE_ARM64, "python_version": "3.13.0"}
PYTHON_312_ARM64 = {**NATIVE_ARM64, "python_version": "3.12.7"}
WINDOWS = {**LINUX_X86_64, "system": "Windows", "machine": "AMD64"}

CASES = {
    # id: (facts, status, kind, lock)
    "native-arm64": (NATIVE_ARM64, "ok", "apple-silicon-native", "macos-arm64"),
    "python-3.12-arm64": (PYTHON_312_ARM64, "ok", "apple-silicon-native", "macos-arm64"),
    "rosetta": (ROSETTA, "fail", "rosetta", None),
    "intel-mac": (INTEL_MAC, "fail", "intel-mac", None),
    "linux-x86_64": (LINUX_X86_64, "warn", "linux", "linux-x86_64"),
    "linux-aarch64": (LINUX_AARCH64, "warn", "linux", "linux-aarch64"),
    "python-3.9": (OLD_PYTHON_ARM64, "fail", "other", None),
    "python-3.13": (NEW_PYTHON_ARM64, "fail", "other", None),
    "windows": (WINDOWS, "fail", "other", None),
}


@pytest.mark.parametrize(("facts", "status", "kind", "lock"), CASES.values(), ids=CASES.keys())
def test_verdict(facts, status, kind, lock):
    decision = _platform.verdict(facts)
    assert (decision["status"], decision["kind"], decision["lock"]) == (status, kind, lock)
    assert decision["message"]
    # every stop comes with a fix; a usable platform needs none
    assert (decision["fix"] is not None) == (status == "fail")
    if lock is not None:
        assert (ROOT / "locks" / f"{lock}.txt").is_file()


def test_rosetta_fix_points_to_native_miniforge():
    decision = _platform.verdict(ROSETTA)
    assert "Rosetta" in decision["message"]
    assert "arm64" in decision["fix"] and "Miniforge" in decision["fix"]


def test_unsupported_python_names_the_version():
    decision = _platform.verdict(OLD_PYTHON_ARM64)
    assert "3.9.18" in decision["message"]
    assert "3.11" in decision["fix"]


def test_linux_says_not_apple_silicon():
    assert "not Apple Silicon" in _platform.verdict(LINUX_X86_64)["message"]


def test_probe_on_this_machine():
    facts = _platform.probe()
    assert facts["system"] == platform.system()
    assert facts["machine"] == platform.machine()
    assert facts["python_version"] == platform.python_version()
    json.dumps(facts)  # plain data
    if facts["system"] != "Darwin":
        assert facts["apple_silicon"] is None and facts["translated"] is None
    else:
        assert isinstance(facts["apple_silicon"], bool)


def test_runs_as_a_script():
    # set-up runs the file directly with the Python about to get the packages
    proc = subprocess.run(
        [sys.executable, str(ROOT / "m1vision" / "_platform.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    expected = _platform.verdict(_platform.probe())
    if expected["lock"] is None:
        assert proc.returncode == 1
        assert "How to fix it" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected["lock"]
        assert "Traceback" not in proc.stderr
