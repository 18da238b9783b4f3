"""Execute notebooks in place, deterministically, and never hang.

    python tools/run_notebooks.py [--timeout SECONDS] notebooks/*.ipynb

Each notebook runs top to bottom in a fresh kernel started from its own folder, with a
per-cell timeout and a bounded wait for output messages (nbclient can stall on widget
cells, an open upstream issue), plus a whole-notebook deadline enforced from a watchdog
thread that interrupts and shuts down the kernel. Widget state is stored so a reader sees
the widgets; execution timestamps are not stored, so re-running an unchanged notebook
changes nothing but the outputs that depend on the machine. The file is written atomically
and only when the notebook ran without error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

DETERMINISTIC_ENV = {
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TQDM_DISABLE": "0",
}


_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_HEX32 = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def _strip_volatile(nb) -> None:
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)


def _stable_widget_ids(nb):
    """Rename the widgets' random model ids to ids numbered in a fixed order.

    The order: widgets shown in outputs, cell by cell, each followed by the widgets it refers
    to (children, layout, style), depth first; then the others (links, widgets never shown),
    those no other of them refers to first, each time the one whose state comes first once
    the ids already numbered are written as their numbers (and the others as "?"), so that
    the random ids decide nothing. Re-running an unchanged notebook then stores the same ids,
    so it does not show up as changed.
    """
    state = nb.metadata.get("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})
    if not state:
        return nb
    order, seen = [], set()
    text = {m: json.dumps(state[m], sort_keys=True) for m in state}
    refs = {m: [r for r in re.findall(r"IPY_MODEL_([0-9a-f]{32})", text[m]) if r in state]
            for m in state}  # fmt: skip

    def visit(root):
        stack = [root]
        while stack:
            model = stack.pop()
            if model in seen:
                continue
            seen.add(model)
            order.append(model)
            stack.extend(reversed(refs[model]))

    def canonical(model, number):
        return _HEX32.sub(lambda m: number.get(m.group(0), "?"), text[model])

    outputs = json.dumps([cell.get("outputs", []) for cell in nb.cells])
    for model in re.findall(r'"model_id": "([0-9a-f]{32})"', outputs):
        if model in state:
            visit(model)
    remaining = set(state) - seen
    while remaining:
        referred = {r for m in remaining for r in refs[m]}
        candidates = [m for m in remaining if m not in referred] or list(remaining)
        number = {m: str(n) for n, m in enumerate(order)}
        visit(min(candidates, key=lambda m: canonical(m, number)))
        remaining -= seen
    mapping = {old: f"{n:032x}" for n, old in enumerate(order)}
    text = _HEX32.sub(lambda m: mapping.get(m.group(0), m.group(0)), nbformat.writes(nb))
    return nbformat.reads(text, as_version=4)


def run_notebook(path: Path, *, timeout: int) -> float:
    """Execute ``path`` in place; return seconds taken. Raises on error or time-out."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        iopub_timeout=10,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=True,
        shutdown_kernel="immediate",
    )
    deadline = timeout * max(1, len(nb.cells))
    done = threading.Event()
    expired = threading.Event()

    def watchdog():
        if not done.wait(deadline):
            expired.set()
            km = client.km
            if km is not None:
                try:
                    km.interrupt_kernel()
                    time.sleep(2)
                    km.shutdown_kernel(now=True)
                except Exception:  # the kernel may be gone already
                    pass

    threading.Thread(target=watchdog, daemon=True).start()
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError):
        raise
    except Exception as exc:
        if expired.is_set():
            raise TimeoutError(f"{path} did not finish within {deadline} s") from exc
        raise
    finally:
        done.set()
    _strip_volatile(nb)
    nb = _stable_widget_ids(nb)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=180, help="seconds per cell")
    args = parser.parse_args(argv)
    os.environ.update(DETERMINISTIC_ENV)
    failed = []
    for path in sorted(args.notebooks):
        try:
            seconds = run_notebook(path, timeout=args.timeout)
        except Exception as exc:  # report and go on with the next notebook
            failed.append(path)
            print(f"FAILED {path}: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
        else:
            print(f"ok     {path}  ({seconds:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
