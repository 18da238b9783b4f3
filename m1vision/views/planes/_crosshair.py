"""The crosshair and the orientation letters drawn on a plane's picture."""

from __future__ import annotations

import cv2
import numpy as np

from m1vision._checks import check_pair
from m1vision.errors import InvalidImageError, InvalidParameterError

_CROSS = (0, 200, 255)  # BGR amber

_LETTER = (80, 220, 255)

_LETTER_SCALE = 0.5

_LETTER_MARGIN = 2  # pixels of gap between a letter and the crosshair line


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

    Parameters
    ----------
    picture : numpy.ndarray
        A (H, W) gray or (H, W, 3) BGR uint8 picture of a plane. Not modified.
    xy : (int, int)
        The crosshair's column and row in the picture (clipped to it).
    letters : dict
        ``{edge: letter}`` for the edges "top", "bottom", "left", "right" (as
        :func:`orientation_letters` gives them).

    Returns
    -------
    numpy.ndarray
        A copy of ``picture`` with the crosshair and letters drawn.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.views.planes import draw_crosshair
    >>> picture = np.zeros((64, 64), np.uint8)
    >>> out = draw_crosshair(picture, (20, 40), {"top": "A", "left": "R"})
    >>> out[40, 24:32].tolist(), out[56:, 20].tolist()  # dashed row 40, dashed column 20
    ([255, 255, 255, 255, 0, 0, 0, 0], [255, 255, 255, 255, 0, 0, 0, 0])
    >>> int(picture.max())  # the picture itself is left alone
    0
    """
    if (
        not isinstance(picture, np.ndarray)
        or picture.dtype != np.uint8
        or not (picture.ndim == 2 or (picture.ndim == 3 and picture.shape[2] == 3))
        or picture.size == 0
    ):
        got = (
            f"shape {picture.shape}, dtype {picture.dtype}"
            if isinstance(picture, np.ndarray)
            else type(picture).__name__
        )
        raise InvalidImageError(
            f"picture must be a non-empty (H, W) gray or (H, W, 3) BGR uint8 array, got {got}. "
            "Fix: draw on a plane's picture, e.g. render_plane(volume, plane, params)."
        )
    x, y = check_pair(xy, name="xy", what="(x, y)")
    if not isinstance(letters, dict) or not set(letters) <= {"top", "bottom", "left", "right"}:
        raise InvalidParameterError(
            f"letters must be a dict {{edge: letter}} with edges 'top', 'bottom', 'left' and "
            f"'right', got {letters!r}. Fix: pass orientation_letters(affine, plane)."
        )
    out = picture.copy()
    height, width = out.shape[:2]
    x = min(width - 1, max(0, int(x)))
    y = min(height - 1, max(0, int(y)))
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


def _letter_origin(edge: str, letter: str, hw) -> tuple[int, int]:
    height, width = hw
    (tw, th), _ = cv2.getTextSize(letter, cv2.FONT_HERSHEY_SIMPLEX, _LETTER_SCALE, 1)
    return {
        "top": ((width - tw) // 2, th + 3),
        "bottom": ((width - tw) // 2, height - 4),
        "left": (3, (height + th) // 2),
        "right": (width - tw - 3, (height + th) // 2),
    }[edge]


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
