"""Where the bundled and generated data are: the data root, models, samples, the cache."""

from __future__ import annotations

import os
from pathlib import Path

from m1vision.data._catalogue import SAMPLES, SampleInfo
from m1vision.errors import (
    ImageReadError,
    InvalidParameterError,
    InvalidTypeError,
    ModelLoadError,
)


def data_root() -> Path:
    """The bundled data folder: ``models/`` (the demo model) and ``samples/``.

    Found with :mod:`importlib.resources` as the package data ``m1vision/_bundled`` (in a
    source checkout a link to the repository's ``data/`` folder; ``pip install .`` copies
    the files into the installed package). Set ``M1VISION_DATA`` to use another folder.

    Examples
    --------
    >>> from m1vision.data import data_root
    >>> (data_root() / "models" / "lesion_cnn.keras").is_file()
    True
    """
    from m1vision._resources import data_root as root

    return root()


def model_path(name: str = "lesion_cnn.keras") -> Path:
    """The path of a bundled model file: the demo model by default.

    Raises
    ------
    ModelLoadError
        No such bundled model; the message lists the bundled ones.

    Examples
    --------
    >>> from m1vision.data import model_path
    >>> model_path().name
    'lesion_cnn.keras'
    """
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"name must be the file name of a bundled model (a str), got {type(name).__name__}. "
            "Fix: pass e.g. name='lesion_cnn.keras', or load your own model by its path."
        )
    folder = data_root() / "models"
    path = folder / name
    if not path.is_file():
        known = sorted(p.name for p in folder.glob("*.keras")) if folder.is_dir() else []
        raise ModelLoadError(
            f"no bundled model {name!r} in {str(folder)!r}; bundled: {known or 'none'}. "
            "Pass the path of your own model instead."
        )
    return path


def samples_dir() -> Path:
    """The bundled ``samples`` folder (generated samples): ``data_root() / "samples"``.

    In a source checkout it is the repository's ``data/samples``; set the environment
    variable ``M1VISION_SAMPLES`` to use another folder.

    Examples
    --------
    >>> from m1vision.data import samples_dir
    >>> samples_dir().parts[-2:]
    ('data', 'samples')
    """
    override = os.environ.get("M1VISION_SAMPLES")
    if override:
        return Path(override)
    return data_root() / "samples"


def batch_dir() -> Path:
    """The folder of the demo batch run: ``samples_dir() / "batch"`` (8 16-bit PNGs).

    Examples
    --------
    >>> from m1vision.data import batch_dir
    >>> sorted(p.name for p in batch_dir().glob("*.png"))[:2]
    ['ct_small.png', 'mr_small.png']
    """
    return samples_dir() / "batch"


def cache_dir() -> Path:
    """Where generated samples are kept: ``$M1VISION_CACHE``, else ``$XDG_CACHE_HOME/m1vision``
    (``~/.cache/m1vision``). Created on first use.

    Examples
    --------
    >>> from m1vision.data import cache_dir
    >>> cache_dir().is_dir()
    True
    """
    root = os.environ.get("M1VISION_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "m1vision",
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_file(info: SampleInfo) -> Path:
    if info.origin == "pydicom":
        from pydicom.data import get_testdata_file

        found = get_testdata_file(info.file, download=False)  # never downloads
        if found is None:
            raise ImageReadError(
                info.file,
                "pydicom's test file is not installed; the pydicom wheel ships it, "
                "so reinstall pydicom (pip install --force-reinstall pydicom).",
            )
        return Path(found)
    if info.origin == "nibabel":
        import nibabel

        return Path(nibabel.__file__).parent / "tests" / "data" / info.file
    if info.origin == "scikit-image":
        import skimage

        return Path(skimage.__file__).parent / "data" / info.file
    return samples_dir() / info.file


def sample_path(name: str) -> Path:
    """The path of sample ``name`` (a key of :data:`SAMPLES`).

    Raises
    ------
    InvalidParameterError
        ``name`` is not a sample; the message lists them.
    ImageReadError
        The file is missing (for generated samples: run ``python tools/make_sample_data.py``).

    Examples
    --------
    >>> from m1vision.data import sample_path
    >>> sample_path("ct_slice").name, sample_path("phantom_png16").name
    ('CT_small.dcm', 'phantom_512_u16.png')
    """
    if not isinstance(name, str) or name not in SAMPLES:
        raise InvalidParameterError(
            f"no sample named {name!r}; the samples are: {', '.join(SAMPLES)}. Fix: pass one "
            "of those names."
        )
    info = SAMPLES[name]
    path = _package_file(info)
    if not path.is_file():
        fix = (
            "run `python tools/make_sample_data.py` in the repository to generate it"
            if info.origin == "generated"
            else f"reinstall {info.origin}; its wheel ships this file"
        )
        raise ImageReadError(path, f"sample {name!r} is missing; {fix}.")
    return path
