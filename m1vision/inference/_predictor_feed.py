"""How a Predictor feeds its model (internal): where a call prepares its inputs and in what.

The choice of executor (threads of this process, or worker processes writing into
shared-memory batch buffers) and of the place of the tensor maths (the CPU, or the model's
device), and the batches they give. What preparing one input means is
:mod:`m1vision.inference._prepare`'s; the device part, :mod:`m1vision.inference._device_prep`'s,
fed by :mod:`m1vision.inference._device_runner`.
"""

from __future__ import annotations

import numpy as np

from m1vision._checks import default_workers
from m1vision.errors import InvalidParameterError
from m1vision.inference import _device_prep, _prepare
from m1vision.inference._device_runner import DeviceRunner
from m1vision.inference._predictions import _label


class PredictorFeed:
    """The feeding half of :class:`~m1vision.inference.Predictor`: its preparers, device
    plans, executors and batches, and the workers it keeps between calls."""

    @property
    def _preparer(self) -> _prepare.Preparer:
        cached = self._cached_preparer
        if cached is None or cached.preprocess is not self.preprocess:
            cached = self._cached_preparer = _prepare.Preparer(
                self.preprocess, self.input_shape, self.input_dtype
            )
        return cached

    def _device_plan(self):
        """``(DevicePlan or None, why not)`` for the current ``preprocess`` (cached)."""
        cached = self._cached_plan
        if cached is None or cached[0] is not self.preprocess:
            cached = self._cached_plan = (
                self.preprocess,
                _device_prep.plan(self.preprocess, self.input_shape, self.input_dtype),
            )
        return cached[1]

    def _where(self):
        """Where this call prepares: ``(DevicePlan or None, words)``."""
        if self.prepare_on == "cpu":
            return None, "prepared on the CPU"
        if self.prepare_on == "auto" and self.device.kind != "gpu":
            return None, "prepared on the CPU (the model runs on the CPU)"
        device_plan, why = self._device_plan()
        if device_plan is None:
            if self.prepare_on == "device":
                raise InvalidParameterError(
                    f"prepare_on='device' cannot be used: {why}. Pass prepare_on='cpu' "
                    "(or 'auto'), or end preprocess with window/normalize/resize steps."
                )
            return None, f"prepared on the CPU ({why})"
        words = f"decoded on the CPU, {device_plan.describe()} on {self.device.name}"
        if why:
            words += f" (CPU up to: {why})"
        return device_plan, words

    def _device_runner(self, device_plan):
        runner = self._runner
        if runner is None or runner.plan is not device_plan:
            runner = self._runner = DeviceRunner(self._fn, device_plan)
        return runner

    def _batches(self, items, *, record_errors: bool, prepare=None):
        """Yield ``(indices, batch or None, failures)`` prepared in threads
        (:func:`m1vision.inference._prepare.thread_batches`)."""
        return _prepare.thread_batches(
            items,
            prepare or self.prepare,
            batch_size=self.batch_size,
            workers=self.workers,
            prefetch=self.prefetch,
            record_errors=record_errors,
            grouped=prepare is not None,
        )

    def _prepared_outputs(self, items: list):
        """The model's raw outputs per batch of ``items`` (a generator), prepared on the
        executor chosen (see ``executor``) and where ``prepare_on`` says, and the words."""
        device_plan, where = self._where()
        staging = None
        if device_plan is not None:
            try:
                first = device_plan.decode(items[0])  # the staging shape and dtype
            except Exception as exc:
                exc.add_note(f"while preparing input 0: {_label(items[0])}")
                raise
            staging = (first.shape, first.dtype)
        why = self._processes_refused(items, device_plan, staging)
        if why is None:
            shared = self._shared_batches(device_plan, staging)
            desc = (
                f"processes ({shared.workers} workers, {shared.method}, "
                f"{len(shared.names)} shared-memory batch buffers)"
            )
        else:
            desc = f"threads ({self.workers} workers)"
            if why:
                desc += f"; processes not used: {why}"
        desc += f"; {where}"
        if device_plan is None:
            if why is None:
                batches = shared.batches(items, _label)
            else:
                batches = (b for _, b, _ in self._batches(items, record_errors=False))
            return _prepare.closing((self._fn(b) for b in batches), batches), desc
        runner = self._device_runner(device_plan)
        if why is None:
            batches = shared.staged_batches(items, _label)
            return _prepare.closing(runner.run(batches, owned=False), batches), desc
        batches = (
            b for _, b, _ in self._batches(items, record_errors=False, prepare=device_plan.decode)
        )
        return _prepare.closing(runner.run(batches, owned=True), batches), desc

    def _processes_refused(self, items: list, device_plan=None, staging=None) -> str | None:
        """See :func:`m1vision.inference._prepare.processes_refused`."""
        return _prepare.processes_refused(self, items, device_plan, staging)

    def _shared_batches(self, device_plan=None, staging=None):

        # the default count, less the core of the process that feeds the model
        workers = self.workers if self._workers_given else max(1, default_workers() - 1)
        shape = (self.batch_size, *(staging[0] if staging else self.input_shape[1:]))
        dtype = staging[1] if staging else self.input_dtype
        key = (id(self.preprocess), device_plan is not None, np.dtype(dtype).str)
        shared = self._shared
        if (
            shared is None
            or not shared.alive
            or shared.batch_shape != shape
            or shared.workers != workers
            or len(shared.names) != self.prefetch + 1
            or shared.prepare_key != key
        ):
            self.close()
            shared = _prepare.SharedBatches(
                device_plan.decode if device_plan is not None else self._preparer,
                batch_shape=shape,
                dtype=dtype,
                slots=self.prefetch + 1,
                workers=workers,
            )
            shared.prepare_key = key
            self._shared = shared
        return shared

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
