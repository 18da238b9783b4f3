"""Predictor: batched, overlapped prediction on any Keras 3 backend; its results and files.

Private parts: ``_core`` (the Predictor: device, batching, the compiled call, predict),
``_processes`` (preparation in worker processes into shared-memory batches), ``_volumes``
(predict_volume and predict_folder), ``_inputs`` (reading and preparing one input) and
``_results`` (Predictions).
"""

from m1vision.inference._predictor._core import Predictor
from m1vision.inference._predictor._inputs import _volume_slices
from m1vision.inference._predictor._results import Predictions

__all__ = ["Predictions", "Predictor", "_volume_slices"]
