"""Collecting a batch's inputs (internal): the input key, the input kinds and their registry.

Where a file or a folder becomes an :class:`Input`, and where an input kind says how it is
recognised, read, named at the output and written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any

from m1vision._hashing import walk_entries
from m1vision.errors import ImageReadError, InvalidParameterError, InvalidTypeError


class Input:
    """One input of a batch (immutable).

    Attributes
    ----------
    key : str
        The input key, the one name of an input in reports and manifests: its path relative
        to the folder given, with its extension and ``/`` separators (``"sub/a.nii.gz"``); for
        a file named directly, its name (``"IM0001"``); for a folder that is one input (a
        DICOM series), the folder's relative path (its name when named directly).
    path : pathlib.Path
        The absolute path of the file or folder (given as a str or a path; made a
        :class:`~pathlib.Path` when first asked for: a scan of thousands of files builds none).
    fspath : str
        The same path as a str (what the engine hands to workers and reports).
    kind : str
        The name of the :class:`InputKind` that recognised it.
    stat : os.stat_result or None
        The file's stat taken while collecting (a scanned file), so resume does not stat it
        again; not part of the input's identity (not compared).
    """

    __slots__ = ("_path", "fspath", "key", "kind", "stat")

    def __init__(self, key: str, path, kind: str, stat: os.stat_result | None = None):
        setattr_ = object.__setattr__
        setattr_(self, "key", key)
        setattr_(self, "fspath", path if type(path) is str else os.fspath(path))
        setattr_(self, "_path", None if type(path) is str else Path(path))
        setattr_(self, "kind", kind)
        setattr_(self, "stat", stat)

    @property
    def path(self) -> Path:
        path = self._path
        if path is None:
            path = Path(self.fspath)
            object.__setattr__(self, "_path", path)
        return path

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (self.key, self.fspath, self.kind) == (other.key, other.fspath, other.kind)

    def __hash__(self) -> int:
        return hash((self.key, self.fspath, self.kind))

    def __repr__(self) -> str:
        return f"Input(key={self.key!r}, path={self.path!r}, kind={self.kind!r})"

    def __reduce__(self):
        return (Input, (self.key, self.fspath, self.kind, self.stat))


_EXTENSIONS: dict[str, list[str]] = {}  # IMAGE_EXTENSIONS by last suffix, longest first


def _image_stem(key: str) -> str:
    if not _EXTENSIONS:
        from m1vision.io import IMAGE_EXTENSIONS

        for ext in sorted(IMAGE_EXTENSIONS, key=len, reverse=True):  # ".nii.gz" before ".gz"
            _EXTENSIONS.setdefault(ext[ext.rfind(".") :], []).append(ext)
    candidates = _EXTENSIONS.get(key[key.rfind(".") :].lower())
    if candidates is None:
        return key
    lower = key.lower()
    name_length = len(key) - key.rfind("/") - 1
    for ext in candidates:
        if lower.endswith(ext) and name_length > len(ext):
            return key[: -len(ext)]
    return key


def _is_image_file(path: Path) -> bool:
    from m1vision.io import has_image_extension

    return has_image_extension(path)


def _read_image(path: Path):
    from m1vision.io import read_any

    return read_any(path)


def _write_image(path: Path, result, source) -> None:
    from m1vision.io import write_image

    del source
    # OpenCV's fast PNG settings and no fsync: outputs stay atomic (never half-written; a
    # re-run recomputes anything a power cut loses, as the manifest has no record of it).
    write_image(path, result, overwrite=True, png_compression=None, fsync=False)


def _apply_2d(function, image, src: str):
    """Apply ``function`` to the 2-D image of a MedicalImage (a volume of one slice too)."""
    from m1vision.errors import InvalidImageError

    pixels = image.pixels
    if image.is_volume:
        if pixels.shape[0] != 1:
            raise InvalidImageError(
                f"{src!r} is a 3-D volume of {pixels.shape[0]} slices (shape {pixels.shape}) "
                "that no volume input kind took. Pipeline.run writes one .nii.gz per DICOM "
                "series folder, 3-D NIfTI file or monochrome multi-frame DICOM file, and one "
                "2-D image per other input. Process its slices in memory with "
                "`m1vision.volume.apply_volume(pipeline, m1vision.io.read_any(path))`, or, for "
                "a monochrome volume, write it as NIfTI first (`m1vision.io.write_nifti("
                "'scan.nii.gz', m1vision.io.read_any(path))`) and run Pipeline.run on that file."
            )
        pixels = pixels[0]
    return function(pixels)


@dataclass(frozen=True)
class InputKind:
    """How one kind of input is recognised, read, named at the output and written.

    Register one with :func:`register_input_kind`. Folder kinds (``folder=True``: a DICOM
    series folder that is one input) are asked about every folder met while scanning, before
    it is entered; file kinds about every file. The first kind that matches wins, in
    registration order; the built-in ``"image"`` kind comes last.

    Attributes
    ----------
    name : str
        The registered name (written into task arguments: workers look the kind up by name,
        so register it in a module that workers import too).
    matches : callable(pathlib.Path) -> bool
        Does this kind take this file (or, for a folder kind, this folder)? Must be cheap
        (names, a few header bytes).
    read : callable(pathlib.Path) -> object
        Read the input (a :class:`m1vision.io.MedicalImage` for images and volumes).
    output_stem : callable(str) -> str
        The output's relative path without suffix, from the input key
        (``"sub/a.png"`` -> ``"sub/a"``).
    apply : callable(function, data, str) -> result
        Apply a job's function (a pipeline over 2-D images) to what ``read`` returned; the
        third argument is the input's path, for messages. The image kind applies it to the
        2-D image (a volume of one slice is that slice; a larger volume is an error).
    write : callable(pathlib.Path, result, source) -> None
        Write a job's result for this input to the output path, atomically (``source`` is
        what ``read`` returned, for its geometry). Replaces any file there: the engine has
        decided already that it may.
    output_suffix : str, optional
        A suffix this kind always writes (``".nii.gz"`` for a volume), instead of the job's.
    folder : bool
        A folder kind.
    """

    name: str
    matches: Callable[[Path], bool]
    read: Callable[[Path], Any]
    output_stem: Callable[[str], str] = _image_stem
    apply: Callable[[Callable, Any, str], Any] = _apply_2d
    write: Callable[[Path, Any, Any], None] = _write_image
    output_suffix: str | None = None
    folder: bool = False


IMAGE_KIND = InputKind(name="image", matches=_is_image_file, read=_read_image)

_KINDS: dict[str, InputKind] = {}


def register_input_kind(kind: InputKind) -> InputKind:
    """Register an :class:`InputKind`; it is tried before the built-in ``"image"`` kind.

    Registering a kind of the same name again replaces it (a module reloaded in a notebook).

    Examples
    --------
    >>> from pathlib import Path
    >>> from m1vision.batch import InputKind, get_input_kind, register_input_kind
    >>> kind = register_input_kind(InputKind(
    ...     name="doc_raw", matches=lambda p: p.suffix == ".raw", read=lambda p: p.read_bytes()))
    >>> get_input_kind("doc_raw") is kind
    True
    >>> unregister_input_kind("doc_raw")
    """
    if not isinstance(kind, InputKind):
        raise InvalidTypeError(
            f"kind must be an m1vision.batch.InputKind, got {type(kind).__name__}. Fix: "
            "describe the kind as InputKind(name=..., ...) first."
        )
    if kind.name == IMAGE_KIND.name:
        raise InvalidParameterError(
            f"the input kind name {kind.name!r} is the built-in one; choose another name."
        )
    _KINDS[kind.name] = kind
    return kind


def unregister_input_kind(name: str) -> None:
    """Remove a registered kind (the built-in ``"image"`` kind stays); unknown names are ignored.

    Examples
    --------
    >>> from m1vision.batch import input_kinds, unregister_input_kind
    >>> unregister_input_kind("no-such-kind")
    >>> [kind.name for kind in input_kinds()][-1]
    'image'
    """
    _KINDS.pop(name, None)


def input_kinds(builtin=()) -> list[InputKind]:
    """The kinds a job accepts, in the order they are tried: ``builtin`` (the job's own,
    e.g. the volume kinds of :meth:`Pipeline.run`), then the registered ones, then the
    built-in ``"image"`` kind.

    What a job collects depends only on the job, never on which modules were imported.

    Examples
    --------
    >>> from m1vision.batch import input_kinds
    >>> input_kinds()[-1].name  # the built-in kind comes last
    'image'
    """
    return [*builtin, *(k for k in _KINDS.values() if k not in builtin), IMAGE_KIND]


def get_input_kind(name: str, kinds=None) -> InputKind:
    """The kind named ``name`` among ``kinds`` (default: :func:`input_kinds`).

    Raises
    ------
    InvalidParameterError
        An unknown name (the message lists the known ones).

    Examples
    --------
    >>> from m1vision.batch import get_input_kind
    >>> get_input_kind("image").name
    'image'
    """
    kinds = input_kinds() if kinds is None else kinds
    for kind in kinds:
        if kind.name == name:
            return kind
    known = ", ".join(k.name for k in kinds)
    raise InvalidParameterError(
        f"unknown input kind {name!r}; known: {known}. A worker process must import the module "
        "that registers it."
    )


def as_path_list(inputs) -> list:
    """``inputs`` (a path or a list of paths) as a list, or a ``TypeError``."""
    if isinstance(inputs, str | os.PathLike):
        return [inputs]
    if isinstance(inputs, bytes | Mapping) or not isinstance(inputs, Iterable):
        raise InvalidTypeError(
            "inputs must be a path (str or pathlib.Path) of a file or folder, or a list of "
            f"them, got {type(inputs).__name__}. Fix: pass e.g. pathlib.Path('scans') or "
            "[pathlib.Path('a.png'), pathlib.Path('b.png')]."
        )
    items = list(inputs)
    for i, item in enumerate(items):
        if not isinstance(item, str | os.PathLike):
            raise InvalidTypeError(
                f"inputs[{i}] must be a path (str or pathlib.Path), got {type(item).__name__}. "
                "Fix: pass the paths of files or folders only."
            )
    return items


def _folder_kind(path: Path, kinds) -> InputKind | None:
    for kind in kinds:
        if kind.folder and kind.matches(path):
            return kind
    return None


def _file_kind(path: Path, kinds, *, named: bool) -> InputKind | None:
    for kind in kinds:
        if not kind.folder and kind.matches(path):
            return kind
    return IMAGE_KIND if named else None  # a file named directly may have any name


def collect(inputs, *, exclude=None, kinds=None, known=None) -> list[Input]:
    """List the inputs of files and folders, each with its key and kind.

    Parameters
    ----------
    inputs : path or list of paths
        Files (any name: DICOM files often have no extension) and folders. A folder that a
        folder kind claims is one input; any other folder is scanned recursively, in sorted
        order, for files a kind takes (the built-in kind: the names ending in one of
        :data:`m1vision.io.IMAGE_EXTENSIONS`, any case). Hidden files and folders (names
        starting with ".") are left out; symbolic links to folders are not followed.
    exclude : path, optional
        A folder left out of scans (a run's output folder).
    kinds : list of InputKind, optional
        The kinds to recognise, in order (a job's :meth:`~m1vision.batch.Job.input_kinds`);
        default :func:`input_kinds`: the registered kinds, then ``"image"``.
    known : mapping, optional
        ``{input key: ((size, mtime_ns, ctime_ns, inode, device), kind name)}``: kinds found
        before (a manifest's records). A scanned file whose stat is exactly the recorded one
        is the file whose content that kind matched, so it takes that kind without being
        sniffed again (every other file is matched as usual).

    Returns
    -------
    list of Input
        In the order given; each folder's inputs sorted by relative path.

    Raises
    ------
    ImageReadError
        An input does not exist.
    InvalidParameterError
        Nothing found (the message lists the extensions looked for), or two inputs with the
        same key.
    TypeError
        ``inputs`` is not a path or a list of paths.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from m1vision.batch import collect
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["b.png", "a.dcm", "sub/c.nii.gz", "notes.txt", ".hidden.png"]:
    ...     (root / name).parent.mkdir(exist_ok=True); _ = (root / name).write_bytes(b"x")
    >>> [(i.key, i.kind) for i in collect(root)]
    [('a.dcm', 'image'), ('b.png', 'image'), ('sub/c.nii.gz', 'image')]
    """
    from m1vision.io import IMAGE_EXTENSIONS

    kinds = input_kinds() if kinds is None else list(kinds)
    exclude = Path(exclude).resolve() if exclude is not None else None
    items = as_path_list(inputs)
    found: list[Input] = []
    for item in items:
        path = Path(item).absolute()
        if path.is_dir():
            kind = _folder_kind(path, kinds)
            if kind is not None:
                found.append(Input(key=path.name, path=path, kind=kind.name))
            else:
                found += _scan(path, kinds, exclude, {} if known is None else known)
        elif path.is_file():
            kind = _file_kind(path, kinds, named=True)
            found.append(Input(key=path.name, path=path, kind=kind.name))
        elif path.exists():
            raise ImageReadError(path, "it is neither a regular file nor a folder.")
        else:
            raise ImageReadError(path, "no such file or folder; check the path.")
    if not found:
        raise InvalidParameterError(
            f"no image files in {', '.join(repr(str(i)) for i in items) or 'an empty list'}; "
            f"folders are scanned for {', '.join(sorted(IMAGE_EXTENSIONS))} (a DICOM file "
            "without an extension must be named directly)."
        )
    if len({inp.key for inp in found}) == len(found):
        return found
    seen: dict[str, str] = {}
    for inp in found:  # which two
        if inp.key in seen:
            raise InvalidParameterError(
                f"{seen[inp.key]!r} and {inp.fspath!r} have the same input key "
                f"{inp.key!r} (the path relative to the folder given); give them in one "
                "folder, or run them into different out_dirs."
            )
        seen[inp.key] = inp.fspath
    return found


def stat_tuple(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """``(size, mtime_ns, ctime_ns, inode, device)``: the stat a recorded kind is reused on."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _scan(folder: Path, kinds, exclude: Path | None, known) -> list[Input]:
    """Scan ``folder`` as :func:`os.walk` would (symbolic links to folders are offered to
    the folder kinds but not entered), with one :func:`os.scandir` per folder and the stat of
    each file from its directory entry.

    A file whose stat is the one ``known`` records takes its recorded kind; its input keeps
    its path as a str (no :class:`~pathlib.Path` is built per file)."""
    file_kinds = {kind.name: kind for kind in kinds if not kind.folder}
    known_get = known.get
    kind_of = getattr(known, "kind_of", None)
    found = []
    nested = False  # keys with a "/": sorted by their parts

    def enter(key: str, entry) -> bool:
        nonlocal nested
        sub = Path(entry.path)
        if exclude is not None and sub.resolve() == exclude:
            return False
        kind = _folder_kind(sub, kinds)
        if kind is not None:  # one input: not entered
            found.append(Input(key, entry.path, kind.name))
            return False
        if entry.is_symlink():
            return False
        nested = True
        return True

    for key, entry in walk_entries(folder, enter):
        try:
            st = entry.stat()
        except OSError:
            st = None  # a broken link: matched by name, its read reports it
        kind = None
        if st is None:
            pass
        elif kind_of is not None:  # a manifest's lists: no tuple per file
            name = kind_of(key, st)
            kind = None if name is None else file_kinds.get(name)
        else:
            recorded = known_get(key)
            if recorded is not None and recorded[0] == stat_tuple(st):
                kind = file_kinds.get(recorded[1])
        if kind is None:
            kind = _file_kind(Path(entry.path), kinds, named=False)
        if kind is not None:
            found.append(Input(key, entry.path, kind.name, st))
    # sorted by the key's parts (as os.walk's sorted order: "a/b" before "a.png")
    found.sort(key=_key_parts if nested else _key)
    return found


def _key(inp: Input) -> str:
    return inp.key


def _key_parts(inp: Input) -> list[str]:
    return inp.key.split("/")
