"""The one-plane volume explorer: a slice slider over the edge explorer (internal part)."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_axis, check_int, check_volume
from m1vision.errors import InvalidParameterError
from m1vision.widgets._common import _static_bundle, _unwrap, _widgets
from m1vision.widgets._edges import EdgeExplorer


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
        check_volume(volume, name="volume", hint="for one 2-D image use EdgeExplorer")
        axis = check_axis(axis)
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
        text = (
            f"VolumeExplorer: axis {self.axis_widget.value}, slice {self.slice_widget.value}; "
            + self.edges.summary()
        )
        return _static_bundle(self.widget, bytes(self.edges.image_widget.value), text, **kwargs)
