"""The doctor's constants and small helpers (internal).

Statuses, known-good pins, the check record, home masking.
"""

from __future__ import annotations

import platform
import re
import sys
from pathlib import Path

from m1vision._platform import (  # noqa: F401  (the doctor's names for the known-good pins)
    KNOWN_GOOD_INSTALL,
    KNOWN_GOOD_METAL,
    KNOWN_GOOD_PYTHONS,
    KNOWN_GOOD_TF,
    KNOWN_GOOD_TF_RELEASE,
)

#: The check statuses, best first.
STATUSES = ("ok", "warn", "fail", "unknown")


#: Largest absolute difference allowed between any two runs of the self-test model (outputs
#: are of magnitude ~1; float32 rounding over a 2048-term dot product stays near 1e-6).
SELFTEST_TOLERANCE = 1e-4


TF_PIN_FIX = (
    f"Install the known-good pair: `python -m pip install {KNOWN_GOOD_INSTALL}` (or "
    "`make clean && make test`, which installs the lock locks/macos-arm64.txt)."
)


REINSTALL_FIX = "`make clean && make test` reinstalls every package from this platform's lock."


_OPENCV_DISTS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)


# label -> (distribution names, the first installed wins; import name or None)
PACKAGES = {
    "numpy": (("numpy",), "numpy"),
    "opencv": (_OPENCV_DISTS, "cv2"),
    "tensorflow": (("tensorflow", "tensorflow-cpu", "tensorflow-macos"), "tensorflow"),
    "tensorflow_metal": (("tensorflow-metal",), None),
    "keras": (("keras",), "keras"),
}


def _check(name, status, value=None, detail="", fix=None) -> dict:
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    return {"name": name, "status": status, "value": value, "detail": detail, "fix": fix}


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def mask_home(obj, home=None):
    """Return ``obj`` (str, list, tuple, dict, nested) with the home folder written ``~``.

    Only whole path components match: with home ``/home/al``, ``/home/alice`` stays.

    Examples
    --------
    >>> from m1vision.doctor import mask_home
    >>> mask_home({"p": ["/home/al/x.py", "/home/alice", "/home/al"]}, home="/home/al")
    {'p': ['~/x.py', '/home/alice', '~']}
    """
    homes = {str(home)} if home is not None else {str(Path.home()), str(Path.home().resolve())}
    homes = sorted((h.rstrip("/") for h in homes if h.strip("/")), key=len, reverse=True)
    if not homes:
        return obj
    pattern = re.compile("(?:" + "|".join(re.escape(h) for h in homes) + r")(?=$|[/\\\s'\"),:;\]])")

    def walk(value):
        if isinstance(value, str):
            return pattern.sub("~", value)
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(obj)


def _fallback_facts() -> dict:
    """Facts without sysctl, used when the platform probe itself failed (a best guess)."""
    system, machine = platform.system(), platform.machine()
    return {
        "system": system,
        "machine": machine,
        "python_version": platform.python_version(),
        "python_bits": 64 if sys.maxsize > 2**32 else 32,
        "macos_version": platform.mac_ver()[0] or None,
        "apple_silicon": (machine == "arm64") if system == "Darwin" else None,
        "translated": None,
    }
