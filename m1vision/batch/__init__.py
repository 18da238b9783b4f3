"""The batch engine: every batch job of m1vision goes through one flow.

    collect inputs -> plan outputs -> decide what is done -> execute on an executor -> report

:meth:`m1vision.pipeline.Pipeline.run` is a :class:`Job` run by :func:`run`; prediction and
volume runs are other jobs of the same engine. Where things are:

==============  ===============================================================================
``_inputs``     collecting: :class:`Input` (the input key), :class:`InputKind`, the kinds of a job
``_resume``     **where resume is decided**: the manifest, identity records, :func:`decide`
``_columns``    the manifest's records as parallel lists (its version 3 layout)
``_engine``     the flow: :class:`Job`, :func:`plan`, :func:`run` (:func:`progress` is
                :mod:`m1vision._progress`'s)
``_executors``  the default executor (a warm process pool or threads, by the cores and the
                inputs: :func:`default_executor`, :func:`shutdown_workers`; the cores are
                :func:`available_cores` of :mod:`m1vision._checks`), :func:`executor_name`
``_report``     **where the batch report is made and written**: :class:`BatchItem`,
                :class:`BatchReport`
==============  ===============================================================================

The input key
-------------
An input is named by one key everywhere (reports, manifests, prediction files): its path
relative to the folder given, with its extension and ``/`` separators (``"sub/a.nii.gz"``);
a file named directly is keyed by its name, a folder that is one input by its folder name.

Resume that is never stale
--------------------------
Beside the outputs the engine keeps a manifest, ``m1vision-manifest.json`` (written
atomically: before the first output, then at least every second and at the end; the format
is in :class:`Manifest`). An output is reused (status ``"skipped"``, reason ``"unchanged"``)
only when the manifest says the **same job** (its fingerprint: :meth:`Job.fingerprint`) made
it from an input of the **same content** (SHA-256 of the file, or of a series folder's file
names and bytes: the one rule of :mod:`m1vision._hashing`) and the output is **still the
file written** (size and SHA-256). Hashes are reused while a file's size, mtime, ctime, inode
and device match, as git's index does; stats too recent to trust are hashed again. The
policy, and why:

* another job (another pipeline, other parameters, another model) into a folder holding a
  job's results: :class:`~m1vision.errors.JobMismatchError` **before anything is written**,
  naming what differs; the fix is ``overwrite=True`` (recompute all, a new manifest) or
  another folder. Recomputing silently would replace results the user may want to keep;
  skipping would hand back the other job's results.
* a changed input, same job: recomputed, reason ``"input changed"`` (the old output is
  this job's and stale: nothing to keep). An output gone, cut short or edited: ``"output
  missing"``, ``"output truncated"``, ``"output changed"``.
* an output the manifest does not record (a run killed before its manifest was saved):
  recomputed, reason ``"interrupted"``; an input that failed last time: ``"failed before"``;
  a record of a version 1 manifest (size and mtime only): ``"older manifest"``.
* outputs exist but no manifest (an older m1vision, files of the user):
  :class:`~m1vision.errors.OutputExistsError` before anything is written.
* another run writing into the folder: :class:`~m1vision.errors.OutputFolderBusyError` at
  once, naming the holder's pid (an OS lock on ``.m1vision.lock``, released when a process
  dies). See ``docs/resume.md``.

The fingerprint hook
--------------------
:meth:`Job.config` returns what defines the results (JSON-safe); :meth:`Job.fingerprint`
hashes it with the job's schema. A prediction job puts the SHA-256 of the model bytes its
Predictor loaded and its preprocessing (a pipeline's dict) into its config; override
:meth:`Job.fingerprint` for anything else.

Input kinds: each job declares the ones it accepts
--------------------------------------------------
How an input is recognised, read, named and written is an :class:`InputKind`. Each job
declares the kinds it accepts, in the order they are tried (:meth:`Job.input_kinds`; the
built-in ``"image"`` kind, one file read with :func:`m1vision.io.read_any` and written with
:func:`m1vision.io.write_image`, comes last). :meth:`m1vision.pipeline.Pipeline.run` puts the
volume kinds of :func:`m1vision.volume.volume_input_kinds` first (a DICOM series folder, a 3-D
NIfTI file, a multi-frame DICOM file: one input and one ``.nii.gz`` output each); a
prediction run takes images only. Importing a module registers nothing, so what a folder
becomes depends on the job, never on what was imported first. A kind is a folder kind
(``folder=True``) or a file ``matches``, a ``read``, an ``apply`` (the job's function over what
was read), an ``output_suffix`` and a ``write``::

    InputKind(
        name="dicom_series", folder=True,
        matches=lambda folder: looks_like_a_series(folder),
        read=read_series, apply=lambda f, vol, src: apply_per_slice(f, vol),
        output_stem=lambda key: key, output_suffix=".nii.gz", write=write_nifti_result,
    )

Kinds of your own join every job's list with :func:`register_input_kind` (before
``"image"``); workers find a kind by name, so register it in a module that worker processes
import too.

Items and reports
-----------------
A :class:`BatchReport` holds one :class:`BatchItem` per input (key, input, output, status,
reason, seconds, error). A job whose items carry more subclasses :class:`BatchItem` with
extra fields (a prediction item adds ``top_k`` and ``probabilities``), sets
:attr:`Job.item_type`, and returns those fields from its worker; the engine keeps them in
the manifest, so a skipped item comes back with them. Every file the engine writes starts
with the one ``schema`` + ``version`` header (:func:`m1vision._atomic.versioned`).
"""

from __future__ import annotations

from m1vision._checks import available_cores
from m1vision._progress import progress
from m1vision.batch._engine import Job, plan, run
from m1vision.batch._executors import (
    PROCESS_MIN_ITEMS_PER_WORKER,
    PROCESS_MIN_WORKERS,
    default_executor,
    executor_name,
    shutdown_workers,
)
from m1vision.batch._inputs import (
    IMAGE_KIND,
    Input,
    InputKind,
    collect,
    get_input_kind,
    input_kinds,
    register_input_kind,
    unregister_input_kind,
)
from m1vision.batch._report import BatchItem, BatchReport
from m1vision.batch._resume import (
    MANIFEST_NAME,
    REASONS,
    Decision,
    Manifest,
    decide,
    file_sha256,
    input_fingerprint,
)

__all__ = [
    "IMAGE_KIND",
    "MANIFEST_NAME",
    "PROCESS_MIN_ITEMS_PER_WORKER",
    "PROCESS_MIN_WORKERS",
    "REASONS",
    "BatchItem",
    "BatchReport",
    "Decision",
    "Input",
    "InputKind",
    "Job",
    "Manifest",
    "available_cores",
    "collect",
    "decide",
    "default_executor",
    "executor_name",
    "file_sha256",
    "get_input_kind",
    "input_fingerprint",
    "input_kinds",
    "plan",
    "progress",
    "register_input_kind",
    "run",
    "shutdown_workers",
    "unregister_input_kind",
]
