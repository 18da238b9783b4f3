"""The Predictor: device, batching, the compiled inference call, predict (internal)."""

from __future__ import annotations

import collections
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from m1vision._checks import check_int
from m1vision.batch import progress as _progress
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.inference import _backend
from m1vision.inference._device import DeviceChoice, select_device
from m1vision.inference._models import (
    SavedModelClassifier,
    _output_spec,
    load_model_identified,
    model_input_spec,
)
from m1vision.inference._predictor._inputs import _load_item, _Preparer
from m1vision.inference._predictor._processes import _ProcessPreparation
from m1vision.inference._predictor._results import Predictions, _label, _softmax
from m1vision.inference._predictor._volumes import _VolumesAndFolders

# how a model's output is read: probabilities as they are, logits through a softmax
_KIND = {"probabilities": False, "logits": True, None: None}


class Predictor(_ProcessPreparation, _VolumesAndFolders):
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
        #: The SHA-256 of the model's bytes as they were loaded (file or SavedModel folder,
        #: the one rule of m1vision._hashing); None for a Keras model object.
        self.model_sha256 = None
        if isinstance(model, str | os.PathLike):
            self.model_path = Path(model)
            model, self.model_sha256 = load_model_identified(model)
        elif isinstance(model, SavedModelClassifier):
            self.model_path = Path(model.path)
            self.model_sha256 = model.sha256
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
                from m1vision.pipeline import collect_inputs

                return [source for source, _ in collect_inputs(images)]
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
        with _progress(len(items), show=show, desc="predict") as bar:
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
