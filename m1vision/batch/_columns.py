"""A manifest's items as parallel lists (internal): the version 3 layout of ``"items"``.

One list per field, one position per input, in the order of the input keys; a resume reads
them with a few thousand JSON values per thousand inputs instead of a dict per record, and
decides the usual input (a file whose stat and whose output's stat are the recorded ones)
without building its record (:meth:`Columns.unchanged`)::

    "items": {"key": [...], "kind": [...], "status": [...], "error": [...], "output": [...],
              "input": {"sha256": [...], "size": [...],
                        "stat": [mtime_ns, ctime_ns, ino, dev, mtime_ns, ...]},
              "output_file": {"sha256": [...], "size": [...], "stat": [...]},
              "input_files": {"<position>": {"<rel>": {"sha256", "size", "stat"}}},
              "result": {"<position>": {...}}}

``stat`` holds four numbers per position (four nulls: no stat to trust), one flat list. A record
that is null has null ``sha256`` and ``size``; a folder input's files are in ``input_files`` (its
``stat`` is null); ``result`` holds only the items whose result is not empty.
:meth:`Columns.entry` makes the version 2 record of one position: what the rest of the engine
(and :attr:`Manifest.items`) works with.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from m1vision._hashing import RACY_WINDOW_NS, smudge_racy

_LISTS = ("key", "kind", "status", "error", "output")
_RECORDS = ("input", "output_file")
_NO_STAT = (None, None, None, None)


def to_columns(items: dict[str, dict]) -> dict:
    """The version 3 ``"items"`` of records keyed by input key (version 2 records)."""
    keys = sorted(items)
    entries = [items[key] for key in keys]
    out: dict = {"key": keys}
    for name in _LISTS[1:]:
        out[name] = [entry.get(name) for entry in entries]
    files: dict[str, dict] = {}
    for name in _RECORDS:
        sha, size, stat = [], [], []
        for i, entry in enumerate(entries):
            rec = entry.get(name)
            if not rec:
                sha.append(None), size.append(None), stat.extend(_NO_STAT)
                continue
            sha.append(rec.get("sha256"))
            size.append(rec.get("size"))
            key = rec.get("stat")
            stat.extend(key if isinstance(key, list) and len(key) == 4 else _NO_STAT)
            if name == "input" and "files" in rec:
                files[str(i)] = rec["files"]
        out[name] = {"sha256": sha, "size": size, "stat": stat}
    out["input_files"] = files
    out["result"] = {str(i): e["result"] for i, e in enumerate(entries) if e.get("result")}
    return out


class Columns:
    """The items of a version 3 manifest as read (see the module); read only."""

    __slots__ = (
        "error",
        "files",
        "in_sha",
        "in_size",
        "in_stat",
        "index",
        "key",
        "kind",
        "out_sha",
        "out_size",
        "out_stat",
        "output",
        "result",
        "status",
    )

    def __init__(self, items) -> None:
        """Raises ValueError where ``items`` is not the version 3 layout."""
        if not isinstance(items, dict):
            raise ValueError("'items' is not a mapping of columns")
        lists = [items.get(name) for name in _LISTS]
        records = [items.get(name) for name in _RECORDS]
        for rec in records:
            if not isinstance(rec, dict):
                raise ValueError("a record column is not a mapping")
            lists += [rec.get("sha256"), rec.get("size"), rec.get("stat")]
        n = len(lists[0]) if isinstance(lists[0], list) else -1
        lengths = [n, n, n, n, n, n, n, 4 * n, n, n, 4 * n]
        if any(not isinstance(c, list) or len(c) != k for c, k in zip(lists, lengths, strict=True)):
            raise ValueError("its columns are not lists of one length (four numbers per stat)")
        files, result = items.get("input_files", {}), items.get("result", {})
        if not isinstance(files, dict) or not isinstance(result, dict):
            raise ValueError("'input_files' or 'result' is not a mapping")
        (self.key, self.kind, self.status, self.error, self.output) = lists[:5]
        (self.in_sha, self.in_size, self.in_stat) = lists[5:8]
        (self.out_sha, self.out_size, self.out_stat) = lists[8:11]
        try:
            self.files = {int(i): rec for i, rec in files.items()}
            self.result = {int(i): rec for i, rec in result.items()}
        except ValueError:
            raise ValueError("a position in 'input_files' or 'result' is no number") from None
        if not all(isinstance(rec, dict) for rec in (*self.files.values(), *self.result.values())):
            raise ValueError("a folder's files or a result is not a mapping")
        self.index = {key: i for i, key in enumerate(self.key)}
        if len(self.index) != n:
            raise ValueError("an input key is there twice")

    def smudge(self, written_ns: int) -> None:
        """Drop the stats not older than ``written_ns`` less the racy window
        (:func:`m1vision._hashing.smudge_racy`, over every record)."""
        limit = written_ns - RACY_WINDOW_NS
        for stats in (self.in_stat, self.out_stat):
            for j in range(0, len(stats), 4):
                mtime, ctime = stats[j], stats[j + 1]
                if mtime is None and ctime is None:
                    continue
                try:
                    racy = mtime >= limit or ctime >= limit
                except TypeError:  # damaged: not to be trusted
                    racy = True
                if racy:
                    stats[j : j + 4] = _NO_STAT
        for files in self.files.values():
            smudge_racy({"files": files}, written_ns)

    def entry(self, i: int) -> dict:
        """The record of position ``i`` (the version 2 item)."""
        if self.in_sha[i] is None and self.in_size[i] is None and i not in self.files:
            inp = None
        elif i in self.files:
            inp = {"sha256": self.in_sha[i], "size": self.in_size[i], "files": self.files[i]}
        else:
            inp = {
                "sha256": self.in_sha[i],
                "size": self.in_size[i],
                "stat": _stat(self.in_stat, i),
            }
        if self.out_sha[i] is None and self.out_size[i] is None:
            out = None
        else:
            out = {
                "sha256": self.out_sha[i],
                "size": self.out_size[i],
                "stat": _stat(self.out_stat, i),
            }
        return {
            "kind": self.kind[i],
            "input": inp,
            "output": self.output[i],
            "output_file": out,
            "status": self.status[i],
            "error": self.error[i],
            "result": self.result.get(i, {}),
        }

    def items(self) -> dict[str, dict]:
        """Every record, keyed by input key."""
        return {key: self.entry(i) for i, key in enumerate(self.key)}

    def known_kinds(self) -> KnownKinds:
        """As :meth:`m1vision.batch.Manifest.known_kinds`, from the columns."""
        return KnownKinds(self)

    def unchanged(self, planned) -> list[int | None]:
        """For each ``(input, output path or None)`` of ``planned``: its position when it is
        an ``"ok"`` record of a file input of the same kind whose size and whole stat are the
        input's stat from collecting, and (where there is an output) whose output's size and
        whole stat are the file's now; -1 when the key has no record; else None (decided
        from its record). One ``os.stat`` per output, nothing read, no record built."""
        index_get, kinds, status, files = self.index.get, self.kind, self.status, self.files
        in_sha, in_size, in_stat = self.in_sha, self.in_size, self.in_stat
        out_sha, out_size, out_stat = self.out_sha, self.out_size, self.out_stat
        stat = os.stat
        found: list[int | None] = []
        for inp, out in planned:
            i = index_get(inp.key)
            if i is None:
                found.append(-1)
                continue
            st, j = inp.stat, 4 * i
            if (
                st is None
                or kinds[i] != inp.kind
                or status[i] != "ok"
                or not in_sha[i]
                or i in files
                or in_size[i] != st.st_size
                or in_stat[j] != st.st_mtime_ns
                or in_stat[j + 1] != st.st_ctime_ns
                or in_stat[j + 2] != st.st_ino
                or in_stat[j + 3] != st.st_dev
            ):
                found.append(None)
                continue
            if out is not None:
                try:
                    st = stat(out)
                except OSError:
                    found.append(None)
                    continue
                if (
                    out_sha[i] is None
                    or out_size[i] != st.st_size
                    or out_stat[j] != st.st_mtime_ns
                    or out_stat[j + 1] != st.st_ctime_ns
                    or out_stat[j + 2] != st.st_ino
                    or out_stat[j + 3] != st.st_dev
                ):
                    found.append(None)
                    continue
            found.append(i)
        return found


def _stat(stats: list, i: int) -> list | None:
    """The stat of position ``i`` in a flat stat column, or None."""
    j = 4 * i
    return None if stats[j] is None and stats[j + 1] is None else stats[j : j + 4]


class KnownKinds(Mapping):
    """``{input key: ((size, mtime_ns, ctime_ns, inode, device), kind name)}`` of the trusted
    file records of :class:`Columns`, looked up in its lists (no dict is built);
    :meth:`kind_of` is what collecting asks."""

    def __init__(self, columns: Columns) -> None:
        self._columns = columns

    def _position(self, key) -> int | None:
        c = self._columns
        i = c.index.get(key)
        if i is None or not c.kind[i] or c.in_stat[4 * i] is None or not c.in_sha[i]:
            return None
        return None if i in c.files else i

    def __getitem__(self, key):
        i = self._position(key)
        if i is None:
            raise KeyError(key)
        c = self._columns
        return ((c.in_size[i], *c.in_stat[4 * i : 4 * i + 4]), c.kind[i])

    def __iter__(self):
        return (key for key in self._columns.key if self._position(key) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @functools.cached_property
    def kind_of(self):
        """``kind_of(key, st)``: the recorded kind of ``key`` if ``st`` is its recorded size
        and stat, else None (one closure over the lists: collecting asks it per file)."""
        c = self._columns
        index_get, kinds, stat, sha, size, files = (
            c.index.get,
            c.kind,
            c.in_stat,
            c.in_sha,
            c.in_size,
            c.files,
        )

        def kind_of(key, st):
            i = index_get(key)
            if i is None:
                return None
            j = 4 * i
            if (
                stat[j] == st.st_mtime_ns
                and stat[j + 1] == st.st_ctime_ns
                and stat[j + 2] == st.st_ino
                and stat[j + 3] == st.st_dev
                and size[i] == st.st_size
                and sha[i]
                and i not in files
            ):
                return kinds[i] or None
            return None

        return kind_of
