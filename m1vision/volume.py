"""Apply 2-D image functions and pipelines to volumes, slice by slice, keeping the geometry.

A volume is a :class:`~m1vision.io.MedicalImage` laid out as :func:`m1vision.io.read_nifti`
and :func:`m1vision.io.read_series` give it: ``pixels`` (Z, H, W), ``spacing`` (z, row, col)
and ``metadata["affine"]``. :func:`apply_volume` runs any 2-D callable (a
:class:`~m1vision.pipeline.Pipeline`, a preprocess function, a lambda) on every slice along one
axis, in parallel threads (OpenCV and NumPy release the GIL), and returns a volume with the
same shape, spacing and affine, which :func:`m1vision.io.write_nifti` writes aligned with the
source. :func:`resample` brings a volume (or a label map) to a new voxel size or onto another
image's grid, :func:`reorient` permutes and flips its axes to an orientation ("RAS", "LPS"...);
both keep every voxel's world position (pipeline steps: ``Resample``, ``Reorient``).

Examples
--------
>>> import numpy as np
>>> from m1vision.io import MedicalImage
>>> from m1vision.volume import apply_volume
>>> vol = MedicalImage(np.arange(24, dtype=np.float32).reshape(2, 3, 4), spacing=(2.0, 1.0, 1.0),
...                    metadata={"layout": "volume", "affine": np.eye(4).tolist()})
>>> out = apply_volume(lambda s: s * 2, vol)
>>> out.pixels[1, 0].tolist(), out.spacing, out.metadata["affine"] == vol.metadata["affine"]
([24.0, 26.0, 28.0, 30.0], (2.0, 1.0, 1.0), True)
"""

from __future__ import annotations

import functools
import heapq
import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np

from m1vision._checks import check_axis, check_volume, check_workers
from m1vision._progress import track
from m1vision._resample import orientation_of, reorient, resample
from m1vision.errors import InvalidImageError, InvalidTypeError, VolumeSliceError
from m1vision.io import MedicalImage

__all__ = [
    "apply_volume",
    "as_volume",
    "orientation_of",
    "reorient",
    "resample",
    "volume_slices",
]


def as_volume(image, *, name: str = "image") -> MedicalImage:
    """Return ``image`` as a monochrome (Z, H, W) MedicalImage, or raise InvalidImageError.

    An ndarray becomes a MedicalImage without spacing or affine. Not copied.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.volume import as_volume
    >>> as_volume(np.zeros((3, 4, 5), np.float32)).is_volume
    True
    """
    if isinstance(image, MedicalImage):
        pixels = image.pixels
    elif isinstance(image, np.ndarray):
        pixels = image
    else:
        raise InvalidTypeError(
            f"{name} must be a MedicalImage volume or a (Z, H, W) numpy.ndarray, got "
            f"{type(image).__name__}. Fix: read a volume with m1vision.io.read_any, or wrap "
            "an array as MedicalImage(pixels, spacing=...)."
        )
    layout = image.metadata.get("layout") if isinstance(image, MedicalImage) else "volume"
    if layout in ("color", "color-volume"):
        raise InvalidImageError(
            f"{name} must be a monochrome (Z, H, W) volume, got a color image of shape "
            f"{pixels.shape} (layout {layout!r}); convert it with m1vision.preprocess.to_gray "
            "first, or call the function on each 2-D image."
        )
    check_volume(pixels, name=name)
    if isinstance(image, MedicalImage):
        if layout == "volume":
            return image
        meta = {**image.metadata, "layout": "volume"}
        return MedicalImage(pixels, image.spacing, image.window, image.modality, meta, image.source)
    return MedicalImage(pixels, metadata={"layout": "volume"})


def volume_slices(
    image, *, axis: int = 0, name: str = "image", hint: str | None = None
) -> list[np.ndarray]:
    """The 2-D slices of a (Z, H, W) volume along ``axis``, as views (not copies).

    The one way m1vision slices a volume: :func:`apply_volume`,
    :meth:`m1vision.inference.Predictor.predict_volume` and
    :func:`m1vision.explain.grad_cam_volume` go through it.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.volume import volume_slices
    >>> [s.shape for s in volume_slices(np.zeros((2, 3, 4), np.float32), axis=2)]
    [(2, 3), (2, 3), (2, 3), (2, 3)]
    """
    pixels = check_volume(image, name=name, hint=hint)
    return list(np.moveaxis(pixels, check_axis(axis), 0))


def _describe(func) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    return f"{name} ({len(func)} steps)" if hasattr(func, "steps") else name


def _apply_slice(func, axis: int, n: int, slice_shape: tuple, k: int, plane: np.ndarray):
    """Run ``func`` on slice ``k`` (module level, so process pools can pickle it)."""
    try:
        out = func(plane)
    except Exception as exc:
        raise VolumeSliceError(
            f"{_describe(func)} failed on slice {k} of {n} along axis {axis} (slice shape "
            f"{plane.shape}, dtype {plane.dtype}): {type(exc).__name__}: {exc}"
        ) from exc
    out = np.asarray(out)
    if out.shape != slice_shape:
        raise InvalidImageError(
            f"{_describe(func)} turned slice {k} (axis {axis}) of shape {slice_shape} into "
            f"shape {out.shape}; apply_volume needs the slice size kept so the spacing and "
            "affine still hold: drop resizing or color steps from the function."
        )
    return out


def apply_volume(
    func: Callable[[np.ndarray], np.ndarray],
    image,
    *,
    axis: int = 0,
    workers: int | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> MedicalImage:
    """Apply a 2-D function (or pipeline) to every slice of a volume, keeping its geometry.

    Parameters
    ----------
    func : callable
        Takes one 2-D slice (a copy, so it may change it) and returns a 2-D array of the same
        height and width: a :class:`~m1vision.pipeline.Pipeline`, ``m1vision.preprocess.canny``
        with bound options, any function.
    image : MedicalImage or numpy.ndarray
        A (Z, H, W) volume. Not modified.
    axis : {0, 1, 2}, keyword-only
        The axis to slice along: 0 axial slices (Z of them, each (H, W)), 1 coronal, 2 sagittal.
    workers : int or None, keyword-only
        Threads; ``None``: the CPU count, at most 8. 1 runs in the calling thread.
    executor : concurrent.futures.Executor, optional, keyword-only
        Run the slices on this executor instead (``workers`` is then ignored). A process pool
        needs a picklable ``func`` (pipelines are).
    progress : bool, keyword-only
        Show a tqdm bar.

    Returns
    -------
    MedicalImage
        ``pixels``: the results stacked back along ``axis`` (the dtype the function returns,
        e.g. uint8 for edges); ``spacing``, ``modality``, ``source`` and ``metadata`` (affine
        included) of the input, plus ``metadata["applied"]`` naming the function and axis;
        ``window`` kept only if the dtype is unchanged.

    Raises
    ------
    InvalidImageError
        ``image`` is no (Z, H, W) volume; a slice result is not 2-D, changes the slice size, or
        differs in dtype from the others (the geometry would no longer hold).
    InvalidParameterError
        ``axis`` or ``workers`` out of range.
    VolumeSliceError
        ``func`` raised on a slice: the message names the slice and axis; the original
        exception is its ``__cause__``.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.pipeline import Pipeline, ToUint8, Canny
    >>> from m1vision.synthetic import ct_phantom
    >>> from m1vision.volume import apply_volume
    >>> vol = ct_phantom((4, 64, 64))
    >>> edges = apply_volume(Pipeline([ToUint8(), Canny(low=50, high=150)]), vol)
    >>> edges.shape, edges.pixels.dtype.name, int(edges.pixels.max())
    ((4, 64, 64), 'uint8', 255)
    """
    if not callable(func):
        raise InvalidTypeError(
            f"func must be callable (a Pipeline or a function of one 2-D array), got "
            f"{type(func).__name__}; the volume comes second. Fix: pass "
            "apply_volume(func, volume), e.g. apply_volume(m1vision.preprocess.clahe, ct)."
        )
    vol = as_volume(image)
    axis = check_axis(axis)
    workers = check_workers(workers)
    pixels = vol.pixels
    n = pixels.shape[axis]
    slice_shape = tuple(s for i, s in enumerate(pixels.shape) if i != axis)

    one = functools.partial(_apply_slice, func, axis, n, slice_shape)
    planes = (s.copy() for s in volume_slices(pixels, axis=axis))

    indices = range(n)
    if executor is not None:
        results = executor.map(one, indices, planes)
    elif workers == 1 or n == 1:
        results = map(one, indices, planes)
    else:
        pool = ThreadPoolExecutor(workers)
        results = pool.map(one, indices, planes)
    try:
        outs = list(track(results, n, show=progress, desc="slices", unit="slice"))
    finally:
        if executor is None and workers > 1 and n > 1:
            pool.shutdown(cancel_futures=True)
    dtypes = {o.dtype for o in outs}
    if len(dtypes) > 1:
        raise InvalidImageError(
            f"{_describe(func)} returned slices of several dtypes ({sorted(map(str, dtypes))}); "
            "end the function with a step of one output dtype (e.g. ToUint8)."
        )
    stacked = np.stack(outs, axis=axis)
    meta = {
        **vol.metadata,
        "applied": {"function": _describe(func), "axis": axis, "slices": n},
    }
    same = stacked.dtype == pixels.dtype
    return MedicalImage(
        pixels=stacked,
        spacing=vol.spacing,
        window=vol.window if same else None,
        modality=vol.modality,
        metadata=meta,
        source=vol.source,
    )


# ---------------------------------------------------------------------------------------------
# volume inputs of the batch engine (Pipeline.run): one volume in, one .nii.gz out
# ---------------------------------------------------------------------------------------------


def _nifti_volume_file(path) -> bool:
    """A .nii/.nii.gz file whose header says 3-D with more than one slice (a few bytes read)."""
    import gzip
    import zlib

    from m1vision.io._sniff import nifti_dims

    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return False
    try:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            head = fh.read(540)
    except (OSError, EOFError, zlib.error):
        return False  # the image kind reads it and reports what is wrong
    fields = nifti_dims(head)
    return fields is not None and fields[0][0] >= 3 and fields[0][3] > 1


def _dicom_header(path, tags):
    """The listed elements of a DICOM file found by its DICM marker, or None."""
    from m1vision.io._sniff import DICOM_HEAD, has_dicm_marker

    try:
        with open(path, "rb") as fh:
            if not has_dicm_marker(fh.read(DICOM_HEAD)):
                return None
            import pydicom

            fh.seek(0)
            return pydicom.dcmread(fh, stop_before_pixels=True, specific_tags=tags)
    except Exception:  # not readable here: the image kind reads it and reports what is wrong
        return None


def _multiframe_dicom_file(path) -> bool:
    """A monochrome multi-frame DICOM file (NumberOfFrames > 1)."""
    ds = _dicom_header(path, ["NumberOfFrames", "SamplesPerPixel"])
    if ds is None:
        return False
    try:
        return int(ds.get("NumberOfFrames") or 1) > 1 and int(ds.get("SamplesPerPixel") or 1) == 1
    except (TypeError, ValueError):
        return False


# The order of pathlib's paths in one folder: by name, ignoring case where the OS does.
_NAME_ORDER = None if os.path.normcase("A") == "A" else os.path.normcase


def _series_folder(folder) -> bool:
    """A folder holding single-slice DICOM files of one series (its first two DICOM files)."""
    found = []
    try:  # names, not paths: a folder of thousands of images is asked about on every run
        names = os.listdir(folder)
        names = heapq.nsmallest(16, (n for n in names if n[0] != "."), key=_NAME_ORDER)
    except OSError:
        return False
    for name in names:
        p = os.path.join(folder, name)
        if not os.path.isfile(p):
            continue
        ds = _dicom_header(p, ["SeriesInstanceUID", "NumberOfFrames", "ImagePositionPatient"])
        if ds is not None:
            found.append(ds)
        if len(found) == 2:
            break
    if len(found) < 2:
        return False
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in found}
    return (
        len(uids) == 1
        and "" not in uids
        and all("ImagePositionPatient" in ds for ds in found)
        and all(int(ds.get("NumberOfFrames") or 1) == 1 for ds in found)
    )


def _read_volume(path) -> MedicalImage:
    from m1vision.io import read_any

    vol = read_any(path)
    as_volume(vol, name=str(path))  # a clear error for what is no volume
    return vol


def _apply(function, volume, src: str) -> MedicalImage:
    del src
    return apply_volume(function, volume)


def _write(path, result, source) -> None:
    from m1vision.io import write_nifti

    del source  # the result carries the source's affine already
    write_nifti(path, result, overwrite=True)


_VOLUME_KINDS: list = []


def volume_input_kinds() -> tuple:
    """The input kinds of a volume run, in the order they are tried: a DICOM series folder,
    a 3-D NIfTI file, a monochrome multi-frame DICOM file; each is one input and one
    ``.nii.gz`` output. :meth:`m1vision.pipeline.Pipeline.run` declares them (nothing is
    registered by importing this module).

    Examples
    --------
    >>> from m1vision.volume import volume_input_kinds
    >>> [kind.name for kind in volume_input_kinds()]
    ['dicom_series', 'nifti_volume', 'dicom_multiframe']
    """
    if not _VOLUME_KINDS:
        from m1vision.batch import InputKind

        common = {"apply": _apply, "write": _write, "output_suffix": ".nii.gz"}
        _VOLUME_KINDS[:] = [
            InputKind(
                name="dicom_series",
                folder=True,
                matches=_series_folder,
                read=_read_volume,
                output_stem=_folder_stem,
                **common,
            ),
            InputKind(name="nifti_volume", matches=_nifti_volume_file, read=_read_volume, **common),
            InputKind(
                name="dicom_multiframe", matches=_multiframe_dicom_file, read=_read_volume, **common
            ),
        ]
    return tuple(_VOLUME_KINDS)


def _folder_stem(key: str) -> str:
    return key
