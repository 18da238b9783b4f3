"""The Jupyter server's widget front ends (internal): probe and rule.

A widget is two halves: the kernel's Python package (ipywidgets, ipyevents) and the front-end
(JupyterLab / Notebook 7 "labextension") package the *server* loads into the browser. When the
front end is missing or of another version, the notebook shows "Error displaying widget:
model not found" (or nothing) where an explorer should be. The server often runs in another
environment than the kernel (JupyterLab in conda's base, the kernel in a project env), so the
front ends are looked up the way the server does: the ``labextensions`` folders of
``jupyter_core.paths.jupyter_path`` (``JUPYTER_PATH``, the user's data dir, the server's
``sys.prefix``, the system dirs; the first folder holding a package wins, as in
``jupyter labextension list``), with the prefix of the ``jupyter-lab`` found on ``PATH`` as
the server's own prefix.

The versions must fit as the widget manager fits them: it loads a kernel widget's model
module only if a registered front-end version satisfies the kernel's
``_model_module_version`` (an npm semver range). ipywidgets' protocol major decides the
widget manager (``@jupyter-widgets/jupyterlab-manager``, shipped by the Python package
``jupyterlab_widgets``) major; ipyevents registers its package version.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

from m1vision.doctor._common import _check

#: ipywidgets' base protocol major -> the widget manager majors that implement it
#: (ipywidgets 8: jupyterlab_widgets 3 = @jupyter-widgets/jupyterlab-manager 5;
#: ipywidgets 7: jupyterlab_widgets 1 = manager 3, older JupyterLabs manager 1 and 2).
MANAGER_MAJORS = {2: (5,), 1: (1, 2, 3)}

WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"
# front-end package -> (the check's name, the kernel's Python package, the fix's package)
FRONT_ENDS = {
    WIDGET_MANAGER: ("jupyter_widgets", "ipywidgets", "jupyterlab_widgets"),
    "ipyevents": ("jupyter_ipyevents", "ipyevents", "ipyevents"),
}


def _version_tuple(text: str) -> tuple[int, ...] | None:
    """``"5.0.16"`` -> ``(5, 0, 16)``; ``"2.0.4rc1"`` -> ``(2, 0, 4)``; None if no number leads."""
    match = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def satisfies(version: str, spec: str) -> bool:
    """Does ``version`` satisfy the npm semver range ``spec`` (``X.Y.Z``, ``^``, ``~``, ``*``)?

    The subset the widget managers meet: a kernel's ``_model_module_version`` is an exact
    version (ipyevents, ipywidgets' protocols) or a caret/tilde range (third-party widgets).

    Examples
    --------
    >>> from m1vision.doctor._jupyter import satisfies
    >>> satisfies("2.0.4", "2.0.4"), satisfies("2.0.3", "2.0.4"), satisfies("2.3.0", "^2.0.4")
    (True, False, True)
    """
    spec = str(spec).strip()
    if spec in ("", "*", "x"):
        return True
    have = _version_tuple(version)
    if have is None:
        return False
    have = (*have, 0, 0, 0)[:3]
    op = spec[0] if spec[0] in "^~" else "="
    want = _version_tuple(spec.lstrip("^~=v"))
    if want is None:
        return False
    want = (*want, 0, 0, 0)[:3]
    if op == "=":
        return have == want
    if have < want:
        return False
    if op == "~":
        return have[:2] == want[:2]
    # caret: the left-most non-zero part stays
    first = next((i for i, v in enumerate(want) if v), 2)
    return have[: first + 1] == want[: first + 1]


def _load_version_module(package: str) -> dict | None:
    """The constants of ``package/_version.py`` without importing the package (fast)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "_version.py"
    if not path.is_file():
        return None
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # the file holds constants only
    return {k: v for k, v in namespace.items() if not k.startswith("__builtins__")}


def _requirement(dist: str, name: str) -> str | None:
    """``dist``'s requirement on ``name`` as installed, e.g. ``"jupyterlab_widgets~=3.0.17"``."""
    try:
        requires = importlib.metadata.requires(dist) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for line in requires:
        spec = line.split(";")[0].strip()
        if re.split(r"[\s<>=!~\[(]", spec, maxsplit=1)[0].replace("-", "_").lower() == name:
            return spec.replace(" ", "")
    return None


def kernel_widget_versions() -> dict:
    """What this kernel's widget packages ask of the front end (None where not installed).

    ``{"ipywidgets": {"version", "base_protocol", "front_end_requirement"}, "ipyevents":
    {"version", "module_version"}}``; the requirement is ipywidgets' own on
    ``jupyterlab_widgets`` (what the fix installs).
    """
    out: dict = {"ipywidgets": None, "ipyevents": None}
    ipywidgets = _load_version_module("ipywidgets")
    if ipywidgets is not None:
        out["ipywidgets"] = {
            "version": ipywidgets.get("__version__"),
            "base_protocol": ipywidgets.get("__jupyter_widgets_base_version__"),
            "front_end_requirement": _requirement("ipywidgets", "jupyterlab_widgets"),
        }
    ipyevents = _load_version_module("ipyevents")
    if ipyevents is not None:
        out["ipyevents"] = {
            "version": ipyevents.get("__version__"),
            "module_version": ipyevents.get("EXTENSION_SPEC_VERSION"),
        }
    return out


def server_prefix() -> str:
    """The ``sys.prefix`` of the environment that runs the Jupyter server.

    The environment of the ``jupyter-lab`` (or ``jupyter-notebook``, ``jupyter``) found on
    ``PATH`` when it has a ``share/jupyter`` folder, else this Python's (kernel and server in
    one environment).
    """
    for name in ("jupyter-lab", "jupyter-notebook", "jupyter"):
        found = shutil.which(name)
        if found:
            prefix = Path(found).resolve().parent.parent
            if (prefix / "share" / "jupyter").is_dir():
                return str(prefix)
    return sys.prefix


def labextension_dirs(prefix: str | None = None) -> list[str]:
    """The server's ``labextensions`` folders, in the order it searches them.

    ``jupyter_core.paths.jupyter_path("labextensions")`` with ``prefix`` (default
    :func:`server_prefix`) in place of this Python's own prefix.
    """
    from jupyter_core.paths import jupyter_path

    prefix = server_prefix() if prefix is None else prefix
    own = str(Path(sys.prefix, "share", "jupyter", "labextensions"))
    theirs = str(Path(prefix, "share", "jupyter", "labextensions"))
    dirs = [theirs if d == own else d for d in jupyter_path("labextensions")]
    if theirs not in dirs:
        dirs.append(theirs)
    return list(dict.fromkeys(dirs))


def installed_front_ends(dirs: list[str], names=tuple(FRONT_ENDS)) -> dict:
    """``{package name: {"version", "path"}}`` of the front ends found in ``dirs`` (first wins).

    Reads each ``<dir>/<name>/package.json`` as the server does; a package absent from every
    folder is absent from the result; an unreadable ``package.json`` gives ``"error"``.
    """
    found: dict = {}
    for folder in dirs:
        for name in names:
            if name in found:
                continue
            path = Path(folder, *name.split("/"), "package.json")
            if not path.is_file():
                continue
            try:
                data = json.loads(path.read_text())
                found[name] = {"version": str(data["version"]), "path": str(path)}
            except (OSError, ValueError, KeyError) as exc:
                found[name] = {"version": None, "path": str(path), "error": str(exc)}
    return found


def _fix(package: str, version: str | None, where: str) -> str:
    pin = f"=={version}" if version and version[0].isdigit() else (version or "")
    return (
        f"In the environment that runs JupyterLab / Notebook ({where}), run `python -m pip "
        f'install "{package}{pin}"` (conda: `conda install -c conda-forge "{package}{pin}"`), '
        "then restart the server and reload the browser tab. Or install the kernel's "
        "environment as the server's: `make install` there and start `jupyter lab` from it."
    )


def front_end_checks(kernel: dict, front_ends: dict, *, where: str) -> list[dict]:
    """The ``jupyter_widgets`` and ``jupyter_ipyevents`` checks (pure).

    ``kernel`` is :func:`kernel_widget_versions`, ``front_ends`` :func:`installed_front_ends`,
    ``where`` names the server's environment for the fix. A wrong front end's detail names
    its ``package.json`` (every path is in the probe's raw section). A missing one is a warning
    (VS Code and other front ends bring their own, and the explorers' static picture still
    shows); one of the wrong version is a failure ("model not found").
    """
    checks = []
    ipywidgets = kernel.get("ipywidgets")
    manager = front_ends.get(WIDGET_MANAGER)
    name, _, package = FRONT_ENDS[WIDGET_MANAGER]
    if ipywidgets is None:
        checks.append(
            _check(
                name,
                "warn",
                None,
                "ipywidgets is not installed in this kernel: the explorers cannot run.",
                _fix("ipywidgets", None, "this kernel's"),
            )
        )
        return checks
    wanted = ipywidgets["version"]
    protocol = _version_tuple(ipywidgets.get("base_protocol") or "0")
    majors = MANAGER_MAJORS.get(protocol[0] if protocol else 0, ())
    requirement = ipywidgets.get("front_end_requirement") or ""
    pin = requirement[len(package) :] if requirement.startswith(package) else None
    pin = pin or {2: "==3.*", 1: "==1.*"}.get(protocol[0] if protocol else 0)
    if manager is None:
        checks.append(_check(
            name, "warn", None,
            f"The kernel has ipywidgets {wanted} but the Jupyter server has no {WIDGET_MANAGER} "
            "front end: JupyterLab and Notebook 7 show the explorers' static picture only (or "
            "\"Error displaying widget\"). VS Code brings its own; ignore this there.",
            _fix(package, pin, where),
        ))  # fmt: skip
    elif manager.get("version") is None:
        checks.append(
            _check(
                name,
                "fail",
                None,
                f"{manager['path']} cannot be read: {manager.get('error')}.",
                _fix(package, pin, where),
            )
        )
    else:
        have = _version_tuple(manager["version"])
        if have and have[0] in majors:
            checks.append(_check(
                name, "ok", manager["version"],
                f"{WIDGET_MANAGER} {manager['version']} speaks the widget protocol "
                f"{ipywidgets['base_protocol']} of the kernel's ipywidgets {wanted}.",
            ))  # fmt: skip
        else:
            checks.append(_check(
                name, "fail", manager["version"],
                f"The Jupyter server's {WIDGET_MANAGER} {manager['version']} "
                f"({manager['path']}) does not speak the widget protocol "
                f"{ipywidgets['base_protocol']} of the kernel's ipywidgets {wanted} (it needs "
                f"manager {' or '.join(map(str, majors)) or '?'}.x): every widget shows "
                "\"Error displaying widget: model not found\".",
                _fix(package, pin, where),
            ))  # fmt: skip
    ipyevents = kernel.get("ipyevents")
    events = front_ends.get("ipyevents")
    name = FRONT_ENDS["ipyevents"][0]
    if ipyevents is None:
        return checks
    module = ipyevents.get("module_version") or ipyevents["version"]
    if events is None or events.get("version") is None:
        checks.append(_check(
            name, "warn", None,
            f"The kernel has ipyevents {ipyevents['version']} but the Jupyter server has no "
            "ipyevents front end: the explorers show, but clicks, the value under the mouse "
            "and the arrow keys on a picture do nothing.",
            _fix("ipyevents", ipyevents["version"], where),
        ))  # fmt: skip
    elif satisfies(events["version"], module):
        checks.append(
            _check(
                name,
                "ok",
                events["version"],
                f"ipyevents {events['version']} serves the kernel's ipyevents "
                f"{ipyevents['version']}.",
            )
        )
    else:
        checks.append(_check(
            name, "fail", events["version"],
            f"The Jupyter server's ipyevents front end is {events['version']} "
            f"({events['path']}) but the kernel's ipyevents {ipyevents['version']} asks for "
            f"{module}: its events are \"model not found\", so clicks, the value under the "
            "mouse and the arrow keys on a picture do nothing.",
            _fix("ipyevents", ipyevents["version"], where),
        ))  # fmt: skip
    return checks


def _jupyter_probe() -> tuple[list[dict], dict]:
    """Probe: the kernel's widget packages against the server's front ends."""
    kernel = kernel_widget_versions()
    prefix = server_prefix()
    dirs = labextension_dirs(prefix)
    found = installed_front_ends(dirs)
    where = prefix if prefix != sys.prefix else f"this one, {prefix}"
    raw = {
        "kernel": kernel,
        "server_prefix": prefix,
        "labextension_dirs": dirs,
        "front_ends": found,
        "JUPYTER_PATH": os.environ.get("JUPYTER_PATH"),
    }
    return front_end_checks(kernel, found, where=where), raw
