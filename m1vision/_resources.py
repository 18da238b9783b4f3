"""Where m1vision finds its files (internal): bundled data, the lock files, the source checkout.

Three roots, each found one documented way, never with ``Path(__file__).parent.parent``:

* **bundled data** (the demo model, the generated samples): package data of ``m1vision``,
  found with :mod:`importlib.resources` as ``m1vision/_bundled``. In the source checkout
  ``m1vision/_bundled`` is a symbolic link to the repository's ``data/`` folder; a wheel
  (``pip install .``) carries a copy of the files. ``M1VISION_DATA`` overrides it.
* **the source checkout** (for ``locks/`` and the git commit): the folder m1vision was
  installed from in editable mode (``pip install -e .``, what ``make install`` does), read
  from the installed distribution's ``direct_url.json`` (PEP 610), and only if the imported
  package lives inside it. ``M1VISION_SOURCE_ROOT`` overrides it. A non-editable install has
  none: the doctor then reports the lock as not available, and experiment records carry no
  git commit.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["data_root", "locks_dir", "source_root"]


def _package_dir() -> Path:
    return Path(str(importlib.resources.files("m1vision")))


def data_root() -> Path:
    """The bundled data folder (``models/``, ``samples/``, ``README.md``).

    ``$M1VISION_DATA`` if set, else ``m1vision/_bundled`` from :mod:`importlib.resources`
    (resolved: in a checkout it is the repository's ``data/`` folder).
    """
    override = os.environ.get("M1VISION_DATA")
    if override:
        return Path(override)
    return (_package_dir() / "_bundled").resolve()


def source_root() -> Path | None:
    """The source checkout m1vision runs from, or None for an installed (non-editable) copy.

    ``$M1VISION_SOURCE_ROOT`` if set; else the editable install's folder from
    ``direct_url.json``, when the imported package lies inside it.
    """
    override = os.environ.get("M1VISION_SOURCE_ROOT")
    if override:
        return Path(override)
    package = _package_dir().resolve()
    # Every installed copy's metadata (a build's m1vision.egg-info in the checkout has none).
    for dist in importlib.metadata.distributions(name="m1vision"):
        try:
            info = json.loads(dist.read_text("direct_url.json") or "{}")
        except (ValueError, OSError):
            continue
        url = urlparse(info.get("url", ""))
        if not info.get("dir_info", {}).get("editable") or url.scheme != "file":
            continue
        root = Path(unquote(url.path)).resolve()
        if package.is_relative_to(root):
            return root
    return None


def locks_dir() -> Path | None:
    """The ``locks/`` folder of the source checkout, or None where there is none."""
    root = source_root()
    if root is None or not (root / "locks").is_dir():
        return None
    return root / "locks"
