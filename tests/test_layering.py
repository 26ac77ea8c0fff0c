"""The package's floors (design.md §1) and the absence of import circles, checked from the
source with `ast`, so the shape cannot drift back.

Floors, lowest first: `proto` · `relay.core`, `collator.core` · `relay.service`,
`collator.service` · `node`. A module imports only from its own floor or below. Every import
counts, including those under `if TYPE_CHECKING:` and inside functions: a circle of type-only
imports is still two modules that cannot be understood apart.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("proto", "relay", "collator", "node")
FLOORS = (("proto",), ("relay.core", "collator.core"), ("relay.service", "collator.service"),
          ("node",))


def floor_of(module: str) -> int:
    best = -1
    for i, prefixes in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            best = i
    if best < 0:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS in {__file__}")
    return best


def modules(root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module of this package, line) for every import statement in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import name` may name a submodule or an attribute of pkg.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != module:
                yield t, node.lineno


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    mods = modules(root)
    known = set(mods)
    return {m: dict(imports_of(m, p, known)) for m, p in mods.items()}


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    return [f"{m}:{line} imports {t} (floor {floor_of(t)} above {floor_of(m)})"
            for m, targets in sorted(graph.items()) for t, line in sorted(targets.items())
            if floor_of(t) > floor_of(m)]


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, {})))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_runs_up_a_floor() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_checks_catch_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "relay" / "core").mkdir()
    (tmp_path / "relay" / "core" / "__init__.py").write_text("")
    (tmp_path / "relay" / "core" / "a.py").write_text("from node.b import x\n")
    (tmp_path / "node" / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                            "if TYPE_CHECKING:\n    from node import c\n")
    (tmp_path / "node" / "c.py").write_text("def f():\n    from .b import y\n")
    graph = import_graph(tmp_path)
    assert upward_imports(graph) == ["relay.core.a:1 imports node.b (floor 3 above 1)"]
    assert circles(graph) == [["node.b", "node.c"]]
