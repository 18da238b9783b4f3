"""The window explorer: level/width with presets and the histogram (internal part)."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_image, check_int
from m1vision.errors import InvalidImageError
from m1vision.views.edges import is_wide
from m1vision.views.histogram import WindowParams, WindowView
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
)
from m1vision.widgets._state import Explorer


class WindowExplorer(Explorer):
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
        :func:`m1vision.views.histogram.histogram_picture` with the window marked (the
        pictures of :class:`~m1vision.views.WindowView`).
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
        self._view = WindowView(
            image,
            WindowParams(
                center=0.0,
                width=1.0,
                preview_size=check_int(preview_size, name="preview_size", minimum=1),
                bins=check_int(bins, name="bins", minimum=2),
            ),
        )
        self._range = self._view.value_range
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

    # -- state as data --------------------------------------------------------------------
    view_class = WindowView

    def view(self) -> WindowView:
        """The pure view of what the explorer shows now (a :class:`~m1vision.views.WindowView`)."""
        center, width = self._controls.values()
        return self._view.with_params(self._view.params.replace(center=center, width=width))

    @classmethod
    def _from_view(cls, view: WindowView, image) -> WindowExplorer:
        p = view.params
        return cls(image, window=(p.center, p.width), preview_size=p.preview_size, bins=p.bins)

    def histogram(self) -> np.ndarray:
        """The histogram picture as shown (BGR ``uint8``)."""
        return self.view().histogram()

    def _update(self) -> None:
        try:
            center, width = self._controls.values()
            view = self.view()
            picture, hist = view.windowed(), view.histogram()
            n = self._sorted.size
            below = np.searchsorted(self._sorted, center - width / 2.0, side="left") / n
            above = 1.0 - np.searchsorted(self._sorted, center + width / 2.0, side="right") / n
            image_png, hist_png = encode_png(picture), encode_png(hist)
        except Exception as exc:  # shown in the widget; the explorer keeps working
            _show_error(self, exc)
            return
        self.image_widget.value = image_png
        self.histogram_widget.value = hist_png
        self.clipped = (float(below), float(above))
        _clear_error(self)
        self.readout.value = (
            f"window {center - width / 2:.6g} to {center + width / 2:.6g} &middot; "
            f"below: {100 * below:.1f} % &middot; above: {100 * above:.1f} %"
        )

    def to_pipeline(self):
        """An :class:`m1vision.pipeline.Pipeline` of one ``Window`` step with this window."""
        from m1vision import pipeline as pl

        return pl.Pipeline([pl.Window(**self.params)])

    def _repr_mimebundle_(self, **kwargs):
        center, width = self._controls.values()
        text = f"WindowExplorer: window {center:g}/{width:g}"
        return _static_bundle(self.widget, bytes(self.image_widget.value), text, **kwargs)
