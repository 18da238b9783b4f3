"""Which CPU architectures is a compiled file built for? (Mach-O thin/fat, and ELF)

A Python that runs natively on Apple Silicon can only load ``arm64`` (or ``universal2``)
extension modules; an ``x86_64`` ``.so`` in the environment means a package came from an
x86_64 wheel (a Rosetta or Intel Python) and will fail to import, or force the whole
process under Rosetta. This module answers the question from the file headers alone:

* Mach-O (macOS), thin or fat/universal2, with the structures of macholib;
* ELF (Linux), with pyelftools.

Only the headers are read (a few hundred bytes per file: the fat arch table, each slice's
mach header and its load commands), so scanning TensorFlow's ~100 libraries takes
milliseconds and no section data is loaded.

Errors: a file that is no Mach-O or ELF binary, or whose headers are truncated or
inconsistent, raises :class:`BinaryFormatError` (a :class:`~m1vision.errors.M1VisionError`
and a :class:`ValueError`) naming the file. A missing file raises :class:`FileNotFoundError`.
"""

from __future__ import annotations

import importlib.metadata
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from m1vision.errors import BinaryFormatError, InvalidParameterError

__all__ = [
    "BinaryFormatError",
    "BinaryInfo",
    "package_binaries",
    "read_architectures",
    "summarize",
]

#: File names treated as compiled libraries: ``x.so``, ``x.so.1.2``, ``x.dylib``.
BINARY_NAME = re.compile(r"\.(so|dylib)(\.\d+)*$")

# Mach-O CPU types (mach/machine.h) -> the names pip, uname and lipo use.
_MACHO_ARCH = {"ARM64": "arm64", "x86_64": "x86_64", "i386": "i386", "ARM": "arm"}
# ELF e_machine (as pyelftools names them) -> the names platform.machine() gives on Linux.
_ELF_ARCH = {
    "EM_X86_64": "x86_64",
    "EM_AARCH64": "aarch64",
    "EM_386": "i686",
    "EM_ARM": "armv7l",
    "EM_PPC64": "ppc64le",
    "EM_S390": "s390x",
    "EM_RISCV": "riscv64",
}
_ELF_MAGIC = b"\x7fELF"
# A fat header starts with 0xcafebabe, as do Java class files; a real fat file has a few
# slices, a class file's "count" is its version number (>= 45). Same test as file(1).
_MAX_FAT_ARCHS = 30


@dataclass(frozen=True)
class BinaryInfo:
    """What a compiled file is built for.

    Attributes
    ----------
    format : str
        ``"mach-o"`` (one architecture), ``"mach-o-fat"`` (universal, several slices) or
        ``"elf"``.
    architectures : tuple of str
        In file order: ``("arm64",)``, ``("x86_64", "arm64")`` (universal2), ``("x86_64",)``,
        ``("aarch64",)``. Mach-O names as ``lipo -archs`` prints them, ELF names as
        ``platform.machine()`` on Linux.
    min_macos : tuple of (str or None)
        Per architecture, the oldest macOS the slice runs on (``LC_BUILD_VERSION`` or
        ``LC_VERSION_MIN_MACOSX``), e.g. ``"11.0"``; empty for ELF.
    """

    format: str
    architectures: tuple[str, ...]
    min_macos: tuple[str | None, ...] = ()

    def runs_on(self, machine: str) -> bool:
        """True if the file has a slice for ``machine`` (``"arm64"``, ``"x86_64"``...).

        ``aarch64`` and ``arm64`` are the same CPU under the names Linux and macOS use.
        """
        aliases = {"aarch64": "arm64", "amd64": "x86_64"}
        want = aliases.get(machine, machine)
        return any(aliases.get(a, a) == want for a in self.architectures)


def _version(packed: int) -> str:
    """Mach-O packs versions as xxxx.yy.zz nibbles; ``"11.0"`` or ``"10.9.5"``."""
    major, minor, patch = packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF
    return f"{major}.{minor}.{patch}" if patch else f"{major}.{minor}"


def _read_exact(fh, offset: int, size: int, path, what: str) -> bytes:
    fh.seek(offset)
    data = fh.read(size)
    if len(data) != size:
        raise BinaryFormatError(path, f"file ends inside the {what} at offset {offset}")
    return data


def _macho_slice(fh, offset: int, path) -> tuple[str, str | None]:
    """(architecture, min macOS) of the thin Mach-O starting at ``offset``."""
    from macholib.mach_o import (
        CPU_TYPE_NAMES,
        LC_BUILD_VERSION,
        LC_VERSION_MIN_MACOSX,
        MH_CIGAM,
        MH_CIGAM_64,
        MH_MAGIC,
        MH_MAGIC_64,
        build_version_command,
        load_command,
        mach_header,
        mach_header_64,
        version_min_command,
    )
    from macholib.ptypes import sizeof

    (magic,) = struct.unpack(">I", _read_exact(fh, offset, 4, path, "Mach-O magic"))
    if magic in (MH_MAGIC, MH_MAGIC_64):
        endian = ">"
    elif magic in (MH_CIGAM, MH_CIGAM_64):
        endian = "<"
    else:
        raise BinaryFormatError(path, f"no Mach-O header at offset {offset} (0x{magic:08x})")
    header_cls = mach_header_64 if magic in (MH_MAGIC_64, MH_CIGAM_64) else mach_header
    raw = _read_exact(fh, offset, sizeof(header_cls), path, "mach header")
    header = header_cls.from_str(raw, _endian_=endian)
    cpu = CPU_TYPE_NAMES.get(int(header.cputype), f"cputype-{int(header.cputype)}")
    arch = _MACHO_ARCH.get(cpu, cpu)
    commands = _read_exact(
        fh, offset + sizeof(header_cls), header.sizeofcmds, path, "load commands"
    )
    min_macos, pos, lc_size = None, 0, sizeof(load_command)
    for _ in range(header.ncmds):
        if pos + lc_size > len(commands):
            raise BinaryFormatError(path, "load commands overrun sizeofcmds")
        lc = load_command.from_str(commands[pos : pos + lc_size], _endian_=endian)
        if lc.cmdsize < lc_size or pos + lc.cmdsize > len(commands):
            raise BinaryFormatError(path, f"load command of bad size {lc.cmdsize}")
        body = commands[pos + lc_size : pos + lc.cmdsize]
        if lc.cmd == LC_BUILD_VERSION and len(body) >= sizeof(build_version_command):
            cmd = build_version_command.from_str(
                body[: sizeof(build_version_command)], _endian_=endian
            )
            min_macos = _version(cmd.minos)
        elif lc.cmd == LC_VERSION_MIN_MACOSX and len(body) >= sizeof(version_min_command):
            cmd = version_min_command.from_str(body[: sizeof(version_min_command)], _endian_=endian)
            min_macos = _version(cmd.version)
        pos += lc.cmdsize
    if pos != header.sizeofcmds:
        raise BinaryFormatError(
            path, f"load commands take {pos} bytes, the header says {header.sizeofcmds}"
        )
    return arch, min_macos


def _read_macho(fh, magic: int, path) -> BinaryInfo:
    from macholib.mach_o import FAT_MAGIC, FAT_MAGIC_64, fat_arch, fat_arch64, fat_header
    from macholib.ptypes import sizeof

    if magic not in (FAT_MAGIC, FAT_MAGIC_64):
        arch, min_macos = _macho_slice(fh, 0, path)
        return BinaryInfo("mach-o", (arch,), (min_macos,))
    fat = fat_header.from_str(
        _read_exact(fh, 0, sizeof(fat_header), path, "fat header"), _endian_=">"
    )
    if not 0 < fat.nfat_arch <= _MAX_FAT_ARCHS:
        raise BinaryFormatError(
            path, f"a fat header with {fat.nfat_arch} slices (a Java class file?)"
        )
    arch_cls = fat_arch64 if magic == FAT_MAGIC_64 else fat_arch
    table = _read_exact(
        fh, sizeof(fat_header), fat.nfat_arch * sizeof(arch_cls), path, "fat arch table"
    )
    archs, mins = [], []
    for i in range(fat.nfat_arch):
        entry = arch_cls.from_str(
            table[i * sizeof(arch_cls) : (i + 1) * sizeof(arch_cls)], _endian_=">"
        )
        arch, min_macos = _macho_slice(fh, entry.offset, path)
        archs.append(arch)
        mins.append(min_macos)
    return BinaryInfo("mach-o-fat", tuple(archs), tuple(mins))


def _read_elf(fh, path) -> BinaryInfo:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    fh.seek(0)
    try:
        machine = ELFFile(fh)["e_machine"]
    except (ELFError, struct.error) as exc:
        raise BinaryFormatError(path, f"bad ELF header ({exc})") from None
    return BinaryInfo("elf", (_ELF_ARCH.get(machine, str(machine)),), ())


def read_architectures(path) -> BinaryInfo:
    """Read the format and CPU architectures of a compiled file from its headers.

    Parameters
    ----------
    path : str or os.PathLike
        A Mach-O (thin or fat/universal2) or ELF file: an extension module (``.so``),
        a shared library (``.dylib``, ``.so.N``) or an executable.

    Returns
    -------
    BinaryInfo
        ``format`` (``"mach-o"``, ``"mach-o-fat"``, ``"elf"``), ``architectures`` in file
        order, and for Mach-O the minimum macOS version of each slice.

    Raises
    ------
    BinaryFormatError
        The file is not a Mach-O or ELF binary, or its headers are truncated.
    FileNotFoundError
        There is no such file.

    Examples
    --------
    >>> import sys
    >>> from m1vision.binarch import read_architectures
    >>> info = read_architectures(sys.executable)  # the Python running this
    >>> info.format in ("mach-o", "mach-o-fat", "elf")
    True
    >>> import platform
    >>> info.runs_on(platform.machine())
    True
    """
    path = Path(path)
    if path.is_dir():
        raise BinaryFormatError(path, "it is a folder")
    with open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4:
            raise BinaryFormatError(path, f"only {len(head)} bytes long")
        if head == _ELF_MAGIC:
            return _read_elf(fh, path)
        from macholib.mach_o import (
            FAT_MAGIC,
            FAT_MAGIC_64,
            MH_CIGAM,
            MH_CIGAM_64,
            MH_MAGIC,
            MH_MAGIC_64,
        )

        (magic,) = struct.unpack(">I", head)
        if magic in (FAT_MAGIC, FAT_MAGIC_64, MH_MAGIC, MH_MAGIC_64, MH_CIGAM, MH_CIGAM_64):
            return _read_macho(fh, magic, path)
    raise BinaryFormatError(path, f"unknown magic bytes {head!r}")


def package_binaries(dist_name: str) -> list[tuple[str, BinaryInfo]]:
    """The compiled libraries of an installed distribution and their architectures.

    Parameters
    ----------
    dist_name : str
        The distribution name as pip knows it (``"numpy"``, ``"opencv-python-headless"``,
        ``"tensorflow"``), not the import name.

    Returns
    -------
    list of (str, BinaryInfo)
        One entry per ``.so``/``.dylib`` (also ``.so.N``) file listed in the distribution's
        RECORD that exists on disk, as (path relative to site-packages, info), sorted by path.

    Raises
    ------
    InvalidParameterError
        No distribution of that name is installed (the message says how to install it).
    BinaryFormatError
        A listed library is not a readable binary (a damaged installation).

    Examples
    --------
    >>> from m1vision.binarch import package_binaries
    >>> entries = package_binaries("numpy")
    >>> any(name.startswith("numpy/_core/_multiarray_umath") for name, _ in entries)
    True
    """
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise InvalidParameterError(
            f"dist_name={dist_name!r}: no installed distribution of that name; expected a pip "
            f"distribution name (e.g. 'numpy'); install it with `pip install {dist_name}`."
        ) from None
    found = []
    for file in dist.files or ():
        if not BINARY_NAME.search(file.name):
            continue
        full = Path(dist.locate_file(file))
        if full.is_file():
            found.append((file.as_posix(), read_architectures(full)))
    return sorted(found, key=lambda item: item[0])


def summarize(entries: list[tuple[str, BinaryInfo]]) -> dict:
    """Condense :func:`package_binaries` output: counts per architecture and format.

    Returns ``{"files": n, "architectures": {arch: count}, "formats": {fmt: count},
    "by_architecture_set": {"arm64+x86_64": [files...]}}`` (JSON-ready; architectures
    sorted within each set).

    Examples
    --------
    >>> from m1vision.binarch import BinaryInfo, summarize
    >>> s = summarize([("a.so", BinaryInfo("mach-o", ("arm64",))),
    ...                ("b.so", BinaryInfo("mach-o-fat", ("x86_64", "arm64")))])
    >>> s["architectures"]
    {'arm64': 2, 'x86_64': 1}
    >>> s["by_architecture_set"]["arm64+x86_64"]
    ['b.so']
    """
    archs: Counter = Counter()
    formats: Counter = Counter()
    groups: dict[str, list[str]] = {}
    for name, info in entries:
        archs.update(set(info.architectures))
        formats[info.format] += 1
        groups.setdefault("+".join(sorted(set(info.architectures))), []).append(name)
    return {
        "files": len(entries),
        "architectures": dict(sorted(archs.items())),
        "formats": dict(sorted(formats.items())),
        "by_architecture_set": dict(sorted(groups.items())),
    }
