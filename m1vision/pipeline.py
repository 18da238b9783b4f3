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
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from pathlib import Path, PurePath
from typing import Any, ClassVar

import cv2
import numpy as np

from m1vision import preprocess
from m1vision._checks import check_choice, check_int, check_number
from m1vision.errors import (
    ImageReadError,
    InvalidImageError,
    InvalidParameterError,
    OutputExistsError,
    PipelineConfigError,
    PipelineStepError,
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

#: The ``schema`` and ``version`` written by :meth:`Pipeline.to_dict`.
SCHEMA = "m1vision.pipeline"
SCHEMA_VERSION = 1

#: Output suffixes :meth:`Pipeline.run` can write (see :func:`m1vision.io.write_image`).
WRITE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")

_REGISTRY: dict[str, type[Step]] = {}
_PARAM_NAMES: dict[type, tuple[str, ...]] = {}  # Step.param_names, per class


# ---------------------------------------------------------------------------------------------
# steps and the registry
# ---------------------------------------------------------------------------------------------


def _json_value(value):
    """Tuples (and nested tuples) as lists: the JSON form of a parameter value."""
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    return value


class Step:
    """Base class of the pipeline steps.

    A subclass takes its parameters in ``__init__`` (check them there) and keeps each in an
    attribute of the same name; ``__call__(image)`` returns a new image and never modifies its
    input. Register it with :func:`register_step` to use it in a :class:`Pipeline`.

    Attributes
    ----------
    name : str
        The registered name (set by :func:`register_step`).
    output_kind : {"integer", "float32", None}
        What the step returns: an integer image (``uint8``/``uint16``), ``float32``, or
        ``None`` for "the dtype of its input". :meth:`Pipeline.run` uses it to refuse, before
        any file is read, a pipeline whose float output cannot be written as PNG.
    """

    name: ClassVar[str | None] = None
    output_kind: ClassVar[str | None] = None

    def __call__(self, image: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define __call__(image).")

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The names of the parameters: the arguments of ``__init__``, in order."""
        names = _PARAM_NAMES.get(cls)
        if names is None:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
            kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            names = _PARAM_NAMES[cls] = tuple(p.name for p in params if p.kind in kinds)
        return names

    def params(self) -> dict[str, Any]:
        """The parameters as a JSON-safe dict (pairs as lists), in ``__init__`` order.

        ``type(step)(**step.params())`` builds an equal step.
        """
        return {name: _json_value(getattr(self, name)) for name in self.param_names()}

    def __eq__(self, other):
        if not isinstance(other, Step):
            return NotImplemented
        return type(self) is type(other) and self.params() == other.params()

    def __hash__(self):
        return hash((type(self).__qualname__, json.dumps(self.params(), sort_keys=True)))

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.param_names())
        return f"{type(self).__name__}({args})"


def register_step(name: str) -> Callable[[type[Step]], type[Step]]:
    """Class decorator: register a :class:`Step` subclass under ``name``.

    Registering the same class again is allowed (a module reloaded in a notebook replaces its
    classes); a name taken by another step is a :class:`~m1vision.errors.PipelineConfigError`
    unless the other class has the same module and qualified name (a reload).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.pipeline import Step, get_step, register_step
    >>> @register_step("doc_invert")
    ... class DocInvert(Step):
    ...     def __call__(self, image):
    ...         return 255 - image
    >>> get_step("doc_invert") is DocInvert, DocInvert.name
    (True, 'doc_invert')
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidParameterError(
            f"a step name must be a Python-identifier-like string (e.g. 'my_blur'), got {name!r}."
        )

    def decorate(cls: type[Step]) -> type[Step]:
        if not (isinstance(cls, type) and issubclass(cls, Step)):
            raise TypeError(
                f"@register_step({name!r}) decorates a subclass of m1vision.pipeline.Step, "
                f"got {cls!r}."
            )
        old = _REGISTRY.get(name)
        same = old is not None and (old.__module__, old.__qualname__) == (
            cls.__module__,
            cls.__qualname__,
        )
        if old is not None and old is not cls and not same:
            raise PipelineConfigError(
                f"the step name {name!r} is taken by {old.__module__}.{old.__qualname__}; "
                f"choose another name for {cls.__module__}.{cls.__qualname__}."
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def step_names() -> list[str]:
    """The registered step names, sorted.

    Examples
    --------
    >>> from m1vision.pipeline import step_names
    >>> "gaussian_blur" in step_names()
    True
    """
    return sorted(_REGISTRY)


def get_step(name: str) -> type[Step]:
    """Return the step class registered as ``name``.

    Raises
    ------
    PipelineConfigError
        For an unknown name; the message lists the known names (and the closest one).

    Examples
    --------
    >>> from m1vision.pipeline import get_step
    >>> get_step("canny")(low=10, high=30)
    Canny(low=10.0, high=30.0, aperture=3, l2_gradient=False)
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise PipelineConfigError(
        f"unknown pipeline step {name!r}.{hint} Known steps: {', '.join(step_names())}. "
        "Register your own with @m1vision.pipeline.register_step(name)."
    )


@contextlib.contextmanager
def _checking(step_cls: type):
    """Re-raise a parameter error with the step's class name in front of the message."""
    prefix = f"{step_cls.__name__}: "
    try:
        yield
    except InvalidParameterError as exc:
        raise InvalidParameterError(prefix + str(exc)) from None
    except TypeError as exc:
        raise TypeError(prefix + str(exc)) from None


def _number(value, *, name: str, minimum: float | None = None) -> float:
    return check_number(value, name=name, minimum=minimum) + 0.0  # -0.0 -> 0.0 (one JSON form)


def _bool(value, *, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def _pair(value, *, name: str, kind: str = "number", what: str = "(low, high)") -> tuple:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidParameterError(f"{name} must be a pair {what}, got {value!r}.")
    items = tuple(value)
    if len(items) != 2:
        raise InvalidParameterError(f"{name} must be a pair {what}, got {value!r}.")
    if kind == "int":
        return tuple(check_int(v, name=f"{name}[{i}]", minimum=1) for i, v in enumerate(items))
    return tuple(_number(v, name=f"{name}[{i}]") for i, v in enumerate(items))


@register_step("to_gray")
class ToGray(Step):
    """Step: :func:`m1vision.preprocess.to_gray` (BGR/BGRA to gray; gray stays)."""

    def __call__(self, image):
        return preprocess.to_gray(image)


@register_step("to_uint8")
class ToUint8(Step):
    """Step: :func:`m1vision.preprocess.to_uint8` (the 8-bit policy).

    All parameters are checked when the step is built, whatever ``mode`` uses.
    """

    output_kind = "integer"

    def __init__(
        self,
        *,
        mode: str = "range",
        in_range: tuple[float, float] | None = None,
        percentiles: tuple[float, float] = (0.5, 99.5),
    ):
        with _checking(type(self)):
            self.mode = check_choice(mode, name="mode", choices=("range", "percentile", "dtype"))
            self.in_range = None
            if in_range is not None:
                self.in_range = _pair(in_range, name="in_range")
                if self.in_range[1] < self.in_range[0]:
                    raise InvalidParameterError(
                        f"in_range must have low <= high, got {in_range!r}."
                    )
            self.percentiles = _pair(percentiles, name="percentiles")
            lo, hi = self.percentiles
            if not 0 <= lo < hi <= 100:
                raise InvalidParameterError(
                    f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}."
                )

    def __call__(self, image):
        return preprocess.to_uint8(
            image, mode=self.mode, in_range=self.in_range, percentiles=self.percentiles
        )


@register_step("window")
class Window(Step):
    """Step: :func:`m1vision.preprocess.window` (level/width to ``uint8``).

    Give ``center`` and ``width`` (modality units, e.g. HU), or a ``preset`` from
    :data:`m1vision.preprocess.WINDOW_PRESETS`.
    """

    output_kind = "integer"

    def __init__(
        self,
        *,
        center: float | None = None,
        width: float | None = None,
        preset: str | None = None,
    ):
        with _checking(type(self)):
            if preset is not None:
                if center is not None or width is not None:
                    raise InvalidParameterError(
                        "give either preset or center and width, not both "
                        f"(got preset={preset!r}, center={center!r}, width={width!r})."
                    )
                check_choice(preset, name="preset", choices=tuple(preprocess.WINDOW_PRESETS))
            elif center is None or width is None:
                raise InvalidParameterError(
                    f"a window needs center and width (or a preset); got center={center!r}, "
                    f"width={width!r}. Presets: {', '.join(preprocess.WINDOW_PRESETS)}."
                )
            else:
                center = _number(center, name="center")
                width = _number(width, name="width")
                if width <= 0:
                    raise InvalidParameterError(f"width must be > 0, got {width}.")
            self.center, self.width, self.preset = center, width, preset

    def __call__(self, image):
        return preprocess.window(image, center=self.center, width=self.width, preset=self.preset)


@register_step("gaussian_blur")
class GaussianBlur(Step):
    """Step: :func:`m1vision.preprocess.gaussian_blur` (odd ``ksize`` >= 1, ``sigma`` >= 0)."""

    def __init__(self, *, ksize: int = 5, sigma: float = 0.0):
        with _checking(type(self)):
            self.ksize = check_int(ksize, name="ksize", minimum=1, odd=True)
            self.sigma = _number(sigma, name="sigma", minimum=0.0)

    def __call__(self, image):
        return preprocess.gaussian_blur(image, ksize=self.ksize, sigma=self.sigma)


@register_step("canny")
class Canny(Step):
    """Step: :func:`m1vision.preprocess.canny` (thresholds in 8-bit units, low <= high)."""

    output_kind = "integer"

    def __init__(
        self,
        *,
        low: float = 50.0,
        high: float = 150.0,
        aperture: int = 3,
        l2_gradient: bool = False,
    ):
        with _checking(type(self)):
            self.low = _number(low, name="low", minimum=0.0)
            self.high = _number(high, name="high", minimum=0.0)
            if self.low > self.high:
                raise InvalidParameterError(
                    f"Canny thresholds must satisfy low <= high, got low={self.low:g} > "
                    f"high={self.high:g}; swap them."
                )
            self.aperture = check_int(aperture, name="aperture")
            check_choice(self.aperture, name="aperture", choices=(3, 5, 7))
            self.l2_gradient = _bool(l2_gradient, name="l2_gradient")

    def __call__(self, image):
        return preprocess.canny(
            image,
            low=self.low,
            high=self.high,
            aperture=self.aperture,
            l2_gradient=self.l2_gradient,
        )


@register_step("auto_canny")
class AutoCanny(Step):
    """Step: :func:`m1vision.preprocess.auto_canny`; returns the edges only."""

    output_kind = "integer"

    def __init__(self, *, sigma: float = 0.33, ignore_background: bool = True):
        with _checking(type(self)):
            self.sigma = _number(sigma, name="sigma", minimum=0.0)
            if self.sigma >= 1.0:
                raise InvalidParameterError(
                    f"sigma must be < 1 (a fraction of the median), got {self.sigma}."
                )
            self.ignore_background = _bool(ignore_background, name="ignore_background")

    def __call__(self, image):
        return preprocess.auto_canny(
            image, sigma=self.sigma, ignore_background=self.ignore_background
        ).edges


@register_step("clahe")
class Clahe(Step):
    """Step: :func:`m1vision.preprocess.clahe` (``tile_grid`` = (columns, rows))."""

    output_kind = "integer"

    def __init__(self, *, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8)):
        with _checking(type(self)):
            self.clip_limit = _number(clip_limit, name="clip_limit", minimum=0.0)
            self.tile_grid = _pair(tile_grid, name="tile_grid", kind="int", what="(columns, rows)")

    def __call__(self, image):
        return preprocess.clahe(image, clip_limit=self.clip_limit, tile_grid=self.tile_grid)


@register_step("resize")
class Resize(Step):
    """Step: :func:`m1vision.preprocess.resize` to ``size = (height, width)``."""

    def __init__(
        self,
        *,
        size: tuple[int, int],
        keep_aspect: bool = True,
        letterbox: bool = True,
        interpolation: str | None = None,
        pad_value: float = 0.0,
    ):
        with _checking(type(self)):
            self.size = _pair(size, name="size", kind="int", what="(height, width)")
            self.keep_aspect = _bool(keep_aspect, name="keep_aspect")
            self.letterbox = _bool(letterbox, name="letterbox")
            if interpolation is not None:
                check_choice(
                    interpolation,
                    name="interpolation",
                    choices=("nearest", "linear", "cubic", "area", "lanczos"),
                )
            self.interpolation = interpolation
            self.pad_value = _number(pad_value, name="pad_value")

    def __call__(self, image):
        return preprocess.resize(
            image,
            size=self.size,
            keep_aspect=self.keep_aspect,
            letterbox=self.letterbox,
            interpolation=self.interpolation,
            pad_value=self.pad_value,
        )


@register_step("normalize")
class Normalize(Step):
    """Step: :func:`m1vision.preprocess.normalize` to ``float32`` (write results as .tif)."""

    output_kind = "float32"

    def __init__(self, *, mode: str = "unit"):
        with _checking(type(self)):
            self.mode = check_choice(mode, name="mode", choices=("unit", "mobilenet", "imagenet"))

    def __call__(self, image):
        return preprocess.normalize(image, mode=self.mode)


# ---------------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------------


def _describe(data) -> str:
    if isinstance(data, np.ndarray):
        return f"an input of shape {data.shape} and dtype {data.dtype}"
    return f"an input of type {type(data).__name__} (not a numpy array)"


class Pipeline:
    """Steps applied in order: ``pipeline(image)`` is ``step_n(...step_1(image))``.

    Parameters
    ----------
    steps : iterable of Step
        Registered steps (see :func:`register_step`); may be empty (the identity).

    Raises
    ------
    TypeError
        A step is not a :class:`Step` (e.g. a plain function).
    PipelineConfigError
        A step's class is not registered (it could not be saved or sent to workers).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.pipeline import Canny, Pipeline, Window
    >>> p = Pipeline([Window(preset="lung"), Canny(low=30, high=90)])
    >>> p
    Pipeline([
        Window(center=None, width=None, preset='lung'),
        Canny(low=30.0, high=90.0, aperture=3, l2_gradient=False),
    ])
    >>> len(p), p[1].high
    (2, 90.0)
    >>> ct = np.full((32, 32), -1000.0, np.float32); ct[8:24, 8:24] = 40.0
    >>> p(ct).dtype
    dtype('uint8')
    """

    def __init__(self, steps: Iterable[Step]):
        if isinstance(steps, Step | str | bytes | Mapping) or not isinstance(steps, Iterable):
            raise TypeError(
                "steps must be a list of steps, e.g. Pipeline([ToGray(), GaussianBlur(ksize=5)]), "
                f"got {type(steps).__name__}; to rebuild from a dict use Pipeline.from_dict."
            )
        steps = tuple(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, Step):
                raise TypeError(
                    f"steps[{i}] must be an m1vision.pipeline.Step (e.g. GaussianBlur(ksize=5)), "
                    f"got {type(step).__name__}; to use your own function, write a Step "
                    "subclass and register it with @register_step(name)."
                )
            cls = type(step)
            if cls.name is None or _REGISTRY.get(cls.name) is not cls:
                raise PipelineConfigError(
                    f"steps[{i}] ({cls.__name__}) is not a registered step, so the pipeline "
                    f"could not be saved or sent to workers; decorate {cls.__name__} with "
                    "@m1vision.pipeline.register_step('a_name')."
                )
        self._steps = steps

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps, in order."""
        return self._steps

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self._steps)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Pipeline(self._steps[index])
        return self._steps[index]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Apply the steps in order; the input is not modified.

        Raises
        ------
        PipelineStepError
            A step failed; the message names the step (index, name, parameters) and the shape
            and dtype of what it received; the original exception is ``__cause__``. The
            attributes ``index``, ``step_name``, ``params``, ``shape`` and ``dtype`` hold
            the same facts.
        """
        data = image
        for index, step in enumerate(self._steps):
            try:
                data = step(data)
            except Exception as exc:
                err = PipelineStepError(
                    f"pipeline step {index} ({step.name!r}, params "
                    f"{json.dumps(step.params())}) failed on {_describe(data)}: "
                    f"{type(exc).__name__}: {exc}"
                )
                err.index, err.step_name, err.params = index, step.name, step.params()
                err.shape = tuple(data.shape) if isinstance(data, np.ndarray) else None
                err.dtype = str(data.dtype) if isinstance(data, np.ndarray) else None
                raise err from exc
        return data

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The pipeline as a JSON-safe dict (schema, version, steps with name and params).

        Examples
        --------
        >>> from m1vision.pipeline import GaussianBlur, Pipeline
        >>> Pipeline([GaussianBlur(ksize=3)]).to_dict()
        {'schema': 'm1vision.pipeline', 'version': 1, 'steps': [{'name': 'gaussian_blur', 'params': {'ksize': 3, 'sigma': 0.0}}]}
        """  # noqa: E501
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "steps": [{"name": step.name, "params": step.params()} for step in self._steps],
        }

    def to_json(self) -> str:
        """The pipeline as JSON text, one step per line; equal pipelines give identical text.

        ``Pipeline.from_json(p.to_json()) == p`` and ``.to_json()`` of the result is the same
        text: floats are written in their shortest exact form, pairs (tuples) as lists and
        turned back into tuples when rebuilt.

        Examples
        --------
        >>> from m1vision.pipeline import Clahe, Pipeline, ToGray
        >>> print(Pipeline([ToGray(), Clahe(tile_grid=(4, 4))]).to_json())
        {
          "schema": "m1vision.pipeline",
          "version": 1,
          "steps": [
            {"name": "to_gray", "params": {}},
            {"name": "clahe", "params": {"clip_limit": 2.0, "tile_grid": [4, 4]}}
          ]
        }
        """
        d = self.to_dict()

        def dumps(obj) -> str:
            return json.dumps(obj, allow_nan=False, ensure_ascii=False)

        lines = ["{", f'  "schema": {dumps(d["schema"])},', f'  "version": {dumps(d["version"])},']
        if d["steps"]:
            steps = ",\n".join(f"    {dumps(step)}" for step in d["steps"])
            lines += ['  "steps": [', steps, "  ]"]
        else:
            lines.append('  "steps": []')
        return "\n".join([*lines, "}"])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pipeline:
        """Rebuild a pipeline from :meth:`to_dict`'s form.

        Raises
        ------
        PipelineConfigError
            Wrong schema or version, an unknown step or parameter, or a bad value (naming the
            step's index, name and parameters; the step's own error is the ``__cause__``).

        Examples
        --------
        >>> from m1vision.pipeline import Pipeline
        >>> Pipeline.from_dict({"schema": "m1vision.pipeline", "version": 1,
        ...                     "steps": [{"name": "clahe", "params": {"tile_grid": [4, 4]}}]})
        Pipeline([Clahe(clip_limit=2.0, tile_grid=(4, 4))])
        """
        if not isinstance(data, Mapping):
            hint = (
                " (a list of steps: wrap it as {'schema': 'm1vision.pipeline', 'version': 1, "
                "'steps': [...]})"
                if isinstance(data, list)
                else ""
            )
            raise PipelineConfigError(
                f"a pipeline description must be a dict with keys schema, version and steps, "
                f"got {type(data).__name__}{hint}."
            )
        unknown = sorted(set(data) - {"schema", "version", "steps"})
        if unknown:
            raise PipelineConfigError(
                f"unknown key(s) {unknown} in the pipeline description; expected schema, "
                "version and steps."
            )
        if data.get("schema") != SCHEMA:
            raise PipelineConfigError(
                f"not a pipeline description: schema is {data.get('schema')!r}, expected "
                f"{SCHEMA!r} (as written by Pipeline.to_dict / to_json)."
            )
        version = data.get("version")
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            fix = " Upgrade m1vision to read it." if newer else ""
            raise PipelineConfigError(
                f"unsupported pipeline schema version {version!r}; this m1vision reads "
                f"version {SCHEMA_VERSION}.{fix}"
            )
        steps = data.get("steps")
        if not isinstance(steps, list | tuple):
            raise PipelineConfigError(
                f"'steps' must be a list of {{'name': ..., 'params': {{...}}}}, got {steps!r}."
            )
        return cls([_step_from_dict(i, entry) for i, entry in enumerate(steps)])

    @classmethod
    def from_json(cls, text: str) -> Pipeline:
        """Rebuild a pipeline from :meth:`to_json`'s text (see :meth:`from_dict`).

        Raises
        ------
        PipelineConfigError
            Text that is not JSON, or JSON that is no valid pipeline.
        """
        if not isinstance(text, str | bytes | bytearray):
            raise TypeError(
                f"text must be a str of JSON, got {type(text).__name__}; "
                "for a file use Pipeline.load(path)."
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PipelineConfigError(f"the pipeline text is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (refusing to overwrite unless asked)."""
        from m1vision._atomic import atomic_write_text

        return atomic_write_text(path, self.to_json() + "\n", overwrite=overwrite)

    @classmethod
    def load(cls, path) -> Pipeline:
        """Read a pipeline written by :meth:`save` (or any :meth:`to_json` text)."""
        text = Path(path).read_text(encoding="utf-8")
        try:
            return cls.from_json(text)
        except PipelineConfigError as exc:
            raise PipelineConfigError(f"{str(path)!r}: {exc}") from exc

    def __eq__(self, other):
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.to_json())

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self._steps)
        one_line = f"Pipeline([{inner}])"
        if len(one_line) <= 88:
            return one_line
        body = "".join(f"    {s!r},\n" for s in self._steps)
        return f"Pipeline([\n{body}])"

    # -- batch runs ---------------------------------------------------------------------------

    def output_kind(self) -> str | None:
        """What the pipeline returns: "integer", "float32", or None (its input's dtype)."""
        kind = None
        for step in self._steps:
            kind = step.output_kind or kind
        return kind

    def run(
        self,
        inputs,
        out_dir,
        *,
        executor: Executor | None = None,
        progress: bool = True,
        overwrite: bool = False,
        suffix: str = ".png",
        chunksize: int | None = None,
    ) -> BatchReport:
        """Apply the pipeline to every input image and write the results into ``out_dir``.

        Parameters
        ----------
        inputs : path or list of paths
            Files and folders (see :func:`collect_inputs`: folders are scanned recursively, in
            sorted order, for the suffixes in :data:`m1vision.io.IMAGE_EXTENSIONS`, including
            ``.nii.gz`` and ``.dcm``; a file named directly may have any name). Each file is
            read with :func:`m1vision.io.read_any` and its ``pixels`` go through the pipeline.
            A 3-D volume (multi-frame DICOM, NIfTI) fails that file with a clear error (one
            input, one output image: run the pipeline on ``volume[k]`` yourself to process
            slices); a volume of one slice is taken as that slice.
        out_dir : path
            Output folder: input ``folder/sub/a.dcm`` goes to ``out_dir/sub/a`` + ``suffix``;
            a file named directly to ``out_dir/<its name>`` + ``suffix``. Two inputs that
            would go to the same output (``a.png`` and ``a.tif``; compared ignoring case, as
            macOS does) are an error before anything runs. Must not be an input folder.
        executor : concurrent.futures.Executor, optional
            Where the work runs. Default: a thread pool of ``os.cpu_count()`` threads (OpenCV
            releases the GIL). Any executor works: a ``ProcessPoolExecutor``, or a Dask
            cluster's ``client.get_executor()`` (e.g. ``Client("tcp://scheduler:8786")`` for a
            remote scheduler). Each task is a module-level function given the pipeline as its
            dict, so it pickles; the workers must see the same files at the same (absolute)
            paths as this process, i.e. a shared filesystem, and have m1vision (and any module
            defining custom steps) installed.
        progress : bool
            Show a ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal).
        overwrite : bool
            Recompute and replace outputs that exist. Without it, an existing output is
            skipped (status ``"skipped"``), so re-running an interrupted batch finishes it.
        suffix : str
            Appended to each output's name; it must end in an extension
            :func:`m1vision.io.write_image` writes (.png, .tif/.tiff, .jpg/.jpeg, .bmp),
            e.g. ``".png"`` or ``"_edges.png"``. A pipeline ending in ``float32``
            (:class:`Normalize`) needs ``.tif``/``.tiff``.
        chunksize : int, optional
            Files per task. Default: enough to give each worker about four tasks, at most 16
            files each (per-task overhead and the GIL cost ~15% throughput at 1 file per task
            on 2 cores); a few tens amortise a remote cluster's overhead on small images.

        Returns
        -------
        BatchReport
            One item per input file (input, output, status "ok"/"skipped"/"failed", seconds,
            error as "TypeName: message"), also written atomically as JSON into ``out_dir``
            as ``batch_report-<UTC time>.json`` (never replacing an earlier report; see
            :attr:`BatchReport.path`).

        Notes
        -----
        A file that fails (unreadable, corrupt, a failing step, an unwritable result) is
        recorded and the batch goes on. Outputs are written atomically with
        :func:`m1vision.io.write_image`: a crash leaves no partial file. During the run
        OpenCV's own thread pool is set to one thread with ``cv2.setNumThreads(1)``, in this
        process (restored afterwards; the setting is process-wide) and in worker processes
        (left so: the executor already parallelises over files), so that the files in
        parallel do not oversubscribe the cores.

        Interrupting the run (Ctrl-C, or the notebook's stop button) cancels the files not yet
        started; the outputs finished so far stay, and the next run skips them.

        Examples
        --------
        >>> import pathlib, tempfile, numpy as np
        >>> from m1vision.io import write_image
        >>> from m1vision.pipeline import Canny, GaussianBlur, Pipeline
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for k in range(3):
        ...     img = np.zeros((64, 64), np.uint8); img[10 + k:40, 10:40] = 200
        ...     _ = write_image(folder / "in" / f"img{k}.png", img)
        >>> p = Pipeline([GaussianBlur(ksize=3), Canny(low=50, high=150)])
        >>> report = p.run(folder / "in", folder / "out", progress=False)
        >>> report.counts
        {'ok': 3, 'skipped': 0, 'failed': 0}
        >>> sorted(q.name for q in (folder / "out").glob("*.png"))
        ['img0.png', 'img1.png', 'img2.png']
        >>> p.run(folder / "in", folder / "out", progress=False).counts["skipped"]
        3
        """
        jobs, out_dir = self._plan(inputs, out_dir, suffix=suffix)
        if chunksize is not None:
            chunksize = check_int(chunksize, name="chunksize", minimum=1)
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(
                "executor must be a concurrent.futures.Executor (a ThreadPoolExecutor, a "
                "ProcessPoolExecutor, or a Dask client.get_executor()), got "
                f"{type(executor).__name__}."
            )
        from tqdm.auto import tqdm

        started = time.gmtime()
        t0 = time.perf_counter()
        results: list[dict | None] = [None] * len(jobs)
        todo = []
        for i, (_src, dst) in enumerate(jobs):
            if not overwrite and dst.exists():
                results[i] = {"status": "skipped", "seconds": 0.0, "error": None}
            else:
                todo.append(i)

        own = executor is None
        if own:
            executor = ThreadPoolExecutor(
                max_workers=max(1, min(os.cpu_count() or 1, len(todo))),
                thread_name_prefix="m1vision-run",
            )
        executor_name = _executor_name(executor, own)
        if chunksize is None:
            workers = getattr(executor, "_max_workers", None) or os.cpu_count() or 1
            chunksize = max(1, min(16, len(todo) // (4 * workers)))
        pipeline_dict = self.to_dict()
        token = uuid.uuid4().hex  # unique task arguments: Dask must not reuse cached results
        opencv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        futures: dict[Future, list[int]] = {}
        bar = tqdm(
            total=len(jobs),
            disable=not progress,
            desc="Pipeline.run",
            unit="img",
            initial=len(jobs) - len(todo),
        )
        n_failed = 0
        try:
            for start in range(0, len(todo), chunksize):
                chunk = todo[start : start + chunksize]
                work = [(str(jobs[i][0]), str(jobs[i][1])) for i in chunk]
                fut = executor.submit(
                    _run_files, pipeline_dict, work, overwrite, os.getpid(), token
                )
                futures[fut] = chunk
            for fut in as_completed(futures):
                chunk = futures[fut]
                try:
                    records = fut.result()
                except Exception as exc:  # the executor failed (a worker died, pickling...)
                    error = f"{type(exc).__name__}: {exc}"
                    records = [{"status": "failed", "seconds": 0.0, "error": error}] * len(chunk)
                for i, record in zip(chunk, records, strict=True):
                    results[i] = record
                    n_failed += record["status"] == "failed"
                bar.update(len(chunk))
                if n_failed:
                    bar.set_postfix(failed=n_failed, refresh=False)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        finally:
            bar.close()
            cv2.setNumThreads(opencv_threads)
            if own:
                executor.shutdown(wait=True, cancel_futures=True)

        items = [
            BatchItem(
                input=str(src),
                output=str(dst),
                status=record["status"],
                seconds=float(record["seconds"]),
                error=record["error"],
            )
            for (src, dst), record in zip(jobs, results, strict=True)
        ]
        report = BatchReport(
            items=items,
            seconds=time.perf_counter() - t0,
            pipeline=pipeline_dict,
            out_dir=str(out_dir),
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", started),
            executor=executor_name,
        )
        report.path = _write_report(report, out_dir, started)
        return report

    def _plan(self, inputs, out_dir, *, suffix: str) -> tuple[list[tuple[Path, Path]], Path]:
        """Check the run's arguments and list (absolute input, absolute output) pairs."""
        if not isinstance(suffix, str) or not suffix.lower().endswith(WRITE_SUFFIXES):
            raise InvalidParameterError(
                f"suffix must end in an extension write_image writes "
                f"({', '.join(WRITE_SUFFIXES)}), e.g. '.png' or '_edges.png'; got {suffix!r}."
            )
        if "/" in suffix or "\\" in suffix:
            raise InvalidParameterError(f"suffix must not hold a path separator, got {suffix!r}.")
        if self.output_kind() == "float32" and not suffix.lower().endswith((".tif", ".tiff")):
            raise PipelineConfigError(
                f"this pipeline returns float32 (its last converting step is "
                f"{self._last_converting_step()}), which {suffix!r} cannot hold; use "
                "suffix='.tif', or end the pipeline with a step that returns 8 bits (e.g. "
                "ToUint8())."
            )
        if not isinstance(out_dir, str | os.PathLike):
            raise TypeError(f"out_dir must be a str or pathlib.Path, got {type(out_dir).__name__}.")
        out_dir = Path(out_dir).absolute()
        if out_dir.exists() and not out_dir.is_dir():
            raise InvalidParameterError(f"out_dir {str(out_dir)!r} exists and is not a folder.")
        for item in _as_path_list(inputs):
            if Path(item).is_dir() and Path(item).resolve() == out_dir.resolve():
                raise InvalidParameterError(
                    f"out_dir is the input folder {str(out_dir)!r}: outputs would mix with the "
                    "inputs (and be read as inputs next time); choose another out_dir."
                )
        pairs = collect_inputs(inputs, exclude=out_dir)
        jobs = []
        sources = set()
        for src, rel in pairs:
            src = src.absolute()
            sources.add(src)
            jobs.append((src, out_dir.joinpath(*rel.parent.parts, rel.name + suffix)))
        for src, dst in jobs:
            if dst in sources:
                raise InvalidParameterError(
                    f"the output for {str(src)!r} would be {str(dst)!r}, which is an input; "
                    "choose another out_dir or suffix."
                )
        return jobs, out_dir

    def _last_converting_step(self) -> str:
        for step in reversed(self._steps):
            if step.output_kind is not None:
                return repr(step)
        return "none"  # pragma: no cover - only called when some step converts


def _step_from_dict(index: int, entry) -> Step:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise PipelineConfigError(
            f"step {index} must be a dict {{'name': str, 'params': {{...}}}}, got {entry!r}."
        )
    extra = sorted(set(entry) - {"name", "params"})
    if extra:
        raise PipelineConfigError(
            f"step {index} ({entry['name']!r}) has unknown key(s) {extra}; expected name and "
            "params."
        )
    name = entry["name"]
    params = entry.get("params", {})
    cls = get_step(name)
    if not isinstance(params, Mapping):
        raise PipelineConfigError(
            f"step {index} ({name!r}): params must be a dict, got {params!r}."
        )
    accepted = cls.param_names()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise PipelineConfigError(
            f"step {index} ({name!r}) got unknown parameter(s) {unknown}; it accepts "
            f"{list(accepted) if accepted else 'no parameters'}."
        )
    try:
        return cls(**params)
    except (InvalidParameterError, TypeError, ValueError) as exc:
        raise PipelineConfigError(
            f"step {index} ({name!r}) with params {dict(params)!r} is invalid: {exc}"
        ) from exc


# ---------------------------------------------------------------------------------------------
# batch runs
# ---------------------------------------------------------------------------------------------


def _as_path_list(inputs) -> list:
    if isinstance(inputs, str | os.PathLike):
        return [inputs]
    if isinstance(inputs, bytes | Mapping) or not isinstance(inputs, Iterable):
        raise TypeError(
            "inputs must be a path (str or pathlib.Path) of a file or folder, or a list of "
            f"them, got {type(inputs).__name__}."
        )
    items = list(inputs)
    for i, item in enumerate(items):
        if not isinstance(item, str | os.PathLike):
            raise TypeError(
                f"inputs[{i}] must be a path (str or pathlib.Path), got {type(item).__name__}."
            )
    return items


def _strip_image_extension(name: str, extensions) -> str:
    lower = name.lower()
    for ext in extensions:  # longest first: ".nii.gz" before ".gz"-less ".nii"
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


def collect_inputs(inputs, *, exclude=None) -> list[tuple[Path, PurePath]]:
    """List the image files of files and folders, each with its output path stem.

    Parameters
    ----------
    inputs : path or list of paths
        A file (any name: DICOM files often have no extension), or a folder, scanned
        recursively for names ending in one of :data:`m1vision.io.IMAGE_EXTENSIONS` (any
        case, ``.nii.gz`` included). Hidden files and folders (names starting with ".",
        e.g. macOS' ``._x.png``) are left out. Symbolic links to folders are not followed.
    exclude : path, optional
        A folder left out of folder scans (:meth:`Pipeline.run` passes its ``out_dir``).

    Returns
    -------
    list of (pathlib.Path, pathlib.PurePath)
        ``(source, stem)`` in order: each folder's files sorted by relative path, in the order
        the inputs were given. ``stem`` is the path relative to its folder (or the file's name)
        without the image extension: ``scans/sub/a.nii.gz`` in folder ``scans`` gives
        ``sub/a``.

    Raises
    ------
    ImageReadError
        An input does not exist.
    InvalidParameterError
        No image was found (the message lists the extensions looked for), or two inputs have
        the same stem, ignoring case (they would be written to the same output).
    TypeError
        ``inputs`` is not a path or a list of paths.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision.pipeline import collect_inputs
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.png", "a.dcm", "sub/c.nii.gz", "notes.txt", ".hidden.png"]:
    ...     (root / name).parent.mkdir(exist_ok=True); _ = (root / name).write_bytes(b"x")
    >>> [(src.name, str(stem)) for src, stem in collect_inputs(root)]
    [('a.dcm', 'a'), ('b.png', 'b'), ('c.nii.gz', 'sub/c')]
    """
    from m1vision.io import IMAGE_EXTENSIONS

    extensions = sorted((e.lower() for e in IMAGE_EXTENSIONS), key=len, reverse=True)
    exclude = Path(exclude).resolve() if exclude is not None else None
    items = _as_path_list(inputs)
    found: list[tuple[Path, PurePath]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += _scan_folder(path, extensions, exclude)
        elif path.is_file():
            found.append((path, PurePath(_strip_image_extension(path.name, extensions))))
        elif path.exists():
            raise ImageReadError(path, "it is neither a regular file nor a folder.")
        else:
            raise ImageReadError(path, "no such file or folder; check the path.")
    if not found:
        raise InvalidParameterError(
            f"no image files in {', '.join(repr(str(i)) for i in items) or 'an empty list'}; "
            f"folders are scanned for {', '.join(sorted(IMAGE_EXTENSIONS))} (a DICOM file "
            "without an extension must be named directly)."
        )
    seen: dict[str, Path] = {}
    for src, stem in found:
        key = str(stem).casefold()
        if key in seen:
            raise InvalidParameterError(
                f"{str(seen[key])!r} and {str(src)!r} would both be written to the output "
                f"{str(stem)!r} + suffix (names are compared ignoring case, as on macOS); "
                "rename one, or run them into different out_dirs."
            )
        seen[key] = src
    return found


def _scan_folder(folder: Path, extensions, exclude: Path | None) -> list[tuple[Path, PurePath]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".") and (exclude is None or (here / d).resolve() != exclude)
        ]
        rel_dir = here.relative_to(folder)
        for name in filenames:
            if name.startswith("."):
                continue
            lower = name.lower()
            if any(lower.endswith(ext) for ext in extensions):
                rel = rel_dir / name
                stem = PurePath(*rel.parent.parts, _strip_image_extension(name, extensions))
                found.append((rel.parts, folder / rel, stem))
    found.sort(key=lambda t: t[0])
    return [(src, stem) for _, src, stem in found]


def _pixels_2d(image, src: str) -> np.ndarray:
    """The 2-D image of a MedicalImage, or a clear error for a volume."""
    pixels = image.pixels
    if image.is_volume:
        if pixels.shape[0] == 1:
            return pixels[0]
        raise InvalidImageError(
            f"{src!r} is a 3-D volume of {pixels.shape[0]} slices (shape {pixels.shape}); "
            "Pipeline.run writes one 2-D image per input. Process its slices with "
            "`vol = m1vision.io.read_any(path).pixels; [pipeline(vol[k]) for k in "
            "range(len(vol))]`, or save the slices you need as files first."
        )
    return pixels


_REBUILT: dict[str, Pipeline] = {}  # pipelines rebuilt by tasks in this process, by JSON


def _rebuild(pipeline_dict: dict) -> Pipeline:
    """``Pipeline.from_dict``, cached: a task per file must not re-validate every time."""
    key = json.dumps(pipeline_dict, sort_keys=True)
    pipeline = _REBUILT.get(key)
    if pipeline is None:
        if len(_REBUILT) > 32:
            _REBUILT.clear()
        pipeline = _REBUILT[key] = Pipeline.from_dict(pipeline_dict)
    return pipeline


def _run_files(
    pipeline_dict: dict, files: list[tuple[str, str]], overwrite: bool, caller_pid: int, token
) -> list[dict]:
    """Task of :meth:`Pipeline.run`: process ``files`` [(input, output)]; never raises.

    Module-level and given the pipeline as a dict, so it pickles to any executor.
    ``token`` only makes the task's arguments unique (Dask caches pure tasks by arguments).
    """
    del token
    if os.getpid() != caller_pid:
        cv2.setNumThreads(1)  # a worker process: the executor already runs files in parallel
    try:
        from m1vision.io import read_any, write_image

        pipeline = _rebuild(pipeline_dict)
    except Exception as exc:  # e.g. a custom step not importable on this worker
        error = f"{type(exc).__name__}: {exc}"
        return [{"status": "failed", "seconds": 0.0, "error": error} for _ in files]
    records = []
    for src, dst in files:
        t0 = time.perf_counter()
        status, error = "ok", None
        try:
            pixels = _pixels_2d(read_any(src), src)
            # OpenCV's fast PNG settings and no fsync: outputs stay atomic (never half-written;
            # a re-run recomputes anything a power cut loses), at a third less CPU per file.
            write_image(
                dst, pipeline(pixels), overwrite=overwrite, png_compression=None, fsync=False
            )
        except OutputExistsError:
            status = "skipped"  # written meanwhile by another run
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        records.append({"status": status, "seconds": time.perf_counter() - t0, "error": error})
    return records


def _executor_name(executor, own: bool) -> str:
    workers = getattr(executor, "_max_workers", None)
    name = type(executor).__name__
    detail = f"max_workers={workers}" if workers else ""
    client = getattr(executor, "_client", None)
    if client is not None:
        with contextlib.suppress(Exception):
            detail = f"scheduler={client.scheduler.address}"
    return f"{name}({detail})" + (" (default)" if own else "")


def _write_report(report: BatchReport, out_dir: Path, started: time.struct_time) -> Path:
    from m1vision._atomic import atomic_write_json

    base = f"batch_report-{time.strftime('%Y%m%dT%H%M%S', started)}"
    for n in range(1, 10_000):
        path = out_dir / (f"{base}.json" if n == 1 else f"{base}-{n}.json")
        try:
            return atomic_write_json(path, report.to_dict())
        except OutputExistsError:
            continue
    raise OutputExistsError(  # pragma: no cover - 10 000 reports in one second
        f"could not find a free report name {base}-N.json in {str(out_dir)!r}."
    )


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One input file of a :class:`BatchReport`."""

    input: str
    output: str
    status: str  # "ok" | "skipped" | "failed"
    seconds: float
    error: str | None = None


@dataclasses.dataclass
class BatchReport:
    """What :meth:`Pipeline.run` did: one :class:`BatchItem` per input, counts, time.

    ``repr(report)`` is the summary line (``BatchReport: 198 ok, 0 skipped, 2 failed in
    3.1 s``); ``str(report)`` adds the failed files and their errors.
    """

    items: list[BatchItem]
    seconds: float
    pipeline: dict
    out_dir: str
    started: str
    executor: str
    path: Path | None = None

    SCHEMA: ClassVar[str] = "m1vision.batch_report"
    VERSION: ClassVar[int] = 1

    def _with(self, status: str) -> list[BatchItem]:
        return [item for item in self.items if item.status == status]

    @property
    def ok(self) -> list[BatchItem]:
        """Items processed and written."""
        return self._with("ok")

    @property
    def skipped(self) -> list[BatchItem]:
        """Items whose output existed already (not recomputed)."""
        return self._with("skipped")

    @property
    def failed(self) -> list[BatchItem]:
        """Items that failed; ``item.error`` says why (``"TypeName: message"``)."""
        return self._with("failed")

    @property
    def counts(self) -> dict[str, int]:
        """``{"ok": n, "skipped": n, "failed": n}``."""
        return {s: len(self._with(s)) for s in ("ok", "skipped", "failed")}

    def __len__(self) -> int:
        return len(self.items)

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-safe dict (what is written to :attr:`path`)."""
        return {
            "schema": self.SCHEMA,
            "version": self.VERSION,
            "started": self.started,
            "seconds": round(self.seconds, 6),
            "executor": self.executor,
            "out_dir": self.out_dir,
            "counts": self.counts,
            "pipeline": self.pipeline,
            "items": [
                {**dataclasses.asdict(item), "seconds": round(item.seconds, 6)}
                for item in self.items
            ],
        }

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"BatchReport: {c['ok']} ok, {c['skipped']} skipped, {c['failed']} failed "
            f"in {self.seconds:.1f} s"
        )

    def __str__(self) -> str:
        lines = [repr(self)]
        failed = self.failed
        for item in failed[:20]:
            lines.append(f"  failed {item.input}: {item.error}")
        if len(failed) > 20:
            lines.append(f"  ... and {len(failed) - 20} more (see report.failed)")
        if self.path is not None:
            lines.append(f"  report: {self.path}")
        return "\n".join(lines)
