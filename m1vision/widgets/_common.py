"""Parts shared by the explorers (internal): input unwrapping, batching, window controls."""

from __future__ import annotations

import base64
import contextlib
import html
from collections.abc import Callable, Iterator

import numpy as np

from m1vision.errors import InvalidParameterError
from m1vision.preprocess import WINDOW_PRESETS
from m1vision.views.png import encode_png, side_by_side_picture
from m1vision.views.settings import EdgeSettings

_CUSTOM = "custom"
_FULL_RANGE = "full range"
_DESCRIPTION_STYLE = {"description_width": "80px"}


def _widgets():
    import ipywidgets

    return ipywidgets


def _unwrap(image, window_arg):
    """Accept an ndarray or an object with ``.pixels`` (m1vision.io.MedicalImage).

    Returns ``(array, window, is_ct)``; ``is_ct`` is None when the modality is unknown.
    """
    header_window = None
    is_ct = None
    if not isinstance(image, np.ndarray) and hasattr(image, "pixels"):
        header_window = getattr(image, "window", None)
        modality = getattr(image, "modality", None)
        if modality is not None:
            is_ct = str(modality).upper() == "CT"
        image = image.pixels
    if window_arg is None:
        window_arg = header_window
    return image, window_arg, is_ct


def _check_window(value, *, name: str = "window") -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise InvalidParameterError(f"{name} must be (center, width), got {value!r}.")
    params = EdgeSettings(center=value[0], width=value[1])  # checks both
    return params.center, params.width


def _error_html(exc: BaseException) -> str:
    text = html.escape(f"{type(exc).__name__}: {exc}")
    return (
        '<div style="color:#a00;border:1px solid #d88;background:#fee;padding:4px;'
        f'white-space:pre-wrap;font-family:monospace">{text}</div>'
    )


def _show_error(explorer, exc: BaseException) -> None:
    """Show ``exc`` in ``explorer.error_area`` and keep it as ``last_error``."""
    explorer.last_error = exc
    explorer.error_area.value = _error_html(exc)
    explorer.error_area.layout.display = None


def _clear_error(explorer) -> None:
    """Hide ``explorer``'s error area after a successful update."""
    explorer.last_error = None
    explorer.error_area.value = ""
    explorer.error_area.layout.display = "none"


class _Batch:
    """Collapse several control changes into one update (and never re-enter an update)."""

    def __init__(self, update: Callable[[], None]):
        self._update = update
        self._depth = 0
        self._dirty = False

    def request(self, _change=None) -> None:
        if self._depth:
            self._dirty = True
        else:
            self._depth += 1
            try:
                self._update()
            finally:
                self._depth -= 1

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self._dirty:
            self._dirty = False
            self.request()


class _WindowControls:
    """Centre and width sliders with a preset menu, for images wider than 8 bits."""

    def __init__(
        self,
        value_range: tuple[float, float],
        initial: tuple[float, float] | None,
        *,
        is_ct: bool | None = None,
    ):
        w = _widgets()
        lo, hi = float(value_range[0]), float(value_range[1])
        if hi <= lo:
            hi = lo + 1.0
        full = ((lo + hi) / 2.0, hi - lo)
        self.presets: dict[str, tuple[float, float]] = {_FULL_RANGE: full}
        if is_ct is None:  # unknown modality: values that reach air and stay within HU look CT
            is_ct = -1100.0 <= lo < -500.0 and hi <= 4000.0
        if is_ct:
            self.presets.update(WINDOW_PRESETS)
        initial = initial if initial is not None else full
        centers = [c for c, _ in self.presets.values()] + [initial[0]]
        widths = [wd for _, wd in self.presets.values()] + [initial[1]]
        c_min, c_max = min(lo, *centers), max(hi, *centers)
        w_max = max(2.0 * (hi - lo), *widths)
        step = 1.0 if hi - lo >= 100 else (hi - lo) / 1000.0
        fmt = ".0f" if step >= 1 else ".4g"
        w_min = min(step, initial[1])
        self.preset = w.Dropdown(
            options=[_CUSTOM, *self.presets],
            value=_CUSTOM,
            description="preset",
            style=_DESCRIPTION_STYLE,
        )
        self.center = w.FloatSlider(
            value=initial[0],
            min=c_min,
            max=c_max,
            step=step,
            description="center",
            readout_format=fmt,
            continuous_update=True,
            style=_DESCRIPTION_STYLE,
        )
        self.width = w.FloatSlider(
            value=initial[1],
            min=w_min,
            max=w_max,
            step=step,
            description="width",
            readout_format=fmt,
            continuous_update=True,
            style=_DESCRIPTION_STYLE,
        )
        self.box = w.VBox([self.preset, self.center, self.width])
        self._syncing = False
        self._sync_preset()

    def values(self) -> tuple[float, float]:
        return float(self.center.value), float(self.width.value)

    def wire(self, batch: _Batch) -> None:
        def on_preset(change):
            if self._syncing or change["new"] == _CUSTOM:
                return
            center, width = self.presets[change["new"]]
            self._syncing = True
            try:
                with batch.hold():
                    self.center.value = center
                    self.width.value = width
            finally:
                self._syncing = False

        def on_slider(change):
            if not self._syncing:
                self._sync_preset()
            batch.request(change)

        self.preset.observe(on_preset, names="value")
        self.center.observe(on_slider, names="value")
        self.width.observe(on_slider, names="value")

    def _sync_preset(self) -> None:
        current = self.values()
        name = next((n for n, v in self.presets.items() if v == current), _CUSTOM)
        self._syncing = True
        try:
            self.preset.value = name
        finally:
            self._syncing = False


def _static_bundle(widget, picture_png: bytes | None, text: str, **kwargs) -> dict:
    """The widget's mime bundle plus a static PNG of the current view and a text line.

    A front end with the widget manager shows the live widget; one without it (nbconvert
    HTML, GitHub, VS Code without the widget renderer, a mismatched ipywidgets) shows the
    PNG instead of a blank output or "Error displaying widget".
    """
    bundle = dict(widget._repr_mimebundle_(**kwargs) or {})
    if picture_png:
        bundle["image/png"] = base64.b64encode(picture_png).decode("ascii")
    bundle["text/plain"] = text
    return bundle


def _png_of(pictures: list[np.ndarray]) -> bytes:
    return encode_png(side_by_side_picture(pictures))
