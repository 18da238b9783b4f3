"""Feeding decoded batches to the model's device (internal): stage, prepare there, call.

The transfer half of ``prepare_on="device"``: :class:`DeviceRunner` copies decoded batches
to the model's device in their decoded dtype (on CUDA through page-locked memory on a copy
stream), runs a :class:`~m1vision.inference._device_prep.DevicePlan`'s device part and the
model there, and reads the next batch in a background thread while the device works.
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from m1vision.inference._clock import NO_CLOCK, clock_of


class DeviceRunner:
    """Stage decoded batches on the model's device and run the device part and the model.

    :meth:`stage` copies a batch (groups of same-shape decoded images) to the device in its
    decoded dtype (``uint8``: 4x fewer bytes than float32); on CUDA (torch) through pinned
    memory, asynchronously on a copy stream, so the next batch's copy overlaps this batch's
    compute. :meth:`finish` runs the device part and the model and returns the output as
    NumPy, rows in the batch's order. :meth:`run` reads and stages the batches ahead of the
    model: in a background thread (``threaded``, the default), so that waiting for the
    workers and the host's copy into page-locked memory (about 7 ms for a batch of 128
    16-bit 512x512 images) overlap the calls that feed the device; or in the calling thread
    between two batches (``threaded = False``, and always while a stage clock times it).

    ``compiled`` is the Predictor's :class:`m1vision.inference._backend.Compiled`.
    """

    #: Stage the batches in a background thread (see the class docstring).
    threaded = True

    def __init__(self, compiled, device_plan):
        self.compiled = compiled
        self.plan = device_plan
        self.backend = compiled.backend
        self._stream = None
        self._pinned: dict = {}
        self._turn: dict = {}
        if self.backend == "torch":
            import torch

            dev = compiled._torch_device
            if dev.type == "cuda":
                self._stream = torch.cuda.Stream(dev)

    def stage(self, groups, *, owned: bool):
        """``groups``: ``[(rows, array (n, H, W, C))]``; ``owned=False`` when an array is a
        view of a buffer reused after this call (copied out before it returns)."""
        staged = []
        for rows, arr in groups:
            dtype = arr.dtype.name
            staged.append((np.asarray(rows), self._put(arr, owned), dtype))
        clock_of(self).mark("stage")
        return staged

    def _put(self, arr: np.ndarray, owned: bool):
        backend = self.backend
        if backend == "torch":
            import torch

            host = arr.view(np.int16) if arr.dtype == np.uint16 else arr
            if self._stream is None:
                t = torch.from_numpy(np.ascontiguousarray(host) if owned else np.array(host))
                return t.to(self.compiled._torch_device), None
            pinned, done = self._pinned_buffer(host)
            np.copyto(pinned.numpy(), host)  # the view is free once this returns
            with torch.cuda.stream(self._stream):
                t = pinned.to(self.compiled._torch_device, non_blocking=True)
                done.record(self._stream)
            return t, done
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.device(self.compiled.device):
                return tf.identity(tf.convert_to_tensor(np.array(arr))), None
        if backend == "jax":
            import jax

            return jax.device_put(np.array(arr), self.compiled._jax_device), None
        raise RuntimeError(f"unsupported Keras backend {backend!r}")

    def _pinned_buffer(self, host: np.ndarray):
        """One of two page-locked buffers of ``host``'s shape and dtype, taken in turn (a
        buffer is reused once the copy from it has finished), and its copy event."""
        import torch

        key = (host.shape, host.dtype.str)
        ring = self._pinned.get(key)
        if ring is None:
            if len(self._pinned) > 8:  # many decoded sizes: keep the memory bounded
                self._pinned.clear()
            dtype = torch.from_numpy(host[:0].reshape(-1)).dtype
            ring = self._pinned[key] = [
                [torch.empty(host.shape, dtype=dtype, pin_memory=True), torch.cuda.Event()]
                for _ in range(2)
            ]
            self._turn[key] = 0
        i = self._turn[key] = 1 - self._turn[key]
        buffer, done = ring[i]
        done.synchronize()  # the copy that last read this buffer has finished
        return buffer, done

    def finish(self, staged) -> np.ndarray:
        """The device part and the model on a staged batch: NumPy output."""
        import keras

        backend = self.backend
        device = self.compiled.device
        if backend == "torch":
            import torch

            ctx = torch.no_grad()
        else:
            import contextlib

            ctx = contextlib.nullcontext()
        with ctx, keras.device(device) if backend != "tensorflow" else _tf_device(device):
            parts, order = [], []
            for rows, (x, event), dtype in staged:
                if event is not None:
                    import torch

                    current = torch.cuda.current_stream(x.device)
                    current.wait_event(event)
                    x.record_stream(current)
                parts.append(self.plan.apply(x, dtype))
                order.append(rows)
            ops = keras.ops
            batch = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)
            rows = np.concatenate(order)
            if len(parts) > 1 or not np.array_equal(rows, np.arange(len(rows))):
                batch = ops.take(batch, np.argsort(rows, kind="stable"), axis=0)
            clock_of(self).mark("device preparation")
            return self._model(batch)

    def _model(self, x) -> np.ndarray:
        c = self.compiled
        if self.backend == "torch":
            y = c.model(x, training=False)
            clock_of(self).mark("model")
            y = y.detach().to("cpu").numpy()
            clock_of(self).mark("download")
            return y
        if self.backend == "tensorflow":
            return c._fn(x).numpy()
        import jax

        model = c.model
        trainable = jax.device_put([v.value for v in model.trainable_variables], c._jax_device)
        frozen = jax.device_put([v.value for v in model.non_trainable_variables], c._jax_device)
        with c._lock:
            out = c._fn(trainable, frozen, x)
        return np.asarray(out)

    def run(self, batches, *, owned: bool):
        """Yield the model's output per batch of ``batches`` (each ``[(rows, array)]``),
        with the next batch staged while this one is computed.

        Threaded, ``batches`` is read (and staged) by the background thread alone, one batch
        ahead of the queue; an error there is raised here, and closing this generator stops
        and joins the thread before it returns, so the caller may then close ``batches``.
        """
        if not self.threaded or clock_of(self) is not NO_CLOCK:
            pending = None
            for groups in batches:
                staged = self.stage(groups, owned=owned)
                if pending is not None:
                    yield self.finish(pending)
                pending = staged
            if pending is not None:
                yield self.finish(pending)
            return
        ahead: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def feed() -> None:
            try:
                for groups in batches:
                    if not hand_over((_STAGED, self.stage(groups, owned=owned))):
                        return
                hand_over((_END, None))
            except BaseException as exc:  # raised again in the consuming thread
                hand_over((_FAILED, exc))

        feeder = threading.Thread(target=feed, name="m1vision-stage", daemon=True)
        feeder.start()
        try:
            while True:
                kind, value = ahead.get()
                if kind is _END:
                    return
                if kind is _FAILED:
                    raise value
                yield self.finish(value)
        finally:
            stop.set()
            feeder.join()


_STAGED, _END, _FAILED = object(), object(), object()  # what the staging thread hands over


def _tf_device(name: str):
    import tensorflow as tf

    return tf.device(name)


def group_by_shape(arrays) -> list:
    """``[(rows, stacked array)]``: the arrays of one batch grouped by shape and dtype."""
    groups: dict = {}
    for row, a in enumerate(arrays):
        groups.setdefault((a.shape, a.dtype.str), []).append(row)
    return [(rows, np.stack([arrays[r] for r in rows])) for rows in groups.values()]


__all__ = ["DeviceRunner", "group_by_shape"]
