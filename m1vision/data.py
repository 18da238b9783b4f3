"""Sample images that work offline: real DICOM/NIfTI test files shipped inside installed
packages, a Shepp-Logan phantom, and small generated files in the repository's ``data/samples``.

Nothing is ever downloaded: pydicom's files are looked up with
``pydicom.data.get_testdata_file(name, download=False)``, which only searches the installed
package (and pydicom's local cache).

==================  ============  ==================  ==============================================
loader              shape         dtype               source (licence)
==================  ============  ==================  ==============================================
:func:`ct_slice`    (128, 128)    float32, HU         pydicom CT_small.dcm (MIT)
:func:`ct_slice_512` (512, 512)   float32, HU         pydicom 693_J2KI.dcm, JPEG 2000 (MIT)
:func:`mr_slice`    (64, 64)      float32             pydicom MR_small.dcm (MIT)
:func:`volume`      (25, 41, 33)  float32             nibabel anatomical.nii (MIT)
:func:`dose_volume` (15, 10, 10)  float32, rel. dose  pydicom rtdose.dcm (MIT)
:func:`phantom`     (512, 512)    uint16              scikit-image Shepp-Logan (BSD-3-Clause)
:func:`ct_series`   (64, 256, 256) float32, HU        generated DICOM series (:func:`ct_series_dir`)
==================  ============  ==================  ==============================================

:data:`SAMPLES` lists these and the generated files (``python tools/make_sample_data.py``),
each with description, shape, dtype, source and licence; :func:`sample_path` finds any by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from m1vision._checks import check_choice, check_int
from m1vision.errors import ImageReadError, InvalidParameterError, ModelLoadError
from m1vision.io import MedicalImage, read_dicom, read_nifti

__all__ = [
    "SAMPLES",
    "SampleInfo",
    "batch_dir",
    "cache_dir",
    "ct_series",
    "ct_series_dir",
    "ct_slice",
    "ct_slice_512",
    "data_root",
    "dose_volume",
    "model_path",
    "mr_slice",
    "phantom",
    "sample_path",
    "samples_dir",
    "volume",
]

_PYDICOM_LICENCE = "MIT (pydicom's LICENSE; its test files are not carved out)"
_NEMA_NOTE = "downsized by pydicom from the NEMA WG04 sample '{}' (test_files/README.txt)"
_NIBABEL_LICENCE = "MIT (nibabel's COPYING covers the package; no separate terms for test data)"
_SKIMAGE_LICENCE = "BSD-3-Clause (scikit-image's LICENSE.txt, 'Files: *')"


@dataclass(frozen=True)
class SampleInfo:
    """What a sample is and where it comes from.

    ``origin`` is ``"pydicom"``, ``"nibabel"``, ``"scikit-image"`` (a file inside the installed
    package) or ``"generated"`` (a file in :func:`samples_dir`, written by
    ``tools/make_sample_data.py``); ``file`` is the file name in that place. ``shape`` and
    ``dtype`` describe the pixels as loaded (by the loader named in ``loader``, else by
    :func:`m1vision.io.read_any`).
    """

    name: str
    description: str
    shape: tuple[int, ...]
    dtype: str
    origin: str
    file: str
    source: str
    licence: str
    loader: str = ""


def _info(*args, **kwargs) -> tuple[str, SampleInfo]:
    info = SampleInfo(*args, **kwargs)
    return info.name, info


_CT_SOURCE = "pydicom: pydicom/data/test_files/CT_small.dcm; " + _NEMA_NOTE.format("CT1_UNC")
_CT512_SOURCE = "pydicom: pydicom/data/test_files/693_J2KI.dcm (regression file of pydicom #693)"
_MR_SOURCE = "pydicom: pydicom/data/test_files/MR_small.dcm; " + _NEMA_NOTE.format("MR1_UNC")
_PHANTOM_SOURCE = "scikit-image: skimage/data/phantom.png (skimage.data.shepp_logan_phantom)"

#: Every sample by name. Package files first, then the generated files in data/samples.
SAMPLES: dict[str, SampleInfo] = dict(
    [
        _info(
            "ct_slice",
            "CT slice of a head, 128x128, Hounsfield units (rescale intercept -1024)",
            (128, 128),
            "float32",
            "pydicom",
            "CT_small.dcm",
            _CT_SOURCE,
            _PYDICOM_LICENCE,
            "ct_slice",
        ),
        _info(
            "ct_slice_512",
            "CT slice 512x512, JPEG 2000 compressed, HU; default window 40/100",
            (512, 512),
            "float32",
            "pydicom",
            "693_J2KI.dcm",
            _CT512_SOURCE,
            _PYDICOM_LICENCE,
            "ct_slice_512",
        ),
        _info(
            "mr_slice",
            "MR slice 64x64 (scanner units); default window 600/1600",
            (64, 64),
            "float32",
            "pydicom",
            "MR_small.dcm",
            _MR_SOURCE,
            _PYDICOM_LICENCE,
            "mr_slice",
        ),
        _info(
            "volume",
            "T1 anatomical MR volume, 2 mm voxels, (Z, H, W) in DICOM axial layout",
            (25, 41, 33),
            "float32",
            "nibabel",
            "anatomical.nii",
            "nibabel: nibabel/tests/data/anatomical.nii",
            _NIBABEL_LICENCE,
            "volume",
        ),
        _info(
            "dose_volume",
            "RT dose grid, 15 frames of 10x10, relative dose (DoseGridScaling applied)",
            (15, 10, 10),
            "float32",
            "pydicom",
            "rtdose.dcm",
            "pydicom: pydicom/data/test_files/rtdose.dcm (from a commercial treatment planning "
            "system, per test_files/README.txt)",
            _PYDICOM_LICENCE,
            "dose_volume",
        ),
        _info(
            "phantom",
            "Shepp-Logan head phantom, scaled to the full range of the dtype",
            (512, 512),
            "uint16",
            "scikit-image",
            "phantom.png",
            _PHANTOM_SOURCE,
            _SKIMAGE_LICENCE,
            "phantom",
        ),
        # ---- generated by tools/make_sample_data.py into data/samples -------------------------
        _info(
            "phantom_png16",
            "Shepp-Logan phantom 512x512, 16-bit PNG (phantom(size=512, dtype=uint16))",
            (512, 512),
            "uint16",
            "generated",
            "phantom_512_u16.png",
            _PHANTOM_SOURCE,
            _SKIMAGE_LICENCE,
        ),
        _info(
            "phantom_tiff16",
            "the same phantom as a 16-bit TIFF",
            (512, 512),
            "uint16",
            "generated",
            "phantom_512_u16.tif",
            _PHANTOM_SOURCE,
            _SKIMAGE_LICENCE,
        ),
        _info(
            "phantom_png8",
            "Shepp-Logan phantom 256x256, 8-bit PNG (phantom(size=256, dtype=uint8))",
            (256, 256),
            "uint8",
            "generated",
            "phantom_256_u8.png",
            _PHANTOM_SOURCE,
            _SKIMAGE_LICENCE,
        ),
        _info(
            "ct_png16",
            "CT_small as a 16-bit PNG: HU + 1024, clipped to 0..65535",
            (128, 128),
            "uint16",
            "generated",
            "ct_small_hu1024_u16.png",
            _CT_SOURCE,
            _PYDICOM_LICENCE,
        ),
        _info(
            "ct512_png16",
            "693_J2KI as a 16-bit PNG: HU + 1024, clipped to 0..65535 (outside the scan -> 0)",
            (512, 512),
            "uint16",
            "generated",
            "ct_693_hu1024_u16.png",
            _CT512_SOURCE,
            _PYDICOM_LICENCE,
        ),
        _info(
            "mr_png16",
            "MR_small as a 16-bit PNG (scanner values, all within 0..65535)",
            (64, 64),
            "uint16",
            "generated",
            "mr_small_u16.png",
            _MR_SOURCE,
            _PYDICOM_LICENCE,
        ),
        _info(
            "ct_color_jpeg",
            "693_J2KI in a bone window (400/1800), 256x256, false color (OpenCV BONE map), JPEG",
            (256, 256, 3),
            "uint8",
            "generated",
            "ct_693_bone_color.jpg",
            _CT512_SOURCE,
            _PYDICOM_LICENCE,
        ),
    ]
    + [
        _info(
            f"batch_phantom_rot{angle:03d}",
            f"batch: phantom 256x256 rotated {angle} degrees, seeded noise, 16-bit PNG",
            (256, 256),
            "uint16",
            "generated",
            f"batch/phantom_rot{angle:03d}.png",
            _PHANTOM_SOURCE,
            _SKIMAGE_LICENCE,
        )
        for angle in (0, 15, 30, 45, 60, 75)
    ]
    + [
        _info(
            "batch_ct_small",
            "batch: CT_small, HU + 1024, 16-bit PNG",
            (128, 128),
            "uint16",
            "generated",
            "batch/ct_small.png",
            _CT_SOURCE,
            _PYDICOM_LICENCE,
        ),
        _info(
            "batch_mr_small",
            "batch: MR_small, 16-bit PNG",
            (64, 64),
            "uint16",
            "generated",
            "batch/mr_small.png",
            _MR_SOURCE,
            _PYDICOM_LICENCE,
        ),
    ]
)


def data_root() -> Path:
    """The bundled data folder: ``models/`` (the demo model) and ``samples/``.

    Found with :mod:`importlib.resources` as the package data ``m1vision/_bundled`` (in a
    source checkout a link to the repository's ``data/`` folder; ``pip install .`` copies
    the files into the installed package). Set ``M1VISION_DATA`` to use another folder.

    Examples
    --------
    >>> from m1vision.data import data_root
    >>> (data_root() / "models" / "lesion_cnn.keras").is_file()
    True
    """
    from m1vision._resources import data_root as root

    return root()


def model_path(name: str = "lesion_cnn.keras") -> Path:
    """The path of a bundled model file: the demo model by default.

    Raises
    ------
    ModelLoadError
        No such bundled model; the message lists the bundled ones.

    Examples
    --------
    >>> from m1vision.data import model_path
    >>> model_path().name
    'lesion_cnn.keras'
    """
    folder = data_root() / "models"
    path = folder / name
    if not path.is_file():
        known = sorted(p.name for p in folder.glob("*.keras")) if folder.is_dir() else []
        raise ModelLoadError(
            f"no bundled model {name!r} in {str(folder)!r}; bundled: {known or 'none'}. "
            "Pass the path of your own model instead."
        )
    return path


def samples_dir() -> Path:
    """The bundled ``samples`` folder (generated samples): ``data_root() / "samples"``.

    In a source checkout it is the repository's ``data/samples``; set the environment
    variable ``M1VISION_SAMPLES`` to use another folder.

    Examples
    --------
    >>> from m1vision.data import samples_dir
    >>> samples_dir().parts[-2:]
    ('data', 'samples')
    """
    override = os.environ.get("M1VISION_SAMPLES")
    if override:
        return Path(override)
    return data_root() / "samples"


def batch_dir() -> Path:
    """The folder of the demo batch run: ``samples_dir() / "batch"`` (8 16-bit PNGs).

    Examples
    --------
    >>> from m1vision.data import batch_dir
    >>> sorted(p.name for p in batch_dir().glob("*.png"))[:2]
    ['ct_small.png', 'mr_small.png']
    """
    return samples_dir() / "batch"


def _package_file(info: SampleInfo) -> Path:
    if info.origin == "pydicom":
        from pydicom.data import get_testdata_file

        found = get_testdata_file(info.file, download=False)  # never downloads
        if found is None:
            raise ImageReadError(
                info.file,
                "pydicom's test file is not installed; the pydicom wheel ships it, "
                "so reinstall pydicom (pip install --force-reinstall pydicom).",
            )
        return Path(found)
    if info.origin == "nibabel":
        import nibabel

        return Path(nibabel.__file__).parent / "tests" / "data" / info.file
    if info.origin == "scikit-image":
        import skimage

        return Path(skimage.__file__).parent / "data" / info.file
    return samples_dir() / info.file


def sample_path(name: str) -> Path:
    """The path of sample ``name`` (a key of :data:`SAMPLES`).

    Raises
    ------
    InvalidParameterError
        ``name`` is not a sample; the message lists them.
    ImageReadError
        The file is missing (for generated samples: run ``python tools/make_sample_data.py``).

    Examples
    --------
    >>> from m1vision.data import sample_path
    >>> sample_path("ct_slice").name, sample_path("phantom_png16").name
    ('CT_small.dcm', 'phantom_512_u16.png')
    """
    if name not in SAMPLES:
        raise InvalidParameterError(
            f"no sample named {name!r}; the samples are: {', '.join(SAMPLES)}."
        )
    info = SAMPLES[name]
    path = _package_file(info)
    if not path.is_file():
        fix = (
            "run `python tools/make_sample_data.py` in the repository to generate it"
            if info.origin == "generated"
            else f"reinstall {info.origin}; its wheel ships this file"
        )
        raise ImageReadError(path, f"sample {name!r} is missing; {fix}.")
    return path


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


# ------------------------------------------------------------------------------------ series

#: Version of the generated CT series; a change of the generator bumps it (a new folder).
_CT_SERIES_VERSION = 2  # 2: the files carry FrameOfReferenceUID (a SEG can reference them)
_CT_SERIES_SHAPE = (64, 256, 256)
_CT_SERIES_SPACING = (2.5, 0.8, 0.8)


def cache_dir() -> Path:
    """Where generated samples are kept: ``$M1VISION_CACHE``, else ``$XDG_CACHE_HOME/m1vision``
    (``~/.cache/m1vision``). Created on first use.

    Examples
    --------
    >>> from m1vision.data import cache_dir
    >>> cache_dir().is_dir()
    True
    """
    root = os.environ.get("M1VISION_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "m1vision",
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def ct_series_dir() -> Path:
    """A folder of 64 single-slice DICOM CT files (a generated abdomen phantom), made on first use.

    Written by :func:`m1vision.synthetic.write_ct_series` (256 x 256 slices, 2.5 mm apart,
    0.8 mm pixels, int16 with RescaleIntercept -1024, names ``IM0001.dcm``...) into
    :func:`cache_dir` once, atomically (a whole folder or none), and reused: deterministic, so
    every machine gets the same files. Licence: generated by m1vision (MIT).

    Examples
    --------
    >>> from m1vision.data import ct_series_dir
    >>> len(list(ct_series_dir().glob("IM*.dcm")))
    64
    """
    import shutil
    import tempfile

    from m1vision.synthetic import write_ct_series

    cache = cache_dir()
    final = cache / f"ct_series-v{_CT_SERIES_VERSION}"
    if final.is_dir():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".ct_series-", dir=cache))
    try:
        write_ct_series(tmp, shape=_CT_SERIES_SHAPE, spacing=_CT_SERIES_SPACING, seed=0)
        try:
            os.rename(tmp, final)
        except OSError:  # another process got there first: keep its (identical) folder
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def ct_series() -> MedicalImage:
    """The generated CT series of :func:`ct_series_dir`, read with :func:`m1vision.io.read_series`.

    Shape (64, 256, 256) = (Z, H, W), float32 HU, spacing (2.5, 0.8, 0.8) mm, window (40, 400);
    laid out like :func:`m1vision.io.read_nifti` (z inferior to superior, rows anterior to
    posterior, columns right to left) with ``metadata["affine"]``. An elliptical body with
    lungs, spine, liver (with a small lesion) and aorta: see
    :func:`m1vision.synthetic.ct_phantom`.

    Examples
    --------
    >>> from m1vision.data import ct_series
    >>> vol = ct_series()
    >>> vol.shape, vol.spacing, vol.modality, vol.window
    ((64, 256, 256), (2.5, 0.8, 0.8), 'CT', (40.0, 400.0))
    """
    from m1vision.io import read_series

    return read_series(ct_series_dir())
