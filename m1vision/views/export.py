"""Export for reports: the current view as PNG, a slice sweep as GIF or MP4.

The pictures come from the pure views (:mod:`m1vision.views`), so an explorer and a view
(say one restored from a record with no widget library) export the same file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from m1vision._atomic import atomic_write_bytes
from m1vision._checks import check_choice, check_int, check_number
from m1vision.errors import (
    ImageWriteError,
    InvalidParameterError,
    InvalidTypeError,
    OutputExistsError,
)
from m1vision.geometry import PLANES, plane_geometry
from m1vision.views.planes import TriPlanarView
from m1vision.views.png import encode_png
from m1vision.views.state import View

SWEEP_FORMATS = (".gif", ".mp4")


def _view_of(explorer) -> View:
    """The pure view of an explorer (its ``view()``), or ``explorer`` if it is a view."""
    if isinstance(explorer, View):
        return explorer
    if callable(getattr(explorer, "view", None)):
        return explorer.view()
    raise InvalidTypeError(
        f"explorer must be an explorer or an m1vision.views.View, got {type(explorer).__name__}."
    )


def export_png(explorer, path, *, overwrite: bool = False) -> Path:
    """Write what ``explorer`` shows now (its static picture) as a PNG file; return the path.

    The same picture its notebook output carries for front ends without widgets: one picture,
    or the pictures of the view side by side (the three planes). ``explorer`` is an explorer
    or a pure view (:class:`m1vision.views.View`: no widget needed). Written atomically; an
    existing file is refused unless ``overwrite=True``.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, cv2
    >>> from m1vision.views import EdgeView
    >>> from m1vision.views.export import export_png
    >>> img = np.zeros((32, 32), np.uint8); img[8:24, 8:24] = 200
    >>> out = export_png(EdgeView(img), pathlib.Path(tempfile.mkdtemp()) / "view.png")
    >>> cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape
    (32, 32)
    """
    view = _view_of(explorer)
    try:
        picture = view.picture()
    except Exception as exc:
        raise ImageWriteError(
            f"the {type(explorer).__name__} has no picture to export: {type(exc).__name__}: {exc}"
        ) from exc
    return atomic_write_bytes(Path(path), encode_png(picture), overwrite=overwrite)


def export_sweep(
    explorer,
    path,
    *,
    plane: str = "axial",
    fps: float = 10.0,
    step: int = 1,
    overwrite: bool = False,
) -> Path:
    """Write a sweep through ``plane``'s slices of a tri-planar explorer as GIF or MP4.

    Each frame is the picture the explorer shows for that slice with its current window,
    edges and crosshair settings (the crosshair left where it is in the other two axes). The
    format follows the suffix: ``.gif`` (Pillow, every frame, looping) or ``.mp4``
    (OpenCV's ``mp4v`` writer). Written to a temporary file and renamed into place.

    Parameters
    ----------
    explorer : TriPlanarExplorer or TriPlanarView
    path : path
        ``*.gif`` or ``*.mp4``.
    plane : {"axial", "coronal", "sagittal"}
    fps : float
        Frames per second, > 0.
    step : int
        Every ``step``-th slice.
    overwrite : bool
        Replace an existing file.
    """
    view = _view_of(explorer)
    if not isinstance(view, TriPlanarView):
        raise InvalidTypeError(
            f"explorer must be a TriPlanarExplorer (or a TriPlanarView), got "
            f"{type(explorer).__name__}; a sweep goes through the slices of a volume."
        )
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SWEEP_FORMATS:
        raise InvalidParameterError(
            f"path must end in .gif or .mp4 (the format), got {path.name!r}."
        )
    check_choice(plane, name="plane", choices=PLANES)
    fps = check_number(fps, name="fps", minimum=0.0)
    if fps <= 0:
        raise InvalidParameterError(f"fps must be > 0, got {fps:g}.")
    step = check_int(step, name="step", minimum=1)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True to replace it.")
    s_axis = plane_geometry(plane)[0]
    params = view.params
    frames = []
    for i in range(0, view.cache.pixels.shape[s_axis], step):
        index = list(params.index)
        index[s_axis] = i
        frames.append(view.render(plane, params.replace(index=tuple(index))))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".gif":
            _write_gif(frames, Path(tmp), fps)
        else:
            _write_mp4(frames, Path(tmp), fps)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _write_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    from PIL import Image

    images = [
        Image.fromarray(f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) for f in frames
    ]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000.0 / fps),
        loop=0,
        optimize=False,
        disposal=1,
    )


def _write_mp4(frames: list[np.ndarray], path: Path, fps: float) -> None:
    height, width = frames[0].shape[:2]
    # mp4v wants even sizes; pad by one black row/column where needed
    even_h, even_w = height + height % 2, width + width % 2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (even_w, even_h))
    if not writer.isOpened():
        raise ImageWriteError(
            f"OpenCV cannot write MP4 here (no mp4v encoder in this build); write {path.stem}.gif"
            " instead."
        )
    try:
        for frame in frames:
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            if (even_h, even_w) != frame.shape[:2]:
                frame = cv2.copyMakeBorder(
                    frame, 0, even_h - height, 0, even_w - width, cv2.BORDER_CONSTANT
                )
            writer.write(frame)
    finally:
        writer.release()
