"""DICOM series of the phantom: the regular one and each irregular kind."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from m1vision._checks import check_path
from m1vision.errors import InvalidParameterError
from m1vision.synthetic._phantom import _layout_to_lps, _phantom_affine, ct_phantom

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
    folder = Path(check_path(folder, name="folder"))
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
