"""A generated, deterministic CT-like "lesion present / absent" data set with masks.

No medical data set can be downloaded here, so the demo model (``data/models/lesion_cnn``)
learns from pictures made on the fly: real CT slices shipped with pydicom (``CT_small.dcm``,
a 128x128 slice of the spine and back muscles, and ``693_J2KI.dcm``, a 512x512 head CT in
JPEG 2000) and the Shepp-Logan phantom of scikit-image, each

* augmented: flipped, rotated (+-25 degrees), cropped (55-100 % of the side) and resized,
  then windowed with a jittered window (CT, in Hounsfield units) or a jittered gain and
  offset (phantom), a gamma jitter and a slight blur;
* for a "lesion" case, given one round or elliptical lesion placed *inside the body*
  (wholly within the body outline, which is found by thresholding the slice), of varied
  size (semi-axes 6-14 px at 128 px), orientation, contrast (50-110 gray levels, brighter or
  darker than its surroundings), soft edge and faint inner texture;
* finished with Gaussian noise of a random level (the same for both classes) and
  quantised to ``uint8``.

Everything is drawn from one :class:`numpy.random.Generator` per case, seeded by
``(seed, case index)``, and the image operations are OpenCV's deterministic ones, so the
same ``seed`` gives byte-identical data on any machine with the same library versions.

This is a toy task for demonstrations and tests of the inference and explanation code.
It is not a model of real pathology.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from m1vision._checks import check_int, check_number
from m1vision.errors import InvalidParameterError

__all__ = [
    "ENHANCED_VARIANTS",
    "LABELS",
    "MESSY_SERIES",
    "PHANTOM_LABELS",
    "SERIES_VARIANTS",
    "SOURCES",
    "GeneratedCollection",
    "GeneratedEnhanced",
    "GeneratedSeries",
    "LesionDataset",
    "ct_phantom",
    "ct_phantom_labels",
    "make_lesion_dataset",
    "split_indices",
    "write_ct_series",
    "write_enhanced",
    "write_messy_collection",
]

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


# ---------------------------------------------------------------------------------- CT series

#: The series :func:`write_ct_series` writes: a regular one and each irregular kind.
SERIES_VARIANTS: tuple[str, ...] = (
    "regular",  # axial, sorted names IM0001.dcm...
    "shuffled",  # extensionless random names, InstanceNumber shuffled too
    "reversed",  # names and InstanceNumber from superior to inferior
    "missing_slice",  # one file left out
    "uneven",  # steps of 1.0 and 1.4 times the spacing
    "duplicates",  # a second echo at one position
    "mismatch",  # one file with another pixel spacing
    "mixed",  # two series in one folder: this one and a coronal one
    "sagittal",  # the same volume stored as sagittal slices
    "coronal",  # the same volume stored as coronal slices
    "oblique",  # axial slices rotated 15 degrees about the patient's left-right axis
    "tilted",  # axial slices, a 12 degree gantry tilt
    "rescale",  # each slice its own RescaleSlope/RescaleIntercept
    "monochrome1",  # MONOCHROME1 (inverted) storage
)


@dataclass(frozen=True)
class GeneratedSeries:
    """What :func:`write_ct_series` wrote and what a correct reader gives back.

    Attributes
    ----------
    folder : pathlib.Path
        The folder holding the files.
    files : tuple of pathlib.Path
        The files written (for "mixed", both series).
    expected : numpy.ndarray or None
        The float32 (Z, H, W) HU volume in :func:`m1vision.io.read_nifti`'s layout that a
        correct reader returns (strict=False for the irregular kinds: the missing slice
        filled with the minimum, the odd "mismatch" file dropped and filled so, the duplicate
        dropped); ``None`` for "oblique" (its axes
        are rotated, so no reorientation gives the phantom's grid back).
    affine : numpy.ndarray or None
        The (4, 4) affine of ``expected`` ((z, row, col, 1) -> RAS+ mm): built from the
        geometry the files were written with, independently of any reader.
    variant : str
        One of :data:`SERIES_VARIANTS`.
    """

    folder: Path
    files: tuple[Path, ...]
    expected: np.ndarray | None
    affine: np.ndarray | None
    variant: str


def _phantom_parts(z: float, y: np.ndarray, x: np.ndarray):
    """The phantom's parts in one axial slice, in drawing order: ``(name, HU, mask)``.

    ``z`` is the slice's height in [-1, 1], ``y`` and ``x`` the in-plane grid in [-1, 1]
    (rows anterior to posterior, columns the patient's right to left). A later part paints
    over an earlier one. :func:`ct_phantom` paints the HU values, :func:`ct_phantom_labels`
    the label values of :data:`PHANTOM_LABELS` (0 for the body and its soft tissue), so the
    organs of both are the same voxels.
    """

    def inside(cz, cy, cx, rz, ry, rx):
        return ((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0

    yield "body", -100.0, (y / 0.7) ** 2 + (x / 0.9) ** 2 <= 1.0 - 0.15 * z**2
    yield "soft_tissue", 40.0, (y / 0.64) ** 2 + (x / 0.84) ** 2 <= 1.0 - 0.15 * z**2
    yield "lung_right", -850.0, inside(0.55, -0.05, -0.4, 0.5, 0.4, 0.28)
    yield "lung_left", -850.0, inside(0.55, -0.05, 0.4, 0.5, 0.4, 0.28)
    yield "liver", 60.0, inside(-0.4, -0.05, -0.3, 0.45, 0.35, 0.35)  # patient's right
    yield "liver_lesion", 80.0, inside(-0.45, 0.05, -0.25, 0.1, 0.08, 0.08)
    yield "aorta", 150.0, ((y - 0.1) / 0.08) ** 2 + ((x - 0.08) / 0.08) ** 2 <= 1.0
    yield "spine", 700.0, ((y - 0.45) / 0.12) ** 2 + (x / 0.12) ** 2 <= 1.0  # bone


def _phantom_grid(shape):
    """The checked shape, the in-plane grid (y, x) and the slice heights z, all in [-1, 1]."""
    if not isinstance(shape, tuple | list) or len(shape) != 3:
        raise InvalidParameterError(
            f"shape must be (Z, H, W), three integers >= 2, got {shape!r}; e.g. (64, 256, 256)."
        )
    nz, ny, nx = (check_int(v, name="shape", minimum=2) for v in shape)
    y, x = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    return (nz, ny, nx), y, x, np.linspace(-1, 1, nz)


def ct_phantom(shape=(64, 256, 256), *, seed: int = 0) -> np.ndarray:
    """A 3-D CT-like phantom in Hounsfield units, laid out like :func:`m1vision.io.read_nifti`.

    An elliptical body (soft tissue 40 HU under a fat layer of -100 HU) in air (-1000 HU),
    two lungs (-850 HU) in the upper half, a spine (bone, 700 HU) at the back, a liver-like
    organ (60 HU) and an aorta (150 HU), an 80 HU round lesion in the liver, and seeded
    Gaussian noise (SD 8 HU); values rounded to whole HU. Axes: z inferior to superior,
    rows anterior to posterior, columns right to left. :func:`ct_phantom_labels` gives its
    organs as a label map.

    Examples
    --------
    >>> from m1vision.synthetic import ct_phantom
    >>> vol = ct_phantom((8, 64, 64))
    >>> vol.shape, vol.dtype.name, float(vol.min()) <= -990, float(vol.max()) >= 650
    ((8, 64, 64), 'float32', True, True)
    """
    (nz, ny, nx), y, x, zs = _phantom_grid(shape)
    rng = np.random.default_rng([check_int(seed, name="seed", minimum=0), 10])
    vol = np.empty((nz, ny, nx), np.float32)
    for k, z in enumerate(zs):  # slice by slice: little memory at 512^3
        plane = np.full((ny, nx), -1000.0)
        body = None
        for name, hu, mask in _phantom_parts(z, y, x):
            plane[mask] = hu
            if name == "body":
                body = mask
        plane[body] += rng.normal(0.0, 8.0, int(body.sum()))
        vol[k] = np.round(plane)
    return vol


# --------------------------------------------------------------------------- phantom labels

#: The organs of :func:`ct_phantom` as label values: ``{value: {"name", "color"}}`` in the
#: label-map convention of :mod:`m1vision.labels` (``color`` is ``[r, g, b]``, 0-255).
PHANTOM_LABELS: dict[int, dict] = {
    1: {"name": "lung_right", "color": [128, 174, 128]},
    2: {"name": "lung_left", "color": [111, 184, 210]},
    3: {"name": "liver", "color": [177, 122, 101]},
    4: {"name": "liver_lesion", "color": [255, 255, 0]},
    5: {"name": "aorta", "color": [224, 97, 76]},
    6: {"name": "spine", "color": [241, 214, 145]},
}


def _phantom_affine(shape, spacing) -> np.ndarray:
    """The RAS+ affine of the phantom grid: the one :func:`write_ct_series` writes."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ _layout_to_lps(shape, spacing)


def ct_phantom_labels(shape=(64, 256, 256), *, seed: int = 0, spacing=(2.5, 0.8, 0.8)):
    """The organs of :func:`ct_phantom` as a label map, voxel for voxel.

    Label values and names are :data:`PHANTOM_LABELS` (1 right lung, 2 left lung, 3 liver,
    4 the lesion in the liver, 5 aorta, 6 spine; 0 the rest: air, fat, soft tissue). Both
    functions paint the same organ description in the same order, so ``labels == 3`` is
    exactly where ``ct_phantom(shape, seed=seed)`` holds its 60 HU liver (before the noise).
    The labels do not depend on ``seed`` (only the phantom's noise does); it is accepted so
    that both take the same arguments.

    Parameters
    ----------
    shape : (Z, H, W)
        As :func:`ct_phantom`.
    seed : int, keyword-only
        As :func:`ct_phantom` (>= 0).
    spacing : (z, row, col) mm, keyword-only
        The voxel size of the grid; the affine is the one :func:`write_ct_series` gives a
        series of this shape and spacing, so the map matches ``read_series`` of that series.

    Returns
    -------
    MedicalImage
        ``pixels`` uint8 (Z, H, W), ``spacing``, ``metadata["affine"]`` and
        ``metadata["labels"]`` (the entries of :data:`PHANTOM_LABELS` whose organ the grid
        holds: a few slices may miss the lesion), ``layout`` "volume".

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.synthetic import ct_phantom, ct_phantom_labels
    >>> labels = ct_phantom_labels((8, 64, 64))
    >>> labels.pixels.dtype.name, sorted(np.unique(labels.pixels).tolist())
    ('uint8', [0, 1, 2, 3, 4, 5, 6])
    >>> bool((ct_phantom((8, 64, 64))[labels.pixels == 6] > 600).all())  # spine: bone
    True
    """
    import copy

    from m1vision.geometry import check_spacing
    from m1vision.io import MedicalImage
    from m1vision.labels._core import label_info

    (nz, ny, nx), y, x, zs = _phantom_grid(shape)
    check_int(seed, name="seed", minimum=0)
    spacing = check_spacing(spacing)
    values = {entry["name"]: value for value, entry in PHANTOM_LABELS.items()}
    out = np.zeros((nz, ny, nx), np.uint8)
    for k, z in enumerate(zs):
        plane = out[k]
        for name, _, mask in _phantom_parts(z, y, x):
            plane[mask] = values.get(name, 0)
    affine = _phantom_affine((nz, ny, nx), spacing)
    return MedicalImage(
        pixels=out,
        spacing=spacing,
        metadata={
            "layout": "volume",
            "affine": affine.tolist(),
            "labels": label_info(out, copy.deepcopy(PHANTOM_LABELS), strict=False),
        },
    )


def _layout_to_lps(shape, spacing) -> np.ndarray:
    """(z, row, col) -> LPS of the phantom grid, centred in-plane, z from -100 mm."""
    _, ny, nx = shape
    dz, dr, dc = spacing
    a = np.zeros((4, 4))
    a[2, 0], a[1, 1], a[0, 2], a[3, 3] = dz, dr, dc, 1.0
    a[:3, 3] = (-(nx - 1) * dc / 2, -(ny - 1) * dr / 2, -100.0)
    return a


def write_ct_series(
    folder,
    *,
    variant: str = "regular",
    shape=(64, 256, 256),
    spacing=(2.5, 0.8, 0.8),
    seed=0,
    modality: str = "CT",
    rescale_per_slice: bool = False,
) -> GeneratedSeries:
    """Write :func:`ct_phantom` as a DICOM CT series (one file per slice) with pydicom.

    The files carry real CT headers (CT Image Storage, int16 with RescaleSlope 1 and
    RescaleIntercept -1024, a soft-tissue window, ImagePositionPatient/Orientation,
    PixelSpacing, SliceThickness, SeriesInstanceUID...) and made-up patient identifiers
    (PatientName ``Phantom^Generated``, PatientID ``GEN-0001``) so that tests can check no
    reader lets them through. UIDs and names derive from ``seed``: the same call writes the
    same bytes. ``variant`` is one of :data:`SERIES_VARIANTS` (see the comments there).

    ``modality="MR"`` writes the same geometry as MR Image Storage: the phantom mapped to MR-like
    values ``(HU + 1000) / 2`` stored as uint16 with RescaleSlope 0.75 (a slope a reader must
    apply). ``rescale_per_slice=True`` gives every slice its own RescaleSlope/Intercept, in any
    orientation (the "rescale" variant does so for axial slices).

    Returns
    -------
    GeneratedSeries
        The files and the volume and affine a correct reader returns.

    Examples
    --------
    >>> import tempfile
    >>> from m1vision.synthetic import write_ct_series
    >>> gen = write_ct_series(tempfile.mkdtemp(), shape=(4, 32, 32))
    >>> len(gen.files), gen.expected.shape, gen.files[0].name
    (4, (4, 32, 32), 'IM0001.dcm')
    """
    import pydicom
    from pydicom.uid import generate_uid

    if variant not in SERIES_VARIANTS:
        raise InvalidParameterError(
            f"variant must be one of {', '.join(SERIES_VARIANTS)}, got {variant!r}."
        )
    if modality not in ("CT", "MR"):
        raise InvalidParameterError(f"modality must be 'CT' or 'MR', got {modality!r}.")
    mr = modality == "MR"
    if mr and variant in ("monochrome1", "mixed"):
        raise InvalidParameterError(
            f"variant {variant!r} is written for CT only; use modality='CT'."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = tuple(int(v) for v in shape)
    spacing = tuple(float(v) for v in spacing)
    vol = ct_phantom(shape, seed=seed)
    if mr:
        vol = (vol + 1000.0) / 2.0
    rng = np.random.default_rng([seed, 11, SERIES_VARIANTS.index(variant)])
    uid = lambda *parts: generate_uid(entropy_srcs=[str(seed), variant, *map(str, parts)])  # noqa: E731

    # 1. the stored slices, in LPS: (image (rows, cols), IOP, IPP, pixel spacing (row, col))
    slices = _stored_slices(vol, variant, spacing)
    # 2. what a correct reader returns, and the files left out
    expected, affine, order = _expected_volume(vol, variant, spacing, len(slices))
    # 3. one file per slice (with the variant's numbering, names, rescales and duplicates)
    files = []
    series_uid = uid("series")
    numbers = list(range(1, len(order) + 1))
    if variant == "shuffled":
        numbers = [int(v) for v in rng.permutation(numbers)]
    if variant == "reversed":
        numbers = numbers[::-1]
    common = {
        "uid": uid,
        "spacing": spacing,
        "variant": variant,
        "series_uid": series_uid,
        "modality": modality,
    }
    views = None if expected is None else _slice_views(expected, variant)
    for pos, k in enumerate(order):
        img, iop, ipp, ps = slices[k]
        slope, inter = None, None  # the modality's own
        if variant == "rescale" or rescale_per_slice:
            if mr:
                slope, inter = float(rng.choice([0.5, 0.75, 1.25])), float(rng.choice([0.0, -5.0]))
            else:
                slope = float(rng.choice([0.5, 1.0, 2.0]))
                inter = float(rng.choice([-1024.0, -2000.0]))
        if variant == "mismatch" and k == 1:
            ps = (ps[0] * 1.5, ps[1] * 1.5)
        ds, got = _ct_dataset(img, iop, ipp, ps, numbers[pos], slope=slope, inter=inter, **common)
        if views is not None and got is not None and not (variant == "mismatch" and k == 1):
            views[k][...] = got
        name = f"IM{numbers[pos]:04d}.dcm"
        if variant == "shuffled":
            name = "".join(rng.choice(list("0123456789ABCDEF"), 8))
        files.append(folder / name)
        ds.save_as(files[-1], enforce_file_format=True)
        if variant == "duplicates" and k == 2:
            ds2, _ = _ct_dataset(img + 5, iop, ipp, ps, 900, echo=2, **common)
            ds.EchoNumbers = 1
            ds.save_as(files[-1], enforce_file_format=True)
            files.append(folder / "IM0900.dcm")
            ds2.save_as(files[-1], enforce_file_format=True)
    # 4. a second series in the same folder
    if variant == "mixed":
        other = write_ct_series(
            folder / "second", variant="coronal", shape=(6, 32, 24), seed=seed + 1
        )
        for f in other.files:
            ds = pydicom.dcmread(f)
            ds.SeriesDescription, ds.SeriesNumber = "Phantom coronal reformat", 3
            f.unlink()
            files.append(folder / f"RF{int(ds.InstanceNumber):04d}")
            ds.save_as(files[-1], enforce_file_format=True)
        (folder / "second").rmdir()
    return GeneratedSeries(folder, tuple(files), expected, affine, variant)


def _slice_views(expected: np.ndarray, variant: str) -> list:
    """For each stored slice, the view of ``expected`` (the layout) it fills."""
    if variant == "sagittal":
        return [expected[::-1, :, s] for s in range(expected.shape[2])]
    if variant == "coronal":
        return [expected[::-1, s, :] for s in range(expected.shape[1])]
    return [expected[k] for k in range(expected.shape[0])]


def _stored_slices(vol: np.ndarray, variant: str, spacing: tuple) -> list[tuple]:
    """The slices a series of ``variant`` stores, in LPS: (image, IOP, IPP, pixel spacing)."""
    shape = vol.shape
    lay = _layout_to_lps(shape, spacing)  # layout index -> LPS
    nz = shape[0]
    slices = []
    if variant in ("sagittal", "coronal"):
        axis = 2 if variant == "sagittal" else 1
        for s in range(shape[axis]):
            img = vol[::-1, :, s] if axis == 2 else vol[::-1, s, :]
            corner = [nz - 1, 0, s] if axis == 2 else [nz - 1, s, 0]
            iop = [0, 1, 0, 0, 0, -1] if axis == 2 else [1, 0, 0, 0, 0, -1]
            ps = (spacing[0], spacing[1] if axis == 2 else spacing[2])
            slices.append((img, iop, (lay @ [*corner, 1])[:3], ps))
        return slices
    rot = np.eye(3)
    if variant == "oblique":
        t = math.radians(15.0)
        rot = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    for k in range(nz):
        zpos = k * spacing[0] + (0.4 * spacing[0] if variant == "uneven" and k >= nz // 2 else 0)
        ipp = lay[:3, 3] + rot @ [0.0, 0.0, zpos]
        if variant == "tilted":
            ipp = ipp + np.array([0.0, -zpos * math.tan(math.radians(12.0)), 0.0])
        iop = np.concatenate([rot @ [1, 0, 0], rot @ [0, 1, 0]])
        slices.append((vol[k], list(iop), ipp, spacing[1:]))
    return slices


def _expected_volume(vol: np.ndarray, variant: str, spacing: tuple, n_slices: int):
    """``(expected pixels, expected affine, the stored slices' order)`` of ``variant``:
    what a correct reader returns (None, None for an oblique series)."""
    nz = vol.shape[0]
    order = list(range(n_slices))
    expected, affine = vol.copy(), _phantom_affine(vol.shape, spacing)
    if variant == "tilted":
        affine[1, 0] = spacing[0] * math.tan(math.radians(12.0))
    if variant == "oblique":
        expected = affine = None
    if variant == "missing_slice":
        order.remove(nz // 2)
        expected[nz // 2] = expected.min()
    if variant == "mismatch":  # the odd file is dropped, then filled as a missing slice
        expected[1] = expected.min()
    return expected, affine, order


def _ct_dataset(
    img,
    iop,
    ipp,
    ps,
    number,
    *,
    uid,
    spacing,
    variant,
    series_uid,
    modality="CT",
    slope=None,
    inter=None,
    echo=None,
):
    """One CT (or MR) Image Storage dataset of a generated series, and the values it stores
    in modality units (None for MONOCHROME1). Slope and intercept default to the modality's:
    1 and -1024 for CT (int16), 0.75 and 0 for MR (uint16)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage

    mr = modality == "MR"
    if slope is None:
        slope = 0.75 if mr else 1.0
    if inter is None:
        inter = 0.0 if mr else -1024.0
    sop_class = MRImageStorage if mr else CTImageStorage
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid(series_uid, number, echo)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID, ds.StudyDate = "Phantom^Generated", "GEN-0001", "20260101"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), series_uid
    ds.FrameOfReferenceUID = uid("frame", series_uid)
    ds.Modality, ds.Manufacturer, ds.SeriesNumber = modality, "m1vision synthetic", 2
    ds.SeriesDescription = "Phantom abdomen 2.5 mm"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in iop]
    ds.PixelSpacing = [f"{v:.6f}" for v in ps]
    ds.SliceThickness = f"{spacing[0]:.6f}"
    ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{inter:g}"
    if mr:
        ds.WindowCenter, ds.WindowWidth = "400", "800"
    else:
        ds.KVP, ds.WindowCenter, ds.WindowWidth, ds.RescaleType = "120", "40", "400", "HU"
    mono1 = variant == "monochrome1"
    raw = (img - inter) / slope
    if mono1:  # stored so that K - lut(raw) gives img back, K = lut(0) + lut(65535)
        raw = (2 * inter + 65535 - img - inter) / slope
    ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 16, 15
    unsigned = mono1 or mr
    ds.PixelRepresentation = 0 if unsigned else 1
    ds.Rows, ds.Columns = img.shape
    if echo is not None:
        ds.EchoNumbers = echo
    ds.PixelData = np.round(raw).astype("<u2" if unsigned else "<i2").tobytes()
    return ds, np.round(raw) * slope + inter if not mono1 else None


# --------------------------------------------------------------------------- Enhanced multi-frame

#: The series variants :func:`write_enhanced` also writes as one Enhanced multi-frame object.
ENHANCED_VARIANTS: tuple[str, ...] = (
    "regular",
    "missing_slice",
    "uneven",
    "sagittal",
    "coronal",
    "oblique",
    "tilted",
)


@dataclass(frozen=True)
class GeneratedEnhanced:
    """What :func:`write_enhanced` wrote and what a correct reader gives back.

    Attributes
    ----------
    path : pathlib.Path
        The Enhanced multi-frame file.
    series : GeneratedSeries
        The same data as a classic single-frame series (its ``expected`` and ``affine`` are
        those of the first stack of ``path`` too).
    frame_order : tuple of int
        For each frame of the file, the index of the series file (in ``series.files``) it
        holds: the frames are stored in this (shuffled) order.
    echo_expected : tuple of numpy.ndarray
        Per echo, the volume a correct reader returns for that stack (axial variants only;
        empty otherwise). Echo ``e`` stores the first echo's values integer-divided by
        ``e + 1``.
    """

    path: Path
    series: GeneratedSeries
    frame_order: tuple[int, ...]
    echo_expected: tuple[np.ndarray, ...]


def _sequence(**elements):
    import pydicom

    item = pydicom.Dataset()
    for key, value in elements.items():
        setattr(item, key, value)
    return pydicom.Sequence([item])


def write_enhanced(
    folder,
    *,
    modality: str = "CT",
    variant: str = "regular",
    shape=(16, 64, 64),
    spacing=(2.5, 0.8, 0.8),
    rescale_per_frame: bool = False,
    shuffle: bool = True,
    echoes: int = 1,
    seed: int = 0,
) -> GeneratedEnhanced:
    """Write :func:`ct_phantom` both as a classic series and as one Enhanced CT/MR object.

    The classic series goes to ``folder/series`` (:func:`write_ct_series` with the same
    ``modality``, ``variant``, ``shape``, ``spacing``, ``seed`` and per-slice rescale), and the
    same slices, with the same stored values, positions, orientation and rescale, to
    ``folder/enhanced.dcm`` as an Enhanced CT (or MR) Image Storage object: ImagePositionPatient
    per frame in PlanePositionSequence, the orientation in a shared PlaneOrientationSequence,
    PixelSpacing and SliceThickness in a shared PixelMeasuresSequence, the rescale in
    PixelValueTransformationSequence (shared, or per frame with ``rescale_per_frame``),
    FrameContentSequence with StackID, InStackPositionNumber and DimensionIndexValues. The
    frames are stored in a seeded shuffled order (``shuffle``) so that only their positions
    sort them. ``echoes > 1`` (MR) repeats the stack per echo (MREchoSequence
    EffectiveEchoTime 10, 20... ms, a third dimension): one object holding several stacks.
    Deterministic: the same call writes the same bytes.

    Examples
    --------
    >>> import tempfile
    >>> from m1vision.synthetic import write_enhanced
    >>> gen = write_enhanced(tempfile.mkdtemp(), shape=(4, 24, 20))
    >>> gen.path.name, len(gen.series.files), gen.frame_order != (0, 1, 2, 3)
    ('enhanced.dcm', 4, True)
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (
        EnhancedCTImageStorage,
        EnhancedMRImageStorage,
        ExplicitVRLittleEndian,
        generate_uid,
    )

    if variant not in ENHANCED_VARIANTS:
        raise InvalidParameterError(
            f"variant must be one of {', '.join(ENHANCED_VARIANTS)}, got {variant!r}."
        )
    echoes = check_int(echoes, name="echoes", minimum=1)
    if echoes > 1 and modality != "MR":
        raise InvalidParameterError("echoes > 1 is an MR acquisition; pass modality='MR'.")
    folder = Path(folder)
    series = write_ct_series(
        folder / "series",
        variant=variant,
        shape=shape,
        spacing=spacing,
        seed=seed,
        modality=modality,
        rescale_per_slice=rescale_per_frame,
    )
    classic = [pydicom.dcmread(f) for f in series.files]
    n = len(classic)
    rng = np.random.default_rng([seed, 12, ENHANCED_VARIANTS.index(variant)])
    order = [int(v) for v in rng.permutation(n)] if shuffle else list(range(n))
    uid = lambda *parts: generate_uid(  # noqa: E731
        entropy_srcs=[str(seed), variant, modality, "enhanced", *map(str, parts)]
    )
    first = classic[0]
    sop = EnhancedMRImageStorage if modality == "MR" else EnhancedCTImageStorage
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.SOPClassUID = sop
    ds.SOPInstanceUID = uid("instance")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key in ("PatientName", "PatientID", "StudyDate", "StudyInstanceUID", "Modality"):
        setattr(ds, key, first.get(key))
    ds.Manufacturer = first.Manufacturer
    ds.SeriesInstanceUID = uid("series")
    ds.SeriesNumber = 4
    ds.SeriesDescription = f"Phantom {modality} enhanced"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = uid("frame of reference")
    ds.ContentQualification = "PRODUCT"
    ds.DimensionOrganizationType = "3D"
    dim_uid = uid("dimensions")
    ds.DimensionOrganizationSequence = _sequence(DimensionOrganizationUID=dim_uid)
    pointers = [
        ("StackID", "FrameContentSequence"),
        ("InStackPositionNumber", "FrameContentSequence"),
    ]
    if echoes > 1:
        pointers.append(("EffectiveEchoTime", "MREchoSequence"))
    ds.DimensionIndexSequence = pydicom.Sequence()
    for pointer, group in pointers:
        item = pydicom.Dataset()
        item.DimensionOrganizationUID = dim_uid
        item.DimensionIndexPointer = pydicom.datadict.tag_for_keyword(pointer)
        item.FunctionalGroupPointer = pydicom.datadict.tag_for_keyword(group)
        ds.DimensionIndexSequence.append(item)
    for key in (
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
    ):
        setattr(ds, key, first.get(key))
    ds.NumberOfFrames = n * echoes
    shared = pydicom.Dataset()
    shared.PixelMeasuresSequence = _sequence(
        PixelSpacing=first.PixelSpacing, SliceThickness=first.SliceThickness
    )
    shared.PlaneOrientationSequence = _sequence(
        ImageOrientationPatient=first.ImageOrientationPatient
    )
    shared.FrameVOILUTSequence = _sequence(
        WindowCenter=first.WindowCenter, WindowWidth=first.WindowWidth
    )
    if not rescale_per_frame:
        shared.PixelValueTransformationSequence = _sequence(
            RescaleSlope=first.RescaleSlope,
            RescaleIntercept=first.RescaleIntercept,
            RescaleType=first.get("RescaleType", "US"),
        )
    ds.SharedFunctionalGroupsSequence = pydicom.Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence()
    # the in-stack position: rank along the normal (what a writer knows; the reader ignores it)
    normal = np.cross(
        np.asarray(first.ImageOrientationPatient[:3], float),
        np.asarray(first.ImageOrientationPatient[3:], float),
    )
    rank = np.argsort(np.argsort([float(np.dot(c.ImagePositionPatient, normal)) for c in classic]))
    frames = []
    for e in range(echoes):
        for k in order:
            c = classic[k]
            item = pydicom.Dataset()
            values = [1, int(rank[k]) + 1] + ([e + 1] if echoes > 1 else [])
            item.FrameContentSequence = _sequence(
                StackID="1", InStackPositionNumber=int(rank[k]) + 1, DimensionIndexValues=values
            )
            item.PlanePositionSequence = _sequence(ImagePositionPatient=c.ImagePositionPatient)
            if rescale_per_frame:
                item.PixelValueTransformationSequence = _sequence(
                    RescaleSlope=c.RescaleSlope,
                    RescaleIntercept=c.RescaleIntercept,
                    RescaleType=c.get("RescaleType", "US"),
                )
            if echoes > 1:
                item.MREchoSequence = _sequence(EffectiveEchoTime=10.0 * (e + 1))
            ds.PerFrameFunctionalGroupsSequence.append(item)
            frames.append(c.pixel_array // (e + 1))
    ds.PixelData = np.stack(frames).astype(frames[0].dtype.newbyteorder("<")).tobytes()
    path = folder / "enhanced.dcm"
    ds.save_as(path, enforce_file_format=True)

    echo_expected: list[np.ndarray] = []
    if echoes > 1 and variant in ("regular", "uneven", "tilted"):
        for e in range(echoes):
            vol = np.empty((n, *classic[0].pixel_array.shape), np.float32)
            for c in classic:
                slope, inter = float(c.RescaleSlope), float(c.RescaleIntercept)
                vol[int(rank[classic.index(c)])] = (c.pixel_array // (e + 1)) * slope + inter
            echo_expected.append(vol)
    return GeneratedEnhanced(path, series, tuple(order), tuple(echo_expected))


# --------------------------------------------------------------------------- a messy collection

#: The series :func:`write_messy_collection` writes: (folder, modality, variant, what it is).
MESSY_SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("ct/chest", "CT", "regular", "axial CT, 2.5 mm slices"),
    ("ct/head_thin", "CT", "regular", "axial CT, 1 mm slices, larger matrix"),
    ("mr/knee_sag", "MR", "sagittal", "sagittal MR"),
    ("mr/brain_cor", "MR", "coronal", "coronal MR"),
    ("ct/gap", "CT", "missing_slice", "axial CT with one slice missing (a gap)"),
    ("ct/tilted", "CT", "tilted", "axial CT with a 12 degree gantry tilt"),
    ("copy/ct_chest", "CT", "copy", "a copy of ct/chest under another folder"),
)


@dataclass(frozen=True)
class GeneratedCollection:
    """What :func:`write_messy_collection` wrote, and what an audit must find in it.

    Attributes
    ----------
    root : pathlib.Path
        The collection's folder.
    series : tuple of dict
        Per series: ``folder`` (relative to ``root``), ``modality``, ``variant``, ``files``
        (how many), ``regular`` (True when a strict :func:`~m1vision.io.read_series` reads it).
    duplicated : tuple of (str, str)
        Folders whose images are pixel for pixel the same (the original, the copy).
    unreadable : tuple of str
        Files (relative to ``root``) that are not readable DICOM: a text file, a truncated one.
    skipped : tuple of str
        DICOM files that hold no image (the DICOMDIR).
    identifiers : tuple of str
        Patient and study identifiers written into the files (names, IDs, UIDs, dates): no
        output of a de-identifying tool may contain any of them.
    """

    root: Path
    series: tuple[dict, ...]
    duplicated: tuple[tuple[str, str], ...]
    unreadable: tuple[str, ...]
    skipped: tuple[str, ...]
    identifiers: tuple[str, ...]

    @property
    def n_files(self) -> int:
        """Every file written, images and others."""
        return sum(s["files"] for s in self.series) + len(self.unreadable) + len(self.skipped)


def _as_mr(path: Path, *, number: int, description: str) -> None:
    """Rewrite a generated CT slice as an MR slice (stored values, no rescale)."""
    import pydicom
    from pydicom.uid import MRImageStorage

    ds = pydicom.dcmread(path)
    ds.Modality, ds.SOPClassUID = "MR", MRImageStorage
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "KVP"):
        delattr(ds, keyword)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SeriesNumber, ds.SeriesDescription = number, description
    ds.MagneticFieldStrength, ds.RepetitionTime, ds.EchoTime = "3", "2000", "30"
    ds.WindowCenter, ds.WindowWidth = "1100", "900"
    ds.save_as(path, enforce_file_format=True)


def _write_dicomdir(path: Path, *, seed: int) -> None:
    """A small DICOMDIR (an index, no image) with one patient record."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(seed), "dicomdir"])
    ds.FileSetID = "MESSY"
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    record = pydicom.Dataset()
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = 0xFFFF
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = "PATIENT"
    record.PatientName, record.PatientID = "Phantom^Generated", "GEN-0001"
    ds.DirectoryRecordSequence = [record]
    ds.save_as(path, enforce_file_format=True)


def write_messy_collection(
    root, *, files_per_series: int = 8, size: int = 32, seed: int = 0
) -> GeneratedCollection:
    """Write a small collection of DICOM series the way archives hand them out: messy.

    Built on :func:`write_ct_series` (see :data:`MESSY_SERIES`): two regular axial CT series
    of different spacing and matrix, a sagittal and a coronal MR series, a CT series with a
    gap and one with a gantry tilt, and a copy of the first CT series under another folder
    (the same images twice). Beside them ``misc/readme.txt`` (not DICOM),
    ``misc/truncated.dcm`` (a CT slice cut off in its pixel data, as an interrupted copy leaves
    it) and a ``DICOMDIR`` (an index, no image). Every file carries made-up patient and
    study identifiers (:attr:`GeneratedCollection.identifiers`). The same arguments write the
    same bytes.

    Parameters
    ----------
    root : str or pathlib.Path
        The folder to write into (created; it should be empty).
    files_per_series : int, keyword-only
        Image files of each series (the gap series has one fewer), >= 4. About
        ``7 * files_per_series + 3`` files in all.
    size : int, keyword-only
        The smaller matrices' side in pixels, >= 8.
    seed : int, keyword-only
        Seed of the phantoms' noise and the UIDs.

    Returns
    -------
    GeneratedCollection
        What was written and what an audit must find.

    Examples
    --------
    >>> import tempfile
    >>> from m1vision.synthetic import write_messy_collection
    >>> gen = write_messy_collection(tempfile.mkdtemp(), files_per_series=4, size=16)
    >>> len(gen.series), gen.n_files, gen.unreadable
    (7, 31, ('misc/readme.txt', 'misc/truncated.dcm'))
    """
    import shutil

    import pydicom

    n = check_int(files_per_series, name="files_per_series", minimum=4)
    size = check_int(size, name="size", minimum=8)
    seed = check_int(seed, name="seed", minimum=0)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    plans = {
        "ct/chest": {"shape": (n, size, size), "spacing": (2.5, 0.8, 0.8)},
        "ct/head_thin": {
            "shape": (n, size + size // 2, size + size // 2),
            "spacing": (1.0, 0.5, 0.5),
        },
        "mr/knee_sag": {"shape": (size, size, n), "spacing": (0.6, 0.6, 3.0)},
        "mr/brain_cor": {"shape": (size // 2 + 4, n, size), "spacing": (1.2, 4.0, 0.9)},
        "ct/gap": {"shape": (n + 1, size, size), "spacing": (3.0, 0.7, 0.7)},
        "ct/tilted": {"shape": (n, size, size), "spacing": (2.0, 0.8, 0.8)},
    }
    series = []
    for k, (folder, modality, variant, what) in enumerate(MESSY_SERIES):
        target = root / folder
        if variant == "copy":
            source = next(s for s in series if s["folder"] == "ct/chest")
            shutil.copytree(root / source["folder"], target)
            files = sorted(target.iterdir())
        else:
            gen = write_ct_series(target, variant=variant, seed=seed * 100 + k, **plans[folder])
            files = list(gen.files)
            if modality == "MR":
                for f in files:
                    _as_mr(f, number=10 + k, description=what)
        series.append(
            {
                "folder": folder,
                "modality": modality,
                "variant": variant,
                "files": len(files),
                "regular": variant in ("regular", "sagittal", "coronal", "copy"),
            }
        )
    misc = root / "misc"
    misc.mkdir(exist_ok=True)
    (misc / "readme.txt").write_text("Exported from the archive; see the ticket for details.\n")
    whole = (root / "ct/chest/IM0001.dcm").read_bytes()
    (misc / "truncated.dcm").write_bytes(whole[: len(whole) - (size * size)])
    _write_dicomdir(root / "DICOMDIR", seed=seed)
    identifiers = {"Phantom^Generated", "GEN-0001", "20260101"}
    for s in series:
        for f in sorted((root / s["folder"]).iterdir()):
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            identifiers |= {ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID}
    return GeneratedCollection(
        root=root,
        series=tuple(series),
        duplicated=(("ct/chest", "copy/ct_chest"),),
        unreadable=("misc/readme.txt", "misc/truncated.dcm"),
        skipped=("DICOMDIR",),
        identifiers=tuple(sorted(identifiers)),
    )
