"""m1vision: OpenCV + Keras image work on medical images, native and fast on Apple Silicon.

Read CT/MR DICOM series, NIfTI volumes and 16-bit PNG/TIFF as one
:class:`~m1vision.io.MedicalImage`, explore them in Jupyter with sliders (window, blur, Canny,
three planes), run preprocessing pipelines, classification and Grad-CAM over images, volumes
and cohorts on one batch engine, and record experiments that reproduce months later.

Where things are. Each room sits on a floor and imports only from its own floor and those
below (tests/test_architecture.py checks it; docs/architecture.md explains the floors):

=====  ================  ==========================================================================
floor  room              what it holds
=====  ================  ==========================================================================
0      ``errors``        every error class m1vision raises
0      ``_checks``       one checker per operation and per fact (image, volume, axis, workers)
0      ``_progress``     the one progress bar
0      ``_devices``      the Keras backends, their device names and GPUs
0      ``_platform``     this machine's platform and the known-good version pins
0      ``_atomic``       atomic, versioned writes; ``_resources``: where the bundled data is
0      ``_hashing``      the one SHA-256 rule for files, folders and models
0      ``geometry``      layout affines, spacing/affine checks, orientation letters, voxel<->RAS
1      ``io``            readers and writers (DICOM, series, NIfTI, PNG/TIFF) -> ``MedicalImage``
1      ``preprocess``    window, blur, Canny, CLAHE, resize, normalize
1      ``numerics``      the numerics self-test of a backend's device
2      ``draw``          overlays: edges, masks, heatmaps, boxes, contours
2      ``viz``           matplotlib figures
2      ``data``          the bundled samples and model
2      ``labels``        label maps in and out (NIfTI, DICOM SEG), statistics, comparison
2      ``synthetic``     generated phantoms, their label maps, DICOM series for tests and notebooks
2      ``_resample``     resampling and reorienting volumes (public through :mod:`m1vision.volume`)
3      ``batch``         the one batch engine: collect, plan, resume, execute, report
3      ``volume``        a 2-D function over every slice of a volume, resampling, reorienting;
                         the volume input kinds
3      ``pipeline``      serialisable step pipelines and :meth:`Pipeline.run`
3      ``inference``     :class:`~m1vision.inference.Predictor` (classification),
                         :class:`~m1vision.inference.Segmenter` (label maps), devices, models
3      ``views``         what the explorers show, without widgets: pictures, caches, PNG, state
                         as data (``render`` and ``planes``: their first import paths)
3      ``_record``       the experiment record's format and the explorer views it keeps
3      ``cohort``        label statistics of a folder of image/label pairs: one CSV, resumable
4      ``explain``       Grad-CAM of images and volumes
4      ``widgets``       the ipywidgets explorers
4      ``experiment``    records of a run and their reproduction
5      ``doctor``        the environment doctor (``binarch``: compiled files' architectures)
5      ``demo``, ``cli``  the demo job and the command line (``python -m m1vision``)
=====  ================  ==========================================================================

``import m1vision`` is light: it loads only :mod:`m1vision.errors` (neither NumPy nor
OpenCV). Every public submodule is imported on first attribute access, so
``m1vision.preprocess.canny`` works after a bare ``import m1vision``; NumPy and OpenCV load
with the first of them, TensorFlow with :mod:`m1vision.inference`, ipywidgets with
:mod:`m1vision.widgets`, matplotlib with :mod:`m1vision.viz`. The error classes are
importable from here too.

Color images are BGR (OpenCV's order) throughout.
"""

from __future__ import annotations

import importlib
import pkgutil

from m1vision import errors
from m1vision.errors import *  # noqa: F403  (every error class, listed by errors.__all__)

__version__ = "0.1.0"

#: The public submodules: every module and package of m1vision not starting with "_".
_SUBMODULES = tuple(
    sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)  # noqa: F405
        if not info.name.startswith("_")
    )
)

__all__ = [*errors.__all__, "__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"m1vision.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'm1vision' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
