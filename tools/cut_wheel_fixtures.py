"""Cut small Mach-O test fixtures out of real, published macOS wheels (needs PyPI).

    python tools/cut_wheel_fixtures.py [--out tests/fixtures/binaries] [--overwrite]

For each entry of :data:`SOURCES` this downloads one wheel with ``pip download
--only-binary=:all: --no-deps --platform TAG --python-version 3.11`` into a temporary
folder, takes one compiled extension out of it and keeps only its headers:

* a thin Mach-O file: the mach header and its load commands (the file is truncated there);
* a fat (universal2) file: the fat header and arch table, and each slice's mach header and
  load commands at their original offsets; every other byte is zero, the size is unchanged.

That is all :func:`m1vision.binarch.read_architectures` reads, so the tests see the same
bytes a Mac would. The cut files are gzipped into the output folder and described in
``MANIFEST.json`` (source wheel and its sha256, member path, member sha256 and size, how
it was cut, the byte ranges kept; for NumPy wheels also the BLAS/LAPACK named in
the wheel's ``numpy/__config__.py``, which the doctor's tests use as recorded build
configs). The tests never download; run this again only to
refresh the fixtures.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from macholib.mach_o import (
    FAT_MAGIC,
    FAT_MAGIC_64,
    MH_CIGAM,
    MH_CIGAM_64,
    MH_MAGIC,
    MH_MAGIC_64,
    fat_arch,
    fat_arch64,
    fat_header,
    mach_header,
    mach_header_64,
)
from macholib.ptypes import sizeof

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from m1vision._atomic import atomic_write_bytes, atomic_write_json  # noqa: E402

#: fixture file name -> (requirement, pip --platform tag, member name pattern (a prefix of
#: the file name inside the wheel, and its suffix))
SOURCES = {
    "numpy-2.0.2-macosx_11_0_arm64-_multiarray_umath.so.gz": (
        "numpy==2.0.2",
        "macosx_11_0_arm64",
        ("numpy/_core/_multiarray_umath.", ".so"),
    ),
    # NumPy's macOS 14 wheels link Accelerate, the macOS 11 ones OpenBLAS
    "numpy-2.0.2-macosx_14_0_arm64-_multiarray_umath.so.gz": (
        "numpy==2.0.2",
        "macosx_14_0_arm64",
        ("numpy/_core/_multiarray_umath.", ".so"),
    ),
    "numpy-2.0.2-macosx_10_9_x86_64-_multiarray_umath.so.gz": (
        "numpy==2.0.2",
        "macosx_10_9_x86_64",
        ("numpy/_core/_multiarray_umath.", ".so"),
    ),
    "MarkupSafe-2.1.5-macosx_10_9_universal2-_speedups.so.gz": (
        "MarkupSafe==2.1.5",
        "macosx_10_9_universal2",
        ("markupsafe/_speedups.", ".so"),
    ),
}


#: Recorded from NumPy wheels: the BLAS/LAPACK its build config names (numpy/__config__.py).
NUMPY_CONFIG = "numpy/__config__.py"
_BLAS_ENTRY = re.compile(
    r'"(blas|lapack)": \{\s*"name": "([^"]*)",\s*"found": [^\n]*\n\s*"version": "([^"]*)"'
)


def numpy_build_dependencies(config_py: str) -> dict:
    """``{"blas": {"name", "version"}, "lapack": {...}}`` from a wheel's numpy/__config__.py."""
    found = {k: {"name": name, "version": v} for k, name, v in _BLAS_ENTRY.findall(config_py)}
    if set(found) != {"blas", "lapack"}:
        raise RuntimeError(f"no blas/lapack entries found in {NUMPY_CONFIG}")
    return found


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(requirement: str, platform_tag: str, dest: Path) -> Path:
    """``pip download`` one binary wheel for ``platform_tag`` and CPython 3.11; its path."""
    before = set(dest.glob("*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--only-binary=:all:",
            "--no-deps",
            "--platform",
            platform_tag,
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "-d",
            str(dest),
            requirement,
        ],
        check=True,
    )
    new = sorted(set(dest.glob("*.whl")) - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new wheel for {requirement} {platform_tag}, got {new}")
    return new[0]


def _thin_header_span(data: bytes, offset: int) -> tuple[int, str]:
    """Length of the mach header + load commands of the slice at ``offset`` and its kind."""
    (magic,) = struct.unpack_from(">I", data, offset)
    if magic in (MH_MAGIC, MH_MAGIC_64):
        endian = ">"
    elif magic in (MH_CIGAM, MH_CIGAM_64):
        endian = "<"
    else:
        raise ValueError(f"no Mach-O header at offset {offset} (magic 0x{magic:08x})")
    header_cls = mach_header_64 if magic in (MH_MAGIC_64, MH_CIGAM_64) else mach_header
    header = header_cls.from_str(data[offset : offset + sizeof(header_cls)], _endian_=endian)
    return sizeof(header_cls) + header.sizeofcmds, header_cls.__name__


def cut(data: bytes) -> tuple[bytes, list[list[int]], str]:
    """Keep only the headers of a Mach-O file: (cut bytes, kept [offset, length] ranges, how)."""
    (magic,) = struct.unpack_from(">I", data, 0)
    if magic in (FAT_MAGIC, FAT_MAGIC_64):
        fat = fat_header.from_str(data[: sizeof(fat_header)], _endian_=">")
        arch_cls = fat_arch64 if magic == FAT_MAGIC_64 else fat_arch
        table_end = sizeof(fat_header) + fat.nfat_arch * sizeof(arch_cls)
        kept = [[0, table_end]]
        pos = sizeof(fat_header)
        for _ in range(fat.nfat_arch):
            arch = arch_cls.from_str(data[pos : pos + sizeof(arch_cls)], _endian_=">")
            pos += sizeof(arch_cls)
            length, _ = _thin_header_span(data, arch.offset)
            kept.append([arch.offset, length])
        out = bytearray(len(data))
        for start, length in kept:
            out[start : start + length] = data[start : start + length]
        how = (
            f"fat: fat header + {fat.nfat_arch}-entry arch table, and each slice's mach header "
            "+ load commands at their original offsets; all other bytes zeroed, size unchanged"
        )
        return bytes(out), kept, how
    length, kind = _thin_header_span(data, 0)
    how = f"thin: {kind} + load commands (sizeofcmds); the file is truncated after them"
    return data[:length], [[0, length]], how


def make_fixture(name: str, source: tuple, workdir: Path, out_dir: Path, *, overwrite: bool):
    requirement, platform_tag, (prefix, suffix) = source
    wheel = download(requirement, platform_tag, workdir)
    wheel_bytes = wheel.read_bytes()
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zf:
        members = [
            n for n in zf.namelist() if n.startswith(prefix) and n.endswith(suffix) and "/" in n
        ]
        if len(members) != 1:
            raise RuntimeError(f"{wheel.name}: expected one {prefix}*{suffix}, got {members}")
        member = members[0]
        data = zf.read(member)
        names = set(zf.namelist())
        config = (
            numpy_build_dependencies(zf.read(NUMPY_CONFIG).decode())
            if NUMPY_CONFIG in names
            else None
        )
    cut_bytes, kept, how = cut(data)
    # mtime=0 and no file name: the same input gives the same .gz bytes
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(cut_bytes)
    gz_bytes = buf.getvalue()
    os.chmod(atomic_write_bytes(out_dir / name, gz_bytes, overwrite=overwrite), 0o644)
    print(f"{name}: {len(data)} -> {len(cut_bytes)} bytes ({len(gz_bytes)} gzipped)")
    entry = {
        "requirement": requirement,
        "platform_tag": platform_tag,
        "wheel": wheel.name,
        "wheel_sha256": sha256(wheel_bytes),
        "member": member,
        "member_sha256": sha256(data),
        "member_size": len(data),
        "how": how,
        "kept": kept,
        "kept_bytes": sum(length for _, length in kept),
        "cut_size": len(cut_bytes),
        "cut_sha256": sha256(cut_bytes),
        "gz_sha256": sha256(gz_bytes),
    }
    if config is not None:
        entry["numpy_build_dependencies"] = config
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "binaries")
    parser.add_argument("--overwrite", action="store_true", help="replace existing fixtures")
    args = parser.parse_args(argv)
    manifest = {
        "about": "Header-only cuts of compiled extensions from published macOS wheels, made by "
        "tools/cut_wheel_fixtures.py; each entry says where the bytes came from and which "
        "byte ranges ([offset, length]) were kept.",
        "fixtures": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, source in SOURCES.items():
            manifest["fixtures"][name] = make_fixture(
                name, source, Path(tmp), args.out, overwrite=args.overwrite
            )
    os.chmod(
        atomic_write_json(args.out / "MANIFEST.json", manifest, overwrite=args.overwrite), 0o644
    )
    print(f"wrote {len(SOURCES)} fixtures and MANIFEST.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
