"""Predictor: batched, overlapped prediction on any Keras 3 backend; its results and files."""

from __future__ import annotations

import collections
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath

import cv2
import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.inference import _backend
from m1vision.inference._device import DeviceChoice, select_device
from m1vision.inference._models import (
    SavedModelClassifier,
    _output_spec,
    load_model,
    model_input_spec,
)


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
    #: Where the inputs were prepared: "threads (N workers)", "processes (N workers, ...)"
    #: (see ``Predictor(executor=...)``), with why threads ran when processes could not.
    executor: str | None = None

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
        if executor not in ("auto", "threads", "processes"):
            raise InvalidParameterError(
                f"executor must be 'auto', 'threads' or 'processes', got {executor!r}; "
                "'auto' picks worker processes on a GPU for files, threads otherwise."
            )
        self.executor = executor
        self._workers_given = workers is not None
        if workers is None:
            workers = max(1, min(4, os.cpu_count() or 1))
        self.workers = check_int(workers, name="workers", minimum=1)
        #: Which executor the last :meth:`predict` prepared on (see ``executor``).
        self.last_executor: str | None = None
        self._shared = None
        self._cached_preparer = None
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
            if device.backend != _backend.backend():
                raise InvalidParameterError(
                    f"device {device.name!r} belongs to the {device.backend} backend, but "
                    f"Keras runs on {_backend.backend()}; pass device='auto', 'gpu' or 'cpu', "
                    "or a DeviceChoice from select_device() in this process."
                )
            self.device = device
        else:
            if not isinstance(device, str):
                raise TypeError(
                    f"device must be 'auto', 'gpu', 'cpu' or a DeviceChoice, got {device!r}."
                )
            self.device = select_device(device)
        self._lock = threading.Lock()
        self._fn = self._compile()

    @property
    def _preparer(self) -> _Preparer:
        cached = self._cached_preparer
        if cached is None or cached.preprocess is not self.preprocess:
            cached = self._cached_preparer = _Preparer(
                self.preprocess, self.input_shape, self.input_dtype
            )
        return cached

    def close(self) -> None:
        """Stop the worker processes and free the shared-memory buffers that
        ``executor="processes"`` keeps between calls (nothing to do otherwise; idempotent).
        A later :meth:`predict` starts them again. Also done on garbage collection and at
        exit; ``with Predictor(...) as p:`` closes on leaving the block."""
        shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

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

    def _load(self, item) -> np.ndarray:
        return _load_item(item)

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
        out = self._fn(batch)
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
            if self._is_ready(images):  # model-ready tensors: batches are slices, no copies
                batches = (
                    images[i : i + self.batch_size] for i in range(0, len(images), self.batch_size)
                )
                executor = "none (model-ready arrays)"
            else:
                batches, executor = self._prepared_batches(items)
            self.last_executor = executor
            try:
                for batch in batches:
                    rows.append(self._run(batch))
                    bar.update(len(batch))
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()  # an error or interrupt: the generator releases its workers
        probabilities = np.concatenate(rows, axis=0)
        inputs = [str(i) if isinstance(i, os.PathLike) else i for i in items]
        return Predictions(
            probabilities, self._top_k(probabilities), inputs, self.labels, executor=executor
        )

    def _prepared_batches(self, items: list):
        """The batches of ``items`` prepared on the executor chosen (see ``executor``), and
        its description."""
        why = self._processes_refused(items)
        if why is None:
            shared = self._shared_batches()
            desc = (
                f"processes ({shared.workers} workers, {shared.method}, "
                f"{len(shared.names)} shared-memory batch buffers)"
            )
            return shared.batches(items, _label), desc
        desc = f"threads ({self.workers} workers)"
        if why:
            desc += f"; processes not used: {why}"
        return (b for _, b, _ in self._batches(items, record_errors=False)), desc

    def _processes_refused(self, items: list) -> str | None:
        """``None`` if this call prepares in processes, else why not ("" when threads were
        asked for or are the plain choice). ``executor="processes"`` raises instead."""
        from m1vision.inference import _procprep

        if self.executor == "threads":
            return ""
        forced = self.executor == "processes"
        if not forced:
            if self.device.kind != "gpu":
                return ""  # on a CPU the model uses the cores itself; threads do
            from m1vision.batch import available_cores

            cores = available_cores()
            if cores < 8:
                return f"{cores} cores (auto uses processes from 8)"
            if len(items) < 2 * self.batch_size or not all(
                isinstance(i, str | os.PathLike) for i in items
            ):
                return ""
        why = None
        if any(v is None for v in self.input_shape[1:]):
            why = f"the model's input size is open ({self.input_shape[1:]})"
        elif (bad := _procprep.picklable(self._preparer)) is not None:
            why = (
                f"preprocess cannot be sent to a worker process ({bad}); use a "
                "m1vision.pipeline.Pipeline or a module-level function"
            )
        elif not _procprep.shm_room(self._ring_bytes()):
            why = f"/dev/shm has no room for {self._ring_bytes() / 2**20:.0f} MiB of batch buffers"
        if forced and why:
            raise InvalidParameterError(
                f"executor='processes' cannot be used: {why}. Pass executor='threads' (or "
                "'auto', which falls back to threads and says why in Predictions.executor)."
            )
        return why

    def _ring_bytes(self) -> int:
        _, h, w, c = self.input_shape
        slots = self.prefetch + 1
        return (
            slots
            * self.batch_size
            * (h or 0)
            * (w or 0)
            * (c or 0)
            * np.dtype(self.input_dtype).itemsize
        )

    def _shared_batches(self):
        from m1vision.batch import available_cores
        from m1vision.inference._procprep import SharedBatches

        workers = self.workers if self._workers_given else max(1, available_cores() - 1)
        shape = (self.batch_size, *self.input_shape[1:])
        shared = self._shared
        if (
            shared is None
            or not shared.alive
            or shared.batch_shape != shape
            or shared.workers != workers
            or len(shared.names) != self.prefetch + 1
            or shared.prepare_key != (id(self.preprocess),)
        ):
            self.close()
            shared = SharedBatches(
                self._preparer,
                batch_shape=shape,
                dtype=self.input_dtype,
                slots=self.prefetch + 1,
                workers=workers,
            )
            shared.prepare_key = (id(self.preprocess),)
            self._shared = shared
        return shared

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
        slices = _volume_slices(image, axis)
        n = len(slices)
        rows = []
        show = n > 4 * self.batch_size if progress is None else bool(progress)
        with _progress(n, show, "predict_volume") as bar:
            for _, batch, _ in self._batches(slices, record_errors=False):
                rows.append(self._run(batch))
                bar.update(len(batch))
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


def _load_item(item) -> np.ndarray:
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
        f"each input must be a path, a numpy.ndarray or a MedicalImage, got {type(item).__name__}."
    )


class _Preparer:
    """What :meth:`Predictor.prepare` does, without the model: picklable when ``preprocess``
    is, so worker processes can run it (:mod:`m1vision.inference._procprep`)."""

    def __init__(self, preprocess, input_shape, input_dtype):
        self.preprocess = preprocess
        self.input_shape = input_shape
        self.input_dtype = input_dtype

    def __call__(self, item) -> np.ndarray:
        image = _load_item(item)
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


_KIND = {"probabilities": False, "logits": True, None: None}


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


def _volume_slices(image, axis) -> list[np.ndarray]:
    """The 2-D slices of a MedicalImage volume along ``axis`` (views, not copies)."""
    pixels = getattr(image, "pixels", None)
    if not isinstance(pixels, np.ndarray):
        raise TypeError(
            f"image must be a MedicalImage volume (e.g. from m1vision.io.read_nifti), got "
            f"{type(image).__name__}; wrap an array as MedicalImage(pixels, spacing=...)."
        )
    if pixels.ndim != 3:
        raise InvalidImageError(
            f"image must be a volume of shape (Z, H, W), got shape {pixels.shape}; for 2-D "
            "images use Predictor.predict."
        )
    if isinstance(axis, bool) or axis not in (0, 1, 2):
        raise InvalidParameterError(
            f"axis must be 0, 1 or 2 (the axis of (Z, H, W) to slice along), got {axis!r}."
        )
    return list(np.moveaxis(pixels, axis, 0))
