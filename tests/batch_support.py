"""Shared by tests/test_batch.py and the subprocess it kills: a registered slow step.

Importable by a child process (``sys.path`` gets ``tests/``), so the parent and the child
build the same pipeline.
"""

from __future__ import annotations

import time

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
