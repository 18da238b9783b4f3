"""The one-plane volume explorer: a slice slider over the edge explorer (internal part)."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_volume
from m1vision.planes import slice_after_key, slice_position_text, volume_geometry
from m1vision.views.edges import VolumeView, take_slice
from m1vision.widgets._common import (
    _static_bundle,
    _unwrap,
    _widgets,
    build_controls,
    key_events,
)
from m1vision.widgets._edges import EdgeExplorer
from m1vision.widgets._state import Explorer


class VolumeExplorer(Explorer):
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
        ``"axis"`` and ``"slice"``, plus the edge controls. The arrow keys with the mouse
        over the picture step the slice too (:meth:`step`); its position in mm (from the
        affine, 1 mm voxels for a bare array) shows beside the slider.

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
        first = take_slice(volume, axis, index)  # checks the axis and the slice too
        axis = int(axis)
        index = volume.shape[axis] // 2 if index is None else int(index)
        self._volume = volume
        n = volume.shape[axis]
        value_range = (float(volume.min()), float(volume.max()))
        if medical is not None and hasattr(medical, "modality"):
            # keep the modality (CT presets or not) for the slice's explorer
            from m1vision.io import MedicalImage

            first = MedicalImage(first, modality=getattr(medical, "modality", None))
        self.edges = EdgeExplorer(first, window=window_, value_range=value_range, **kwargs)
        built = build_controls({"axis": axis, "slice": index}, slice={"max": n - 1})
        self.axis_widget, self.slice_widget = built["axis"], built["slice"]
        #: the slice's position in mm beside the slider (1 mm voxels for a bare array)
        self.position = w.HTML()
        self._affine = volume_geometry(medical if medical is not None else volume)[2]
        self.controls = {"axis": self.axis_widget, "slice": self.slice_widget}
        self.controls.update(self.edges.controls)
        self.axis_widget.observe(self._on_axis, names="value")
        self.slice_widget.observe(self._on_slice, names="value")
        #: arrow keys (Page Up/Down, Home, End) over the picture step the slice
        self.key_events = key_events(self.edges.image_widget, self.step)
        self._show_position()
        self.widget = w.VBox(
            [w.HBox([self.axis_widget, self.slice_widget, self.position]), self.edges.widget]
        )

    def step(self, key: str) -> None:
        """Step the slice as the key ``key`` does over the picture (see
        :func:`~m1vision.planes.slice_after_key`); other keys do nothing."""
        new = slice_after_key(key, self.slice_widget.value, self.slice_widget.max + 1)
        if new is not None:
            self.slice_widget.value = new

    def _show_position(self) -> None:
        voxel = [0, 0, 0]
        voxel[self.axis_widget.value] = self.slice_widget.value
        self.position.value = slice_position_text(self._affine, self.axis_widget.value, voxel)

    def slice(self, axis: int, index: int) -> np.ndarray:
        """The 2-D slice ``index`` along ``axis`` (a contiguous copy if needed)."""
        return take_slice(self._volume, axis, index)

    # -- state as data --------------------------------------------------------------------
    view_class = VolumeView

    def view(self) -> VolumeView:
        """The pure view of what it shows now (a :class:`~m1vision.views.VolumeView`)."""
        return VolumeView(
            self._volume,
            self.edges.render_params(),
            axis=self.axis_widget.value,
            index=self.slice_widget.value,
            pipeline=self.edges.pipeline,
            cache=self.edges.cache,
        )

    @classmethod
    def _from_view(cls, view: VolumeView, image) -> VolumeExplorer:
        p = view.edge.params
        return cls(image, axis=view.axis, index=view.index, pipeline=view.edge.pipeline,
                   params=p, window=p.window)  # fmt: skip

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
        self._show_position()

    def _on_slice(self, change) -> None:
        self.edges.set_image(self.slice(self.axis_widget.value, change["new"]))
        self._show_position()

    def _repr_mimebundle_(self, **kwargs):
        text = (
            f"VolumeExplorer: axis {self.axis_widget.value}, slice {self.slice_widget.value}; "
            + self.edges.summary()
        )
        return _static_bundle(self.widget, bytes(self.edges.image_widget.value), text, **kwargs)
