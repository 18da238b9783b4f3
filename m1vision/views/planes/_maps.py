"""A plane's picture and the volume: the plane cut out, its size, picture <-> voxel."""

from __future__ import annotations

import cv2
import numpy as np

from m1vision._checks import check_int, check_pair, check_point, check_volume
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.geometry import check_spacing, plane_geometry


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
    pixels = check_volume(pixels, name="pixels")
    s_axis, v_axis, v_flip, h_axis, h_flip = plane_geometry(plane)
    index = check_int(index, name="index", minimum=0)
    if index >= pixels.shape[s_axis]:
        raise InvalidParameterError(
            f"index must be < {pixels.shape[s_axis]} for the {plane} plane of a volume of "
            f"shape {pixels.shape}, got {index}. Fix: pass 0 to {pixels.shape[s_axis] - 1}."
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
    pixels = check_volume(pixels, name="pixels")
    point = check_point(voxel, name="voxel")
    voxel = tuple(check_int(int(v), name=f"voxel[{i}]", minimum=0) for i, v in enumerate(point))
    if any(v >= n for v, n in zip(voxel, pixels.shape, strict=True)):
        raise InvalidParameterError(
            f"voxel must be inside the volume of shape {pixels.shape}, got {voxel}. Fix: "
            "pass (z, row, col) with each index below the volume's size on that axis."
        )
    return float(pixels[voxel])


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
    if not isinstance(picture, np.ndarray) or picture.ndim not in (2, 3) or picture.size == 0:
        got = picture.shape if isinstance(picture, np.ndarray) else type(picture).__name__
        raise InvalidImageError(
            f"picture must be a non-empty (H, W) or (H, W, C) numpy.ndarray, got {got}. Fix: "
            "pass one plane's picture, e.g. extract_plane(pixels, plane, index)."
        )
    height, width = check_pair(display_hw, name="display_hw", kind="int", what="(height, width)")
    if linear_rows and height != picture.shape[0]:
        picture = cv2.resize(picture, (picture.shape[1], height), interpolation=cv2.INTER_LINEAR)
    if (height, width) == picture.shape[:2]:
        return picture
    upscale = height >= picture.shape[0] and width >= picture.shape[1]
    interpolation = cv2.INTER_NEAREST if upscale else cv2.INTER_AREA
    return cv2.resize(picture, (width, height), interpolation=interpolation)
