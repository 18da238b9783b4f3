"""The pictures of the three planes of one volume, each cached by what it uses."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np

from m1vision.errors import InvalidParameterError
from m1vision.geometry import (
    PLANES,
    check_affine,
    check_spacing,
    default_affine,
    orientation_letters,
    plane_geometry,
    volume_geometry,
)
from m1vision.preprocess import canny, gaussian_blur, window
from m1vision.views.planes._crosshair import draw_crosshair
from m1vision.views.planes._maps import (
    display_shape,
    extract_plane,
    resize_plane,
    stretches_slices,
    voxel_to_display,
)
from m1vision.views.planes._params import TriPlanarParams

_GREEN = (0, 255, 0)


class PlaneCache:
    """The pictures of the three planes of one volume, each stage cached by what it uses.

    ``base(plane, params)`` (windowed, edges, resized to the physical aspect) is kept per
    plane, keyed by that plane's slice index, window and edge settings, so moving the axial
    slider recomputes the axial base picture only; the other two get a new crosshair drawn
    on their cached base.

    Parameters
    ----------
    volume : ndarray or MedicalImage
        ``(Z, H, W)`` volume (not modified); spacing and affine are taken from a
        MedicalImage (see :func:`volume_geometry`).

    Attributes
    ----------
    counts : collections.Counter
        How often each plane's base picture was computed.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import PlaneCache, TriPlanarParams
    >>> cache = PlaneCache(np.zeros((4, 8, 8), np.float32))
    >>> p = TriPlanarParams(index=(2, 4, 4), center=0.0, width=1.0, max_size=32)
    >>> cache.render("axial", p).shape  # gray without edges
    (32, 32)
    """

    def __init__(self, volume, *, spacing=None, affine=None):
        self.pixels, self.spacing, self.affine = volume_geometry(volume)
        if spacing is not None:  # the geometry of a bare array, given beside it
            self.spacing = check_spacing(spacing)
            if affine is None:
                affine = default_affine(self.spacing)
        if affine is not None:
            affine = check_affine(affine)
            if affine.shape == (3, 4):
                affine = np.vstack([affine, [0.0, 0.0, 0.0, 1.0]])
            self.affine = affine
        self.counts: Counter = Counter()
        self._memo: dict[str, tuple[tuple, np.ndarray]] = {}
        self._overlay_memo: dict[str, tuple[tuple, np.ndarray]] = {}
        self.letters = {plane: orientation_letters(self.affine, plane) for plane in PLANES}

    def check_index(self, index) -> None:
        """Check the crosshair ``index`` (z, row, col) lies inside the volume."""
        shape = self.pixels.shape
        for axis, (i, n) in enumerate(zip(index, shape, strict=True)):
            if i >= n:
                raise InvalidParameterError(
                    f"index[{axis}] must be < {n} (the volume is {shape}), got {i}; the "
                    "crosshair is a voxel (z, row, col) of the volume."
                )

    def display_hw(self, plane: str, params: TriPlanarParams) -> tuple[int, int]:
        """``(height, width)`` of ``plane``'s picture."""
        return display_shape(self.pixels.shape, self.spacing, plane, max_size=params.max_size)

    def base(self, plane: str, params: TriPlanarParams) -> np.ndarray:
        """The plane's picture without the crosshair: windowed, edges, physical aspect.

        Gray ``uint8`` without edges, BGR with them (edges in green).
        """
        s_axis = plane_geometry(plane)[0]
        p = params
        edge_key = (p.ksize, p.sigma, p.low, p.high, p.aperture, p.l2_gradient) if p.edges else None
        key = (p.index[s_axis], p.center, p.width, edge_key, p.max_size, p.smooth)
        hit = self._memo.get(plane)
        if hit is not None and hit[0] == key:
            return hit[1]
        picture = _plane_picture(
            extract_plane(self.pixels, plane, p.index[s_axis]),
            p,
            self.display_hw(plane, p),
            linear_rows=p.smooth and stretches_slices(plane, self.pixels.shape,
                                                      self.display_hw(plane, p)),
        )  # fmt: skip
        self.counts[plane] += 1
        self._memo[plane] = (key, picture)
        return picture

    def overlaid(self, plane: str, params: TriPlanarParams, overlay) -> np.ndarray:
        """:meth:`base` with ``overlay``'s label maps drawn over it (an
        :class:`~m1vision.views.overlay.Overlay`; None: the base), cached per plane."""
        picture = self.base(plane, params)
        if overlay is None or not overlay.show:
            return picture
        s_axis = plane_geometry(plane)[0]
        key = (id(picture), params.index[s_axis], overlay.key())
        hit = self._overlay_memo.get(plane)
        if hit is not None and hit[0] == key:
            return hit[1]
        slices = {
            name: extract_plane(pixels, plane, params.index[s_axis])
            for name, pixels in overlay.arrays().items()
        }
        out = overlay.draw(picture, slices)
        self._overlay_memo[plane] = (key, out)
        return out

    def render(self, plane: str, params: TriPlanarParams, overlay=None) -> np.ndarray:
        """The plane's picture as shown: :meth:`base`, the ``overlay`` (if any), crosshair
        and letters (``uint8``)."""
        for axis, (i, n) in enumerate(zip(params.index, self.pixels.shape, strict=True)):
            if i >= n:
                raise InvalidParameterError(
                    f"index[{axis}] must be < {n} (the volume is {self.pixels.shape}), got {i}."
                )
        picture = self.overlaid(plane, params, overlay)
        if not params.crosshair:
            return picture.copy()
        return draw_crosshair(
            picture,
            voxel_to_display(plane, params.index, picture.shape[:2], self.pixels.shape),
            self.letters[plane],
        )


def _plane_picture(
    plane_pixels: np.ndarray, p: TriPlanarParams, hw, *, linear_rows: bool = False
) -> np.ndarray:
    windowed = window(plane_pixels, center=p.center, width=p.width)
    if linear_rows:  # smooth gray between slices; the edges stay on their voxels
        picture = resize_plane(windowed, hw, linear_rows=True)
        if not p.edges:
            return picture
        edges = _edges(windowed, p)
        picture = cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
        picture[resize_plane(edges, hw) > 0] = _GREEN
        return picture
    picture = windowed  # gray: a third of the bytes to encode per event
    if p.edges:
        picture = cv2.cvtColor(windowed, cv2.COLOR_GRAY2BGR)
        edges = _edges(windowed, p)
        picture[edges > 0] = _GREEN
    return resize_plane(picture, hw)


def _edges(windowed: np.ndarray, p: TriPlanarParams) -> np.ndarray:
    return canny(
        gaussian_blur(windowed, ksize=p.ksize, sigma=p.sigma),
        low=p.low,
        high=p.high,
        aperture=p.aperture,
        l2_gradient=p.l2_gradient,
    )


def _check_plane(plane: str) -> str:
    plane_geometry(plane)
    return plane


def render_plane(volume, plane: str, params: TriPlanarParams) -> np.ndarray:
    """The picture the tri-planar explorer shows for ``plane`` (``uint8``: gray, BGR with edges).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import TriPlanarParams, render_plane
    >>> vol = np.zeros((10, 20, 20), np.float32)
    >>> p = TriPlanarParams(index=(5, 10, 10), center=0, width=1, max_size=40)
    >>> render_plane(vol, "sagittal", p).shape  # 10 x 20 voxels of 1 mm
    (20, 40)
    """
    _check_plane(plane)
    return PlaneCache(volume).render(plane, params)
