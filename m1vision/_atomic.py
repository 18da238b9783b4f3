"""Atomic file writes (internal): a temporary file in the target folder, then a rename.

A reader never sees a half-written file, a crash leaves no partial output, and an existing
file is never replaced unless ``overwrite=True``. Without ``overwrite`` the final step is a
hard link, which fails atomically if the target appeared meanwhile (no check-then-write race).
:func:`folder_lock` lets one writer at a time into a folder.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from m1vision.errors import ImageWriteError, OutputExistsError, OutputFolderBusyError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_out_folder",
    "check_versioned",
    "folder_lock",
    "versioned",
]


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it: set and restore at once
    os.umask(mask)
    return mask


# Read once, at import: os.umask is process-wide, so flipping it while worker threads create
# files could give those files the wrong mode.
_UMASK = _read_umask()


def _exists_error(path: Path) -> OutputExistsError:
    return OutputExistsError(
        f"{str(path)!r} exists already and overwrite=False; pass overwrite=True to replace it, "
        "or choose another path."
    )


_FIX_FILE = "pass another folder, or move that file away"
_FIX_PERMISSION = "pass a folder you can write in, or make it writable (chmod u+w)"


def _folder_problem(folder: Path) -> tuple[str, str] | None:
    """(why files cannot be made in ``folder``, made first if missing; the fix), or None."""
    if folder.exists():
        if not folder.is_dir():
            return f"{str(folder)!r} is a file, not a folder", _FIX_FILE
        if not os.access(folder, os.W_OK | os.X_OK):
            return (
                f"{str(folder)!r} is a folder this user cannot write in (permission denied)",
                _FIX_PERMISSION,
            )
        return None
    above = next((p for p in folder.parents if p.exists()), None)
    if above is None:  # nothing exists above it: the disk or mount is missing
        return f"no part of {str(folder)!r} exists", "check the path and that its disk is there"
    if not above.is_dir():
        return f"{str(above)!r} on its path is a file, not a folder", _FIX_FILE
    if not os.access(above, os.W_OK | os.X_OK):
        why = (
            f"it does not exist and {str(above)!r}, where it would be made, is a folder this "
            "user cannot write in (permission denied)"
        )
        return why, _FIX_PERMISSION
    return None


def check_out_folder(folder, *, name: str = "out_dir") -> Path:
    """Refuse, before any work, an output folder whose files could not be written.

    ``folder`` may be missing (it is made later, with its parents); it must not be a file,
    sit under a file, or be (or be made in) a folder this user cannot write in. Returns the
    path; raises :class:`~m1vision.errors.ImageWriteError` naming the argument, the path,
    what is wrong and the fix. Nothing is created.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from m1vision._atomic import check_out_folder
    >>> work = pathlib.Path(tempfile.mkdtemp())
    >>> check_out_folder(work / "new" / "out") == work / "new" / "out"
    True
    >>> _ = (work / "notes.txt").write_text("x")
    >>> check_out_folder(work / "notes.txt" / "out")
    Traceback (most recent call last):
    ...
    m1vision.errors.ImageWriteError: cannot write into out_dir=...
    """
    folder = Path(folder)
    problem = _folder_problem(folder)
    if problem is not None:
        raise _folder_error(f"into {name}={str(folder)!r}", *problem)
    return folder


def _folder_error(subject: str, problem: str, fix: str) -> ImageWriteError:
    return ImageWriteError(
        f"cannot write {subject}: {problem}; expected a folder this user can create files in "
        f"(a missing one is made). Nothing was written. Fix: {fix}."
    )


def _failed_folder_error(path: Path, exc: OSError) -> OSError:
    """The error for an OSError making ``path``: its folder's problem if found, else ``exc``."""
    problem = _folder_problem(path.parent)
    if problem is None:
        return exc
    return _folder_error(repr(str(path)), *problem)


@contextlib.contextmanager
def atomic_path(path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it becomes ``path``.

    The temporary name keeps the suffix, so writers that pick a format from the extension
    (OpenCV, matplotlib) work. Parent folders are created. On any exception the temporary
    file is removed and ``path`` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from m1vision._atomic import atomic_path
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "sub" / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise _exists_error(path)
    tmp = _temporary_name(path)
    try:  # from before the file is made: a Ctrl-C right after it leaves no orphan
        os.close(_create(tmp, path))
        yield tmp
        _publish(tmp, path, overwrite)
    finally:
        with contextlib.suppress(OSError):  # also when it was never made
            tmp.unlink()


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished temporary file ``tmp`` the name ``path`` (a link or a rename)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # a filesystem without hard links
        if path.exists():
            raise _exists_error(path) from None
        os.replace(tmp, path)


# Temporary names unique per process, thread and call (no random names, no retries).
_TEMP_COUNTER = itertools.count()
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def atomic_write_bytes(path, data: bytes, *, overwrite: bool = False, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    With ``fsync`` (default) the bytes reach the disk before the file gets its name, so the
    file is whole even after a power cut. Without it the write is still atomic for every
    reader and against a crash of the program, just not against a power cut; batch outputs
    that can be recomputed use that, as an fsync per file costs milliseconds.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise _exists_error(path)
    tmp = _temporary_name(path)
    published = False
    try:  # from before the file is made: a Ctrl-C right after it leaves no orphan
        with open(_create(tmp, path), "wb", closefd=True) as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        _publish(tmp, path, overwrite)
        published = True
    finally:
        if not published or not overwrite:  # after a link the temporary name goes
            with contextlib.suppress(OSError):  # also when it was never made
                os.unlink(tmp)
    return path


def _temporary_name(path: Path) -> Path:
    """A name beside ``path``, unique per process, thread and call, keeping its suffix."""
    return path.with_name(
        f".{path.stem}.{os.getpid()}-{threading.get_ident()}-{next(_TEMP_COUNTER)}{path.suffix}"
    )


def _create(tmp: Path, path: Path) -> int:
    """Create ``tmp`` (the folder too when missing); an OSError names the folder's problem.

    Few system calls per file (batch runs write thousands; on some filesystems each costs
    tens of microseconds): the file is made directly, with the mode open() gives (0o666 less
    the umask), the folder only when it is missing.
    """
    try:
        try:
            return os.open(tmp, _CREATE, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(tmp, _CREATE, 0o666)
    except OSError as exc:
        raise _failed_folder_error(path, exc) from exc


def atomic_write_text(path, text: str, *, overwrite: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_json(path, obj, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (with a final newline) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text, overwrite=overwrite)


# ---------------------------------------------------------------------------------------------
# The one versioned header: every JSON file m1vision writes starts with "schema" and "version".
# ---------------------------------------------------------------------------------------------


def versioned(schema: str, version: int, body=None) -> dict:
    """A JSON object with the ``schema`` + ``version`` header, then ``body``'s keys.

    Examples
    --------
    >>> from m1vision._atomic import versioned
    >>> versioned("m1vision.example", 1, {"items": []})
    {'schema': 'm1vision.example', 'version': 1, 'items': []}
    """
    body = dict(body or {})
    clash = {"schema", "version"} & set(body)
    if clash:
        raise ValueError(f"the body must not hold the header key(s) {sorted(clash)}.")
    return {"schema": schema, "version": int(version), **body}


def check_versioned(data, *, schema: str, versions, source: str, error: type[Exception]) -> dict:
    """Check ``data`` has the header ``schema`` and one of ``versions``; return it.

    Raises ``error`` (an m1vision error class taking one message) naming ``source``, what was
    found and the fix (a newer m1vision for a newer version).

    Examples
    --------
    >>> from m1vision._atomic import check_versioned
    >>> from m1vision.errors import RecordError
    >>> check_versioned({"schema": "m1vision.x", "version": 1}, schema="m1vision.x",
    ...                 versions=(1,), source="x.json", error=RecordError)["version"]
    1
    """
    versions = tuple(versions)
    if not isinstance(data, dict) or data.get("schema") != schema:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise error(
            f"{source}: schema is {got!r}, expected {schema!r}; it is not a file of this kind "
            "(or it is damaged)."
        )
    version = data.get("version")
    if version not in versions:
        newer = isinstance(version, int) and version > max(versions)
        fix = " Upgrade m1vision to read it." if newer else ""
        raise error(
            f"{source}: unsupported {schema} version {version!r}; this m1vision reads "
            f"version {', '.join(map(str, versions))}.{fix}"
        )
    return data


# ---------------------------------------------------------------------------------------------
# One writer per folder: an OS lock on a file in it.
# ---------------------------------------------------------------------------------------------

#: The lock file a run keeps in its output folder while it runs (removed when it ends).
LOCK_NAME = ".m1vision.lock"


_HELD: set[int] = set()  # the lock descriptors this process holds


def _close_held_in_child() -> None:
    # A forked worker (the engine's process pool starts during a run) must not keep the
    # run's lock alive after the run: close its copies (this does not unlock the parent's).
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


def _holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (ValueError, OSError):
        return {}  # the holder has not written it yet


@contextlib.contextmanager
def folder_lock(folder) -> Iterator[Path]:
    """Hold ``folder``'s lock (``folder / LOCK_NAME``) for the ``with`` block; fail at once
    if another process, or another run in this one, holds it.

    The lock is the operating system's (``flock``): it goes with the process that holds it,
    so a run killed by SIGKILL or a crash never blocks the next one; the file's content (the
    holder's pid, host and start time) only names the holder in the error. The choice is to
    fail at once rather than wait: a second run into a busy folder is a mistake to show, and
    waiting would hide it. The folder must exist.

    Raises
    ------
    OutputFolderBusyError
        Another holder; the message names the folder and the holder's pid.

    Examples
    --------
    >>> import tempfile
    >>> from m1vision._atomic import folder_lock
    >>> from m1vision.errors import OutputFolderBusyError
    >>> folder = tempfile.mkdtemp()
    >>> with folder_lock(folder):
    ...     try:
    ...         with folder_lock(folder):
    ...             pass
    ...     except OutputFolderBusyError as exc:
    ...         print(exc.pid == os.getpid())
    True
    """
    import fcntl  # POSIX (macOS, Linux)

    folder = Path(folder)
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            deadline = time.monotonic() + 0.2
            while not holder and time.monotonic() < deadline:  # it writes right after locking
                time.sleep(0.005)
                holder = _holder(fd)
            os.close(fd)
            raise _busy_error(folder, holder) from None
        except OSError:
            os.close(fd)
            raise
        # The holder before us may have removed the file after we opened it: then we hold
        # the lock of a name that is gone; open the new one.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _HELD.add(fd)
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it (see the loop above)
        _HELD.discard(fd)
        os.close(fd)


def _busy_error(folder: Path, holder: dict) -> OutputFolderBusyError:
    pid = holder.get("pid")
    who = (
        f"process {pid} on {holder.get('host', '?')} (started {holder.get('started', '?')})"
        if pid is not None
        else "a process that is starting (its pid is not written yet)"
    )
    err = OutputFolderBusyError(
        f"the output folder {str(folder)!r} is in use by another m1vision run: {who} holds "
        f"its lock {LOCK_NAME}. Runs into one folder cannot share it. Wait for that run to "
        "finish (or stop it) and run again, or choose another output folder."
    )
    err.folder, err.pid = folder, pid
    return err
