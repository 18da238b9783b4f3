"""Keras backends and their devices (internal, ground floor: imports nothing of m1vision).

The one table of the three Keras 3 backends: their distributions, their names in words, the
CPU's device name, and how each enumerates its GPUs. :mod:`m1vision.numerics`,
:mod:`m1vision.inference` and :mod:`m1vision.doctor` all read it from here.

=============  =====================================  ==============  ======================
backend        distributions (any one installed)      CPU             GPUs
=============  =====================================  ==============  ======================
tensorflow     tensorflow, tensorflow-cpu,            ``/CPU:0``      ``/GPU:N`` (Metal or
               tensorflow-macos                                       CUDA)
torch          torch                                  ``cpu``         ``cuda:N``, ``mps``
jax            jax                                    ``cpu:0``       ``gpu:N`` (CUDA)
=============  =====================================  ==============  ======================

The backends are imported inside these functions, never at ``import m1vision``.
"""

from __future__ import annotations

import contextlib

__all__ = [
    "BACKENDS",
    "BACKEND_DISTS",
    "BACKEND_WORDS",
    "CPU_NAMES",
    "cpu_name",
    "device_names",
    "keras_backend",
    "list_gpus",
]

#: The Keras backends m1vision runs on.
BACKENDS = ("tensorflow", "torch", "jax")

#: Each backend's distributions (any one installed counts).
BACKEND_DISTS = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"),
    "torch": ("torch",),
    "jax": ("jax",),
}

#: Each backend's name in words.
BACKEND_WORDS = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}

#: The CPU's device name on each backend.
CPU_NAMES = {"tensorflow": "/CPU:0", "torch": "cpu", "jax": "cpu:0"}


def keras_backend() -> str:
    """The Keras backend of this process: ``"tensorflow"``, ``"torch"`` or ``"jax"``.

    Set with the environment variable ``KERAS_BACKEND`` before Keras is first imported.
    """
    import keras

    return str(keras.config.backend())


def cpu_name(backend: str | None = None) -> str:
    """The CPU's device name on ``backend`` (default: this process's Keras backend)."""
    return CPU_NAMES.get(backend or keras_backend(), "cpu")


def list_gpus(backend: str | None = None) -> list[tuple[str, str]]:
    """``(device name, description)`` of every GPU ``backend`` sees (default: Keras' backend):
    Metal or CUDA on TensorFlow, CUDA and MPS on torch, CUDA on JAX. Imports the backend."""
    backend = backend or keras_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = []
        for i, device in enumerate(tf.config.list_physical_devices("GPU")):
            try:
                details = tf.config.experimental.get_device_details(device)
            except Exception:  # details are a nicety; the device is still usable
                details = {}
            gpus.append((f"/GPU:{i}", str(details.get("device_name") or device.name)))
        return gpus
    if backend == "torch":
        import torch

        gpus = [
            (f"cuda:{i}", torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())
        ]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            gpus.append(("mps", "Apple GPU (Metal Performance Shaders)"))
        return gpus
    if backend == "jax":
        import jax

        devices = []
        with contextlib.suppress(RuntimeError):  # no GPU platform installed
            devices = jax.devices("gpu")
        return [(f"gpu:{d.id}", str(getattr(d, "device_kind", d))) for d in devices]
    return []


def device_names(backend: str | None = None) -> list[str]:
    """Every device name of ``backend``: its CPU, then its GPUs (:func:`list_gpus`)."""
    backend = backend or keras_backend()
    return [cpu_name(backend)] + [name for name, _ in list_gpus(backend)]
