"""A messy collection of DICOM series, as archives hand them out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from m1vision._checks import check_int, check_path
from m1vision.synthetic._series import write_ct_series

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
    root = Path(check_path(root, name="root"))
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
