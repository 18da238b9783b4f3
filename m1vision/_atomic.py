"""Atomic file writes (internal): a temporary file in the target folder, then a rename.

A reader never sees a half-written file, a crash leaves no partial output, and an existing
file is never replaced unless ``overwrite=True``. Without ``overwrite`` the final step is a
hard link, which fails atomically if the target appeared meanwhile (no check-then-write race).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from m1vision.errors import OutputExistsError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would give
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise _exists_error(path) from None
            except OSError:  # a filesystem without hard links
                if path.exists():
                    raise _exists_error(path) from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path, data: bytes, *, overwrite: bool = False, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; return the path.

    With ``fsync`` (default) the bytes reach the disk before the file gets its name, so the
    file is whole even after a power cut. Without it the write is still atomic for every
    reader and against a crash of the program, just not against a power cut; batch outputs
    that can be recomputed use that, as an fsync per file costs milliseconds.
    """
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return path


def atomic_write_text(path, text: str, *, overwrite: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_json(path, obj, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (with a final newline) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text, overwrite=overwrite)
