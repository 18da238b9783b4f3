"""Loading models for inference: .keras files on any backend, SavedModel folders on TensorFlow."""

from __future__ import annotations

import base64
import json
import marshal
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from m1vision._checks import check_bool
from m1vision._hashing import path_sha256, snapshot
from m1vision.errors import InvalidParameterError, InvalidTypeError, ModelLoadError
from m1vision.inference import _backend


def _tf():
    """Import TensorFlow on first use (2-4 s), not at ``import m1vision``."""
    import tensorflow as tf

    return tf


def _keras():
    import keras

    return keras


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
    sha256 : str or None
        The SHA-256 of the folder's files as they were loaded (:func:`load_model`), by the
        one folder rule of :mod:`m1vision._hashing`.
    output_kind : {"probabilities", "logits", None}
        From the graph: the op computing the output (``Softmax``/``Sigmoid`` or a linear one);
        ``None`` if it cannot be told.
    """

    def __init__(self, loaded, signature, path):
        self._loaded = loaded  # keeps the variables alive
        self._signature = signature
        self.path = str(path)
        self.sha256: str | None = None
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
    from m1vision.io._sniff import has_dicm_marker

    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty (0 bytes)"
    if has_dicm_marker(head):  # first: a DICOM preamble may hold a TIFF header
        return "is a DICOM file"
    if head.startswith(b"\x89PNG"):
        return "is a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "is a JPEG image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "is a TIFF image"
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
        config_text = archive.read("config.json").decode("utf-8", "replace")
    keras = _keras()
    backend = _backend.backend()
    lambdas = _lambda_layers(config_text)
    if not safe_mode and backend != "tensorflow":  # a trusted file: its bytecode is read
        calling_tf = [name for name, code in lambdas if _calls_tensorflow(code)]
        if calling_tf:
            raise _lambda_error(p, backend, calling_tf, None)
    lambdas = [name for name, _ in lambdas]
    try:
        model = keras.saving.load_model(
            p, custom_objects=custom_objects, compile=False, safe_mode=safe_mode
        )
    except Exception as exc:
        text = str(exc)
        if lambdas and not safe_mode and backend != "tensorflow":
            raise _lambda_error(p, backend, lambdas, exc) from exc
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
    if lambdas and backend != "tensorflow":
        try:  # a Lambda calling tf.* builds but fails on its first real batch
            shape = [1 if d is None else d for d in model.inputs[0].shape]
            model(np.zeros(shape, dtype=model.inputs[0].dtype), training=False)
        except Exception as exc:
            raise _lambda_error(p, backend, lambdas, exc) from exc
    return model


def _lambda_layers(config_text: str) -> list[tuple[str, str]]:
    """``(name, base64 code or "")`` of the Lambda layers in a .keras file's config.json."""
    names = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                config = node.get("config") or {}
                function = config.get("function")
                code = ""
                if isinstance(function, dict):
                    code = str((function.get("config") or {}).get("code") or "")
                names.append((str(config.get("name", "?")), code))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    try:
        walk(json.loads(config_text))
    except json.JSONDecodeError:
        return []
    return names


def _calls_tensorflow(code_b64: str) -> bool:
    """Whether a Lambda's stored function (marshalled bytecode) names ``tf`` or
    ``tensorflow``; the bytes are only inspected, never run."""
    if not code_b64:
        return False
    try:
        raw = base64.b64decode(code_b64)
    except ValueError:
        return False
    try:
        code = marshal.loads(raw)
    except (ValueError, EOFError, TypeError):  # bytecode of another Python version
        return b"tensorflow" in raw
    names: set[str] = set()
    stack = [code]
    while stack:
        obj = stack.pop()
        names.update(obj.co_names)
        for const in obj.co_consts:
            if isinstance(const, str):
                names.add(const)
            elif hasattr(const, "co_names"):
                stack.append(const)
    return bool(names & {"tf", "tensorflow"})


def _lambda_error(p: Path, backend: str, lambdas: list[str], exc: BaseException | None):
    why = f": {type(exc).__name__}: {str(exc).strip()[:200]}" if exc is not None else ""
    return ModelLoadError(
        f"{str(p)!r} cannot run on the {backend} backend: its Lambda layer(s) "
        f"{', '.join(map(repr, lambdas))} call TensorFlow (tf.*) or other code written for "
        f"another backend{why}. Run it with "
        "KERAS_BACKEND=tensorflow, or replace the Lambda with keras.ops calls (or a "
        "registered custom layer) and re-save it with Keras 3 (model.save('name.keras'))."
    )


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
    backend = _backend.backend()
    if backend != "tensorflow":
        raise ModelLoadError(
            f"{str(p)!r} is a SavedModel folder, which only TensorFlow can run, but the Keras "
            f"backend is {backend!r}. Run it with KERAS_BACKEND=tensorflow, or re-save the "
            "model with Keras 3 as a .keras file (model.save('name.keras')), which every "
            "backend loads."
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
        raise InvalidTypeError(
            f"path must be a str or path-like naming a .keras file or a SavedModel folder, "
            f"got {type(path).__name__}. Fix: pass the model's path; a model already loaded "
            "goes to Predictor(model) directly."
        )
    safe_mode = check_bool(safe_mode, name="safe_mode")
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(
            f"model path {str(p)!r} does not exist; expected a .keras file or a SavedModel "
            "folder. Check the path (relative paths start from the current folder "
            f"{Path.cwd().name!r})."
        )
    return load_model_identified(p, safe_mode=safe_mode, custom_objects=custom_objects)[0]


def load_model_identified(path, *, safe_mode: bool = True, custom_objects=None):
    """:func:`load_model`, and the SHA-256 of the bytes it loaded: ``(model, sha256)``.

    The file (a ``.keras`` archive) or folder (a SavedModel) is hashed by the one rule of
    :mod:`m1vision._hashing`, then loaded; the stats of its files (size, mtime, ctime, inode)
    before hashing and after loading must be equal, so the hash is of the bytes the model
    was built from. A file replaced on disk afterwards cannot change what a loaded model is
    said to be. A SavedModel's :attr:`SavedModelClassifier.sha256` is set too.

    Raises
    ------
    ModelLoadError
        As :func:`load_model`; also when the files changed while they were being loaded (a
        copy still under way): load again once it has finished.
    """
    p = Path(path)
    if not p.exists():
        return load_model(p), None  # raises the documented error
    before = snapshot(p)
    sha = path_sha256(p)
    if p.is_dir():
        model = _load_saved_model(p)
    else:
        model = _load_keras_file(p, safe_mode=safe_mode, custom_objects=custom_objects)
    if snapshot(p) != before:
        raise ModelLoadError(
            f"the model {str(p)!r} changed on disk while it was being loaded (its files' size, "
            "time or inode differ before and after), so what was loaded cannot be named by a "
            "hash. Wait until whatever writes it has finished, then load it again."
        )
    if isinstance(model, SavedModelClassifier):
        model.sha256 = sha
    return model, sha


def identified(model) -> tuple:
    """``(model, path, sha256)`` of a model given as a path, a SavedModel or a Keras model.

    A path is loaded with :func:`load_model_identified`; a :class:`SavedModelClassifier`
    brings its folder and hash; a Keras model object has neither (``None``, ``None``): there
    is no file an experiment record could hash and reload.
    """
    if isinstance(model, str | os.PathLike):
        loaded, sha = load_model_identified(model)
        return loaded, Path(model), sha
    if isinstance(model, SavedModelClassifier):
        return model, Path(model.path), model.sha256
    return model, None, None


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
        raise InvalidTypeError(
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
