"""Timing the stages of a call on a device (internal, for the GPU benchmarks): a clock that
waits for the device at each mark, and one that does nothing (the default)."""

from __future__ import annotations

import time


class StageClock:
    """Seconds per stage of a call: set as ``_stage_clock`` on a Segmenter (one
    :meth:`Segmenter.segment`, ``benchmarks/gpu_segment.py --stages``) or a device runner
    (``benchmarks/gpu_inference.py --stages``); each :meth:`mark` waits for the device
    (``sync``, e.g. ``torch.cuda.synchronize``) and adds the time since the previous mark to
    its stage. The waits stop the device from running ahead of the host, so the stages add up
    to more than an unclocked call takes."""

    def __init__(self, sync=None):
        self.sync = sync
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._last = time.perf_counter()

    def start(self) -> None:
        if self.sync is not None:
            self.sync()
        self._last = time.perf_counter()

    def mark(self, stage: str) -> None:
        if self.sync is not None:
            self.sync()
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self.counts[stage] = self.counts.get(stage, 0) + 1
        self._last = now


class _NoClock:
    def start(self) -> None:
        pass

    def mark(self, stage: str) -> None:
        pass


NO_CLOCK = _NoClock()


def clock_of(owner):
    """The ``_stage_clock`` of ``owner`` (a Segmenter, a device runner), or one that does
    nothing."""
    return getattr(owner, "_stage_clock", None) or NO_CLOCK
