"""Predictor over a volume's slices and over folders of files (internal, a mixin)."""

from __future__ import annotations

import numpy as np

from m1vision.batch import progress as _progress
from m1vision.errors import InvalidImageError
from m1vision.inference._predictor._inputs import _volume_slices
from m1vision.inference._predictor._results import Predictions


class _VolumesAndFolders:
    """Predictor methods for volumes (slice by slice) and folders (on the batch engine)."""

    def predict_volume(self, image, *, axis: int = 0, progress: bool | None = None) -> Predictions:
        """Run the 2-D model on every slice of a volume.

        Slices are taken along ``axis`` of ``image.pixels`` (0: the axial slices of m1vision's
        (Z, H, W) layout), prepared in threads (``preprocess``, resize, channels) and
        predicted in batches overlapped with the preparation, exactly as :meth:`predict`
        does for a list of 2-D images.

        Parameters
        ----------
        image : MedicalImage
            A volume: ``pixels`` of shape (Z, H, W) in modality units (e.g. from
            :func:`m1vision.io.read_nifti`).
        axis : {0, 1, 2}
            The axis to slice along.
        progress : bool, optional
            As for :meth:`predict`.

        Returns
        -------
        Predictions
            One row per slice, in order; ``inputs`` holds the slice indices along ``axis``.

        Raises
        ------
        InvalidImageError
            ``image`` is no volume (a 2-D image: use :meth:`predict`), or an empty one (a
            zero-length axis).
        InvalidParameterError
            ``axis`` is not 0, 1 or 2.

        Examples
        --------
        >>> import numpy as np, keras
        >>> from m1vision.io import MedicalImage
        >>> from m1vision.inference import Predictor
        >>> inputs = keras.Input((8, 8, 1))
        >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        >>> volume = MedicalImage(np.zeros((5, 8, 8), np.float32), spacing=(2.0, 1.0, 1.0))
        >>> result = Predictor(model, device="cpu").predict_volume(volume)
        >>> result.probabilities.shape, result.inputs
        ((5, 2), [0, 1, 2, 3, 4])
        """
        pixels = getattr(image, "pixels", None)
        if isinstance(pixels, np.ndarray) and pixels.ndim == 3 and 0 in pixels.shape:
            source = getattr(image, "source", None)
            origin = f" read from {source!r}" if source else ""
            raise InvalidImageError(
                f"predict_volume needs a volume with at least one voxel, got shape "
                f"{pixels.shape}{origin}; it holds no slice to predict. Check the file it was "
                "read from, or the crop or resampling that emptied it."
            )
        slices = _volume_slices(image, axis)
        n = len(slices)
        rows = []
        show = n > 4 * self.batch_size if progress is None else bool(progress)
        with _progress(n, show=show, desc="predict_volume") as bar:
            for _, batch, _ in self._batches(slices, record_errors=False):
                rows.append(self._run(batch))
                bar.update(len(batch))
        probabilities = np.concatenate(rows, axis=0)
        return Predictions(probabilities, self._top_k(probabilities), list(range(n)), self.labels)

    # -- folders -------------------------------------------------------------------------------

    def predict_folder(
        self, inputs, out_dir, *, overwrite: bool = False, progress: bool = True, executor=None
    ):
        """Predict every image file under ``inputs`` on the batch engine, resumably.

        The run is a job of :mod:`m1vision.batch` (one report shape, one input key, one
        manifest): chunks of ``batch_size`` inputs are read and prepared on a thread pool in
        this process, overlapped with the model's work on the previous chunk. Its
        fingerprint holds the model file's SHA-256 and the preprocessing, so resuming never
        mixes results of two models: see :mod:`m1vision.inference._folder`.

        Parameters
        ----------
        inputs : path or list of paths
            Image files and/or folders (scanned recursively).
        out_dir : path
            A folder for ``predictions.jsonl`` (a header line, then per input ``{"key",
            "input", "status", "top_k", "probabilities", "error"}``), the engine's manifest
            ``m1vision-manifest.json`` and its ``batch_report-<UTC>.json``.
        overwrite : bool
            ``False`` (default): a folder of the same job is resumed (inputs done and
            unchanged are skipped, failed or changed ones predicted again); a folder of
            another job (another model file, even with the same shapes and labels, or other
            preprocessing) raises :class:`~m1vision.errors.JobMismatchError` before anything
            is written. ``True``: predict everything anew.
        progress : bool
            Show a progress bar.
        executor : concurrent.futures.Executor, optional
            Default: a thread pool of ``1 + prefetch`` threads in this process.

        Returns
        -------
        m1vision.batch.BatchReport
            One :class:`PredictionItem` per input key (``status`` ok / skipped / failed,
            ``reason``, ``top_k``, ``probabilities``); a file that cannot be read or
            preprocessed is recorded as failed and the run goes on.

        Examples
        --------
        >>> import tempfile, pathlib, numpy as np, keras
        >>> from m1vision.inference import Predictor, read_predictions
        >>> from m1vision.io import write_image
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = write_image(folder / "in" / "a.png", np.zeros((8, 8), np.uint8))
        >>> _ = (folder / "in" / "b.png").write_bytes(b"not a png")
        >>> inputs = keras.Input((8, 8, 1))
        >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        >>> predictor = Predictor(model, device="cpu")
        >>> report = predictor.predict_folder(folder / "in", folder / "out", progress=False)
        >>> [(i.key, i.status) for i in report.items]
        [('a.png', 'ok'), ('b.png', 'failed')]
        >>> again = predictor.predict_folder(folder / "in", folder / "out", progress=False)
        >>> [(i.key, i.status) for i in again.items]
        [('a.png', 'skipped'), ('b.png', 'failed')]
        """
        from m1vision.inference._folder import predict_folder

        return predict_folder(
            self, inputs, out_dir, overwrite=overwrite, progress=progress, executor=executor
        )
