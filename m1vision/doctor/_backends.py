"""Keras backends and their devices, and the GPU path to use (internal).

Keras 3 runs the same ``.keras`` file on TensorFlow, PyTorch and JAX. This part of the doctor
lists which backends are installed, the devices each sees (the Metal plugin's GPU on
TensorFlow, CUDA and MPS on torch, CUDA on JAX), runs the numerics self-test
(:mod:`m1vision.numerics`) on each of those devices, and recommends a working GPU path:
the known-good TensorFlow + tensorflow-metal pair (:data:`m1vision._platform.KNOWN_GOOD_INSTALL`)
on Python 3.11/3.12 (the last plugin release; TensorFlow 2.19 gives wrong results, 2.20+
fails at import), else the torch backend on MPS. The backends, their devices and GPUs come
from :mod:`m1vision._devices`.

Each backend is probed alone: one that fails to import or crashes its self-test is reported
and the others go on. The rules are pure functions of the probed facts.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

from m1vision._devices import BACKEND_DISTS, device_names
from m1vision._platform import (
    KNOWN_GOOD_INSTALL,
    KNOWN_GOOD_METAL,
    KNOWN_GOOD_PYTHONS,
    KNOWN_GOOD_TF,
)
from m1vision.doctor._common import _check, _error_text
from m1vision.doctor._rules import _on_apple_silicon

#: The Keras backends and their distributions (any one installed counts).
BACKENDS = BACKEND_DISTS

TORCH_MPS_FIX = (
    "Use the torch backend on the Metal GPU: `python -m pip install 'm1vision[torch]'` (or "
    "`pip install torch`), then set KERAS_BACKEND=torch before importing keras; Keras picks "
    "MPS by itself."
)
TF_METAL_FIX = (
    "Install the known-good TensorFlow pair on Python 3.11/3.12: `python -m pip install "
    f"{KNOWN_GOOD_INSTALL}` (`make install` does)."
)


def _version(dists) -> str | None:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def installed_backends() -> dict[str, str | None]:
    """``{backend: version or None}`` from the installed distributions (nothing imported)."""
    return {name: _version(dists) for name, dists in BACKENDS.items()}


def tf_metal_ok(facts: dict, versions: dict) -> bool:
    """Whether the known-good Metal stack is installed: TensorFlow :data:`KNOWN_GOOD_TF`.x +
    tensorflow-metal :data:`KNOWN_GOOD_METAL` on Python 3.11/3.12 (pure)."""
    python = str(facts.get("python_version") or "")
    tf = versions.get("tensorflow") or ""
    metal = versions.get("tensorflow-metal") or ""
    return (
        python.startswith(tuple(f"{v}." for v in KNOWN_GOOD_PYTHONS))
        and tf.startswith(f"{KNOWN_GOOD_TF}.")
        and metal == KNOWN_GOOD_METAL
    )


def recommend(facts: dict, versions: dict, gpus: dict) -> dict:
    """The ``gpu_path`` check: which GPU path works here, and the fix when none does (pure).

    Parameters
    ----------
    facts : dict
        The platform facts (``system``, ``apple_silicon``, ``python_version``).
    versions : dict
        Installed versions: ``tensorflow``, ``tensorflow-metal``, ``torch``, ``jax``.
    gpus : dict
        ``{backend: [device names that passed the self-test]}`` (empty lists where the
        backend sees none or was not probed).

    Examples
    --------
    >>> mac = {"system": "Darwin", "apple_silicon": True, "python_version": "3.13.1"}
    >>> check = recommend(mac, {"tensorflow": "2.21.0", "torch": "2.9.0"}, {"torch": ["mps"]})
    >>> check["status"], "KERAS_BACKEND=torch" in check["detail"]
    ('ok', True)
    """
    working = {b: d for b, d in gpus.items() if d}
    if _on_apple_silicon(facts):
        if "tensorflow" in working and tf_metal_ok(facts, versions):
            return _check(
                "gpu_path",
                "ok",
                "tensorflow+metal",
                f"TensorFlow {KNOWN_GOOD_TF} + tensorflow-metal {KNOWN_GOOD_METAL} runs on the "
                "Metal GPU and passed the numerics self-test: the default backend uses it.",
            )
        if "torch" in working:
            return _check(
                "gpu_path",
                "ok",
                "torch+mps",
                "The Metal GPU works through PyTorch's MPS device: run with "
                "KERAS_BACKEND=torch (the same .keras files load).",
            )
        python = str(facts.get("python_version") or "?")
        if python.startswith(("3.11.", "3.12.")):
            detail = (
                "No backend passed the self-test on the Metal GPU. On this Python "
                f"({python}) the known-good TensorFlow pair works; else PyTorch's MPS."
            )
            fix = f"{TF_METAL_FIX} Or: {TORCH_MPS_FIX}"
        else:
            detail = (
                f"No backend passed the self-test on the Metal GPU, and tensorflow-metal has no "
                f"build for Python {python} (3.11/3.12 only): PyTorch's MPS is the GPU path."
            )
            fix = TORCH_MPS_FIX
        return _check("gpu_path", "warn", None, detail, fix)
    if working:
        first = next(iter(working))
        return _check(
            "gpu_path",
            "ok",
            f"{first}:{working[first][0]}",
            "GPU(s) passed the numerics self-test: "
            + "; ".join(f"{b}: {', '.join(d)}" for b, d in working.items())
            + ". Use KERAS_BACKEND to pick the backend.",
        )
    return _check(
        "gpu_path",
        "ok",
        None,
        "No GPU here: inference runs on the CPU (the Metal GPU is on macOS arm64; NVIDIA "
        "GPUs need m1vision[cuda] or a CUDA build of torch).",
    )


def _probe_backend(name: str) -> dict:
    """Import one backend, list its devices and self-test each; raises on import failure."""
    from m1vision.numerics import selftest

    devices = device_names(name)
    results = {}
    for device in devices:
        try:
            results[device] = selftest(device, backend=name)
        except Exception as exc:  # one device failing is the finding
            results[device] = {"ok": False, "detail": _error_text(exc)}
    return results


def _probe_apart(name: str) -> dict:
    """:func:`_probe_backend` in a child process: torch and JAX start thread pools that make
    this process's later forks unsafe, and a crash in their import must not end the doctor."""
    code = (
        "import json, sys; from m1vision.doctor._backends import _probe_backend; "
        f"print('M1VISION-PROBE ' + json.dumps(_probe_backend({name!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("M1VISION-PROBE "):
            return json.loads(line.removeprefix("M1VISION-PROBE "))
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    raise RuntimeError(f"the {name} probe exited with {done.returncode}: {tail[0]}")


def _backends_probe(facts: dict, *, devices: bool = True) -> tuple[list[dict], dict]:
    """The ``keras_backends`` and ``gpu_path`` checks; ``devices=False`` only reads versions."""
    versions = installed_backends()
    versions["tensorflow-metal"] = _version(("tensorflow-metal",))
    raw: dict = {"installed": dict(versions), "devices": {}}
    checks = []
    gpus: dict[str, list[str]] = {}
    parts = []
    for name in BACKENDS:
        if versions[name] is None:
            parts.append(f"{name}: not installed")
            continue
        if not devices:
            parts.append(f"{name} {versions[name]}")
            continue
        try:
            results = _probe_backend(name) if name == "tensorflow" else _probe_apart(name)
        except Exception as exc:  # a backend that fails to import is reported, not fatal
            raw["devices"][name] = {"error": _error_text(exc)}
            parts.append(f"{name} {versions[name]}: import failed ({_error_text(exc)})")
            continue
        raw["devices"][name] = results
        gpus[name] = [d for d, r in results.items() if r.get("ok") and "cpu" not in d.lower()]
        listed = ", ".join(f"{d} {'ok' if r.get('ok') else 'FAILED'}" for d, r in results.items())
        parts.append(f"{name} {versions[name]}: {listed}")
    failed = [
        f"{b} {d}"
        for b, results in raw["devices"].items()
        if isinstance(results, dict) and "error" not in results
        for d, r in results.items()
        if not r.get("ok")
    ]
    status = "fail" if failed else "ok"
    detail = "; ".join(parts)
    if failed:
        detail = f"Wrong numbers (numerics self-test) on {', '.join(failed)}. " + detail
    checks.append(
        _check(
            "keras_backends",
            status,
            {b: v for b, v in versions.items() if b in BACKENDS},
            detail,
            "Inference never uses a device that fails the self-test; "
            + (TF_METAL_FIX if _on_apple_silicon(facts) else "reinstall that backend.")
            if failed
            else None,
        )
    )
    if devices:
        checks.append(recommend(facts, versions, gpus))
    return checks, raw
