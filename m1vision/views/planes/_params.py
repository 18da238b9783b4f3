"""The tri-planar explorer's settings: :class:`TriPlanarParams`."""

from __future__ import annotations

import dataclasses

from m1vision._checks import check_bool, check_int
from m1vision.errors import InvalidParameterError
from m1vision.views.settings import EdgeSettings


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
            raise InvalidParameterError(
                f"index must be (z, row, col), got {self.index!r}. Fix: pass three voxel "
                "indices, e.g. index=(0, 0, 0)."
            )
        put("index", tuple(check_int(v, name=f"index[{i}]", minimum=0)
                           for i, v in enumerate(self.index)))  # fmt: skip
        for name in ("edges", "crosshair", "smooth"):
            put(name, check_bool(getattr(self, name), name=name))
        put("max_size", check_int(self.max_size, name="max_size", minimum=16))

    def to_dict(self) -> dict:
        """The parameters as a JSON-safe dict."""
        out = dataclasses.asdict(self)
        out["index"] = list(self.index)
        return out
