"""Which CPU architectures is a compiled file built for? (Mach-O thin/fat, and ELF)

The public face of :mod:`m1vision.doctor._binarch` (the doctor's room for it); see there
for the details. :class:`~m1vision.errors.BinaryFormatError` lives in :mod:`m1vision.errors`
and is importable from here too.
"""

from __future__ import annotations

from m1vision.doctor._binarch import (
    BINARY_NAME,
    BinaryFormatError,
    BinaryInfo,
    package_binaries,
    read_architectures,
    summarize,
)

__all__ = [
    "BINARY_NAME",
    "BinaryFormatError",
    "BinaryInfo",
    "package_binaries",
    "read_architectures",
    "summarize",
]
