"""The exceptions m1vision raises, one place to look them up.

Every error says what happened, what was expected and, where there is one, how to fix it.
Each class also derives from the built-in type a caller would catch without knowing
m1vision (``ValueError``, ``TypeError``, ``OSError``, ``FileExistsError``, ``RuntimeError``,
``MemoryError``).

======================  ======================  ==============================================
class                   also a                  raised for
======================  ======================  ==============================================
``M1VisionError``       ``Exception``           base class of all of the below
``InvalidImageError``   ``ValueError``          an array that is no usable image (NaN, 4-D...)
``InvalidParameterError`` ``ValueError``        a bad option (even blur kernel, low > high...)
``InvalidTypeError``    ``TypeError``           an argument of the wrong type (a str where a
                                                number goes, a path where an array goes...)
``ImageReadError``      ``OSError``             a file that cannot be read as an image
``PixelDataError``      ``OSError``             DICOM pixel data that cannot be decoded (an
                                                ``ImageReadError``; names the transfer syntax)
``ImageWriteError``     ``OSError``             a file that cannot be written
``OutputExistsError``   ``FileExistsError``     an output that exists and would be overwritten
``PipelineStepError``   ``RuntimeError``        a pipeline step failed (names step, shape, dtype)
``PipelineConfigError`` ``ValueError``          a pipeline dict/JSON that cannot be rebuilt
``ModelLoadError``      ``ValueError``          a path that is no loadable model
``SegmentationModelError`` ``ValueError``       a model the Segmenter cannot run as asked
``MemoryBudgetError``   ``MemoryError``         more memory needed than the ``max_memory`` budget
                                                (or, for an output, 80 % of the memory)
``RecordError``         ``ValueError``          an experiment record that cannot be used
``BinaryFormatError``   ``ValueError``          a file that is no readable Mach-O/ELF binary
``DeviceUnavailableError`` ``RuntimeError``     a device was asked for that cannot be used
``JobMismatchError``    ``FileExistsError``     an output folder holding another job's results
``OutputFolderBusyError`` ``RuntimeError``      an output folder another run is writing into
``LabelError``          ``ValueError``          a label map that cannot be used (base class);
                                                subclasses: ``GridMismatchError``,
                                                ``LabelValueError``, ``LabelSidecarError``,
                                                ``SegReferenceError``, ``SegOverlapError``,
                                                ``EmptyLabelError``
``SeriesError``         ``ValueError``          a DICOM series that is no consistent volume;
                                                subclasses: ``SeriesNotFoundError``,
                                                ``SeriesSelectionError``,
                                                ``SeriesGeometryError``, ``MissingSlicesError``,
                                                ``UnevenSpacingError``,
                                                ``DuplicatePositionError``, ``GantryTiltError``,
                                                ``FrameGeometryError``
``VolumeSliceError``    ``RuntimeError``        a 2-D function failed on one slice of a volume
======================  ======================  ==============================================
"""

from __future__ import annotations

__all__ = [
    "BinaryFormatError",
    "DeviceUnavailableError",
    "DuplicatePositionError",
    "EmptyLabelError",
    "FrameGeometryError",
    "GantryTiltError",
    "GridMismatchError",
    "ImageReadError",
    "ImageWriteError",
    "InvalidImageError",
    "InvalidParameterError",
    "InvalidTypeError",
    "JobMismatchError",
    "LabelError",
    "LabelSidecarError",
    "LabelValueError",
    "M1VisionError",
    "MemoryBudgetError",
    "MissingSlicesError",
    "ModelLoadError",
    "OutputExistsError",
    "OutputFolderBusyError",
    "PipelineConfigError",
    "PipelineStepError",
    "PixelDataError",
    "RecordError",
    "SegOverlapError",
    "SegReferenceError",
    "SegmentationModelError",
    "SeriesError",
    "SeriesGeometryError",
    "SeriesNotFoundError",
    "SeriesSelectionError",
    "UnevenSpacingError",
    "VolumeSliceError",
]


class M1VisionError(Exception):
    """Base class of every error m1vision raises on purpose."""


class InvalidImageError(M1VisionError, ValueError):
    """An array was passed where an image is expected, but it is not a usable image."""


class InvalidParameterError(M1VisionError, ValueError):
    """An option has a value outside what the function accepts."""


class InvalidTypeError(M1VisionError, TypeError):
    """An argument has the wrong type: a str where a number goes, a list or a path where an
    array goes, a MedicalImage where a path goes. The message names the argument, the type
    expected, the type that came and the fix.
    """


class ImageReadError(M1VisionError, OSError):
    """A file could not be read as an image; the message names the file and why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path!r}: {reason}")

    def __reduce__(self):  # keep it picklable across process pools and Dask workers
        return (type(self), (self.path, self.reason))


class PixelDataError(ImageReadError):
    """A DICOM file's pixel data cannot be decoded here, or disagree with its declared size.

    Raised by :func:`~m1vision.io.read_dicom` and, with the same text for the same file, by
    :func:`~m1vision.io.read_series`. Besides ``path`` and ``reason`` it keeps
    ``transfer_syntax`` (the name, e.g. "JPEG-LS Lossless Image Compression") and
    ``transfer_syntax_uid``; the reason says what happened and the fix.
    """

    def __init__(self, path, reason: str, *, transfer_syntax=None, transfer_syntax_uid=None):
        self.transfer_syntax = transfer_syntax
        self.transfer_syntax_uid = transfer_syntax_uid
        super().__init__(path, reason)

    def __reduce__(self):
        kwargs = {
            "transfer_syntax": self.transfer_syntax,
            "transfer_syntax_uid": self.transfer_syntax_uid,
        }
        return (_rebuild_pixel_data_error, (type(self), self.path, self.reason, kwargs))


def _rebuild_pixel_data_error(cls, path, reason, kwargs):
    return cls(path, reason, **kwargs)


class ImageWriteError(M1VisionError, OSError):
    """A file could not be written; nothing partial is left behind."""


class OutputExistsError(M1VisionError, FileExistsError):
    """An output file exists already and overwriting was not asked for."""


class PipelineStepError(M1VisionError, RuntimeError):
    """A pipeline step raised; the message names the step and the input's shape and dtype.

    The original exception is kept as ``__cause__``.
    """


class PipelineConfigError(M1VisionError, ValueError):
    """A pipeline description (dict or JSON) cannot be turned back into a pipeline."""


class ModelLoadError(M1VisionError, ValueError):
    """A path does not hold a model that can be loaded safely."""


class SegmentationModelError(M1VisionError, ValueError):
    """A model (or its card) that the Segmenter cannot run as asked: no per-pixel output, a
    2-D model asked for 3-D patches, a channel count or window size it does not take."""


class MemoryBudgetError(M1VisionError, MemoryError):
    """A computation would need more memory than its ``max_memory`` budget (an output of
    :func:`~m1vision.preprocess.resize` or :func:`~m1vision.volume.resample`: more than 80 %
    of the machine's memory); says how much and the fix, before anything large is allocated."""


class RecordError(M1VisionError, ValueError):
    """An experiment record is unreadable, of an unknown schema, or inconsistent."""


# --- files, models, records, binaries, devices, jobs ---------------------------------------


class BinaryFormatError(M1VisionError, ValueError):
    """A file is not a Mach-O or ELF binary, or its headers are truncated or inconsistent.

    Raised by :func:`m1vision.binarch.read_architectures` (also importable from there).
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"{self.path!r} is not a readable Mach-O or ELF binary: {reason}. Pass a compiled "
            "library (.so, .dylib) or executable."
        )

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class DeviceUnavailableError(M1VisionError, RuntimeError):
    """``prefer="gpu"`` was asked for, but no GPU is usable; the message says why and the fix."""


class JobMismatchError(OutputExistsError):
    """An output folder holds the results of another job (another pipeline or model).

    Raised by the batch engine (:mod:`m1vision.batch`) before anything is written; the
    message says what differs and the fix (``overwrite=True``, or another folder). The
    attributes ``manifest`` (its path) and ``differences`` (list of str) hold the same facts.
    """


class OutputFolderBusyError(M1VisionError, RuntimeError):
    """Another run holds the output folder's lock (one run per output folder).

    Raised at once, before anything is read or written; the message names the folder and the
    holder's process id (attributes ``folder`` and ``pid``; ``pid`` is None when the holder
    had not written it yet). A crashed run's lock is released by the operating system.
    """


# --- labels: label maps, their files and their grids -------------------------------------------


class LabelError(M1VisionError, ValueError):
    """A label map cannot be used as given (base class of the label errors below).

    Raised by :mod:`m1vision.labels` and :func:`m1vision.volume.resample`; the message names
    the argument or file, what was expected, what came and the fix.
    """


class GridMismatchError(LabelError):
    """A label map and an image (or two label maps) are not on one grid.

    The message shows both grids (shape, spacing, origin, axis codes) and the fix,
    ``m1vision.volume.resample(labels, like=image, interpolation="nearest")``. The
    attributes ``first`` and ``second`` hold the two grids as dicts.
    """


class LabelValueError(LabelError):
    """Label values that no label map holds: float (non-integral), negative, or too many."""


class LabelSidecarError(LabelError):
    """A label sidecar (names and colours) that cannot be read, or names values not in the map."""


class SegReferenceError(LabelError):
    """A DICOM SEG and a source series that do not belong together (or no source at all)."""


class SegOverlapError(LabelError):
    """A DICOM SEG whose segments overlap, read with ``overlap="error"``."""


class EmptyLabelError(LabelError):
    """A label asked for that holds no voxel in any of the maps it is measured on."""


# --- DICOM series and volumes ------------------------------------------------------------------


class SeriesError(M1VisionError, ValueError):
    """A folder's DICOM files do not make one consistent volume (base of the series errors).

    The message says what is wrong, in which folder and files, what was expected, what came
    and how to fix it; the parts are kept as attributes ``folder``, ``problem``, ``expected``,
    ``got``, ``fix`` and ``files`` (a tuple of file names, relative to the folder).
    """

    def __init__(self, folder, problem: str, *, expected: str, got: str, fix: str, files=()):
        self.folder = str(folder)
        self.problem = problem
        self.expected = expected
        self.got = got
        self.fix = fix
        self.files = tuple(str(f) for f in files)
        named = ""
        if self.files:
            shown = ", ".join(self.files[:6])
            more = f" and {len(self.files) - 6} more" if len(self.files) > 6 else ""
            named = f" (files: {shown}{more})"
        super().__init__(
            f"cannot read the DICOM series in {self.folder!r}: {problem}{named}. "
            f"Expected {expected}; got {got}. Fix: {fix}"
        )

    def __reduce__(self):  # picklable across process pools
        kwargs = {"expected": self.expected, "got": self.got, "fix": self.fix, "files": self.files}
        return (_rebuild_series_error, (type(self), self.folder, self.problem, kwargs))


def _rebuild_series_error(cls, folder, problem, kwargs):
    return cls(folder, problem, **kwargs)


class SeriesNotFoundError(SeriesError):
    """A folder holds no readable DICOM image series (only other files, or none)."""


class SeriesSelectionError(SeriesError):
    """Several series and no ``series=``, or ``series=`` matches none or several of them."""


class SeriesGeometryError(SeriesError):
    """Slices of one series differ in orientation, pixel spacing or size, or lack a position."""


class FrameGeometryError(SeriesGeometryError):
    """An Enhanced multi-frame object whose functional groups do not place every frame.

    Some frames lack a PlanePositionSequence or PlaneOrientationSequence, or the frames of one
    stack have several orientations. ``folder`` is the file, ``files`` names the frames.
    """


class MissingSlicesError(SeriesError):
    """A gap between two slices is larger than the series' typical step (slices are missing)."""


class UnevenSpacingError(SeriesError):
    """The steps between slices differ by more than the tolerance."""


class DuplicatePositionError(SeriesError):
    """Several slices sit at one position (multi-echo, diffusion, several acquisitions)."""


class GantryTiltError(SeriesError):
    """The step between slices is not along the slice normal (a gantry-tilted CT stack)."""


class VolumeSliceError(M1VisionError, RuntimeError):
    """A 2-D function applied to a volume failed on one slice; names the slice, axis and shape.

    The original exception is kept as ``__cause__``.
    """
