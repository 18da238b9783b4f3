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
        controls = build_controls(
            {"preset": _CUSTOM, "center": initial[0], "width": initial[1]},
            preset={"options": [_CUSTOM, *self.presets]},
            center={"min": c_min, "max": c_max, "step": step, "readout_format": fmt},
            width={"min": w_min, "max": w_max, "step": step, "readout_format": fmt},
        )
        self.preset, self.center, self.width = (controls[n] for n in ("preset", "center", "width"))
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


# -- the controls, from one table ------------------------------------------------------------
#: Every explorer control by name: its kind, range and what it does (its tooltip). The
#: explorers build theirs with :func:`build_controls`; :func:`make_control` is the one
#: builder, also behind the controls :func:`m1vision.widgets.explore` reads off a signature.
CONTROLS: dict[str, dict] = {
    "preset": {"kind": "choice", "tooltip": (
        "Display window presets (CT: brain, lung, bone...): choosing one sets center and "
        "width; 'custom' is any other window")},
    "center": {"kind": "float", "tooltip": (
        "Window center (level), in the image's units (HU for CT): the value shown mid-gray")},
    "width": {"kind": "float", "tooltip": (
        "Window width: the range of values spread from black to white around the center; "
        "values outside it are clipped to black or white")},
    "ksize": {"kind": "int", "min": 1, "max": 31, "step": 2, "tooltip": (
        "Gaussian blur before Canny: kernel size in pixels (odd; 1 = no blur). Larger "
        "smooths more and keeps fewer, stronger edges")},
    "sigma": {"kind": "float", "min": 0.0, "max": 10.0, "step": 0.1, "tooltip": (
        "Gaussian blur before Canny: standard deviation in pixels (0 = derived from ksize)")},
    "low": {"kind": "float", "min": 0.0, "max": 255.0, "step": 1.0, "readout_format": ".0f",
            "tooltip": (
        "Canny low threshold, on the gradient of the windowed 8-bit blurred image: weaker "
        "gradients are never edges; between low and high, only where they continue a strong "
        "edge (low <= high is kept)")},
    "high": {"kind": "float", "min": 0.0, "max": 255.0, "step": 1.0, "readout_format": ".0f",
             "tooltip": (
        "Canny high threshold: gradients above it are edges for sure and start edge lines; "
        "raise it for fewer edges (low <= high is kept)")},
    "l2_gradient": {"kind": "bool", "tooltip": (
        "Canny's gradient magnitude as the exact sqrt(dx^2 + dy^2) instead of |dx| + |dy|")},
    "auto": {"kind": "button", "description": "Auto", "tooltip": (
        "Set low and high by the median rule (m1vision.preprocess.auto_canny) on the "
        "blurred picture")},
    "view": {"kind": "toggles", "options": [("edges", "edges"), ("overlay", "overlay"),
                                            ("side by side", "side_by_side"),
                                            ("curtain", "curtain")],
             "style": {"button_width": "100px"},
             "tooltips": ["the edges alone (white on black)", "the edges (green) over the image",
                          "the image and its edges side by side",
                          "the image left of the curtain, edges over it right of it"],
             "tooltip": (
        "What to show: the edges alone, the edges over the image, both side by side, or a "
        "curtain between image and edges")},
    "curtain": {"kind": "float", "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
        "The curtain view: the image left of it, the edges over it right of it")},
    "full_resolution": {"kind": "toggle", "tooltip": (
        "Work on the full image instead of a downscaled preview")},
    "zoom": {"kind": "float", "min": 1.0, "max": 32.0, "step": 0.5, "tooltip": (
        "Magnify a region cut from the full-resolution image (1 = the whole image)")},
    "pan_x": {"kind": "float", "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
        "Zoomed region's horizontal centre: 0 = left edge, 1 = right edge")},
    "pan_y": {"kind": "float", "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
        "Zoomed region's vertical centre: 0 = top edge, 1 = bottom edge")},
    "edges": {"kind": "bool", "tooltip": (
        "Draw Canny edges (green) over each plane, with the blur and thresholds below")},
    "crosshair": {"kind": "bool", "tooltip": (
        "Draw the crosshair through the selected voxel and the orientation letters")},
    "smooth": {"kind": "bool", "tooltip": (
        "Thick slices: interpolate linearly between slices in the coronal and sagittal "
        "planes instead of repeating each slice (stairs)")},
    **{plane: {"kind": "int", "tooltip": (
        f"{plane.capitalize()} slice ({index} index), its position in mm beside it; the "
        f"arrow keys step it with the mouse over the {plane} picture")}
       for plane, index in (("axial", "z"), ("coronal", "row"), ("sagittal", "column"))},
    "overlay": {"kind": "bool", "tooltip": (
        "Draw the label map(s) over the planes (off: the image alone)")},
    "opacity": {"kind": "float", "min": 0.0, "max": 1.0, "step": 0.05, "tooltip": (
        "Opacity of the filled labels: 0 = invisible, 1 = opaque")},
    "outline": {"kind": "bool", "tooltip": (
        "Draw the labels as outlines instead of filled (the reference map is always dashed "
        "outlines)")},
    "hidden": {"kind": "multiple", "rows": 6, "description": "hide", "tooltip": (
        "Labels not drawn: select one or several (Ctrl/Cmd-click, Shift-click for a range)")},
    "label": {"kind": "choice", "description": "go to", "tooltip": (
        "Jump the crosshair to a label: the voxel of the label nearest its centroid")},
    "axis": {"kind": "toggles", "options": [0, 1, 2], "style": {"button_width": "40px"},
             "tooltip": "The volume axis the slices are taken along: 0 = z, 1 = rows, 2 = columns"},
    "slice": {"kind": "int", "tooltip": (
        "Slice index along the axis, its position in mm beside it; the arrow keys step it "
        "with the mouse over the picture")},
}  # fmt: skip

_RANGE_KINDS = ("int", "float")


def make_control(name: str, value, *, kind: str, tooltip: str, **spec):
    """One control named ``name`` (its description) holding ``value``, with ``tooltip``.

    ``kind`` is ``"int"``/``"float"`` (a slider; ``min``, ``max``, ``step`` in ``spec``,
    the range stretched to hold ``value``), ``"bool"`` (a checkbox), ``"choice"`` (a menu of
    ``options``), ``"toggles"`` (buttons of ``options``), ``"toggle"`` (one toggle button),
    ``"multiple"`` (a list to pick several of ``options``) or ``"button"``. Other ``spec``
    keys (``readout_format``, ``style``, ``description``...) go to the widget.
    """
    w = _widgets()
    spec = dict(spec)
    description = spec.pop("description", name)
    style = {**_DESCRIPTION_STYLE, **spec.pop("style", {})}
    common = {"description": description, "tooltip": tooltip}
    if kind == "button":
        return w.Button(**common, **spec)
    if kind == "bool":
        compact = {"width": "auto", "margin": "2px 16px 2px 0"}  # side by side, not 300 px
        return w.Checkbox(value=bool(value), indent=False, layout=compact, **common, **spec)
    if kind == "toggle":
        return w.ToggleButton(value=bool(value), **common, **spec)
    if kind == "multiple":
        return w.SelectMultiple(options=spec.pop("options"), value=tuple(value), style=style,
                                **common, **spec)  # fmt: skip
    if kind in ("choice", "toggles"):
        options = spec.pop("options")
        cls = w.Dropdown if kind == "choice" else w.ToggleButtons
        return cls(options=options, value=value, style=style, **common, **spec)
    if kind not in _RANGE_KINDS:
        raise ValueError(f"unknown control kind {kind!r}")
    low = spec.pop("min", 0)
    high = spec.pop("max", value)
    cls = w.IntSlider if kind == "int" else w.FloatSlider
    return cls(value=value, min=min(low, value), max=max(high, value), style=style,
               continuous_update=True, **common, **spec)  # fmt: skip


def build_controls(values: dict, **changes) -> dict:
    """The controls of :data:`CONTROLS` named by ``values``' keys, holding its values.

    ``changes`` maps a name to what differs from the table for this explorer (a range, a
    tooltip), e.g. ``slice={"max": n - 1}``.

    Examples
    --------
    >>> from m1vision.widgets._common import build_controls
    >>> c = build_controls({"ksize": 5, "sigma": 0.0}, sigma={"max": 4.0})
    >>> c["ksize"].max, c["sigma"].max, "kernel size" in c["ksize"].tooltip
    (31, 4.0, True)
    """
    return {
        name: make_control(name, value, **{**CONTROLS[name], **changes.get(name, {})})
        for name, value in values.items()
    }


def overlay_controls(overlay, *, picker: bool = False) -> dict:
    """``overlay`` (show), ``opacity``, ``outline``, ``hidden`` (a multi-select of the labels,
    usable with a hundred) holding ``overlay``'s settings; with ``picker`` also ``label``, a
    menu of the labels to jump to."""
    names = overlay.names()
    options = [(f"{v} {name}", v) for v, name in names.items()]
    values = {"overlay": overlay.show, "opacity": overlay.opacity, "outline": overlay.outline,
              "hidden": tuple(v for v in overlay.hidden if v in names)}  # fmt: skip
    if picker:
        values["label"] = None
    return build_controls(
        values, hidden={"options": options}, label={"options": [("(a label)", None), *options]}
    )


def overlay_of_controls(overlay, controls: dict):
    """``overlay`` with the settings its controls (:func:`overlay_controls`) hold now."""
    c = controls
    return overlay.replace(
        show=bool(c["overlay"].value), opacity=float(c["opacity"].value),
        outline=bool(c["outline"].value), hidden=tuple(c["hidden"].value),
    )  # fmt: skip


def blur_canny_controls(params) -> dict:
    """``ksize``, ``sigma``, ``low``, ``high`` holding ``params``' values (the edge and the
    tri-planar explorers share them; the thresholds' range reaches ``high`` if above 255)."""
    top = max(255.0, params.high)
    return build_controls(
        {name: getattr(params, name) for name in ("ksize", "sigma", "low", "high")},
        low={"max": top},
        high={"max": top},
    )


def key_events(image_widget, on_key: Callable[[str], None]):
    """Arrow keys (and Page Up/Down, Home, End) over ``image_widget`` call ``on_key(key)``.

    Through ipyevents: the picture takes the keyboard while the mouse is over it (every key:
    move the mouse away to type elsewhere), and the key's default action and its way up the
    page are stopped, so the front end's own shortcuts (Notebook 7 moves between cells on the
    arrow keys, taking them from any slider) do not see it. Not on a slider: it would swallow
    the digits typed into its readout. Returns the ``ipyevents.Event``, or None without
    ipyevents.
    """
    try:
        from ipyevents import Event
    except ImportError:  # pragma: no cover - a dependency; the sliders still work
        return None
    from m1vision.planes import SLICE_KEYS

    event = Event(
        source=image_widget,
        watched_events=["keydown"],
        prevent_default_action=True,
        ignore_modifier_key_events=True,
        wait=0,  # a throttled key would not be stopped: every key press counts
    )

    def handle(e):
        if e.get("key") in SLICE_KEYS and not (e.get("ctrlKey") or e.get("metaKey")):
            on_key(e["key"])

    event.on_dom_event(handle)
    return event
