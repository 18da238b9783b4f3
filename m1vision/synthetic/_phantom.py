"""The CT phantom: one organ description painted as HU values and as a label map."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_int
from m1vision.errors import InvalidParameterError


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
