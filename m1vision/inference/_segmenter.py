"""The Segmenter: a Keras segmentation model over a volume, per slice or by 3-D sliding window
(internal; the window maths is in ``_windows``, the model card in ``_segcard``, folders in
``_segfolder``)."""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from m1vision._checks import check_axis, check_bool, check_int
from m1vision.errors import (
    InvalidParameterError,
    InvalidTypeError,
    SegmentationModelError,
)
from m1vision.inference import _backend, _blend, _segcard, _windows
from m1vision.inference._device import DeviceChoice, select_device
from m1vision.inference._models import (
    SavedModelClassifier,
    _keras_output_kind,
    identified,
    model_input_spec,
)
from m1vision.inference._segplan import _Planning
from m1vision.io import MedicalImage

log = logging.getLogger("m1vision.inference")

MODES = ("slices", "patches")
BLENDS = ("gaussian", "constant")


def _output_shape(model):
    if isinstance(model, SavedModelClassifier):
        return model.output_shape, model.output_kind
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        raise SegmentationModelError(
            f"model {getattr(model, 'name', '?')!r} has {len(outputs)} outputs; the Segmenter "
            "needs one output, a per-pixel map (batch, ..., classes)."
        )
    return tuple(outputs[0].shape), _keras_output_kind(model)


def _tuple(value, n: int, name: str) -> tuple:
    if value is None:
        return (None,) * n
    if isinstance(value, int | np.integer):
        value = (int(value),) * n
    value = tuple(value)
    if len(value) != n:
        raise InvalidParameterError(
            f"{name} needs {n} value(s) (one per spatial axis of the model), got {value!r}."
        )
    return value


class Segmenter(_Planning):
    """Segment volumes (and pictures) with a Keras segmentation model, on any Keras backend.

    Parameters
    ----------
    model : keras.Model, SavedModelClassifier, or path
        One input ``(N, H, W, C)`` (a 2-D model) or ``(N, D, H, W, C)`` (3-D), one output of
        the same spatial size with one channel per class (softmax, or logits; one sigmoid
        channel: a binary map). A path is loaded with :func:`load_model` (safe mode) and its
        card, ``<model>.json`` beside it, is read (its ``"segmentation"`` section: see
        :mod:`m1vision.inference._segcard`).
    mode : {"slices", "patches"}, optional
        ``"slices"``: the 2-D model per slice along ``axis``, each slice tiled with 2-D
        windows. ``"patches"``: windows of the model's rank over the volume. Default: the
        card's, else "slices" for a 2-D model and "patches" for a 3-D one.
    window : int or tuple, optional
        The window (the model's spatial input size). Default: the card's, else the model's
        fixed input size; an open axis takes the whole (padded) axis.
    overlap : float
        Fraction of the window shared by neighbours, 0 <= overlap < 1 (along the slice axis
        in "slices" mode windows never overlap).
    blend : {"gaussian", "constant"}
        How overlapping windows are weighted: nnU-Net's Gaussian (sigma 1/8 of the window)
        or equally.
    batch_size : int
        Windows per model call.
    device : {"auto", "gpu", "cpu"} or DeviceChoice, optional
        See :func:`select_device` (None: "auto").
    labels : list of str or dict, optional
        Names of the output classes: a list by class index (0 the background) or ``{value:
        name or {"name", "color"}}``; overrides the card's.
    tta : bool
        Mirroring test-time augmentation: the mean over every flip of the spatial axes.
    axis : {0, 1, 2}
        The slice axis of "slices" mode.
    preprocess : callable or Pipeline, optional
        Replaces the card's intensity preparation: "slices" mode calls it on each 2-D slice
        (a Pipeline too), "patches" mode on the whole (Z, H, W) volume (a Pipeline slice by
        slice). It may add a trailing channel axis. Without it and without a card the values
        reach the model unchanged, as float32.
    max_memory : int, optional
        Bytes :meth:`segment` may allocate (accumulators, prepared copies, the output);
        default 80 % of the physical memory. Past it: MemoryBudgetError before allocating.
    card : dict or path, optional
        The model card (default: beside the model file).

    Notes
    -----
    Memory: besides the input, the only volume-sized state is the blend's accumulators on
    the model's grid, float32 ``(classes, Z, H, W)`` sums plus one ``(Z, H, W)`` weight sum:
    ``4 * (classes + 1)`` bytes per voxel (a 512x512x300 CT, 4 classes: 1.5 GiB); plus the
    resampled input when the model's spacing differs, a prepared float32 copy with
    ``preprocess=``, and the output. Windows are cut, prepared and batched lazily.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from m1vision.inference import Segmenter
    >>> from m1vision.io import MedicalImage
    >>> inputs = keras.Input((16, 16, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
    >>> seg = Segmenter(model, labels=["background", "bright"], device="cpu")
    >>> volume = MedicalImage(np.zeros((3, 20, 20), np.float32), spacing=(2.0, 1.0, 1.0))
    >>> out = seg.segment(volume)
    >>> out.shape, out.spacing, out.pixels.dtype.name
    ((3, 20, 20), (2.0, 1.0, 1.0), 'uint8')
    """

    def __init__(
        self,
        model,
        *,
        mode: str | None = None,
        window=None,
        overlap: float = 0.5,
        blend: str = "gaussian",
        batch_size: int = 4,
        device=None,
        labels=None,
        tta: bool = False,
        axis: int = 0,
        preprocess=None,
        max_memory: int | None = None,
        card=None,
    ):
        model, self.model_path, self.model_sha256 = identified(model)
        self.model = model
        self.card, origin = _segcard.read_card(card, self.model_path)
        origin = origin or "the model card"
        shape, dtype = model_input_spec(model)
        name = getattr(model, "name", "model")
        if len(shape) not in (4, 5):
            raise SegmentationModelError(
                f"model {name!r} has input shape {shape}; the Segmenter needs an image model "
                "with input (batch, H, W, channels) or (batch, D, H, W, channels)."
            )
        out_shape, kind = _output_shape(model)
        self.rank = len(shape) - 2
        if out_shape is not None and (
            len(out_shape) != len(shape)
            or any(
                a is not None and b is not None and a != b
                for a, b in zip(shape[1:-1], out_shape[1:-1], strict=True)
            )
        ):
            raise SegmentationModelError(
                f"model {name!r} maps input {shape} to output {out_shape}: not a per-pixel "
                f"map. The Segmenter needs an output of the input's spatial size with one "
                f"channel per class, e.g. {(*shape[:-1], 3)}; a classifier runs with Predictor."
            )
        self.input_shape, self.input_dtype = shape, dtype
        self.num_classes = out_shape[-1] if out_shape is not None else None
        if self.num_classes is None:
            raise SegmentationModelError(
                f"model {name!r} does not say how many classes it outputs (output shape "
                f"{out_shape}); build it with a fixed number of output channels."
            )
        self.from_logits = kind == "logits"
        self.channels = shape[-1]
        card_channels = self.card.get("channels")
        if (
            card_channels is not None
            and self.channels is not None
            and card_channels != self.channels
        ):
            raise SegmentationModelError(
                f"{origin} says the model takes {card_channels} channel(s), but its input "
                f"{shape} has {self.channels}; fix the card's 'channels'."
            )
        mode = mode or self.card.get("mode") or ("slices" if self.rank == 2 else "patches")
        if mode not in MODES:
            raise InvalidParameterError(f"mode must be 'slices' or 'patches', got {mode!r}.")
        if mode == "slices" and self.rank == 3:
            raise SegmentationModelError(
                f"mode='slices' runs a 2-D model per slice, but model {name!r} is 3-D (input "
                f"{shape}); use mode='patches'."
            )
        self.mode = mode
        if blend not in BLENDS:
            raise InvalidParameterError(f"blend must be 'gaussian' or 'constant', got {blend!r}.")
        self.blend = blend
        overlap = float(overlap)
        if not 0.0 <= overlap < 1.0:
            raise InvalidParameterError(
                f"overlap must be a fraction in [0, 1), got {overlap}; 0.5 is nnU-Net's and "
                "MONAI's usual choice."
            )
        self.overlap = overlap
        self.batch_size = check_int(batch_size, name="batch_size", minimum=1)
        self.tta = check_bool(tta, name="tta")
        self.axis = check_axis(axis)
        if preprocess is not None and not callable(preprocess):
            raise InvalidTypeError(
                "preprocess must be a callable (array -> array) or a m1vision.pipeline."
                f"Pipeline, got {type(preprocess).__name__}. Fix: pass e.g. "
                "Pipeline([Window(center=40, width=400)]), or None."
            )
        self.preprocess = preprocess
        self.intensity = _segcard.check_intensity(self.card.get("intensity"), origin)
        fixed = tuple(shape[1:-1])
        divisible = _tuple(self.card.get("divisible_by", 1), self.rank, "divisible_by")
        self.divisible_by = tuple(int(d or 1) for d in divisible)
        given = window if window is not None else self.card.get("window")
        win = _tuple(given, self.rank, "window")
        for i, (w, f) in enumerate(zip(win, fixed, strict=True)):
            if w is not None and (not isinstance(w, int | np.integer) or w < 1):
                raise InvalidParameterError(f"window sizes must be integers >= 1, got {win!r}.")
            if w is not None and f is not None and w != f:
                raise SegmentationModelError(
                    f"window {tuple(win)} does not fit model {name!r}, whose input is fixed at "
                    f"{fixed} (axis {i}: {f}); leave window=None to use the model's size, or "
                    "save the model with an open input size (keras.Input((None, None, C)))."
                )
            if w is not None and w % self.divisible_by[i]:
                d = self.divisible_by[i]
                raise SegmentationModelError(
                    f"window {tuple(win)}: axis {i} ({w}) is not divisible by {d}, which the "
                    f"model needs ({origin}: divisible_by); use {w - w % d or d} or "
                    f"{w - w % d + d}."
                )
        self.window = tuple(w if w is not None else f for w, f in zip(win, fixed, strict=True))
        spacing = self.card.get("spacing")
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        if self.spacing is not None and len(self.spacing) != self.rank:
            raise SegmentationModelError(
                f"{origin}: spacing {spacing} needs {self.rank} values for a {self.rank}-D "
                "model ((row, col) mm for 2-D, (z, row, col) for 3-D)."
            )
        entries = _segcard.label_entries(
            self.card.get("labels"), self.num_classes, name=f"{origin} labels"
        )
        if labels is not None:
            entries = _segcard.label_entries(labels, self.num_classes, name="labels=")
        self.labels = entries
        if max_memory is not None:
            max_memory = check_int(max_memory, name="max_memory", minimum=1)
        self.max_memory = max_memory
        if device is None:
            device = "auto"
        if isinstance(device, DeviceChoice):
            self.device = device
        elif isinstance(device, str):
            self.device = select_device(device)
        else:
            raise InvalidTypeError(
                f"device must be 'auto', 'gpu', 'cpu' or a DeviceChoice, got {device!r}. Fix: "
                "pass device='auto', or a DeviceChoice from select_device()."
            )
        self._fn = _backend.Compiled(model, shape, dtype, self.device.name)
        # what a worker process needs to build the same Segmenter from the model file
        self._settings = {
            "mode": self.mode,
            "window": window,
            "overlap": self.overlap,
            "blend": self.blend,
            "batch_size": self.batch_size,
            "labels": labels,
            "tta": self.tta,
            "axis": self.axis,
            "preprocess": self.preprocess,
            "max_memory": self.max_memory,
            "card": dict(self.card),
        }

    # -- configuration -----------------------------------------------------------------------

    def to_config(self) -> dict:
        """The settings that define the results (JSON-safe; the model's hash is apart)."""
        from m1vision.inference._folder import _preprocess_identity

        return {
            "mode": self.mode,
            "window": [None if w is None else int(w) for w in self.window],
            "overlap": self.overlap,
            "blend": self.blend,
            "tta": self.tta,
            "axis": self.axis,
            "spacing": None if self.spacing is None else list(self.spacing),
            "intensity": self.intensity,
            "preprocess": _preprocess_identity(self.preprocess),
            "labels": {str(k): v for k, v in sorted(self.labels.items())},
            "input_shape": [None if s is None else int(s) for s in self.input_shape],
            "num_classes": int(self.num_classes),
            "from_logits": self.from_logits,
        }

    def _infer(self, x: np.ndarray) -> np.ndarray:
        """Model output for a batch (B, *window, C) -> (B, *window, K), with TTA."""
        if self.mode == "slices":
            x = x[:, 0]
        spatial = x.ndim - 2
        flips = _windows.mirror_flips(spatial) if self.tta else [()]
        total = None
        for flip in flips:
            axes = tuple(a + 1 for a in flip)
            xi = np.ascontiguousarray(np.flip(x, axes)) if axes else x
            y = np.asarray(self._fn(xi.astype(self.input_dtype, copy=False)), np.float32)
            _blend._check_output(self, y.shape, x.shape)
            if axes:
                y = np.flip(y, axes)
            if total is None:  # the backend's array may be read-only: copied only to add to
                total = y.copy() if len(flips) > 1 else y
            else:
                total += y
        if len(flips) > 1:
            total /= len(flips)
        if self.mode == "slices":
            total = total[:, None]
        return total

    def segment(self, image, *, probabilities: bool = False, progress: bool = False):
        """Segment a volume (or a 2-D picture): a label map on its exact grid.

        Parameters
        ----------
        image : MedicalImage or numpy.ndarray
            (Z, H, W) volume or (H, W) picture, in modality units.
        probabilities : bool
            Return the soft output instead: ``pixels`` float32 ``(classes, Z, H, W)``
            (``(classes, H, W)`` for a picture), probabilities (softmax of logits).
        progress : bool
            Show a progress bar over the windows.

        Returns
        -------
        MedicalImage
            A label map (uint8, uint16 past 255 classes) with the input's shape,
            ``spacing`` and affine and ``metadata["labels"]`` (names from the card or
            ``labels=``), and ``metadata["segmentation"]`` (windows, padding, spacing used);
            or the probabilities.

        Raises
        ------
        InvalidImageError
            An empty image, NaN or infinity in it, colour or 4-D.
        SegmentationModelError
            A 2-D model asked for patches of a 3-D volume; channel mismatch; an output that
            is not a per-pixel map.
        MemoryBudgetError
            More memory needed than ``max_memory``, before it is allocated.
        """
        from m1vision._progress import progress as _progress
        from m1vision.volume import resample

        clock = _blend.clock_of(self)
        clock.start()
        on_device = _blend.use_device(self)
        # blending on the device, the NaN check runs there on the uploaded copy (before the
        # accumulators are allocated) when that copy is the input itself: no host pass
        vol, was_2d = self._volume(image, finite=not on_device)
        if self.mode == "patches" and self.rank == 2 and vol.shape[0] > 1:
            raise SegmentationModelError(
                f"mode='patches' with the 2-D model (input {self.input_shape}) over a 3-D "
                f"volume of shape {vol.shape}: 2-D windows cannot cover it. Use "
                "mode='slices' (the model per slice along axis=), or a 3-D model."
            )
        plan = self._plan(vol, probabilities)
        on_device_check = on_device and plan["target"] is None and self.preprocess is None
        if on_device and not on_device_check:  # resampled or preprocessed first: on the host
            self._volume(vol)
        self._check_budget(plan, vol.shape)
        work_img = vol
        if plan["target"] is not None:
            work_img = resample(vol, spacing=plan["target"], interpolation="linear")
        work = work_img.pixels
        if self.mode == "slices" and self.axis:
            work = np.moveaxis(work, self.axis, 0)
        arr = self._prepared(work)
        self._check_channels(arr)
        window, overlap, padded = plan["window"], plan["overlap"], plan["padded"]
        clock.mark("checks")
        pads = _windows.pad_widths(arr.shape[:3], window)
        n_windows = _windows.count_windows(padded, window, overlap)
        with _progress(n_windows, show=progress, desc="segment", unit="win") as bar:
            if on_device:
                check = vol.shape if on_device_check and vol.pixels.dtype.kind == "f" else None
                acc = _blend.blend_torch(
                    self, arr, window, overlap, padded, pads, bar, check_finite=check
                )
            else:
                acc = _blend.blend_numpy(self, arr, window, overlap, padded, pads, bar)
        if not on_device:
            clock.mark("blend on the host")
        del arr
        present = None
        if probabilities:
            acc, px = _blend.probabilities_of(acc), None
            clock.mark("download")
        else:
            (px, present), acc = _blend.labels_of(acc, clock), None
        info = {
            "mode": self.mode,
            "windows": n_windows,
            "window": list(window),
            "padded": [list(p) for p in pads] if any(any(p) for p in pads) else None,
            "model_spacing": None if plan["target"] is None else list(plan["target"]),
            "tta": self.tta,
            "blend": self.blend,
            "blended_on": self.device.name if on_device else "host",
        }
        if info["padded"]:
            log.info(
                "segment: the volume (%s on the model's grid) is smaller than the window %s: "
                "padded by %s",
                plan["work"],
                tuple(window),
                info["padded"],
            )
        if self.mode == "slices" and self.axis:
            if probabilities:
                acc = np.moveaxis(acc, 1, self.axis + 1)
            else:
                px = np.moveaxis(px, 0, self.axis)
        if probabilities:
            out = self._probabilities(acc, work_img, vol, plan["target"] is not None)
        else:
            out = self._labels(px, work_img, vol, plan["target"] is not None, present)
        out.metadata["segmentation"] = info
        if was_2d:
            out = _as_2d(out, image)
        clock.mark("output")
        return out

    def _labels(self, px, work_img, vol, resampled: bool, present=None) -> MedicalImage:
        from m1vision.labels._core import label_info
        from m1vision.volume import resample

        px = np.ascontiguousarray(px)
        if resampled:
            on_model = MedicalImage(
                px,
                work_img.spacing,
                metadata={
                    "layout": "volume",
                    "affine": work_img.metadata.get("affine"),
                    "labels": {},
                },
            )
            px = resample(on_model, like=vol, interpolation="nearest").pixels
        meta = {"layout": "volume", "affine": _affine_of(vol)}
        # the values present, counted on the device when blended there (resampling to the
        # input's grid may drop a small label: then counted again here)
        seen = px if present is None or resampled else present
        meta["labels"] = label_info(seen, self.labels, strict=False)
        return MedicalImage(px, vol.spacing, modality=vol.modality, metadata=meta)

    def _probabilities(self, acc, work_img, vol, resampled: bool) -> MedicalImage:
        from m1vision.volume import resample

        if resampled:
            out = np.empty((acc.shape[0], *vol.shape), np.float32)
            for c in range(acc.shape[0]):
                channel = MedicalImage(
                    acc[c],
                    work_img.spacing,
                    metadata={"layout": "volume", "affine": work_img.metadata.get("affine")},
                )
                out[c] = resample(channel, like=vol, interpolation="linear", fill=0.0).pixels
            acc = out
        names = {0: "background", **{v: e["name"] for v, e in self.labels.items()}}
        classes = [names.get(c, f"label {c}") for c in range(max(acc.shape[0], 2))]
        meta = {
            "layout": "probabilities",
            "affine": _affine_of(vol),
            "classes": classes[1:] if acc.shape[0] == 1 else classes,
        }
        return MedicalImage(acc, vol.spacing, modality=vol.modality, metadata=meta)

    # -- folders -----------------------------------------------------------------------------

    def segment_folder(
        self,
        inputs,
        out_dir,
        *,
        format: str = "nifti",
        stats: bool = False,
        executor=None,
        workers: int | None = None,
        part=None,
        overwrite: bool = False,
        progress: bool = True,
    ):
        """Segment every series folder, NIfTI file and multi-frame DICOM under ``inputs``.

        See :func:`m1vision.inference._segfolder.segment_folder` (the batch engine's job,
        resume keyed on the model's hash and :meth:`to_config`).
        """
        from m1vision.inference._segfolder import segment_folder

        return segment_folder(
            self,
            inputs,
            out_dir,
            format=format,
            stats=stats,
            executor=executor,
            workers=workers,
            part=part,
            overwrite=overwrite,
            progress=progress,
        )

    def identity(self) -> str:
        """A short hash of the model and the settings (the per-worker cache key)."""
        from m1vision.inference._folder import _model_identity

        text = repr((_model_identity(self), self.to_config(), self.device.name))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _affine_of(vol: MedicalImage):
    a = vol.metadata.get("affine")
    if a is None:
        from m1vision import geometry

        a = geometry.default_affine(vol.spacing or (1.0, 1.0, 1.0))
    return [list(map(float, r)) for r in np.asarray(a, float)]


def _as_2d(out: MedicalImage, image) -> MedicalImage:
    px = out.pixels[:, 0] if out.metadata["layout"] == "probabilities" else out.pixels[0]
    meta = {k: v for k, v in out.metadata.items() if k != "affine"}
    if meta["layout"] == "volume":
        meta["layout"] = "slice"
    spacing = getattr(image, "spacing", None)
    return MedicalImage(px, spacing, modality=out.modality, metadata=meta)
