"""The one progress bar of m1vision (internal, ground floor: imports nothing of m1vision).

:func:`progress` is a bar counted by hand (``update(n)``); :func:`track` wraps an iterable.
Both are ``tqdm.auto`` (a widget in Jupyter, text in a terminal) or a no-op, and import tqdm
only when a bar is shown.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["AUTO_FROM", "progress", "track"]

#: With ``show=None`` a bar appears from this many items on.
AUTO_FROM = 100


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _shown(show: bool | None, total: int | None) -> bool:
    if show is None:
        return total is not None and total >= AUTO_FROM
    return bool(show)


def progress(
    total: int,
    *,
    show: bool | None = True,
    desc: str = "",
    initial: int = 0,
    unit: str = "img",
    leave: bool = True,
):
    """The one progress bar of m1vision: ``tqdm.auto`` (a widget in Jupyter), or a no-op.

    Use it as a context manager or call ``close()``; ``update(n)`` counts ``n`` done.
    ``show=None`` shows a bar from :data:`AUTO_FROM` items on.

    Examples
    --------
    >>> from m1vision.batch import progress
    >>> with progress(3, show=False) as bar:
    ...     bar.update(3)
    """
    if not _shown(show, total):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave)


def track(
    items: Iterable,
    total: int | None = None,
    *,
    show: bool | None = True,
    desc: str = "",
    unit: str = "img",
):
    """Iterate ``items`` under the one progress bar (``items`` itself when none is shown).

    ``show=None`` shows a bar from :data:`AUTO_FROM` items on; ``total`` defaults to
    ``len(items)`` where it has one. The bar disappears when the loop ends.

    Examples
    --------
    >>> from m1vision._progress import track
    >>> sum(track(range(4), show=False))
    6
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if not _shown(show, total):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, leave=False)
