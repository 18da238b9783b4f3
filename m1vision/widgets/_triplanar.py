"""The tri-planar volume explorer: axial, coronal and sagittal planes, linked (internal part)."""

from __future__ import annotations

import html
import time

import numpy as np

from m1vision.draw import legend_entries, legend_html
from m1vision.errors import InvalidParameterError, InvalidTypeError
from m1vision.geometry import PLANES, plane_geometry, voxel_to_ras
from m1vision.views.overlay import Overlay
from m1vision.views.planes import (
    PlaneCache,
    TriPlanarParams,
    TriPlanarView,
    display_to_voxel,
    slice_after_key,
    slice_position_text,
    value_at,
)
from m1vision.views.png import encode_png
from m1vision.widgets._common import (
    _Batch,
    _check_window,
    _clear_error,
    _png_of,
    _show_error,
    _static_bundle,
    _unwrap,
    _widgets,
    _WindowControls,
    blur_canny_controls,
    build_controls,
    key_events,
    overlay_controls,
    overlay_of_controls,
)
from m1vision.widgets._state import Explorer

# the slider of each plane moves the crosshair along that plane's slice axis
_SLIDER_AXIS = {plane: plane_geometry(plane)[0] for plane in PLANES}
_UNDER_THE_MOUSE = "<b>value under the mouse:</b>&nbsp;"


def cursor_text(pixels: np.ndarray, affine, voxel, *, unit: str = "", label: str = "") -> str:
    """One line: the value at ``voxel`` (and the ``label`` there), the voxel index and its RAS
    position in mm.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.geometry import default_affine
    >>> from m1vision.widgets._triplanar import cursor_text
    >>> vol = np.full((4, 4, 4), -1000.0, np.float32)
    >>> cursor_text(vol, default_affine((2.0, 1.0, 1.0)), (1, 2, 3), unit="HU")
    '-1000 HU at voxel (z 1, row 2, col 3) = RAS (-3.0, -2.0, 2.0) mm'
    >>> cursor_text(vol, default_affine((2.0, 1.0, 1.0)), (1, 2, 3), unit="HU", label="air")
    '-1000 HU · air at voxel (z 1, row 2, col 3) = RAS (-3.0, -2.0, 2.0) mm'
    """
    value = value_at(pixels, voxel)
    x, y, z = voxel_to_ras(affine, voxel)
    unit = f" {unit}" if unit else ""
    label = f" \u00b7 {label}" if label else ""
    return (
        f"{value:.6g}{unit}{label} at voxel (z {voxel[0]}, row {voxel[1]}, col {voxel[2]}) = "
        f"RAS ({x:.1f}, {y:.1f}, {z:.1f}) mm"
    )


class TriPlanarExplorer(Explorer):
    """Axial, coronal and sagittal planes of a volume side by side, with a linked crosshair.

    Each plane is shown at its physical aspect (from ``spacing``) with the orientation
    letters of the volume's affine at its edges (see :mod:`m1vision.planes`). Three sliders
    move the crosshair; a click in any plane moves it to the voxel clicked (the other two
    planes follow); moving the mouse over a plane shows the value (HU for CT), the voxel
    index and the RAS position in mm below the pictures. Window presets and sliders, and the
    edge controls (Canny over each plane), apply to all three.

    Parameters
    ----------
    volume : ndarray or MedicalImage
        ``(Z, H, W)`` volume in the package's layout; a MedicalImage brings ``spacing``,
        ``metadata["affine"]``, ``window`` and ``modality``. Not modified.
    window : (center, width), optional
        Initial window; default the volume's ``.window`` or its full value range.
    index : (z, row, col), optional
        Initial crosshair; default the middle voxel.
    max_size : int
        Longest side of each plane's picture in pixels.
    params : TriPlanarParams or dict, optional
        A whole state to restore (e.g. another explorer's :attr:`params`); wins over
        ``window`` and ``index``.

    Attributes
    ----------
    controls : dict
        ``"axial"``, ``"coronal"``, ``"sagittal"`` (slice sliders), ``"preset"``,
        ``"center"``, ``"width"``, ``"edges"``, ``"ksize"``, ``"sigma"``, ``"low"``,
        ``"high"``, ``"crosshair"``.
    image_widgets : dict
        ``ipywidgets.Image`` of each plane, PNG of :meth:`picture` (plane).
    events : dict
        ``ipyevents.Event`` of each plane's picture (mouse move and click), or empty if
        ipyevents is missing.
    cursor : ipywidgets.HTML
        The value-under-cursor line (after ``cursor_label``, "value under the mouse:");
        ``cursor_voxel`` is the voxel it describes.
    last_ms, last_error
        Milliseconds of the last update (render + PNG encode), the last update's error.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.widgets import TriPlanarExplorer
    >>> vol = np.zeros((10, 32, 32), np.float32); vol[:, 8:24, 8:24] = 100.0
    >>> tx = TriPlanarExplorer(vol, max_size=64)
    >>> tx.params["index"], tx.params["center"]
    ([5, 16, 16], 50.0)
    >>> tx.handle_event("axial", {"type": "click", "dataX": 10, "dataY": 20})
    >>> tx.params["index"]
    [5, 10, 5]
    """

    def __init__(
        self,
        volume,
        *,
        window=None,
        index=None,
        max_size: int = 320,
        params=None,
        smooth: bool = True,
        timings: bool = False,
        labels=None,
        reference=None,
        opacity: float = 0.4,
        outline: bool = False,
        hidden=(),
        overlay=None,
    ):
        w = _widgets()
        medical = volume
        #: the volume's modality ("CT"...) or None
        self.modality = (
            None if isinstance(volume, np.ndarray) else getattr(volume, "modality", None)
        )
        pixels, window, is_ct = _unwrap(volume, window)
        self._cache = PlaneCache(medical)
        pixels = self._cache.pixels
        self._unit = "HU" if is_ct or (is_ct is None and _looks_ct(pixels)) else ""
        if isinstance(params, dict):
            params = TriPlanarParams(**{**params, "index": tuple(params["index"])})
        if params is not None and not isinstance(params, TriPlanarParams):
            raise InvalidTypeError(
                f"params must be a TriPlanarParams or a dict, got {type(params).__name__}."
            )
        value_range = (float(pixels.min()), float(pixels.max()))
        if params is None:
            window = _check_window(window)
            if window is None:
                hi = value_range[1] if value_range[1] > value_range[0] else value_range[0] + 1
                window = ((value_range[0] + hi) / 2.0, hi - value_range[0])
            if index is None:
                index = tuple(n // 2 for n in pixels.shape)
            params = TriPlanarParams(
                index=tuple(index),
                center=window[0],
                width=window[1],
                max_size=max_size,
                smooth=smooth,
            )
        self._check_index(params.index)
        if overlay is None and labels is not None:  # checked before any widget is made
            overlay = Overlay(
                labels, like=TriPlanarView(pixels, params, cache=self._cache).grid_image(),
                reference=reference, opacity=opacity, outline=outline, hidden=hidden,
            )  # fmt: skip
        elif overlay is None and reference is not None:
            raise InvalidParameterError(
                "reference is drawn beside labels: give labels=... too (the map to compare "
                "with the reference)."
            )
        #: the label overlay as given (its settings follow the controls), or None
        self.overlay: Overlay | None = overlay
        self._max_size = params.max_size
        # no controls: kept as given (a state may set them)
        self._aperture, self._l2_gradient = params.aperture, params.l2_gradient
        self.last_ms = float("nan")
        self.last_error: BaseException | None = None
        self.cursor_voxel: tuple[int, int, int] | None = None
        self._pngs: dict[str, bytes] = {}
        self._legend_of = None  # the hidden labels the legend shows
        self._batch = _Batch(self._update)

        self._window_controls = _WindowControls(
            value_range, (params.center, params.width), is_ct=is_ct
        )
        built = blur_canny_controls(params)
        built |= build_controls(
            {
                **{plane: params.index[_SLIDER_AXIS[plane]] for plane in PLANES},
                "edges": params.edges,
                "crosshair": params.crosshair,
                "smooth": params.smooth,
            },
            **{plane: {"max": pixels.shape[_SLIDER_AXIS[plane]] - 1} for plane in PLANES},
        )
        sliders = {plane: built[plane] for plane in PLANES}
        labels_controls = {} if overlay is None else overlay_controls(overlay, picker=True)
        self.controls = {
            **sliders,
            "preset": self._window_controls.preset,
            "center": self._window_controls.center,
            "width": self._window_controls.width,
            **{name: built[name] for name in ("edges", "ksize", "sigma", "low", "high")},
            "crosshair": built["crosshair"],
            "smooth": built["smooth"],
            **labels_controls,
        }
        c = self.controls
        #: the legend of the shown labels (HTML swatches), empty without an overlay
        self.legend = w.HTML(layout={"max_height": "160px", "overflow": "auto"})
        #: each slice slider's position in mm, beside it (``slice_position_text``)
        self.positions = {plane: w.HTML() for plane in PLANES}
        self.image_widgets = {
            plane: w.Image(format="png", layout={"margin": "0 4px 0 0"}) for plane in PLANES
        }
        self.events = self._make_events()
        self.key_events = {
            plane: key_events(
                self.image_widgets[plane], lambda key, plane=plane: self.step(plane, key)
            )
            for plane in PLANES
        }
        self.cursor = w.HTML(value="move the mouse over a plane")
        #: the label in front of :attr:`cursor`: whose value the line shows
        self.cursor_label = w.HTML(value=_UNDER_THE_MOUSE)
        self.readout = w.HTML()
        self.error_area = w.HTML(layout={"display": "none"})
        pictures = w.HBox(
            [w.VBox([w.HTML(f"<b>{plane}</b>"), self.image_widgets[plane]]) for plane in PLANES],
            layout={"flex_flow": "row wrap"},
        )
        controls = w.HBox(
            [
                w.VBox(
                    [
                        *(w.HBox([sliders[plane], self.positions[plane]]) for plane in PLANES),
                        self._window_controls.box,
                    ]
                ),
                w.VBox(
                    [
                        w.HBox([c["edges"], c["crosshair"], c["smooth"]]),
                        *(c[name] for name in ("ksize", "sigma", "low", "high")),
                    ]
                ),
            ]
        )
        cursor_line = w.HBox([self.cursor_label, self.cursor])
        parts = [pictures, cursor_line, self.readout, self.error_area, controls]
        if overlay is not None:
            parts.append(w.HBox([
                w.VBox([w.HBox([c["overlay"], c["outline"]]), c["opacity"], c["label"]]),
                c["hidden"], self.legend,
            ]))  # fmt: skip
        self.widget = w.VBox(parts)
        self._timings = bool(timings)
        self._wire()
        self._update()

    # -- checks ---------------------------------------------------------------------------
    def _check_index(self, index) -> None:
        self._cache.check_index(index)

    # -- wiring ---------------------------------------------------------------------------
    def _make_events(self) -> dict:
        try:
            from ipyevents import Event
        except ImportError:  # pragma: no cover - a dependency; the pictures still work
            return {}
        events = {}
        for plane in PLANES:
            event = Event(
                source=self.image_widgets[plane],
                watched_events=["mousemove", "click"],
                throttle_or_debounce="throttle",
                wait=40,
            )
            event.on_dom_event(lambda e, plane=plane: self.handle_event(plane, e))
            events[plane] = event
        return events

    def _wire(self) -> None:
        c = self.controls
        self._window_controls.wire(self._batch)

        def on_low(change):
            if change["new"] > c["high"].value:
                with self._batch.hold():
                    c["high"].value = change["new"]
            self._batch.request()

        def on_high(change):
            if change["new"] < c["low"].value:
                with self._batch.hold():
                    c["low"].value = change["new"]
            self._batch.request()

        c["low"].observe(on_low, names="value")
        c["high"].observe(on_high, names="value")
        for name in (*PLANES, "edges", "ksize", "sigma", "crosshair", "smooth"):
            c[name].observe(self._batch.request, names="value")
        for name in ("overlay", "opacity", "outline", "hidden"):
            if name in c:
                c[name].observe(self._batch.request, names="value")
        if "label" in c:

            def on_label(change):
                if change["new"] is not None:
                    self.jump_to(change["new"])

            c["label"].observe(on_label, names="value")

    def current_overlay(self) -> Overlay | None:
        """The overlay as the controls set it now (None without labels)."""
        if self.overlay is None:
            return None
        return overlay_of_controls(self.overlay, self.controls)

    def set_overlay(self, **changes) -> None:
        """Set some of ``show``, ``opacity``, ``outline``, ``hidden`` (label values) at once."""
        if self.overlay is None:
            raise InvalidParameterError(
                "this explorer has no overlay: make it with labels=... (a label map on the "
                "volume's grid)."
            )
        new = self.current_overlay().replace(**changes)  # checked before anything moves
        c = self.controls
        with self._batch.hold():
            c["overlay"].value, c["opacity"].value = new.show, new.opacity
            c["outline"].value = new.outline
            c["hidden"].value = tuple(v for v in new.hidden if v in dict(new.names()))

    def jump_to(self, value: int) -> None:
        """Move the crosshair to label ``value``: its voxel nearest the label's centroid."""
        if self.overlay is None:
            raise InvalidParameterError(
                "this explorer has no overlay: make it with labels=... to jump to a label."
            )
        self.set_params(index=self.overlay.centroid(value))

    def step(self, plane: str, key: str) -> None:
        """Step ``plane``'s slice as the key ``key`` does over its picture (see
        :func:`~m1vision.planes.slice_after_key`); other keys do nothing."""
        if plane not in PLANES:
            raise InvalidParameterError(f"plane must be one of {PLANES}, got {plane!r}.")
        slider = self.controls[plane]
        new = slice_after_key(key, slider.value, slider.max + 1)
        if new is not None:
            slider.value = new

    def handle_event(self, plane: str, event: dict) -> None:
        """React to a mouse event on ``plane``'s picture (what ipyevents sends).

        ``event`` has ``"type"`` (``"mousemove"`` or ``"click"``) and ``"dataX"``,
        ``"dataY"``: the position in the picture's pixels. A move shows the value under the
        cursor; a click also moves the crosshair there.
        """
        if plane not in PLANES:
            raise InvalidParameterError(f"plane must be one of {PLANES}, got {plane!r}.")
        try:
            params = self._read_params()
            hw = self._cache.display_hw(plane, params)
            s_axis = _SLIDER_AXIS[plane]
            voxel = display_to_voxel(
                plane,
                params.index[s_axis],
                (event["dataX"], event["dataY"]),
                hw,
                self._cache.pixels.shape,
            )
            self.cursor_voxel = voxel
            label = "" if self.overlay is None else self.overlay.label_at(voxel)[1]
            self.cursor.value = html.escape(
                cursor_text(
                    self._cache.pixels, self._cache.affine, voxel, unit=self._unit, label=label
                )
            )
        except Exception as exc:  # shown in the widget; the explorer keeps working
            _show_error(self, exc)
            return
        if event.get("type") == "click":
            self.set_params(index=voxel)

    # -- state ----------------------------------------------------------------------------
    def _read_params(self) -> TriPlanarParams:
        c = self.controls
        center, width = self._window_controls.values()
        index = [0, 0, 0]
        for plane in PLANES:
            index[_SLIDER_AXIS[plane]] = int(c[plane].value)
        return TriPlanarParams(
            index=tuple(index),
            center=center,
            width=width,
            edges=bool(c["edges"].value),
            ksize=int(c["ksize"].value),
            sigma=float(c["sigma"].value),
            low=float(c["low"].value),
            high=float(c["high"].value),
            crosshair=bool(c["crosshair"].value),
            max_size=self._max_size,
            aperture=self._aperture,
            l2_gradient=self._l2_gradient,
            smooth=bool(c["smooth"].value),
        )

    @property
    def params(self) -> dict:
        """The whole state as a JSON-safe dict (the fields of :class:`TriPlanarParams`)."""
        return self._read_params().to_dict()

    def render_params(self) -> TriPlanarParams:
        """The current state as :class:`~m1vision.views.planes.TriPlanarParams`."""
        return self._read_params()

    def set_params(self, **changes) -> None:
        """Set several parts of the state at once (one update).

        Names are the fields of :class:`~m1vision.views.planes.TriPlanarParams` but
        ``max_size``, ``aperture`` and ``l2_gradient`` (no controls): ``index`` (z, row,
        col), ``center``, ``width``, ``edges``, ``ksize``, ``sigma``, ``low``, ``high``,
        ``crosshair``. The result is checked before anything moves.
        """
        allowed = set(TriPlanarParams.__dataclass_fields__) - {
            "max_size", "aperture", "l2_gradient"}  # fmt: skip
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidParameterError(
                f"unknown setting(s) {sorted(unknown)}; known: {sorted(allowed)}."
            )
        new = self._read_params().replace(
            **{k: tuple(v) if k == "index" else v for k, v in changes.items()}
        )
        self._check_index(new.index)
        c = self.controls
        with self._batch.hold():
            for plane in PLANES:
                c[plane].value = new.index[_SLIDER_AXIS[plane]]
            if "center" in changes or "width" in changes:
                c["center"].value, c["width"].value = new.center, new.width
            for name in ("edges", "ksize", "sigma", "high", "low", "crosshair", "smooth"):
                if name in changes:
                    c[name].value = getattr(new, name)

    # -- pictures -------------------------------------------------------------------------
    def picture(self, plane: str) -> np.ndarray:
        """``plane``'s picture as shown (BGR ``uint8``)."""
        return self._cache.render(plane, self._read_params(), self.current_overlay())

    def pictures(self) -> dict[str, np.ndarray]:
        """The three pictures as shown, by plane."""
        params, overlay = self._read_params(), self.current_overlay()
        return {plane: self._cache.render(plane, params, overlay) for plane in PLANES}

    def _update(self) -> None:
        start = time.perf_counter()
        try:
            params, overlay = self._read_params(), self.current_overlay()
            pngs = {
                plane: encode_png(self._cache.render(plane, params, overlay), bilevel=False)
                for plane in PLANES
            }
        except Exception as exc:  # shown in the widget; the explorer keeps working
            _show_error(self, exc)
            return
        for plane, png in pngs.items():
            if self._pngs.get(plane) != png:
                self.image_widgets[plane].value = png
        self._pngs = pngs
        self.last_ms = (time.perf_counter() - start) * 1000.0
        _clear_error(self)
        for plane in PLANES:
            self.positions[plane].value = slice_position_text(
                self._cache.affine, _SLIDER_AXIS[plane], params.index
            )
        if overlay is not None and self._legend_of != overlay.hidden:
            self.legend.value = legend_html(
                legend_entries(overlay.info["labels"], hidden=overlay.hidden)
            )
            self._legend_of = overlay.hidden
        z, r, c = params.index
        ms = f" &middot; {self.last_ms:.1f} ms" if self._timings else ""
        self.readout.value = (
            f"crosshair (z {z}, row {r}, col {c}) &middot; window {params.center:.6g} / "
            f"{params.width:.6g}{ms}"
        )

    def export_png(self, path, *, overwrite: bool = False):
        """Write the current view as a PNG file (atomically); return its path."""
        from m1vision.views.export import export_png

        return export_png(self, path, overwrite=overwrite)

    def export_sweep(self, path, *, plane: str = "axial", fps: float = 10.0, step: int = 1,
                     overwrite: bool = False):  # fmt: skip
        """Write a sweep through ``plane``'s slices as an animated GIF or an MP4 (by suffix).

        See :func:`m1vision.views.export.export_sweep`.
        """
        from m1vision.views.export import export_sweep

        return export_sweep(self, path, plane=plane, fps=fps, step=step, overwrite=overwrite)

    # -- state as data --------------------------------------------------------------------
    view_class = TriPlanarView

    def view(self) -> TriPlanarView:
        """The pure view of what it shows now (a :class:`~m1vision.views.TriPlanarView`)."""
        return TriPlanarView(
            self._cache.pixels, self._read_params(), modality=self.modality, cache=self._cache,
            overlay=self.current_overlay(),
        )  # fmt: skip

    @classmethod
    def _from_view(cls, view: TriPlanarView, image) -> TriPlanarExplorer:
        if isinstance(image, np.ndarray):  # the view's geometry and modality, with the array
            from m1vision.io import MedicalImage

            image = MedicalImage(
                view.array,
                spacing=view.cache.spacing,
                modality=view.modality,
                metadata={"affine": view.cache.affine.tolist()},
            )
        return cls(image, params=view.params, overlay=view.overlay)

    @property
    def cache(self) -> PlaneCache:
        """The :class:`~m1vision.views.planes.PlaneCache` behind the pictures (its ``counts``)."""
        return self._cache

    def summary(self) -> str:
        """One deterministic line describing the view (the text beside the picture)."""
        p = self._read_params()
        z, r, c = p.index
        shape = "x".join(str(n) for n in self._cache.pixels.shape)
        edges = f", Canny {p.low:g}-{p.high:g}" if p.edges else ""
        overlay = self.current_overlay()
        labels = ""
        if overlay is not None and overlay.show:
            maps = " and reference" if overlay.reference is not None else ""
            labels = f", {len(overlay.values())} labels{maps} overlaid"
        return (
            f"TriPlanarExplorer: volume {shape}, crosshair (z {z}, row {r}, col {c}), "
            f"window {p.center:g}/{p.width:g}{edges}{labels}"
        )

    def _repr_mimebundle_(self, **kwargs):
        static = _png_of(list(self.pictures().values()))
        return _static_bundle(self.widget, static, self.summary(), **kwargs)


def _looks_ct(pixels: np.ndarray) -> bool:
    lo, hi = float(pixels.min()), float(pixels.max())
    return -1100.0 <= lo < -500.0 and hi <= 4000.0
