"""select_device: a GPU of the Keras backend that passes the numerics self-test, else the CPU."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from m1vision._checks import check_choice
from m1vision._devices import BACKEND_WORDS
from m1vision._platform import KNOWN_GOOD_INSTALL
from m1vision.errors import DeviceUnavailableError
from m1vision.inference import _backend

__all__ = ["DeviceChoice", "DeviceUnavailableError", "select_device"]


@dataclass(frozen=True)
class DeviceChoice:
    """The device inference runs on.

    Attributes
    ----------
    name : str
        The backend's device name: ``"/GPU:0"`` or ``"/CPU:0"`` on TensorFlow, ``"cuda:0"``,
        ``"mps"`` or ``"cpu"`` on torch, ``"gpu:0"`` or ``"cpu:0"`` on JAX.
    kind : {"gpu", "cpu"}
    reason : str
        Why this device, in words (e.g. ``"no GPU is visible to TensorFlow"``).
    backend : {"tensorflow", "torch", "jax"}
        The Keras backend the name belongs to.
    """

    name: str
    kind: str
    reason: str
    backend: str = "tensorflow"


_GPU_FIX = {
    "tensorflow": (
        f"On an Apple Silicon Mac install {KNOWN_GOOD_INSTALL} "
        "(`make install` does) on Python 3.11/3.12, or use the torch backend on MPS "
        "(pip install 'm1vision[torch]' and KERAS_BACKEND=torch); on Linux with an NVIDIA GPU "
        "install m1vision[cuda]; `python -m m1vision doctor` shows what TensorFlow sees. Or "
        "use device='auto' or 'cpu'."
    ),
    "torch": (
        "Install a PyTorch build with CUDA (Linux) or use macOS 12.3+ on Apple Silicon for "
        "MPS; `python -m m1vision doctor` shows what each backend sees. Or use device='auto' "
        "or 'cpu'."
    ),
    "jax": (
        "Install jax with its CUDA plugin (pip install 'jax[cuda12]') on Linux with an "
        "NVIDIA GPU, or use another KERAS_BACKEND; or use device='auto' or 'cpu'."
    ),
}

_DEVICE_LOCK = threading.Lock()
_GPU_STATUS: tuple[str | None, str] | None = None  # (usable GPU name or None, reason) per process


def _assess_gpu(gpus: list[tuple[str, str]], selftest, backend: str = "tensorflow"):
    """Return ``(device name, reason)`` of the first GPU that passes ``selftest``, else
    ``(None, reason)``. ``gpus`` holds ``(device name, description)`` pairs."""
    if not gpus:
        return None, f"no GPU is visible to {BACKEND_WORDS.get(backend, backend)}"
    failures = []
    for name, description in gpus:
        label = name.lstrip("/")
        try:
            result = selftest(name)
        except Exception as exc:  # a crashing self-test disqualifies the GPU, with the reason
            failures.append(f"{label} failed the numerics self-test: {type(exc).__name__}: {exc}")
            continue
        if result.get("ok"):
            error = result.get("relative_error", result.get("max_abs_diff", float("nan")))
            return name, (
                f"{label} ({description}) passed the numerics self-test (error "
                f"{error:.3g} <= tolerance {result.get('tolerance', float('nan')):.3g})"
            )
        failures.append(
            f"{label} failed the numerics self-test: {result.get('detail') or 'no detail given'}"
        )
    return None, "; ".join(failures)


def _gpu_status() -> tuple[str | None, str]:
    global _GPU_STATUS
    with _DEVICE_LOCK:
        if _GPU_STATUS is None:
            from m1vision.numerics import selftest

            _GPU_STATUS = _assess_gpu(_backend.list_gpus(), selftest, _backend.backend())
        return _GPU_STATUS


def _choose(prefer: str, gpu: str | None, reason: str, backend: str = "tensorflow"):
    if prefer == "cpu":
        return DeviceChoice(
            _backend.cpu_name(backend), "cpu", "the CPU was asked for (prefer='cpu')", backend
        )
    if gpu is not None:
        return DeviceChoice(gpu, "gpu", reason, backend)
    if prefer == "gpu":
        raise DeviceUnavailableError(f"prefer='gpu' but {reason}. {_GPU_FIX[backend]}")
    return DeviceChoice(_backend.cpu_name(backend), "cpu", reason, backend)


def select_device(prefer: str = "auto") -> DeviceChoice:
    """Choose the device to run inference on, once per process.

    A GPU of the Keras backend (``KERAS_BACKEND``: Metal or CUDA on TensorFlow, CUDA or MPS
    on torch, CUDA on JAX) is chosen only if the backend sees it *and* it passes
    :func:`m1vision.numerics.selftest` (a GPU plugin that computes wrong numbers is worse
    than a slow CPU; reduced precision such as TF32 passes). The self-test runs once per
    process; its outcome is cached.

    Parameters
    ----------
    prefer : {"auto", "gpu", "cpu"}
        ``"auto"``: a usable GPU, else the CPU. ``"gpu"``: a usable GPU or an error.
        ``"cpu"``: the CPU.

    Returns
    -------
    DeviceChoice
        ``name`` (the backend's device name), ``kind`` ("gpu" or "cpu"), the ``reason`` in
        words and the ``backend``.

    Raises
    ------
    DeviceUnavailableError
        ``prefer="gpu"`` with no usable GPU; the message says why and how to fix it.

    Examples
    --------
    >>> from m1vision.inference import select_device
    >>> choice = select_device("cpu")
    >>> choice.kind, choice.name in ("/CPU:0", "cpu", "cpu:0")
    ('cpu', True)
    """
    check_choice(prefer, name="prefer", choices=("auto", "gpu", "cpu"))
    backend = _backend.backend()
    if prefer == "cpu":
        return _choose("cpu", None, "", backend)
    return _choose(prefer, *_gpu_status(), backend)
