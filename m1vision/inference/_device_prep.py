"""Preparation on the model's device (internal): decode on the CPU, tensor maths on the device.

A GPU infers faster than the CPU cores can read, resize and normalise images. This module
splits the preparation of an input in two:

* the **CPU part** (:meth:`DevicePlan.decode`): read and decode the input (PNG, DICOM...),
  then the leading pipeline steps that only OpenCV does (blur, Canny, CLAHE, gray
  conversion...), to an array at its native size in its native dtype (``uint8``,
  ``uint16``, ``int16`` or ``float32``): 2 bytes per pixel of a 16-bit PNG reach the device
  instead of 12 (three float32 channels);
* the **device part** (:func:`apply`): the pipeline's tail made of :data:`DEVICE_STEPS`
  (``window``, ``to_uint8`` in modes range/dtype, ``normalize``, ``resize`` with
  nearest/linear/area interpolation), then what the Predictor adds (resize to the model's
  input, alpha dropped, gray repeated to 3 channels or BGR to gray, the model's dtype), as
  ``keras.ops`` on a batch tensor ``(N, H, W, C)`` already on the device, backend-neutral
  (TensorFlow, torch, JAX).

Equality with the CPU path
--------------------------
Every step follows its :mod:`m1vision.preprocess` function, including the dtype the CPU path
has between steps: after a step that returns ``uint8`` (``window``, ``to_uint8``) or a
resize of an integer image the values are rounded half to even and clipped as OpenCV's
``saturate_cast`` does. Resizing is a product with two interpolation matrices built from
OpenCV's own formulas (:func:`resize_matrix`: ``INTER_LINEAR`` with half-pixel centres and
clamped borders, ``INTER_AREA`` as the exact pixel-overlap average when shrinking and its
linear variant when enlarging, ``INTER_NEAREST`` as ``floor(dst * src / dst)``), not
``keras.ops.image.resize``: its ``area`` mode is an adaptive pooling on torch (integer bins,
not OpenCV's fractional overlaps) and its ``nearest`` uses half-pixel rounding, so the
matrices are what keeps every backend equal to OpenCV. Differences that remain (tested in
``tests/test_inference_device_prep.py``):

* float images: float32 rounding, <= 1e-5 relative (1e-3 with TF32 matmuls on an NVIDIA GPU,
  off by default in torch);
* integer images: at most 1 grey level (of 255 or 65535) where the CPU path rounds to an
  integer image, which ``normalize(mode="mobilenet")`` makes 1/127.5. OpenCV resizes
  ``uint8`` with linear weights (``INTER_LINEAR``, and ``INTER_AREA`` when enlarging) in
  fixed-point SIMD arithmetic that is not the exact product: about 12% of the pixels of a
  noise image land one level away (measured; the tests bound it). Shrinking with
  ``INTER_AREA`` (float weights in OpenCV too), windows, ``to_uint8`` and color to gray
  (OpenCV's 14-bit weights, reproduced) differ only at .5 ties (< 2% of pixels).

Steps that stay on the CPU: ``to_uint8(mode="percentile")`` (a sort per image),
``resize`` with cubic or Lanczos interpolation, and every OpenCV-only step; a device part
starts after the last of them.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from m1vision._checks import WINDOW_PRESETS, window_bounds
from m1vision.errors import InvalidImageError

#: The registered pipeline steps that can run on the device (with the limits said above).
DEVICE_STEPS = ("window", "to_uint8", "normalize", "resize")

_IMAGENET_MEAN_BGR = np.array([0.406, 0.456, 0.485], np.float32)
_IMAGENET_STD_BGR = np.array([0.225, 0.224, 0.229], np.float32)
_INT_RANGE = {"uint8": (0.0, 255.0), "uint16": (0.0, 65535.0), "int16": (-32768.0, 32767.0)}


def _ops():
    import keras

    return keras.ops


def device_reason(step) -> str | None:
    """``None`` if ``step`` (a pipeline Step) can run on the device, else why not."""
    name = getattr(step, "name", None)
    if name not in DEVICE_STEPS:
        return f"step {name or type(step).__name__!r} runs on OpenCV only"
    if name == "to_uint8" and step.mode == "percentile":
        return "to_uint8(mode='percentile') needs a sort per image"
    if name == "resize" and step.interpolation not in (None, "nearest", "linear", "area"):
        return f"resize(interpolation={step.interpolation!r}) differs from OpenCV off the CPU"
    return None


# --------------------------------------------------------------------------- resize matrices


@functools.lru_cache(maxsize=64)
def resize_matrix(src: int, dst: int, interpolation: str, shrink_both: bool = True) -> np.ndarray:
    """The ``(dst, src)`` float32 matrix of OpenCV's 1-D resize weights.

    ``interpolation`` is "nearest", "linear" or "area"; ``shrink_both`` says whether OpenCV
    takes its area branch (both axes shrink or stay): otherwise "area" is its linear variant.

    Examples
    --------
    >>> from m1vision.inference._device_prep import resize_matrix
    >>> resize_matrix(4, 2, "area").tolist()
    [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    m = np.zeros((dst, src), np.float64)
    scale = src / dst
    if src == dst:
        return np.eye(dst, dtype=np.float32)
    if interpolation == "nearest":
        for d in range(dst):
            m[d, min(math.floor(d * scale), src - 1)] = 1.0
        return m.astype(np.float32)
    if interpolation == "area" and shrink_both and src >= dst:
        for d in range(dst):
            lo, hi = d * scale, (d + 1) * scale
            for s in range(math.floor(lo), min(src, math.ceil(hi))):
                overlap = min(hi, s + 1) - max(lo, s)
                if overlap > 0:
                    m[d, s] = overlap / scale
        return m.astype(np.float32)
    for d in range(dst):
        if interpolation == "area":  # OpenCV's INTER_AREA when enlarging
            s = math.floor(d * scale)
            f = (d + 1) - (s + 1) / scale
            f = 0.0 if f <= 0 else f - math.floor(f)
        else:
            x = (d + 0.5) * scale - 0.5
            s = math.floor(x)
            f = x - s
        if s < 0:
            s, f = 0, 0.0
        if s >= src - 1:
            s, f = src - 1, 0.0
        m[d, s] += 1.0 - f
        if f:
            m[d, s + 1] += f
    return m.astype(np.float32)


# --------------------------------------------------------------------------- the device ops
# Each takes and returns a float32 tensor (N, H, W, C) on the device and the dtype the CPU path
# would have at that point ("uint8", "uint16", "int16" or "float32").


def _round_to(x, dtype: str):
    """Round half to even and clip as OpenCV's saturate_cast to an integer ``dtype``."""
    ops = _ops()
    lo, hi = _INT_RANGE[dtype]
    return ops.clip(ops.round(x), lo, hi)


_CONSTANTS: dict = {}  # (torch device, what) -> tensor


def _constant(x, make, *key):
    """The constant array ``make(*key)`` as a tensor where ``x`` is: on torch made once per
    device and reused (a copy from pageable host memory per batch would make the host wait
    for the device's queue), on the other backends converted each time."""
    ops = _ops()
    device = getattr(x, "device", None)
    if device is None or type(x).__module__.split(".")[0] != "torch":
        return ops.convert_to_tensor(make(*key))
    k = (str(device), make, key)
    t = _CONSTANTS.get(k)
    if t is None:
        import torch

        if len(_CONSTANTS) > 64:  # many sizes: keep it bounded
            _CONSTANTS.clear()
        t = _CONSTANTS[k] = torch.tensor(make(*key), device=device)
    return t


def _per_image(x, fn):
    return fn(x, axis=(1, 2, 3), keepdims=True)


def linear_to_uint8(x, lo, hi):
    """:func:`m1vision.preprocess._linear_to_uint8` on a batch: ``lo``/``hi`` floats or
    per-image tensors ``(N, 1, 1, 1)``; ``hi <= lo`` gives zeros."""
    ops = _ops()
    if isinstance(lo, float | int) and isinstance(hi, float | int):
        if hi <= lo:
            return ops.zeros_like(x)
        scale = 255.0 / (hi - lo)
        return _round_to(x * scale - lo * scale, "uint8")
    span = hi - lo
    ok = span > 0
    scale = ops.where(ok, 255.0 / ops.where(ok, span, 1.0), 0.0)
    return _round_to(x * scale - lo * scale, "uint8")


def window(x, dtype, *, center=None, width=None, preset=None):
    """The ``window`` step (level/width to uint8 values)."""
    lo, hi = window_bounds(center=center, width=width, preset=preset)
    return linear_to_uint8(x, lo, hi), "uint8"


def to_uint8(x, dtype, *, mode="range", in_range=None):
    """The ``to_uint8`` step in modes "range" and "dtype" (uint8 input unchanged)."""
    if dtype == "uint8":
        return x, dtype
    ops = _ops()
    if mode == "range":
        if in_range is not None:
            lo, hi = (float(v) for v in in_range)
        else:
            lo, hi = _per_image(x, ops.min), _per_image(x, ops.max)
    elif dtype == "float32":
        lo, hi = 0.0, 1.0
    else:
        lo, hi = _INT_RANGE[dtype]
    return linear_to_uint8(x, lo, hi), "uint8"


def normalize(x, dtype, *, mode="unit"):
    """The ``normalize`` step (to float32)."""
    ops = _ops()
    if mode == "unit":
        if dtype == "float32":
            lo, hi = _per_image(x, ops.min), _per_image(x, ops.max)
            span = hi - lo
            ok = span > 0
            return ops.where(ok, (x - lo) / ops.where(ok, span, 1.0), 0.0), "float32"
        lo, hi = _INT_RANGE[dtype]
        return (x - lo) / (hi - lo), "float32"
    x, _ = to_uint8(x, dtype)
    if mode == "mobilenet":
        return x / 127.5 - 1.0, "float32"
    channels = x.shape[-1]
    if channels == 4:
        x = x[..., :3]
        channels = 3
    if channels == 1:
        mean, std = float(_IMAGENET_MEAN_BGR.mean()), float(_IMAGENET_STD_BGR.mean())
        return (x / 255.0 - mean) / std, "float32"
    return (x / 255.0 - ops.convert_to_tensor(_IMAGENET_MEAN_BGR)) / ops.convert_to_tensor(
        _IMAGENET_STD_BGR
    ), "float32"


def resize(x, dtype, *, size, keep_aspect=False, letterbox=True, interpolation=None, pad_value=0.0):
    """The ``resize`` step (and the Predictor's resize to the model's input size)."""
    ops = _ops()
    height, width = size
    h, w = int(x.shape[1]), int(x.shape[2])
    if keep_aspect:
        scale = min(height / h, width / w)
        new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    else:
        new_h, new_w = height, width
    if interpolation is None:
        interpolation = "area" if new_h * new_w < h * w else "linear"
    if (new_h, new_w) != (h, w):
        both = new_h <= h and new_w <= w
        rows = _constant(x, resize_matrix, h, new_h, interpolation, both)
        cols = _constant(x, resize_matrix, w, new_w, interpolation, both)
        x = ops.einsum("oh,nhwc->nowc", rows, x)
        x = ops.einsum("pw,nowc->nopc", cols, x)
        if dtype != "float32":
            x = _round_to(x, dtype)
    if keep_aspect and letterbox and (new_h, new_w) != (height, width):
        top, left = (height - new_h) // 2, (width - new_w) // 2
        pad = [[0, 0], [top, height - new_h - top], [left, width - new_w - left], [0, 0]]
        value = float(pad_value)
        if dtype != "float32":  # the canvas has the image's dtype (numpy casts pad_value)
            value = float(np.array(pad_value).astype(dtype))
        x = ops.pad(x, pad, constant_values=value)
    return x, dtype


def channels(x, dtype, *, to: int | None):
    """The Predictor's channel adaptation: alpha dropped, gray repeated, BGR to gray."""
    ops = _ops()
    have = int(x.shape[-1])
    if have == 4 and to != 4:
        x, have = x[..., :3], 3
    if to == 3 and have == 1:
        x = ops.repeat(x, 3, axis=-1)
    elif to == 1 and have == 3:  # BT.601 luma on BGR, as cv2.COLOR_BGR2GRAY
        if dtype == "float32":
            weights = np.array([0.114, 0.587, 0.299], np.float32)
        else:  # OpenCV's 14-bit fixed-point weights, rounded half up
            weights = np.array([1868, 9617, 4899], np.float32) / np.float32(16384)
        x = ops.sum(x * ops.convert_to_tensor(weights), axis=-1, keepdims=True)
        if dtype != "float32":
            lo, hi = _INT_RANGE[dtype]
            x = ops.clip(ops.floor(x + 0.5), lo, hi)
    return x, dtype


_OPS = {"window": window, "to_uint8": to_uint8, "normalize": normalize, "resize": resize}


def to_float32(x, source_dtype: str):
    """A staged tensor (the decoded dtype, on the device) as float32; ``uint16`` staged on
    torch travels as ``int16`` bits (torch's uint16 has few kernels) and is undone here."""
    ops = _ops()
    if (
        source_dtype == "uint16"
        and str(getattr(x, "dtype", "")).endswith("int16")
        and not str(x.dtype).endswith("uint16")
    ):
        x = ops.cast(x, "int32")
        x = ops.where(x < 0, x + 65536, x)
    return ops.cast(x, "float32")


def apply(x, steps, *, dtype: str, input_shape, input_dtype):
    """The device part on a staged batch ``x`` ``(N, H, W, C)``: ``steps`` (pipeline steps of
    :data:`DEVICE_STEPS`, or ``(name, params)`` pairs), then the Predictor's resize to
    ``input_shape`` ``(None, H, W, C)``, channels and cast to ``input_dtype``.

    ``dtype`` is the decoded dtype of ``x``; it is cast to float32 first.
    """
    ops = _ops()
    x = to_float32(x, dtype)
    dtype = "float32" if dtype in ("float32", "float64") else dtype
    for step in steps:
        name, params = step if isinstance(step, tuple) else (step.name, step.params())
        params = {k: v for k, v in params.items() if k != "percentiles"}
        x, dtype = _OPS[name](x, dtype, **params)
    _, height, width, c = input_shape
    if height is not None and width is not None and tuple(x.shape[1:3]) != (height, width):
        x, dtype = resize(x, dtype, size=(height, width))
    x, dtype = channels(x, dtype, to=c)
    if c is not None and int(x.shape[-1]) != c:
        raise InvalidImageError(f"input has {int(x.shape[-1])} channels but the model expects {c}.")
    if np.dtype(input_dtype).kind in "iu" and dtype == "float32":
        x = ops.where(x < 0, ops.ceil(x), ops.floor(x))  # numpy's cast truncates
    return ops.cast(x, str(np.dtype(input_dtype)))


# --------------------------------------------------------------------------- the plan


class DevicePlan:
    """A Predictor's preparation split into a CPU part and a device part.

    Picklable when the CPU part is (worker processes run :meth:`decode`).

    Attributes
    ----------
    cpu_steps : Pipeline, callable or None
        What runs after reading, on the CPU.
    device_steps : tuple of Step
        The pipeline's tail that runs on the device (may be empty: then only the resize,
        channels and cast run there).
    """

    def __init__(self, cpu_steps, device_steps, input_shape, input_dtype):
        self.cpu_steps = cpu_steps
        self.device_steps = tuple(device_steps)
        self.input_shape = tuple(input_shape)
        self.input_dtype = np.dtype(input_dtype)

    def decode(self, item) -> np.ndarray:
        """The CPU part: read, the CPU steps, checked; ``(H, W, C)`` in a staging dtype."""
        from m1vision.inference._prepare import load_checked

        image = load_checked(item, self.cpu_steps)
        if image.dtype == np.float64:
            image = image.astype(np.float32)
        if image.ndim == 2:
            image = image[:, :, None]
        return np.ascontiguousarray(image)

    def describe(self) -> str:
        names = [s.name for s in self.device_steps] + ["resize", "channels", "cast"]
        return ", ".join(dict.fromkeys(names))

    def apply(self, x, dtype: str):
        """:func:`apply` with this plan's steps and model input."""
        return apply(
            x,
            self.device_steps,
            dtype=dtype,
            input_shape=self.input_shape,
            input_dtype=self.input_dtype,
        )


def plan(preprocess, input_shape, input_dtype) -> tuple[DevicePlan | None, str]:
    """Split ``preprocess`` into a :class:`DevicePlan`; ``(None, why)`` when nothing but
    the cast could run on the device (so the CPU path is as good)."""
    from m1vision.pipeline import Pipeline

    steps: tuple = ()
    cpu = preprocess
    why = ""
    if isinstance(preprocess, Pipeline):
        tail = len(preprocess)
        while tail > 0 and device_reason(preprocess[tail - 1]) is None:
            tail -= 1
        steps = tuple(preprocess.steps[tail:])
        cpu = Pipeline(preprocess.steps[:tail]) if tail else None
        if tail:
            why = device_reason(preprocess[tail - 1])
    elif preprocess is not None:
        why = f"preprocess is a plain function ({type(preprocess).__name__})"
    _, height, width, _ = input_shape
    if not steps and (height is None or width is None) and preprocess is not None:
        return None, f"nothing to do on the device: {why}, and the model's input size is open"
    return DevicePlan(cpu, steps, input_shape, input_dtype), why


__all__ = [
    "DEVICE_STEPS",
    "WINDOW_PRESETS",
    "DevicePlan",
    "apply",
    "channels",
    "device_reason",
    "linear_to_uint8",
    "normalize",
    "plan",
    "resize",
    "resize_matrix",
    "to_float32",
    "to_uint8",
    "window",
]
