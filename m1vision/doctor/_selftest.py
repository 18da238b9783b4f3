"""The doctor's TensorFlow entry to the numerics self-test (internal).

The self-test itself (model, float64 reference, tolerances per device kind) lives in
:mod:`m1vision.numerics`, shared with :func:`m1vision.inference.select_device`; this module
only checks that a TensorFlow device name exists (TensorFlow would silently fall back to the
CPU) and keeps the doctor's result keys.
"""

from __future__ import annotations

import re

from m1vision.errors import InvalidParameterError, InvalidTypeError


def _resolve_device(tf, device: str) -> str:
    if not isinstance(device, str):
        raise InvalidTypeError(
            f"device must be a string like '/CPU:0', got {type(device).__name__}"
        )
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
    """Run the numerics self-test (:func:`m1vision.numerics.selftest`) on a TensorFlow device.

    A seeded conv 3x3 + relu, dense 2048 -> 10 model runs eagerly and as a ``tf.function``
    on ``device``; its logits must be within the device kind's relative tolerance
    (:data:`m1vision.numerics.TOLERANCES`: CPU 1e-4, GPU 1e-2, which passes TF32 and fails
    the errors of order 1 of broken Metal plugins) of a float64 NumPy evaluation, with the
    same classes.

    Parameters
    ----------
    device : str
        A TensorFlow device, ``"/CPU:0"`` or ``"/GPU:N"`` (the Metal GPU on a Mac).

    Returns
    -------
    dict
        ``ok`` (bool), ``max_abs_diff`` and ``relative_error`` (the worst run's),
        ``tolerance`` (relative), ``classes_agree``, ``detail`` (str), and ``backend``,
        ``device``, ``kind``, ``runs``, ``seconds``.

    Raises
    ------
    InvalidParameterError
        ``device`` does not exist here (TensorFlow would silently fall back to the CPU).

    Examples
    --------
    >>> from m1vision.doctor import tensorflow_selftest
    >>> result = tensorflow_selftest("/CPU:0")  # doctest: +SKIP
    >>> result["ok"], result["relative_error"] < result["tolerance"]  # doctest: +SKIP
    (True, True)
    """
    import tensorflow as tf

    from m1vision.numerics import selftest

    name = _resolve_device(tf, device)
    return selftest(name, backend="tensorflow")
