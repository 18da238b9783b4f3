"""Lock drift (internal): installed distributions against this platform's lock file."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

from m1vision import _platform
from m1vision.doctor._common import REINSTALL_FIX, _check


def _canonical(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _repo_locks() -> Path | None:
    from m1vision._resources import locks_dir

    return locks_dir()


def read_lock(path) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` pins of a uv/pip-compile lock."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;]+).*", line)
        if m:
            pins[_canonical(m.group(1))] = m.group(2)
    return pins


def installed_versus_lock(*, lock=None) -> dict:
    """Compare installed distribution versions with this platform's lock file.

    Parameters
    ----------
    lock : str or os.PathLike, optional
        A lock file (``name==version`` lines). Default: ``locks/<platform>.txt`` of the
        source checkout the package runs from (see :func:`m1vision._resources.locks_dir`).

    Returns
    -------
    dict
        ``status`` (``"ok"``: every pin installed at its version; ``"warn"``: drift;
        ``"unknown"``: no lock found), ``lock`` (file name), ``locked`` (number of pins),
        ``mismatched`` ([{name, locked, installed}]), ``missing`` ([{name, locked}]),
        ``extra`` (installed but not in the lock), ``detail``.

    Examples
    --------
    >>> from m1vision.doctor import installed_versus_lock
    >>> drift = installed_versus_lock()
    >>> drift["status"] in ("ok", "warn", "unknown")
    True
    """
    if lock is None:
        facts = _platform.probe()
        name = _platform.LOCKS.get((facts["system"], facts["machine"]))
        locks = _repo_locks()
        if name is None or locks is None or not (locks / f"{name}.txt").is_file():
            why = (
                f"no lock for {facts['system']} {facts['machine']}"
                if name is None
                else "the lock is not available: no locks/ folder in a source checkout of m1vision "
                "(installed from a wheel, not with `pip install -e .`; set M1VISION_SOURCE_ROOT "
                "to a checkout to compare)"
            )
            return {
                "status": "unknown",
                "lock": None,
                "locked": 0,
                "mismatched": [],
                "missing": [],
                "extra": [],
                "detail": f"Cannot compare: {why}.",
            }
        lock = locks / f"{name}.txt"
    lock = Path(lock)
    pins = read_lock(lock)
    installed = {}
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"]
        if dist_name:  # the first on sys.path wins, as for imports
            installed.setdefault(_canonical(dist_name), dist.version)
    mismatched = [
        {"name": n, "locked": v, "installed": installed[n]}
        for n, v in sorted(pins.items())
        if n in installed and installed[n] != v
    ]
    missing = [{"name": n, "locked": v} for n, v in sorted(pins.items()) if n not in installed]
    ignore = {"m1vision", "pip", "setuptools", "wheel"}
    extra = sorted(n for n in installed if n not in pins and n not in ignore)
    drift = mismatched or missing
    parts = [f"{len(pins)} pins in {lock.name}"]
    if mismatched:
        parts.append(
            "different versions: "
            + ", ".join(f"{m['name']} {m['installed']} (lock {m['locked']})" for m in mismatched)
        )
    if missing:
        parts.append("not installed: " + ", ".join(f"{m['name']}=={m['locked']}" for m in missing))
    if not drift:
        parts.append("all installed at the locked versions")
    if extra:
        parts.append(f"{len(extra)} more installed that the lock does not list")
    return {
        "status": "warn" if drift else "ok",
        "lock": lock.name,
        "locked": len(pins),
        "mismatched": mismatched,
        "missing": missing,
        "extra": extra,
        "detail": "; ".join(parts) + ".",
    }


def _lock_probe() -> tuple[list[dict], dict]:
    drift = installed_versus_lock()
    n_bad = len(drift["mismatched"]) + len(drift["missing"])
    value = drift["lock"] if not n_bad else f"{drift['lock']}: {n_bad} differ"
    fix = REINSTALL_FIX if drift["status"] == "warn" else None
    return [_check("lock_drift", drift["status"], value, drift["detail"], fix)], drift
