"""Reading and preparing inputs for the Predictor's model (internal): one input, and batches
prepared in worker processes straight into shared-memory buffers.

:func:`load_item` reads one input (a file, an array, a MedicalImage); :class:`Preparer`
turns it into the model's input (``preprocess``, resize, channels, dtype);
:func:`slices_of` takes a volume's slices with the one volume helper,
:func:`m1vision.volume.volume_slices`.

On a GPU the model's Python-side dispatch runs in this process; preparing images in threads
beside it (PNG decoding, ``preprocess``, resize) competes with it for the GIL, and the overlap
is lost (measured on an H100: 1.21x the slower stage alone with threads). With
:class:`SharedBatches` worker processes prepare the images and write each one into a ring of a
few shared-memory batch buffers (:mod:`multiprocessing.shared_memory`): no pixel array is
pickled; this process wraps a buffer as a NumPy array and hands it to the model, then gives
the slot back.

The ring and the workers live as long as the :class:`~m1vision.inference.Predictor` that
made them (starting 15 workers costs more than preparing a batch); they are released by
``Predictor.close()``, when the Predictor is garbage collected, at exit, and at once on any
error or interrupt during a run (a running task then finishes before the buffers are
unlinked, so nothing writes into freed memory and no shared memory is left behind).
"""

from __future__ import annotations

import collections
import contextlib
import math
import multiprocessing
import os
import pickle
import sys
import weakref
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import shared_memory

import cv2
import numpy as np

from m1vision._checks import available_cores, check_image
from m1vision.batch._executors import start_workers, worker_signals
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError
from m1vision.inference._predictions import _describe


def load_item(item) -> np.ndarray:
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
    raise InvalidTypeError(
        f"each input must be a path, a numpy.ndarray or a MedicalImage, got {type(item).__name__}. "
        "Fix: pass file paths, arrays or images read with m1vision.io.read_any."
    )


def load_checked(item, steps=None) -> np.ndarray:
    """Read ``item`` (a path or an array), apply ``steps`` (a callable or None) and check
    that a 2-D picture came out: what the CPU does for every input, on either path."""
    image = load_item(item)
    if steps is not None:
        image = steps(image)
        if not isinstance(image, np.ndarray):
            raise InvalidTypeError(
                f"preprocess must return a numpy.ndarray, got {type(image).__name__}. Fix: make "
                "it return the prepared image (a MedicalImage: its .pixels)."
            )
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise InvalidImageError(
            f"input of shape {image.shape} looks like a (Z, H, W) volume; Predictor "
            "classifies 2-D images: pass its slices (list(volume))."
        )
    return check_image(image, name="input image")


class Preparer:
    """What :meth:`Predictor.prepare` does, without the model: picklable when ``preprocess``
    is, so worker processes can run it (the workers below)."""

    def __init__(self, preprocess, input_shape, input_dtype):
        self.preprocess = preprocess
        self.input_shape = input_shape
        self.input_dtype = input_dtype

    def __call__(self, item) -> np.ndarray:
        image = load_checked(item, self.preprocess)
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


def slices_of(image, axis) -> list[np.ndarray]:
    """The 2-D slices of a MedicalImage volume along ``axis`` (views, not copies)."""
    from m1vision.volume import volume_slices

    if not isinstance(getattr(image, "pixels", None), np.ndarray):
        raise InvalidTypeError(
            f"image must be a MedicalImage volume (e.g. from m1vision.io.read_nifti), got "
            f"{type(image).__name__}; wrap an array as MedicalImage(pixels, spacing=...)."
        )
    return volume_slices(image, axis=axis, hint="for 2-D images use Predictor.predict")


_WORKER: dict = {}  # in a worker process: what _init gave it


def start_method() -> str:
    """``fork`` on Linux (workers start in milliseconds), ``spawn`` elsewhere (macOS)."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def picklable(obj) -> str | None:
    """``None`` if ``obj`` pickles (a worker process can receive it), else why not."""
    try:
        pickle.dumps(obj)
    except Exception as exc:  # lambdas, closures, local classes, open handles...
        return f"{type(exc).__name__}: {exc}"
    return None


def shm_room(nbytes: int) -> bool:
    """Whether /dev/shm (Linux) has room for ``nbytes`` (a full tmpfs would kill a worker
    with SIGBUS on its first write, not raise)."""
    if not sys.platform.startswith("linux"):
        return True
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize > 2 * nbytes


def _attach(name: str) -> shared_memory.SharedMemory:
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    return shared_memory.SharedMemory(name=name)


def _init(prepare, names, batch_shape, dtype) -> None:
    """A worker's start: Ctrl-C as Python's default, one OpenCV thread (the workers run in
    parallel), the ring attached."""
    import cv2

    worker_signals()
    cv2.setNumThreads(1)
    shms = [_attach(name) for name in names]
    _WORKER.update(
        prepare=prepare,
        shms=shms,  # kept: the views below borrow their memory
        views=[np.ndarray(batch_shape, dtype=dtype, buffer=s.buf) for s in shms],
    )


def _fill(slot: int, start: int, items: list, spill: bool = False):
    """Prepare ``items`` into rows ``start...`` of buffer ``slot``; return the failures
    ``[(row, exception)]``. With ``spill``, also the images of another shape or dtype than
    the buffer's (returned as ``{row: array}``, pickled: decoded sizes may differ)."""
    out = _WORKER["views"][slot]
    prepare = _WORKER["prepare"]
    failures = []
    spilled = {}
    for row, item in enumerate(items, start):
        try:
            image = prepare(item)
            if spill and (image.shape != out.shape[1:] or image.dtype != out.dtype):
                spilled[row] = image
                continue
            if image.shape != out.shape[1:]:
                raise InvalidImageError(
                    f"a prepared input has shape {image.shape}, the model's input is "
                    f"{out.shape[1:]}."
                )
            out[row] = image
        except Exception as exc:
            if picklable(exc) is not None:
                exc = RuntimeError(f"{type(exc).__name__}: {exc}")
            failures.append((row, exc))
    return (failures, spilled) if spill else failures


def _release(pool: ProcessPoolExecutor, shms: list) -> None:
    """Stop the workers (a running task ends first), then close and unlink the buffers."""
    try:
        pool.shutdown(wait=True, cancel_futures=True)
    finally:
        for shm in shms:
            with contextlib.suppress(BufferError):  # a view still borrows it: freed with it
                shm.close()
            with contextlib.suppress(FileNotFoundError):
                shm.unlink()


class SharedBatches:
    """Worker processes and a ring of ``slots`` shared-memory batch buffers.

    Parameters
    ----------
    prepare : callable
        Picklable ``item -> ndarray`` of ``batch_shape[1:]`` and ``dtype``.
    batch_shape : tuple
        ``(batch_size, H, W, C)``.
    dtype : numpy dtype
    slots : int
        Buffers in the ring: one being computed while the others are filled.
    workers : int
        Worker processes.
    """

    def __init__(self, prepare, *, batch_shape, dtype, slots: int, workers: int):
        self.batch_shape = tuple(batch_shape)
        self.dtype = np.dtype(dtype)
        self.workers = workers
        self.method = start_method()
        nbytes = max(1, math.prod(self.batch_shape) * self.dtype.itemsize)
        self._shms: list = []
        try:
            for _ in range(slots):
                self._shms.append(shared_memory.SharedMemory(create=True, size=nbytes))
            self._views = [
                np.ndarray(self.batch_shape, dtype=self.dtype, buffer=s.buf) for s in self._shms
            ]
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context(self.method),
                initializer=_init,
                initargs=(prepare, [s.name for s in self._shms], self.batch_shape, self.dtype),
            )
            start_workers(self._pool)  # now, with OpenCV's threads and a Ctrl-C held
        except BaseException:
            for shm in self._shms:
                shm.close()
                shm.unlink()
            raise
        self.prepare_key = None  # what the owner built it for
        self._finalizer = weakref.finalize(self, _release, self._pool, self._shms)

    @property
    def names(self) -> list[str]:
        """The shared-memory blocks' names (``/dev/shm/<name>`` on Linux)."""
        return [s.name for s in self._shms]

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and not getattr(self._pool, "_broken", False)

    def close(self) -> None:
        """Stop the workers and unlink the buffers (idempotent)."""
        self._views = []
        self._finalizer()

    def batches(self, items: list, describe):
        """Yield each batch of ``items`` as a view of its buffer, in order, prepared up to
        ``slots - 1`` batches ahead; a view is valid until the next one is asked for.

        The first failing input of a batch raises its error, with a note naming it
        (``describe(item)``); any error or interrupt closes the workers and buffers.
        """
        return self._batches(items, describe, spill=False)

    def staged_batches(self, items: list, describe):
        """As :meth:`batches` for decoded inputs of possibly different sizes: yield each
        batch as ``[(rows, array)]`` groups, the buffer's view first (the rows of the
        buffer's shape and dtype; valid until the next batch is asked for), then the
        other inputs grouped by shape (sent back from the workers)."""
        from m1vision.inference._device_runner import group_by_shape

        for view, spilled in self._batches(items, describe, spill=True):
            if not spilled:
                yield [(np.arange(len(view)), view)]
                continue
            rows = [r for r in range(len(view)) if r not in spilled]
            groups = [(np.asarray(rows), view[rows])] if rows else []
            others = sorted(spilled)
            for sub, stacked in group_by_shape([spilled[r] for r in others]):
                groups.append((np.asarray([others[i] for i in sub]), stacked))
            yield groups

    def _batches(self, items: list, describe, *, spill: bool):
        bs = self.batch_shape[0]
        n = len(items)
        n_batches = -(-n // bs)
        ring = len(self._views)
        chunk = max(1, -(-bs // self.workers))  # a batch spread over all workers
        pending: dict[int, list] = {}

        def submit(b: int) -> None:
            start, count = b * bs, min(bs, n - b * bs)
            rows = range(0, count, chunk)
            pending[b] = [
                self._pool.submit(
                    _fill, b % ring, r, items[start + r : start + min(r + chunk, count)], spill
                )
                for r in rows
            ]

        try:
            for b in range(min(ring, n_batches)):
                submit(b)
            for b in range(n_batches):
                failures, spilled = [], {}
                for future in pending.pop(b):
                    result = future.result()
                    if spill:
                        result, extra = result
                        spilled.update(extra)
                    failures.extend(result)
                if failures:
                    row, exc = min(failures, key=lambda f: f[0])
                    i = b * bs + row
                    exc.add_note(f"while preparing input {i}: {describe(items[i])}")
                    raise exc
                view = self._views[b % ring][: min(bs, n - b * bs)]
                yield (view, spilled) if spill else view
                if b + ring < n_batches:  # the slot just computed is free again
                    submit(b + ring)
        except BaseException:
            for futures in pending.values():
                for future in futures:
                    future.cancel()
            self.close()
            raise


def thread_batches(
    items,
    prepare,
    *,
    batch_size: int,
    workers: int,
    prefetch: int,
    record_errors: bool,
    grouped: bool = False,
):
    """Yield ``(indices, batch or None, failures)`` with ``items`` prepared by ``prepare`` in
    ``workers`` threads, up to ``prefetch`` batches ahead of the consumer. ``grouped`` (a
    device plan's decode): the batch is a list of ``(rows, stacked same-shape arrays)``
    groups; otherwise inputs of different shapes in one batch raise InvalidImageError."""
    from m1vision.inference._device_runner import group_by_shape
    from m1vision.inference._predictions import _label

    n = len(items)
    bs = batch_size
    pending = collections.deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="m1vision-prepare")
    next_item = 0

    def fill(upto: int):
        nonlocal next_item
        while next_item < min(n, upto):
            pending.append((next_item, pool.submit(prepare, items[next_item])))
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
            fill(start + bs + bs * prefetch)
            if grouped:
                yield indices, (group_by_shape(arrays) if arrays else None), failures
                continue
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


def closing(outputs, batches):
    """``outputs`` (a generator over ``batches``) that closes ``batches`` when it is closed
    (an error or interrupt releases the workers and buffers at once)."""
    try:
        yield from outputs
    finally:
        outputs.close()
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def processes_refused(p, items: list, device_plan=None, staging=None) -> str | None:
    """``None`` if the Predictor ``p`` prepares this call in processes, else why not ("" when
    threads were asked for or are the plain choice). ``executor="processes"`` raises instead.
    With a ``device_plan`` the workers decode into buffers of the ``staging`` shape."""
    if p.executor == "threads":
        return ""
    forced = p.executor == "processes"
    if not forced:
        if p.device.kind != "gpu":
            return ""  # on a CPU the model uses the cores itself; threads do
        cores = available_cores()
        if cores < 8:
            return f"{cores} cores (auto uses processes from 8)"
        if len(items) < 2 * p.batch_size or not all(
            isinstance(i, str | os.PathLike) for i in items
        ):
            return ""
    why = None
    nbytes = ring_bytes(p, staging)
    if device_plan is None and any(v is None for v in p.input_shape[1:]):
        why = f"the model's input size is open ({p.input_shape[1:]})"
    elif (bad := picklable(device_plan or p._preparer)) is not None:
        why = (
            f"preprocess cannot be sent to a worker process ({bad}); use a "
            "m1vision.pipeline.Pipeline or a module-level function"
        )
    elif not shm_room(nbytes):
        why = f"/dev/shm has no room for {nbytes / 2**20:.0f} MiB of batch buffers"
    if forced and why:
        raise InvalidParameterError(
            f"executor='processes' cannot be used: {why}. Pass executor='threads' (or "
            "'auto', which falls back to threads and says why in Predictions.executor)."
        )
    return why


def ring_bytes(p, staging=None) -> int:
    """Bytes of the Predictor ``p``'s ring of shared-memory batch buffers."""
    shape, dtype = staging or (p.input_shape[1:], p.input_dtype)
    pixels = 1
    for v in shape:
        pixels *= v or 0
    return (p.prefetch + 1) * p.batch_size * pixels * np.dtype(dtype).itemsize
