"""The import graph: no circles, and nothing imports upward (docs/architecture.md).

Every module under m1vision/ is parsed (``ast``, nothing imported) and its imports of
m1vision are listed twice: those run at import time (module level, ``if TYPE_CHECKING``
excluded) and those inside functions (run on first use). Each module sits on a floor
(:data:`FLOORS`); a module may import its own floor and the floors below, never above, at
either level. Module-level imports must form no circle (function-level ones may: they run
after both modules are loaded).

To add a module: give it (or its package) a row in FLOORS, on the lowest floor whose rooms it
needs, and the same row in docs/architecture.md.
"""

from __future__ import annotations

import ast
from itertools import pairwise
from pathlib import Path

import pytest
from repo_paths import REPO

PACKAGE = REPO / "m1vision"

#: floor -> (name, the modules and packages on it). A package's row covers its submodules.
FLOORS: dict[int, tuple[str, tuple[str, ...]]] = {
    0: (
        "ground",
        (
            "m1vision",  # the package face: errors and lazy submodules only
            "m1vision.errors",
            "m1vision._checks",
            "m1vision._progress",
            "m1vision._devices",
            "m1vision._platform",
            "m1vision._resources",
            "m1vision._atomic",
            "m1vision._hashing",
            "m1vision.geometry",
        ),
    ),
    1: ("readers and pixels", ("m1vision.io", "m1vision.preprocess", "m1vision.numerics")),
    2: (
        "pictures, labels, samples",
        (
            "m1vision.draw",
            "m1vision.viz",
            "m1vision.labels",
            "m1vision._resample",
            "m1vision.synthetic",
            "m1vision.data",
        ),
    ),
    3: (
        "jobs and views",
        (
            "m1vision.batch",
            "m1vision.volume",
            "m1vision.pipeline",
            "m1vision.inference",
            "m1vision.views",
            "m1vision.render",
            "m1vision.planes",
            "m1vision._record",
            "m1vision.cohort",
        ),
    ),
    4: (
        "explain, explore, record",
        ("m1vision.explain", "m1vision.widgets", "m1vision.experiment"),
    ),
    5: (
        "tools",
        (
            "m1vision.doctor",
            "m1vision.binarch",
            "m1vision.demo",
            "m1vision.cli",
            "m1vision.__main__",
        ),
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def floor_of(module: str, floors=None) -> int | None:
    """The floor of ``module``: the row of its longest listed prefix (None: unlisted). The
    package face ``m1vision`` covers itself only."""
    best, floor = -1, None
    for number, (_, rows) in (FLOORS if floors is None else floors).items():
        for row in rows:
            covers = module == row or (row != "m1vision" and module.startswith(row + "."))
            if covers and len(row) > best:
                best, floor = len(row), number
    return floor


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The m1vision modules an import statement loads (a name imported from a package is
    the submodule where one exists, else the package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "m1vision"]
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "m1vision":
        return []
    found = []
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        found.append(sub if sub in MODULES else source)
    return found


def imports(module: str) -> tuple[dict[str, int], dict[str, int]]:
    """``({target: line}, {target: line})``: module-level and function-level imports."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top: dict[str, int] = {}
    inner: dict[str, int] = {}

    def walk(node, level: dict):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue  # for annotations only, never run
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(module, child):
                    if target != module:
                        level.setdefault(target, child.lineno)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                walk(child, inner)
            else:
                walk(child, level)

    walk(tree, top)
    return top, inner


GRAPH = {name: imports(name) for name in MODULES}


def _where(module: str, line: int) -> str:
    path = MODULES.get(module)
    return f"{path.relative_to(PACKAGE.parent) if path else module}:{line}"


def _floor_name(floor: int, floors) -> str:
    return f"floor {floor} ({floors[floor][0]})"


def upward(graph, floors, level: str) -> list[str]:
    """One message per import of ``level`` ("module-level" or "function-level") that goes
    to a higher floor: where it is, what breaks which rule, and how to fix it."""
    broken = []
    for module, (top, inner) in sorted(graph.items()):
        here = floor_of(module, floors)
        for target, line in sorted((top if level == "module-level" else inner).items()):
            there = floor_of(target, floors)
            if here is not None and there is not None and there > here:
                broken.append(
                    f"{_where(module, line)}: {module} ({_floor_name(here, floors)}) imports "
                    f"{target} ({_floor_name(there, floors)}), a higher floor. Move what "
                    f"{module} needs from {target} down to floor {here} or below (e.g. into a "
                    f"ground module), or have {target}'s callers pass it in."
                )
    return broken


def cycle(graph) -> list[str] | None:
    """One circle among module-level imports, as a path of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node][0]):
            if target not in graph:
                continue
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def describe_cycle(graph, circle: list[str]) -> str:
    steps = " -> ".join(f"{a} ({_where(a, graph[a][0][b])})" for a, b in pairwise(circle))
    return (
        f"module-level imports go round in a circle: {steps} -> {circle[-1]}. Move the "
        "shared part down a floor, or make one of these imports function-level where it is "
        "used."
    )


@pytest.mark.parametrize("module", sorted(MODULES), ids=sorted(MODULES))
def test_every_module_has_a_floor(module):
    assert floor_of(module) is not None, (
        f"{module} has no floor: add it (or its package) to FLOORS in "
        "tests/test_architecture.py, on the lowest floor whose rooms it imports, and to the "
        "table in docs/architecture.md."
    )


@pytest.mark.parametrize("level", ["module-level", "function-level"])
def test_nothing_imports_a_higher_floor(level):
    broken = upward(GRAPH, FLOORS, level)
    assert not broken, f"{len(broken)} {level} import(s) go upward:\n" + "\n".join(broken)


def test_module_level_imports_have_no_circle():
    circle = cycle(GRAPH)
    assert circle is None, describe_cycle(GRAPH, circle)


# The checker checks: each rule fails on a graph made to break it.

FAKE_FLOORS = {0: ("ground", ("m1vision", "m1vision.low")), 1: ("up", ("m1vision.high",))}


def test_the_floor_table_covers_packages_and_not_everything_under_the_face():
    assert floor_of("m1vision.io._dicom") == 1 and floor_of("m1vision.batch._engine") == 3
    assert floor_of("m1vision") == 0 and floor_of("m1vision.nowhere") is None


@pytest.mark.parametrize("level", ["module-level", "function-level"])
def test_an_upward_import_is_named_with_its_fix(level):
    edge = {"m1vision.high.part": 7}
    graph = {
        "m1vision.low": (edge, {}) if level == "module-level" else ({}, edge),
        "m1vision.high.part": ({"m1vision.low": 3}, {}),
    }
    (message,) = upward(graph, FAKE_FLOORS, level)
    assert message.startswith("m1vision.low:7: m1vision.low (floor 0 (ground)) imports ")
    assert "a higher floor. Move what m1vision.low needs" in message
    other = "function-level" if level == "module-level" else "module-level"
    assert upward(graph, FAKE_FLOORS, other) == []


def test_a_circle_is_found_and_named():
    graph = {"a": ({"b": 1}, {}), "b": ({"c": 2}, {}), "c": ({"a": 3}, {}), "d": ({}, {"a": 4})}
    assert cycle(graph) == ["a", "b", "c", "a"]
    assert "a (a:1) -> b (b:2) -> c (c:3) -> a" in describe_cycle(graph, cycle(graph))
    graph["c"] = ({}, {"a": 3})  # function-level: no circle at import time
    assert cycle(graph) is None


def test_the_resolver_sees_relative_and_from_package_imports():
    top, _ = GRAPH["m1vision.pipeline._steps"]
    assert "m1vision.preprocess" in top  # ``from m1vision import preprocess``
    top, inner = GRAPH["m1vision.cli"]
    assert {"m1vision.demo", "m1vision.doctor", "m1vision.experiment"} <= set(inner)
    assert not top


# Facts with one home: the known-good pins are m1vision._platform's constants.


def test_the_pins_are_written_once_and_agree_with_pyproject():
    import tomllib

    from m1vision import _platform

    tf, metal = _platform.KNOWN_GOOD_TF_RELEASE, _platform.KNOWN_GOOD_METAL
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    mac = [d for d in deps["dependencies"] if "darwin" in d and "arm64" in d]
    assert f"tensorflow=={tf}" in " ".join(mac) and f"tensorflow-metal=={metal}" in " ".join(mac)
    written = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in [*PACKAGE.rglob("*.py"), *(REPO / "tools").glob("*.py")]
        if path.name != "_platform.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if tf in line or f"metal {metal}" in line or f"metal=={metal}" in line
    ]
    assert not written, (
        f"the known-good pins are written out again at {written}; use the constants of "
        "m1vision._platform (KNOWN_GOOD_TF_RELEASE, KNOWN_GOOD_METAL, KNOWN_GOOD_INSTALL)."
    )


# The faces say the same: README's room table and docs/architecture.md list every public room.

PUBLIC_ROOMS = sorted(
    p.stem if p.suffix == ".py" else p.name
    for p in PACKAGE.iterdir()
    if not p.name.startswith(("_", "."))
    and (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))
)


@pytest.mark.parametrize("page", ["README.md", "docs/architecture.md"])
def test_the_room_tables_list_every_public_room(page):
    text = (REPO / page).read_text(encoding="utf-8")
    if page == "README.md":
        text = text.split("## Rooms", 1)[1].split("\n## ", 1)[0]
    missing = [room for room in PUBLIC_ROOMS if f"`{room}`" not in text]
    assert not missing, f"{page} does not list the room(s) {missing}: add a row for each."


def test_the_readme_is_short_and_without_history():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    assert "(issue " not in text.lower()
