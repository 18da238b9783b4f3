"""The three planes of a volume as pictures, and the maps between picture and voxel.

What :class:`m1vision.widgets.TriPlanarExplorer` shows, computed without any widget. The
volume's geometry (layout, affine, orientation letters, voxel -> RAS, the planes' axes) comes
from :mod:`m1vision.geometry`.

Each plane is shown the way radiologists read it, whatever the volume:

* axial (a slice of constant z): rows down, columns across (anterior at the top, the
  patient's right on the left for the usual layout);
* coronal (constant row): z up (superior at the top), columns across;
* sagittal (constant column): z up, rows across (anterior on the left).

The letters at the picture's edges are derived from the affine (``orientation_letters``),
so they stay right for a volume stored in any other orientation; the picture has the plane's
physical aspect (:func:`display_shape`, from ``spacing``). :func:`display_to_voxel` inverts the
picture geometry exactly, so a mouse position in the picture gives the voxel under it,
``voxel_to_ras`` its position in mm and the value is ``pixels[voxel]``.
:class:`TriPlanarView` is the three pictures with their state as data.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import ClassVar

import cv2
import numpy as np

from m1vision._checks import check_int
from m1vision.errors import InvalidParameterError
from m1vision.geometry import (
    PLANES,
    check_affine,
    check_spacing,
    default_affine,
    direction_letter,
    orientation_letters,
    plane_geometry,
    volume_geometry,
    voxel_to_ras,
)
from m1vision.preprocess import canny, gaussian_blur, window
from m1vision.views.overlay import Overlay
from m1vision.views.settings import EdgeSettings
from m1vision.views.state import View

__all__ = [
    "PLANES",
    "SLICE_KEYS",
    "PlaneCache",
    "TriPlanarParams",
    "TriPlanarView",
    "display_shape",
    "display_to_voxel",
    "draw_crosshair",
    "extract_plane",
    "letter_boxes",
    "render_plane",
    "resize_plane",
    "slice_after_key",
    "slice_position_text",
    "stretches_slices",
    "value_at",
    "voxel_to_display",
]


def _check_plane(plane: str) -> str:
    plane_geometry(plane)
    return plane



def extract_plane(pixels: np.ndarray, plane: str, index: int) -> np.ndarray:
    """The 2-D plane ``index`` of ``pixels`` (Z, H, W), oriented as the picture shows it.

    A contiguous copy (the volume is not modified).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import extract_plane
    >>> vol = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    >>> extract_plane(vol, "coronal", 0).tolist()  # z upwards: the last slice on top
    [[12.0, 13.0, 14.0, 15.0], [0.0, 1.0, 2.0, 3.0]]
    """
    s_axis, v_axis, v_flip, h_axis, h_flip = plane_geometry(plane)
    index = check_int(index, name="index", minimum=0)
    if index >= pixels.shape[s_axis]:
        raise InvalidParameterError(
            f"index must be < {pixels.shape[s_axis]} for the {plane} plane, got {index}."
        )
    out = np.take(pixels, index, axis=s_axis)
    if v_axis > h_axis:  # the remaining axes come in volume order
        out = out.T
    if v_flip:
        out = out[::-1]
    if h_flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def display_shape(shape, spacing, plane: str, *, max_size: int = 384) -> tuple[int, int]:
    """``(height, width)`` of ``plane``'s picture at its physical aspect, longest side ``max_size``.

    Examples
    --------
    >>> from m1vision.views.planes import display_shape
    >>> display_shape((30, 100, 100), (5.0, 1.0, 1.0), "coronal", max_size=200)  # 150 x 100 mm
    (200, 133)
    """
    _, v_axis, _, h_axis, _ = plane_geometry(plane)
    spacing = check_spacing(spacing)
    max_size = check_int(max_size, name="max_size", minimum=8)
    height_mm = shape[v_axis] * spacing[v_axis]
    width_mm = shape[h_axis] * spacing[h_axis]
    scale = max_size / max(height_mm, width_mm)
    return max(1, round(height_mm * scale)), max(1, round(width_mm * scale))


def display_to_voxel(plane: str, index: int, xy, display_hw, shape) -> tuple[int, int, int]:
    """The voxel ``(z, row, col)`` under picture pixel ``xy = (x, y)`` of ``plane``'s picture.

    ``display_hw`` is the picture's ``(height, width)``; positions outside are clipped to the
    volume. The inverse of :func:`voxel_to_display` for voxel centres.

    Examples
    --------
    >>> from m1vision.views.planes import display_to_voxel
    >>> display_to_voxel("coronal", 7, (0, 0), (200, 100), (10, 20, 50))  # top left: last z
    (9, 7, 0)
    """
    s_axis, v_axis, v_flip, h_axis, h_flip = plane_geometry(plane)
    x, y = float(xy[0]), float(xy[1])
    height, width = display_hw
    voxel = [0, 0, 0]
    voxel[s_axis] = int(index)
    nv, nh = shape[v_axis], shape[h_axis]
    v = min(nv - 1, max(0, int(np.floor(y * nv / height))))
    h = min(nh - 1, max(0, int(np.floor(x * nh / width))))
    voxel[v_axis] = nv - 1 - v if v_flip else v
    voxel[h_axis] = nh - 1 - h if h_flip else h
    return tuple(voxel)


def voxel_to_display(plane: str, voxel, display_hw, shape) -> tuple[float, float]:
    """The picture position ``(x, y)`` of the centre of ``voxel`` in ``plane``'s picture.

    Examples
    --------
    >>> from m1vision.views.planes import voxel_to_display
    >>> voxel_to_display("axial", (0, 0, 49), (100, 100), (10, 50, 50))
    (99.0, 1.0)
    """
    _, v_axis, v_flip, h_axis, h_flip = plane_geometry(plane)
    height, width = display_hw
    nv, nh = shape[v_axis], shape[h_axis]
    v = nv - 1 - voxel[v_axis] if v_flip else voxel[v_axis]
    h = nh - 1 - voxel[h_axis] if h_flip else voxel[h_axis]
    return (h + 0.5) * width / nh, (v + 0.5) * height / nv


def value_at(pixels: np.ndarray, voxel) -> float:
    """The value of ``pixels`` at ``voxel`` ``(z, row, col)`` (checked to be inside).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import value_at
    >>> value_at(np.arange(8.0).reshape(2, 2, 2), (1, 0, 1))
    5.0
    """
    voxel = tuple(check_int(int(v), name=f"voxel[{i}]", minimum=0) for i, v in enumerate(voxel))
    if len(voxel) != 3 or any(v >= n for v, n in zip(voxel, pixels.shape, strict=True)):
        raise InvalidParameterError(f"voxel {voxel} is outside the volume {pixels.shape}.")
    return float(pixels[voxel])


@dataclasses.dataclass(frozen=True)
class TriPlanarParams(EdgeSettings):
    """Everything that decides what the tri-planar explorer shows; checked when made.

    The window, blur and Canny fields are those of
    :class:`~m1vision.views.settings.EdgeSettings`, checked by its checker; the window is
    required here.

    Parameters
    ----------
    index : (z, row, col)
        The crosshair voxel: the axial, coronal and sagittal planes through it are shown.
    center, width : float
        Display window in the volume's units (HU for CT), ``width > 0``.
    edges : bool
        Draw Canny edges (green) over each plane.
    ksize, sigma, low, high, l2_gradient, aperture
        Gaussian blur and Canny settings of the edges, on each plane's voxel grid (as
        :class:`~m1vision.views.settings.EdgeSettings`).
    crosshair : bool
        Draw the crosshair lines and the orientation letters.
    max_size : int
        Longest side of each plane's picture, in pixels.
    smooth : bool
        Where the picture stretches thick slices (z drawn taller per slice than a column
        is wide, in the coronal and sagittal planes), interpolate linearly between slices
        instead of repeating each one (see :func:`resize_plane`). Off here, so a view
        recorded before it existed renders the same; the explorer turns it on.

    Examples
    --------
    >>> from m1vision.views.planes import TriPlanarParams
    >>> TriPlanarParams(index=(1, 2, 3), center=40, width=400).replace(low=10).low
    10.0
    """

    center: float = 0.0
    width: float = 1.0
    index: tuple[int, int, int] = (0, 0, 0)
    edges: bool = False
    crosshair: bool = True
    max_size: int = 384
    smooth: bool = False

    def __post_init__(self) -> None:
        if self.center is None or self.width is None:
            raise InvalidParameterError(
                "the tri-planar view needs a window: give center and width, e.g. "
                f"center=40, width=400 (got center={self.center!r}, width={self.width!r})."
            )
        super().__post_init__()  # the window, blur and Canny checker

        def put(name, value):
            object.__setattr__(self, name, value)

        if not isinstance(self.index, tuple | list) or len(self.index) != 3:
            raise InvalidParameterError(f"index must be (z, row, col), got {self.index!r}.")
        put("index", tuple(check_int(v, name=f"index[{i}]", minimum=0)
                           for i, v in enumerate(self.index)))  # fmt: skip
        for name in ("edges", "crosshair", "smooth"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}.")
            put(name, bool(getattr(self, name)))
        put("max_size", check_int(self.max_size, name="max_size", minimum=16))

    def to_dict(self) -> dict:
        """The parameters as a JSON-safe dict."""
        out = dataclasses.asdict(self)
        out["index"] = list(self.index)
        return out


_GREEN = (0, 255, 0)
_CROSS = (0, 200, 255)  # BGR amber
_LETTER = (80, 220, 255)


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


def _dashes(n: int) -> np.ndarray:
    """White and black dashes of 4 pixels: visible on any gray."""
    return np.where((np.arange(n) // 4) % 2 == 0, 255, 0).astype(np.uint8)


def draw_crosshair(picture: np.ndarray, xy, letters: dict[str, str]) -> np.ndarray:
    """A copy of ``picture`` with crosshair lines through ``xy`` and the four edge letters.

    On a BGR picture the lines and letters are amber; on a gray one the lines are white and
    black dashes (4 pixels each, from the top and left edges) and the letters white with a
    black outline, so the picture stays gray (and fast to encode). The lines stop short of
    the letters (:func:`letter_boxes`), so a crosshair at the picture's middle never strikes
    one through.
    """
    out = picture.copy()
    height, width = out.shape[:2]
    x = min(width - 1, max(0, int(xy[0])))
    y = min(height - 1, max(0, int(xy[1])))
    gray = out.ndim == 2
    if gray:
        out[y, :] = _dashes(width)
        out[:, x] = _dashes(height)
    else:
        out[y, :] = _CROSS
        out[:, x] = _CROSS
    scale, thick = _LETTER_SCALE, 1
    for edge, (x0, y0, x1, y1) in letter_boxes((height, width), letters).items():
        out[y0:y1, x0:x1] = picture[y0:y1, x0:x1]  # a gap in the lines around the letter
        letter = letters[edge]
        org = _letter_origin(edge, letter, (height, width))
        if gray:
            cv2.putText(
                out, letter, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 0, thick + 2, cv2.LINE_AA
            )
            cv2.putText(out, letter, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
        else:
            cv2.putText(
                out, letter, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _LETTER, thick, cv2.LINE_AA
            )
    return out


_LETTER_SCALE = 0.5
_LETTER_MARGIN = 2  # pixels of gap between a letter and the crosshair line


def _letter_origin(edge: str, letter: str, hw) -> tuple[int, int]:
    height, width = hw
    (tw, th), _ = cv2.getTextSize(letter, cv2.FONT_HERSHEY_SIMPLEX, _LETTER_SCALE, 1)
    return {
        "top": ((width - tw) // 2, th + 3),
        "bottom": ((width - tw) // 2, height - 4),
        "left": (3, (height + th) // 2),
        "right": (width - tw - 3, (height + th) // 2),
    }[edge]


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


def letter_boxes(hw, letters: dict[str, str]) -> dict[str, tuple[int, int, int, int]]:
    """``{edge: (x0, y0, x1, y1)}``: where each orientation letter is drawn, with a margin.

    Half-open pixel boxes inside a picture of ``hw = (height, width)``; the crosshair lines
    leave them alone (:func:`draw_crosshair`).

    Examples
    --------
    >>> from m1vision.views.planes import letter_boxes
    >>> letter_boxes((100, 200), {"top": "A"})
    {'top': (92, 0, 110, 23)}
    """
    height, width = hw
    out = {}
    for edge, letter in letters.items():
        (tw, th), base = cv2.getTextSize(letter, cv2.FONT_HERSHEY_SIMPLEX, _LETTER_SCALE, 3)
        x, y = _letter_origin(edge, letter, hw)  # bottom-left of the text
        m = _LETTER_MARGIN
        out[edge] = (
            max(0, x - m - 1),
            max(0, y - th - m - 1),
            min(width, x + tw + m + 1),
            min(height, y + base + m),
        )
    return out


def stretches_slices(plane: str, shape, display_hw) -> bool:
    """Does ``plane``'s picture draw each slice (z) taller than a column is wide?

    True for the coronal and sagittal pictures of a thick-slice volume (the through-plane
    axis z is their vertical axis), where repeating each slice shows stairs.

    Examples
    --------
    >>> from m1vision.views.planes import PLANES, display_shape, stretches_slices
    >>> shape, spacing = (40, 512, 512), (5.0, 0.7, 0.7)
    >>> [stretches_slices(p, shape, display_shape(shape, spacing, p)) for p in PLANES]
    [False, True, True]
    """
    _, v_axis, _, h_axis, _ = plane_geometry(plane)
    height, width = display_hw
    rows_per_slice = height / shape[v_axis]
    return v_axis == 0 and rows_per_slice > 1.0 and rows_per_slice > width / shape[h_axis]


def resize_plane(picture: np.ndarray, display_hw, *, linear_rows: bool = False) -> np.ndarray:
    """``picture`` resized to ``display_hw = (height, width)`` as the planes are shown.

    Enlarged: nearest neighbour (each voxel a sharp block); reduced: area averaging. With
    ``linear_rows`` the rows (the slices, in a coronal or sagittal picture) are
    interpolated linearly between their centres first (cv2.INTER_LINEAR's half-pixel
    convention), then the columns as above: smooth through thick slices, sharp in plane.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import resize_plane
    >>> two = np.array([[0], [100]], np.uint8)
    >>> resize_plane(two, (4, 1))[:, 0].tolist()
    [0, 0, 100, 100]
    >>> resize_plane(two, (4, 1), linear_rows=True)[:, 0].tolist()
    [0, 25, 75, 100]
    """
    height, width = (int(v) for v in display_hw)
    if linear_rows and height != picture.shape[0]:
        picture = cv2.resize(picture, (picture.shape[1], height), interpolation=cv2.INTER_LINEAR)
    if (height, width) == picture.shape[:2]:
        return picture
    upscale = height >= picture.shape[0] and width >= picture.shape[1]
    interpolation = cv2.INTER_NEAREST if upscale else cv2.INTER_AREA
    return cv2.resize(picture, (width, height), interpolation=interpolation)


#: Keys that step a plane's slice, and by how many slices (Home/End: to the first/last).
SLICE_KEYS = {
    "ArrowUp": 1, "ArrowRight": 1, "ArrowDown": -1, "ArrowLeft": -1,
    "PageUp": 10, "PageDown": -10, "Home": None, "End": None,
}  # fmt: skip


def slice_after_key(key: str, index: int, count: int) -> int | None:
    """The slice a key press on a plane's picture moves to, or None for another key.

    Arrow up/right: the next slice, down/left: the previous one, Page Up/Down: ten, Home and
    End: the first and the last; clipped to ``0 .. count - 1``.

    Examples
    --------
    >>> from m1vision.views.planes import slice_after_key
    >>> slice_after_key("ArrowUp", 5, 40), slice_after_key("PageDown", 5, 40)
    (6, 0)
    >>> slice_after_key("End", 5, 40), slice_after_key("a", 5, 40) is None
    (39, True)
    """
    if key not in SLICE_KEYS:
        return None
    step = SLICE_KEYS[key]
    if step is None:
        return 0 if key == "Home" else count - 1
    return min(count - 1, max(0, int(index) + step))


def slice_position_text(affine, axis: int, voxel) -> str:
    """Where the slice through ``voxel`` along volume ``axis`` lies, as a radiologist reads it.

    The world axis (R/L, A/P, S/I) the volume axis runs along, with ``voxel``'s coordinate
    on it in mm, e.g. ``"S 12.5 mm"`` or ``"I 40.0 mm"`` (a negative superior coordinate).

    Examples
    --------
    >>> from m1vision.views.planes import default_affine, slice_position_text
    >>> affine = default_affine((2.5, 1.0, 1.0))
    >>> slice_position_text(affine, 0, (5, 0, 0)), slice_position_text(affine, 2, (0, 0, 3))
    ('S 12.5 mm', 'L 3.0 mm')
    """
    a = check_affine(affine)
    world = int(np.argmax(np.abs(a[:3, int(axis)])))
    mm = voxel_to_ras(a, voxel)[world]
    letter = direction_letter(np.eye(3)[world] * (1.0 if mm >= 0 else -1.0))
    return f"{letter} {abs(mm):.1f} mm"


def _geometry_state(cache: PlaneCache, modality) -> dict:
    return {
        "spacing": list(cache.spacing),
        "affine": cache.affine.tolist(),
        "modality": modality,
    }


class TriPlanarView(View, kind="TriPlanarExplorer"):
    """The tri-planar explorer's pictures: the three planes of a volume for ``params``.

    Parameters
    ----------
    volume : ndarray or MedicalImage
        ``(Z, H, W)`` in the package's layout; a MedicalImage brings its spacing, affine and
        modality.
    params : TriPlanarParams or dict
    spacing, affine, modality : optional
        The geometry of a bare array (a MedicalImage's own wins where these are None).
    cache : PlaneCache, optional
        The cache to compute with (an explorer passes its own).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import TriPlanarView
    >>> vol = np.zeros((4, 8, 8), np.float32)
    >>> view = TriPlanarView(vol, {"index": [2, 4, 4], "center": 0.0, "width": 1.0,
    ...                            "max_size": 32}, spacing=(2.0, 1.0, 1.0))
    >>> state = view.state()
    >>> state["geometry"]["spacing"], [p.shape for p in view.pictures()]
    ([2.0, 1.0, 1.0], [(32, 32), (32, 32), (32, 32)])
    >>> TriPlanarView.from_state(state, vol).state() == state
    True
    """

    PARTS: ClassVar[tuple[str, ...]] = ("params", "geometry", "overlay")

    def __init__(
        self, volume, params, *, spacing=None, affine=None, modality=None,
        cache: PlaneCache | None = None, labels=None, reference=None, overlay=None,
    ):  # fmt: skip
        if isinstance(params, dict):
            params = TriPlanarParams(**{**params, "index": tuple(params.get("index", (0, 0, 0)))})
        if not isinstance(params, TriPlanarParams):
            raise TypeError(
                f"params must be a TriPlanarParams or a dict, got {type(params).__name__}."
            )
        if cache is None:
            cache = PlaneCache(volume, spacing=spacing, affine=affine)
        if modality is None and not isinstance(volume, np.ndarray):
            modality = getattr(volume, "modality", None)
        self.params, self.cache, self.modality = params, cache, modality
        cache.check_index(params.index)
        if overlay is None and labels is not None:
            overlay = Overlay(labels, like=self.grid_image(), reference=reference)
        elif overlay is not None and not isinstance(overlay, Overlay):  # settings as a dict
            overlay = Overlay(labels, like=self.grid_image(), reference=reference, **overlay)
        #: the label overlay (an :class:`~m1vision.views.overlay.Overlay`) or None
        self.overlay = overlay

    def grid_image(self):
        """The volume as a MedicalImage with the view's grid (what label maps must match)."""
        from m1vision.io import MedicalImage

        return MedicalImage(
            self.cache.pixels,
            spacing=self.cache.spacing,
            modality=self.modality,
            metadata={"affine": self.cache.affine.tolist()},
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {} if self.overlay is None else self.overlay.arrays()

    def render(self, plane: str, params: TriPlanarParams | None = None) -> np.ndarray:
        """``plane``'s picture for ``params`` (default the view's), with the overlay."""
        return self.cache.render(plane, self.params if params is None else params,
                                 self.overlay)  # fmt: skip

    def label_text(self, voxel) -> str:
        """The name of the label at ``voxel`` ("" without an overlay or in the background)."""
        return "" if self.overlay is None else self.overlay.label_at(voxel)[1]

    @property
    def array(self) -> np.ndarray:
        return self.cache.pixels

    def parts(self) -> dict:
        parts = {
            "params": self.params.to_dict(),
            "geometry": _geometry_state(self.cache, self.modality),
        }
        if self.overlay is not None:  # absent without one: older m1vision reads such states
            parts["overlay"] = self.overlay.part()
        return parts

    @classmethod
    def upgrade_parts(cls, parts: dict, version: int) -> dict:
        if version == 0:  # the first records kept the geometry beside the params
            parts = dict(parts)
            parts["geometry"] = {
                "spacing": parts.pop("spacing"),
                "affine": parts.pop("affine"),
                "modality": parts.pop("modality", None),
            }
        return parts

    @classmethod
    def _from_parts(cls, parts: dict, image, *, labels=None, reference=None) -> TriPlanarView:
        geometry = parts.get("geometry") or {}
        if isinstance(image, np.ndarray):  # a bare array: the state's geometry
            view = cls(
                image,
                parts["params"],
                spacing=geometry.get("spacing"),
                affine=geometry.get("affine"),
                modality=geometry.get("modality"),
            )
        else:
            view = cls(image, parts["params"])  # a MedicalImage brings its own
        view.overlay = Overlay.from_part(
            parts.get("overlay"), view.grid_image(), {"labels": labels, "reference": reference}
        )
        return view

    def pictures(self) -> list[np.ndarray]:
        return [self.render(plane) for plane in PLANES]
