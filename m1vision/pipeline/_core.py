"""The Pipeline (internal): steps in order, its exact JSON round trip, its batch run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from m1vision._atomic import versioned
from m1vision._checks import check_path
from m1vision.errors import (
    InvalidParameterError,
    InvalidTypeError,
    PipelineConfigError,
    PipelineStepError,
)
from m1vision.pipeline._steps import _REGISTRY, Step, get_step

if TYPE_CHECKING:
    from m1vision.batch import BatchReport

#: The ``schema`` and ``version`` written by :meth:`Pipeline.to_dict`.
SCHEMA = "m1vision.pipeline"
SCHEMA_VERSION = 1

#: Output suffixes :meth:`Pipeline.run` can write (see :func:`m1vision.io.write_image`).


def _describe(data) -> str:
    if isinstance(data, np.ndarray):
        return f"an input of shape {data.shape} and dtype {data.dtype}"
    return f"an input of type {type(data).__name__} (not a numpy array)"


class Pipeline:
    """Steps applied in order: ``pipeline(image)`` is ``step_n(...step_1(image))``.

    Parameters
    ----------
    steps : iterable of Step
        Registered steps (see :func:`register_step`); may be empty (the identity).

    Raises
    ------
    TypeError
        A step is not a :class:`Step` (e.g. a plain function).
    PipelineConfigError
        A step's class is not registered (it could not be saved or sent to workers).

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.pipeline import Canny, Pipeline, Window
    >>> p = Pipeline([Window(preset="lung"), Canny(low=30, high=90)])
    >>> p
    Pipeline([
        Window(center=None, width=None, preset='lung'),
        Canny(low=30.0, high=90.0, aperture=3, l2_gradient=False),
    ])
    >>> len(p), p[1].high
    (2, 90.0)
    >>> ct = np.full((32, 32), -1000.0, np.float32); ct[8:24, 8:24] = 40.0
    >>> p(ct).dtype
    dtype('uint8')
    """

    def __init__(self, steps: Iterable[Step]):
        if isinstance(steps, Step | str | bytes | Mapping) or not isinstance(steps, Iterable):
            raise InvalidTypeError(
                "steps must be a list of steps, e.g. Pipeline([ToGray(), GaussianBlur(ksize=5)]), "
                f"got {type(steps).__name__}; to rebuild from a dict use Pipeline.from_dict."
            )
        steps = tuple(steps)
        for i, step in enumerate(steps):
            if not isinstance(step, Step):
                raise InvalidTypeError(
                    f"steps[{i}] must be an m1vision.pipeline.Step (e.g. GaussianBlur(ksize=5)), "
                    f"got {type(step).__name__}; to use your own function, write a Step "
                    "subclass and register it with @register_step(name)."
                )
            cls = type(step)
            if cls.name is None or _REGISTRY.get(cls.name) is not cls:
                raise PipelineConfigError(
                    f"steps[{i}] ({cls.__name__}) is not a registered step, so the pipeline "
                    f"could not be saved or sent to workers; decorate {cls.__name__} with "
                    "@m1vision.pipeline.register_step('a_name')."
                )
        self._steps = steps

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps, in order."""
        return self._steps

    def __len__(self) -> int:
        return len(self._steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self._steps)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Pipeline(self._steps[index])
        return self._steps[index]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Apply the steps in order; the input is not modified.

        Raises
        ------
        PipelineStepError
            A step failed; the message names the step (index, name, parameters) and the shape
            and dtype of what it received; the original exception is ``__cause__``. The
            attributes ``index``, ``step_name``, ``params``, ``shape`` and ``dtype`` hold
            the same facts.
        """
        data = image
        for index, step in enumerate(self._steps):
            try:
                data = step(data)
            except Exception as exc:
                err = PipelineStepError(
                    f"pipeline step {index} ({step.name!r}, params "
                    f"{json.dumps(step.params())}) failed on {_describe(data)}: "
                    f"{type(exc).__name__}: {exc}"
                )
                err.index, err.step_name, err.params = index, step.name, step.params()
                err.shape = tuple(data.shape) if isinstance(data, np.ndarray) else None
                err.dtype = str(data.dtype) if isinstance(data, np.ndarray) else None
                raise err from exc
        return data

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The pipeline as a JSON-safe dict (schema, version, steps with name and params).

        Examples
        --------
        >>> from m1vision.pipeline import GaussianBlur, Pipeline
        >>> Pipeline([GaussianBlur(ksize=3)]).to_dict()
        {'schema': 'm1vision.pipeline', 'version': 1, 'steps': [{'name': 'gaussian_blur', 'params': {'ksize': 3, 'sigma': 0.0}}]}
        """  # noqa: E501
        steps = [{"name": step.name, "params": step.params()} for step in self._steps]
        return versioned(SCHEMA, SCHEMA_VERSION, {"steps": steps})

    def to_json(self) -> str:
        """The pipeline as JSON text, one step per line; equal pipelines give identical text.

        ``Pipeline.from_json(p.to_json()) == p`` and ``.to_json()`` of the result is the same
        text: floats are written in their shortest exact form, pairs (tuples) as lists and
        turned back into tuples when rebuilt.

        Examples
        --------
        >>> from m1vision.pipeline import Clahe, Pipeline, ToGray
        >>> print(Pipeline([ToGray(), Clahe(tile_grid=(4, 4))]).to_json())
        {
          "schema": "m1vision.pipeline",
          "version": 1,
          "steps": [
            {"name": "to_gray", "params": {}},
            {"name": "clahe", "params": {"clip_limit": 2.0, "tile_grid": [4, 4]}}
          ]
        }
        """
        d = self.to_dict()

        def dumps(obj) -> str:
            return json.dumps(obj, allow_nan=False, ensure_ascii=False)

        lines = ["{", f'  "schema": {dumps(d["schema"])},', f'  "version": {dumps(d["version"])},']
        if d["steps"]:
            steps = ",\n".join(f"    {dumps(step)}" for step in d["steps"])
            lines += ['  "steps": [', steps, "  ]"]
        else:
            lines.append('  "steps": []')
        return "\n".join([*lines, "}"])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pipeline:
        """Rebuild a pipeline from :meth:`to_dict`'s form.

        Raises
        ------
        PipelineConfigError
            Wrong schema or version, an unknown step or parameter, or a bad value (naming the
            step's index, name and parameters; the step's own error is the ``__cause__``).

        Examples
        --------
        >>> from m1vision.pipeline import Pipeline
        >>> Pipeline.from_dict({"schema": "m1vision.pipeline", "version": 1,
        ...                     "steps": [{"name": "clahe", "params": {"tile_grid": [4, 4]}}]})
        Pipeline([Clahe(clip_limit=2.0, tile_grid=(4, 4))])
        """
        if not isinstance(data, Mapping):
            hint = (
                " (a list of steps: wrap it as {'schema': 'm1vision.pipeline', 'version': 1, "
                "'steps': [...]})"
                if isinstance(data, list)
                else ""
            )
            raise PipelineConfigError(
                f"a pipeline description must be a dict with keys schema, version and steps, "
                f"got {type(data).__name__}{hint}."
            )
        unknown = sorted(set(data) - {"schema", "version", "steps"})
        if unknown:
            raise PipelineConfigError(
                f"unknown key(s) {unknown} in the pipeline description; expected schema, "
                "version and steps."
            )
        if data.get("schema") != SCHEMA:
            raise PipelineConfigError(
                f"not a pipeline description: schema is {data.get('schema')!r}, expected "
                f"{SCHEMA!r} (as written by Pipeline.to_dict / to_json)."
            )
        version = data.get("version")
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            fix = " Upgrade m1vision to read it." if newer else ""
            raise PipelineConfigError(
                f"unsupported pipeline schema version {version!r}; this m1vision reads "
                f"version {SCHEMA_VERSION}.{fix}"
            )
        steps = data.get("steps")
        if not isinstance(steps, list | tuple):
            raise PipelineConfigError(
                f"'steps' must be a list of {{'name': ..., 'params': {{...}}}}, got {steps!r}."
            )
        return cls([_step_from_dict(i, entry) for i, entry in enumerate(steps)])

    @classmethod
    def from_json(cls, text: str) -> Pipeline:
        """Rebuild a pipeline from :meth:`to_json`'s text (see :meth:`from_dict`).

        Raises
        ------
        PipelineConfigError
            Text that is not JSON, or JSON that is no valid pipeline.
        """
        if not isinstance(text, str | bytes | bytearray):
            raise InvalidTypeError(
                f"text must be a str of JSON, got {type(text).__name__}; "
                "for a file use Pipeline.load(path)."
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PipelineConfigError(f"the pipeline text is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (refusing to overwrite unless asked)."""
        from m1vision._atomic import atomic_write_text

        return atomic_write_text(path, self.to_json() + "\n", overwrite=overwrite)

    @classmethod
    def load(cls, path) -> Pipeline:
        """Read a pipeline written by :meth:`save` (or any :meth:`to_json` text).

        A missing, unreadable or non-UTF-8 file raises ``PipelineConfigError`` naming it.
        """
        path = Path(check_path(path))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PipelineConfigError(
                f"cannot read the pipeline file {str(path)!r}: {reason}. Expected a JSON file "
                "written by Pipeline.save. Fix: check the path, or write one with "
                "pipeline.save(path)."
            ) from None
        try:
            return cls.from_json(text)
        except PipelineConfigError as exc:
            raise PipelineConfigError(f"{str(path)!r}: {exc}") from exc

    def __eq__(self, other):
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.to_json())

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self._steps)
        one_line = f"Pipeline([{inner}])"
        if len(one_line) <= 88:
            return one_line
        body = "".join(f"    {s!r},\n" for s in self._steps)
        return f"Pipeline([\n{body}])"

    # -- batch runs ---------------------------------------------------------------------------

    def output_kind(self) -> str | None:
        """What the pipeline returns: "integer", "float32", or None (its input's dtype)."""
        kind = None
        for step in self._steps:
            kind = step.output_kind or kind
        return kind

    def apply_volume(self, image, *, axis: int = 0, workers: int | None = None):
        """Apply the pipeline to every slice of a (Z, H, W) volume; keep its geometry.

        :func:`m1vision.volume.apply_volume` with this pipeline: slices along ``axis`` (0
        axial, 1 coronal, 2 sagittal) in parallel threads, stacked back with the volume's
        spacing and affine (``metadata["affine"]``), ready for
        :func:`m1vision.io.write_nifti`.

        Examples
        --------
        >>> from m1vision.pipeline import Canny, Pipeline, Window
        >>> from m1vision.synthetic import ct_phantom
        >>> edges = Pipeline([Window(center=40, width=400), Canny()]).apply_volume(
        ...     ct_phantom((3, 32, 32)))
        >>> edges.shape, edges.pixels.dtype.name
        ((3, 32, 32), 'uint8')
        """
        from m1vision.volume import apply_volume

        return apply_volume(self, image, axis=axis, workers=workers)

    def run(
        self,
        inputs,
        out_dir,
        *,
        executor: Executor | None = None,
        progress: bool = True,
        overwrite: bool = False,
        suffix: str = ".png",
        chunksize: int | None = None,
    ) -> BatchReport:
        """Apply the pipeline to every input image and write the results into ``out_dir``.

        The run goes through the batch engine (:mod:`m1vision.batch`): resume is decided by
        the manifest ``m1vision-manifest.json`` that it keeps in ``out_dir``.

        Parameters
        ----------
        inputs : path or list of paths
            Files and folders (see :func:`collect_inputs`: folders are scanned recursively, in
            sorted order, for the suffixes in :data:`m1vision.io.IMAGE_EXTENSIONS`, including
            ``.nii.gz`` and ``.dcm``; a file named directly may have any name). Each file is
            read with :func:`m1vision.io.read_any` and its ``pixels`` go through the pipeline.
            Volumes are one input each, through the input kinds :mod:`m1vision.volume`
            registers: a DICOM series folder (found by content, extensionless files too; it is
            not entered), a 3-D NIfTI file and a monochrome multi-frame DICOM file are run
            slice by slice (:func:`m1vision.volume.apply_volume`) and written as one
            ``.nii.gz`` with the scan's affine (:func:`m1vision.io.write_nifti`; ``suffix``
            does not apply to them). A volume of one slice is taken as that slice; any other
            3-D input fails its own item with an error that says how to convert it.
        out_dir : path
            Output folder: input ``folder/sub/a.dcm`` goes to ``out_dir/sub/a`` + ``suffix``;
            a file named directly to ``out_dir/<its name>`` + ``suffix``. Two inputs that
            would go to the same output (``a.png`` and ``a.tif``; compared ignoring case, as
            macOS does) are an error before anything runs. Must not be an input folder.
        executor : concurrent.futures.Executor, optional
            Where the work runs. Default (:func:`m1vision.batch.default_executor`): one worker
            per core, in processes for batches of at least 4 inputs per worker on 2 or more
            cores (each image then has a GIL of its own: it scales to 16 cores), else threads
            (OpenCV releases the GIL). Any executor works: a ``ProcessPoolExecutor``, or a Dask
            cluster's ``client.get_executor()`` (e.g. ``Client("tcp://scheduler:8786")`` for a
            remote scheduler). Each task is a module-level function given the pipeline as its
            dict, so it pickles; the workers must see the same files at the same (absolute)
            paths as this process, i.e. a shared filesystem, and have m1vision (and any module
            defining custom steps) installed. The report's ``executor`` says which ran.
        progress : bool
            Show a ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal).
        overwrite : bool
            Recompute every input and replace its output, even in a folder holding another
            pipeline's results. Without it, an output is reused only when the manifest says
            this same pipeline (and suffix) made it from the same input (status
            ``"skipped"``, reason ``"unchanged"``); a changed input is recomputed (reason
            ``"input changed"``), an interrupted run resumes, and a folder holding another
            job's results raises :class:`~m1vision.errors.JobMismatchError` before anything
            is written.
        suffix : str
            Appended to each output's name; it must end in an extension
            :func:`m1vision.io.write_image` writes (.png, .tif/.tiff, .jpg/.jpeg, .bmp),
            e.g. ``".png"`` or ``"_edges.png"``. A pipeline ending in ``float32``
            (:class:`Normalize`) needs ``.tif``/``.tiff``.
        chunksize : int, optional
            Files per task. Default: enough to give each worker about 16 tasks, at most 16
            files each; a few tens amortise a remote cluster's overhead on small images.

        Returns
        -------
        BatchReport
            One :class:`~m1vision.batch.BatchItem` per input (key, input, output, status
            "ok"/"skipped"/"failed", reason, seconds, error as "TypeName: message"), also
            written atomically as JSON into ``out_dir`` as ``batch_report-<UTC time>.json``
            (never replacing an earlier report; see :attr:`BatchReport.path`).

        Raises
        ------
        JobMismatchError
            ``out_dir`` holds another job's results (see ``overwrite``); nothing is written.
        OutputExistsError
            Outputs this run would write exist but no manifest says who made them.

        Notes
        -----
        A file that fails (unreadable, corrupt, a failing step, an unwritable result) is
        recorded and the batch goes on. Outputs are written atomically with
        :func:`m1vision.io.write_image`: a crash leaves no partial file. During the run
        OpenCV's own thread pool is set to one thread with ``cv2.setNumThreads(1)``, in this
        process (restored afterwards; the setting is process-wide) and in worker processes
        (left so: the executor already parallelises over files), so that the files in
        parallel do not oversubscribe the cores.

        Interrupting the run (Ctrl-C, the notebook's stop button, a killed process) keeps
        the outputs finished so far; the next run reuses those the manifest records and
        recomputes the rest.

        Examples
        --------
        >>> import pathlib, tempfile, numpy as np
        >>> from m1vision.io import write_image
        >>> from m1vision.pipeline import Canny, GaussianBlur, Pipeline
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> for k in range(3):
        ...     img = np.zeros((64, 64), np.uint8); img[10 + k:40, 10:40] = 200
        ...     _ = write_image(folder / "in" / f"img{k}.png", img)
        >>> p = Pipeline([GaussianBlur(ksize=3), Canny(low=50, high=150)])
        >>> report = p.run(folder / "in", folder / "out", progress=False)
        >>> report.counts
        {'ok': 3, 'skipped': 0, 'failed': 0}
        >>> sorted(q.name for q in (folder / "out").glob("*.png"))
        ['img0.png', 'img1.png', 'img2.png']
        >>> again = p.run(folder / "in", folder / "out", progress=False)
        >>> again.counts["skipped"], again.items[0].reason
        (3, 'unchanged')
        """
        from m1vision import batch
        from m1vision.pipeline._run import PipelineJob

        job, out_dir = PipelineJob.plan(self, inputs, out_dir, suffix=suffix)
        return batch.run(
            job,
            inputs,
            out_dir,
            executor=executor,
            overwrite=overwrite,
            progress_bar=progress,
            chunksize=chunksize,
        )

    def _last_converting_step(self) -> str:
        for step in reversed(self._steps):
            if step.output_kind is not None:
                return repr(step)
        return "none"  # pragma: no cover - only called when some step converts


def _step_from_dict(index: int, entry) -> Step:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise PipelineConfigError(
            f"step {index} must be a dict {{'name': str, 'params': {{...}}}}, got {entry!r}."
        )
    extra = sorted(set(entry) - {"name", "params"})
    if extra:
        raise PipelineConfigError(
            f"step {index} ({entry['name']!r}) has unknown key(s) {extra}; expected name and "
            "params."
        )
    name = entry["name"]
    params = entry.get("params", {})
    cls = get_step(name)
    if not isinstance(params, Mapping):
        raise PipelineConfigError(
            f"step {index} ({name!r}): params must be a dict, got {params!r}."
        )
    accepted = cls.param_names()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise PipelineConfigError(
            f"step {index} ({name!r}) got unknown parameter(s) {unknown}; it accepts "
            f"{list(accepted) if accepted else 'no parameters'}."
        )
    try:
        return cls(**params)
    except (InvalidParameterError, TypeError, ValueError) as exc:
        raise PipelineConfigError(
            f"step {index} ({name!r}) with params {dict(params)!r} is invalid: {exc}"
        ) from exc
