"""The house rules of the code (docs/architecture.md), read from every import statement with ast:
a package imports only the floors below it, and no modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "telephony": {"models"},
    "asr": {"telephony", "models"},
    "tts": {"telephony", "models"},
    "dialog": {"models"},
    "ivr": {"asr", "tts", "dialog", "telephony", "models"},
}
"""Which other top-level packages each package may import (nothing imports `ivr`, the roof)."""


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a file, at any depth (a lazy import is still an arrow);
    `from a.b import c` gives a.b.c."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def source_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for pkg in ALLOWED for p in (root / pkg).rglob("*.py"))


def layer_violations(root: Path = ROOT) -> list[str]:
    bad = []
    for path in source_files(root):
        own = path.relative_to(root).parts[0]
        for line, module in imports_of(path, root):
            top = module.split(".")[0]
            if top in ALLOWED and top != own and top not in ALLOWED[own]:
                bad.append(f"{path.relative_to(root)}:{line}: {own} imports {module}")
    return bad


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = source_files(root)
    modules = {module_name(p, root) for p in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        name = module_name(path, root)
        # `from a.b import c`: the module a.b.c when there is one, else a.b (c is a name in it)
        targets = {m if m in modules else m.rpartition(".")[0] for _, m in imports_of(path, root)}
        targets = {m for m in targets if m in modules and m != name}
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_package_imports_a_higher_floor():
    assert layer_violations() == []


def test_no_import_cycles_between_modules():
    assert cycles(module_graph()) == []


def test_the_checks_catch_a_bad_import(tmp_path):
    """A lower floor importing the roof, and two modules importing each other, are both found."""
    for pkg in ALLOWED:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "telephony" / "line.py").write_text("from ivr.cli import main\n")
    (tmp_path / "ivr" / "cli.py").write_text("from ivr import other\n")
    (tmp_path / "ivr" / "other.py").write_text("def f():\n    from ivr.cli import main\n")
    assert layer_violations(tmp_path) == ["telephony/line.py:1: telephony imports ivr.cli.main"]
    assert cycles(module_graph(tmp_path)) == [["ivr.cli", "ivr.other"]]
