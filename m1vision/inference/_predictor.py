"""The Predictor: batched, overlapped prediction on any Keras 3 backend (internal).

One class: the model, its outputs and device checked, the compiled call, batches to class
probabilities (:meth:`Predictor.predict`), volumes and folders
(:meth:`Predictor.predict_volume`, :meth:`Predictor.predict_folder`). It inherits how it
feeds the model (the executor and place of preparation, the batches, the workers it keeps:
:mod:`m1vision.inference._predictor_feed`) and its configuration as data
(:meth:`Predictor.to_config`, :meth:`Predictor.from_config`:
:mod:`m1vision.inference._predictor_config`). Reading and preparing one input, in threads or
in worker processes, is :mod:`m1vision.inference._prepare`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from m1vision._checks import check_int, check_workers
from m1vision._progress import progress as _progress
from m1vision.errors import InvalidParameterError, InvalidTypeError
from m1vision.inference import _backend, _prepare
from m1vision.inference._device import DeviceChoice, select_device
from m1vision.inference._models import (
    _output_spec,
    identified,
    model_input_spec,
)
from m1vision.inference._predictions import Predictions, _softmax
from m1vision.inference._predictor_config import PredictorConfig
from m1vision.inference._predictor_feed import PredictorFeed

# how a model's output is read: probabilities as they are, logits through a softmax
_KIND = {"probabilities": False, "logits": True, None: None}


class Predictor(PredictorConfig, PredictorFeed):
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
        Threads reading and preprocessing (default: one per available CPU core).
    prefetch : int
        Batches prepared while one is being computed (default 2); 0 prepares and computes
        in turn, without overlap.
    executor : {"auto", "threads", "processes"}
        Where :meth:`predict` prepares images. ``"threads"``: ``workers`` threads of this
        process. ``"processes"``: worker processes (default ``workers``: the cores less
        one) that write each prepared image straight into a ring of ``prefetch + 1``
        shared-memory batch buffers, so no pixel array is pickled and the model's Python
        dispatch in this process does not compete with preparation for the GIL (on an H100
        it lost the overlap: 1.21x the slower stage with threads); ``preprocess`` must
        pickle (a Pipeline or a module-level function; a lambda does not) and the model's
        input size must be fixed. The workers and buffers are kept for the next call and
        released by :meth:`close` (also on garbage collection, at exit, and at once on any
        error or interrupt). ``"auto"`` (default): processes for file inputs on a GPU
        with 8 or more cores and at least two batches, when ``preprocess`` pickles and the
        input size is fixed; otherwise threads. ``Predictions.executor`` says which ran,
        and why threads when auto could not use processes.
    prepare_on : {"auto", "cpu", "device"}
        Where the tensor maths of preparation runs. ``"cpu"``: all of it (``preprocess``,
        resize, channels, dtype) on the CPU, what :meth:`prepare` returns. ``"device"``:
        the CPU only reads and decodes each input (and runs the leading ``preprocess``
        steps that only OpenCV does: blur, Canny, CLAHE...) to an array at its native size
        and dtype; that array travels to the model's device as it is (``uint8``/``uint16``:
        2-4x fewer bytes than float32), where the ``preprocess`` tail made of ``window``,
        ``to_uint8`` (modes range/dtype), ``normalize`` and ``resize`` (nearest, linear,
        area), the resize to the model's input, the channels and the cast run as
        ``keras.ops`` right before the model, on any backend; on CUDA the next batch is
        copied while this one computes. Equal to the CPU path within float32 rounding
        (float images) or one grey level where OpenCV rounds (integer images): see
        :mod:`m1vision.inference._device_prep`. ``"auto"`` (default): ``"device"`` when the
        model runs on a GPU, else ``"cpu"``. ``Predictions.executor`` says which ran.
        Used by :meth:`predict` and :meth:`predict_volume`; :meth:`prepare` and
        :meth:`predict_folder` prepare on the CPU.

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
        executor: str = "auto",
        prepare_on: str = "auto",
    ):
        # 1. the model: loaded from its file where given one, an image classifier
        self._set_model(model)
        # 2. how inputs are prepared and batched
        if preprocess is not None and not callable(preprocess):
            raise InvalidTypeError(
                f"preprocess must be a callable (image -> image) or a m1vision.pipeline."
                f"Pipeline, got {type(preprocess).__name__}. Fix: pass e.g. "
                "Pipeline([ToUint8(), Resize(size=(224, 224))]), or None."
            )
        self.preprocess = preprocess
        self.batch_size = check_int(batch_size, name="batch_size", minimum=1)
        self.prefetch = check_int(prefetch, name="prefetch", minimum=0)
        if executor not in ("auto", "threads", "processes"):
            raise InvalidParameterError(
                f"executor must be 'auto', 'threads' or 'processes', got {executor!r}; "
                "'auto' picks worker processes on a GPU for files, threads otherwise."
            )
        self.executor = executor
        if prepare_on not in ("auto", "cpu", "device"):
            raise InvalidParameterError(
                f"prepare_on must be 'auto', 'cpu' or 'device', got {prepare_on!r}; 'auto' "
                "prepares on the model's device when it is a GPU, on the CPU otherwise."
            )
        self.prepare_on = prepare_on
        self._cached_plan = None
        self._runner = None
        self._workers_given = workers is not None
        self.workers = check_workers(workers)
        #: Which executor the last :meth:`predict` prepared on (see ``executor``).
        self.last_executor: str | None = None
        self._shared = None
        self._cached_preparer = None
        # 3. how outputs are read: labels, top-k, logits or probabilities
        self._set_outputs(labels, top_k, from_logits)
        # 4. the device, then the one compiled call on it
        self.device = self._check_device(device)
        self._lock = threading.Lock()
        self._fn = self._compile()

    def _set_model(self, model) -> None:
        # model_path: the file or folder the model was loaded from (None for a model
        # object), what an experiment record hashes and reloads; model_sha256: the SHA-256
        # of its bytes as they were loaded (the one rule of m1vision._hashing).
        model, self.model_path, self.model_sha256 = identified(model)
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
        self.model = model
        self.input_shape = shape
        self.input_dtype = dtype
        self.num_classes = out_shape[1] if out_shape is not None else None
        self._output_kind = kind

    def _set_outputs(self, labels, top_k, from_logits) -> None:
        self.top_k = check_int(top_k, name="top_k", minimum=1)
        if from_logits is not None and not isinstance(from_logits, bool):
            raise InvalidTypeError(
                f"from_logits must be True, False or None, got {from_logits!r}. Fix: pass None "
                "to judge from the model's last layer, or say it with True or False."
            )
        if labels is not None:
            if isinstance(labels, str) or not all(isinstance(v, str) for v in labels):
                raise InvalidTypeError(
                    f"labels must be a sequence of class names (str), got {labels!r}. Fix: pass "
                    "one name per class, e.g. labels=['benign', 'malignant']."
                )
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
        self.from_logits = from_logits if from_logits is not None else _KIND.get(self._output_kind)

    @staticmethod
    def _check_device(device) -> DeviceChoice:
        if isinstance(device, DeviceChoice):
            if device.backend != _backend.backend():
                raise InvalidParameterError(
                    f"device {device.name!r} belongs to the {device.backend} backend, but "
                    f"Keras runs on {_backend.backend()}; pass device='auto', 'gpu' or 'cpu', "
                    "or a DeviceChoice from select_device() in this process."
                )
            return device
        if not isinstance(device, str):
            raise InvalidTypeError(
                f"device must be 'auto', 'gpu', 'cpu' or a DeviceChoice, got {device!r}. Fix: "
                "pass device='auto', or a DeviceChoice from select_device()."
            )
        return select_device(device)

    def _compile(self):
        return _backend.Compiled(self.model, self.input_shape, self.input_dtype, self.device.name)

    @property
    def backend(self) -> str:
        """The Keras backend the model runs on: "tensorflow", "torch" or "jax"."""
        return self.device.backend

    @property
    def tracing_count(self) -> int | None:
        """How many times the inference function was traced (1 after the first batch on
        TensorFlow, whatever the batch sizes; on JAX one per batch size seen); ``None`` on
        torch, which runs eagerly under ``torch.no_grad()``."""
        return self._fn.tracing_count

    def __repr__(self) -> str:
        name = getattr(self.model, "name", None) or repr(self.model)
        return (
            f"Predictor(model={name!r}, input={self.input_shape}, batch_size={self.batch_size}, "
            f"device={self.device.name!r}, top_k={self.top_k})"
        )

    # -- per image -----------------------------------------------------------------------------

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
        return self._preparer(item)

    # -- batches -------------------------------------------------------------------------------

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """The model on one ready batch, to class probabilities (the compiled call alone)."""
        return self._outputs(self._fn(batch))

    def _outputs(self, out: np.ndarray) -> np.ndarray:
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
                from m1vision.batch import collect

                return [inp.path for inp in collect(images)]
            return [images]
        if isinstance(images, np.ndarray):
            return list(images) if images.ndim == 4 else [images]
        if hasattr(images, "pixels"):
            return [images]
        try:
            return list(images)
        except TypeError:
            raise InvalidTypeError(
                f"images must be a path, an ndarray, a MedicalImage or a list of them, got "
                f"{type(images).__name__}. Fix: pass one of those, or a list of them."
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
        with _progress(len(items), show=show, desc="predict") as bar:
            if self._is_ready(images):  # model-ready tensors: batches are slices, no copies
                outputs = (
                    self._fn(images[i : i + self.batch_size])
                    for i in range(0, len(images), self.batch_size)
                )
                executor = "none (model-ready arrays)"
            else:
                outputs, executor = self._prepared_outputs(items)
            self.last_executor = executor
            try:
                for out in outputs:
                    rows.append(self._outputs(out))
                    bar.update(len(out))
            finally:
                outputs.close()  # an error or interrupt: the generators release their workers
        probabilities = np.concatenate(rows, axis=0)
        inputs = [str(i) if isinstance(i, os.PathLike) else i for i in items]
        return Predictions(
            probabilities, self._top_k(probabilities), inputs, self.labels, executor=executor
        )

    def _is_ready(self, images) -> bool:
        """A 4-D array already of the model's input shape and dtype, with no preprocess:
        what prepare() would return unchanged, image by image."""
        if self.preprocess is not None or not isinstance(images, np.ndarray) or images.ndim != 4:
            return False
        expected = self.input_shape[1:]
        return (
            images.dtype == np.dtype(self.input_dtype)
            and all(e is None or e == g for e, g in zip(expected, images.shape[1:], strict=True))
            and bool(np.isfinite(images).all())
        )

    def predict_volume(self, image, *, axis: int = 0, progress: bool | None = None) -> Predictions:
        """Run the 2-D model on every slice of a volume.

        Slices are taken along ``axis`` of ``image.pixels`` (0: the axial slices of m1vision's
        (Z, H, W) layout), prepared in threads (``preprocess``, resize, channels) and
        predicted in batches overlapped with the preparation, exactly as :meth:`predict`
        does for a list of 2-D images.

        Parameters
        ----------
        image : MedicalImage
            A volume: ``pixels`` of shape (Z, H, W) in modality units (e.g. from
            :func:`m1vision.io.read_nifti`).
        axis : {0, 1, 2}
            The axis to slice along.
        progress : bool, optional
            As for :meth:`predict`.

        Returns
        -------
        Predictions
            One row per slice, in order; ``inputs`` holds the slice indices along ``axis``.

        Raises
        ------
        InvalidImageError
            ``image`` is no volume (a 2-D image: use :meth:`predict`).
        InvalidParameterError
            ``axis`` is not 0, 1 or 2.

        Examples
        --------
        >>> import numpy as np, keras
        >>> from m1vision.io import MedicalImage
        >>> from m1vision.inference import Predictor
        >>> inputs = keras.Input((8, 8, 1))
        >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        >>> volume = MedicalImage(np.zeros((5, 8, 8), np.float32), spacing=(2.0, 1.0, 1.0))
        >>> result = Predictor(model, device="cpu").predict_volume(volume)
        >>> result.probabilities.shape, result.inputs
        ((5, 2), [0, 1, 2, 3, 4])
        """
        slices = _prepare.slices_of(image, axis)
        n = len(slices)
        rows = []
        show = n > 4 * self.batch_size if progress is None else bool(progress)
        device_plan, _ = self._where()
        prepare = device_plan.decode if device_plan is not None else None
        batches = (b for _, b, _ in self._batches(slices, record_errors=False, prepare=prepare))
        if device_plan is None:
            outputs = _prepare.closing((self._fn(b) for b in batches), batches)
        else:
            outputs = _prepare.closing(
                self._device_runner(device_plan).run(batches, owned=True), batches
            )
        with _progress(n, show=show, desc="predict_volume") as bar:
            try:
                for out in outputs:
                    rows.append(self._outputs(out))
                    bar.update(len(out))
            finally:
                outputs.close()
        probabilities = np.concatenate(rows, axis=0)
        return Predictions(probabilities, self._top_k(probabilities), list(range(n)), self.labels)

    # -- folders -------------------------------------------------------------------------------

    def predict_folder(
        self, inputs, out_dir, *, overwrite: bool = False, progress: bool = True, executor=None
    ):
        """Predict every image file under ``inputs`` on the batch engine, resumably.

        The run is a job of :mod:`m1vision.batch` (one report shape, one input key, one
        manifest): chunks of ``batch_size`` inputs are read and prepared on a thread pool in
        this process, overlapped with the model's work on the previous chunk. Its
        fingerprint holds the model file's SHA-256 and the preprocessing, so resuming never
        mixes results of two models: see :mod:`m1vision.inference._folder`.

        Parameters
        ----------
        inputs : path or list of paths
            Image files and/or folders (scanned recursively).
        out_dir : path
            A folder for ``predictions.jsonl`` (a header line, then per input ``{"key",
            "input", "status", "top_k", "probabilities", "error"}``), the engine's manifest
            ``m1vision-manifest.json`` and its ``batch_report-<UTC>.json``.
        overwrite : bool
            ``False`` (default): a folder of the same job is resumed (inputs done and
            unchanged are skipped, failed or changed ones predicted again); a folder of
            another job (another model file, even with the same shapes and labels, or other
            preprocessing) raises :class:`~m1vision.errors.JobMismatchError` before anything
            is written. ``True``: predict everything anew.
        progress : bool
            Show a progress bar.
        executor : concurrent.futures.Executor, optional
            Default: a thread pool of ``1 + prefetch`` threads in this process.

        Returns
        -------
        m1vision.batch.BatchReport
            One :class:`PredictionItem` per input key (``status`` ok / skipped / failed,
            ``reason``, ``top_k``, ``probabilities``); a file that cannot be read or
            preprocessed is recorded as failed and the run goes on.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np, keras
        >>> from m1vision.inference import Predictor, read_predictions
        >>> from m1vision.io import write_image
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = write_image(folder / "in" / "a.png", np.zeros((8, 8), np.uint8))
        >>> _ = (folder / "in" / "b.png").write_bytes(b"not a png")
        >>> inputs = keras.Input((8, 8, 1))
        >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        >>> predictor = Predictor(model, device="cpu")
        >>> report = predictor.predict_folder(folder / "in", folder / "out", progress=False)
        >>> [(i.key, i.status) for i in report.items]
        [('a.png', 'ok'), ('b.png', 'failed')]
        >>> again = predictor.predict_folder(folder / "in", folder / "out", progress=False)
        >>> [(i.key, i.status) for i in again.items]
        [('a.png', 'skipped'), ('b.png', 'failed')]
        """
        from m1vision.inference._folder import predict_folder

        return predict_folder(
            self, inputs, out_dir, overwrite=overwrite, progress=progress, executor=executor
        )
