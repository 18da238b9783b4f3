"""Would every pin of a lock install as a native wheel on an Apple Silicon Mac? (needs PyPI)

    python tools/check_mac_wheels.py locks/macos-arm64.txt [--macos 14.0] [--python 3.11]

For each ``name==version`` pin this asks PyPI's simple API in JSON (PEP 691:
``GET https://pypi.org/simple/NAME/`` with ``Accept: application/vnd.pypi.simple.v1+json``)
which files the release has, and picks the one pip would choose on macOS (default 14.0)
arm64 with CPython (default 3.11): the compatible wheel whose tag comes first in
``packaging.tags`` priority order, skipping yanked files and files whose Requires-Python
excludes the interpreter. A pin fails when it has only an sdist (pip would compile it,
if it can) or no file at all, or when the chosen wheel is not arm64, universal2 or pure.

Prints one table row per pin and exits 1 if any pin fails. Runs on any machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging import tags
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from m1vision.doctor import read_lock  # noqa: E402

SIMPLE_URL = "https://pypi.org/simple/{name}/"
ACCEPT = "application/vnd.pypi.simple.v1+json"
NATIVE_PLATFORM_WORDS = ("arm64", "universal2")


def target_tags(macos: tuple[int, int], python: tuple[int, int]) -> list[tags.Tag]:
    """The tags pip accepts on macOS ``macos`` arm64 with CPython ``python``, best first."""
    platforms = list(tags.mac_platforms(macos, "arm64"))
    interpreter = f"cp{python[0]}{python[1]}"
    return list(tags.cpython_tags(python, abis=[interpreter], platforms=platforms)) + list(
        tags.compatible_tags(python, interpreter=interpreter, platforms=platforms)
    )


def fetch_files(name: str, *, timeout: float = 60) -> list[dict]:
    """The ``files`` list of PyPI's PEP 691 JSON page for ``name``."""
    url = SIMPLE_URL.format(name=canonicalize_name(name))
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["files"]


def choose(files: list[dict], name: str, version: str, target: list[tags.Tag], python: str):
    """What pip would install for ``name==version``: ``(filename, tag or None, kind)``.

    ``kind`` is ``"wheel"``, ``"sdist-only"`` or ``"missing"``.

    Examples
    --------
    >>> t = target_tags((14, 0), (3, 11))
    >>> files = [{"filename": "demo-1.0.tar.gz"},
    ...          {"filename": "demo-1.0-cp311-cp311-macosx_11_0_arm64.whl"},
    ...          {"filename": "demo-1.0-cp311-cp311-macosx_14_0_arm64.whl"},
    ...          {"filename": "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"}]
    >>> choose(files, "demo", "1.0", t, "3.11.9")[0]
    'demo-1.0-cp311-cp311-macosx_14_0_arm64.whl'
    >>> choose(files[:1], "demo", "1.0", t, "3.11.9")
    ('demo-1.0.tar.gz', None, 'sdist-only')
    """
    rank = {tag: i for i, tag in enumerate(target)}
    want = Version(version)
    best, best_rank, sdist = None, None, None
    for f in files:
        filename = f["filename"]
        if f.get("yanked"):
            continue
        requires = f.get("requires-python")
        if requires:
            try:
                if python not in SpecifierSet(requires):
                    continue
            except InvalidSpecifier:
                pass  # pip ignores an unparsable Requires-Python as well
        if filename.endswith(".whl"):
            try:
                wname, wversion, _, wtags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            if canonicalize_name(wname) != canonicalize_name(name) or wversion != want:
                continue
            ranks = [(rank[t], t) for t in wtags if t in rank]
            if ranks and (best_rank is None or min(ranks)[0] < best_rank):
                best_rank, best_tag = min(ranks)
                best = filename
        else:
            try:
                sname, sversion = parse_sdist_filename(filename)
            except InvalidSdistFilename:
                continue
            if canonicalize_name(sname) == canonicalize_name(name) and sversion == want:
                sdist = filename
    if best is not None:
        return best, best_tag, "wheel"
    if sdist is not None:
        return sdist, None, "sdist-only"
    return None, None, "missing"


def check_pin(name: str, version: str, target, python: str) -> dict:
    try:
        files = fetch_files(name)
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return {
            "name": name,
            "version": version,
            "file": None,
            "tag": None,
            "status": "fail",
            "why": f"PyPI query failed: {exc}",
        }
    filename, tag, kind = choose(files, name, version, target, python)
    if kind == "missing":
        why, status = "no file of this version on PyPI for this interpreter", "fail"
    elif kind == "sdist-only":
        why, status = "sdist only: pip would have to compile it", "fail"
    elif tag.platform == "any" or any(w in tag.platform for w in NATIVE_PLATFORM_WORDS):
        why, status = "native" if tag.platform != "any" else "pure Python", "ok"
    else:
        why, status = f"chosen wheel is for {tag.platform}", "fail"
    return {
        "name": name,
        "version": version,
        "file": filename,
        "tag": str(tag) if tag else None,
        "status": status,
        "why": why,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path, help="a lock file, e.g. locks/macos-arm64.txt")
    parser.add_argument("--macos", default="14.0", help="macOS version (default 14.0)")
    parser.add_argument("--python", default="3.11", help="CPython version (default 3.11)")
    parser.add_argument("--workers", type=int, default=8, help="parallel PyPI queries")
    args = parser.parse_args(argv)
    macos = tuple(int(p) for p in args.macos.split(".")[:2])
    python = tuple(int(p) for p in args.python.split(".")[:2])
    full_python = f"{python[0]}.{python[1]}.0"
    target = target_tags(macos, python)
    pins = read_lock(args.lock)
    if not pins:
        print(f"{args.lock}: no name==version pins found", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(args.workers) as pool:
        rows = list(pool.map(lambda p: check_pin(*p, target, full_python), sorted(pins.items())))
    width = max(len(r["name"]) + len(r["version"]) + 2 for r in rows)
    print(f"{args.lock} on macOS {args.macos} arm64, CPython {args.python}: {len(rows)} pins")
    for r in rows:
        pin = f"{r['name']}=={r['version']}"
        print(f"{r['status']:<4}  {pin:<{width}}  {r['tag'] or '-':<36}  {r['why']}")
    failed = [r for r in rows if r["status"] != "ok"]
    print(
        f"{len(rows) - len(failed)} ok, {len(failed)} failed"
        + (": " + ", ".join(r["name"] for r in failed) if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
