"""The environment doctor: does the stack run natively on this machine, and correctly?

    python -m m1vision doctor [--json] [--no-tensorflow] [--out FILE]

:func:`get_env_info` runs a series of independent probes and returns a JSON-ready dict
with a ``checks`` list (each ``{"name", "status", "value", "detail", "fix"}``, status one
of ``ok``, ``warn``, ``fail``, ``unknown``) and the raw data each probe collected. A probe
that raises does not stop the others: its check becomes ``unknown`` with the error (as in
MONAI's ``print_config``). The checks:

=========================  ===================================================================
check                      what it looks at
=========================  ===================================================================
``os``                     the operating system (macOS 12+ for TensorFlow's arm64 wheels)
``apple_silicon``          the hardware (``hw.optional.arm64``, true even under Rosetta)
``python_architecture``    the Python process and its executable's slices (binarch)
``rosetta``                ``sysctl.proc_translated``: is this process translated?
``python_version``         3.11 or 3.12
``numpy``, ``opencv``,     version, location, and the architectures of every compiled file of
``tensorflow``,            the distribution (``.so``/``.dylib``); TensorFlow's version against
``tensorflow_metal``,      the known-good pair (``m1vision._platform.KNOWN_GOOD_INSTALL``)
``keras``
``numpy_blas``             BLAS/LAPACK from NumPy's own build config (Accelerate, OpenBLAS, MKL)
``opencv_build``           OpenCV's CPU baseline and dispatched SIMD, parallel framework, threads
``dicom_codecs``           which DICOM transfer syntaxes decode here (JPEG, JPEG-LS, JPEG 2000,
                           HTJ2K, RLE, Deflated, uncompressed) and with which pydicom plugins
``tensorflow_import``      (TensorFlow on) the import itself, devices
``tensorflow_gpu``         (TensorFlow on) Metal plugin loaded and a GPU listed
``tensorflow_selftest``    (TensorFlow on) conv + dense numerics on the CPU and every GPU
``lock_drift``             installed versions against this platform's lock in ``locks/``
``jupyter_widgets``,       the Jupyter server's front ends (labextensions) of ipywidgets and
``jupyter_ipyevents``      ipyevents: present, and of the versions the kernel's packages need
=========================  ===================================================================

The platform decision itself (native arm64, Rosetta, Intel Mac, Linux) comes from
:mod:`m1vision._platform`, the same code set-up runs. The user's home folder is shown as
``~`` in every path. TensorFlow, NumPy and OpenCV are imported inside the probes only, so
``--no-tensorflow`` answers in about a second and a broken NumPy cannot stop the report.

Where things are (a package; the public names above are all importable from
``m1vision.doctor``):

=================  ============================================================================
``_common``        statuses, the fixes, the check record, home masking (the known-good
                   pins are :mod:`m1vision._platform`'s)
``_rules``         pure rules: facts -> checks (platform, architectures, versions, BLAS, OpenCV)
``_probes``        the probes that collect facts, and :func:`get_env_info`
``_selftest``      :func:`tensorflow_selftest`: TensorFlow's entry to :mod:`m1vision.numerics`
``_codecs``        the DICOM transfer syntaxes this environment decodes (:func:`codecs_check`)
``_backends``      Keras backends and their devices (TF + Metal, torch CUDA/MPS, JAX), each
                   self-tested; the GPU path to use
``_locks``         lock drift: :func:`installed_versus_lock`, :func:`read_lock`
``_jupyter``       the Jupyter server's widget front ends against the kernel's widget packages
``_binarch``       compiled-file architectures (public as :mod:`m1vision.binarch`)
``_report``        :func:`print_env_info` and the command line
=================  ============================================================================
"""

from __future__ import annotations

from m1vision.doctor._common import SELFTEST_TOLERANCE, STATUSES, mask_home
from m1vision.doctor._locks import installed_versus_lock, read_lock
from m1vision.doctor._probes import get_env_info
from m1vision.doctor._report import print_env_info, run_cli
from m1vision.doctor._rules import (
    architecture_check,
    blas_check,
    gpu_check,
    opencv_build_check,
    parse_opencv_build,
    platform_checks,
    version_check,
)
from m1vision.doctor._selftest import tensorflow_selftest

__all__ = [
    "SELFTEST_TOLERANCE",
    "STATUSES",
    "architecture_check",
    "blas_check",
    "get_env_info",
    "gpu_check",
    "installed_versus_lock",
    "mask_home",
    "opencv_build_check",
    "parse_opencv_build",
    "platform_checks",
    "print_env_info",
    "read_lock",
    "run_cli",
    "tensorflow_selftest",
    "version_check",
]
