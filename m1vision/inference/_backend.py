"""What differs between Keras 3 backends when running a model: placing a model and a batch on
a device, the one compiled (or no-grad) inference call, and the gradient Grad-CAM needs.
Everything else in m1vision.inference is backend-neutral; the table of backends, device
names and GPUs is :mod:`m1vision._devices`.

=============  =====================  ==========================  =============================
backend        device names           inference call              gradient
=============  =====================  ==========================  =============================
tensorflow     ``/CPU:0``, ``/GPU:N``  one ``tf.function`` traced   ``tf.GradientTape``
               (Metal or CUDA)        once (batch dimension open)
torch          ``cpu``, ``cuda:N``,   ``model(x)`` under           ``torch.autograd.grad``
               ``mps``                ``torch.no_grad()``
jax            ``cpu:0``, ``gpu:N``   one ``jax.jit`` of           ``jax.grad`` of the layers
                                      ``model.stateless_call``     after the explained layer
=============  =====================  ==========================  =============================

Keras, TensorFlow, PyTorch and JAX are imported inside these functions, never at
``import m1vision``.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from m1vision._devices import BACKENDS, cpu_name, keras_backend, list_gpus

__all__ = ["BACKENDS", "Compiled", "backend", "class_score_gradient", "cpu_name", "list_gpus"]


def _keras():
    import keras

    return keras


def backend() -> str:
    """The Keras backend of this process (:func:`m1vision._devices.keras_backend`)."""
    return keras_backend()


def _torch_device(name: str):
    import torch

    return torch.device(name)


def _jax_device(name: str):
    import jax

    platform, _, index = name.partition(":")
    return jax.devices(platform)[int(index or 0)]


@contextlib.contextmanager
def device_scope(name: str):
    """Run Keras code (model building, loading, calls) on the device ``name``."""
    if backend() == "tensorflow":
        import tensorflow as tf

        with tf.device(name):
            yield
    else:
        with _keras().device(name):
            yield


def place_model(model, name: str) -> None:
    """Move a Keras model's variables to device ``name`` where the backend keeps them there
    (torch); a no-op for TensorFlow (placement per op) and JAX (arrays placed per call)."""
    if backend() != "torch" or not hasattr(model, "variables"):
        return
    device = _torch_device(name)
    import torch

    with torch.no_grad():
        for variable in model.variables:
            value = getattr(variable, "_value", None)
            if isinstance(value, torch.Tensor) and value.device != device:
                value.data = value.data.to(device)


class Compiled:
    """The one inference call of a model on a device: NumPy batch in, NumPy output out.

    Attributes
    ----------
    tracing_count : int or None
        How many times the function was traced or compiled (TensorFlow, JAX); ``None`` on
        torch, which runs eagerly under ``torch.no_grad()`` and never traces.
    """

    def __init__(self, model, input_shape, dtype, device: str):
        self.model = model
        self.device = device
        self.backend = backend()
        self._traces = 0
        self._lock = threading.Lock()
        if self.backend == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec([None, *input_shape[1:]], tf.as_dtype(dtype))

            def infer(x):
                return model(x, training=False)

            self._fn = tf.function(infer, input_signature=[spec], autograph=False)
        elif self.backend == "jax":
            import jax

            def infer(trainable, non_trainable, x):
                self._traces += 1  # runs at trace time only
                y, _ = model.stateless_call(trainable, non_trainable, x, training=False)
                return y

            self._fn = jax.jit(infer)
            self._jax_device = _jax_device(device)
        elif self.backend == "torch":
            self._torch_device = _torch_device(device)
            place_model(model, device)

    @property
    def tracing_count(self) -> int | None:
        if self.backend == "tensorflow":
            return int(self._fn.experimental_get_tracing_count())
        if self.backend == "jax":
            return self._traces
        return None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.backend == "tensorflow":
            import tensorflow as tf

            with tf.device(self.device):
                return self._fn(tf.convert_to_tensor(batch)).numpy()
        if self.backend == "torch":
            import torch

            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._torch_device)
            with torch.no_grad(), _keras().device(self.device):
                out = self.model(x, training=False)
            return out.detach().to("cpu").numpy()
        if self.backend == "jax":
            import jax

            model = self.model
            device = self._jax_device
            trainable = jax.device_put([v.value for v in model.trainable_variables], device)
            frozen = jax.device_put([v.value for v in model.non_trainable_variables], device)
            with self._lock:  # the trace counter is Python state
                out = self._fn(trainable, frozen, jax.device_put(batch, device))
            return np.asarray(out)
        raise RuntimeError(f"unsupported Keras backend {self.backend!r}")


def class_score_gradient(grad_model, head_fn, tail_fn, batch: np.ndarray, class_index, device):
    """Run ``grad_model`` (outputs: the explained layer's maps, the head's input, the model's
    output) on ``batch`` and return ``(maps, d score / d maps, class index, classes)`` as
    NumPy, with the backend's own automatic differentiation.

    ``class_index`` may be a callable ``(n_classes, outputs) -> int`` choosing it from the
    outputs. ``head_fn`` turns the head's input into the class scores (``None``: the output
    is the score). ``tail_fn()`` builds the model from the maps to the head's input (JAX
    only, which differentiates functions, not recorded operations).
    """
    name = backend()
    keras = _keras()
    if name == "tensorflow":
        import tensorflow as tf

        with tf.device(device), tf.GradientTape() as tape:
            maps, head_input, outputs = grad_model(tf.convert_to_tensor(batch), training=False)
            index, n = class_index(int(outputs.shape[-1]), outputs.numpy())
            scores = head_fn(head_input) if head_fn is not None else outputs
            score = scores[0, index]
        grads = tape.gradient(score, maps)
        return maps.numpy(), None if grads is None else grads.numpy(), index, n
    if name == "torch":
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch)).to(_torch_device(device))
        x.requires_grad_(True)  # a graph even when the model's variables are frozen
        with torch.enable_grad(), keras.device(device):
            maps, head_input, outputs = grad_model(x, training=False)
            index, n = class_index(int(outputs.shape[-1]), outputs.detach().cpu().numpy())
            scores = head_fn(head_input) if head_fn is not None else outputs
            (grads,) = torch.autograd.grad(scores[0, index], maps, allow_unused=True)
        as_np = lambda t: t.detach().to("cpu").numpy()  # noqa: E731
        return as_np(maps), None if grads is None else as_np(grads), index, n
    if name == "jax":
        import jax

        with keras.device(device):
            maps, head_input, outputs = grad_model(batch, training=False)
            index, n = class_index(int(outputs.shape[-1]), np.asarray(outputs))
            tail = tail_fn()

            def score(m):
                h = tail(m, training=False)
                return (head_fn(h) if head_fn is not None else h)[0, index]

            grads = jax.grad(score)(maps)
        return np.asarray(maps), np.asarray(grads), index, n
    raise RuntimeError(f"unsupported Keras backend {name!r}")
