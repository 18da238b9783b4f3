"""m1vision: OpenCV + TensorFlow image pipelines for medical images, native on Apple Silicon.

The flow, one module each::

    io -> preprocess -> pipeline -> inference -> viz / widgets -> experiment
    (data: samples)     (draw: overlays) (explain: Grad-CAM) (render: the explorers' compute)
    batch: the one engine of every batch run (Pipeline.run, predictions, volumes)
    labels: label maps in and out (NIfTI, DICOM SEG), statistics, comparison
    doctor and the command line (python -m m1vision) beside them

``import m1vision`` is light: it loads NumPy and OpenCV only. TensorFlow loads on the
first use of :mod:`m1vision.inference`, ipywidgets with :mod:`m1vision.widgets`, matplotlib
with :mod:`m1vision.viz`. Submodules are imported on first attribute access, so
``m1vision.preprocess.canny`` works after a bare ``import m1vision``.

Color images are BGR (OpenCV's order) throughout.
"""

from __future__ import annotations

import importlib

from m1vision.errors import (
    BinaryFormatError,
    DeviceUnavailableError,
    ImageReadError,
    ImageWriteError,
    InvalidImageError,
    InvalidParameterError,
    JobMismatchError,
    M1VisionError,
    ModelLoadError,
    OutputExistsError,
    PipelineConfigError,
    PipelineStepError,
    RecordError,
)

__version__ = "0.1.0"

_SUBMODULES = (
    "batch",
    "binarch",
    "data",
    "doctor",
    "draw",
    "errors",
    "experiment",
    "explain",
    "geometry",
    "inference",
    "io",
    "labels",
    "pipeline",
    "preprocess",
    "render",
    "synthetic",
    "viz",
    "volume",
    "widgets",
)

__all__ = [
    "BinaryFormatError",
    "DeviceUnavailableError",
    "ImageReadError",
    "ImageWriteError",
    "InvalidImageError",
    "InvalidParameterError",
    "JobMismatchError",
    "M1VisionError",
    "ModelLoadError",
    "OutputExistsError",
    "PipelineConfigError",
    "PipelineStepError",
    "RecordError",
    "__version__",
    *_SUBMODULES,
]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"m1vision.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'm1vision' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
