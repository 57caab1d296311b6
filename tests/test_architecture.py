"""The architecture in the tree (docs/architecture.md): the rooms, each with a docstring saying what belongs
there; no import circle between modules; the imports between rooms as the page lists them; no module over
400 lines and no class over 150; every bench script imports."""
import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

PKG = ROOT / "infcop"
ROOMS = ("science", "experiments", "running", "judging", "showing")
MAX_MODULE_LINES, MAX_CLASS_LINES = 400, 150


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every infcop module `name` imports, at the top or inside a function (a lazy import is an import)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {t for t in found if t in MODULES and t not in (name, "infcop")}  # infcop: InfcopError, load_ticket


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else "front door"


def test_every_module_lives_in_a_room_that_says_what_belongs_there():
    assert sorted(p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(ROOMS)
    loose = sorted(p.name for p in PKG.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py"], loose
    for r in ROOMS:
        doc = ast.get_docstring(ast.parse((PKG / r / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 12, r
    for name, path in MODULES.items():
        assert ast.get_docstring(ast.parse(path.read_text())) or path.name == "__main__.py", name


def test_no_import_circle_between_modules():
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(m, trail):
        state[m] = 1
        for t in sorted(GRAPH[m]):
            if state.get(t) == 1:
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(t):] + [t]))
            if t not in state:
                visit(t, trail + [t])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert "infcop.experiments.experiment" in GRAPH["infcop.running.steps"]  # the graph sees imports at all


def test_the_imports_between_rooms_are_those_the_architecture_page_lists():
    page = (ROOT / "docs" / "architecture.md").read_text()
    listed = {}
    for line in page.splitlines():
        m = re.match(r"\| `infcop/(\w+)/` \| .* \| (.*) \|$", line)
        if m:
            listed[m.group(1)] = set(re.findall(r"`(\w+)`", m.group(2)))
    assert set(listed) == set(ROOMS)
    actual = {r: set() for r in ROOMS}
    for m, targets in GRAPH.items():
        for t in targets:
            if room(m) in ROOMS and room(t) in ROOMS and room(t) != room(m):
                actual[room(m)].add(room(t))
    assert actual == listed


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_a_chapter_long_and_no_class_either(name):
    text = MODULES[name].read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{name}: {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"{name}.{node.name}: {size} lines"


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("*.py")))
def test_every_name_a_bench_script_imports_from_infcop_exists(script):
    """A benchmark runs rarely: a renamed or moved name must fail here, not months later (imports inside
    functions included)."""
    import importlib

    for node in ast.walk(ast.parse((ROOT / "bench" / script).read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("infcop"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or f"{node.module}.{alias.name}" in MODULES, \
                    f"{script}: from {node.module} import {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("infcop"):
                    importlib.import_module(alias.name)
