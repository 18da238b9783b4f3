"""Pipeline steps (internal): the Step base class, the registry and the built-in steps."""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from m1vision import preprocess
from m1vision._checks import (
    check_auto_canny,
    check_blur,
    check_canny,
    check_clahe,
    check_normalize,
    check_reorient,
    check_resample,
    check_resize,
    check_to_uint8,
    check_window,
)
from m1vision.errors import (
    InvalidParameterError,
    InvalidTypeError,
    PipelineConfigError,
)

_REGISTRY: dict[str, type[Step]] = {}


_PARAM_NAMES: dict[type, tuple[str, ...]] = {}  # Step.param_names, per class


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
            raise InvalidTypeError(
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
    try:
        yield
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{step_cls.__name__}: {exc}") from None
    except TypeError as exc:
        raise InvalidTypeError(f"{step_cls.__name__}: {exc}") from None


def _keep(step: Step, checked: dict) -> None:
    """Keep the checked parameters (the checker's canonical form) as the step's attributes."""
    for name, value in checked.items():
        setattr(step, name, value)


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
            _keep(self, check_to_uint8(mode=mode, in_range=in_range, percentiles=percentiles))

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
            _keep(self, check_window(center=center, width=width, preset=preset))

    def __call__(self, image):
        return preprocess.window(image, center=self.center, width=self.width, preset=self.preset)


@register_step("gaussian_blur")
class GaussianBlur(Step):
    """Step: :func:`m1vision.preprocess.gaussian_blur` (odd ``ksize`` >= 1, ``sigma`` >= 0)."""

    def __init__(self, *, ksize: int = 5, sigma: float = 0.0):
        with _checking(type(self)):
            _keep(self, check_blur(ksize=ksize, sigma=sigma))

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
            _keep(self, check_canny(low, high, aperture=aperture, l2_gradient=l2_gradient))

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

    def __init__(
        self,
        *,
        sigma: float = 0.33,
        ignore_background: bool = True,
        aperture: int = 3,
        l2_gradient: bool = False,
    ):
        with _checking(type(self)):
            _keep(
                self,
                check_auto_canny(
                    sigma=sigma,
                    ignore_background=ignore_background,
                    aperture=aperture,
                    l2_gradient=l2_gradient,
                ),
            )

    def __call__(self, image):
        return preprocess.auto_canny(
            image,
            sigma=self.sigma,
            ignore_background=self.ignore_background,
            aperture=self.aperture,
            l2_gradient=self.l2_gradient,
        ).edges


@register_step("clahe")
class Clahe(Step):
    """Step: :func:`m1vision.preprocess.clahe` (``tile_grid`` = (columns, rows))."""

    output_kind = "integer"

    def __init__(self, *, clip_limit: float = 2.0, tile_grid: tuple[int, int] = (8, 8)):
        with _checking(type(self)):
            _keep(self, check_clahe(clip_limit=clip_limit, tile_grid=tile_grid))

    def __call__(self, image):
        return preprocess.clahe(image, clip_limit=self.clip_limit, tile_grid=self.tile_grid)


@register_step("resize")
class Resize(Step):
    """Step: :func:`m1vision.preprocess.resize` to ``size = (height, width)``.

    ``interpolation``: one of :data:`m1vision._checks.INTERPOLATIONS` (the list
    :func:`~m1vision.preprocess.resize` uses) or None.
    """

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
            _keep(
                self,
                check_resize(
                    size=size,
                    keep_aspect=keep_aspect,
                    letterbox=letterbox,
                    interpolation=interpolation,
                    pad_value=pad_value,
                ),
            )

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
            _keep(self, check_normalize(mode=mode))

    def __call__(self, image):
        return preprocess.normalize(image, mode=self.mode)


# --------------------------------------------------------------------------- volume geometry


@register_step("resample")
class Resample(Step):
    """Step: :func:`m1vision.volume.resample` of a volume to ``spacing`` (z, row, col) mm.

    Takes and returns a :class:`~m1vision.io.MedicalImage` volume (the geometry travels with
    the pixels). :meth:`inverse` brings a result back onto the source's grid, as MONAI's
    ``Invertd``: segment at 1.5 mm, then ``step.inverse(mask, like=scan)``.
    """

    def __init__(self, *, spacing, interpolation: str = "linear"):
        with _checking(type(self)):
            checked = check_resample(spacing=spacing, interpolation=interpolation)
            if checked["spacing"] is None:
                raise InvalidParameterError(
                    "spacing is required: the voxel size (z, row, col) in mm to resample to."
                )
            _keep(self, checked)

    def __call__(self, image):
        from m1vision.volume import resample

        return resample(image, spacing=self.spacing, interpolation=self.interpolation)

    def inverse(self, result, *, like, interpolation: str | None = None):
        """``result`` resampled back onto ``like``'s grid (the image this step was given).

        ``interpolation`` defaults to the step's; pass "nearest" to bring back a label map
        made on the resampled grid. The grid (shape and affine) is ``like``'s exactly.
        """
        from m1vision.volume import resample

        return resample(result, like=like, interpolation=interpolation or self.interpolation)


@register_step("reorient")
class Reorient(Step):
    """Step: :func:`m1vision.volume.reorient` to ``orientation`` ("RAS", "LPS", "SPL"...).

    Takes and returns a :class:`~m1vision.io.MedicalImage` volume. :meth:`inverse` gives the
    source's orientation back exactly (axes permuted and flipped back, no interpolation).
    """

    def __init__(self, *, orientation: str = "RAS"):
        with _checking(type(self)):
            _keep(self, check_reorient(orientation=orientation))

    def __call__(self, image):
        from m1vision.volume import reorient

        return reorient(image, self.orientation)

    def inverse(self, result, *, like):
        """``result`` reoriented back to ``like``'s orientation, checked to be on its grid."""
        from m1vision.labels._core import check_grid
        from m1vision.volume import orientation_of, reorient

        out = reorient(result, orientation_of(like))
        check_grid(out, like, name="the inverted result", image_name="like")
        return out
