"""Explaining a classifier's decision: Grad-CAM heatmaps on any Keras 3 backend.

Grad-CAM (Selvaraju et al., 2017) weights the maps of a convolutional layer by the mean
gradient of a class score with respect to them, sums, keeps the positive part and scales
it to [0, 1]: the picture says *where* the evidence for that class lies, at the layer's
resolution (a 32x32 layer on a 128x128 input: 4-pixel cells), resized to the image.

The class score is the value before the final softmax or sigmoid where it can be found (a
last ``Dense`` layer with that activation, or a last ``Activation`` layer), because the
gradient of a saturated probability vanishes; otherwise the model's output itself.

The gradient is the backend's own (``tf.GradientTape``, ``torch.autograd.grad``,
``jax.grad``), behind one function in ``m1vision.inference._backend``; Keras and the backend
are imported on use. On JAX, which differentiates functions, the layers after the explained
one must form a model of their own (true of the last convolution layer of common CNNs).

Draw the result with :func:`m1vision.draw.overlay_heatmap`; threshold it with
:func:`m1vision.draw.heatmap_to_mask`.
"""

from __future__ import annotations

import copy
import weakref

import cv2
import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError

__all__ = ["conv_layer_names", "grad_cam", "grad_cam_volume"]

# (model, layer name) -> (grad model, head function); dropped with the model.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

_CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")


def _is_conv(layer) -> bool:
    from keras import layers

    types = tuple(getattr(layers, name) for name in _CONV_TYPES)
    return isinstance(layer, types)


def _output_rank(layer) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):  # not built, or used more than once
        return None


def conv_layer_names(model) -> list[str]:
    """Names of the model's convolution layers with a spatial (4-D) output, in order.

    These are the layers :func:`grad_cam` accepts by name; it uses the last one by default.
    Nested models (a model used as a layer) are not searched.

    Examples
    --------
    >>> import keras
    >>> from m1vision.explain import conv_layer_names
    >>> inputs = keras.Input((16, 16, 1))
    >>> x = keras.layers.Conv2D(4, 3, name="first")(inputs)
    >>> x = keras.layers.Conv2D(4, 3, name="second")(x)
    >>> x = keras.layers.GlobalAveragePooling2D()(x)
    >>> model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    >>> conv_layer_names(model)
    ['first', 'second']
    """
    return [layer.name for layer in model.layers if _is_conv(layer) and _output_rank(layer) == 4]


def _ensure_built(model, batch: np.ndarray) -> None:
    try:
        model.inputs  # noqa: B018 - raises for a Sequential model that was never built
        ok = bool(model.inputs)
    except (AttributeError, ValueError):
        ok = False
    if not ok:
        model(batch, training=False)  # builds a Sequential model from the data


def _head(model):
    """(tensor feeding the score, function from it to the score) for ``model``."""
    import keras

    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if activation not in ("softmax", "sigmoid"):
        return model.outputs[0], None
    if isinstance(last, keras.layers.Activation):
        return last.input, lambda h: h
    if isinstance(last, keras.layers.Dense):

        def logits(h):
            z = keras.ops.matmul(h, last.kernel)
            return z + last.bias if last.use_bias else z

        return last.input, logits
    return model.outputs[0], None


def _grad_model(model, layer_name: str):
    import keras

    per_model = _CACHE.setdefault(model, {})
    if layer_name not in per_model:
        head_input, head_fn = _head(model)
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        grad_model = keras.Model(
            inputs, [model.get_layer(layer_name).output, head_input, model.outputs[0]]
        )
        per_model[layer_name] = (grad_model, head_fn)
    return per_model[layer_name]


def _pick_layer(model, layer) -> str:
    names = conv_layer_names(model)
    if layer is None:
        if not names:
            kinds = ", ".join(type(x).__name__ for x in model.layers[:12])
            raise InvalidParameterError(
                f"model {model.name!r} has no convolution layer with a spatial output (its "
                f"layers: {kinds}{', ...' if len(model.layers) > 12 else ''}); Grad-CAM needs "
                "one. Pass layer='name' of a layer with a 4-D (batch, H, W, C) output."
            )
        return names[-1]
    if not isinstance(layer, str):
        raise InvalidTypeError(
            f"layer must be a layer name (str) or None, got {type(layer).__name__}."
        )
    try:
        found = model.get_layer(layer)
    except ValueError:
        hint = f"its convolution layers: {', '.join(names[-6:])}" if names else "it has none"
        raise InvalidParameterError(
            f"model {model.name!r} has no layer named {layer!r}; {hint}. "
            "Use m1vision.explain.conv_layer_names(model) to list them."
        ) from None
    if _output_rank(found) != 4:
        raise InvalidParameterError(
            f"layer {layer!r} of model {model.name!r} has no spatial (batch, H, W, C) output "
            f"(its output shape: {getattr(found.output, 'shape', '?')}); choose a convolution "
            "layer, e.g. one of conv_layer_names(model)."
        )
    return layer


def _as_batch(x: np.ndarray, model) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    shape = None
    try:
        shape = tuple(model.inputs[0].shape)
    except (AttributeError, ValueError, IndexError):
        shape = None
    if shape is not None and len(shape) == 4:
        channels = shape[-1]
        if x.ndim == 2 and channels in (1, 3):
            x = x[:, :, None] if channels == 1 else np.repeat(x[:, :, None], 3, axis=2)
        if x.ndim == 3:
            x = x[None]
        expected = tuple(shape[1:])
        if (
            x.ndim != 4
            or x.shape[0] != 1
            or any(e is not None and e != g for e, g in zip(expected, x.shape[1:], strict=True))
        ):
            raise InvalidImageError(
                f"the model expects input of shape (batch, {', '.join(map(str, expected))}) "
                f"but the (preprocessed) image has shape {x.shape}; pass preprocess= to "
                "resize it and set its channels, e.g. "
                "preprocess=lambda im: cv2.resize(im, (w, h))."
            )
        return x
    return x[None] if x.ndim in (2, 3) else x


def grad_cam(
    model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    layer: str | None = None,
    preprocess=None,
    device=None,
) -> np.ndarray:
    """Grad-CAM heatmap of ``model``'s evidence for a class in ``image``.

    Parameters
    ----------
    model : keras.Model
        A Keras 3 functional or Sequential model with at least one convolution layer.
    image : ndarray
        One image (not a batch), 2-D gray or 3-D color. The heatmap gets its height and
        width.
    class_index : int, optional
        The class to explain; default: the class the model predicts for the image.
    layer : str, optional
        Name of the layer whose maps are weighted; default: the last convolution layer
        with a spatial output (see :func:`conv_layer_names`).
    preprocess : callable, optional
        Turns ``image`` into the model's input (one image, without or with the batch axis).
        Default: the image as float32; a gray image gets a channel axis (repeated to three
        channels for a 3-channel model). If it letterboxes, the heatmap is in the
        letterboxed frame stretched to the image, so prefer plain resizing.
    device : str or DeviceChoice, optional
        Where to compute, a device name of the Keras backend; default:
        ``select_device("auto")``.

    Returns
    -------
    ndarray of float32, shape (H, W), values in [0, 1]
        1 marks the strongest evidence. All zeros when no pixel supports the class.

    Raises
    ------
    InvalidParameterError
        No convolution layer, an unknown ``layer`` name, a layer without spatial output, or
        ``class_index`` out of range.
    InvalidImageError
        An image (after ``preprocess``) that does not fit the model's input.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from m1vision.explain import grad_cam
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    >>> heat = grad_cam(model, np.random.default_rng(0).random((32, 32), np.float32))
    >>> heat.shape, heat.dtype.name, 0.0 <= float(heat.min()) <= float(heat.max()) <= 1.0
    ((32, 32), 'float32', True)
    """
    import keras

    from m1vision.inference import _backend, select_device

    if not isinstance(model, keras.Model):
        raise InvalidTypeError(
            f"model must be a keras.Model, got {type(model).__name__}; load one with "
            "m1vision.inference.load_model(path) or keras.models.load_model(path)."
        )
    image = check_image(image)
    x = image if preprocess is None else preprocess(image)
    if not _is_array(x):
        raise InvalidTypeError(
            f"preprocess must return an ndarray, got {type(x).__name__} from {preprocess!r}."
        )
    x = np.asarray(x)
    if not np.isfinite(x).all():
        raise InvalidImageError("the preprocessed image holds NaN or infinite values.")
    _ensure_built(model, _as_batch_loose(x))
    batch = _as_batch(x, model)
    layer_name = _pick_layer(model, layer)
    grad_model, head_fn = _grad_model(model, layer_name)
    if device is None:
        device = select_device("auto").name
    elif not isinstance(device, str):
        device = getattr(device, "name", device)

    def choose(n_classes: int, outputs: np.ndarray):
        if class_index is None:
            return int(np.argmax(outputs[0])), n_classes
        index = check_int(class_index, name="class_index", minimum=0)
        if index >= n_classes:
            raise InvalidParameterError(
                f"class_index must be < {n_classes} (the model has {n_classes} classes), "
                f"got {index}."
            )
        return index, n_classes

    maps, grads, _, _ = _backend.class_score_gradient(
        grad_model, head_fn, lambda: _tail_model(model, layer_name), batch, choose, device
    )
    if grads is None:
        raise InvalidParameterError(
            f"the class score does not depend on layer {layer_name!r}; choose a layer on the "
            "path to the output."
        )
    maps = maps[0].astype(np.float32)
    weights = grads[0].mean(axis=(0, 1)).astype(np.float32)
    cam = np.maximum(maps @ weights, 0.0)
    top = float(cam.max())
    cam = cam / top if top > 0 else np.zeros_like(cam)
    h, w = image.shape[:2]
    heat = cv2.resize(cam.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(heat, 0.0, 1.0).astype(np.float32)


def _as_batch_loose(x: np.ndarray) -> np.ndarray:
    """A batch of one for building a never-built model: add batch (and channel) axes."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    return x[None] if x.ndim == 3 else x


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or (hasattr(x, "shape") and hasattr(x, "dtype"))


def _tail_model(model, layer_name: str):
    """The model from ``layer_name``'s output to the head's input (JAX's gradient needs a
    function of the maps); cached with the grad model."""
    import keras

    per_model = _CACHE.setdefault(model, {})
    key = ("tail", layer_name)
    if key not in per_model:
        head_input, _ = _head(model)
        try:
            per_model[key] = keras.Model(model.get_layer(layer_name).output, head_input)
        except Exception as exc:
            raise InvalidParameterError(
                f"on the JAX backend Grad-CAM needs the layers after {layer_name!r} to depend "
                f"on its output alone (a skip connection passes it by: {exc}); choose a later "
                "layer, or run with KERAS_BACKEND=tensorflow or torch."
            ) from exc
    return per_model[key]


def grad_cam_volume(
    model,
    image,
    *,
    axis: int = 0,
    class_index: int | None = None,
    layer: str | None = None,
    preprocess=None,
    device=None,
):
    """Grad-CAM of a 2-D model over every slice of a volume, as a heat volume.

    Parameters
    ----------
    model : keras.Model
        A 2-D image classifier, as for :func:`grad_cam`.
    image : MedicalImage
        A volume, ``pixels`` (Z, H, W) in modality units, with ``spacing`` and
        ``metadata["affine"]`` (as :func:`m1vision.io.read_nifti` gives).
    axis : {0, 1, 2}
        The axis to slice along (0: axial slices).
    class_index : int, optional
        The class to explain on every slice; default: each slice's predicted class. Give it
        to compare slices (e.g. ``1`` for the lesion class).
    layer, preprocess, device
        As for :func:`grad_cam` (``preprocess`` gets each 2-D slice).

    Returns
    -------
    MedicalImage
        ``pixels`` float32 in [0, 1] of the volume's shape, the same ``spacing`` and
        ``metadata["affine"]`` (ready for a NIfTI writer and for an overlay on the volume),
        ``window`` (0, 1), ``modality`` ``"GRADCAM"``; ``metadata["grad_cam"]`` says the
        axis, class and layer.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from m1vision.io import MedicalImage
    >>> from m1vision.explain import grad_cam_volume
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3),
    ...     keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    >>> affine = np.diag([2.0, 1.0, 1.0, 1.0]).tolist()
    >>> volume = MedicalImage(np.random.default_rng(0).random((3, 16, 16), np.float32),
    ...     spacing=(2.0, 1.0, 1.0), metadata={"affine": affine})
    >>> heat = grad_cam_volume(model, volume, class_index=1)
    >>> heat.pixels.shape, heat.spacing, heat.metadata["affine"] == affine
    ((3, 16, 16), (2.0, 1.0, 1.0), True)
    """
    from m1vision.io import MedicalImage
    from m1vision.volume import as_volume, volume_slices

    image = as_volume(image)
    slices = volume_slices(image, axis=axis)
    name = _pick_layer(model, layer) if getattr(model, "layers", None) else layer
    heats = [
        grad_cam(
            model, s, class_index=class_index, layer=name, preprocess=preprocess, device=device
        )
        for s in slices
    ]
    pixels = np.ascontiguousarray(np.moveaxis(np.stack(heats), 0, axis), dtype=np.float32)
    metadata = {
        key: copy.deepcopy(value)
        for key, value in (image.metadata or {}).items()
        if key == "affine"
    }
    metadata["grad_cam"] = {"axis": int(axis), "class_index": class_index, "layer": name}
    return MedicalImage(
        pixels,
        spacing=image.spacing,
        window=(0.0, 1.0),
        modality="GRADCAM",
        metadata=metadata,
        source=image.source,
    )
