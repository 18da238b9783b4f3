"""The doctor's probes (internal): collect facts, apply the rules, each probe failing alone."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
import time
from pathlib import Path

from m1vision import _platform
from m1vision._devices import list_gpus
from m1vision.doctor._binarch import package_binaries, read_architectures, summarize
from m1vision.doctor._common import (
    PACKAGES,
    REINSTALL_FIX,
    SELFTEST_TOLERANCE,
    STATUSES,
    TF_PIN_FIX,
    _check,
    _error_text,
    _fallback_facts,
    mask_home,
)
from m1vision.doctor._locks import _lock_probe
from m1vision.doctor._rules import (
    _on_apple_silicon,
    architecture_check,
    blas_check,
    gpu_check,
    opencv_build_check,
    parse_opencv_build,
    platform_checks,
    version_check,
)
from m1vision.doctor._selftest import tensorflow_selftest


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


def _opencv_probe(facts: dict) -> tuple[list[dict], dict]:
    import cv2

    build = parse_opencv_build(cv2.getBuildInformation())
    threads = int(cv2.getNumThreads())
    return [opencv_build_check(build, threads, facts)], {**build, "threads": threads}


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
    gpus = [{"name": name, "details": what} for name, what in list_gpus("tensorflow")]
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
        architectures), ``numpy_blas``, ``opencv_build``, ``dicom_codecs`` (per transfer
        syntax: decodes here, with which plugins), ``tensorflow`` (when asked),
        ``lock_drift``, ``jupyter_front_ends`` (the server's widget front ends). The home
        folder appears as ``~``.

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
    from m1vision.doctor._codecs import _codecs_probe

    _run_probe(info, "dicom_codecs", _codecs_probe)
    if tensorflow:
        _run_probe(info, "tensorflow", _tensorflow_probe, facts)
    # Keras backends (TF, torch, JAX): versions always; devices + self-tests with tensorflow
    from m1vision.doctor._backends import _backends_probe

    _run_probe(info, "backends", lambda: _backends_probe(facts, devices=bool(tensorflow)))
    _run_probe(info, "lock_drift", _lock_probe)
    from m1vision.doctor._jupyter import _jupyter_probe

    _run_probe(info, "jupyter_front_ends", _jupyter_probe)
    info["tensorflow_checked"] = bool(tensorflow)
    info["summary"] = {s: sum(c["status"] == s for c in info["checks"]) for s in STATUSES}
    return mask_home(info)
