"""The numerics self-test: does a backend's device compute a small network right?

Used by :func:`m1vision.inference.select_device` (a GPU is used only if it passes) and by
``python -m m1vision doctor``. It tells reduced precision from wrong results:

* **Reduced precision passes.** NVIDIA GPUs run float32 convolutions (and, where enabled,
  matrix products) in TF32, 10 explicit mantissa bits: relative errors near 1e-3 of the
  output's scale. Apple's MPS float32 paths are of the same order. Such results are right.
* **Wrong results fail.** The tensorflow-metal bugs (TF 2.19 with the Metal plugin, and earlier
  plugin/TF mismatches) give errors of order 1 and other classes.

The test runs a fixed, seeded model -- conv 3x3 (3 -> 8 channels) + relu, dense
(2048 -> 10 logits) -- on a batch of 8 images with the backend's own operations on the
device, eagerly and through the backend's compiler where it has one (``tf.function``,
``jax.jit``), and compares every result with a float64 NumPy evaluation of the same model.
The doctor runs it for every installed backend and device, inference for Keras' backend:

==================  =====================================  =====================================
check               passes when                            why this figure
==================  =====================================  =====================================
relative error      ``max|y - ref| / max|ref|`` at most    see the measured figures below: each
                    :data:`TOLERANCES` of the device kind  bound is >= 20x above reduced
                    (CPU 1e-4, GPU 1e-2)                   precision and >= 50x below bugs
class agreement     every image's arg-max logit is the     wrong kernels change decisions; a
                    reference's, where the reference's     near-tie (margin under twice the
                    top two differ by more than twice the  error allowed) may flip legitimately
                    error allowed
finite              no NaN or inf                          a broken kernel often gives them
==================  =====================================  =====================================

Measured relative errors of this test (logits up to 1.46):

* float32 on a CPU: TensorFlow 2.4e-7, torch 7.9e-7, JAX 2.8e-7 (Linux x86_64); torch on an
  NVIDIA H100 with TF32 off: 2.0e-7.
* reduced precision: torch on an H100 with TF32 on (cuDNN convolutions and matrix products):
  2.6e-4; TF32 emulated in NumPy (operands rounded to 10 mantissa bits): 4.6e-4; bfloat16
  emulated (7 bits): 4.6e-3 -- all pass the GPU bound, none the CPU bound.
* wrong results (the tensorflow-metal failure modes): errors of order 1, swapped classes,
  NaN, half the batch zeroed -- all fail (tests/test_numerics.py). Apple's MPS float32 was not
  measured here (no Mac); its paths are of TF32's order or better.

Examples
--------
>>> from m1vision.numerics import judge, reference_logits
>>> ref = reference_logits()
>>> judge(ref.astype("float32"), ref, kind="cpu")["ok"]
True
>>> judge(ref + 0.5 * abs(ref).max(), ref, kind="gpu")["ok"]  # an error of order 1
False
"""

from __future__ import annotations

import time

import numpy as np

from m1vision._devices import CPU_NAMES

__all__ = [
    "PREDICTION_TOLERANCES",
    "TOLERANCES",
    "device_kind",
    "judge",
    "prediction_tolerance",
    "reference_logits",
    "selftest",
    "selftest_inputs",
]

#: Largest relative error (on the output's scale) a device kind may show and pass.
TOLERANCES = {"cpu": 1e-4, "gpu": 1e-2}

#: Largest absolute difference of probabilities between two runs of a model, by the worse of
#: their device kinds. CPU (float32, any backend): 1e-4 (measured ~5e-7 between TensorFlow on
#: a CPU and torch/JAX on a CPU or torch on an H100 with TF32 off). GPU: 5e-3 (measured 7.9e-4
#: for the shipped model on an H100 with torch's default TF32 convolutions; wrong kernels
#: differ by 0.1-1).
PREDICTION_TOLERANCES = {"cpu": 1e-4, "gpu": 5e-3}


def selftest_inputs():
    """``(x, kernel, bias1, dense, bias2)`` of the self-test: seeded float32 arrays.

    Examples
    --------
    >>> from m1vision.numerics import selftest_inputs
    >>> [a.shape for a in selftest_inputs()]
    [(8, 16, 16, 3), (3, 3, 3, 8), (8,), (2048, 10), (10,)]
    """
    rng = np.random.default_rng(20240518)
    x = rng.uniform(0.0, 1.0, size=(8, 16, 16, 3)).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, 3, 8)) / np.sqrt(27)).astype(np.float32)
    bias1 = (0.1 * rng.standard_normal(8)).astype(np.float32)
    dense = (rng.standard_normal((16 * 16 * 8, 10)) / np.sqrt(16 * 16 * 8 / 4)).astype(np.float32)
    bias2 = (0.1 * rng.standard_normal(10)).astype(np.float32)
    return x, kernel, bias1, dense, bias2


def reference_logits(inputs=None) -> np.ndarray:
    """The self-test model evaluated in float64 NumPy: the independent reference, (8, 10).

    Examples
    --------
    >>> from m1vision.numerics import reference_logits
    >>> logits = reference_logits()
    >>> logits.shape, logits.dtype
    ((8, 10), dtype('float64'))
    """
    x, kernel, bias1, dense, bias2 = selftest_inputs() if inputs is None else inputs
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
    conv = np.einsum("nhwcij,ijcf->nhwf", windows, kernel.astype(np.float64)) + bias1
    h = np.maximum(conv, 0.0).reshape(x.shape[0], -1)
    return h @ dense.astype(np.float64) + bias2


def device_kind(device: str | None) -> str:
    """ "cpu" or "gpu" for a device name of any backend (``"/GPU:0"``, ``"cuda:0"``,
    ``"mps"``, ``"cpu"``...); an unknown (empty) name counts as a GPU, the looser kind.

    Examples
    --------
    >>> from m1vision.numerics import device_kind
    >>> device_kind("/CPU:0"), device_kind("cuda:0"), device_kind("mps"), device_kind(None)
    ('cpu', 'gpu', 'gpu', 'gpu')
    """
    return "cpu" if device and "cpu" in str(device).lower() else "gpu"


def prediction_tolerance(recorded: float, *devices: str | None) -> tuple[float, str]:
    """The tolerance to compare predictions made on ``devices`` with, and why, in words.

    The larger of ``recorded`` (what the record asked for) and
    :data:`PREDICTION_TOLERANCES` of the worst device kind among ``devices``.

    Examples
    --------
    >>> from m1vision.numerics import prediction_tolerance
    >>> prediction_tolerance(1e-4, "/CPU:0", "cpu")
    (0.0001, 'recorded on /CPU:0, replayed on cpu: both CPUs (float32)')
    >>> prediction_tolerance(1e-4, "/CPU:0", "cuda:0")[0]
    0.005
    """
    kinds = [device_kind(d) for d in devices]
    worst = "gpu" if "gpu" in kinds else "cpu"
    tolerance = max(float(recorded), PREDICTION_TOLERANCES[worst])
    names = ", ".join(
        f"{verb} on {d or 'an unrecorded device'}"
        for verb, d in zip(("recorded", "replayed"), devices, strict=False)
    )
    why = (
        f"{names}: both CPUs (float32)"
        if worst == "cpu"
        else f"{names}: a GPU computes in reduced precision (TF32, MPS), so "
        f"{PREDICTION_TOLERANCES['gpu']:g}"
    )
    if tolerance == recorded and recorded > PREDICTION_TOLERANCES[worst]:
        why += f"; the record asks for {recorded:g}"
    return tolerance, why


def judge(result, reference, *, kind: str) -> dict:
    """Compare a device's logits with the float64 reference under the tolerance of ``kind``.

    Parameters
    ----------
    result, reference : ndarray, shape (N, classes)
    kind : {"cpu", "gpu"}

    Returns
    -------
    dict
        ``ok``, ``relative_error`` (``max|result - reference| / max|reference|``),
        ``max_abs_diff``, ``tolerance``, ``classes_agree`` and ``detail`` (in words).

    Examples
    --------
    float32 logits of the reference pass on a CPU; an error of 5 % of the scale does not.

    >>> import numpy as np
    >>> from m1vision.numerics import judge, reference_logits
    >>> reference = reference_logits()
    >>> judge(reference.astype(np.float32), reference, kind="cpu")["ok"]
    True
    >>> off = reference + 0.05 * np.abs(reference).max()
    >>> judge(off, reference, kind="cpu")["ok"]
    False
    """
    if kind not in TOLERANCES:
        from m1vision.errors import InvalidParameterError

        raise InvalidParameterError(
            f"kind must be one of {sorted(TOLERANCES)}, got {kind!r}; pass 'gpu' for any "
            "accelerator (CUDA, Metal, MPS)."
        )
    tolerance = TOLERANCES[kind]
    result = np.asarray(result, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    scale = float(np.max(np.abs(reference)))
    finite = bool(np.isfinite(result).all()) and result.shape == reference.shape
    if not finite:
        what = "non-finite values" if result.shape == reference.shape else "the wrong shape"
        return {
            "ok": False,
            "relative_error": float("inf"),
            "max_abs_diff": float("inf"),
            "tolerance": tolerance,
            "classes_agree": False,
            "detail": f"{what} ({result.shape}, expected {reference.shape})",
        }
    diff = float(np.max(np.abs(result - reference)))
    relative = diff / scale
    top2 = np.sort(reference, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 2 * tolerance * scale
    same = np.argmax(result, axis=1) == np.argmax(reference, axis=1)
    agree = bool(same[decided].all())
    ok = relative <= tolerance and agree
    detail = (
        f"relative error {relative:.1e} (tolerance {tolerance:g} for a {kind.upper()}), "
        f"max abs diff {diff:.1e} on logits up to {scale:.2f}, classes "
        f"{'agree' if agree else 'DIFFER'} on {int(decided.sum())}/{len(decided)} images"
    )
    return {
        "ok": bool(ok),
        "relative_error": relative,
        "max_abs_diff": diff,
        "tolerance": tolerance,
        "classes_agree": agree,
        "detail": detail,
    }


def _run_tensorflow(inputs, device):
    import tensorflow as tf

    def forward(x, kernel, bias1, dense, bias2):
        h = tf.nn.relu(tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias1)
        h = tf.reshape(h, (tf.shape(h)[0], -1))
        return tf.matmul(h, dense) + bias2

    with tf.device(device):
        args = [tf.constant(a) for a in inputs]
        return {
            "eager": forward(*args).numpy(),
            "tf.function": tf.function(forward)(*args).numpy(),
        }


def _run_torch(inputs, device):
    import torch

    dev = torch.device(device)
    x, kernel, bias1, dense, bias2 = (torch.from_numpy(a).to(dev) for a in inputs)
    with torch.no_grad():
        # NHWC -> NCHW and (kh, kw, in, out) -> (out, in, kh, kw), as Keras' torch backend does
        conv = torch.nn.functional.conv2d(
            x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), bias1, padding=1
        )
        h = torch.relu(conv).permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        out = h @ dense + bias2
    return {"eager": out.cpu().numpy()}


def _run_jax(inputs, device):
    import jax

    platform, _, index = device.partition(":")
    dev = jax.devices(platform)[int(index or 0)]

    def forward(x, kernel, bias1, dense, bias2):
        conv = jax.lax.conv_general_dilated(
            x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jax.numpy.maximum(conv + bias1, 0.0).reshape(x.shape[0], -1)
        return h @ dense + bias2

    args = [jax.device_put(a, dev) for a in inputs]
    return {"eager": np.asarray(forward(*args)), "jax.jit": np.asarray(jax.jit(forward)(*args))}


_RUNNERS = {"tensorflow": _run_tensorflow, "torch": _run_torch, "jax": _run_jax}


def selftest(device: str | None = None, *, backend: str | None = None) -> dict:
    """Run the self-test model on ``device`` of ``backend`` and judge it.

    The model runs with the backend's own operations (``tf.nn.conv2d``,
    ``torch.nn.functional.conv2d``, ``jax.lax.conv_general_dilated``, and a matrix product),
    eagerly and through the backend's compiler where it has one (``tf.function``,
    ``jax.jit``), with the backend's precision settings as they are (TF32 where enabled).
    Takes well under a second once the backend is imported.

    Parameters
    ----------
    device : str, optional
        A device name of the backend (``"/GPU:0"`` on TensorFlow, ``"cuda:0"`` or ``"mps"``
        on torch, ``"gpu:0"`` on JAX); default: the backend's CPU.
    backend : {"tensorflow", "torch", "jax"}, optional
        Default: Keras' backend in this process (``KERAS_BACKEND``).

    Returns
    -------
    dict
        :func:`judge`'s result for the worst of the runs (eager, compiled), plus
        ``backend``, ``device``, ``kind`` ("cpu" or "gpu"), ``runs`` (each run's relative
        error) and ``seconds``.

    Examples
    --------
    >>> from m1vision.numerics import selftest
    >>> result = selftest()  # the CPU, with Keras' backend
    >>> result["ok"], result["kind"]
    (True, 'cpu')
    """
    if backend is None:
        from m1vision._devices import keras_backend

        backend = keras_backend()
    if backend not in _RUNNERS:
        from m1vision.errors import InvalidParameterError

        raise InvalidParameterError(f"backend must be one of {sorted(_RUNNERS)}, got {backend!r}.")
    device = device or CPU_NAMES[backend]
    kind = "cpu" if "cpu" in device.lower() else "gpu"
    inputs = selftest_inputs()
    reference = reference_logits(inputs)
    start = time.perf_counter()
    runs = _RUNNERS[backend](inputs, device)
    seconds = time.perf_counter() - start
    judged = {name: judge(out, reference, kind=kind) for name, out in runs.items()}
    worst = max(judged.values(), key=lambda r: (not r["ok"], r["relative_error"]))
    detail = (
        f"conv3x3(3->8)+relu, dense(2048->10) on {backend} {device}, against NumPy "
        "float64: "
        + "; ".join(f"{name}: {r['detail']}" for name, r in judged.items())
        + f"; {seconds:.2f} s"
    )
    return {
        **worst,
        "ok": all(r["ok"] for r in judged.values()),
        "detail": detail,
        "backend": backend,
        "device": device,
        "kind": kind,
        "runs": {name: r["relative_error"] for name, r in judged.items()},
        "seconds": seconds,
    }
