"""The doctor's rules (internal): pure functions from collected facts to checks."""

from __future__ import annotations

import os
import re

from m1vision import _platform
from m1vision.doctor._common import (
    KNOWN_GOOD_METAL,
    KNOWN_GOOD_TF,
    KNOWN_GOOD_TF_RELEASE,
    REINSTALL_FIX,
    TF_PIN_FIX,
    _check,
)


def _on_apple_silicon(facts: dict) -> bool:
    return facts.get("system") == "Darwin" and bool(facts.get("apple_silicon"))


def expected_architecture(facts: dict) -> str | None:
    """The architecture compiled files must have: arm64 on Apple Silicon (also under
    Rosetta, where the fix is a native Python), else the process machine."""
    if facts.get("system") == "Darwin":
        return "arm64" if facts.get("apple_silicon") else "x86_64"
    return facts.get("machine") or None


def platform_checks(facts: dict, executable: dict | None = None) -> list[dict]:
    """The OS / hardware / process / Rosetta / Python checks from :func:`_platform.probe` facts.

    ``executable`` is ``{"format", "architectures"}`` of the Python executable (binarch)
    where known. Pure: the tests feed it recorded probes of each kind of machine.
    """
    decision = _platform.verdict(facts)
    return [
        _os_check(facts, decision),  # 1. the operating system
        _hardware_check(facts, decision),  # 2. the hardware
        _process_check(facts, decision, executable),  # 3. the Python process and executable
        _rosetta_check(facts, decision),  # 4. Rosetta
        _python_version_check(facts, decision),  # 5. the Python version
    ]


def _os_check(facts: dict, decision: dict) -> dict:
    """The ``os`` check."""
    system, machine = facts.get("system"), facts.get("machine")
    if system == "Darwin":
        mac = facts.get("macos_version") or "?"
        try:
            major = int(mac.split(".")[0])
        except ValueError:
            major = None
        if major is not None and major < 12 and facts.get("apple_silicon"):
            return _check(
                "os",
                "fail",
                f"macOS {mac}",
                f"TensorFlow {KNOWN_GOOD_TF_RELEASE}'s arm64 wheels and tensorflow-metal "
                "need macOS 12 or later.",
                "Update macOS (System Settings > General > Software Update).",
            )
        else:
            return _check("os", "ok", f"macOS {mac}", "macOS")
    elif system == "Linux":
        return _check("os", "ok", f"Linux {machine}", "Linux: m1vision runs on the CPU.")
    else:
        return _check("os", "fail", f"{system} {machine}", decision["message"], decision["fix"])


def _hardware_check(facts: dict, decision: dict) -> dict:
    """The ``apple_silicon`` check."""
    system, machine = facts.get("system"), facts.get("machine")
    if system == "Darwin":
        if facts.get("apple_silicon"):
            return _check("apple_silicon", "ok", True, "Apple Silicon hardware (arm64).")
        else:
            return _check("apple_silicon", "fail", False, decision["message"], decision["fix"])
    else:
        return _check(
            "apple_silicon",
            "warn",
            False,
            decision["message"]
            if decision["kind"] == "linux"
            else f"This is not Apple Silicon: {system} {machine}.",
        )


def _process_check(facts: dict, decision: dict, executable: dict | None) -> dict:
    """The ``python_architecture`` check (the process and its executable)."""
    system, machine = facts.get("system"), facts.get("machine")
    exe_archs = tuple((executable or {}).get("architectures") or ())
    exe_text = f" (executable: {'+'.join(exe_archs)})" if exe_archs else ""
    value = f"{machine}, {facts.get('python_bits')}-bit{exe_text}"
    if _on_apple_silicon(facts):
        if machine == "arm64":
            return _check("python_architecture", "ok", value, "A native arm64 Python.")
        elif "arm64" in exe_archs:
            return _check(
                "python_architecture",
                "fail",
                value,
                "This Python executable is universal2 but runs as x86_64 (started under "
                "Rosetta, e.g. from a terminal set to 'Open using Rosetta' or via "
                "`arch -x86_64`).",
                "Start it natively: `arch -arm64 python ...`, or turn off 'Open using "
                "Rosetta' for the terminal. Better: " + _platform.MINIFORGE_FIX,
            )
        else:
            return _check(
                "python_architecture",
                "fail",
                value,
                "This Python is an x86_64 build; on Apple Silicon it runs under Rosetta 2 "
                "and cannot load arm64 TensorFlow or the Metal plugin.",
                _platform.MINIFORGE_FIX,
            )
    elif system == "Darwin":
        return _check("python_architecture", "fail", value, decision["message"], decision["fix"])
    elif (system, machine) in _platform.LOCKS:
        return _check("python_architecture", "ok", value, f"A native {machine} Python.")
    else:
        return _check("python_architecture", "fail", value, decision["message"], decision["fix"])


def _rosetta_check(facts: dict, decision: dict) -> dict:
    """The ``rosetta`` check."""
    if facts.get("system") == "Darwin":
        if facts.get("translated"):
            return _check("rosetta", "fail", True, decision["message"], _platform.MINIFORGE_FIX)
        else:
            return _check("rosetta", "ok", False, "Not translated by Rosetta 2.")
    else:
        return _check("rosetta", "ok", None, "Rosetta 2 exists only on macOS.")


def _python_version_check(facts: dict, decision: dict) -> dict:
    """The ``python_version`` check (``decision`` is for the other checks' signature)."""
    version = str(facts.get("python_version", "0.0"))
    try:
        vt = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        vt = (0, 0)
    if (3, 11) <= vt < (3, 13):
        return _check("python_version", "ok", version, "Python 3.11 or 3.12.")
    else:
        bad = _platform.verdict({**facts, "system": "unsupported-python"})
        return _check("python_version", "fail", version, bad["message"], bad["fix"])


def architecture_check(label: str, dist: str, version: str, summary: dict, facts: dict):
    """(status, detail, fix) for the compiled files of one distribution (pure).

    ``summary`` is :func:`m1vision.binarch.summarize` output.
    """
    want = expected_architecture(facts)
    if summary["files"] == 0:
        return "ok", f"{dist} {version}: pure Python (no compiled files).", None
    groups = summary["by_architecture_set"]
    aliases = {"aarch64": "arm64", "arm64": "arm64"}
    bad = {
        key: files
        for key, files in groups.items()
        if aliases.get(want, want) not in {aliases.get(a, a) for a in key.split("+")}
    }
    kinds = ", ".join(f"{len(files)} {key}" for key, files in groups.items())
    native = {"Darwin": ("mach-o", "mach-o-fat"), "Linux": ("elf",)}.get(facts.get("system"))
    foreign = sorted(f for f in summary["formats"] if native and f not in native)
    if foreign:
        return (
            "fail",
            (
                f"{dist} {version}: compiled files in {', '.join(foreign)} format, which "
                f"{facts.get('system')} cannot load (copied from another operating system?)."
            ),
            (
                f"Reinstall it: `python -m pip install --force-reinstall --no-cache-dir "
                f"{dist}=={version}`; {REINSTALL_FIX}"
            ),
        )
    if not bad:
        return "ok", f"{dist} {version}: {summary['files']} compiled files ({kinds}).", None
    n_bad = sum(len(f) for f in bad.values())
    example = next(iter(bad.values()))[0]
    if _on_apple_silicon(facts):
        detail = (
            f"{dist} {version}: {n_bad} of {summary['files']} compiled files are not built for "
            f"{want} ({', '.join(bad)}; e.g. {example}). This Python cannot load them: the "
            "package came from an x86_64 wheel (installed by a Rosetta or Intel Python), so "
            "importing it fails or drags the process under Rosetta."
        )
        fix = (
            _platform.MINIFORGE_FIX
            if facts.get("translated") or facts.get("machine") != "arm64"
            else f"Reinstall it from the native arm64 Python: `python -m pip install "
            f"--force-reinstall --no-cache-dir {dist}=={version}`; {REINSTALL_FIX}"
        )
    else:
        detail = (
            f"{dist} {version}: {n_bad} of {summary['files']} compiled files are not built for "
            f"{want} ({', '.join(bad)}; e.g. {example}). This Python cannot load them."
        )
        fix = (
            f"Reinstall it for this machine: `python -m pip install --force-reinstall "
            f"--no-cache-dir {dist}=={version}`; {REINSTALL_FIX}"
        )
    return "fail", detail, fix


def version_check(label: str, dist: str, version: str, facts: dict, installed: dict):
    """(status, detail, fix) for the known-good versions (pure)."""
    mac = _on_apple_silicon(facts)
    if label == "tensorflow":
        if version.startswith(KNOWN_GOOD_TF + "."):
            tested = f"{KNOWN_GOOD_TF}.x, the version tested with Metal"
            return "ok", f"{dist} {version} ({tested}).", None
        why = (
            f"{dist} {version} is not {KNOWN_GOOD_TF}.x. With the Metal plugin, TensorFlow 2.21 "
            "(what an unpinned install resolves to) fails at import of tensorflow-metal, and "
            f"2.19 loads it but gives wrong results; {KNOWN_GOOD_TF_RELEASE} + tensorflow-metal "
            f"{KNOWN_GOOD_METAL} is the known-good pair."
        )
        return ("fail" if mac else "warn"), why, TF_PIN_FIX if mac else REINSTALL_FIX
    if label == "tensorflow_metal":
        if version == KNOWN_GOOD_METAL:
            return "ok", f"tensorflow-metal {version} (the known-good plugin).", None
        return (
            "fail",
            (
                f"tensorflow-metal {version} is not {KNOWN_GOOD_METAL}, the plugin tested with "
                f"TensorFlow {KNOWN_GOOD_TF_RELEASE}; other pairs fail at import or compute "
                "wrongly."
            ),
            TF_PIN_FIX,
        )
    if label == "numpy" and not version.startswith("2.0."):
        return "warn", f"NumPy {version}; m1vision is tested with NumPy 2.0.x.", REINSTALL_FIX
    if label == "keras" and not version.startswith("3."):
        return "fail", f"Keras {version}; TensorFlow {KNOWN_GOOD_TF} needs Keras 3.", REINSTALL_FIX
    if label == "opencv" and not version.startswith("4."):
        return "warn", f"OpenCV {version}; m1vision needs OpenCV 4.x.", REINSTALL_FIX
    return "ok", "", None


def blas_check(config: dict, facts: dict) -> dict:
    """The ``numpy_blas`` check from ``numpy.show_config(mode="dicts")`` output (pure)."""
    deps = config.get("Build Dependencies", {})
    blas = deps.get("blas", {})
    lapack = deps.get("lapack", {})
    name = str(blas.get("name", "unknown"))
    low = name.lower()
    kind = (
        "Accelerate"
        if "accelerate" in low
        else "OpenBLAS"
        if "openblas" in low
        else "MKL"
        if "mkl" in low
        else name
    )
    version = blas.get("version")
    value = kind if not version or version == "unknown" else f"{kind} ({name} {version})"
    detail = f"NumPy's BLAS: {name}; LAPACK: {lapack.get('name', 'unknown')}."
    if _on_apple_silicon(facts):
        if kind == "Accelerate":
            return _check("numpy_blas", "ok", value, detail + " Apple's Accelerate (AMX units).")
        mac = facts.get("macos_version") or "?"
        return _check(
            "numpy_blas",
            "warn",
            value,
            detail + f" On Apple Silicon, Accelerate is several times faster for linear "
            f"algebra than {kind}. NumPy >= 2.0 ships macOS 14+ arm64 wheels built with "
            f"Accelerate; this is macOS {mac}.",
            "On macOS 14 or later: `python -m pip install --force-reinstall --no-cache-dir "
            "numpy==2.0.2` picks the Accelerate wheel (macosx_14_0_arm64). With conda's NumPy: "
            "`conda install -c conda-forge 'libblas=*=*accelerate'`.",
        )
    if kind in ("OpenBLAS", "MKL"):
        return _check("numpy_blas", "ok", value, detail)
    return _check(
        "numpy_blas",
        "warn",
        value,
        detail + " An unusual or reference BLAS.",
        "Install NumPy's wheel (OpenBLAS): " + REINSTALL_FIX,
    )


def parse_opencv_build(text: str) -> dict:
    """Version, CPU baseline/dispatch, parallel framework from ``cv2.getBuildInformation()``.

    Examples
    --------
    >>> from m1vision.doctor import parse_opencv_build
    >>> info = parse_opencv_build('''General configuration for OpenCV 4.10.0 ====
    ...   CPU/HW features:
    ...     Baseline:                    NEON FP16
    ...     Dispatched code generation:  NEON_DOTPROD NEON_FP16 NEON_BF16
    ...   Parallel framework:            GCD
    ... ''')
    >>> info["version"], info["baseline"], info["parallel_framework"]
    ('4.10.0', ['NEON', 'FP16'], 'GCD')
    """

    def field(label):
        m = re.search(rf"^\s*{re.escape(label)}:[ \t]*(.*)$", text, re.MULTILINE)
        return m.group(1).strip() if m else None

    version = re.search(r"General configuration for OpenCV (\S+)", text)
    baseline = field("Baseline")
    dispatched = field("Dispatched code generation")
    return {
        "version": version.group(1) if version else None,
        "baseline": baseline.split() if baseline else [],
        "dispatched": dispatched.split() if dispatched else [],
        "parallel_framework": field("Parallel framework"),
        "host": field("Host"),
    }


def opencv_build_check(build: dict, threads: int, facts: dict) -> dict:
    """The ``opencv_build`` check from :func:`parse_opencv_build` output (pure)."""
    simd = " ".join(build["baseline"]) or "none"
    value = (
        f"OpenCV {build['version']}; baseline {simd}; dispatched "
        f"{' '.join(build['dispatched']) or 'none'}; {build['parallel_framework']}; "
        f"{threads} threads"
    )
    want = expected_architecture(facts)
    if want in ("arm64", "aarch64") and "NEON" not in build["baseline"]:
        return _check(
            "opencv_build", "warn", value, "This OpenCV build has no NEON baseline.", REINSTALL_FIX
        )
    framework = (build["parallel_framework"] or "").lower()
    if framework in ("", "none") or threads <= 1 < (os.cpu_count() or 1):
        return _check(
            "opencv_build",
            "warn",
            value,
            "OpenCV runs single-threaded (no parallel framework, or setNumThreads(1)/"
            "OPENCV_FOR_THREADS_NUM=1).",
            "Call `cv2.setNumThreads(0)` to use all cores, or unset OPENCV_FOR_THREADS_NUM.",
        )
    return _check("opencv_build", "ok", value, "SIMD baseline and a parallel framework present.")


def gpu_check(facts: dict, metal_installed: bool, gpus: list[dict]) -> dict:
    """The ``tensorflow_gpu`` check: did the Metal plugin load (pure)?"""
    names = [g.get("name") for g in gpus]
    if _on_apple_silicon(facts):
        if not metal_installed:
            return _check(
                "tensorflow_gpu",
                "fail",
                names,
                "tensorflow-metal is not installed: TensorFlow runs on the CPU only.",
                TF_PIN_FIX,
            )
        if not gpus:
            return _check(
                "tensorflow_gpu",
                "fail",
                names,
                "tensorflow-metal is installed but TensorFlow lists no GPU: the plugin did not "
                "load (a TensorFlow/plugin version mismatch, e.g. TF 2.21 with metal "
                f"{KNOWN_GOOD_METAL}).",
                TF_PIN_FIX,
            )
        return _check(
            "tensorflow_gpu",
            "ok",
            names,
            "The Metal plugin loaded; GPU: " + ", ".join(str(g.get("details")) for g in gpus),
        )
    if gpus:
        return _check("tensorflow_gpu", "ok", names, "GPUs found (CUDA).")
    return _check(
        "tensorflow_gpu",
        "ok",
        names,
        "No GPU: TensorFlow runs on the CPU (the Metal GPU is on macOS arm64 only).",
    )
