"""Any image function on sliders: controls built from its signature (internal part)."""

from __future__ import annotations

import inspect
import numbers
import time
import typing
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import InvalidParameterError, InvalidTypeError
from m1vision.views.edges import preview
from m1vision.views.function import FunctionView, step_class
from m1vision.views.png import encode_png
from m1vision.widgets._common import (
    _Batch,
    _clear_error,
    _show_error,
    _static_bundle,
    _unwrap,
    _widgets,
    make_control,
)
from m1vision.widgets._state import Explorer

_CACHE_SIZE = 64


def _hints(func) -> dict:
    target = func.__init__ if isinstance(func, type) else func
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        return {}


def _how(name: str) -> str:
    return (
        f"pass it to explore(): {name}=(low, high) or (low, high, step) for a slider, "
        f"{name}=[choice, ...] for a menu, {name}=True/False for a checkbox, or a fixed value "
        f"such as {name}=3"
    )


def control_specs(func, controls: dict) -> tuple[dict, dict]:
    """``(specs, fixed)`` of ``func``'s parameters after the image, from its signature.

    ``specs`` maps each control's name to ``("int"|"float", low, high, step, value)``,
    ``("bool", value)`` or ``("choice", choices, value)``; ``fixed`` holds the values passed
    as constants. Ranges come from ``controls`` (the user's ``name=(low, high[, step])``,
    ``[choices]``, a bool, or a fixed value), else from the defaults: an int or float ``d``
    gets ``0 .. max(10, 3 d)`` (``1.0`` for floats in 0-1), a bool a checkbox, a ``Literal``
    annotation a menu; parameters whose default is None or a string (without a ``Literal``
    annotation) keep their default and get no control.

    Raises InvalidParameterError naming the parameter and how to pass a range when a
    parameter has no default or one of a type no control fits, or ``controls`` names a
    parameter ``func`` does not take.

    Examples
    --------
    >>> from m1vision.widgets._explore import control_specs
    >>> def f(image, k: int = 5, gain: float = 0.5, flip: bool = False): return image
    >>> specs, fixed = control_specs(f, {"gain": (0.0, 2.0)})
    >>> specs["k"], specs["gain"], specs["flip"]
    (('int', 0, 15, 1, 5), ('float', 0.0, 2.0, 0.02, 0.5), ('bool', False))
    """
    target = func.__init__ if isinstance(func, type) else func
    try:
        params = list(inspect.signature(target).parameters.values())
    except (ValueError, TypeError):  # a builtin without a signature (OpenCV): the user's names
        if not controls:
            raise InvalidParameterError(
                f"{getattr(func, '__name__', func)!r} does not expose its signature (an OpenCV "
                "builtin, say), so its parameters cannot be read; name each one, e.g. "
                "explore(cv2.medianBlur, image, ksize=(1, 15, 2))."
            ) from None
        params = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in ["image", *controls]
        ]
    if isinstance(func, type):
        params = params[1:]  # self
    else:
        if not params or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,  # only where we made the list ourselves
        ):
            raise InvalidParameterError(
                f"func {getattr(func, '__name__', func)!r} must take the image as its first "
                "positional parameter, e.g. def f(image, sigma=1.0)."
            )
        params = params[1:]
    params = [p for p in params if p.kind not in (inspect.Parameter.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = {p.name for p in params}
    unknown = set(controls) - names
    if unknown:
        raise InvalidParameterError(
            f"{sorted(unknown)} are not parameters of {getattr(func, '__name__', func)!r}; "
            f"its parameters after the image are {sorted(names)}."
        )
    hints = _hints(func)
    specs: dict = {}
    fixed: dict = {}
    for p in params:
        default = None if p.default is inspect.Parameter.empty else p.default
        if p.name in controls:
            spec = _spec_from_user(p.name, controls[p.name], default)
            if spec is None:
                fixed[p.name] = controls[p.name]
            else:
                specs[p.name] = spec
            continue
        hint = hints.get(p.name)
        if typing.get_origin(hint) is typing.Literal:
            choices = list(typing.get_args(hint))
            value = default if default in choices else choices[0]
            specs[p.name] = ("choice", choices, value)
        elif p.default is inspect.Parameter.empty:
            raise InvalidParameterError(
                f"parameter {p.name!r} of {getattr(func, '__name__', func)!r} has no default, "
                f"so no control can be built for it; {_how(p.name)}."
            )
        elif default is None or isinstance(default, str):
            continue  # optional (None) or free text: called with its default, no control
        elif isinstance(default, bool | np.bool_):
            specs[p.name] = ("bool", bool(default))
        elif isinstance(default, numbers.Integral):
            d = int(default)
            low, high = (0, max(10, 3 * d)) if d >= 0 else (3 * d, -3 * d)
            specs[p.name] = ("int", low, high, 1, d)
        elif isinstance(default, numbers.Real):
            d = float(default)
            low, high = (
                (0.0, 1.0 if d <= 1.0 else max(10.0, 3.0 * d)) if d >= 0 else (3 * d, -3 * d)
            )
            specs[p.name] = ("float", low, high, (high - low) / 100.0, d)
        else:
            raise InvalidParameterError(
                f"parameter {p.name!r} of {getattr(func, '__name__', func)!r} has the default "
                f"{default!r} ({type(default).__name__}), for which no control fits; "
                f"{_how(p.name)}."
            )
    return specs, fixed


def _spec_from_user(name: str, given, default):
    if isinstance(given, bool | np.bool_):
        return ("bool", bool(given))
    if isinstance(given, list):
        if not given:
            raise InvalidParameterError(f"{name}=[] gives no choices; list at least one.")
        return ("choice", list(given), default if default in given else given[0])
    if isinstance(given, tuple):
        if len(given) not in (2, 3) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in given
        ):
            raise InvalidParameterError(f"{name}={given!r} is not a range; {_how(name)}.")
        low, high = given[0], given[1]
        if not low < high:
            raise InvalidParameterError(f"{name}={given!r}: the range needs low < high.")
        if all(isinstance(v, numbers.Integral) for v in given):
            step = int(given[2]) if len(given) == 3 else 1
            value = (
                default if isinstance(default, numbers.Integral) and low <= default <= high else low
            )
            return ("int", int(low), int(high), step, int(value))
        step = float(given[2]) if len(given) == 3 else (high - low) / 100.0
        ok = isinstance(default, numbers.Real) and low <= default <= high
        return ("float", float(low), float(high), step, float(default if ok else low))
    return None  # a fixed value


def _control_for(value):
    """What to pass ``explore()`` for a control holding ``value`` (a range around it)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        v = int(value)
        return (0, max(10, 3 * v)) if v >= 0 else (3 * v, -3 * v)
    if isinstance(value, numbers.Real):
        v = float(value)
        return (0.0, 1.0 if v <= 1.0 else max(10.0, 3.0 * v)) if v >= 0 else (3 * v, -3 * v)
    if isinstance(value, tuple):
        return [value]  # a menu of that one choice
    return value  # fixed


def _make_control(name: str, spec, func_name: str = "the function"):
    """The control of one ``control_specs`` entry, through the explorers' one builder."""
    kind = spec[0]
    tooltip = f"{name}: the parameter {name!r} of {func_name}"
    if kind == "bool":
        return make_control(name, spec[1], kind="bool", tooltip=tooltip)
    if kind == "choice":
        options = [(str(choice), choice) for choice in spec[1]]  # a tuple choice stays whole
        return make_control(name, spec[2], kind="choice", options=options, tooltip=tooltip)
    _, low, high, step, value = spec
    return make_control(name, value, kind=kind, min=low, max=high, step=step,
                        tooltip=f"{tooltip} ({low:g} to {high:g})")  # fmt: skip


class FunctionExplorer(Explorer):
    """Any image -> image function on sliders built from its signature (see :func:`explore`).

    Attributes
    ----------
    controls : dict
        One control per explorable parameter, named as the parameter.
    image_widget : ipywidgets.Image
        PNG of the function's output on the preview (8-bit: other dtypes are scaled by their
        min and max).
    last_error, last_ms
        The exception of the last update (shown in the widget) or None; milliseconds of the
        last update (0 when served from the cache of encoded pictures).
    """

    def __init__(
        self, func: Callable, image, *, preview_size: int = 512, timings: bool = False, **controls
    ):
        w = _widgets()
        self._timings = bool(timings)
        if not callable(func):
            raise InvalidTypeError(
                f"func must be callable, got {type(func).__name__}. Fix: pass a function of "
                "one image (or a Pipeline), e.g. func=m1vision.preprocess.clahe."
            )
        image, _, _ = _unwrap(image, None)
        self._image = check_image(image)
        self._preview_size = check_int(preview_size, name="preview_size", minimum=16)
        self._preview = preview(self._image, max_size=self._preview_size)
        self._func = func
        self._step = step_class(func)
        specs, self._fixed = control_specs(func, controls)
        self.controls = {
            name: _make_control(name, spec, self._name()) for name, spec in specs.items()
        }
        self._pngs: OrderedDict = OrderedDict()
        self.last_error: BaseException | None = None
        self.last_ms = float("nan")
        self.image_widget = w.Image(format="png", layout={"max_width": "100%"})
        self.readout = w.HTML()
        self.error_area = w.HTML(layout={"display": "none"})
        self.widget = w.HBox(
            [
                w.VBox(list(self.controls.values()), layout={"min_width": "340px"}),
                w.VBox([self.image_widget, self.readout, self.error_area]),
            ]
        )
        self._batch = _Batch(self._update)
        for control in self.controls.values():
            control.observe(self._batch.request, names="value")
        self._update()

    @property
    def params(self) -> dict:
        """The arguments the function is called with, besides the image."""
        return {**self._fixed, **{n: c.value for n, c in self.controls.items()}}

    def result(self, image=None) -> np.ndarray:
        """The function's output on ``image`` (default the full-resolution image)."""
        return self.view().result(image)

    # -- state as data --------------------------------------------------------------------
    view_class = FunctionView

    def view(self) -> FunctionView:
        """The pure view of what it shows now (a :class:`~m1vision.views.FunctionView`)."""
        return FunctionView(
            self._image,
            self._func,
            self.params,
            preview_size=self._preview_size,
            preview_image=self._preview,
        )

    @classmethod
    def _from_view(cls, view: FunctionView, image) -> FunctionExplorer:
        try:
            explorer = cls(view.func, image, preview_size=view.preview_size)
        except InvalidParameterError:  # no signature (an OpenCV builtin): controls from values
            controls = {name: _control_for(value) for name, value in view.args.items()}
            explorer = cls(view.func, image, preview_size=view.preview_size, **controls)
        with explorer._batch.hold():
            for name, value in view.args.items():
                control = explorer.controls.get(name)
                if control is None:
                    explorer._fixed[name] = value
                    continue
                if hasattr(control, "max"):  # a slider: widen it to hold the value
                    control.max, control.min = max(control.max, value), min(control.min, value)
                elif hasattr(control, "options") and value not in [o[1] for o in control.options]:
                    control.options = [*control.options, (str(value), value)]
                control.value = value
        return explorer

    def _name(self) -> str:
        return getattr(self._func, "__qualname__", getattr(self._func, "__name__", "func"))

    def _update(self) -> None:
        start = time.perf_counter()
        key = tuple(sorted((k, repr(v)) for k, v in self.params.items()))
        try:
            png = self._pngs.get(key)
            if png is None:
                png = encode_png(self.view().pictures()[0])
                self._pngs[key] = png
                while len(self._pngs) > _CACHE_SIZE:
                    self._pngs.popitem(last=False)
            else:
                self._pngs.move_to_end(key)
        except Exception as exc:  # shown in the widget; the explorer keeps working
            _show_error(self, exc)
            return
        self.image_widget.value = png
        self.last_ms = (time.perf_counter() - start) * 1000.0
        _clear_error(self)
        ms = f" &middot; {self.last_ms:.1f} ms" if self._timings else ""
        self.readout.value = f"{self._name()}{ms}"

    def code(self) -> str:
        """The call as Python (and, for a step, the one-step pipeline).

        Examples
        --------
        >>> import numpy as np, cv2
        >>> from m1vision.widgets import explore
        >>> fx = explore(cv2.medianBlur, np.zeros((8, 8), np.uint8), ksize=(1, 9, 2))
        >>> print(fx.code(), end="")
        from cv2 import medianBlur
        <BLANKLINE>
        result = medianBlur(image, ksize=1)
        """
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        module = getattr(self._func, "__module__", None)
        name = getattr(self._func, "__name__", "func")
        if module is None:  # OpenCV's builtins do not say where they live
            import cv2

            module = "cv2" if getattr(cv2, name, None) is self._func else None
        importable = module and "<" not in self._name() and "." not in self._name()
        head = f"from {module} import {name}\n\n" if importable else ""
        if self._step is not None:
            return f"{head}step = {name}({args[2:]})\nresult = step(image)\n"
        return f"{head}result = {name}(image{args})\n"

    def to_pipeline(self):
        """A one-step :class:`m1vision.pipeline.Pipeline`, for an m1vision step only."""
        from m1vision import pipeline as pl

        if self._step is None:
            raise InvalidParameterError(
                f"{self._name()} is not an m1vision pipeline step, so it cannot be exported as "
                "a pipeline (a JSON pipeline never imports arbitrary names); explore a step "
                "class such as m1vision.pipeline.GaussianBlur, or use .code()."
            )
        return pl.Pipeline([self._step(**self.params)])

    def export_png(self, path, *, overwrite: bool = False):
        """Write the current view as a PNG file (atomically); return its path."""
        from m1vision.views.export import export_png

        return export_png(self, path, overwrite=overwrite)

    def _repr_mimebundle_(self, **kwargs):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        text = f"FunctionExplorer: {self._name()}({args})"
        return _static_bundle(self.widget, bytes(self.image_widget.value), text, **kwargs)


def explore(
    func: Callable, image, *, preview_size: int = 512, timings: bool = False, **controls
) -> FunctionExplorer:
    """Put any image -> image function on sliders, its controls built from its signature.

    Parameters
    ----------
    func : callable or m1vision step class
        ``func(image, **params) -> image`` (OpenCV, scikit-image, your own), or an
        :mod:`m1vision.pipeline` step class (``GaussianBlur``...), which is built with the
        parameters and applied to the image; a step can then be exported with
        :meth:`FunctionExplorer.to_pipeline`.
    image : ndarray or MedicalImage
        The input (a preview of ``preview_size`` is what the controls re-render).
    preview_size : int
        Longest side of the preview.
    timings : bool
        Show each update's time in the readout (``last_ms`` always holds it).
    **controls
        Per parameter: ``(low, high)`` or ``(low, high, step)`` for a slider (ints give an
        IntSlider), ``[choices]`` for a menu, ``True``/``False`` for a checkbox, anything
        else a fixed value. Parameters not given get controls from their defaults (see
        :func:`~m1vision.widgets._explore.control_specs`).

    Returns
    -------
    FunctionExplorer
        Display it by ending a cell with it. An error in ``func`` (or an output that is not
        an image) is shown in the widget, which keeps working.

    Examples
    --------
    >>> import numpy as np, cv2
    >>> from m1vision.widgets import explore
    >>> img = np.zeros((32, 32), np.uint8); img[8:24, 8:24] = 255
    >>> fx = explore(cv2.GaussianBlur, img, ksize=[(3, 3), (5, 5)], sigmaX=(0.0, 4.0))
    >>> sorted(fx.controls), fx.params["ksize"]
    (['ksize', 'sigmaX'], (3, 3))
    """
    return FunctionExplorer(func, image, preview_size=preview_size, timings=timings, **controls)
