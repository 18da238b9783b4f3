"""TensorFlow inference: pick a device, load a model safely, predict batches of images fast.

============================  ===============================================================
name                          what it does
============================  ===============================================================
:func:`select_device`         the Metal/CUDA GPU if TensorFlow sees one *and* it passes the
                              doctor's numerics self-test, else the CPU -- with the reason
:func:`load_model`            a ``.keras`` file (safe mode) or a SavedModel folder
:func:`model_input_spec`      ``((None, H, W, C), dtype)`` of a loaded model
:class:`Predictor`            OpenCV preprocessing in threads, overlapped with one compiled
                              TensorFlow function; ``.predict`` and resumable ``.predict_folder``
:class:`Predictions`          probabilities ``(N, C)``, top-k ``(label, score)``, the inputs
:func:`read_predictions`      the records of a ``.predict_folder`` JSON Lines file
============================  ===============================================================

TensorFlow is imported on first use inside these functions, never by ``import m1vision``
(it takes seconds to import).

Design choices
--------------
* **SavedModel folders** load with ``tf.saved_model.load`` and are wrapped in a small
  :class:`SavedModelClassifier` (a callable exposing ``input_shape``, ``input_dtype`` and
  ``output_shape``), not ``keras.layers.TFSMLayer``: the layer hides the input spec and needs
  the endpoint name, while the wrapper reads both from the ``serving_default`` signature that
  Keras 3's ``model.export(dir)`` (and TF 2 ``tf.saved_model.save``) write.
* **One compiled function**: :class:`Predictor` traces the model once in a ``tf.function`` with
  the input signature ``TensorSpec([None, H, W, C])``. The batch dimension stays ``None``, so the
  last, shorter batch and calls with any number of images reuse the same graph (no retracing and
  no padding). XLA (``jit_compile``) is not used: on the CPU it was ~10x slower for MobileNetV2
  here, and Metal does not support it.
* **Overlap**: reading (:func:`m1vision.io.read_any`) and preprocessing run in a thread pool,
  up to ``prefetch`` batches ahead of the batch TensorFlow is computing (OpenCV and TensorFlow
  both release the GIL).
* **Resumable folder runs** write JSON Lines: a header line, then one line per input, appended
  per batch with ``flush`` + ``fsync``. A crash can leave at most a partial last line, which the
  next run (and :func:`read_predictions`) drops; inputs already recorded as ``"ok"`` are skipped,
  failed ones are tried again.
"""

from __future__ import annotations

import collections
import json
import os
import re
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import cv2
import numpy as np

from m1vision._atomic import atomic_write_text
from m1vision._checks import check_choice, check_image, check_int
from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    M1VisionError,
    ModelLoadError,
    OutputExistsError,
)

__all__ = [
    "DeviceChoice",
    "DeviceUnavailableError",
    "PredictionReport",
    "Predictions",
    "Predictor",
    "SavedModelClassifier",
    "load_model",
    "model_input_spec",
    "read_predictions",
    "select_device",
]

_FORMAT = "m1vision-predictions"
_FORMAT_VERSION = 1


def _tf():
    """Import TensorFlow on first use (2-4 s), not at ``import m1vision``."""
    import tensorflow as tf

    return tf


def _keras():
    import keras

    return keras


# ---------------------------------------------------------------------------------------------
# device choice
# ---------------------------------------------------------------------------------------------


class DeviceUnavailableError(M1VisionError, RuntimeError):
    """``prefer="gpu"`` was asked for, but no GPU is usable; the message says why and the fix."""


@dataclass(frozen=True)
class DeviceChoice:
    """The device inference runs on.

    Attributes
    ----------
    name : str
        A TensorFlow device name for ``tf.device``: ``"/GPU:0"`` or ``"/CPU:0"``.
    kind : {"gpu", "cpu"}
    reason : str
        Why this device, in words (e.g. ``"no GPU is visible to TensorFlow"``).
    """

    name: str
    kind: str
    reason: str


_GPU_FIX = (
    "On an Apple Silicon Mac install tensorflow==2.18.1 with tensorflow-metal==1.2.0 "
    "(`make install` does), on Linux with an NVIDIA GPU install m1vision[cuda]; "
    "`python -m m1vision doctor` shows what TensorFlow sees. Or use device='auto' or 'cpu'."
)

_DEVICE_LOCK = threading.Lock()
_GPU_STATUS: tuple[str | None, str] | None = None  # (usable GPU name or None, reason) per process


def _assess_gpu(gpus: list[tuple[str, str]], selftest) -> tuple[str | None, str]:
    """Return ``(device name, reason)`` of the first GPU that passes ``selftest``, else
    ``(None, reason)``. ``gpus`` holds ``(tf device name, description)`` pairs."""
    if not gpus:
        return None, "no GPU is visible to TensorFlow"
    failures = []
    for name, description in gpus:
        label = name.lstrip("/")
        try:
            result = selftest(name)
        except Exception as exc:  # a crashing self-test disqualifies the GPU, with the reason
            failures.append(f"{label} failed the numerics self-test: {type(exc).__name__}: {exc}")
            continue
        if result.get("ok"):
            return name, (
                f"{label} ({description}) passed the numerics self-test (max abs diff "
                f"{result.get('max_abs_diff', float('nan')):.3g} <= tolerance "
                f"{result.get('tolerance', float('nan')):.3g})"
            )
        failures.append(
            f"{label} failed the numerics self-test: {result.get('detail') or 'no detail given'}"
        )
    return None, "; ".join(failures)


def _gpu_status() -> tuple[str | None, str]:
    global _GPU_STATUS
    with _DEVICE_LOCK:
        if _GPU_STATUS is None:
            tf = _tf()
            gpus = []
            for i, device in enumerate(tf.config.list_physical_devices("GPU")):
                try:
                    details = tf.config.experimental.get_device_details(device)
                except Exception:  # details are a nicety; the device is still usable
                    details = {}
                gpus.append((f"/GPU:{i}", str(details.get("device_name") or device.name)))
            selftest = None
            if gpus:
                from m1vision.doctor import tensorflow_selftest as selftest
            _GPU_STATUS = _assess_gpu(gpus, selftest)
        return _GPU_STATUS


def _choose(prefer: str, gpu: str | None, reason: str) -> DeviceChoice:
    if prefer == "cpu":
        return DeviceChoice("/CPU:0", "cpu", "the CPU was asked for (prefer='cpu')")
    if gpu is not None:
        return DeviceChoice(gpu, "gpu", reason)
    if prefer == "gpu":
        raise DeviceUnavailableError(f"prefer='gpu' but {reason}. {_GPU_FIX}")
    return DeviceChoice("/CPU:0", "cpu", reason)


def select_device(prefer: str = "auto") -> DeviceChoice:
    """Choose the device to run inference on, once per process.

    A GPU (Metal on Apple Silicon, CUDA on Linux) is chosen only if TensorFlow sees it *and*
    it passes :func:`m1vision.doctor.tensorflow_selftest` (a GPU plugin that computes wrong
    numbers is worse than a slow CPU). The self-test runs once per process; its outcome is
    cached.

    Parameters
    ----------
    prefer : {"auto", "gpu", "cpu"}
        ``"auto"``: a usable GPU, else the CPU. ``"gpu"``: a usable GPU or an error.
        ``"cpu"``: the CPU.

    Returns
    -------
    DeviceChoice
        ``name`` for ``tf.device``, ``kind`` ("gpu" or "cpu") and the ``reason`` in words.

    Raises
    ------
    DeviceUnavailableError
        ``prefer="gpu"`` with no usable GPU; the message says why and how to fix it.

    Examples
    --------
    >>> from m1vision.inference import select_device
    >>> choice = select_device("cpu")
    >>> choice.name, choice.kind
    ('/CPU:0', 'cpu')
    """
    check_choice(prefer, name="prefer", choices=("auto", "gpu", "cpu"))
    if prefer == "cpu":
        return _choose("cpu", None, "")
    return _choose(prefer, *_gpu_status())


# ---------------------------------------------------------------------------------------------
# model loading
# ---------------------------------------------------------------------------------------------


class SavedModelClassifier:
    """A SavedModel's serving signature as a callable model (see :func:`load_model`).

    Attributes
    ----------
    path : str
        The folder it was loaded from.
    input_shape, output_shape : tuple
        ``(None, H, W, C)`` and ``(None, classes)`` (``None`` where the signature leaves a
        dimension open).
    input_dtype : str
        E.g. ``"float32"``.
    output_kind : {"probabilities", "logits", None}
        From the graph: the op computing the output (``Softmax``/``Sigmoid`` or a linear one);
        ``None`` if it cannot be told.
    """

    def __init__(self, loaded, signature, path):
        self._loaded = loaded  # keeps the variables alive
        self._signature = signature
        self.path = str(path)
        _, kwargs = signature.structured_input_signature
        if len(kwargs) != 1:
            raise ModelLoadError(
                f"SavedModel {self.path!r} has {len(kwargs)} inputs ({', '.join(kwargs)}); "
                "only single-input image models are supported."
            )
        self.input_name, spec = next(iter(kwargs.items()))
        outputs = signature.structured_outputs
        if not isinstance(outputs, dict) or len(outputs) != 1:
            raise ModelLoadError(
                f"SavedModel {self.path!r} has {len(outputs)} outputs; only single-output "
                "classifiers are supported."
            )
        self.output_name, out_spec = next(iter(outputs.items()))
        self.input_shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else None
        self.input_dtype = spec.dtype.name
        self.output_shape = (
            tuple(out_spec.shape.as_list()) if out_spec.shape.rank is not None else None
        )
        self.output_kind = _graph_output_kind(signature)

    def __call__(self, x, training=False):
        """Run the signature on a batch ``x`` and return the output tensor."""
        return self._signature(**{self.input_name: x})[self.output_name]

    def predict_on_batch(self, x) -> np.ndarray:
        """Run one batch eagerly and return a NumPy array (as ``keras.Model.predict_on_batch``)."""
        tf = _tf()
        return self(tf.convert_to_tensor(x, dtype=self.input_dtype)).numpy()

    def __repr__(self) -> str:
        return (
            f"SavedModelClassifier({Path(self.path).name!r}, input_shape={self.input_shape}, "
            f"input_dtype={self.input_dtype!r}, output_shape={self.output_shape})"
        )


_PROBABILITY_OPS = {"Softmax", "Sigmoid"}
_LINEAR_OPS = {"BiasAdd", "MatMul", "BatchMatMulV2", "Add", "AddV2", "Einsum"}
_PASS_THROUGH_OPS = {"Identity", "IdentityN"}
_CALL_OPS = {"StatefulPartitionedCall", "PartitionedCall"}


def _graph_output_kind(signature) -> str | None:
    """Follow the signature's output back through Identity and function calls to the op that
    computes it: Softmax/Sigmoid -> "probabilities", a linear op -> "logits", else None."""
    try:
        graph_def = signature.graph.as_graph_def()
        functions = {f.signature.name: f for f in graph_def.library.function}
        nodes = {n.name: n for n in graph_def.node}
        tensor = signature.outputs[0].name  # "Identity:0"
        name, _, index = tensor.partition(":")
        index = int(index or 0)
        for _ in range(64):
            node = nodes[name]
            if node.op in _PROBABILITY_OPS:
                return "probabilities"
            if node.op in _LINEAR_OPS:
                return "logits"
            if node.op in _PASS_THROUGH_OPS:
                ref = next(i for i in node.input if not i.startswith("^"))
                name, _, idx = ref.partition(":")
                index = int(idx.rsplit(":", 1)[-1]) if idx else 0
                continue
            if node.op in _CALL_OPS:
                func = functions[node.attr["f"].func.name]
                ret = func.ret[func.signature.output_arg[index].name]  # "Identity:output:0"
                nodes = {n.name: n for n in func.node_def}
                name = ret.split(":")[0]
                index = int(ret.rsplit(":", 1)[-1]) if ret.count(":") == 2 else 0
                continue
            return None
    except (KeyError, IndexError, StopIteration, ValueError, AttributeError):
        return None
    return None


def _sniff(path: Path) -> str:
    """Say in words what a file that is no model looks like."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty (0 bytes)"
    if head.startswith(b"\x89PNG"):
        return "is a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "is a JPEG image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "is a TIFF image"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "is a DICOM file"
    if head.startswith(b"\x89HDF"):
        return "is an HDF5 file (a Keras 2 .h5 model? load it in Keras and save it as .keras)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"starts with the bytes {head[:8]!r}"
    first = text.strip().splitlines()[0][:40] if text.strip() else ""
    return f"is a text file (starting {first!r})"


def _load_keras_file(p: Path, *, safe_mode: bool, custom_objects):
    if p.suffix.lower() != ".keras":
        raise ModelLoadError(
            f"{str(p)!r} is not a model path m1vision loads: expected a .keras file or a "
            f"SavedModel folder, got a {p.suffix or 'suffix-less'} file that {_sniff(p)}. "
            "Save Keras models with model.save('name.keras') or model.export('folder')."
        )
    if not zipfile.is_zipfile(p):
        raise ModelLoadError(
            f"{str(p)!r} is not a Keras model: a .keras file is a zip archive, but this file "
            f"{_sniff(p)}. Save a model with model.save('name.keras')."
        )
    with zipfile.ZipFile(p) as archive:
        if "config.json" not in archive.namelist():
            raise ModelLoadError(
                f"{str(p)!r} is a zip archive without config.json, not a Keras model. "
                "Save a model with model.save('name.keras')."
            )
    keras = _keras()
    try:
        return keras.saving.load_model(
            p, custom_objects=custom_objects, compile=False, safe_mode=safe_mode
        )
    except Exception as exc:
        text = str(exc)
        if "Lambda" in text and "safe_mode" in text:
            raise ModelLoadError(
                f"{str(p)!r} holds a Lambda layer with Python code, which safe mode refuses: "
                "loading it would run code stored in the file. If you trust the file, load it "
                "deliberately with load_model(path, safe_mode=False); better, replace the Lambda "
                "with a custom layer class registered with "
                "@keras.saving.register_keras_serializable()."
            ) from exc
        missing = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
        if missing:
            name = missing.group(1)
            raise ModelLoadError(
                f"{str(p)!r} uses the custom class or function {name!r}, which is not "
                f"registered, so safe loading cannot rebuild it. Import the code that defines "
                f"it (decorated with @keras.saving.register_keras_serializable()) before "
                f"loading, or pass load_model(path, custom_objects={{{name!r}: {name}}}). "
                "Only do this for files you trust."
            ) from exc
        raise ModelLoadError(
            f"cannot load {str(p)!r} as a Keras model: {type(exc).__name__}: {text.strip()}"
        ) from exc


def _load_saved_model(p: Path) -> SavedModelClassifier:
    if not (p / "saved_model.pb").is_file() and not (p / "saved_model.pbtxt").is_file():
        entries = sorted(e.name for e in p.iterdir())
        found = (
            "it is empty"
            if not entries
            else "it holds " + ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        )
        raise ModelLoadError(
            f"{str(p)!r} is a folder but no SavedModel: there is no saved_model.pb ({found}). "
            "Export a Keras model with model.export('folder'), or pass a .keras file."
        )
    tf = _tf()
    try:
        loaded = tf.saved_model.load(str(p))
    except Exception as exc:
        raise ModelLoadError(
            f"cannot load the SavedModel {str(p)!r}: {type(exc).__name__}: {str(exc).strip()}"
        ) from exc
    signatures = getattr(loaded, "signatures", {}) or {}
    if "serving_default" in signatures:
        signature = signatures["serving_default"]
    elif len(signatures) == 1:
        signature = next(iter(signatures.values()))
    else:
        listed = ", ".join(signatures) or "none"
        raise ModelLoadError(
            f"SavedModel {str(p)!r} has no 'serving_default' signature (signatures: {listed}). "
            "Export the Keras model with model.export('folder'), which writes one."
        )
    return SavedModelClassifier(loaded, signature, p)


def load_model(path, *, safe_mode: bool = True, custom_objects: dict | None = None):
    """Load a Keras model file (``.keras``) or a SavedModel folder for inference.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` file (``model.save("m.keras")``), loaded with
        ``keras.saving.load_model(..., safe_mode=safe_mode, compile=False)``; or a SavedModel
        folder (``model.export("folder")``), loaded with ``tf.saved_model.load`` and returned
        as a :class:`SavedModelClassifier`.
    safe_mode : bool
        Keep ``True`` (default): a ``.keras`` file with a ``Lambda`` layer (arbitrary Python
        code) is refused. Pass ``False`` only for files you trust.
    custom_objects : dict, optional
        Custom layer classes or functions by name, for models that use unregistered ones.

    Returns
    -------
    keras.Model or SavedModelClassifier

    Raises
    ------
    ModelLoadError
        The path is missing, is no model (an image, a text file, an empty folder...), or safe
        mode refuses it; the message says what was found and how to fix it.

    Examples
    --------
    >>> import tempfile, pathlib, keras
    >>> from m1vision.inference import load_model
    >>> inputs = keras.Input((8, 8, 1))
    >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.keras"
    >>> model.save(path)
    >>> load_model(path).input_shape
    (None, 8, 8, 1)
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path must be a str or path-like naming a .keras file or a SavedModel folder, "
            f"got {type(path).__name__}."
        )
    if not isinstance(safe_mode, bool):
        raise TypeError(f"safe_mode must be True or False, got {safe_mode!r}.")
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(
            f"model path {str(p)!r} does not exist; expected a .keras file or a SavedModel "
            "folder. Check the path (relative paths start from the current folder "
            f"{Path.cwd().name!r})."
        )
    if p.is_dir():
        return _load_saved_model(p)
    return _load_keras_file(p, safe_mode=safe_mode, custom_objects=custom_objects)


def model_input_spec(model) -> tuple[tuple, str]:
    """Return ``(shape, dtype)`` of a model's single input, e.g. ``((None, 96, 96, 3), "float32")``.

    Works for Keras models and :class:`SavedModelClassifier`. ``None`` marks open dimensions
    (always the batch).

    Raises
    ------
    TypeError
        ``model`` is no model (e.g. a path: load it with :func:`load_model` first).
    InvalidParameterError
        The model has no defined input (a subclassed model never called) or several inputs.

    Examples
    --------
    >>> import keras
    >>> from m1vision.inference import model_input_spec
    >>> inputs = keras.Input((32, 32, 3))
    >>> model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    >>> model_input_spec(model)
    ((None, 32, 32, 3), 'float32')
    """
    if isinstance(model, SavedModelClassifier):
        if model.input_shape is None:
            raise InvalidParameterError(
                f"SavedModel {model.path!r} does not define the rank of its input; "
                "export it from a Keras model with a fixed input shape."
            )
        return model.input_shape, model.input_dtype
    if isinstance(model, str | os.PathLike) or not callable(model):
        raise TypeError(
            f"model must be a Keras model or a loaded SavedModel, got {type(model).__name__}; "
            "load a file with m1vision.inference.load_model(path) first."
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise InvalidParameterError(
            f"model {getattr(model, 'name', type(model).__name__)!r} has no defined input "
            "(a subclassed model never built); build it with a keras.Input(shape=(H, W, C)) "
            "(a functional model) or call it once on a batch first."
        )
    if len(inputs) != 1:
        raise InvalidParameterError(
            f"model {model.name!r} has {len(inputs)} inputs; only single-input image models "
            "are supported."
        )
    tensor = inputs[0]
    dtype = tensor.dtype if isinstance(tensor.dtype, str) else tensor.dtype.name
    return tuple(tensor.shape), dtype


def _keras_output_kind(model) -> str | None:
    """ "probabilities" if the last layer ends in softmax/sigmoid, "logits" if linear."""
    keras = _keras()
    layer = model
    for _ in range(16):  # descend into nested models (e.g. a backbone as the last layer)
        layers = getattr(layer, "layers", None)
        if not layers:
            break
        layer = layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return "probabilities"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name in ("softmax", "sigmoid"):
        return "probabilities"
    if name == "linear":
        return "logits"
    return None


def _output_spec(model) -> tuple[tuple | None, str | None]:
    if isinstance(model, SavedModelClassifier):
        return model.output_shape, model.output_kind
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        raise InvalidParameterError(
            f"model {model.name!r} has {len(outputs)} outputs; Predictor needs a classifier "
            "with one output of shape (N, classes)."
        )
    return tuple(outputs[0].shape), _keras_output_kind(model)


# ---------------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------------


@dataclass
class Predictions:
    """What :meth:`Predictor.predict` returns.

    Attributes
    ----------
    probabilities : ndarray of float32, shape (N, C)
        One row per input (softmax applied if the model outputs logits).
    top_k : list of list of (label, score)
        The ``top_k`` best classes of each input, best first; ``label`` is the class name
        from ``labels`` or else the class index (int).
    inputs : list
        The inputs as given (paths as ``str``, arrays and MedicalImages as passed).
    labels : list of str or None
    """

    probabilities: np.ndarray
    top_k: list
    inputs: list
    labels: list | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def classes(self) -> np.ndarray:
        """The index of the best class of each input, shape (N,)."""
        return np.argmax(self.probabilities, axis=1) if len(self) else np.zeros(0, np.int64)

    def to_records(self) -> list[dict]:
        """One JSON-safe dict per input (``input`` is the path, or ``None`` for an array)."""
        records = []
        for item, row, top in zip(self.inputs, self.probabilities, self.top_k, strict=True):
            records.append(
                {
                    "input": _describe(item),
                    "top_k": [[label, score] for label, score in top],
                    "probabilities": [float(v) for v in row],
                }
            )
        return records

    def __repr__(self) -> str:
        return f"Predictions({len(self)} inputs, {self.probabilities.shape[1]} classes)"


def _describe(item) -> str | None:
    if isinstance(item, str | os.PathLike):
        return str(item)
    source = getattr(item, "source", None)
    return source or None


def _label(item) -> str:
    described = _describe(item)
    if described:
        return described
    shape = getattr(item, "shape", None)
    return f"an array of shape {shape}" if shape is not None else type(item).__name__


@dataclass
class PredictionReport:
    """What :meth:`Predictor.predict_folder` returns (this run only).

    Attributes
    ----------
    path : pathlib.Path
        The JSON Lines file (read it with :func:`read_predictions`).
    ok, skipped : list of str
        Keys (input paths relative to the folder given) predicted now / recorded before.
    failed : list of (str, str)
        Key and error of the inputs that could not be read or preprocessed.
    seconds : float
    device : str
    """

    path: Path
    ok: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    device: str = ""

    def to_dict(self) -> dict:
        """A JSON-safe summary."""
        return {
            "path": str(self.path),
            "ok": list(self.ok),
            "failed": [{"key": k, "error": e} for k, e in self.failed],
            "skipped": list(self.skipped),
            "seconds": round(self.seconds, 3),
            "device": self.device,
        }

    def __repr__(self) -> str:
        return (
            f"PredictionReport({self.path.name!r}: {len(self.ok)} ok, {len(self.failed)} "
            f"failed, {len(self.skipped)} skipped, {self.seconds:.1f} s on {self.device})"
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class Predictor:
    """Batched, overlapped prediction with a Keras image classifier.

    Parameters
    ----------
    model : keras.Model, SavedModelClassifier, or path
        A single-input image classifier with output ``(N, classes)``; a path is loaded with
        :func:`load_model` (safe mode).
    preprocess : callable or m1vision.pipeline.Pipeline, optional
        Applied to each image (an ndarray) after reading, e.g. a Pipeline with ``window`` and
        ``normalize``. Without it, pixel values reach the model as they are (cast to its
        dtype), as with ``model.predict``.
    batch_size : int
        Images per batch.
    device : {"auto", "gpu", "cpu"} or DeviceChoice
        See :func:`select_device`.
    labels : sequence of str, optional
        Class names, one per output class.
    top_k : int
        How many best classes :class:`Predictions` lists per input.
    from_logits : bool, optional
        Whether the model outputs logits (softmax is then applied). ``None`` (default) decides
        from the model: a final softmax/sigmoid means probabilities, a linear final layer
        logits; if the model does not tell, from the first batch (logits if any value lies
        outside [0, 1]). ``predictor.from_logits`` shows the decision.
    workers : int, optional
        Threads reading and preprocessing (default: the number of CPU cores, at most 4).
    prefetch : int
        Batches prepared while one is being computed (default 2); 0 prepares and computes
        in turn, without overlap.

    Notes
    -----
    After ``preprocess``, each image is resized to the model's input size if it differs
    (plain ``cv2.resize``, aspect ratio not kept; add a letterboxing ``resize`` step to the
    pipeline to keep it), then gray and color are adapted to the model's channels (gray is
    repeated to 3 channels, BGR becomes gray for a 1-channel model, alpha is dropped). Color
    stays BGR (m1vision's order); add a step if a model was trained on RGB.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from m1vision.inference import Predictor
    >>> inputs = keras.Input((16, 16, 3))
    >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
    >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    >>> predictor = Predictor(model, labels=["dark", "bright"], device="cpu")
    >>> images = [np.zeros((20, 20), np.uint8), np.full((16, 16, 3), 255, np.uint8)]
    >>> result = predictor.predict(images)
    >>> result.probabilities.shape, result.probabilities.dtype
    ((2, 2), dtype('float32'))
    >>> [len(top) for top in result.top_k]
    [1, 1]
    """

    def __init__(
        self,
        model,
        *,
        preprocess=None,
        batch_size: int = 32,
        device="auto",
        labels=None,
        top_k: int = 1,
        from_logits: bool | None = None,
        workers: int | None = None,
        prefetch: int = 2,
    ):
        #: The file or folder the model was loaded from (None for a model object): what an
        #: experiment record hashes and reloads.
        self.model_path = None
        if isinstance(model, str | os.PathLike):
            self.model_path = Path(model)
            model = load_model(model)
        elif isinstance(model, SavedModelClassifier):
            self.model_path = Path(model.path)
        shape, dtype = model_input_spec(model)
        if len(shape) != 4:
            raise InvalidParameterError(
                f"Predictor needs an image model with input (batch, H, W, C), got input shape "
                f"{shape}."
            )
        out_shape, kind = _output_spec(model)
        if out_shape is not None and len(out_shape) != 2:
            raise InvalidParameterError(
                f"Predictor needs a classifier with output (batch, classes), got output shape "
                f"{out_shape}; for other outputs call the model directly."
            )
        if preprocess is not None and not callable(preprocess):
            raise TypeError(
                f"preprocess must be a callable (image -> image) or a m1vision.pipeline."
                f"Pipeline, got {type(preprocess).__name__}."
            )
        self.model = model
        self.preprocess = preprocess
        self.batch_size = check_int(batch_size, name="batch_size", minimum=1)
        self.top_k = check_int(top_k, name="top_k", minimum=1)
        self.prefetch = check_int(prefetch, name="prefetch", minimum=0)
        if workers is None:
            workers = max(1, min(4, os.cpu_count() or 1))
        self.workers = check_int(workers, name="workers", minimum=1)
        if from_logits is not None and not isinstance(from_logits, bool):
            raise TypeError(f"from_logits must be True, False or None, got {from_logits!r}.")
        self.input_shape = shape
        self.input_dtype = dtype
        self.num_classes = out_shape[1] if out_shape is not None else None
        if labels is not None:
            if isinstance(labels, str) or not all(isinstance(v, str) for v in labels):
                raise TypeError(f"labels must be a sequence of class names (str), got {labels!r}.")
            labels = list(labels)
            if self.num_classes is not None and len(labels) != self.num_classes:
                raise InvalidParameterError(
                    f"labels has {len(labels)} names but the model has {self.num_classes} "
                    "output classes; give one name per class, in the model's order."
                )
        self.labels = labels
        if self.num_classes is not None and self.top_k > self.num_classes:
            raise InvalidParameterError(
                f"top_k must be <= the number of classes ({self.num_classes}), got {top_k}."
            )
        self.from_logits = from_logits if from_logits is not None else _KIND.get(kind)
        if isinstance(device, DeviceChoice):
            self.device = device
        else:
            if not isinstance(device, str):
                raise TypeError(
                    f"device must be 'auto', 'gpu', 'cpu' or a DeviceChoice, got {device!r}."
                )
            self.device = select_device(device)
        self._lock = threading.Lock()
        self._fn = self._compile()

    def _compile(self):
        tf = _tf()
        spec = tf.TensorSpec([None, *self.input_shape[1:]], tf.as_dtype(self.input_dtype))
        model = self.model

        def infer(x):
            return model(x, training=False)

        return tf.function(infer, input_signature=[spec], autograph=False)

    @property
    def tracing_count(self) -> int:
        """How many times the compiled function was traced (1 after the first batch)."""
        return int(self._fn.experimental_get_tracing_count())

    def __repr__(self) -> str:
        name = getattr(self.model, "name", None) or repr(self.model)
        return (
            f"Predictor(model={name!r}, input={self.input_shape}, batch_size={self.batch_size}, "
            f"device={self.device.name!r}, top_k={self.top_k})"
        )

    # -- per image -----------------------------------------------------------------------------

    def _load(self, item) -> np.ndarray:
        if isinstance(item, str | os.PathLike):
            from m1vision.io import read_any

            image = read_any(item)
            if image.is_volume:
                raise InvalidImageError(
                    f"{str(item)!r} is a volume of shape {image.shape}; Predictor classifies "
                    "2-D images. Pass its slices: list(read_any(path).pixels)."
                )
            return image.pixels
        pixels = getattr(item, "pixels", None)
        if isinstance(pixels, np.ndarray):  # a MedicalImage
            if getattr(item, "is_volume", False):
                raise InvalidImageError(
                    f"the MedicalImage {_describe(item) or ''!r} is a volume of shape "
                    f"{pixels.shape}; pass its slices: list(image.pixels)."
                )
            return pixels
        if isinstance(item, np.ndarray):
            if item.ndim == 3 and item.shape[2] not in (1, 3, 4):
                raise InvalidImageError(
                    f"an input of shape {item.shape} looks like a (Z, H, W) volume; Predictor "
                    "classifies 2-D images: pass its slices (list(volume))."
                )
            return item
        raise TypeError(
            f"each input must be a path, a numpy.ndarray or a MedicalImage, got "
            f"{type(item).__name__}."
        )

    def prepare(self, item) -> np.ndarray:
        """Read (if a path), preprocess, resize and adapt one input to the model's
        ``(H, W, C)`` and dtype; what :meth:`predict` feeds the model.

        Examples
        --------
        >>> import numpy as np, keras
        >>> from m1vision.inference import Predictor
        >>> inputs = keras.Input((8, 8, 3))
        >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2)(x))
        >>> Predictor(model, device="cpu").prepare(np.zeros((16, 16), np.uint8)).shape
        (8, 8, 3)
        """
        image = self._load(item)
        if self.preprocess is not None:
            image = self.preprocess(image)
            if not isinstance(image, np.ndarray):
                raise TypeError(
                    f"preprocess must return a numpy.ndarray, got {type(image).__name__}."
                )
        if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
            raise InvalidImageError(
                f"input of shape {image.shape} looks like a (Z, H, W) volume; Predictor "
                "classifies 2-D images: pass its slices (list(volume))."
            )
        image = check_image(image, name="input image")
        _, height, width, channels = self.input_shape
        if height is not None and width is not None and image.shape[:2] != (height, width):
            from m1vision.preprocess import resize

            image = resize(image, size=(height, width), keep_aspect=False)
        if image.ndim == 3 and image.shape[2] == 4 and channels != 4:
            image = image[:, :, :3]
        if channels == 3 and image.ndim == 2:
            if image.dtype in (np.uint8, np.uint16, np.float32):
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # ~8x faster than np.repeat
            else:
                image = np.repeat(image[:, :, None], 3, axis=2)
        elif channels == 1 and image.ndim == 3:
            from m1vision.preprocess import to_gray

            image = to_gray(image)
        if image.ndim == 2:
            image = image[:, :, None]
        if channels is not None and image.shape[2] != channels:
            raise InvalidImageError(
                f"input has {image.shape[2]} channels but the model expects {channels}."
            )
        return np.ascontiguousarray(image, dtype=self.input_dtype)

    # -- batches -------------------------------------------------------------------------------

    def _batches(self, items, *, record_errors: bool):
        """Yield ``(indices, batch or None, failures)`` with items prepared in threads, up to
        ``prefetch`` batches ahead of the consumer."""
        n = len(items)
        bs = self.batch_size
        pending = collections.deque()
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="m1vision-prepare")
        next_item = 0

        def fill(upto: int):
            nonlocal next_item
            while next_item < min(n, upto):
                pending.append((next_item, pool.submit(self.prepare, items[next_item])))
                next_item += 1

        try:
            for start in range(0, n, bs):
                fill(start + bs)  # this batch (already submitted unless prefetch == 0)
                indices, arrays, failures = [], [], []
                for _ in range(min(bs, n - start)):
                    i, future = pending.popleft()
                    try:
                        arrays.append(future.result())
                        indices.append(i)
                    except Exception as exc:
                        if not record_errors:
                            exc.add_note(f"while preparing input {i}: {_label(items[i])}")
                            raise
                        failures.append((i, exc))
                # the next `prefetch` batches are prepared while the consumer runs this one
                fill(start + bs + bs * self.prefetch)
                if arrays and len({a.shape for a in arrays}) > 1:
                    shapes = sorted({a.shape for a in arrays})
                    raise InvalidImageError(
                        f"inputs of different shapes {shapes} in one batch: the model's input "
                        "size is open, so add a resize step to preprocess."
                    )
                yield indices, (np.stack(arrays) if arrays else None), failures
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        tf = _tf()
        with tf.device(self.device.name):
            out = self._fn(tf.convert_to_tensor(batch)).numpy()
        if out.ndim != 2:
            raise InvalidParameterError(
                f"the model returned shape {out.shape}; Predictor needs (batch, classes)."
            )
        with self._lock:
            if self.from_logits is None:  # the model did not say; decide once, from data
                self.from_logits = bool((out < 0).any() or (out > 1).any())
        return _softmax(out) if self.from_logits else out.astype(np.float32, copy=False)

    def _top_k(self, probabilities: np.ndarray) -> list:
        k = min(self.top_k, probabilities.shape[1])
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        tops = []
        for row, idx in zip(probabilities, order, strict=True):
            tops.append(
                [(self.labels[j] if self.labels else int(j), float(row[j])) for j in idx.tolist()]
            )
        return tops

    @staticmethod
    def _as_items(images) -> list:
        if isinstance(images, str | os.PathLike):
            if Path(images).is_dir():
                return [source for source, _ in _collect(images)]
            return [images]
        if isinstance(images, np.ndarray):
            return list(images) if images.ndim == 4 else [images]
        if hasattr(images, "pixels"):
            return [images]
        try:
            return list(images)
        except TypeError:
            raise TypeError(
                f"images must be a path, an ndarray, a MedicalImage or a list of them, got "
                f"{type(images).__name__}."
            ) from None

    def predict(self, images, *, progress: bool | None = None) -> Predictions:
        """Predict the classes of images, arrays or files.

        Parameters
        ----------
        images : path, ndarray, MedicalImage, or a sequence of them
            A folder path means the image files in it (recursively); a 4-D array
            ``(N, H, W, C)`` means N images; a 2-D or 3-D array is one image.
        progress : bool, optional
            Show a progress bar; ``None`` (default): only for more than 4 batches.

        Returns
        -------
        Predictions

        Raises
        ------
        ImageReadError, InvalidImageError, TypeError
            An input cannot be read or used (the note names which); use
            :meth:`predict_folder` to record bad files and go on.
        """
        items = self._as_items(images)
        num_classes = self.num_classes or 0
        if not items:
            return Predictions(np.zeros((0, num_classes), np.float32), [], [], self.labels)
        rows = []
        show = len(items) > 4 * self.batch_size if progress is None else bool(progress)
        with _progress(len(items), show, "predict") as bar:
            for _, batch, _ in self._batches(items, record_errors=False):
                rows.append(self._run(batch))
                bar.update(len(batch))
        probabilities = np.concatenate(rows, axis=0)
        inputs = [str(i) if isinstance(i, os.PathLike) else i for i in items]
        return Predictions(probabilities, self._top_k(probabilities), inputs, self.labels)

    # -- folders -------------------------------------------------------------------------------

    def _header(self) -> dict:
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "model": str(getattr(self.model, "name", None) or getattr(self.model, "path", "")),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "labels": self.labels,
        }

    def predict_folder(
        self, inputs, out_path, *, overwrite: bool = False, progress: bool = True
    ) -> PredictionReport:
        """Predict every image file under ``inputs`` into a resumable JSON Lines file.

        Parameters
        ----------
        inputs : path or list of paths
            Image files and/or folders (scanned recursively for the suffixes of
            :data:`m1vision.io.IMAGE_EXTENSIONS`).
        out_path : path
            The JSON Lines file (``.jsonl``): a header line, then per input
            ``{"key", "input", "status": "ok", "top_k", "probabilities"}`` or
            ``{"key", "input", "status": "failed", "error"}``. ``key`` is the input's path
            relative to the folder given.
        overwrite : bool
            ``False`` (default): an existing file written for the same input shape, number of
            classes and labels (its header line says) is resumed: inputs recorded ``"ok"`` are
            skipped, the others predicted and appended. Any other existing file raises
            :class:`~m1vision.errors.OutputExistsError` and is left as it is. ``True``: start
            a new file (atomically replacing the old one).
        progress : bool
            Show a progress bar.

        Returns
        -------
        PredictionReport
            This run's ``ok``, ``failed`` and ``skipped`` keys. A file that cannot be read or
            preprocessed is recorded as failed and the run goes on.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np, keras
        >>> from m1vision.inference import Predictor, read_predictions
        >>> from m1vision.io import write_image
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = write_image(folder / "a.png", np.zeros((8, 8), np.uint8))
        >>> _ = (folder / "b.png").write_bytes(b"not a png")
        >>> inputs = keras.Input((8, 8, 1))
        >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        >>> predictor = Predictor(model, device="cpu")
        >>> report = predictor.predict_folder(folder, folder / "out.jsonl", progress=False)
        >>> report.ok, [key for key, _ in report.failed]
        (['a.png'], ['b.png'])
        >>> predictor.predict_folder(folder, folder / "out.jsonl", progress=False).skipped
        ['a.png']
        """
        start = time.perf_counter()
        out = Path(out_path)
        sources = _collect(inputs)
        header = self._header()
        done: set[str] = set()
        if out.exists() and not overwrite:
            existing_header, records = _read_jsonl(out, repair=True)
            if not _same_model(existing_header, header):
                raise OutputExistsError(
                    f"{str(out)!r} holds predictions of another model or labels "
                    f"(model {existing_header.get('model')!r}, "
                    f"{existing_header.get('num_classes')} classes, labels "
                    f"{existing_header.get('labels')}); pass overwrite=True to start a new "
                    "file, or choose another out_path."
                )
            done = {r["key"] for r in records if r.get("status") == "ok"}
        else:
            atomic_write_text(out, json.dumps(header) + "\n", overwrite=overwrite)
        report = PredictionReport(path=out, device=self.device.name)
        todo = []
        for source, key in sources:
            if key in done:
                report.skipped.append(key)
            else:
                todo.append((source, key))
        items = [source for source, _ in todo]
        with (
            open(out, "a", encoding="utf-8") as fh,
            _progress(len(items), progress, out.name) as bar,
        ):
            for indices, batch, failures in self._batches(items, record_errors=True):
                lines = []
                if batch is not None:
                    probabilities = self._run(batch)
                    for i, row, top in zip(
                        indices, probabilities, self._top_k(probabilities), strict=True
                    ):
                        source, key = todo[i]
                        lines.append(
                            {
                                "key": key,
                                "input": str(source),
                                "status": "ok",
                                "top_k": [[label, score] for label, score in top],
                                "probabilities": [float(v) for v in row],
                            }
                        )
                        report.ok.append(key)
                for i, exc in failures:
                    source, key = todo[i]
                    error = f"{type(exc).__name__}: {exc}"
                    lines.append(
                        {"key": key, "input": str(source), "status": "failed", "error": error}
                    )
                    report.failed.append((key, error))
                lines.sort(key=lambda r: r["key"])
                fh.write("".join(json.dumps(r) + "\n" for r in lines))
                fh.flush()
                os.fsync(fh.fileno())
                bar.update(len(indices) + len(failures))
        report.seconds = time.perf_counter() - start
        return report


_KIND = {"probabilities": False, "logits": True, None: None}


def _same_model(old: dict, new: dict) -> bool:
    keys = ("format", "input_shape", "num_classes", "labels")
    return all(old.get(k) == new.get(k) for k in keys)


class _NoBar:
    def update(self, n):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(total: int, show: bool, desc: str):
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img")


def _collect(inputs) -> list[tuple[Path, str]]:
    """Return ``(source, key)`` pairs: ``key`` is the path relative to the folder given (or
    the file name), with ``/`` separators."""
    from m1vision.pipeline import collect_inputs

    pairs = []
    for source, rel in collect_inputs(inputs):
        source, rel = Path(source), PurePath(rel)
        # the stem drops the image extension ("sub/a" for sub/a.nii.gz): put it back
        extension = source.name[len(rel.name) :] if source.name.startswith(rel.name) else ""
        pairs.append((source, rel.as_posix() + extension))
    return pairs


def _read_jsonl(path: Path, *, repair: bool) -> tuple[dict, list[dict]]:
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data) and repair:  # a partial last line from an interrupted run
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    lines = data[:end].decode("utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise OutputExistsError(
                f"{str(path)!r} line {number} is not valid JSON: the file is damaged or no "
                "m1vision predictions file; pass overwrite=True to start a new one, or "
                "choose another out_path."
            ) from None
    if not records or records[0].get("format") != _FORMAT:
        raise OutputExistsError(
            f"{str(path)!r} exists and is no m1vision predictions file (no header line); "
            "pass overwrite=True to replace it, or choose another out_path."
        )
    return records[0], records[1:]


def read_predictions(path) -> list[dict]:
    """Return the records of a :meth:`Predictor.predict_folder` file, the latest per key.

    A partial last line (an interrupted run) is ignored; the file is not changed.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> from m1vision.inference import read_predictions
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "p.jsonl"
    >>> header = {"format": "m1vision-predictions", "version": 1}
    >>> rows = [{"key": "a.png", "status": "failed", "error": "x"},
    ...         {"key": "a.png", "status": "ok", "top_k": [[0, 1.0]]}]
    >>> _ = p.write_text("".join(json.dumps(r) + "\\n" for r in [header, *rows]) + '{"key')
    >>> [r["status"] for r in read_predictions(p)]
    ['ok']
    """
    _, records = _read_jsonl(Path(path), repair=False)
    latest = {}
    for record in records:
        latest[record["key"]] = record
    return list(latest.values())
