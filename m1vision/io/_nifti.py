"""NIfTI reading and writing (internal)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from m1vision._checks import check_path
from m1vision.errors import ImageReadError, InvalidParameterError, InvalidTypeError
from m1vision.geometry import canonical_to_layout, check_affine, default_affine
from m1vision.io._core import MedicalImage, _check_file, _read_bytes
from m1vision.io._sniff import (
    GZIP_MAGIC,
    _gunzip_head,
    _nifti_kind,
    nifti_dims,
    nifti_pair_header,
)

#: Deflate's largest compression ratio (a run of equal bytes): a .nii.gz cannot unpack to
#: more than this many times its own size.
_MAX_DEFLATE_RATIO = 1032


def _declared_problem(p: Path, img, head: bytes) -> str | None:
    """Why the header's image cannot be in the file (an empty axis, more voxels than the
    bytes can hold, a zero voxel size, a singular affine), checked before the data are read;
    None if fine. ``head`` holds the header as stored (nibabel fixes zero voxel sizes)."""
    header = img.header
    dims, pixdim = nifti_dims(head)
    spatial = [float(v) for v in pixdim[1 : 1 + min(3, max(dims[0], 1))]]
    if not all(np.isfinite(spatial)) or 0.0 in spatial:
        return (
            f"the header's voxel sizes (pixdim) are {tuple(spatial)}: a zero or non-finite "
            "size gives no spacing, and nibabel would silently make it 1 mm. Fix: write the "
            "right voxel sizes and voxel-to-world matrix A into the file with nibabel: img = "
            "nibabel.load(path); img.header.set_zooms(sizes); img.set_sform(A, code=1); "
            "img.set_qform(A, code=1); nibabel.save(img, 'fixed.nii.gz')"
        )
    shape = tuple(int(n) for n in header.get_data_shape())
    if not shape or 0 in shape:
        return (
            f"the header declares the shape {shape}, which has a zero-length axis: the file "
            "holds no voxels. Fix: write the image again from its source; an empty mask or "
            "crop needs at least one voxel on every axis"
        )
    need = int(np.prod(shape, dtype=np.int64)) * header.get_data_dtype().itemsize
    offset = int(header.get_data_offset())
    size = p.stat().st_size
    compressed = p.name.lower().endswith(".gz") or _read_bytes(p, 2) == GZIP_MAGIC
    room = size * _MAX_DEFLATE_RATIO if compressed else size - offset
    if need > room:
        what = (
            f"a {size:,}-byte gzip file unpacks to at most {room:,} bytes"
            if compressed
            else f"the file holds {max(room, 0):,} bytes of data after its {offset}-byte header"
        )
        return (
            f"the header declares the shape {shape} of {header.get_data_dtype()} = {need:,} "
            f"bytes, but {what}: the file is truncated or its header is wrong. Fix: copy or "
            "write the file again from its source"
        )
    try:
        check_affine(img.affine)
        problem = None
    except InvalidParameterError:
        a = np.asarray(img.affine, dtype=np.float64)
        problem = (
            "it is not a finite 4x4 matrix"
            if not np.isfinite(a).all()
            else f"its 3x3 part is singular (determinant {np.linalg.det(a[:3, :3]):.3g}): a "
            "voxel axis has no direction or length"
        )
    if problem:
        sform, qform = int(header["sform_code"]), int(header["qform_code"])
        used = (
            f"sform (sform_code {sform})"
            if sform > 0
            else f"qform (qform_code {qform})"
            if qform > 0
            else "voxel sizes (pixdim; sform_code and qform_code are 0)"
        )
        return (
            f"its geometry, the {used}, cannot place voxels in space: {problem} "
            f"(zooms {tuple(float(z) for z in header.get_zooms()[:3])}). Fix: write the "
            "right voxel-to-world matrix A into the file with nibabel: img = nibabel.load(path); "
            "img.set_sform(A, code=1); img.set_qform(A, code=1); nibabel.save(img, 'fixed.nii.gz')"
        )
    return None


def read_nifti(path, *, frame: int | None = None) -> MedicalImage:
    """Read a NIfTI-1/2 volume (``.nii`` or ``.nii.gz``) as float32 (Z, H, W) in DICOM layout.

    The image is first reoriented to the closest canonical orientation
    (``nibabel.as_closest_canonical``: array axes point to patient Right, Anterior, Superior),
    then laid out like a stack of DICOM axial images:

    * ``pixels[z]`` is an axial slice, ``z`` running from inferior to superior;
    * rows run from anterior (top) to posterior, columns from the patient's right (left
      edge of the image) to the patient's left: the radiological view of a CT slice.

    That is ``pixels = data_ras.transpose(2, 1, 0)[:, ::-1, ::-1]``.
    ``metadata["affine"]`` maps the output index ``(z, row, col, 1)`` to RAS+ millimetres, and
    ``metadata["original_orientation"]`` gives the file's own axis codes (e.g. "LAS").

    Parameters
    ----------
    path : str or pathlib.Path
        A NIfTI-1 or NIfTI-2 file, gzip-compressed or not. The name need not end in .nii.
    frame : int, optional, keyword-only
        For a 4-D (time series) file, the index of the volume to read. Required for 4-D.

    Returns
    -------
    MedicalImage
        ``pixels``: float32 (Z, H, W) with the header's scaling (``scl_slope``/``scl_inter``)
        applied. ``spacing``: (z, row, col) mm from the header zooms. ``window``: from
        ``cal_min``/``cal_max`` when set, else None. ``modality``: None.

    Raises
    ------
    ImageReadError
        Not a NIfTI file, unreadable or truncated data, a 4-D file without ``frame``, ``frame``
        out of range, or more than 4 dimensions; checked from the header before the data are
        read: a zero-length axis, more voxels than the file's bytes can hold, a singular or
        non-finite sform/qform (the one nibabel would use).

    Examples
    --------
    >>> import os, nibabel
    >>> from m1vision.io import read_nifti
    >>> path = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "anatomical.nii")
    >>> vol = read_nifti(path)
    >>> vol.pixels.shape, vol.pixels.dtype, vol.spacing
    ((25, 41, 33), dtype('float32'), (2.0, 2.0, 2.0))
    >>> vol.metadata["original_orientation"]  # stored L-A-S; pixels are laid out as above
    'LAS'
    """
    import nibabel as nib

    p = _check_file(path)
    head = _read_bytes(p, 540)
    if head.startswith(GZIP_MAGIC):
        head = _gunzip_head(p, 540)
    kind = _nifti_kind(head)
    if kind is None:
        raise ImageReadError(
            p,
            "not a NIfTI file: no NIfTI-1 (348-byte) or NIfTI-2 (540-byte) header at the "
            "start; use read_any for other formats.",
        )
    if nifti_pair_header(head):
        raise ImageReadError(
            p,
            "a NIfTI header of a .hdr/.img pair; read the pair by its .hdr with nibabel, "
            "or convert it to a single .nii file.",
        )
    try:
        name = p.name.lower()
        if name.endswith((".nii", ".nii.gz")):
            img = nib.load(p)
        else:  # content says NIfTI, the name does not: decode from bytes
            data = _read_bytes(p)
            if data.startswith(GZIP_MAGIC):
                data = gzip.decompress(data)
            cls = nib.Nifti1Image if kind == "nifti1" else nib.Nifti2Image
            img = cls.from_bytes(data)
        problem = _declared_problem(p, img, head)
        if problem:
            raise ImageReadError(p, problem)
        ndim = len(img.shape)
        if ndim > 4:
            raise ImageReadError(
                p, f"a {ndim}-D NIfTI of shape {img.shape}; only 2-D, 3-D and 4-D are supported."
            )
        if ndim == 4 and img.shape[3] > 1 and frame is None:
            raise ImageReadError(
                p,
                f"a 4-D NIfTI of shape {img.shape} ({img.shape[3]} volumes); pass frame=k "
                "to read_nifti to read volume k.",
            )
        if ndim == 4:
            k = 0 if frame is None else frame
            if not 0 <= k < img.shape[3]:
                raise ImageReadError(
                    p,
                    f"frame={frame} is out of range; the file has {img.shape[3]} volumes "
                    f"(0..{img.shape[3] - 1}).",
                )
            img = img.slicer[..., k]
        original = "".join(nib.aff2axcodes(img.affine))
        canon = nib.as_closest_canonical(img)
        data_ras = canon.get_fdata(dtype=np.float32)
        if data_ras.ndim == 2:
            data_ras = data_ras[:, :, None]
        # the header holds float32: take its shortest decimal (0.8, not 0.800000011920929)
        zooms = [float(str(np.float32(z))) for z in canon.header.get_zooms()[:3]]
        while len(zooms) < 3:
            zooms.append(1.0)
    except ImageReadError:
        raise
    except Exception as exc:  # nibabel raises many kinds for truncated / odd files
        raise ImageReadError(p, f"nibabel cannot read it: {type(exc).__name__}: {exc}") from exc

    pixels = np.ascontiguousarray(data_ras.transpose(2, 1, 0)[:, ::-1, ::-1])
    affine = canon.affine @ canonical_to_layout(data_ras.shape)
    header = canon.header
    cal_min, cal_max = float(header["cal_min"]), float(header["cal_max"])
    window = None
    if np.isfinite(cal_min) and np.isfinite(cal_max) and cal_max > cal_min:
        window = ((cal_min + cal_max) / 2.0, cal_max - cal_min)
    xyz_units, _ = header.get_xyzt_units()
    metadata = {
        "format": kind,
        "layout": "volume",
        "orientation": "z: inferior->superior, rows: anterior->posterior, cols: right->left",
        "original_orientation": original,
        "affine": [[float(v) for v in row] for row in affine],
        "datatype": str(header.get_data_dtype()),
        "xyz_units": str(xyz_units),
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
    }
    if frame is not None:
        metadata["frame"] = int(frame)
    return MedicalImage(
        pixels=pixels,
        spacing=(zooms[2], zooms[1], zooms[0]),
        window=window,
        modality=None,
        metadata=metadata,
        source=str(p),
    )


#: dtypes write_nifti stores as they are; float64 is stored as float32, bool as uint8.
_NIFTI_DTYPES = ("uint8", "int8", "int16", "uint16", "int32", "uint32", "float32")


def write_nifti(path, image, *, affine=None, overwrite: bool = False):
    """Write a (Z, H, W) volume to ``.nii`` or ``.nii.gz`` with its affine, atomically.

    The inverse of :func:`read_nifti`: ``pixels`` are in its layout (axial slices, z inferior to
    superior, rows anterior to posterior, columns right to left) and the affine maps
    ``(z, row, col, 1)`` to RAS+ mm. The file stores the data in RAS order (canonical) with that
    geometry in its sform and, when the affine has no shear, its qform (codes 1, "scanner"),
    so nibabel, 3D Slicer and ITK-SNAP show it aligned with the source, and
    ``read_nifti(write_nifti(p, img))`` gives back the same pixels, affine and spacing.
    The default window is kept as ``cal_min``/``cal_max``.

    Parameters
    ----------
    path : str or pathlib.Path
        Ends in ``.nii`` or ``.nii.gz`` (gzip, deterministic bytes). Parents are created.
    image : MedicalImage or numpy.ndarray
        A (Z, H, W) volume (an (H, W) slice is written as one slice). Not modified.
        dtypes uint8, int8, int16, uint16, int32, uint32, float32 are stored as they are,
        float64 as float32, bool as uint8.
    affine : array-like (4, 4), optional, keyword-only
        Overrides ``image.metadata["affine"]``. Without either, the affine is built from
        ``image.spacing`` (or 1 mm) with the origin at voxel (0, 0, 0).
    overwrite : bool, keyword-only
        Replace an existing file; without it an existing ``path`` raises OutputExistsError.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InvalidParameterError
        The suffix is not .nii/.nii.gz; the affine is not a finite invertible 4x4 matrix.
    InvalidImageError
        Not a 2-D or 3-D array, empty, or a dtype NIfTI does not hold (complex, object...).
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    ImageWriteError
        The file could not be written (nothing partial is left).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from m1vision.io import MedicalImage, read_nifti, write_nifti
    >>> pixels = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    >>> vol = MedicalImage(pixels, spacing=(3.0, 1.0, 0.5))
    >>> p = write_nifti(pathlib.Path(tempfile.mkdtemp()) / "vol.nii.gz", vol)
    >>> back = read_nifti(p)
    >>> bool((back.pixels == vol.pixels).all()), back.spacing
    (True, (3.0, 1.0, 0.5))
    """
    import nibabel as nib

    from m1vision._atomic import atomic_write_bytes
    from m1vision.errors import ImageWriteError, InvalidImageError

    p = Path(check_path(path, call="write_nifti(path, image)"))
    name = p.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        raise InvalidParameterError(
            f"cannot write {str(p)!r}: write_nifti writes .nii or .nii.gz, got the name "
            f"{p.name!r}; end the name with .nii.gz (compressed) or .nii."
        )
    meta = image.metadata if isinstance(image, MedicalImage) else {}
    spacing = image.spacing if isinstance(image, MedicalImage) else None
    window = image.window if isinstance(image, MedicalImage) else None
    pixels = image.pixels if isinstance(image, MedicalImage) else image
    if not isinstance(pixels, np.ndarray):
        raise InvalidTypeError(
            f"image must be a MedicalImage or a numpy.ndarray, got {type(image).__name__}. "
            "Fix: read one with m1vision.io.read_any, or convert it with numpy.asarray(image)."
        )
    if pixels.ndim == 2:
        pixels = pixels[None]
        if spacing is not None and len(spacing) == 2:
            spacing = (1.0, *spacing)
    if pixels.ndim != 3 or pixels.size == 0:
        raise InvalidImageError(
            f"cannot write {str(p)!r}: expected a non-empty (Z, H, W) volume or (H, W) slice, "
            f"got shape {pixels.shape}; a color image has no NIfTI form here (write_image)."
        )
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8)
    elif pixels.dtype == np.float64:
        pixels = pixels.astype(np.float32)
    elif pixels.dtype.name not in _NIFTI_DTYPES:
        raise InvalidImageError(
            f"cannot write {str(p)!r}: dtype {pixels.dtype} is not one write_nifti stores; "
            f"convert to one of {', '.join(_NIFTI_DTYPES)} (or float64, bool) first."
        )
    if affine is None:
        affine = meta.get("affine")
    if affine is None:
        sp = spacing if spacing is not None and len(spacing) == 3 else (1.0, 1.0, 1.0)
        affine = default_affine(sp)
    try:
        a = check_affine(affine)
    except InvalidParameterError as exc:
        raise InvalidParameterError(
            f"cannot write {str(p)!r}: affine must be a finite, invertible 4x4 matrix mapping "
            f"(z, row, col, 1) to RAS+ mm, got {np.asarray(affine, dtype=object).tolist()!r}; "
            "pass the image's metadata['affine'] or leave affine=None."
        ) from exc
    data_ras = np.ascontiguousarray(pixels.transpose(2, 1, 0)[::-1, ::-1, :])
    aff_ras = a @ np.linalg.inv(canonical_to_layout(data_ras.shape))
    img = nib.Nifti1Image(data_ras, None)
    img.set_sform(aff_ras, code=1)
    cols = aff_ras[:3, :3] / np.linalg.norm(aff_ras[:3, :3], axis=0)
    if np.allclose(cols.T @ cols, np.eye(3), atol=1e-6):
        img.set_qform(aff_ras, code=1)
    else:  # a shear (gantry tilt) fits the sform only
        img.set_qform(None, code=0)
    zooms = np.linalg.norm(aff_ras[:3, :3], axis=0)
    if spacing is not None and len(spacing) == 3 and affine is meta.get("affine"):
        zooms = (spacing[2], spacing[1], spacing[0])  # planes apart, also under a shear
    img.header.set_zooms(tuple(float(z) for z in zooms))
    img.header.set_xyzt_units("mm")
    if window is not None:
        img.header["cal_min"] = window[0] - window[1] / 2.0
        img.header["cal_max"] = window[0] + window[1] / 2.0
    try:
        data = img.to_bytes()
        if name.endswith(".gz"):
            data = gzip.compress(data, compresslevel=4, mtime=0)
        return atomic_write_bytes(p, data, overwrite=overwrite)
    except (FileExistsError, ImageWriteError):
        raise  # already says the file and the fix
    except OSError as exc:
        raise ImageWriteError(f"cannot write {str(p)!r}: {exc}") from exc
