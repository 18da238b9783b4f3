"""Content identity (internal): the one SHA-256 rule for files, folders and models.

Everything m1vision identifies by content (a batch input or output, a DICOM series folder, a
``.keras`` / ``.h5`` model file, a SavedModel folder, an experiment's inputs) is hashed here:

* a **file**: the SHA-256 of its bytes;
* a **folder**: the SHA-256 of, for each of its files in order, the file's path relative to
  the folder (``/`` separators, UTF-8), a NUL byte and the file's SHA-256 as hex. Its files
  are the regular files at any depth whose path has no hidden part (no name starting with
  ``"."``: ``.DS_Store``, ``.ipynb_checkpoints`` are no content), in the order of their
  relative path's parts. Empty folders add nothing.

The stat cache (as git's index)
-------------------------------
A hash is reused only while the file's stat is the one recorded with it: size, ``mtime_ns``,
``ctime_ns``, inode and device (:func:`stat_key`). Copying tools restore mtimes, never the
ctime or the inode, so a file rewritten in place with its mtime put back is hashed again.

A record keeps the stat of the moment the file was hashed. A change within the same tick of
the file system's clock would leave that stat as it was ("racily clean", in git's words), so
:func:`smudge_racy` drops the stat of every record whose mtime or ctime is not older than the
manifest's own write time less :data:`RACY_WINDOW_NS` (the coarsest common timestamp
granularity: FAT's 2 s), as git does with its index; such a file is hashed again next time.
A timestamp in the future (clock skew) is always suspect, so those files are always hashed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

__all__ = [
    "RACY_WINDOW_NS",
    "file_record",
    "file_sha256",
    "folder_files",
    "identify",
    "path_sha256",
    "smudge_racy",
    "snapshot",
    "stat_key",
    "tree_sha256",
]

#: Stats whose mtime or ctime is this close to (or after) a manifest's write are suspect.
RACY_WINDOW_NS = 2_000_000_000

_CHUNK = 1 << 20


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, as hex.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision._hashing import file_sha256
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
    >>> file_sha256(p)[:16]
    'ba7816bf8f01cfea'
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def folder_files(folder) -> list[tuple[str, Path]]:
    """A folder's files as the folder rule sees them: ``[(relative posix path, path)]``.

    Regular files at any depth, no hidden part in their path, in the order of their relative
    path's parts. Symbolic links to folders are not followed.
    """
    return [(rel, Path(path)) for rel, path, _ in _folder_stats(folder)]


def walk_entries(folder, enter):
    """Each directory entry below ``folder`` whose name does not start with ".", as
    ``(key, entry)`` with ``key`` its relative path ("a/b.png"): one :func:`os.scandir` per
    folder, an unreadable folder left out (as :func:`os.walk`). Files (anything that is not a
    folder) are yielded; a folder is given to ``enter(key, entry)`` and entered when it
    returns true."""
    stack = [(os.fspath(folder), "")]
    while stack:
        here, prefix = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = list(it)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                continue
            key = prefix + name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                yield key, entry
            elif enter(key, entry):
                stack.append((entry.path, key + "/"))


def _not_a_link(key, entry) -> bool:
    return not entry.is_symlink()


def _folder_stats(folder) -> list[tuple[str, str, os.stat_result]]:
    """:func:`folder_files` with each file's path as a str and its stat (the stat of each
    directory entry: one stat per file, no Path)."""
    found = []
    for key, entry in walk_entries(folder, _not_a_link):
        try:
            if not entry.is_file():
                continue
            st = entry.stat()
        except OSError:
            continue  # gone meanwhile, or a broken link: not a regular file
        found.append((key, entry.path, st))
    # in the order of the paths' parts ("a/b" before "a.png"): "/" as the lowest character
    found.sort(key=lambda t: t[0].replace("/", "\0"))
    return found


def _combine(pairs) -> str:
    """The folder rule over ``(relative path, file hex digest)`` pairs in order."""
    digest = hashlib.sha256()
    for rel, sha in pairs:
        digest.update(rel.encode("utf-8") + b"\0" + sha.encode("ascii"))
    return digest.hexdigest()


def tree_sha256(folder) -> str:
    """The SHA-256 of a folder by the folder rule (its files' relative paths and contents).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision._hashing import tree_sha256
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b", "a/c", ".DS_Store"]:
    ...     (root / name).parent.mkdir(exist_ok=True); _ = (root / name).write_bytes(b"x")
    >>> before = tree_sha256(root)
    >>> _ = (root / ".DS_Store").write_bytes(b"finder"); tree_sha256(root) == before
    True
    >>> _ = (root / "b").rename(root / "d"); tree_sha256(root) == before
    False
    """
    return _combine((rel, file_sha256(path)) for rel, path in folder_files(folder))


def path_sha256(path) -> str:
    """The SHA-256 of a file (its bytes) or a folder (:func:`tree_sha256`): one rule for all,
    for inputs, outputs and models (a ``.keras`` archive, an ``.h5`` file, a SavedModel)."""
    path = Path(path)
    return tree_sha256(path) if path.is_dir() else file_sha256(path)


def stat_key(st: os.stat_result) -> list[int]:
    """The part of a stat a cached hash is reused on: ``[mtime_ns, ctime_ns, inode, device]``
    (the size is kept beside it, as it is also what tells a truncated file)."""
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def file_record(path, cached: dict | None = None, st=None) -> tuple[dict, bool]:
    """A file's identity record ``{"sha256", "size", "stat"}`` and whether it was hashed.

    ``cached`` (a record of the same file) is returned as it is when its size and stat equal
    the file's now (``st``: its ``os.stat`` if taken already); otherwise the file is hashed.
    The stat is taken before the bytes are read, so a change while hashing leaves a stat that
    no longer matches.
    """
    if st is None:
        st = os.stat(path)
    key = stat_key(st)
    if cached is not None and cached.get("stat") == key and cached.get("size") == st.st_size:
        return cached, False
    return {"sha256": file_sha256(path), "size": st.st_size, "stat": key}, True


def identify(path, cached: dict | None = None, st=None) -> tuple[dict, int]:
    """The identity record of a file or folder input, and how many files were hashed.

    A file: ``{"sha256", "size", "stat"}`` (:func:`file_record`). A folder: ``{"sha256",
    "size", "files": {relative path: file record}}``; only files whose stat changed are hashed
    again, and ``"sha256"`` is :func:`tree_sha256` of the folder. ``st``: the path's
    ``os.stat`` if taken already (before any read of it).

    Raises
    ------
    OSError
        The path cannot be read.
    """
    if st is None:
        st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        cached_file = cached if cached and "files" not in cached else None
        record, hashed = file_record(path, cached_file, st)
        return record, int(hashed)
    old = (cached or {}).get("files") or {}
    files: dict[str, dict] = {}
    n = 0
    for rel, file, file_st in _folder_stats(path):
        files[rel], hashed = file_record(file, old.get(rel), file_st)
        n += hashed
    if cached is not None and n == 0 and list(files) == list(old) and cached.get("sha256"):
        return cached, 0
    return {
        "sha256": _combine((rel, rec["sha256"]) for rel, rec in files.items()),
        "size": sum(rec["size"] for rec in files.values()),
        "files": files,
    }, n


def smudge_racy(record: dict | None, written_ns: int) -> None:
    """Drop, in place, the stat of a record (and of a folder record's files) that is not
    older than ``written_ns`` (a manifest's own mtime) less :data:`RACY_WINDOW_NS`: a change
    within the same timestamp tick would not show in it, so the file is hashed again."""
    if not record:
        return
    limit = written_ns - RACY_WINDOW_NS
    files = record.get("files")
    for rec in (*files.values(), record) if files else (record,):
        key = rec.get("stat")
        if key and (key[0] >= limit or key[1] >= limit):
            rec["stat"] = None


def snapshot(path) -> list:
    """Size and stat of a file or of each file of a folder (by the folder rule): equal
    snapshots before and after reading mean nothing was written meanwhile."""
    path = Path(path)
    files = folder_files(path) if path.is_dir() else [("", path)]
    out = []
    for rel, file in files:
        st = os.stat(file)
        out.append([rel, st.st_size, *stat_key(st)])
    return out
