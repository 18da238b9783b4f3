"""Resampling and reorienting volumes (internal; public through :mod:`m1vision.volume`).

Both keep the world: a voxel's RAS+ position is read off ``metadata["affine"]``, and the
result's affine says where its voxels are. :func:`resample` interpolates onto a new grid
(a spacing, or another image's grid); :func:`reorient` only permutes and flips axes (no
interpolation, exact and invertible).
"""

from __future__ import annotations

import numpy as np

from m1vision import geometry
from m1vision._checks import check_output_memory, check_reorient, check_resample
from m1vision.errors import InvalidImageError, InvalidParameterError, InvalidTypeError
from m1vision.io import MedicalImage

_ORDER = {"nearest": 0, "linear": 1, "bspline": 3}

#: Bytes of output per call of scipy: the output is filled in slabs of slices this large.
_SLAB_BYTES = 16 << 20


def _geometry(image, name: str):
    """(MedicalImage, pixels, affine (4, 4) float64) of a 3-D volume, or InvalidImageError."""
    if isinstance(image, np.ndarray):
        image = MedicalImage(image, metadata={"layout": "volume"})
    if not isinstance(image, MedicalImage):
        raise InvalidTypeError(
            f"{name} must be a MedicalImage volume or a (Z, H, W) numpy.ndarray, got "
            f"{type(image).__name__}. Fix: read a volume with m1vision.io.read_any, or wrap "
            "an array as MedicalImage(pixels, spacing=...)."
        )
    if image.ndim != 3 or image.metadata.get("layout") in ("color", "color-volume"):
        raise InvalidImageError(
            f"{name} must be a (Z, H, W) volume, got shape {image.shape} (layout "
            f"{image.metadata.get('layout')!r}); resample and reorient work on volumes: read "
            "one with m1vision.io.read_nifti or read_series."
        )
    pixels, _, affine = geometry.volume_geometry(image)
    return image, pixels, affine


def _result(image: MedicalImage, pixels, affine, extra: dict) -> MedicalImage:
    spacing = tuple(float(f"{v:.10g}") for v in np.linalg.norm(affine[:3, :3], axis=0))
    meta = {**image.metadata, "affine": affine.tolist(), "layout": "volume", **extra}
    if "labels" in image.metadata:
        from m1vision.labels._core import label_info

        meta["labels"] = label_info(pixels, image.metadata["labels"], strict=False)
    window = image.window
    return MedicalImage(pixels, spacing, window, image.modality, meta, image.source)


def _outside(matrix, z0: int, slab_shape, src_shape) -> np.ndarray:
    """Output voxels of a slab whose position lies outside the input's voxels (bool mask).

    A voxel covers half a voxel around its centre, so the input spans the continuous index
    range [-0.5, n - 0.5) on each axis (ITK's rule); inside it, interpolation near the edge
    uses the edge voxels. Along each output row the position is linear in the column, so the
    inside part of every row is one interval, found without a coordinate array.
    """
    nz, nr, nc = slab_shape
    zz, rr = np.meshgrid(np.arange(z0, z0 + nz), np.arange(nr), indexing="ij")
    lo = np.zeros((nz, nr))
    hi = np.full((nz, nr), float(nc - 1))
    empty = np.zeros((nz, nr), bool)
    eps = 1e-9
    for axis in range(3):
        start = matrix[axis, 3] + matrix[axis, 0] * zz + matrix[axis, 1] * rr
        d = matrix[axis, 2]
        a, b = -0.5 - eps, src_shape[axis] - 0.5 - eps
        if abs(d) < 1e-12:
            empty |= (start < a) | (start >= b)
            continue
        ta, tb = (a - start) / d, (b - start) / d  # s >= a (inclusive), s < b (strict)
        if d > 0:
            first, last = np.ceil(ta), np.ceil(tb) - 1
        else:
            first, last = np.floor(tb) + 1, np.floor(ta)
        lo = np.maximum(lo, first)
        hi = np.minimum(hi, last)
    cols = np.arange(nc)
    return empty[..., None] | (cols < lo[..., None]) | (cols > hi[..., None])


def target_grid(image, *, spacing=None, like=None):
    """(shape, affine) of the grid :func:`resample` resamples ``image`` onto."""
    _, pixels, affine = _geometry(image, "image")
    if (spacing is None) == (like is None):
        raise InvalidParameterError(
            "resample needs exactly one of spacing= (a new voxel size, (z, row, col) mm) or "
            f"like= (an image whose grid to take); got spacing={spacing!r} and "
            f"like={'an image' if like is not None else None}."
        )
    if like is not None:
        _, like_pixels, like_affine = _geometry(like, "like")
        return tuple(like_pixels.shape), like_affine
    old = np.linalg.norm(affine[:3, :3], axis=0)
    new = np.asarray(check_resample(spacing=spacing)["spacing"], float)
    shape = tuple(max(1, round(n * o / s)) for n, o, s in zip(pixels.shape, old, new, strict=True))
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] / old * new  # same directions, same first voxel centre
    return shape, out


def resample(image, *, spacing=None, like=None, interpolation: str = "linear", fill=None):
    """Resample a volume (or label map) to a new voxel size or onto another image's grid.

    Every output voxel takes the value interpolated at its world (RAS+ mm) position in the
    input (``scipy.ndimage.affine_transform`` with the map between the two grids), so the
    result lies where the input lies, on any orientation, oblique or anisotropic.

    Parameters
    ----------
    image : MedicalImage or numpy.ndarray
        A (Z, H, W) volume or label map (an ndarray: 1 mm voxels in the package's layout).
        Not modified.
    spacing : float or (z, row, col) mm, keyword-only
        The new voxel size; the axes keep their directions, the first voxel's centre stays
        where it is and the field of view is kept (``round(n * old / new)`` voxels per axis).
        Every value must be > 0.
    like : MedicalImage, keyword-only
        Take this image's grid (shape and affine) instead. Exactly one of ``spacing`` and
        ``like``.
    interpolation : {"linear", "nearest", "bspline"}, keyword-only
        "nearest" keeps values exactly (use it for label maps: it is required for images with
        ``metadata["labels"]``); "linear" is trilinear, "bspline" cubic B-spline.
    fill : float, optional, keyword-only
        The value of output voxels outside the input: by default 0 for label maps and
        integer images, the input's minimum otherwise (air in CT).

    Returns
    -------
    MedicalImage
        ``pixels``: the input's dtype for "nearest", float32 otherwise; ``spacing`` and
        ``metadata["affine"]`` of the new grid; the rest of the metadata kept (label entries
        of values that no longer occur dropped) plus ``metadata["resampled"]``.

    Raises
    ------
    InvalidParameterError
        Neither or both of ``spacing``/``like``; a spacing <= 0; an unknown interpolation;
        a label map with an interpolation other than "nearest".
    InvalidImageError
        Not a (Z, H, W) volume.
    MemoryBudgetError
        The output would take more than 80 % of this machine's memory (checked before
        anything is allocated).

    Notes
    -----
    Memory: the input, the output and, for "bspline", one float64 copy of the input (its
    spline coefficients); no coordinate arrays.

    Examples
    --------
    >>> from m1vision.synthetic import ct_phantom_labels
    >>> from m1vision.volume import resample
    >>> labels = ct_phantom_labels((8, 32, 32), spacing=(3.0, 1.0, 1.0))
    >>> fine = resample(labels, spacing=1.5, interpolation="nearest")
    >>> fine.shape, fine.spacing, fine.pixels.dtype.name
    ((16, 21, 21), (1.5, 1.5, 1.5), 'uint8')
    >>> back = resample(fine, like=labels, interpolation="nearest")
    >>> back.shape == labels.shape
    True
    """
    from scipy import ndimage

    checked = check_resample(spacing=spacing, interpolation=interpolation)
    src, pixels, affine = _geometry(image, "image")
    is_labels = "labels" in src.metadata
    if is_labels and checked["interpolation"] != "nearest":
        raise InvalidParameterError(
            f"interpolation={interpolation!r} would blend label values into values that are "
            "no label (1 and 3 give 2 halfway); a label map is resampled with "
            'interpolation="nearest".'
        )
    shape, new_affine = target_grid(src, spacing=spacing, like=like)
    check_output_memory(
        shape,
        pixels.dtype if checked["interpolation"] == "nearest" else np.float32,
        what=f"resample of a volume of shape {tuple(pixels.shape)}",
        fix="ask for larger voxels (a coarser spacing=) or a smaller like= grid, or crop the "
        "volume first",
    )
    order = _ORDER[checked["interpolation"]]
    if fill is None:
        fill = 0.0 if is_labels or pixels.dtype.kind in "iub" else float(pixels.min())
    matrix = np.linalg.solve(affine, new_affine)  # output index -> input index
    matrix = np.round(matrix, 9)  # exact halves stay halves: ties round the same way always
    if order == 0:
        data, out_dtype = pixels, pixels.dtype
        if data.dtype == np.bool_:
            data = data.astype(np.uint8)
    else:
        data, out_dtype = pixels.astype(np.float32, copy=False), np.float32
    if order == 3:
        data = ndimage.spline_filter(data, order=3, output=np.float64, mode="mirror")
    out = np.empty(shape, np.uint8 if out_dtype == np.bool_ else out_dtype)
    # output slabs of ~16 MB keep each call's temporaries small on large volumes
    per_slice = max(1, int(np.prod(shape[1:])) * out.itemsize)
    step = max(1, _SLAB_BYTES // per_slice)
    mode = "mirror" if order == 3 else "nearest"
    for z0 in range(0, shape[0], step):
        z1 = min(shape[0], z0 + step)
        offset = matrix[:3, 3] + matrix[:3, 0] * z0
        slab = out[z0:z1]
        ndimage.affine_transform(
            data,
            matrix[:3, :3],
            offset=offset,
            output_shape=slab.shape,
            output=slab,
            order=order,
            mode=mode,
            prefilter=False,
        )
        slab[_outside(matrix, z0, slab.shape, pixels.shape)] = fill
    if out_dtype == np.bool_:
        out = out.astype(np.bool_)
    record = {
        "resampled": {
            "interpolation": checked["interpolation"],
            "from_shape": [int(n) for n in pixels.shape],
            "from_affine": affine.tolist(),
        }
    }
    return _result(src, out, new_affine, record)


def reorient(image, orientation: str = "SPL"):
    """Permute and flip a volume's axes so they point as ``orientation`` says; no interpolation.

    ``orientation`` gives, for the output's axes 0, 1, 2, the anatomical direction each
    points to: "RAS" (nibabel's canonical order: ``pixels[x, y, z]``), "LPS" (ITK/DICOM's),
    "SPL" (the package's own layout, which every reader returns)... Each voxel keeps its world
    position: the affine is updated with the array. ``reorient(reorient(img, "RAS"),
    axcodes_of_img)`` gives ``img`` back exactly.

    Parameters
    ----------
    image : MedicalImage or numpy.ndarray
        A (Z, H, W) volume or label map. Not modified.
    orientation : str
        Three letters, one each of R/L, A/P, S/I.

    Returns
    -------
    MedicalImage
        Pixels permuted and flipped (a contiguous copy), ``spacing`` permuted, new
        ``metadata["affine"]`` and ``metadata["orientation_codes"]``.

    Examples
    --------
    >>> from m1vision.synthetic import ct_phantom_labels
    >>> from m1vision.volume import reorient
    >>> labels = ct_phantom_labels((8, 32, 48), spacing=(3.0, 1.0, 0.5))
    >>> ras = reorient(labels, "RAS")
    >>> ras.shape, ras.spacing, ras.metadata["orientation_codes"]
    ((48, 32, 8), (0.5, 1.0, 3.0), 'RAS')
    """
    codes = check_reorient(orientation=orientation)["orientation"]
    src, pixels, affine = _geometry(image, "image")
    order, flips, new_affine = geometry.reorient_transform(affine, codes, pixels.shape)
    out = pixels.transpose(order)
    if flips:
        out = np.flip(out, axis=flips)
    out = np.ascontiguousarray(out)
    return _result(src, out, new_affine, {"orientation_codes": codes})


def orientation_of(image) -> str:
    """The orientation codes of a volume's axes (e.g. "SPL" for the package's layout).

    Parameters
    ----------
    image : MedicalImage or numpy.ndarray
        A (Z, H, W) volume (an ndarray: the package's layout, 1 mm voxels).

    Returns
    -------
    str
        Three letters: where the axes 0, 1 and 2 point (one each of R/L, A/P, S/I).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.volume import orientation_of, reorient
    >>> orientation_of(np.zeros((2, 3, 4), np.float32))
    'SPL'
    >>> orientation_of(reorient(np.zeros((2, 3, 4), np.float32), "RAS"))
    'RAS'
    """
    _, _, affine = _geometry(image, "image")
    return "".join(geometry.axcodes(affine))
