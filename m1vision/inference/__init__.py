"""Inference on any Keras 3 backend: pick a device, load a model safely, predict batches fast.

============================  ===============================================================
name                          what it does
============================  ===============================================================
:func:`select_device`         a GPU of the Keras backend (Metal/CUDA on TensorFlow, CUDA/MPS
                              on torch, CUDA on JAX) if it passes the numerics self-test
                              (:mod:`m1vision.numerics`), else the CPU -- with the reason
:func:`load_model`            a ``.keras`` file (safe mode, any backend) or a SavedModel
                              folder (TensorFlow only)
:func:`model_input_spec`      ``((None, H, W, C), dtype)`` of a loaded model
:class:`Predictor`            OpenCV preprocessing in threads, overlapped with one compiled
                              (TensorFlow, JAX) or no-grad (torch) inference call;
                              ``.predict``, ``.predict_volume`` and resumable ``.predict_folder``
:class:`Segmenter`            a segmentation model over volumes: per slice or by sliding
                              window with Gaussian blending, TTA, the model card's spacing
                              and intensity, label maps on the scan's grid;
                              ``.segment`` and resumable ``.segment_folder``
:class:`Predictions`          probabilities ``(N, C)``, top-k ``(label, score)``, the inputs
:class:`PredictionItem`       a batch-report item of ``.predict_folder``: + top-k, probabilities
:func:`read_predictions`      the records of a ``.predict_folder`` run (its predictions.jsonl)
============================  ===============================================================

The backend is Keras': ``KERAS_BACKEND=tensorflow`` (the default), ``torch`` or ``jax``, set
before Keras is first imported. Keras and the backend are imported on first use inside these
functions, never by ``import m1vision`` (TensorFlow takes seconds to import). What differs
between backends lives in one private module, ``m1vision.inference._backend``.

Design choices
--------------
* **SavedModel folders** load with ``tf.saved_model.load`` and are wrapped in a small
  :class:`SavedModelClassifier` (a callable exposing ``input_shape``, ``input_dtype`` and
  ``output_shape``), not ``keras.layers.TFSMLayer``: the layer hides the input spec and needs
  the endpoint name, while the wrapper reads both from the ``serving_default`` signature that
  Keras 3's ``model.export(dir)`` (and TF 2 ``tf.saved_model.save``) write. Other backends
  refuse them with a :class:`~m1vision.errors.ModelLoadError` saying to re-save as ``.keras``.
* **One inference call per backend**: on TensorFlow, :class:`Predictor` traces the model once
  in a ``tf.function`` with the input signature ``TensorSpec([None, H, W, C])``: the batch
  dimension stays ``None``, so the last, shorter batch and calls with any number of images
  reuse the same graph (no retracing, no padding). XLA (``jit_compile``) is not used: on the
  CPU it was ~10x slower for MobileNetV2 here, and Metal does not support it. On torch the
  model runs under ``torch.no_grad()`` with its variables and each batch on the chosen device
  (CUDA, MPS, CPU). On JAX, ``jax.jit`` of ``model.stateless_call``.
* **Overlap**: reading (:func:`m1vision.io.read_any`) and preprocessing run in a thread pool,
  up to ``prefetch`` batches ahead of the batch the backend is computing (OpenCV and the
  backends release the GIL).
* **Folder runs** go through the one batch engine (:mod:`m1vision.batch`): one report shape
  (a :class:`PredictionItem` only adds top-k and probabilities), one input key, one manifest;
  the job's fingerprint is the model file's hash plus the preprocessing, so a resumed run never
  appends a retrained model's predictions to an older model's.

Where things are
----------------
A package; every public name is importable from ``m1vision.inference``:

===================  ============================================================================
``_predictor``       :class:`Predictor`, one class: model, outputs and device checked, the
                     compiled call, batches to probabilities, volumes and folders; it inherits
                     how it feeds its model from ``_predictor_feed`` (where a call prepares:
                     threads or worker processes, CPU or device; the batches; the workers it
                     keeps between calls) and its configuration as data (``to_config`` /
                     ``from_config``) from ``_predictor_config``
``_prepare``         reading and preparing inputs for the model, in threads or in worker
                     processes into shared-memory batches
``_device_prep``     ``prepare_on="device"``: a pipeline split into a CPU part (decode) and
                     a device part (window, normalize, resize, channels, cast as keras.ops
                     on the model's device, equal to OpenCV's within a stated tolerance);
                     functions a Segmenter reuses
``_device_runner``   the decoded batches staged on the device (page-locked copies on a copy
                     stream, read ahead in a background thread), the device part and the model
``_predictions``     :class:`Predictions`, the result of a call
``_folder``          the batch engine's job for :meth:`Predictor.predict_folder`
``_device``          :func:`select_device`
``_models``          :func:`load_model`, :func:`model_input_spec`, SavedModel folders
``_backend``         what differs between Keras backends when running a model (the table of
                     backends, devices and GPUs is :mod:`m1vision._devices`)
``_segmenter``       :class:`Segmenter`: the model over a volume, per slice or by 3-D sliding
                     window; it inherits its planning from ``_segplan`` (the volume checked,
                     the model's grid, the windows, the memory they need)
``_segcard``         what a segmentation model expects, from the ``"segmentation"`` section of
                     its card (``<model>.json``), and the intensity preparation it names
``_windows``         sliding-window maths (pure NumPy): positions, padding, Gaussian weights,
                     the mirrorings of TTA
``_blend``           the model over the windows and their blending, in NumPy on the host or in
                     torch tensors on a CUDA/MPS device
``_segfolder``       the batch engine's job for :meth:`Segmenter.segment_folder`
``_clock``           ``StageClock``: seconds per stage of a call on a device (for the GPU
                     benchmarks); ``clock_of``
===================  ============================================================================
"""

from m1vision.inference._device import (
    DeviceChoice,
    DeviceUnavailableError,
    select_device,
)
from m1vision.inference._folder import PredictionItem, read_predictions
from m1vision.inference._models import SavedModelClassifier, load_model, model_input_spec
from m1vision.inference._predictions import Predictions
from m1vision.inference._predictor import Predictor
from m1vision.inference._segmenter import Segmenter

__all__ = [
    "DeviceChoice",
    "DeviceUnavailableError",
    "PredictionItem",
    "Predictions",
    "Predictor",
    "SavedModelClassifier",
    "Segmenter",
    "load_model",
    "model_input_spec",
    "read_predictions",
    "select_device",
]
