"""The function view: what ``explore(func, image)`` shows, computed without any widget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import InvalidTypeError, RecordError
from m1vision.views.edges import _image_of, preview
from m1vision.views.state import View

__all__ = ["FunctionView", "function_name", "step_class"]


def step_class(func) -> type | None:
    """``func`` if it is a registered m1vision pipeline step class, else None."""
    if not isinstance(func, type):
        return None
    from m1vision import pipeline as pl

    return func if issubclass(func, pl.Step) else None


def function_name(func) -> str:
    """``module.qualname`` of ``func`` (OpenCV's builtins as ``cv2.name``).

    Examples
    --------
    >>> import cv2
    >>> from m1vision.views.function import function_name
    >>> function_name(cv2.medianBlur)
    'cv2.medianBlur'
    """
    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", getattr(func, "__name__", type(func).__name__))
    if module is None:  # OpenCV's builtins do not say where they live
        import cv2

        module = "cv2" if getattr(cv2, name, None) is func else None
    return f"{module}.{name}" if module else name


def _json(value):
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tuples(value):
    # JSON has no tuples: a pair (a kernel size, a menu choice) comes back as one
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


class FunctionView(View, kind="FunctionExplorer"):
    """``func(preview(image), **args)`` as an 8-bit picture (the picture of ``explore()``).

    Parameters
    ----------
    image : ndarray or MedicalImage
    func : callable or m1vision step class
        A step class is built with ``args`` and applied; any other callable is called as
        ``func(image, **args)``.
    args : dict
        The arguments besides the image.
    preview_size : int
        Longest side of the preview the function runs on.

    A state names a step by its registered name and restores it from the step registry; a
    plain function is named (``"cv2.medianBlur"``) but never imported from a state: pass it
    again, ``FunctionView.from_state(state, image, func=cv2.medianBlur)``.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.pipeline import GaussianBlur
    >>> from m1vision.views.function import FunctionView
    >>> img = np.zeros((16, 16), np.uint8); img[4:12, 4:12] = 255
    >>> view = FunctionView(img, GaussianBlur, {"ksize": 5, "sigma": 1.0})
    >>> state = view.state()
    >>> state["function"], state["args"]
    ({'step': 'gaussian_blur'}, {'ksize': 5, 'sigma': 1.0})
    >>> bool((FunctionView.from_state(state, img).picture() == view.picture()).all())
    True
    """

    PARTS: ClassVar[tuple[str, ...]] = ("function", "args", "preview_size")

    def __init__(self, image, func: Callable, args: dict | None = None, *,
                 preview_size: int = 512, preview_image: np.ndarray | None = None):  # fmt: skip
        if not callable(func):
            raise InvalidTypeError(
                f"func must be callable, got {type(func).__name__}. Fix: pass a function of "
                "one image (or a Pipeline), e.g. func=m1vision.preprocess.clahe."
            )
        self.image = check_image(_image_of(image))
        self.func = func
        self.step = step_class(func)
        self.args = dict(args or {})
        self.preview_size = check_int(preview_size, name="preview_size", minimum=16)
        self._preview = preview_image

    @property
    def array(self) -> np.ndarray:
        return self.image

    @property
    def preview(self) -> np.ndarray:
        """The preview the function runs on."""
        if self._preview is None:
            self._preview = preview(self.image, max_size=self.preview_size)
        return self._preview

    def result(self, image: np.ndarray | None = None) -> np.ndarray:
        """The function's output on ``image`` (default the full-resolution image)."""
        image = self.image if image is None else image
        if self.step is not None:
            out = self.step(**self.args)(image)
        else:
            out = self.func(image, **self.args)
        return check_image(out, name=f"the output of {function_name(self.func)}")

    def pictures(self) -> list[np.ndarray]:
        out = self.result(self.preview)
        if out.dtype != np.uint8:
            from m1vision.preprocess import to_uint8

            out = to_uint8(out)
        return [out]

    def parts(self) -> dict[str, Any]:
        if self.step is not None:
            function = {"step": self.step.name}
        else:
            function = {"name": function_name(self.func)}
        return {
            "function": function,
            "args": {k: _json(v) for k, v in self.args.items()},
            "preview_size": self.preview_size,
        }

    @classmethod
    def _from_parts(cls, parts: dict, image, *, func: Callable | None = None) -> FunctionView:
        recorded = parts["function"]
        if "step" in recorded:
            from m1vision.pipeline import get_step

            found = get_step(recorded["step"])  # registered steps only
            if func is not None and func is not found:
                raise RecordError(
                    f"the state explores the step {recorded['step']!r}, but func is "
                    f"{function_name(func)}; leave func out."
                )
            func = found
        elif func is None:
            raise RecordError(
                f"the state explores the function {recorded.get('name')!r}, which a state "
                "never imports; pass it: from_state(state, image, func=that_function)."
            )
        elif function_name(func) != recorded.get("name"):
            raise RecordError(
                f"the state explores {recorded.get('name')!r} but func is "
                f"{function_name(func)!r}; pass the function the state was made with."
            )
        args = {k: _tuples(v) for k, v in parts["args"].items()}
        return cls(image, func, args, preview_size=parts["preview_size"])
