"""The edge explorer: window -> Gaussian blur -> Canny on sliders (internal part)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError
from m1vision.preprocess import auto_canny
from m1vision.views.edges import (
    EdgeView,
    ExplorerParams,
    RenderCache,
    edge_fraction,
    is_wide,
    overlaid_picture,
)
from m1vision.views.png import encode_png
from m1vision.widgets._common import (
    _Batch,
    _check_window,
    _clear_error,
    _show_error,
    _static_bundle,
    _unwrap,
    _widgets,
    _WindowControls,
    blur_canny_controls,
    build_controls,
    overlay_controls,
    overlay_of_controls,
)
from m1vision.widgets._state import Explorer


class EdgeExplorer(Explorer):
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
    timings : bool
        Show each update's time (compute + PNG encode) in the readout; ``last_ms`` always
        holds it.

    Attributes
    ----------
    widget : ipywidgets.Widget
        The whole explorer (what a notebook displays).
    controls : dict
        The controls by name: ``"preset"``, ``"center"``, ``"width"`` (wide images only),
        ``"ksize"``, ``"sigma"``, ``"low"``, ``"high"``, ``"l2_gradient"``, ``"auto"``,
        ``"view"`` (edges, overlay, side by side, curtain), ``"curtain"`` (its position),
        ``"full_resolution"``, ``"zoom"``, ``"pan_x"``, ``"pan_y"`` (a zoomed region is
        cut from the full-resolution image). Their descriptions are the same names; each
        has a tooltip saying what it does (see ``m1vision.widgets._common.CONTROLS``).
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
        timings: bool = False,
        labels=None,
        opacity: float = 0.4,
        outline: bool = False,
        hidden=(),
        overlay=None,
    ):
        w = _widgets()
        self._timings = bool(timings)
        if overlay is None and labels is not None:  # checked before any widget is made
            overlay = EdgeView(image, labels=labels, overlay={
                "opacity": opacity, "outline": outline, "hidden": hidden}).overlay  # fmt: skip
        #: the mask / label overlay as given (its settings follow the controls), or None
        self.overlay = overlay
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
            raise InvalidTypeError(
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
        self._aperture = params.aperture
        self.controls.update(blur_canny_controls(params))
        self.controls.update(
            build_controls(
                {
                    "l2_gradient": params.l2_gradient,
                    "auto": None,
                    "view": params.view,
                    "full_resolution": params.full_resolution,
                    "zoom": params.zoom,
                    "pan_x": params.pan_x,
                    "pan_y": params.pan_y,
                    "curtain": params.curtain,
                },
                full_resolution={
                    "tooltip": "Work on the full image instead of a preview of <= "
                    f"{self._preview_size} px"
                },
            )
        )
        c = self.controls
        full = c["full_resolution"]
        is_large = max(image.shape[:2]) > self._preview_size
        full.layout.display = None if is_large else "none"
        boxes += [c["ksize"], c["sigma"], c["low"], c["high"]]
        boxes += [w.HBox([c["l2_gradient"], c["auto"]]), c["view"], c["curtain"], full]
        boxes += [c["zoom"], c["pan_x"], c["pan_y"]]
        if overlay is not None:
            c.update(overlay_controls(overlay))
            boxes += [w.HBox([c["overlay"], c["outline"]]), c["opacity"], c["hidden"]]

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
        for name in (
            "ksize", "sigma", "l2_gradient", "view", "full_resolution", "zoom", "pan_x",
            "pan_y", "curtain", "overlay", "opacity", "outline", "hidden",
        ):  # fmt: skip
            if name in c:
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
            zoom=float(c["zoom"].value),
            pan_x=float(c["pan_x"].value),
            pan_y=float(c["pan_y"].value),
            curtain=float(c["curtain"].value),
        )

    def _update(self, *, force: bool = False) -> None:
        start = time.perf_counter()
        try:
            params, overlay = self._read_params(), self.current_overlay()
            shown = (params, None if overlay is None else overlay.key())
            if shown == self._last_params and not force and self.last_error is None:
                return
            picture = overlaid_picture(self._cache, params, overlay)
            fraction = edge_fraction(self._cache.edges(params))
            png = encode_png(picture, bilevel=params.view == "edges" and picture.ndim == 2)
        except Exception as exc:  # shown in the widget; the explorer keeps working
            _show_error(self, exc)
            return
        self.image_widget.value = png
        self._last_params = shown
        self.edge_fraction = fraction
        self.last_ms = (time.perf_counter() - start) * 1000.0
        _clear_error(self)
        shape = self._cache.source(params).shape
        ms = f" &middot; {self.last_ms:.1f} ms" if self._timings else ""
        self.readout.value = (
            f"edge pixels: <b>{100.0 * fraction:.2f} %</b> &middot; "
            f"{shape[1]}&times;{shape[0]} px{ms}"
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
            _show_error(self, exc)
            raise
        self.set_params(low=float(result.low), high=float(result.high))
        return result.low, result.high

    def set_image(self, image, *, labels=None) -> None:
        """Show another image (a new slice) with the same settings (and its ``labels``, which
        an explorer with a mask needs)."""
        if self.overlay is not None:
            if labels is None:
                raise InvalidParameterError(
                    "this explorer draws a mask: give the new image's mask too, "
                    "set_image(image, labels=mask)."
                )
            o = self.overlay
            settings = {"opacity": o.opacity, "outline": o.outline, "hidden": o.hidden}
            self.overlay = EdgeView(image, labels=labels, overlay=settings).overlay
        image = check_image(image)
        if is_wide(image) != self._wide:
            raise InvalidImageError(
                f"the new image is {image.dtype} but the explorer was built for "
                f"{'wide' if self._wide else '8-bit'} images; make a new explorer."
            )
        self._cache = RenderCache(image, pipeline=self._pipeline)
        self._last_params = None
        self._update()

    def export_png(self, path, *, overwrite: bool = False):
        """Write the current view as a PNG file (atomically); return its path."""
        from m1vision.views.export import export_png

        return export_png(self, path, overwrite=overwrite)

    @property
    def pipeline(self):
        """The ``pipeline`` the explorer was built with (or None)."""
        return self._pipeline

    # -- state as data --------------------------------------------------------------------
    view_class = EdgeView

    def view(self) -> EdgeView:
        """The pure view of what the explorer shows now (a :class:`~m1vision.views.EdgeView`)."""
        view = EdgeView(
            self._cache.image, self._read_params(), pipeline=self._pipeline, cache=self._cache
        )
        view.overlay = self.current_overlay()
        return view

    def current_overlay(self):
        """The mask overlay as the controls set it now (None without labels)."""
        if self.overlay is None:
            return None
        return overlay_of_controls(self.overlay, self.controls)

    @classmethod
    def _from_view(cls, view: EdgeView, image) -> EdgeExplorer:
        return cls(image, pipeline=view.pipeline, params=view.params, window=view.params.window,
                   overlay=view.overlay)  # fmt: skip

    @property
    def cache(self) -> RenderCache:
        """The :class:`~m1vision.views.edges.RenderCache` behind the picture (its ``counts``)."""
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

    def summary(self) -> str:
        """One deterministic line describing the view (the text beside the picture)."""
        p = self._read_params()
        shape = self._cache.image.shape
        win = f"window {p.center:g}/{p.width:g}, " if p.center is not None else ""
        return (
            f"EdgeExplorer: {shape[1]}x{shape[0]} image, {win}blur {p.ksize}/{p.sigma:g}, "
            f"Canny {p.low:g}-{p.high:g}, view {p.view}, "
            f"edge pixels {100.0 * self.edge_fraction:.2f} %"
        )

    def _repr_mimebundle_(self, **kwargs):
        return _static_bundle(self.widget, bytes(self.image_widget.value), self.summary(), **kwargs)


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
