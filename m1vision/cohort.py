"""A cohort's label statistics: a folder of image/label pairs through the batch engine, one CSV.

Where things are
----------------
======================  ==================================================================
:func:`stats_folder`    ``label_stats`` of every image/label pair of two folders into one
                        CSV, with the engine's never-stale resume
:func:`match_pairs`     the image/label pairs of two folders, by name (the matching rule)
:class:`LabelStatsJob`  the :class:`m1vision.batch.Job` it runs; its items are
                        :class:`LabelStatsItem` (the batch item plus image, labels, rows)
======================  ==================================================================

Each case is one input of :func:`m1vision.batch.run`: a small folder of links to the case's
image, its label file and the label file's names (sidecar or colour table), made in a private
temporary folder for the run. The engine identifies that folder by its files' names and the
content of the files they link to (its one rule, with its stat cache on the linked files), so
a changed image, label file or sidecar recomputes that case and nothing else; the per-case
rows live in the engine's manifest and one CSV is written from them after every run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from m1vision.batch import MANIFEST_NAME, BatchItem, Input, Job
from m1vision.batch import run as run_batch
from m1vision.errors import ImageReadError, InvalidParameterError, OutputExistsError

#: The schema of the CSV :func:`stats_folder` writes (a LabelTable with a ``case`` column).
FOLDER_STATS_SCHEMA = "m1vision.label_stats_folder"

# Suffixes of label files and of the names beside them, in the order they are looked for.
_LABEL_SUFFIXES = (".nii.gz", ".nii", ".dcm")
_NAME_SUFFIXES = (".json", ".ctbl", ".txt", ".label")


@dataclass(frozen=True, kw_only=True)
class LabelStatsItem(BatchItem):
    """A case of :func:`stats_folder`: the batch item plus its image, labels and rows."""

    image: str | None = None
    labels: str | None = None
    rows: list = field(default_factory=list)


def _split(name: str, suffixes) -> tuple[str, str] | None:
    lower = name.lower()
    for suffix in suffixes:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return None


def _image_suffixes() -> list[str]:
    from m1vision.io import IMAGE_EXTENSIONS

    return sorted(IMAGE_EXTENSIONS, key=len, reverse=True)  # ".nii.gz" before ".nii"


def _image_files(folder: Path) -> list[tuple[str, Path]]:
    """``[(case, path)]``: the image files under ``folder`` (no hidden parts), sorted; the
    case is the path relative to ``folder`` without its extension."""
    suffixes = _image_suffixes()
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        for name in filenames:
            split = None if name.startswith(".") else _split(name, suffixes)
            if split is not None:
                rel = (here / split[0]).relative_to(folder).as_posix()
                found.append((rel, here / name))
    return sorted(found)


def match_pairs(images, labels, *, match: str = "{case}") -> list[tuple[str, Path, Path]]:
    """The cases of a folder of images and a folder of label maps: ``[(case, image, labels)]``.

    The matching rule: every image file under ``images`` (any depth, names starting with
    "." left out; the extensions of :data:`m1vision.io.IMAGE_EXTENSIONS`) is a case, named
    by its path relative to ``images`` without the extension (``"sub/case1"``). Its label
    file is ``labels/<same sub-folder>/<match with {case} replaced by the file's stem>``
    plus ``.nii.gz``, ``.nii`` or ``.dcm`` (a DICOM SEG): with ``match="{case}"`` a labels
    folder of the same names (``images/a.nii.gz`` - ``labels/a.nii.gz``), with
    ``match="{case}_seg"`` ``a_seg.nii.gz``. ``labels`` may be ``images`` itself when
    ``match`` is not ``"{case}"``; the label files are then not cases.

    Raises
    ------
    InvalidParameterError
        No images, an image without its label file, or two label files for one case (the
        message names them and the rule).
    """
    images, labels = Path(images).absolute(), Path(labels).absolute()
    for name, folder in (("images", images), ("labels", labels)):
        if folder.is_file():
            raise ImageReadError(
                folder,
                f"{name} must be a folder of files, and this is one file. Fix: pass the "
                f"folder holding it ({str(folder.parent)!r}).",
            )
        if not folder.is_dir():
            raise ImageReadError(
                folder,
                f"{name} must be a folder, and none is there. Fix: check the path and the "
                "working folder.",
            )
    if not isinstance(match, str) or match.count("{case}") != 1:
        raise InvalidParameterError(
            f"match must be a name with {{case}} once, e.g. '{{case}}' or '{{case}}_seg', got "
            f"{match!r}."
        )
    same = images.resolve() == labels.resolve()
    if same and match == "{case}":
        raise InvalidParameterError(
            "images and labels are one folder, so match='{case}' would pair each file with "
            "itself. Fix: pass the labels folder, or the rule of the label files' names, e.g. "
            "match='{case}_seg' for case1.nii.gz beside case1_seg.nii.gz."
        )
    files = _image_files(images)
    stems = {case for case, _ in files}
    if same:  # the label files of the cases are not cases
        taken = {str(Path(c).parent / match.format(case=Path(c).name)) for c in stems}
        files = [(c, p) for c, p in files if str(Path(c).parent / Path(c).name) not in taken]
    if not files:
        raise InvalidParameterError(f"no image files in {str(images)!r}; nothing to measure.")
    pairs, missing = [], []
    for case, image in files:
        rel = Path(case)
        base = labels / rel.parent / match.format(case=rel.name)
        found = [base.with_name(base.name + s) for s in _LABEL_SUFFIXES]
        found = [p for p in found if p.is_file()]
        if len(found) > 1:
            raise InvalidParameterError(
                f"case {case!r} has {len(found)} label files ({', '.join(p.name for p in found)} "
                f"in {str(base.parent)!r}); keep one."
            )
        if not found:
            missing.append(f"{case} (looked for {base.name}.nii.gz/.nii/.dcm)")
            continue
        pairs.append((case, image, found[0]))
    if missing:
        shown = "; ".join(missing[:5]) + (
            f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise InvalidParameterError(
            f"{len(missing)} image(s) in {str(images)!r} have no label file in {str(labels)!r} by "
            f"the rule match={match!r}: {shown}. Nothing was written. Fix: pass the right "
            "labels folder or match= (e.g. '{case}_seg'), or move those images out."
        )
    return pairs


def _stage(pairs, folder: Path) -> list[Input]:
    """One folder of links per case under ``folder`` (a new, private folder): the engine's
    inputs. A case's folder links ``image<ext>``, ``labels<ext>`` and the label file's names
    (``labels.json``, ``.ctbl``, ``.txt``, ``.label``) to the user's files."""
    inputs = []
    for case, image, labels in pairs:
        here = folder / case
        here.mkdir(parents=True)
        stem, suffix = _split(labels.name, _LABEL_SUFFIXES)
        wanted = {"image" + _split(image.name, _image_suffixes())[1]: image}
        wanted["labels" + suffix] = labels
        for names in _NAME_SUFFIXES:
            side = labels.with_name(stem + names)
            if side.is_file():
                wanted["labels" + names] = side
        for name, target in wanted.items():
            os.symlink(target.absolute(), here / name)
        inputs.append(Input(key=case, path=here, kind="label_pair"))
    return inputs


def _measure(payload, tasks: list[tuple]) -> list[dict]:
    """The engine's worker: label_stats of each case (module-level: it pickles)."""
    from m1vision.io import read_any
    from m1vision.labels._files import read_labels
    from m1vision.labels._stats import label_stats

    del payload
    results = []
    for _key, src, _kind, _out in tasks:
        start = time.perf_counter()
        links = {p.name: p for p in Path(src).iterdir() if p.is_symlink()}
        image_path = next(Path(os.readlink(p)) for n, p in links.items() if n.startswith("image."))
        labels_path = next(
            Path(os.readlink(links[n]))
            for n in ("labels" + s for s in _LABEL_SUFFIXES)
            if n in links
        )
        try:
            image = read_any(image_path)
            labels = read_labels(labels_path, like=image)
            rows = label_stats(labels, image).rows
            results.append(
                {
                    "status": "ok",
                    "seconds": time.perf_counter() - start,
                    "error": None,
                    "image": str(image_path),
                    "labels": str(labels_path),
                    "rows": rows,
                }
            )
        except Exception as exc:  # one bad case fails alone, with its message
            results.append(
                {
                    "status": "failed",
                    "seconds": time.perf_counter() - start,
                    "error": f"{type(exc).__name__}: {exc}",
                    "image": str(image_path),
                    "labels": str(labels_path),
                }
            )
    return results


class LabelStatsJob(Job):
    """:func:`label_stats` of each image/label pair; one CSV of all rows at the end."""

    schema = "m1vision.label_stats_folder"
    item_type = LabelStatsItem
    name = "label stats"

    def __init__(self, csv_path: Path, *, overwrite: bool):
        self.csv_path = csv_path
        self.overwrite = overwrite
        self.table = None

    def config(self) -> dict:
        from m1vision.labels._stats import PERCENTILES, STATS_COLUMNS

        return {"columns": list(STATS_COLUMNS), "percentiles": list(PERCENTILES)}

    def output_path(self, inp, out_dir):
        return None  # the rows live in the manifest; finish() writes the one CSV

    def worker(self):
        return _measure, None

    def finish(self, report) -> None:
        from m1vision.labels._stats import STATS_COLUMNS
        from m1vision.labels._table import LabelTable

        rows = [
            {"case": item.key, **row}
            for item in report.items
            if item.status != "failed"
            for row in item.rows
        ]
        self.table = LabelTable(rows, schema=FOLDER_STATS_SCHEMA, columns=("case", *STATS_COLUMNS))
        self.table.to_csv(self.csv_path, overwrite=True)


def stats_folder(
    images,
    labels,
    out,
    *,
    match: str = "{case}",
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
):
    """:func:`~m1vision.labels.label_stats` of every image/label pair of two folders, one CSV.

    The pairs are matched by name (:func:`match_pairs`: ``images/a.nii.gz`` with
    ``labels/a.nii.gz``, or with ``match="{case}_seg"`` ``a_seg.nii.gz``; label files are
    NIfTI, with their sidecar or colour table, or DICOM SEG placed on the image's grid).
    Each case is one input of the batch engine (:mod:`m1vision.batch`), so a second run
    measures only the cases whose image, label file or names changed (by content; reason
    ``"input changed"``) and the new ones: resume is never stale. A case whose grids do not
    match (or that cannot be read) fails alone, with its error in the report.

    Parameters
    ----------
    images, labels : path
        The folder of images (NIfTI volumes, or any file :func:`m1vision.io.read_any`
        reads) and the folder of label maps (may be ``images`` with a ``match`` other than
        ``"{case}"``).
    out : path
        The CSV to write (atomically): the columns of ``label_stats`` after a ``case``
        column (the case name), first line ``# m1vision.label_stats_folder version 1``
        (:meth:`LabelTable.read_csv` reads it back). Beside it the engine keeps
        ``<out name>.m1vision-manifest.json`` and its reports ``batch_report-<UTC>.json``.
    match : str, keyword-only
        The label file's name with ``{case}`` for the image's (default ``"{case}"``).
    workers : int, optional, keyword-only
        Threads to measure cases with (default: the engine's executor, one worker per core).
    progress : bool, keyword-only
        Show the progress bar.
    overwrite : bool, keyword-only
        Replace a CSV at ``out`` that no manifest of this job names, and measure every case.

    Returns
    -------
    BatchReport
        One item per case (``rows``, ``image``, ``labels``); ``report.table`` is the
        :class:`LabelTable` written, ``report.csv`` its path.

    Raises
    ------
    OutputExistsError
        ``out`` exists and was not written by this job (its manifest is absent): nothing is
        written; pass ``overwrite=True`` or another path.
    ImageWriteError
        ``out``'s folder is a file, sits under a file or cannot be written in.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision.io import MedicalImage, write_nifti
    >>> from m1vision.cohort import stats_folder
    >>> from m1vision.labels import write_labels
    >>> from m1vision.synthetic import ct_phantom, ct_phantom_labels
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> labels = ct_phantom_labels((8, 32, 32))
    >>> ct = MedicalImage(ct_phantom((8, 32, 32)), labels.spacing, metadata=labels.metadata)
    >>> _ = write_nifti(root / "images" / "a.nii.gz", ct)
    >>> _ = write_labels(root / "labels" / "a.nii.gz", labels)
    >>> report = stats_folder(root / "images", root / "labels", root / "stats.csv",
    ...                       progress=False)
    >>> report.table.rows[0]["case"], report.table.rows[0]["name"]
    ('a', 'lung_right')
    >>> repr(stats_folder(root / "images", root / "labels", root / "stats.csv",
    ...                   progress=False)).split(" in ")[0]
    'BatchReport: 0 ok, 1 skipped, 0 failed'
    """
    from m1vision._atomic import check_out_folder
    from m1vision._checks import check_bool, check_int

    progress = check_bool(progress, name="progress")
    overwrite = check_bool(overwrite, name="overwrite")
    if workers is not None:
        workers = check_int(workers, name="workers", minimum=1)
    out = Path(out).absolute()
    if out.suffix.lower() != ".csv":
        raise InvalidParameterError(f"out must be a .csv file path, got {str(out)!r}.")
    check_out_folder(out.parent, name="the folder of out")
    pairs = match_pairs(images, labels, match=match)
    manifest = out.with_name(f"{out.name}.{MANIFEST_NAME}")
    if out.exists() and not manifest.exists() and not overwrite:
        raise OutputExistsError(
            f"{str(out)!r} exists and no {manifest.name} beside it says this job wrote it. "
            "Nothing was written. Pass overwrite=True to replace it, or choose another path."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    # Each run links its own pairs in a private folder: the engine knows an input by its
    # key and its files' content, not by this folder's path, and no other run can relink
    # them while this one reads.
    staging = Path(tempfile.mkdtemp(prefix="m1vision-pairs-"))
    job = LabelStatsJob(out, overwrite=overwrite)
    executor = None if workers is None else ThreadPoolExecutor(max_workers=workers)
    try:
        inputs = _stage(pairs, staging)
        report = run_batch(
            job,
            [inp.path for inp in inputs],
            out.parent,
            executor=executor,
            overwrite=overwrite,
            progress_bar=progress,
            manifest_path=manifest,
            collected=inputs,
        )
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
        shutil.rmtree(staging, ignore_errors=True)  # the links only, never what they point to
    report.table, report.csv = job.table, out
    return report
