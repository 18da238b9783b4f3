"""Serialisable preprocessing pipelines, and batch runs over folders that scale out.

A :class:`Pipeline` is a list of steps. Each step keeps its parameters (checked when it is
built, so a bad pipeline fails at once, not on file 3000) and is called on an image, as in
MONAI's transforms::

    >>> import numpy as np
    >>> from m1vision.pipeline import Canny, GaussianBlur, Pipeline, ToGray
    >>> p = Pipeline([ToGray(), GaussianBlur(ksize=5, sigma=1.0), Canny(low=50, high=150)])
    >>> p(np.zeros((64, 64, 3), np.uint8)).shape
    (64, 64)

A pipeline is data: :meth:`Pipeline.to_json` / :meth:`Pipeline.from_json` (and ``to_dict`` /
``from_dict``) round-trip exactly, so it can be saved beside the results it made, put in an
experiment record, or sent to other processes::

    >>> Pipeline.from_json(p.to_json()) == p
    True

:meth:`Pipeline.run` applies a pipeline to every image of files and folders and writes the
results, in parallel on the local cores, or on any :class:`concurrent.futures.Executor`
(a process pool, a Dask cluster), and returns a :class:`BatchReport`.

Built-in steps (the registered name, then the class; each wraps :mod:`m1vision.preprocess`):

================  ===============================================================================
``to_gray``       :class:`ToGray` ()
``to_uint8``      :class:`ToUint8` (mode="range", in_range=None, percentiles=(0.5, 99.5))
``window``        :class:`Window` (center=None, width=None, preset=None)
``gaussian_blur`` :class:`GaussianBlur` (ksize=5, sigma=0.0)
``canny``         :class:`Canny` (low=50, high=150, aperture=3, l2_gradient=False)
``auto_canny``    :class:`AutoCanny` (sigma=0.33, ignore_background=True) -> the edges
``clahe``         :class:`Clahe` (clip_limit=2.0, tile_grid=(8, 8))
``resize``        :class:`Resize` (size=(h, w), keep_aspect=True, letterbox=True, ...)
``normalize``     :class:`Normalize` (mode="unit") -> float32
``resample``      :class:`Resample` (spacing=(z, row, col), interpolation="linear"); volumes,
                  with ``inverse(result, like=source)``
``reorient``      :class:`Reorient` (orientation="RAS"); volumes, with ``inverse``
================  ===============================================================================

Errors
------
* Building a step with a bad parameter raises what :mod:`m1vision.preprocess` raises for it,
  :class:`~m1vision.errors.InvalidParameterError` (or ``TypeError`` for a wrong type), with
  the step's class in the message: ``GaussianBlur: ksize must be odd, got 4; use 3 or 5.``
* Rebuilding from a dict or JSON raises :class:`~m1vision.errors.PipelineConfigError` for
  anything wrong in it: an unknown step name (the message lists the known ones), an unknown
  parameter (it lists the accepted ones), a bad value (it names the step's index, name and
  parameters; the step's own error is the ``__cause__``), a wrong schema or version.
* A step that fails on an image raises :class:`~m1vision.errors.PipelineStepError` naming the
  step (index, name, parameters) and the shape and dtype of what it was given; the original
  exception is the ``__cause__``.

Your own steps
--------------
Subclass :class:`Step`, keep each parameter in an attribute of the same name as the
``__init__`` argument (JSON-representable: numbers, strings, bools, None, tuples/lists), and
register it::

    @register_step("invert")
    class Invert(Step):
        output_kind = None  # same dtype as its input

        def __call__(self, image):
            return np.iinfo(image.dtype).max - image

For :meth:`Pipeline.run` on other processes (a process pool, Dask workers), define custom steps
in an importable module and import it on the workers too: the pipeline travels as its dict,
and a worker rebuilds it from its own registry. (Steps defined in a notebook work with the
default thread pool.)

Where things are
----------------
A package; every public name is importable from ``m1vision.pipeline``:

============  =================================================================================
``_steps``    :class:`Step`, the registry (:func:`register_step`), the built-in steps
``_core``     :class:`Pipeline`: the steps, their order, the JSON round trip
``_run``      :meth:`Pipeline.run`'s job: its checks, the input kinds it accepts (volumes
              included), what it does with one input, and :func:`collect_inputs`
              (:mod:`m1vision.batch` has the flow, resume and the report)
============  =================================================================================

Each step's parameters are checked by the same checker as its function in
:mod:`m1vision.preprocess` (``m1vision._checks.check_canny`` for ``Canny`` and ``canny``...).
"""

from __future__ import annotations

from m1vision.batch import BatchItem, BatchReport
from m1vision.pipeline._core import Pipeline
from m1vision.pipeline._run import collect_inputs
from m1vision.pipeline._steps import (
    AutoCanny,
    Canny,
    Clahe,
    GaussianBlur,
    Normalize,
    Reorient,
    Resample,
    Resize,
    Step,
    ToGray,
    ToUint8,
    Window,
    get_step,
    register_step,
    step_names,
)

__all__ = [
    "AutoCanny",
    "BatchItem",
    "BatchReport",
    "Canny",
    "Clahe",
    "GaussianBlur",
    "Normalize",
    "Pipeline",
    "Reorient",
    "Resample",
    "Resize",
    "Step",
    "ToGray",
    "ToUint8",
    "Window",
    "collect_inputs",
    "get_step",
    "register_step",
    "step_names",
]

# The public classes and functions show (and pickle) under their public path.
for _name in __all__:
    if globals()[_name].__module__.startswith(__name__ + "."):  # not the engine's classes
        globals()[_name].__module__ = __name__
del _name
