"""The experiment record's file format (internal): reading with upgrades, and the views it keeps.

:mod:`m1vision.experiment` writes and replays records; :mod:`m1vision.widgets` restores the
explorer views they keep. Both read records here, and this module knows no widget: a kept
view is a state of :mod:`m1vision.views` (``{"schema": "m1vision.view", "kind", ...}``), the
array it shows (``explorers/<i>.npy`` beside the record) and the SHA-256 of each picture.
Its pictures are recomputed from (array, state) by the pure views.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from m1vision._checks import check_path
from m1vision.errors import InvalidTypeError, RecordError

SCHEMA = "m1vision.experiment"
#: The schema this version writes. Records of versions in ``_MIGRATIONS`` are upgraded on
#: read; any other version is refused with a message naming it.
SCHEMA_VERSION = 1
_MIGRATIONS: dict[int, Any] = {}  # {old_version: function(dict) -> dict of old_version + 1}


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's shape, dtype and bytes (C order): equal iff the arrays are equal.

    Hashing the array rather than the encoded file keeps the comparison exact but independent
    of the PNG encoder's version.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision._record import array_sha256
    >>> array_sha256(np.zeros((2, 2), np.uint8)) == array_sha256(np.zeros((2, 2), np.uint16))
    False
    """
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.shape}|{array.dtype.str}|".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def portable(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` where it can be (POSIX form), else absolute."""
    path = Path(path).resolve()
    try:
        return Path(os.path.relpath(path, Path(base).resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(path)


def resolve(stored: str, base: Path) -> Path:
    """A path stored in a record, relative to the record's folder ``base``."""
    p = Path(stored)
    return p if p.is_absolute() else (Path(base) / p)


def record_file(path) -> Path:
    """The ``record.json`` of a record folder, or ``path`` itself."""
    path = Path(check_path(path))
    return path / "record.json" if path.is_dir() else path


def _missing_record_error(path: Path) -> RecordError:
    """No file at ``path``: say what is expected, and name the records below its folder."""
    folder = path.parent if path.name == "record.json" else path
    found = sorted(folder.glob("*/record.json")) if folder.is_dir() else []
    if found:
        named = ", ".join(repr(str(p)) for p in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        fix = f"Fix: pass one of the records in {str(folder)!r}: {named}{more}."
    else:
        fix = "Fix: check the path; record() returns the path of each record it writes."
    return RecordError(
        f"no record at {str(path)!r}: expected the record.json written by "
        f"m1vision.experiment.record, or its folder. {fix}"
    )


def _m1vision_version() -> str:
    from m1vision import __version__

    return __version__


def load_record(path) -> dict:
    """Read a record, upgrading an older schema; refuse one this version cannot read.

    Raises
    ------
    RecordError
        Not JSON, not an m1vision record, or a schema version this m1vision cannot read
        (the message names the version found and the versions readable).

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> from m1vision.errors import RecordError
    >>> from m1vision.experiment import load_record
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "record.json"
    >>> _ = path.write_text(json.dumps({"schema": "something.else", "version": 1}))
    >>> try:
    ...     load_record(path)
    ... except RecordError as exc:
    ...     print(str(exc).split(" (")[0].endswith("is not an m1vision experiment record"))
    True
    """
    path = record_file(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _missing_record_error(path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{str(path)!r} is not a readable JSON record: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise RecordError(
            f"{str(path)!r} is not an m1vision experiment record (schema {found!r}, expected "
            f"{SCHEMA!r})."
        )
    version = data.get("version")
    readable = sorted({SCHEMA_VERSION, *_MIGRATIONS})
    while version in _MIGRATIONS:
        data = _MIGRATIONS[version](data)
        version = data["version"]
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise RecordError(
            f"{str(path)!r} has schema {SCHEMA} version {version!r}; this m1vision "
            f"({_m1vision_version()}) reads versions {readable}. "
            + (
                "It was written by a newer m1vision: upgrade m1vision to replay it."
                if newer
                else "It is older than any version this m1vision can read."
            )
        )
    return data


# ------------------------------------------------------------------------------ kept views
def view_of(explorer):
    """The pure view of an explorer (its ``view()``), or ``explorer`` if it is a view."""
    from m1vision.views.state import View, view_kinds

    view = explorer if isinstance(explorer, View) else None
    if view is None and callable(getattr(explorer, "view", None)):
        view = explorer.view()
    if not isinstance(view, View):
        raise RecordError(
            f"cannot record a {type(explorer).__name__}; record() keeps the views of the "
            f"explorers {', '.join(view_kinds())} (or of an m1vision.views.View)."
        )
    return view


def take_views(explorers) -> list[tuple[dict, np.ndarray, dict, list[str]]]:
    """Each explorer's ``(state, array, other arrays, picture hashes)``, taken before anything
    runs."""
    if explorers is None:
        return []
    if not isinstance(explorers, list | tuple):
        raise InvalidTypeError(
            f"explorers must be a list of explorers, got {type(explorers).__name__}. Fix: "
            "wrap one in a list, e.g. explorers=[explorer]."
        )
    views = []
    for explorer in explorers:
        view = view_of(explorer)
        state = view.state()
        shown = [array_sha256(p) for p in view.pictures()]
        views.append((state, view.array, view.arrays(), shown))
    return views


def write_views(views: list, folder: Path) -> list[dict]:
    """Save each view's array beside the record; the record's ``"explorers"`` entries."""
    from m1vision._atomic import atomic_write_bytes

    def save(array, name: str) -> str:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        path = atomic_write_bytes(Path(folder) / "explorers" / name, buffer.getvalue())
        return portable(path, folder)

    entries = []
    for i, (state, array, others, shown) in enumerate(views):
        entry = {
            "state": state,
            "array": save(array, f"{i}.npy"),
            "array_sha256": array_sha256(array),
            "shown_sha256": shown,
        }
        if others:  # only kinds that need them: older readers see the entries they know
            entry["arrays"] = {
                name: {"array": save(other, f"{i}-{name}.npy"), "sha256": array_sha256(other)}
                for name, other in others.items()
            }
        entries.append(entry)
    return entries


def _load_arrays(entry: dict, base: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The view's array and its other arrays (by name); FileNotFoundError if one is gone."""
    array = np.load(resolve(entry["array"], base), allow_pickle=False)
    others = {
        name: np.load(resolve(kept["array"], base), allow_pickle=False)
        for name, kept in (entry.get("arrays") or {}).items()
    }
    return array, others


def kept_view(record_path, index: int = 0) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """``(state, array, other arrays)`` of the ``index``-th view kept in a record."""
    record_path = record_file(record_path)
    data = load_record(record_path)
    entries = data.get("explorers") or []
    if not 0 <= index < len(entries):
        raise RecordError(
            f"{record_path} keeps {len(entries)} explorer view(s); index must be 0 to "
            f"{len(entries) - 1}, got {index}."
        )
    entry = entries[index]
    return (entry["state"], *_load_arrays(entry, record_path.parent))


def view_differences(data: dict, base: Path) -> list[tuple[str, str, str]]:
    """Recompute every kept view; ``(kind, subject, detail)`` for each that differs.

    Kinds: ``explorer-missing`` (its array file), ``explorer-input`` (the array changed),
    ``explorer-differs`` (a picture renders differently).
    """
    from m1vision.views.state import View

    differences = []
    for i, entry in enumerate(data.get("explorers") or []):
        where = f"explorer {i} ({entry['state'].get('kind')})"
        kept = {"": entry, **(entry.get("arrays") or {})}
        paths = {name: resolve(k["array"], base) for name, k in kept.items()}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            differences.append(("explorer-missing", where, f"{', '.join(missing)} missing"))
            continue
        array, others = _load_arrays(entry, base)
        loaded = {"": array, **others}
        changed = [
            str(paths[name])
            for name, k in kept.items()
            if array_sha256(loaded[name]) != k.get("sha256", k.get("array_sha256"))
        ]
        if changed:
            differences.append(("explorer-input", where, f"{', '.join(changed)} changed"))
            continue
        view = View.from_state(entry["state"], array, **others)
        shown = [array_sha256(p) for p in view.pictures()]
        recorded = entry["shown_sha256"]
        if shown != recorded:
            changed = [k for k, (a, b) in enumerate(zip(shown, recorded, strict=False)) if a != b]
            if len(shown) != len(recorded):
                changed.append(f"{len(recorded)} recorded, {len(shown)} now")
            differences.append(
                ("explorer-differs", where, f"picture(s) {changed} render differently")
            )
    return differences
