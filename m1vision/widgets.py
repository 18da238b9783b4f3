"""Interactive explorers for JupyterLab: edges, display windows, volumes (ipywidgets).

Each explorer is a set of controls wired with observers to pure functions of
:mod:`m1vision.render` (the compute knows no widget), and shows its picture in an
``ipywidgets.Image`` fed PNG bytes, so an update costs one cached computation and one PNG
encode, not a matplotlib redraw. Display an explorer by making it the last expression of a
cell (or ``IPython.display.display(explorer)``).

* :class:`EdgeExplorer` / :func:`explore_edges`: window -> Gaussian blur -> Canny, with the
  thresholds linked (low <= high), an "Auto" button, three views, a preview of large images,
  the edge-pixel fraction and the time of the last update; export as a pipeline or as code.
* :class:`WindowExplorer`: level/width with presets and the histogram with the window marked.
* :class:`VolumeExplorer`: a slice slider and axis choice over a 3-D volume, with the edge
  controls of :class:`EdgeExplorer`.

An error inside an update (a failing ``pipeline`` step, say) is shown in the explorer's error
area and kept in ``.last_error``; the explorer keeps the last good picture and keeps working.
"""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Callable, Iterator

import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.preprocess import WINDOW_PRESETS, auto_canny, window
from m1vision.render import (
    ExplorerParams,
    RenderCache,
    edge_fraction,
    encode_png,
    histogram_picture,
    is_wide,
    preview,
)

__all__ = ["EdgeExplorer", "VolumeExplorer", "WindowExplorer", "explore_edges"]

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
    params = ExplorerParams(center=value[0], width=value[1])  # checks both
    return params.center, params.width


def _error_html(exc: BaseException) -> str:
    text = html.escape(f"{type(exc).__name__}: {exc}")
    return (
        '<div style="color:#a00;border:1px solid #d88;background:#fee;padding:4px;'
        f'white-space:pre-wrap;font-family:monospace">{text}</div>'
    )


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


class EdgeExplorer:
    """Explore Canny edges: window, Gaussian blur and thresholds on sliders, live.

    Parameters
    ----------
    image : ndarray or MedicalImage
        A 2-D gray or BGR image (any supported dtype), or an object with ``.pixels`` (and
        ``.window``) such as :class:`m1vision.io.MedicalImage`. Not modified.
    pipeline : callable, optional
        Pre-processing applied to the source (the preview, or the full image at full
        resolution) before the window, e.g. ``Pipeline([Clahe()])``. With an
        :class:`m1vision.pipeline.Pipeline`, :meth:`to_pipeline` includes its steps.
    window : (center, width), optional
        Initial display window; default the image's ``.window`` or its full value range.
        Window controls exist only for images wider than 8 bits.
    preview_size : int
        Larger images are shown downscaled to this longest side until "full resolution" is on.
    value_range : (low, high), optional
        Range of the window sliders; default the image's min and max (a volume passes its
        own).
    params : ExplorerParams or dict, optional
        Initial settings (window, blur, thresholds, view...), e.g. another explorer's
        ``.params``; ``window`` wins over ``params``' window.

    Attributes
    ----------
    widget : ipywidgets.Widget
        The whole explorer (what a notebook displays).
    controls : dict
        The controls by name: ``"preset"``, ``"center"``, ``"width"`` (wide images only),
        ``"ksize"``, ``"sigma"``, ``"low"``, ``"high"``, ``"l2_gradient"``, ``"auto"``,
        ``"view"``, ``"full_resolution"``. Their descriptions are the same names.
    image_widget : ipywidgets.Image
        The picture, PNG bytes of ``render(image, self.params)``.
    edge_fraction : float
        Fraction of edge pixels in the last picture; ``last_ms``: milliseconds of the last
        update (compute + PNG encode); ``last_error``: the exception of the last update, or
        None.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.widgets import EdgeExplorer
    >>> img = np.zeros((64, 64), np.uint8); img[16:48, 16:48] = 200
    >>> ex = EdgeExplorer(img)
    >>> ex.controls["high"].value = 120
    >>> ex.params["high"], ex.edge_fraction * 64 * 64  # the square's outline: 4 * 32 - 4 pixels
    (120.0, 124.0)
    """

    def __init__(
        self,
        image,
        *,
        pipeline: Callable[[np.ndarray], np.ndarray] | None = None,
        window: tuple[float, float] | None = None,
        preview_size: int = 512,
        value_range: tuple[float, float] | None = None,
        params: ExplorerParams | dict | None = None,
    ):
        w = _widgets()
        image, window, is_ct = _unwrap(image, window)
        image = check_image(image)
        if image.ndim == 3 and image.dtype != np.uint8:
            raise InvalidImageError(
                f"image is a color image of dtype {image.dtype}; the explorer windows gray "
                "images only. Pass m1vision.preprocess.to_gray(image) or an 8-bit BGR image."
            )
        if isinstance(params, dict):
            params = ExplorerParams(**params)
        elif params is None:
            params = ExplorerParams(preview_size=preview_size)
        elif not isinstance(params, ExplorerParams):
            raise TypeError(
                f"params must be an ExplorerParams or a dict, got {type(params).__name__}."
            )
        if window is None and params.center is not None:
            window = (params.center, params.width)
        window = _check_window(window)
        self._pipeline = pipeline
        self._cache = RenderCache(image, pipeline=pipeline)
        # What the window applies to is the pipeline's output (a CLAHE step makes it 8-bit).
        source = image
        if pipeline is not None:
            with contextlib.suppress(Exception):  # the first update shows the error
                source = self._cache.source(params.replace(center=None, width=None))
        self._wide = is_wide(source)
        self._preview_size = check_int(params.preview_size, name="preview_size", minimum=16)
        self._last_params: ExplorerParams | None = None
        self._linking = True
        self.edge_fraction: float = float("nan")
        self.last_ms: float = float("nan")
        self.last_error: BaseException | None = None
        self._batch = _Batch(self._update)

        self.controls: dict[str, object] = {}
        boxes = []
        self._window_controls = None
        if self._wide:
            if value_range is None:
                value_range = (float(source.min()), float(source.max()))
            self._window_controls = _WindowControls(value_range, window, is_ct=is_ct)
            self.controls.update(
                preset=self._window_controls.preset,
                center=self._window_controls.center,
                width=self._window_controls.width,
            )
            boxes.append(self._window_controls.box)
        elif window is not None:
            raise InvalidParameterError(
                f"window={window!r} was given but the image is 8-bit ({source.dtype}); a "
                "window applies to images wider than 8 bits (CT in HU, 16-bit). Leave it out."
            )
        style = _DESCRIPTION_STYLE
        ksize = w.IntSlider(
            value=params.ksize,
            min=1,
            max=max(31, params.ksize),
            step=2,
            description="ksize",
            style=style,
        )
        sigma = w.FloatSlider(
            value=params.sigma,
            min=0.0,
            max=max(10.0, params.sigma),
            step=0.1,
            description="sigma",
            style=style,
        )
        top = max(255.0, params.high)
        low = w.FloatSlider(
            value=params.low,
            min=0.0,
            max=top,
            step=1.0,
            description="low",
            readout_format=".0f",
            style=style,
        )
        high = w.FloatSlider(
            value=params.high,
            min=0.0,
            max=top,
            step=1.0,
            description="high",
            readout_format=".0f",
            style=style,
        )
        l2 = w.Checkbox(value=params.l2_gradient, description="l2_gradient", indent=False)
        auto = w.Button(
            description="Auto",
            tooltip="thresholds from the median rule (m1vision.preprocess.auto_canny)",
        )
        view = w.ToggleButtons(
            options=[("edges", "edges"), ("overlay", "overlay"), ("side by side", "side_by_side")],
            value=params.view,
            description="view",
            style={"button_width": "100px", **style},
        )
        full = w.ToggleButton(
            value=params.full_resolution,
            description="full_resolution",
            tooltip=f"work on the full image instead of a preview of <= {self._preview_size} px",
        )
        self._aperture = params.aperture
        self.controls.update(
            ksize=ksize,
            sigma=sigma,
            low=low,
            high=high,
            l2_gradient=l2,
            auto=auto,
            view=view,
            full_resolution=full,
        )
        is_large = max(image.shape[:2]) > self._preview_size
        full.layout.display = None if is_large else "none"
        boxes += [ksize, sigma, low, high, w.HBox([l2, auto]), view, full]

        # A fixed display width: the picture does not jump while a slider is dragged.
        self.image_widget = w.Image(format="png", layout={"width": "384px", "max_width": "100%"})
        self.readout = w.HTML()
        self.error_area = w.HTML(layout={"display": "none"})
        self.widget = w.HBox(
            [
                w.VBox(boxes, layout={"min_width": "340px"}),
                w.VBox([self.image_widget, self.readout, self.error_area]),
            ]
        )
        self._wire()
        self._update()

    # -- wiring ---------------------------------------------------------------------------
    def _wire(self) -> None:
        c = self.controls
        if self._window_controls is not None:
            self._window_controls.wire(self._batch)

        def on_low(change):
            if self._linking and change["new"] > c["high"].value:
                with self._batch.hold():
                    c["high"].value = change["new"]
            self._batch.request()

        def on_high(change):
            if self._linking and change["new"] < c["low"].value:
                with self._batch.hold():
                    c["low"].value = change["new"]
            self._batch.request()

        c["low"].observe(on_low, names="value")
        c["high"].observe(on_high, names="value")
        for name in ("ksize", "sigma", "l2_gradient", "view", "full_resolution"):
            c[name].observe(self._batch.request, names="value")
        c["auto"].on_click(lambda _button: self.auto())

    def _read_params(self) -> ExplorerParams:
        c = self.controls
        center = width = None
        if self._window_controls is not None:
            center, width = self._window_controls.values()
        return ExplorerParams(
            center=center,
            width=width,
            ksize=int(c["ksize"].value),
            sigma=float(c["sigma"].value),
            low=float(c["low"].value),
            high=float(c["high"].value),
            l2_gradient=bool(c["l2_gradient"].value),
            aperture=self._aperture,
            view=c["view"].value,
            preview_size=self._preview_size,
            full_resolution=bool(c["full_resolution"].value),
        )

    def _update(self, *, force: bool = False) -> None:
        start = time.perf_counter()
        try:
            params = self._read_params()
            if params == self._last_params and not force and self.last_error is None:
                return
            picture = self._cache.render(params)
            fraction = edge_fraction(self._cache.edges(params))
            png = encode_png(picture, bilevel=params.view == "edges")
        except Exception as exc:  # shown in the widget; the explorer keeps working
            self.last_error = exc
            self.error_area.value = _error_html(exc)
            self.error_area.layout.display = None
            return
        self.image_widget.value = png
        self._last_params = params
        self.edge_fraction = fraction
        self.last_ms = (time.perf_counter() - start) * 1000.0
        self.last_error = None
        self.error_area.value = ""
        self.error_area.layout.display = "none"
        shape = self._cache.source(params).shape
        self.readout.value = (
            f"edge pixels: <b>{100.0 * fraction:.2f} %</b> &middot; "
            f"{shape[1]}&times;{shape[0]} px &middot; {self.last_ms:.1f} ms"
        )

    # -- public ---------------------------------------------------------------------------
    @property
    def params(self) -> dict:
        """The current settings as a JSON-safe dict (the fields of :class:`ExplorerParams`)."""
        return self._read_params().to_dict()

    def render_params(self) -> ExplorerParams:
        """The current settings as :class:`ExplorerParams` (``render(image, them)`` is shown)."""
        return self._read_params()

    def set_params(self, **changes) -> None:
        """Set several controls at once (one update), e.g. ``set_params(low=20, high=60)``.

        Names are those of :attr:`controls` plus ``"window"`` (a ``(center, width)`` pair).
        Thresholds are set as given (both together may move low and high past each other).
        """
        unknown = set(changes) - (set(self.controls) - {"auto"}) - {"window"}
        if unknown:
            raise InvalidParameterError(
                f"unknown control(s) {sorted(unknown)}; known: "
                f"{[*sorted(set(self.controls) - {'auto'}), 'window']}."
            )
        if "window" in changes:
            if self._window_controls is None:
                raise InvalidParameterError("this image is 8-bit: it has no window controls.")
            changes["center"], changes["width"] = _check_window(changes.pop("window"))
        if "low" in changes and "high" in changes:
            ExplorerParams(low=changes["low"], high=changes["high"])  # checks low <= high
        with self._batch.hold():
            self._linking = False
            try:
                for name, value in changes.items():
                    self.controls[name].value = value
            finally:
                self._linking = True

    def auto(self) -> tuple[int, int]:
        """Set the thresholds by the median rule (what the "Auto" button does); return them.

        The thresholds are those of :func:`m1vision.preprocess.auto_canny` on the blurred
        picture Canny sees in the current settings (preview or full resolution).
        """
        try:
            result = auto_canny(self._cache.blurred(self._read_params()))
        except Exception as exc:
            self.last_error = exc
            self.error_area.value = _error_html(exc)
            self.error_area.layout.display = None
            raise
        self.set_params(low=float(result.low), high=float(result.high))
        return result.low, result.high

    def set_image(self, image) -> None:
        """Show another image (a new slice) with the same settings."""
        image = check_image(image)
        if is_wide(image) != self._wide:
            raise InvalidImageError(
                f"the new image is {image.dtype} but the explorer was built for "
                f"{'wide' if self._wide else '8-bit'} images; make a new explorer."
            )
        self._cache = RenderCache(image, pipeline=self._pipeline)
        self._last_params = None
        self._update()

    @property
    def cache(self) -> RenderCache:
        """The :class:`~m1vision.render.RenderCache` behind the picture (its ``counts``)."""
        return self._cache

    def to_pipeline(self):
        """The current settings as an :class:`m1vision.pipeline.Pipeline`.

        ``Window(center, width) -> GaussianBlur(ksize, sigma) -> Canny(low, high, aperture,
        l2_gradient)`` (an 8-bit image has no Window step; a wide image without a window gets
        ``ToUint8()``), preceded by the steps of the explorer's ``pipeline`` if it is a
        Pipeline. On the full-resolution image its output equals
        ``render(image, params with view="edges" and full_resolution=True)`` exactly.
        """
        from m1vision import pipeline as pl

        p = self._read_params()
        steps = []
        if self._pipeline is not None:
            if not isinstance(self._pipeline, pl.Pipeline):
                raise InvalidParameterError(
                    "the explorer's pipeline is a plain callable, which a Pipeline cannot hold; "
                    "build the explorer with an m1vision.pipeline.Pipeline to export it."
                )
            steps.extend(self._pipeline.steps)
        if p.center is not None:
            steps.append(pl.Window(center=p.center, width=p.width))
        elif self._wide:
            steps.append(pl.ToUint8())
        steps.append(pl.GaussianBlur(ksize=p.ksize, sigma=p.sigma))
        steps.append(
            pl.Canny(low=p.low, high=p.high, aperture=p.aperture, l2_gradient=p.l2_gradient)
        )
        return pl.Pipeline(steps)

    def code(self) -> str:
        """Python code ("copy as code") that rebuilds :meth:`to_pipeline`'s pipeline."""
        from m1vision import pipeline as pl

        pipe = self.to_pipeline()
        names = [type(s).__name__ for s in pipe.steps]
        if all(getattr(pl, n, None) is type(s) for n, s in zip(names, pipe.steps, strict=True)):
            lines = []
            for name, step in zip(names, pipe.steps, strict=True):
                # every parameter spelled out (defaults may change), None ones left out
                args = ", ".join(f"{k}={v!r}" for k, v in step.params().items() if v is not None)
                lines.append(f"    {name}({args}),")
            imports = ", ".join(sorted({*names, "Pipeline"}))
            return (
                f"from m1vision.pipeline import {imports}\n\n"
                "pipeline = Pipeline(\n    [\n"
                + "\n".join("    " + line for line in lines)
                + "\n    ]\n)\n"
            )
        return (
            "from m1vision.pipeline import Pipeline\n\n"
            f"pipeline = Pipeline.from_json({pipe.to_json()!r})\n"
        )

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def explore_edges(image, **kwargs) -> EdgeExplorer:
    """Make an :class:`EdgeExplorer` for ``image`` (display it by ending a cell with it).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.widgets import explore_edges
    >>> explore_edges(np.zeros((32, 32), np.uint16)).params["center"]
    0.5
    """
    return EdgeExplorer(image, **kwargs)


class WindowExplorer:
    """Set a display window (level/width) with presets, seeing the histogram and the image.

    Parameters
    ----------
    image : ndarray or MedicalImage
        A 2-D gray image wider than 8 bits (CT in HU, 16-bit), or an object with ``.pixels``.
    window : (center, width), optional
        Initial window; default the image's ``.window`` or its full value range.
    preview_size : int
        The image is shown downscaled to this longest side.
    bins : int
        Histogram bins over the image's value range.

    Attributes
    ----------
    controls : dict
        ``"preset"``, ``"center"``, ``"width"``.
    image_widget, histogram_widget : ipywidgets.Image
        PNG of ``window(preview(image), center, width)`` and of
        :func:`m1vision.render.histogram_picture` with the window marked.
    clipped : (float, float)
        Fractions of pixels below and above the window (shown as a readout).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.widgets import WindowExplorer
    >>> hu = np.linspace(-1000, 1000, 64 * 64, dtype=np.float32).reshape(64, 64)
    >>> wx = WindowExplorer(hu)
    >>> wx.controls["preset"].value = "soft_tissue"
    >>> wx.params, [round(v, 3) for v in wx.clipped]
    ({'center': 40.0, 'width': 400.0}, [0.42, 0.38])
    """

    def __init__(self, image, *, window=None, preview_size: int = 512, bins: int = 128):
        w = _widgets()
        image, window, is_ct = _unwrap(image, window)
        image = check_image(image, allow_color=False)
        if not is_wide(image):
            raise InvalidImageError(
                "image is 8-bit (uint8); a display window is for images wider than 8 bits "
                "(CT in HU, 16-bit). Explore an 8-bit image with EdgeExplorer instead."
            )
        self._image = image
        self._preview = preview(image, max_size=preview_size)
        self._bins = check_int(bins, name="bins", minimum=2)
        self._range = (float(image.min()), float(image.max()))
        if self._range[1] <= self._range[0]:
            self._range = (self._range[0], self._range[0] + 1.0)
        self._counts, _ = np.histogram(image, bins=self._bins, range=self._range)
        self._sorted = np.sort(image, axis=None)
        self._controls = _WindowControls(self._range, _check_window(window), is_ct=is_ct)
        self.controls = {
            "preset": self._controls.preset,
            "center": self._controls.center,
            "width": self._controls.width,
        }
        self.clipped: tuple[float, float] = (float("nan"), float("nan"))
        self.last_error: BaseException | None = None
        self.image_widget = w.Image(format="png")
        self.histogram_widget = w.Image(format="png")
        self.readout = w.HTML()
        self.error_area = w.HTML(layout={"display": "none"})
        self.widget = w.HBox(
            [
                w.VBox([self._controls.box, self.histogram_widget, self.readout, self.error_area]),
                self.image_widget,
            ]
        )
        self._batch = _Batch(self._update)
        self._controls.wire(self._batch)
        self._update()

    @property
    def params(self) -> dict:
        """``{"center": ..., "width": ...}``."""
        center, width = self._controls.values()
        return {"center": center, "width": width}

    def histogram(self) -> np.ndarray:
        """The histogram picture as shown (BGR ``uint8``)."""
        return histogram_picture(
            self._image,
            window=self._controls.values(),
            bins=self._bins,
            value_range=self._range,
            counts=self._counts,
        )

    def _update(self) -> None:
        try:
            center, width = self._controls.values()
            picture = window(self._preview, center=center, width=width)
            hist = self.histogram()
            n = self._sorted.size
            below = np.searchsorted(self._sorted, center - width / 2.0, side="left") / n
            above = 1.0 - np.searchsorted(self._sorted, center + width / 2.0, side="right") / n
            image_png, hist_png = encode_png(picture), encode_png(hist)
        except Exception as exc:  # shown in the widget; the explorer keeps working
            self.last_error = exc
            self.error_area.value = _error_html(exc)
            self.error_area.layout.display = None
            return
        self.image_widget.value = image_png
        self.histogram_widget.value = hist_png
        self.clipped = (float(below), float(above))
        self.last_error = None
        self.error_area.layout.display = "none"
        self.readout.value = (
            f"window {center - width / 2:.6g} to {center + width / 2:.6g} &middot; "
            f"below: {100 * below:.1f} % &middot; above: {100 * above:.1f} %"
        )

    def to_pipeline(self):
        """An :class:`m1vision.pipeline.Pipeline` of one ``Window`` step with this window."""
        from m1vision import pipeline as pl

        return pl.Pipeline([pl.Window(**self.params)])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class _Slice:
    """A slice with its volume's modality, for :func:`_unwrap`."""

    def __init__(self, pixels: np.ndarray, modality: str | None):
        self.pixels, self.modality, self.window = pixels, modality, None


class VolumeExplorer:
    """Browse the slices of a 3-D volume along an axis with the edge controls.

    Parameters
    ----------
    volume : ndarray or MedicalImage
        A 3-D ``(Z, H, W)`` array (or an object with ``.pixels`` and ``.window``).
    axis : {0, 1, 2}
        The axis slices are taken along.
    index : int, optional
        The first slice shown; default the middle one.
    **kwargs
        Passed to :class:`EdgeExplorer` (``window``, ``pipeline``, ``preview_size``,
        ``params``). The window sliders span the whole volume's value range.

    Attributes
    ----------
    edges : EdgeExplorer
        The edge explorer of the current slice (its controls, params, picture).
    controls : dict
        ``"axis"`` and ``"slice"``, plus the edge controls.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.widgets import VolumeExplorer
    >>> vol = np.zeros((8, 32, 32), np.float32); vol[:, 8:24, 8:24] = 100.0
    >>> vx = VolumeExplorer(vol)
    >>> vx.controls["slice"].value, vx.edges.params["center"]
    (4, 50.0)
    """

    def __init__(self, volume, *, axis: int = 0, index: int | None = None, **kwargs):
        w = _widgets()
        medical = volume if not isinstance(volume, np.ndarray) else None
        volume, window_, _is_ct = _unwrap(volume, kwargs.pop("window", None))
        if not isinstance(volume, np.ndarray):
            raise TypeError(f"volume must be a numpy.ndarray, got {type(volume).__name__}.")
        if volume.ndim != 3:
            raise InvalidImageError(
                f"volume must be 3-D (Z, H, W), got shape {volume.shape}; "
                "for one 2-D image use EdgeExplorer."
            )
        axis = check_int(axis, name="axis")
        if axis not in (0, 1, 2):
            raise InvalidParameterError(f"axis must be 0, 1 or 2, got {axis}.")
        if min(volume.shape) < 1:
            raise InvalidImageError(f"volume is empty (shape {volume.shape}).")
        self._volume = volume
        n = volume.shape[axis]
        index = n // 2 if index is None else check_int(index, name="index", minimum=0)
        if index >= n:
            raise InvalidParameterError(f"index must be < {n} along axis {axis}, got {index}.")
        value_range = (float(volume.min()), float(volume.max()))
        first = self.slice(axis, index)
        if medical is not None and hasattr(medical, "modality"):
            # keep the modality (CT presets or not) for the slice's explorer
            first = _Slice(first, getattr(medical, "modality", None))
        self.edges = EdgeExplorer(first, window=window_, value_range=value_range, **kwargs)
        self.axis_widget = w.ToggleButtons(
            options=[0, 1, 2], value=axis, description="axis", style={"button_width": "40px"}
        )
        self.slice_widget = w.IntSlider(
            value=index, min=0, max=n - 1, description="slice", continuous_update=True
        )
        self.controls = {"axis": self.axis_widget, "slice": self.slice_widget}
        self.controls.update(self.edges.controls)
        self.axis_widget.observe(self._on_axis, names="value")
        self.slice_widget.observe(self._on_slice, names="value")
        self.widget = w.VBox([w.HBox([self.axis_widget, self.slice_widget]), self.edges.widget])

    def slice(self, axis: int, index: int) -> np.ndarray:
        """The 2-D slice ``index`` along ``axis`` (a contiguous copy if needed)."""
        return np.ascontiguousarray(np.take(self._volume, index, axis=axis))

    @property
    def params(self) -> dict:
        """The edge settings plus ``axis`` and ``slice``."""
        return {
            "axis": self.axis_widget.value,
            "slice": self.slice_widget.value,
            **self.edges.params,
        }

    def _on_axis(self, change) -> None:
        n = self._volume.shape[change["new"]]
        middle = n // 2
        # moving the slider may fire _on_slice with the old axis' bounds; set max first
        self.slice_widget.unobserve(self._on_slice, names="value")
        try:
            self.slice_widget.max = n - 1
            self.slice_widget.value = middle
        finally:
            self.slice_widget.observe(self._on_slice, names="value")
        self.edges.set_image(self.slice(change["new"], middle))

    def _on_slice(self, change) -> None:
        self.edges.set_image(self.slice(self.axis_widget.value, change["new"]))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
