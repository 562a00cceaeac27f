"""The package's shape (docs/ARCHITECTURE.md): no import cycles — not even through
``if TYPE_CHECKING:`` or a function's own imports —, each stage imports only its own or
lower stages, and no module over ~450 lines without a reason in its docstring."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "cutlens"
MAX_LINES = 450
#: Stages, lowest first (a module may import from its own stage and the ones before it).
STAGES = [
    ("cutlens", "cutlens.diagnostics", "cutlens.trust"),
    ("cutlens.config",),
    ("cutlens.template",),
    ("cutlens.capture",),
    ("cutlens.render", "cutlens.pyhost", "cutlens.inductor"),
    ("cutlens.nvcc",),
    ("cutlens.check",),
    ("cutlens.results",),
    ("cutlens.bench",),
    ("cutlens.lsp",),
    ("cutlens.cli", "cutlens.__main__"),
]


def modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every cutlens module ``name`` imports, anywhere in the file (TYPE_CHECKING blocks and
    function bodies included)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            cands = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in cands if c in known and c != name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, f, set(mods)) for m, f in mods.items()}


def stage_of(module: str) -> int:
    best, depth = 0, -1
    for i, prefixes in enumerate(STAGES):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > depth:
                best, depth = i, len(p)
    return best


def test_no_import_cycles():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path):
    """The check above can fail: two modules importing each other are a cycle."""
    (tmp_path / "a.py").write_text("from cutlens.b import x\n")
    (tmp_path / "b.py").write_text("if TYPE_CHECKING:\n    from cutlens.a import y\n")
    known = {"cutlens.a", "cutlens.b"}
    assert imports("cutlens.a", tmp_path / "a.py", known) == {"cutlens.b"}
    assert imports("cutlens.b", tmp_path / "b.py", known) == {"cutlens.a"}


def test_each_stage_imports_only_its_own_or_lower_stages():
    upward = sorted(f"{m} -> {d}" for m, deps in graph().items() for d in deps
                    if stage_of(d) > stage_of(m))
    assert upward == []


@pytest.mark.parametrize("module", sorted(modules()))
def test_long_modules_say_why(module: str):
    path = modules()[module]
    n = len(path.read_text().splitlines())
    if n <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "over 450 lines" in doc.lower(), f"{path.name}: {n} lines and no reason given"


def test_every_package_says_what_it_owns():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.split()) >= 8, init
