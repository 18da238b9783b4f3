"""The TensorFlow numerics self-test (internal).

A pure move from the former doctor.py; used by the doctor and by inference (through
``m1vision.doctor.tensorflow_selftest``).
"""

from __future__ import annotations

import re
import time

from m1vision.doctor._common import SELFTEST_TOLERANCE
from m1vision.errors import InvalidParameterError


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
