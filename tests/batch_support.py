"""Shared by tests/test_batch.py, tests/test_resume.py and the subprocesses they start: a
registered slow step and a registered gate.

Importable by a child process (``sys.path`` gets ``tests/``), so the parent and the child
build the same pipeline.
"""

from __future__ import annotations

import time
from pathlib import Path

from m1vision.pipeline import Canny, Pipeline, Step, ToUint8, register_step


@register_step("test_sleep")
class Sleep(Step):
    """Wait ``seconds``, then return the image: a batch slow enough to be killed mid-run."""

    def __init__(self, *, seconds: float = 0.0):
        self.seconds = float(seconds)

    def __call__(self, image):
        time.sleep(self.seconds)
        return image


def slow_pipeline(seconds: float) -> Pipeline:
    return Pipeline([Sleep(seconds=seconds), ToUint8(), Canny(low=30, high=90)])


@register_step("test_gate")
class Gate(Step):
    """Hold every image until the file ``release`` exists: a run that keeps its output folder
    (and its lock) for exactly as long as the test wants, whatever the machine's load."""

    def __init__(self, *, release: str = "", timeout_s: float = 120.0):
        self.release = str(release)
        self.timeout_s = float(timeout_s)

    def __call__(self, image):
        deadline = time.monotonic() + self.timeout_s
        while not Path(self.release).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.release} was not created within {self.timeout_s} s")
            time.sleep(0.01)
        return image


def gated_pipeline(release) -> Pipeline:
    """The edges job, each image held until ``release`` exists (see :class:`Gate`)."""
    return Pipeline([Gate(release=str(release)), ToUint8(), Canny(low=30, high=90)])
