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
import importlib.util
import re
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


#: Past this many lines a module becomes a package with private parts (the house rule).
MAX_MODULE_LINES = 600


def test_no_module_is_past_the_size_of_a_package():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, (
        f"modules past {MAX_MODULE_LINES} lines: {long}. Make each a package with private "
        "parts and a where-things-are table on its face (see docs/architecture.md)."
    )


# The room tables say what FLOORS says: docs/architecture.md's and the package face's list every
# public room, each on its floor. README only links to them.

PUBLIC_ROOMS = sorted(
    p.stem if p.suffix == ".py" else p.name
    for p in PACKAGE.iterdir()
    if not p.name.startswith(("_", "."))
    and (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))
)


def architecture_rows() -> list[tuple[int, list[str]]]:
    """docs/architecture.md's floor table: (floor, the rooms named in the row)."""
    rows = []
    for line in (REPO / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rooms = re.findall(r"`([A-Za-z_][\w.]*)`", cells[2])
            rows.append((int(cells[0]), rooms))
    return rows


def face_rows() -> list[tuple[int, list[str]]]:
    """The package face's table: (floor, the m1vision modules named in the row)."""
    doc = ast.get_docstring(ast.parse(FACES["m1vision"].read_text(encoding="utf-8"))) or ""
    tables = where_tables(doc)
    assert len(tables) == 1, "m1vision/__init__.py should have one floor table"
    return [
        (int(text.split()[0]), [n for n in _LITERAL.findall(text) if f"m1vision.{n}" in MODULES])
        for _, text in tables[0]
    ]


@pytest.mark.parametrize("table", ["docs/architecture.md", "m1vision/__init__.py"])
def test_the_room_tables_list_every_public_room_on_its_floor(table):
    rows = architecture_rows() if table.startswith("docs") else face_rows()
    named = {room for _, rooms in rows for room in rooms}
    missing = [room for room in PUBLIC_ROOMS if room not in named]
    assert not missing, f"{table} does not list the room(s) {missing}: add a row for each."
    misplaced = [
        f"{room} (row of floor {floor}, FLOORS says {floor_of(f'm1vision.{room}')})"
        for floor, rooms in rows
        for room in rooms
        if f"m1vision.{room}" in MODULES and floor_of(f"m1vision.{room}") != floor
    ]
    assert not misplaced, (
        f"{table} puts rooms on another floor than FLOORS in tests/test_architecture.py: "
        f"{misplaced}; move the row (or the room) so the two agree."
    )


def test_the_readme_starts_with_set_up_is_short_and_without_history():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) < 200
    first = "\n".join(lines[:8])
    assert "make demo" in first and "make test" in first, "README starts with the set-up commands"
    assert "(issue " not in text.lower()
    assert "/work/" not in text and "/tmp/" not in text


def test_the_docs_index_links_every_page():
    guide = (REPO / "docs" / "guide.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    missing = [page for page in pages if f"]({page})" not in guide]
    assert not missing, (
        f'docs/guide.md\'s index ("The pages, in reading order") does not link {missing}: '
        "add a row for each, saying when to read it."
    )
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "](docs/guide.md)" in readme, "README's map should send newcomers to docs/guide.md"


# Every package face has a "where things are" table (a reST simple table after the words
# "Where things are" in its docstring): what the face names exists, and its table names every
# module of its package. Read with ``ast``, as above: nothing is imported.

FACES = {_module_name(path): path for path in sorted(PACKAGE.rglob("__init__.py"))}

_BORDER = re.compile(r"^=+( +=+)+ *$")
_ROLE = re.compile(r":(?:func|class|data|mod|meth|attr|exc):`~?([\w.]+)(?:\(\))?`")
_LITERAL = re.compile(r"``([A-Za-z_][\w.]*)(?:\(\))?``")


def where_tables(doc: str) -> list[list[tuple[str, str]]]:
    """The tables that follow the words "Where things are" in ``doc``: each a list of rows
    ``(key, text)``, ``key`` the row's second-to-last column (the module or name the row is
    about), ``text`` the whole row with its continuation lines."""
    lines = doc.splitlines()
    tables = []
    for start, line in enumerate(lines):
        if "where things are" not in line.lower():
            continue
        borders = [i for i in range(start, len(lines)) if _BORDER.match(lines[i])]
        if len(borders) < 2:
            continue
        first = borders[0]
        header = len(borders) > 2 and borders[1] == first + 2  # one header line, a border
        body = range((borders[1] if header else first) + 1, borders[2 if header else 1])
        rows: list[tuple[str, str]] = []
        for i in body:
            if not lines[i].strip():
                continue
            if lines[i][:1].isspace() and rows:  # the first column blank: a continuation
                key, text = rows[-1]
                rows[-1] = (key, f"{text} {lines[i].strip()}")
            else:
                cells = re.split(r"\s{2,}", lines[i].strip())
                rows.append((cells[-2] if len(cells) > 1 else cells[0], lines[i].strip()))
        tables.append(rows)
    return tables


def _names_bound(body) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*" and isinstance(node, ast.ImportFrom):
                    names |= _bound(node.module) if node.module in MODULES else set()
                elif alias.name != "*":
                    names.add(alias.asname or alias.name.split(".")[0])
    return names


def _bound(module: str) -> set[str]:
    """The names ``module`` binds at its top level (definitions, assignments, imports;
    ``from m1vision.x import *`` through x's own names)."""
    return _names_bound(ast.parse(MODULES[module].read_text(encoding="utf-8")).body)


BOUND = {name: _bound(name) for name in MODULES}


def _classes() -> dict[str, tuple[set[str], set[str]]]:
    """Class name -> (its bases' names, the names its body binds), over all of m1vision."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                old_bases, old_members = found.get(node.name, (set(), set()))
                found[node.name] = (old_bases | bases, old_members | _names_bound(node.body))
    return found


CLASSES = _classes()


def _has_member(cls: str, member: str, seen: tuple[str, ...] = ()) -> bool:
    bases, members = CLASSES.get(cls, (set(), set()))
    return member in members or any(
        _has_member(base, member, (*seen, cls)) for base in bases if base not in seen
    )


def resolves(target: str, package: str) -> bool:
    """Does ``target`` (a module, a name or ``Class.member``; absolute, or relative to
    ``package`` or any module in it) name something m1vision has?"""
    if target.startswith("m1vision"):
        places = [target]
    else:
        inside = [m for m in MODULES if m.startswith(package + ".")]
        places = [f"{m}.{target}" for m in [package, *inside]]
    for place in places:
        parts = place.split(".")
        cut = max(n for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in MODULES)
        module, rest = ".".join(parts[:cut]), parts[cut:]
        if not rest:
            return True
        if rest[0] in BOUND[module] and all(_has_member(rest[0], r) for r in rest[1:2]):
            return True
    return False


def _exists(name: str, package: str) -> bool:
    """``name`` is m1vision's (in ``package`` or from the top), a member of one of its
    classes (``to_config``), or another library's dotted name (``numpy.random.Generator``)."""
    head = name.split(".")[0]
    if "." in name and head != "m1vision" and importlib.util.find_spec(head) is not None:
        return True
    return (
        resolves(name, package)
        or resolves(name, "m1vision")
        or any(name in members for _, members in CLASSES.values())
    )


def _members_of(package: str) -> list[str]:
    """The modules and packages directly inside ``package`` (dunder modules left out)."""
    return sorted(
        name.rpartition(".")[2]
        for name in MODULES
        if name.rpartition(".")[0] == package and not name.rpartition(".")[2].startswith("__")
    )


def face_problems(package: str, doc: str) -> list[str]:
    """What is wrong with the face of ``package`` whose docstring is ``doc``: names that do
    not exist (any role reference in the docstring; any literal in its "where things are"
    table), and modules of the package that its table leaves out."""
    where = FACES[package].relative_to(PACKAGE.parent)
    tables = where_tables(doc)
    if not tables:
        return [
            (
                f'{where}: no table after the words "Where things are"; add one (see '
                "m1vision/io/__init__.py)."
            )
        ]
    rows = " ".join(text for table in tables for _, text in table)
    literals = [m.group(1) for m in _LITERAL.finditer(rows)]
    names = [m.group(1) for m in _ROLE.finditer(doc)] + [
        name  # a literal with a dot is checked where it is m1vision's: ``Job.x`` may be a path
        for name in literals
        if "." not in name or name.startswith(("m1vision.", "_"))
    ]
    problems = [
        f"{where}: {name} is named but m1vision has no such module, function, class or "
        "member; rename it to what the code calls it, or drop it."
        for name in dict.fromkeys(names)
        if not _exists(name, package)
    ]
    problems += [
        f'{where}: the module {package}.{member} is in no row of the "where things are" '
        "table; add a row saying what it holds."
        for member in _members_of(package)
        if f"``{member}``" not in rows and not re.search(rf"[.`~]{member}`", rows)
    ]
    return problems


@pytest.mark.parametrize("package", sorted(FACES), ids=sorted(FACES))
def test_each_face_names_what_exists_and_its_table_every_module(package):
    doc = ast.get_docstring(ast.parse(FACES[package].read_text(encoding="utf-8"))) or ""
    problems = face_problems(package, doc)
    assert not problems, "\n".join(problems)


FAKE_FACE = """The pipeline.

Where things are:

==========  ========================================
module      what it holds
==========  ========================================
``_steps``  :class:`Step`, :func:`register_step`
``_core``   :class:`Pipeline`, :meth:`Pipeline.to_json`
            and :func:`no_such_function`, :meth:`Pipeline.nothing`
``_gone``   what used to be here
==========  ========================================
"""


def test_a_face_naming_what_is_gone_or_leaving_a_module_out_is_named():
    problems = face_problems("m1vision.pipeline", FAKE_FACE)
    assert len(problems) == 4, problems
    assert "no_such_function is named but m1vision has no such" in problems[0]
    assert "Pipeline.nothing is named but" in problems[1]
    assert "_gone is named but" in problems[2]
    assert "the module m1vision.pipeline._run is in no row" in problems[3]
    assert face_problems("m1vision.pipeline", FAKE_FACE.replace("Where things", "What")) == [
        (
            'm1vision/pipeline/__init__.py: no table after the words "Where things are"; add one '
            "(see m1vision/io/__init__.py)."
        )
    ]
