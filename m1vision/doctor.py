"""The environment doctor: does the stack run natively on this machine, and correctly?

    python -m m1vision doctor [--json] [--no-tensorflow] [--out FILE]

:func:`get_env_info` runs a series of independent probes and returns a JSON-ready dict
with a ``checks`` list (each ``{"name", "status", "value", "detail", "fix"}``, status one
of ``ok``, ``warn``, ``fail``, ``unknown``) and the raw data each probe collected. A probe
that raises does not stop the others: its check becomes ``unknown`` with the error (as in
MONAI's ``print_config``). The checks:

=========================  ===================================================================
check                      what it looks at
=========================  ===================================================================
``os``                     the operating system (macOS 12+ for TensorFlow 2.18's arm64 wheels)
``apple_silicon``          the hardware (``hw.optional.arm64``, true even under Rosetta)
``python_architecture``    the Python process and its executable's slices (binarch)
``rosetta``                ``sysctl.proc_translated``: is this process translated?
``python_version``         3.11 or 3.12
``numpy``, ``opencv``,     version, location, and the architectures of every compiled file of
``tensorflow``,            the distribution (``.so``/``.dylib``); TensorFlow's version against
``tensorflow_metal``,      the known-good pair (2.18.1 + tensorflow-metal 1.2.0)
``keras``
``numpy_blas``             BLAS/LAPACK from NumPy's own build config (Accelerate, OpenBLAS, MKL)
``opencv_build``           OpenCV's CPU baseline and dispatched SIMD, parallel framework, threads
``tensorflow_import``      (TensorFlow on) the import itself, devices
``tensorflow_gpu``         (TensorFlow on) Metal plugin loaded and a GPU listed
``tensorflow_selftest``    (TensorFlow on) conv + dense numerics on the CPU and every GPU
``lock_drift``             installed versions against this platform's lock in ``locks/``
=========================  ===================================================================

The platform decision itself (native arm64, Rosetta, Intel Mac, Linux) comes from
:mod:`m1vision._platform`, the same code set-up runs. The user's home folder is shown as
``~`` in every path. TensorFlow, NumPy and OpenCV are imported inside the probes only, so
``--no-tensorflow`` answers in about a second and a broken NumPy cannot stop the report.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import sys
import textwrap
import time
from pathlib import Path

from m1vision import _platform
from m1vision.binarch import package_binaries, read_architectures, summarize
from m1vision.errors import InvalidParameterError, OutputExistsError

__all__ = [
    "SELFTEST_TOLERANCE",
    "STATUSES",
    "get_env_info",
    "installed_versus_lock",
    "mask_home",
    "print_env_info",
    "run_cli",
    "tensorflow_selftest",
]

#: The check statuses, best first.
STATUSES = ("ok", "warn", "fail", "unknown")

#: Largest absolute difference allowed between any two runs of the self-test model (outputs
#: are of magnitude ~1; float32 rounding over a 2048-term dot product stays near 1e-6).
SELFTEST_TOLERANCE = 1e-4

#: The TensorFlow / Metal plugin pair known to work on macOS arm64.
KNOWN_GOOD_TF = "2.18"
KNOWN_GOOD_METAL = "1.2.0"
TF_PIN_FIX = (
    "Install the known-good pair: `python -m pip install tensorflow==2.18.1 "
    "tensorflow-metal==1.2.0` (or `make clean && make test`, which installs the lock "
    "locks/macos-arm64.txt)."
)
REINSTALL_FIX = "`make clean && make test` reinstalls every package from this platform's lock."

_OPENCV_DISTS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)
# label -> (distribution names, the first installed wins; import name or None)
PACKAGES = {
    "numpy": (("numpy",), "numpy"),
    "opencv": (_OPENCV_DISTS, "cv2"),
    "tensorflow": (("tensorflow", "tensorflow-cpu", "tensorflow-macos"), "tensorflow"),
    "tensorflow_metal": (("tensorflow-metal",), None),
    "keras": (("keras",), "keras"),
}


# --------------------------------------------------------------------------- helpers


def _check(name, status, value=None, detail="", fix=None) -> dict:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    return {"name": name, "status": status, "value": value, "detail": detail, "fix": fix}


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def mask_home(obj, home=None):
    """Return ``obj`` (str, list, tuple, dict, nested) with the home folder written ``~``.

    Only whole path components match: with home ``/home/al``, ``/home/alice`` stays.

    Examples
    --------
    >>> from m1vision.doctor import mask_home
    >>> mask_home({"p": ["/home/al/x.py", "/home/alice", "/home/al"]}, home="/home/al")
    {'p': ['~/x.py', '/home/alice', '~']}
    """
    homes = {str(home)} if home is not None else {str(Path.home()), str(Path.home().resolve())}
    homes = sorted((h.rstrip("/") for h in homes if h.strip("/")), key=len, reverse=True)
    if not homes:
        return obj
    pattern = re.compile("(?:" + "|".join(re.escape(h) for h in homes) + r")(?=$|[/\\\s'\"),:;\]])")

    def walk(value):
        if isinstance(value, str):
            return pattern.sub("~", value)
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(obj)


def _fallback_facts() -> dict:
    """Facts without sysctl, used when the platform probe itself failed (a best guess)."""
    system, machine = platform.system(), platform.machine()
    return {
        "system": system,
        "machine": machine,
        "python_version": platform.python_version(),
        "python_bits": 64 if sys.maxsize > 2**32 else 32,
        "macos_version": platform.mac_ver()[0] or None,
        "apple_silicon": (machine == "arm64") if system == "Darwin" else None,
        "translated": None,
    }


def _on_apple_silicon(facts: dict) -> bool:
    return facts.get("system") == "Darwin" and bool(facts.get("apple_silicon"))


def expected_architecture(facts: dict) -> str | None:
    """The architecture compiled files must have: arm64 on Apple Silicon (also under
    Rosetta, where the fix is a native Python), else the process machine."""
    if facts.get("system") == "Darwin":
        return "arm64" if facts.get("apple_silicon") else "x86_64"
    return facts.get("machine") or None


# --------------------------------------------------------------------------- platform


def platform_checks(facts: dict, executable: dict | None = None) -> list[dict]:
    """The OS / hardware / process / Rosetta / Python checks from :func:`_platform.probe` facts.

    ``executable`` is ``{"format", "architectures"}`` of the Python executable (binarch)
    where known. Pure: the tests feed it recorded probes of each kind of machine.
    """
    decision = _platform.verdict(facts)
    system, machine = facts.get("system"), facts.get("machine")
    checks = []
    # os
    if system == "Darwin":
        mac = facts.get("macos_version") or "?"
        try:
            major = int(mac.split(".")[0])
        except ValueError:
            major = None
        if major is not None and major < 12 and facts.get("apple_silicon"):
            checks.append(
                _check(
                    "os",
                    "fail",
                    f"macOS {mac}",
                    "TensorFlow 2.18.1's arm64 wheels and tensorflow-metal need macOS 12 or later.",
                    "Update macOS (System Settings > General > Software Update).",
                )
            )
        else:
            checks.append(_check("os", "ok", f"macOS {mac}", "macOS"))
    elif system == "Linux":
        checks.append(_check("os", "ok", f"Linux {machine}", "Linux: m1vision runs on the CPU."))
    else:
        checks.append(
            _check("os", "fail", f"{system} {machine}", decision["message"], decision["fix"])
        )
    # hardware
    if system == "Darwin":
        if facts.get("apple_silicon"):
            checks.append(_check("apple_silicon", "ok", True, "Apple Silicon hardware (arm64)."))
        else:
            checks.append(
                _check("apple_silicon", "fail", False, decision["message"], decision["fix"])
            )
    else:
        checks.append(
            _check(
                "apple_silicon",
                "warn",
                False,
                decision["message"]
                if decision["kind"] == "linux"
                else f"This is not Apple Silicon: {system} {machine}.",
            )
        )
    # the Python process (and its executable)
    exe_archs = tuple((executable or {}).get("architectures") or ())
    exe_text = f" (executable: {'+'.join(exe_archs)})" if exe_archs else ""
    value = f"{machine}, {facts.get('python_bits')}-bit{exe_text}"
    if _on_apple_silicon(facts):
        if machine == "arm64":
            checks.append(_check("python_architecture", "ok", value, "A native arm64 Python."))
        elif "arm64" in exe_archs:
            checks.append(
                _check(
                    "python_architecture",
                    "fail",
                    value,
                    "This Python executable is universal2 but runs as x86_64 (started under "
                    "Rosetta, e.g. from a terminal set to 'Open using Rosetta' or via "
                    "`arch -x86_64`).",
                    "Start it natively: `arch -arm64 python ...`, or turn off 'Open using "
                    "Rosetta' for the terminal. Better: " + _platform.MINIFORGE_FIX,
                )
            )
        else:
            checks.append(
                _check(
                    "python_architecture",
                    "fail",
                    value,
                    "This Python is an x86_64 build; on Apple Silicon it runs under Rosetta 2 "
                    "and cannot load arm64 TensorFlow or the Metal plugin.",
                    _platform.MINIFORGE_FIX,
                )
            )
    elif system == "Darwin":
        checks.append(
            _check("python_architecture", "fail", value, decision["message"], decision["fix"])
        )
    elif (system, machine) in _platform.LOCKS:
        checks.append(_check("python_architecture", "ok", value, f"A native {machine} Python."))
    else:
        checks.append(
            _check("python_architecture", "fail", value, decision["message"], decision["fix"])
        )
    # Rosetta
    if system == "Darwin":
        if facts.get("translated"):
            checks.append(
                _check("rosetta", "fail", True, decision["message"], _platform.MINIFORGE_FIX)
            )
        else:
            checks.append(_check("rosetta", "ok", False, "Not translated by Rosetta 2."))
    else:
        checks.append(_check("rosetta", "ok", None, "Rosetta 2 exists only on macOS."))
    # Python version
    version = str(facts.get("python_version", "0.0"))
    try:
        vt = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        vt = (0, 0)
    if (3, 11) <= vt < (3, 13):
        checks.append(_check("python_version", "ok", version, "Python 3.11 or 3.12."))
    else:
        bad = _platform.verdict({**facts, "system": "unsupported-python"})
        checks.append(_check("python_version", "fail", version, bad["message"], bad["fix"]))
    return checks


def _platform_probe() -> tuple[list[dict], dict, dict]:
    facts = _platform.probe()
    raw = {"facts": facts, "verdict": _platform.verdict(facts)}
    try:
        exe = read_architectures(Path(sys.executable).resolve())
        executable = {"format": exe.format, "architectures": list(exe.architectures)}
    except Exception as exc:  # the doctor reports; a strange executable is no reason to stop
        executable = {"error": _error_text(exc)}
    raw["executable"] = {"path": sys.executable, **executable}
    return platform_checks(facts, executable), raw, facts


def _python_info() -> dict:
    prefix = Path(sys.prefix)
    return {
        "executable": sys.executable,
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "prefix": sys.prefix,
        "conda": (prefix / "conda-meta").is_dir(),
        "venv": sys.prefix != sys.base_prefix,
    }


# --------------------------------------------------------------------------- packages


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
    detail = (
        f"{dist} {version}: {n_bad} of {summary['files']} compiled files are not built for "
        f"{want} ({', '.join(bad)}; e.g. {example}). This Python cannot load them"
    )
    if _on_apple_silicon(facts):
        detail += (
            ": the package came from an x86_64 wheel (installed by a Rosetta or Intel "
            "Python), so importing it fails or drags the process under Rosetta."
        )
        fix = (
            _platform.MINIFORGE_FIX
            if facts.get("translated") or facts.get("machine") != "arm64"
            else f"Reinstall it from the native arm64 Python: `python -m pip install "
            f"--force-reinstall --no-cache-dir {dist}=={version}`; {REINSTALL_FIX}"
        )
    else:
        detail += "."
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
            return "ok", f"{dist} {version} (2.18.x, the version tested with Metal).", None
        why = (
            f"{dist} {version} is not 2.18.x. With the Metal plugin, TensorFlow 2.21 (what an "
            "unpinned install resolves to) fails at import of tensorflow-metal, and 2.19 "
            "loads it but gives wrong results; 2.18.1 + tensorflow-metal 1.2.0 is the "
            "known-good pair."
        )
        return ("fail" if mac else "warn"), why, TF_PIN_FIX if mac else REINSTALL_FIX
    if label == "tensorflow_metal":
        if version == KNOWN_GOOD_METAL:
            return "ok", f"tensorflow-metal {version} (the known-good plugin).", None
        return (
            "fail",
            (
                f"tensorflow-metal {version} is not {KNOWN_GOOD_METAL}, the plugin tested with "
                "TensorFlow 2.18.1; other pairs fail at import or compute wrongly."
            ),
            TF_PIN_FIX,
        )
    if label == "numpy" and not version.startswith("2.0."):
        return "warn", f"NumPy {version}; m1vision is tested with NumPy 2.0.x.", REINSTALL_FIX
    if label == "keras" and not version.startswith("3."):
        return "fail", f"Keras {version}; TensorFlow 2.18 needs Keras 3.", REINSTALL_FIX
    if label == "opencv" and not version.startswith("4."):
        return "warn", f"OpenCV {version}; m1vision needs OpenCV 4.x.", REINSTALL_FIX
    return "ok", "", None


def _package_probe(label: str, facts: dict) -> tuple[list[dict], dict]:
    dists, import_name = PACKAGES[label]
    installed = {}
    for name in dists:
        try:
            installed[name] = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    if not installed:
        if label == "tensorflow_metal" and not _on_apple_silicon(facts):
            return [
                _check(label, "ok", None, "tensorflow-metal is for macOS arm64 only; not needed.")
            ], {"installed": False}
        fix = (
            TF_PIN_FIX
            if label.startswith("tensorflow") and _on_apple_silicon(facts)
            else (REINSTALL_FIX)
        )
        return [_check(label, "fail", None, f"None of {', '.join(dists)} is installed.", fix)], {
            "installed": False
        }
    dist_name, dist = next(iter(installed.items()))
    version = dist.version
    location = None
    if import_name:
        spec = importlib.util.find_spec(import_name)
        if spec is not None and spec.submodule_search_locations:
            location = next(iter(spec.submodule_search_locations))
        elif spec is not None:
            location = spec.origin
    if location is None:
        location = str(dist.locate_file(""))
    summary = summarize(package_binaries(dist_name))
    raw = {
        "installed": True,
        "distribution": dist_name,
        "version": version,
        "location": location,
        "binaries": summary,
    }
    status, detail, fix = architecture_check(label, dist_name, version, summary, facts)
    if status == "ok":
        v_status, v_detail, v_fix = version_check(label, dist_name, version, facts, installed)
        if v_status != "ok":
            status, fix = v_status, v_fix
            detail = f"{v_detail} {detail}"
        elif v_detail:
            detail = f"{v_detail} {detail}"
    if len(installed) > 1 and status == "ok":
        status = "warn"
        detail += (
            f" Several distributions provide {import_name}: {', '.join(installed)}; they "
            "overwrite each other's files."
        )
        fix = f"`python -m pip uninstall {' '.join(installed)}`, then {REINSTALL_FIX}"
    raw["also_installed"] = sorted(set(installed) - {dist_name})
    return [_check(label, status, version, detail.strip(), fix)], raw


# --------------------------------------------------------------------------- NumPy BLAS


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


def _blas_probe(facts: dict) -> tuple[list[dict], dict]:
    import numpy

    config = numpy.show_config(mode="dicts")
    deps = config.get("Build Dependencies", {})
    raw = {
        "blas": {k: v for k, v in deps.get("blas", {}).items() if "directory" not in k},
        "lapack": {k: v for k, v in deps.get("lapack", {}).items() if "directory" not in k},
        "simd": config.get("SIMD Extensions", {}),
    }
    return [blas_check(config, facts)], raw


# --------------------------------------------------------------------------- OpenCV build


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


def _opencv_probe(facts: dict) -> tuple[list[dict], dict]:
    import cv2

    build = parse_opencv_build(cv2.getBuildInformation())
    threads = int(cv2.getNumThreads())
    return [opencv_build_check(build, threads, facts)], {**build, "threads": threads}


# --------------------------------------------------------------------------- TensorFlow


def _selftest_data():
    import numpy as np

    rng = np.random.default_rng(20240518)
    x = rng.uniform(0.0, 1.0, size=(2, 16, 16, 3)).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, 3, 8)) / np.sqrt(27)).astype(np.float32)
    bias1 = (0.1 * rng.standard_normal(8)).astype(np.float32)
    dense = (rng.standard_normal((16 * 16 * 8, 10)) / np.sqrt(16 * 16 * 8 / 4)).astype(np.float32)
    bias2 = (0.1 * rng.standard_normal(10)).astype(np.float32)
    return x, kernel, bias1, dense, bias2


def _selftest_numpy(x, kernel, bias1, dense, bias2):
    """The same model in float64 NumPy: the independent reference."""
    import numpy as np

    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
    # windows: (N, H, W, C, 3, 3); kernel: (3, 3, C, F)
    conv = np.einsum("nhwcij,ijcf->nhwf", windows, kernel.astype(np.float64)) + bias1
    h = np.maximum(conv, 0.0).reshape(x.shape[0], -1)
    return np.maximum(h @ dense.astype(np.float64) + bias2, 0.0)


def _resolve_device(tf, device: str) -> str:
    if not isinstance(device, str):
        raise TypeError(f"device must be a string like '/CPU:0', got {type(device).__name__}")
    m = re.fullmatch(r"/?(?:device:)?([A-Za-z]+):(\d+)", device.strip())
    available = [d.name for d in tf.config.list_logical_devices()]
    if m:
        want = f"/device:{m.group(1).upper()}:{m.group(2)}"
        if want in available:
            return want
    raise InvalidParameterError(
        f"device={device!r}: no such TensorFlow device here; expected one of "
        f"{', '.join(available)} (written like '/CPU:0' or '/GPU:0')."
    )


def tensorflow_selftest(device: str = "/CPU:0") -> dict:
    """Run a small conv + dense(relu) model on ``device`` and check its numbers.

    The model (fixed seeded weights: conv 3x3, 3->8 channels, relu; dense 2048->10, relu;
    batch of 2 16x16x3 images) runs eagerly and as a ``tf.function`` on ``device``, and
    eagerly on the CPU. Every output must agree with a float64 NumPy evaluation of the
    same model, and with the others, within :data:`SELFTEST_TOLERANCE` (1e-4 absolute, on
    outputs of magnitude ~1). Takes well under a second after TensorFlow is imported.

    Parameters
    ----------
    device : str
        A TensorFlow device, ``"/CPU:0"`` or ``"/GPU:N"`` (the Metal GPU on a Mac).

    Returns
    -------
    dict
        ``ok`` (bool), ``max_abs_diff`` (float, the worst of the comparisons),
        ``tolerance`` (float), ``detail`` (str: each comparison's difference).

    Raises
    ------
    InvalidParameterError
        ``device`` does not exist here (TensorFlow would silently fall back to the CPU).

    Examples
    --------
    >>> from m1vision.doctor import tensorflow_selftest
    >>> result = tensorflow_selftest("/CPU:0")  # doctest: +SKIP
    >>> result["ok"], result["max_abs_diff"] < result["tolerance"]  # doctest: +SKIP
    (True, True)
    """
    import numpy as np
    import tensorflow as tf

    name = _resolve_device(tf, device)
    x, kernel, bias1, dense, bias2 = _selftest_data()
    reference = _selftest_numpy(x, kernel, bias1, dense, bias2)

    def forward(x, kernel, bias1, dense, bias2):
        h = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias1)
        h = tf.reshape(h, (tf.shape(h)[0], -1))
        return tf.nn.relu(tf.matmul(h, dense) + bias2)

    args = [tf.constant(a) for a in (x, kernel, bias1, dense, bias2)]
    start = time.perf_counter()
    with tf.device(name):
        eager = forward(*args).numpy()
        graph = tf.function(forward)(*args).numpy()
    with tf.device("/CPU:0"):
        cpu = forward(*args).numpy()
    seconds = time.perf_counter() - start
    diffs = {
        "eager vs NumPy float64": float(np.max(np.abs(eager - reference))),
        "tf.function vs eager": float(np.max(np.abs(graph - eager))),
        "tf.function vs NumPy float64": float(np.max(np.abs(graph - reference))),
    }
    if name != "/device:CPU:0":
        diffs["eager vs CPU eager"] = float(np.max(np.abs(eager - cpu)))
    finite = all(np.isfinite(a).all() for a in (eager, graph, cpu))
    worst = max(diffs.values()) if finite else float("inf")
    ok = finite and worst <= SELFTEST_TOLERANCE
    detail = (
        f"conv3x3(3->8)+relu, dense(2048->10)+relu on {name}: "
        + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
        + f"; outputs up to {float(np.max(np.abs(reference))):.2f}; tolerance "
        f"{SELFTEST_TOLERANCE:g} absolute; {seconds:.2f} s."
    )
    if not finite:
        detail = "non-finite outputs (NaN/inf); " + detail
    return {
        "ok": bool(ok),
        "max_abs_diff": worst,
        "tolerance": SELFTEST_TOLERANCE,
        "detail": detail,
    }


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
                "load (a TensorFlow/plugin version mismatch, e.g. TF 2.21 with metal 1.2.0).",
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


def _tensorflow_probe(facts: dict) -> tuple[list[dict], dict]:
    start = time.perf_counter()
    try:
        import tensorflow as tf
    except Exception as exc:  # an import failure is the finding, not a probe error
        fix = TF_PIN_FIX if _on_apple_silicon(facts) else REINSTALL_FIX
        return [
            _check(
                "tensorflow_import",
                "fail",
                None,
                f"`import tensorflow` failed: {_error_text(exc)}",
                fix,
            )
        ], {"error": _error_text(exc)}
    import_seconds = time.perf_counter() - start
    physical = tf.config.list_physical_devices()
    gpus = []
    for dev in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(dev)
        except Exception as exc:  # details are optional
            details = {"error": _error_text(exc)}
        gpus.append({"name": dev.name, "details": details})
    raw = {
        "version": tf.__version__,
        "import_seconds": round(import_seconds, 2),
        "devices": [d.name for d in physical],
        "gpus": gpus,
        "built_with_cuda": bool(tf.test.is_built_with_cuda()),
    }
    checks = [
        _check(
            "tensorflow_import",
            "ok",
            tf.__version__,
            f"Imported in {import_seconds:.1f} s; devices: " + ", ".join(d.name for d in physical),
        )
    ]
    metal = importlib.util.find_spec("tensorflow-plugins") is not None or _installed(
        "tensorflow-metal"
    )
    checks.append(gpu_check(facts, metal, gpus))
    results = {}
    for device in ["/CPU:0"] + [f"/GPU:{i}" for i in range(len(gpus))]:
        try:
            results[device] = tensorflow_selftest(device)
        except Exception as exc:  # one device failing is the finding
            results[device] = {
                "ok": False,
                "max_abs_diff": None,
                "tolerance": SELFTEST_TOLERANCE,
                "detail": _error_text(exc),
            }
    raw["selftest"] = results
    bad = [d for d, r in results.items() if not r["ok"]]
    value = {d: r["max_abs_diff"] for d, r in results.items()}
    detail = " | ".join(f"{d}: {r['detail']}" for d, r in results.items())
    if bad:
        checks.append(
            _check(
                "tensorflow_selftest",
                "fail",
                value,
                f"Wrong numbers on {', '.join(bad)}. {detail}",
                TF_PIN_FIX,
            )
        )
    else:
        checks.append(_check("tensorflow_selftest", "ok", value, detail))
    return checks, raw


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# --------------------------------------------------------------------------- lock drift


def _canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _repo_locks() -> Path | None:
    locks = Path(__file__).resolve().parent.parent / "locks"
    return locks if locks.is_dir() else None


def read_lock(path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` pins of a uv/pip-compile lock."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;]+).*", line)
        if m:
            pins[_canonical(m.group(1))] = m.group(2)
    return pins


def installed_versus_lock(*, lock=None) -> dict:
    """Compare installed distribution versions with this platform's lock file.

    Parameters
    ----------
    lock : str or os.PathLike, optional
        A lock file (``name==version`` lines). Default: ``locks/<platform>.txt`` of the
        repository the package runs from (found next to the ``m1vision`` folder).

    Returns
    -------
    dict
        ``status`` (``"ok"``: every pin installed at its version; ``"warn"``: drift;
        ``"unknown"``: no lock found), ``lock`` (file name), ``locked`` (number of pins),
        ``mismatched`` ([{name, locked, installed}]), ``missing`` ([{name, locked}]),
        ``extra`` (installed but not in the lock), ``detail``.

    Examples
    --------
    >>> from m1vision.doctor import installed_versus_lock
    >>> drift = installed_versus_lock()
    >>> drift["status"] in ("ok", "warn", "unknown")
    True
    """
    if lock is None:
        facts = _platform.probe()
        name = _platform.LOCKS.get((facts["system"], facts["machine"]))
        locks = _repo_locks()
        if name is None or locks is None or not (locks / f"{name}.txt").is_file():
            why = (
                f"no lock for {facts['system']} {facts['machine']}"
                if name is None
                else "no locks/ folder next to the m1vision package (installed from a wheel, "
                "not run from the repository)"
            )
            return {
                "status": "unknown",
                "lock": None,
                "locked": 0,
                "mismatched": [],
                "missing": [],
                "extra": [],
                "detail": f"Cannot compare: {why}.",
            }
        lock = locks / f"{name}.txt"
    lock = Path(lock)
    pins = read_lock(lock)
    installed = {}
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"]
        if dist_name:  # the first on sys.path wins, as for imports
            installed.setdefault(_canonical(dist_name), dist.version)
    mismatched = [
        {"name": n, "locked": v, "installed": installed[n]}
        for n, v in sorted(pins.items())
        if n in installed and installed[n] != v
    ]
    missing = [{"name": n, "locked": v} for n, v in sorted(pins.items()) if n not in installed]
    ignore = {"m1vision", "pip", "setuptools", "wheel"}
    extra = sorted(n for n in installed if n not in pins and n not in ignore)
    drift = mismatched or missing
    parts = [f"{len(pins)} pins in {lock.name}"]
    if mismatched:
        parts.append(
            "different versions: "
            + ", ".join(f"{m['name']} {m['installed']} (lock {m['locked']})" for m in mismatched)
        )
    if missing:
        parts.append("not installed: " + ", ".join(f"{m['name']}=={m['locked']}" for m in missing))
    if not drift:
        parts.append("all installed at the locked versions")
    if extra:
        parts.append(f"{len(extra)} more installed that the lock does not list")
    return {
        "status": "warn" if drift else "ok",
        "lock": lock.name,
        "locked": len(pins),
        "mismatched": mismatched,
        "missing": missing,
        "extra": extra,
        "detail": "; ".join(parts) + ".",
    }


def _lock_probe() -> tuple[list[dict], dict]:
    drift = installed_versus_lock()
    n_bad = len(drift["mismatched"]) + len(drift["missing"])
    value = drift["lock"] if not n_bad else f"{drift['lock']}: {n_bad} differ"
    fix = REINSTALL_FIX if drift["status"] == "warn" else None
    return [_check("lock_drift", drift["status"], value, drift["detail"], fix)], drift


# --------------------------------------------------------------------------- report


def _run_probe(info: dict, section: str, probe, *args) -> None:
    """Run one probe; on any exception record an ``unknown`` check and go on."""
    try:
        checks, raw = probe(*args)
    except Exception as exc:
        checks = [
            _check(
                section,
                "unknown",
                None,
                f"The {section} probe failed: {_error_text(exc)}",
                "Report this with the output of `python -m m1vision doctor --json`.",
            )
        ]
        raw = {"error": _error_text(exc)}
    info["checks"].extend(checks)
    info[section] = raw


def get_env_info(*, tensorflow: bool = True) -> dict:
    """Probe the environment; every probe runs even if another one fails.

    Parameters
    ----------
    tensorflow : bool
        Also import TensorFlow, list its devices, check the Metal plugin and run
        :func:`tensorflow_selftest` on the CPU and every GPU (seconds). Without it nothing
        heavy is imported.

    Returns
    -------
    dict
        JSON-ready: ``checks`` (list of ``{"name", "status", "value", "detail", "fix"}``),
        ``summary`` (count per status), and raw sections ``m1vision``, ``platform``,
        ``python``, ``packages`` (per package: version, location, compiled-file
        architectures), ``numpy_blas``, ``opencv_build``, ``tensorflow`` (when asked),
        ``lock_drift``. The home folder appears as ``~``.

    Examples
    --------
    >>> from m1vision.doctor import get_env_info, STATUSES
    >>> info = get_env_info(tensorflow=False)
    >>> all(c["status"] in STATUSES for c in info["checks"])
    True
    """
    from m1vision import __version__

    info: dict = {"m1vision": {"version": __version__}, "checks": []}
    facts_box = {}

    def platform_probe():
        checks, raw, facts = _platform_probe()
        facts_box["facts"] = facts
        return checks, raw

    _run_probe(info, "platform", platform_probe)
    facts = facts_box.get("facts") or _fallback_facts()
    _run_probe(info, "python", lambda: ([], _python_info()))
    packages = {}
    for label in PACKAGES:
        sub: dict = {"checks": []}
        _run_probe(sub, label, _package_probe, label, facts)
        info["checks"].extend(sub["checks"])
        packages[label] = sub[label]
    info["packages"] = packages
    _run_probe(info, "numpy_blas", _blas_probe, facts)
    _run_probe(info, "opencv_build", _opencv_probe, facts)
    if tensorflow:
        _run_probe(info, "tensorflow", _tensorflow_probe, facts)
    _run_probe(info, "lock_drift", _lock_probe)
    info["tensorflow_checked"] = bool(tensorflow)
    info["summary"] = {s: sum(c["status"] == s for c in info["checks"]) for s in STATUSES}
    return mask_home(info)


_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "unknown": "????"}


def _short(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_short(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:.2g}"
    return str(value)


def print_env_info(info: dict | None = None, *, file=None) -> None:
    """Print the report as a readable table (runs :func:`get_env_info` if ``info`` is None).

    Examples
    --------
    >>> import io
    >>> from m1vision.doctor import print_env_info
    >>> buf = io.StringIO()
    >>> print_env_info({"checks": [{"name": "os", "status": "ok", "value": "Linux x86_64",
    ...                             "detail": "", "fix": None}]}, file=buf)
    >>> "os" in buf.getvalue() and "1 ok" in buf.getvalue()
    True
    """
    if info is None:
        info = get_env_info()
    out = file if file is not None else sys.stdout
    version = info.get("m1vision", {}).get("version", "?")
    python = info.get("python", {})
    print(
        f"m1vision {version} doctor: Python {python.get('version', '?')} at "
        f"{python.get('executable', '?')}",
        file=out,
    )
    width = max([len(c["name"]) for c in info["checks"]] + [5])
    for c in info["checks"]:
        print(f"{_MARK[c['status']]:<5} {c['name']:<{width}}  {_short(c['value'])}", file=out)
        if c["status"] != "ok" or c.get("fix"):
            for label, text in (("", c.get("detail")), ("fix: ", c.get("fix"))):
                if text:
                    print(
                        textwrap.fill(
                            label + text,
                            100,
                            initial_indent=" " * (width + 8),
                            subsequent_indent=" " * (width + 8),
                        ),
                        file=out,
                    )
    counts = {s: sum(c["status"] == s for c in info["checks"]) for s in STATUSES}
    print("summary: " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=out)


def run_cli(*, as_json: bool, tensorflow: bool, out: str | None) -> int:
    """``python -m m1vision doctor``: print the report; 1 if any check failed, else 0.

    ``out`` also writes the JSON report there (atomically; an existing file is not
    replaced: exit code 2 and a message). Returns 0 (no check failed), 1 (a check failed)
    or 2 (the report could not be written).
    """
    info = get_env_info(tensorflow=tensorflow)
    text = json.dumps(info, indent=2, default=str)
    if out is not None:
        from m1vision._atomic import atomic_write_text

        try:
            atomic_write_text(out, text + "\n")
        except OutputExistsError:
            print(
                f"m1vision doctor: --out {out!r} exists already; the report was not written. "
                "Remove the file or choose another name.",
                file=sys.stderr,
            )
            return 2
        except OSError as exc:
            print(f"m1vision doctor: cannot write the report to {out!r}: {exc}", file=sys.stderr)
            return 2
    if as_json:
        print(text)
    else:
        print_env_info(info)
    return 1 if any(c["status"] == "fail" for c in info["checks"]) else 0
