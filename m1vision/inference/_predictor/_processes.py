"""Preparation in worker processes into shared-memory batch buffers (internal).

A mixin of :class:`~m1vision.inference.Predictor`: which executor prepares a call's batches
(``executor="auto" | "threads" | "processes"``), and the ring of shared-memory buffers the
workers of :mod:`m1vision.inference._procprep` fill.
"""

from __future__ import annotations

import os

import numpy as np

from m1vision.errors import InvalidParameterError
from m1vision.inference._predictor._results import _label


class _ProcessPreparation:
    """Predictor methods that choose and run the preparation of batches in processes."""

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
        from m1vision._checks import default_workers
        from m1vision.inference._procprep import SharedBatches

        # the default count, less the core of the process that feeds the model
        workers = self.workers if self._workers_given else max(1, default_workers() - 1)
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
