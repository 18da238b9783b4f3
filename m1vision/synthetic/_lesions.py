"""The lesion data set: CT-like pictures with or without a lesion, and their masks."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from m1vision._checks import check_int, check_number
from m1vision.errors import InvalidParameterError

#: Class names, index = label.
LABELS: tuple[str, str] = ("no lesion", "lesion")

#: The base images the cases are made from.
SOURCES: tuple[str, ...] = ("ct_small", "ct_head", "phantom")

# Semi-axes of a lesion, in pixels at size 128 (scaled with size).
_RADIUS_RANGE = (6.0, 14.0)
_CONTRAST_RANGE = (50.0, 110.0)
_NOISE_RANGE = (2.0, 5.0)


@dataclass(frozen=True)
class LesionDataset:
    """What :func:`make_lesion_dataset` returns.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, H, W)
        Gray images, 0-255.
    labels : ndarray of int64, shape (N,)
        0 = "no lesion", 1 = "lesion" (see :data:`LABELS`).
    masks : ndarray of bool, shape (N, H, W)
        The lesion (where its soft edge is at least half opaque); all False for label 0.
    sources : tuple of str
        For each case, which base image it came from (one of :data:`SOURCES`).
    seed : int
        The seed it was made with.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    sources: tuple[str, ...]
    seed: int

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices) -> LesionDataset:
        """Return the cases at ``indices`` (an integer array) as a new data set."""
        idx = np.asarray(indices, dtype=np.int64)
        return LesionDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            masks=self.masks[idx],
            sources=tuple(self.sources[i] for i in idx),
            seed=self.seed,
        )


# --------------------------------------------------------------------------- base images


@dataclass(frozen=True)
class _Base:
    name: str
    values: np.ndarray  # float32 (H, W): HU for CT, 0-1 for the phantom
    body: np.ndarray  # uint8 (H, W), 1 in soft tissue inside the body (lesions go there)
    background: float  # the value outside the body (air)
    window: tuple[float, float]  # (center, width) mapping values to 0-255


def _soft_tissue(inside: np.ndarray, bone: np.ndarray) -> np.ndarray:
    """Where a lesion may go: the body (the largest connected region of ``inside`` with its
    holes filled) without the bone (``bone``, widened by 2 % of the image side), uint8 0/1."""
    inside = cv2.morphologyEx(
        inside.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8), iterations=1
    )
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    body = np.zeros(inside.shape, np.uint8)
    if contours:
        largest = max(contours, key=cv2.contourArea)
        cv2.drawContours(body, [largest], -1, 1, thickness=cv2.FILLED)
    k = max(3, round(0.02 * min(bone.shape)))
    bone = cv2.dilate(bone.astype(np.uint8), np.ones((k, k), np.uint8))
    body[bone > 0] = 0
    return body


def _read_ct(name: str) -> np.ndarray:
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.pixels import apply_modality_lut

    path = get_testdata_file(name, download=False)
    if path is None:  # pragma: no cover - pydicom ships these files
        raise FileNotFoundError(f"pydicom's test file {name!r} is missing; reinstall pydicom.")
    ds = pydicom.dcmread(path)
    return np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float32)


@functools.cache
def _bases() -> tuple[_Base, ...]:
    from skimage.data import shepp_logan_phantom

    small = _read_ct("CT_small.dcm")
    head = _read_ct("693_J2KI.dcm")
    # The head scan is padded with -3000-ish values outside the field of view: air is -1000.
    head = np.maximum(head, -1000.0)
    phantom = shepp_logan_phantom().astype(np.float32)
    bases = (
        _Base("ct_small", small, _soft_tissue(small > -300, small > 250), -1000.0, (40, 400)),
        _Base("ct_head", head, _soft_tissue(head > -300, head > 250), -1000.0, (40, 200)),
        _Base("phantom", phantom, _soft_tissue(phantom > 0.05, phantom > 0.8), 0.0, (0.5, 1)),
    )
    for base in bases:
        base.values.setflags(write=False)
        base.body.setflags(write=False)
    return bases


# --------------------------------------------------------------------------- one case


def _augment(base: _Base, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip, rotate, crop and resize a base image; return (values, body) at size x size."""
    h, w = base.values.shape
    side = min(h, w) * rng.uniform(0.55, 1.0)
    angle = rng.uniform(-25.0, 25.0)
    flip_x, flip_y = rng.integers(0, 2, size=2)
    # Crop centre: anywhere the crop square stays mostly inside the image.
    cx = rng.uniform(side / 2, w - side / 2) if w > side else w / 2
    cy = rng.uniform(side / 2, h - side / 2) if h > side else h / 2
    scale = size / side
    # Output pixel (u, v) -> input: centre, flip, rotate, scale; built as a forward matrix.
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), float(scale))
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    if flip_x:
        m[0] = -m[0]
        m[0, 2] += size - 1
    if flip_y:
        m[1] = -m[1]
        m[1, 2] += size - 1
    values = cv2.warpAffine(
        base.values,
        m,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float(base.background),
    )
    body = cv2.warpAffine(
        base.body, m, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT
    )
    return values, body


def _to_gray(base: _Base, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Window with a jittered window, gamma; return float32 0-255."""
    center, width = base.window
    center += rng.uniform(-0.1, 0.1) * width
    width *= rng.uniform(0.8, 1.25)
    x = (values - np.float32(center - width / 2)) / np.float32(width)
    np.clip(x, 0.0, 1.0, out=x)
    gamma = rng.uniform(0.8, 1.25)
    return (np.power(x, np.float32(gamma)) * np.float32(255.0)).astype(np.float32)


def _add_lesion(
    gray: np.ndarray, body: np.ndarray, rng: np.random.Generator, size: int
) -> np.ndarray | None:
    """Blend one soft-edged elliptical lesion into ``gray`` (in place); return its mask.

    Returns None when the body has no room for the drawn lesion size.
    """
    k = size / 128.0
    a = rng.uniform(*_RADIUS_RANGE) * k
    b = a * rng.uniform(0.6, 1.0)
    theta = rng.uniform(0.0, math.pi)
    softness = rng.uniform(0.5, 2.0) * k  # edge width in pixels
    contrast = rng.uniform(*_CONTRAST_RANGE)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    texture_seed = int(rng.integers(0, 2**31))
    # Room: the centre must be at least a + margin away from outside the body.
    inside = body.copy()
    inside[[0, -1], :] = 0  # the image border counts as outside: lesions stay in the picture
    inside[:, [0, -1]] = 0
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    room = np.argwhere(dist >= a + 2.0 * k)
    if room.shape[0] == 0:
        return None
    cy, cx = room[int(rng.integers(0, room.shape[0]))].astype(np.float64)
    cy += rng.uniform(-0.5, 0.5)
    cx += rng.uniform(-0.5, 0.5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - cx, yy - cy
    u = (dx * math.cos(theta) + dy * math.sin(theta)) / a
    v = (-dx * math.sin(theta) + dy * math.cos(theta)) / b
    rho = np.sqrt(u * u + v * v)
    # Soft edge: logistic in the distance (in pixels) from the ellipse outline.
    edge_px = (rho - 1.0) * b
    alpha = 1.0 / (1.0 + np.exp(np.clip(edge_px / (softness / 2.0), -50, 50)))
    mask = alpha >= 0.5
    background = float(gray[mask].mean())
    target = background + sign * contrast
    if not 15.0 <= target <= 240.0:  # no room on that side: go the other way
        target = background - sign * contrast
    target = float(np.clip(target, 15.0, 240.0))
    texture = np.random.default_rng(texture_seed).normal(0.0, 1.0, (size, size))
    texture = cv2.GaussianBlur(texture, (0, 0), 1.5 * k) * (0.15 * contrast)
    lesion = target + texture
    gray *= (1.0 - alpha).astype(np.float32)
    gray += (alpha * lesion).astype(np.float32)
    return mask


def _make_case(index: int, label: int, seed: int, size: int) -> tuple[np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng([seed, index])
    bases = _bases()
    base = bases[int(rng.integers(0, len(bases)))]
    for _ in range(20):
        values, body = _augment(base, rng, size)
        if body.mean() >= 0.15:  # a crop with enough soft tissue in it
            break
    gray = _to_gray(base, values, rng)
    blur = rng.uniform(0.0, 1.0) * size / 128.0
    if blur > 0.3:
        gray = cv2.GaussianBlur(gray, (0, 0), blur)
    mask = np.zeros((size, size), bool)
    if label == 1:
        drawn = None
        while drawn is None:
            drawn = _add_lesion(gray, body, rng, size)
            if drawn is None:  # body too small for that lesion: take another crop
                values, body = _augment(base, rng, size)
                gray = _to_gray(base, values, rng)
        mask = drawn
    noise = rng.uniform(*_NOISE_RANGE)
    gray += rng.normal(0.0, noise, gray.shape).astype(np.float32)
    image = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return image, mask, base.name


# --------------------------------------------------------------------------- public API


def make_lesion_dataset(
    n: int, *, size: int = 128, seed: int = 0, positive_fraction: float = 0.5
) -> LesionDataset:
    """Generate ``n`` CT-like gray images with or without a lesion, and the lesion masks.

    Parameters
    ----------
    n : int
        Number of cases, >= 1.
    size : int
        Height and width of each image in pixels, >= 32 (lesion sizes scale with it).
    seed : int
        Seed (>= 0). The same seed (and ``n``, ``size``, ``positive_fraction``) gives
        byte-identical data; case ``i`` depends only on ``(seed, i)`` and its label, so a
        larger ``n`` with the same seed and fraction 0 or 1 extends a smaller one.
    positive_fraction : float
        Fraction of cases with a lesion, in [0, 1]; ``round(n * positive_fraction)`` cases
        get one, at positions shuffled by ``seed``.

    Returns
    -------
    LesionDataset
        ``images`` uint8 (N, H, W), ``labels`` int64 (N,), ``masks`` bool (N, H, W),
        ``sources`` (base image of each case), ``seed``.

    Examples
    --------
    >>> from m1vision.synthetic import make_lesion_dataset
    >>> ds = make_lesion_dataset(4, size=64, seed=1)
    >>> ds.images.shape, ds.images.dtype.name, ds.labels.tolist()
    ((4, 64, 64), 'uint8', [0, 1, 1, 0])
    >>> bool(ds.masks[ds.labels == 1].any(axis=(1, 2)).all()), bool(ds.masks[ds.labels == 0].any())
    (True, False)
    """
    n = check_int(n, name="n", minimum=1)
    size = check_int(size, name="size", minimum=32)
    seed = check_int(seed, name="seed", minimum=0)
    positive_fraction = check_number(positive_fraction, name="positive_fraction", minimum=0.0)
    if positive_fraction > 1.0:
        raise InvalidParameterError(
            f"positive_fraction must be in [0, 1], got {positive_fraction}."
        )
    n_pos = round(n * positive_fraction)
    labels = np.zeros(n, np.int64)
    labels[:n_pos] = 1
    labels = np.random.default_rng([seed, 2**32 - 1]).permutation(labels)
    images = np.empty((n, size, size), np.uint8)
    masks = np.zeros((n, size, size), bool)
    sources = []
    for i in range(n):
        images[i], masks[i], name = _make_case(i, int(labels[i]), seed, size)
        sources.append(name)
    return LesionDataset(images, labels, masks, tuple(sources), seed)


def split_indices(
    n: int, *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into sorted (train, test) index arrays, at random by ``seed``.

    Examples
    --------
    >>> from m1vision.synthetic import split_indices
    >>> train, test = split_indices(10, test_fraction=0.3, seed=0)
    >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
    (7, 3, True)
    """
    n = check_int(n, name="n", minimum=2)
    seed = check_int(seed, name="seed", minimum=0)
    test_fraction = check_number(test_fraction, name="test_fraction", minimum=0.0)
    n_test = round(n * test_fraction)
    if not 1 <= n_test <= n - 1:
        raise InvalidParameterError(
            f"test_fraction={test_fraction} leaves {n_test} of {n} cases for testing; "
            "choose a fraction that leaves at least one case on each side."
        )
    order = np.random.default_rng([seed, 2**32 - 2]).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])
