"""The doctor's printer and command line (internal)."""

from __future__ import annotations

import json
import sys
import textwrap

from m1vision.doctor._common import STATUSES
from m1vision.doctor._probes import get_env_info
from m1vision.errors import OutputExistsError

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "unknown": "????"}


def _short(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_short(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:.2g}"
    return str(value)


def print_env_info(info: dict | None = None, *, file=None) -> None:
    """Print the report as a readable table (runs :func:`get_env_info` if ``info`` is None).

    Examples
    --------
    >>> import io
    >>> from m1vision.doctor import print_env_info
    >>> buf = io.StringIO()
    >>> print_env_info({"checks": [{"name": "os", "status": "ok", "value": "Linux x86_64",
    ...                             "detail": "", "fix": None}]}, file=buf)
    >>> "os" in buf.getvalue() and "1 ok" in buf.getvalue()
    True
    """
    if info is None:
        info = get_env_info()
    out = file if file is not None else sys.stdout
    version = info.get("m1vision", {}).get("version", "?")
    python = info.get("python", {})
    print(
        f"m1vision {version} doctor: Python {python.get('version', '?')} at "
        f"{python.get('executable', '?')}",
        file=out,
    )
    width = max([len(c["name"]) for c in info["checks"]] + [5])
    for c in info["checks"]:
        print(f"{_MARK[c['status']]:<5} {c['name']:<{width}}  {_short(c['value'])}", file=out)
        if c["status"] != "ok" or c.get("fix"):
            for label, text in (("", c.get("detail")), ("fix: ", c.get("fix"))):
                if text:
                    print(
                        textwrap.fill(
                            label + text,
                            100,
                            initial_indent=" " * (width + 8),
                            subsequent_indent=" " * (width + 8),
                        ),
                        file=out,
                    )
    counts = {s: sum(c["status"] == s for c in info["checks"]) for s in STATUSES}
    print("summary: " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=out)


def run_cli(*, as_json: bool, tensorflow: bool, out: str | None) -> int:
    """``python -m m1vision doctor``: print the report; 1 if any check failed, else 0.

    ``out`` also writes the JSON report there (atomically; an existing file is not
    replaced: exit code 2 and a message). Returns 0 (no check failed), 1 (a check failed)
    or 2 (the report could not be written).
    """
    info = get_env_info(tensorflow=tensorflow)
    text = json.dumps(info, indent=2, default=str)
    if out is not None:
        from m1vision._atomic import atomic_write_text

        try:
            atomic_write_text(out, text + "\n")
        except OutputExistsError:
            print(
                f"m1vision doctor: --out {out!r} exists already; the report was not written. "
                "Remove the file or choose another name.",
                file=sys.stderr,
            )
            return 2
        except OSError as exc:
            print(f"m1vision doctor: cannot write the report to {out!r}: {exc}", file=sys.stderr)
            return 2
    if as_json:
        print(text)
    else:
        print_env_info(info)
    return 1 if any(c["status"] == "fail" for c in info["checks"]) else 0
