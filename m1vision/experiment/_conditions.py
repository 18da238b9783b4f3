"""The conditions of a run that a record keeps: the seed, the environment, the git commit."""

from __future__ import annotations

import random
import subprocess
import sys
from importlib import metadata
from typing import Any

import numpy as np

from m1vision.errors import InvalidTypeError

_PACKAGES = (
    "numpy",
    "opencv-python",
    "opencv-python-headless",
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-metal",
    "keras",
    "pydicom",
    "nibabel",
    "m1vision",
)


# ------------------------------------------------------------------------------ seeding
def set_seed(seed: int, *, tensorflow: bool | None = None) -> None:
    """Seed Python's ``random``, NumPy's global generator and, where used, TensorFlow.

    Parameters
    ----------
    seed : int
        A non-negative integer.
    tensorflow : bool, optional
        ``True`` imports TensorFlow and seeds it (``keras.utils.set_random_seed``) and turns on
        op determinism (``tf.config.experimental.enable_op_determinism``: deterministic
        kernels, slower on some ops). ``None`` (default) does so only if TensorFlow is
        imported already, so seeding stays cheap for OpenCV-only work. ``False`` never does.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision.experiment import set_seed
    >>> set_seed(7); a = np.random.rand()
    >>> set_seed(7); a == np.random.rand()
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidTypeError(f"seed must be a non-negative integer, got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global generator is what users' code uses
    if tensorflow or (tensorflow is None and "tensorflow" in sys.modules):
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()


# ------------------------------------------------------------------------------ environment
def environment() -> dict:
    """What the record keeps of the environment: platform, versions, BLAS, OpenCV threads."""
    import cv2

    from m1vision import _platform

    facts = _platform.probe()
    env: dict[str, Any] = {
        "system": facts["system"],
        "machine": facts["machine"],
        "python": facts["python_version"],
        "apple_silicon": facts["apple_silicon"],
        "rosetta": facts["translated"],
        "opencv_threads": cv2.getNumThreads(),
    }
    for name in _PACKAGES:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        config = np.show_config(mode="dicts")
        env["blas"] = config["Build Dependencies"]["blas"]["name"]
    except Exception:  # a NumPy without the dict form: the BLAS is then unknown
        env["blas"] = "unknown"
    return env


def _git_commit() -> dict | None:
    from m1vision._resources import source_root

    root = source_root()
    if root is None:  # installed from a wheel: no checkout, no commit
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}
