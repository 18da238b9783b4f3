"""The phantom as one Enhanced CT/MR multi-frame object, beside its classic series."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from m1vision._checks import check_int, check_path
from m1vision.errors import InvalidParameterError
from m1vision.synthetic._series import GeneratedSeries, write_ct_series

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
    folder = Path(check_path(folder, name="folder"))
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
