"""The sample loaders: real DICOM/NIfTI test files as MedicalImage, the Shepp-Logan phantom."""

from __future__ import annotations

import numpy as np

from m1vision._checks import check_choice, check_int
from m1vision.data._places import sample_path
from m1vision.io import MedicalImage, read_dicom, read_nifti


def ct_slice() -> MedicalImage:
    """A 128x128 CT slice of a head in Hounsfield units.

    Shape (128, 128), float32 HU; spacing 0.661468 mm. Source: pydicom's test file
    ``CT_small.dcm`` (downsized from the NEMA WG04 sample ``CT1_UNC``). Licence: MIT (pydicom).

    Examples
    --------
    >>> from m1vision.data import ct_slice
    >>> ct = ct_slice()
    >>> ct.pixels.shape, ct.pixels.dtype, ct.modality, ct.spacing
    ((128, 128), dtype('float32'), 'CT', (0.661468, 0.661468))
    """
    return read_dicom(sample_path("ct_slice"))


def ct_slice_512() -> MedicalImage:
    """A 512x512 CT slice (JPEG 2000 in the file) in Hounsfield units.

    Shape (512, 512), float32 HU, window (40, 100), spacing 0.478516 mm. Decoded offline by
    Pillow's OpenJPEG through pydicom. Source: pydicom's test file ``693_J2KI.dcm``.
    Licence: MIT (pydicom).

    Examples
    --------
    >>> from m1vision.data import ct_slice_512
    >>> ct = ct_slice_512()
    >>> ct.pixels.shape, ct.pixels.dtype, ct.window
    ((512, 512), dtype('float32'), (40.0, 100.0))
    >>> ct.metadata["transfer_syntax"]
    'JPEG 2000 Image Compression'
    """
    return read_dicom(sample_path("ct_slice_512"))


def mr_slice() -> MedicalImage:
    """A 64x64 MR slice in scanner units.

    Shape (64, 64), float32, window (600, 1600), spacing 0.3125 mm. Source: pydicom's test file
    ``MR_small.dcm`` (downsized from the NEMA WG04 sample ``MR1_UNC``). Licence: MIT (pydicom).

    Examples
    --------
    >>> from m1vision.data import mr_slice
    >>> mr = mr_slice()
    >>> mr.pixels.shape, mr.pixels.dtype, mr.modality, mr.window
    ((64, 64), dtype('float32'), 'MR', (600.0, 1600.0))
    """
    return read_dicom(sample_path("mr_slice"))


def volume() -> MedicalImage:
    """A small 3-D T1 MR volume (NIfTI), laid out as DICOM axial slices.

    Shape (25, 41, 33) = (Z, H, W), float32, spacing (2.0, 2.0, 2.0) mm; see
    :func:`m1vision.io.read_nifti` for the orientation. Source: nibabel's test file
    ``tests/data/anatomical.nii``. Licence: MIT (nibabel).

    Examples
    --------
    >>> from m1vision.data import volume
    >>> vol = volume()
    >>> vol.pixels.shape, vol.pixels.dtype, vol.spacing
    ((25, 41, 33), dtype('float32'), (2.0, 2.0, 2.0))
    """
    return read_nifti(sample_path("volume"))


def dose_volume() -> MedicalImage:
    """A multi-frame RT dose grid (relative dose).

    Shape (15, 10, 10) = (frames, H, W), float32 dose with ``DoseGridScaling`` applied, in the
    file's ``DoseUnits``: "RELATIVE" (a fraction of a reference dose, not Gy). Spacing
    (5.0, 10.0, 10.0) mm (z from the even GridFrameOffsetVector). Source: pydicom's test file
    ``rtdose.dcm``. Licence: MIT (pydicom).

    Examples
    --------
    >>> from m1vision.data import dose_volume
    >>> dose = dose_volume()
    >>> dose.pixels.shape, dose.pixels.dtype, dose.modality, dose.spacing
    ((15, 10, 10), dtype('float32'), 'RTDOSE', (5.0, 10.0, 10.0))
    >>> dose.metadata["dose_units"], dose.metadata["dose_type"]
    ('RELATIVE', 'PHYSICAL')
    """
    return read_dicom(sample_path("dose_volume"))


_PHANTOM_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32}


def phantom(*, size: int = 512, dtype=np.uint16) -> np.ndarray:
    """The Shepp-Logan head phantom, resized and scaled to the full range of ``dtype``.

    Parameters
    ----------
    size : int, keyword-only
        Output height and width (at least 16). The 400x400 original is resized with linear
        interpolation (anti-aliased when shrinking), which is deterministic.
    dtype : numpy.uint8, numpy.uint16 or numpy.float32, keyword-only
        uint8: 0..255, uint16: 0..65535, float32: 0..1 (rounded for the integer types).

    Returns
    -------
    numpy.ndarray
        (size, size). Source: ``skimage.data.shepp_logan_phantom()`` (file
        ``skimage/data/phantom.png`` in the scikit-image wheel). Licence: BSD-3-Clause.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.data import phantom
    >>> p = phantom()
    >>> p.shape, p.dtype, int(p.min()), int(p.max())
    ((512, 512), dtype('uint16'), 0, 65535)
    >>> phantom(size=64, dtype=np.uint8).dtype
    dtype('uint8')
    """
    size = check_int(size, name="size", minimum=16)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    check_choice(name, name="dtype", choices=tuple(_PHANTOM_DTYPES))
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    base = shepp_logan_phantom()
    if base.shape != (size, size):
        base = resize(base, (size, size), order=1, anti_aliasing=size < base.shape[0])
    base = np.clip(base, 0.0, None)
    base = base / base.max()
    if name == "float32":
        return base.astype(np.float32)
    top = np.iinfo(_PHANTOM_DTYPES[name]).max
    return np.round(base * top).astype(_PHANTOM_DTYPES[name])
