"""Reading and preparing one input for the model (internal): files, arrays, volume slices."""

from __future__ import annotations

import os

import cv2
import numpy as np

from m1vision._checks import check_image
from m1vision.errors import InvalidImageError
from m1vision.inference._predictor._results import _describe


def _load_item(item) -> np.ndarray:
    if isinstance(item, str | os.PathLike):
        from m1vision.io import read_any

        image = read_any(item)
        if image.is_volume:
            raise InvalidImageError(
                f"{str(item)!r} is a volume of shape {image.shape}; Predictor classifies "
                "2-D images. Pass its slices: list(read_any(path).pixels)."
            )
        return image.pixels
    pixels = getattr(item, "pixels", None)
    if isinstance(pixels, np.ndarray):  # a MedicalImage
        if getattr(item, "is_volume", False):
            raise InvalidImageError(
                f"the MedicalImage {_describe(item) or ''!r} is a volume of shape "
                f"{pixels.shape}; pass its slices: list(image.pixels)."
            )
        return pixels
    if isinstance(item, np.ndarray):
        if item.ndim == 3 and item.shape[2] not in (1, 3, 4):
            raise InvalidImageError(
                f"an input of shape {item.shape} looks like a (Z, H, W) volume; Predictor "
                "classifies 2-D images: pass its slices (list(volume))."
            )
        return item
    raise TypeError(
        f"each input must be a path, a numpy.ndarray or a MedicalImage, got {type(item).__name__}."
    )


class _Preparer:
    """What :meth:`Predictor.prepare` does, without the model: picklable when ``preprocess``
    is, so worker processes can run it (:mod:`m1vision.inference._procprep`)."""

    def __init__(self, preprocess, input_shape, input_dtype):
        self.preprocess = preprocess
        self.input_shape = input_shape
        self.input_dtype = input_dtype

    def __call__(self, item) -> np.ndarray:
        image = _load_item(item)
        if self.preprocess is not None:
            image = self.preprocess(image)
            if not isinstance(image, np.ndarray):
                raise TypeError(
                    f"preprocess must return a numpy.ndarray, got {type(image).__name__}."
                )
        if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
            raise InvalidImageError(
                f"input of shape {image.shape} looks like a (Z, H, W) volume; Predictor "
                "classifies 2-D images: pass its slices (list(volume))."
            )
        image = check_image(image, name="input image")
        _, height, width, channels = self.input_shape
        if height is not None and width is not None and image.shape[:2] != (height, width):
            from m1vision.preprocess import resize

            image = resize(image, size=(height, width), keep_aspect=False)
        if image.ndim == 3 and image.shape[2] == 4 and channels != 4:
            image = image[:, :, :3]
        if channels == 3 and image.ndim == 2:
            if image.dtype in (np.uint8, np.uint16, np.float32):
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # ~8x faster than np.repeat
            else:
                image = np.repeat(image[:, :, None], 3, axis=2)
        elif channels == 1 and image.ndim == 3:
            from m1vision.preprocess import to_gray

            image = to_gray(image)
        if image.ndim == 2:
            image = image[:, :, None]
        if channels is not None and image.shape[2] != channels:
            raise InvalidImageError(
                f"input has {image.shape[2]} channels but the model expects {channels}."
            )
        return np.ascontiguousarray(image, dtype=self.input_dtype)


def _volume_slices(image, axis) -> list[np.ndarray]:
    """The 2-D slices of a MedicalImage volume along ``axis`` (views, not copies)."""
    from m1vision.volume import volume_slices

    return volume_slices(image, axis=axis, hint="for 2-D images use Predictor.predict")
