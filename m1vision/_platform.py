"""Which platform is this, and can m1vision's stack install natively on it? (stdlib only)

Used twice: by set-up (``tools/check_platform.py`` runs it with the Python that is about to
get the packages, before pip runs) and by the doctor. Keep it free of third-party imports.

The facts come from :func:`probe`; :func:`verdict` turns recorded facts into a decision,
so the decision is tested on recorded probes of every kind of machine.
"""

from __future__ import annotations

import platform
import struct
import subprocess
import sys

#: The known-good stack on macOS arm64, the one home of these pins in m1vision (pyproject's
#: pins agree: tests/test_doctor.py checks): TensorFlow release, its minor series, the Metal
#: plugin, and the Pythons the plugin has builds for.
KNOWN_GOOD_TF_RELEASE = "2.18.1"
KNOWN_GOOD_TF = KNOWN_GOOD_TF_RELEASE.rsplit(".", 1)[0]
KNOWN_GOOD_METAL = "1.2.0"
KNOWN_GOOD_PYTHONS = ("3.11", "3.12")
#: The pip requirements of the known-good pair.
KNOWN_GOOD_INSTALL = f"tensorflow=={KNOWN_GOOD_TF_RELEASE} tensorflow-metal=={KNOWN_GOOD_METAL}"

#: Lock file (in ``locks/``) for each supported (system, machine) of the Python process.
LOCKS = {
    ("Darwin", "arm64"): "macos-arm64",
    ("Linux", "x86_64"): "linux-x86_64",
    ("Linux", "aarch64"): "linux-aarch64",
}

MINIFORGE_FIX = (
    "Install the native arm64 Miniforge (Miniforge3-MacOSX-arm64.sh from the conda-forge "
    "Miniforge releases), open a new terminal, check that "
    '`python -c "import platform; print(platform.machine())"` prints arm64, then run '
    "`make clean && make test` again."
)


def _sysctl(name: str) -> str | None:
    """``sysctl -n name`` on macOS; None where it is missing or unknown."""
    try:
        out = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return value if out.returncode == 0 and value else None


def probe() -> dict:
    """Facts about this process and machine, as plain data (JSON-ready).

    ``apple_silicon`` is read from ``hw.optional.arm64``, which is 1 on Apple Silicon
    even inside a process translated by Rosetta 2; ``translated`` from
    ``sysctl.proc_translated`` (1 under Rosetta). Both are None off macOS.
    """
    system = platform.system()
    facts = {
        "system": system,
        "machine": platform.machine(),
        "python_version": platform.python_version(),
        "python_bits": struct.calcsize("P") * 8,
        "macos_version": platform.mac_ver()[0] or None,
        "apple_silicon": None,
        "translated": None,
    }
    if system == "Darwin":
        facts["apple_silicon"] = _sysctl("hw.optional.arm64") == "1"
        facts["translated"] = _sysctl("sysctl.proc_translated") == "1"
    return facts


def verdict(facts: dict) -> dict:
    """Decide from :func:`probe` facts: ``{"status", "kind", "lock", "message", "fix"}``.

    ``status`` is ``"ok"``, ``"warn"`` or ``"fail"``; ``kind`` one of ``"apple-silicon-native"``,
    ``"rosetta"``, ``"intel-mac"``, ``"linux"``, ``"other"``; ``lock`` the lock name to install
    from, or None where set-up must stop.
    """
    system, machine = facts.get("system"), facts.get("machine")
    version = tuple(int(p) for p in str(facts.get("python_version", "0.0")).split(".")[:2])
    if not (3, 11) <= version < (3, 13):
        return {
            "status": "fail",
            "kind": "other",
            "lock": None,
            "message": f"Python {facts.get('python_version')} is not supported; m1vision needs "
            f"Python 3.11 or 3.12 (TensorFlow {KNOWN_GOOD_TF_RELEASE} has wheels for 3.9-3.12).",
            "fix": "Use Python 3.11: `conda create -n m1vision -c conda-forge python=3.11`, or "
            "put a python3.11 first on PATH.",
        }
    if system == "Darwin":
        if facts.get("translated"):
            return {
                "status": "fail",
                "kind": "rosetta",
                "lock": None,
                "message": "This Python is an x86_64 build running under Rosetta 2 on Apple "
                "Silicon. TensorFlow ships no macOS x86_64 wheels after 2.16 and the Metal "
                "plugin needs arm64, so nothing here would run natively.",
                "fix": MINIFORGE_FIX,
            }
        if machine == "x86_64":
            return {
                "status": "fail",
                "kind": "intel-mac",
                "lock": None,
                "message": "This is an Intel Mac (x86_64). TensorFlow ships no macOS x86_64 "
                "wheels after 2.16 and tensorflow-metal needs Apple Silicon.",
                "fix": "Use an Apple Silicon Mac with the native arm64 Miniforge, or a Linux "
                "machine (make test installs the CPU build there).",
            }
        if machine == "arm64":
            return {
                "status": "ok",
                "kind": "apple-silicon-native",
                "lock": LOCKS[("Darwin", "arm64")],
                "message": "Native arm64 Python on Apple Silicon: TensorFlow runs on the Metal "
                "GPU, OpenCV and NumPy on the arm64 CPU.",
                "fix": None,
            }
    if system == "Linux" and (system, machine) in LOCKS:
        return {
            "status": "warn",
            "kind": "linux",
            "lock": LOCKS[(system, machine)],
            "message": f"This is not Apple Silicon: Linux {machine}. m1vision runs here on the "
            "CPU (TensorFlow's CPU build); the Metal GPU path is only on macOS arm64.",
            "fix": None,
        }
    return {
        "status": "fail",
        "kind": "other",
        "lock": None,
        "message": f"No lock file for {system} {machine}; supported: macOS arm64, Linux x86_64, "
        "Linux aarch64.",
        "fix": "Use one of the supported platforms, or run `make lock` after adding this one "
        "to the Makefile's LOCK_PLATFORMS.",
    }


def main() -> int:
    """Print the lock name for this Python, or explain on stderr why set-up must stop."""
    decision = verdict(probe())
    if decision["lock"] is None:
        print(f"m1vision set-up stopped: {decision['message']}", file=sys.stderr)
        print(f"How to fix it: {decision['fix']}", file=sys.stderr)
        return 1
    print(decision["lock"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
