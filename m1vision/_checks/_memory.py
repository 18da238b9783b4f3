"""Memory checks (internal): an output refused before it is allocated when it would take
more than a share of the machine's memory."""

from __future__ import annotations

import os

import numpy as np

from m1vision.errors import MemoryBudgetError

#: The share of the physical memory an output may take when no ``max_memory`` is given.
MEMORY_SHARE = 0.8


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def format_size(nbytes: int) -> str:
    """Bytes as MiB, or GiB from 1 GiB on.

    Examples
    --------
    >>> from m1vision._checks import format_size
    >>> format_size(3 * 1024**2), format_size(5 * 1024**3)
    ('3.0 MiB', '5.00 GiB')
    """
    if nbytes >= 1024**3:
        return f"{nbytes / 1024**3:.2f} GiB"
    return f"{nbytes / 1024**2:.1f} MiB"


def check_output_memory(shape, dtype, *, what: str, fix: str) -> None:
    """Refuse an output of ``shape`` and ``dtype`` larger than :data:`MEMORY_SHARE` of the
    physical memory with a ``MemoryBudgetError``, before anything is allocated.

    ``what`` names the call and its argument (``"resize: size=(100000, 100000)"``), ``fix``
    says how to ask for less.

    Examples
    --------
    >>> import numpy as np
    >>> from m1vision._checks import check_output_memory
    >>> check_output_memory((64, 64), np.uint8, what="resize: size=(64, 64)", fix="-")
    >>> check_output_memory((10**6, 10**6, 3), np.float32, what="resize: size=(10**6, 10**6)",
    ...                     fix="ask for a smaller size")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    m1vision.errors.MemoryBudgetError: resize: size=(10**6, 10**6) gives an output of shape ...
    """
    physical = physical_memory()
    if physical is None:
        return
    need = int(np.prod([int(n) for n in shape], dtype=np.float64)) * np.dtype(dtype).itemsize
    budget = int(physical * MEMORY_SHARE)
    if need > budget:
        raise MemoryBudgetError(
            f"{what} gives an output of shape {tuple(int(n) for n in shape)} "
            f"({np.dtype(dtype).name}, {format_size(need)}), more than "
            f"{MEMORY_SHARE:.0%} of this machine's memory ({format_size(budget)}). Nothing was "
            f"allocated. Fix: {fix}."
        )
