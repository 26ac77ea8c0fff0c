"""The pure cores reach nothing outside the process's memory (design.md §1): no I/O, no clock, no
randomness.

Every module under proto/, relay/core/ and collator/core/ is read with `ast` and each of its
imports (even inside a function) must be on the allowlist below: the standard-library modules that
only compute, the three libraries the wire layer is built on, and the pure floors themselves. A new
import fails here until someone decides it is pure and adds it. The builtins that reach outside
(files, the terminal, dynamic imports and code) are refused by name as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_DIRS = ("proto", "relay/core", "collator/core")

# What a pure module may import: a name here admits itself and its submodules.
ALLOWED_IMPORTS = frozenset({
    # standard library: computation only
    "__future__", "abc", "bisect", "collections", "contextlib", "copy", "dataclasses", "enum",
    "functools", "hashlib", "heapq", "itertools", "math", "operator", "struct", "typing",
    # the wire layer's libraries: codec, signatures, erasure coding
    "msgspec", "cryptography", "reed_solomon_leopard",
    # the pure floors (tests/test_layering.py checks which of them may import which)
    "proto", "relay.core", "collator.core",
})

# Builtins that do I/O or run code chosen at run time; no import is needed to call them.
FORBIDDEN_BUILTINS = frozenset({"open", "input", "print", "breakpoint", "__import__", "exec",
                                "eval", "compile"})


def _pure_files() -> list[Path]:
    files = [p for d in PURE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    assert files, "no pure-core modules found"
    return files


def _allowed(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in ALLOWED_IMPORTS)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def impurities(path: Path, root: Path = ROOT) -> list[str]:
    """Every import of `path` not on the allowlist, and every call of a forbidden builtin."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    where = path.relative_to(root)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from m import x` imports m, and x may be a submodule of m: judge m.x
            names = [f"{base}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in FORBIDDEN_BUILTINS):
            found.append(f"{where}:{node.lineno} calls {node.func.id}()")
            continue
        else:
            continue
        found += [f"{where}:{node.lineno} imports {n}" for n in names if not _allowed(n)]
    return found


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_core_module_imports_only_what_is_allowed(path: Path) -> None:
    assert impurities(path) == []


def test_checker_refuses_what_is_not_on_the_allowlist(tmp_path: Path) -> None:
    """The checker itself, on a throwaway tree laid out like the package (under tmp_path only)."""
    core = tmp_path / "relay" / "core"
    core.mkdir(parents=True)
    sample = core / "probe.py"
    sample.write_text(
        "import struct, time.monotonic\n"
        "from collections.abc import Mapping\n"
        "from proto.codec import encode\n"
        "from .. import service\n"
        "from . import scheduler\n"
        "def f():\n"
        "    import numpy\n"
        "    from node.storage import NodeStore\n"
        "    return open('x')\n")
    assert impurities(sample, tmp_path) == [
        "relay/core/probe.py:1 imports time.monotonic",
        "relay/core/probe.py:4 imports relay.service",
        "relay/core/probe.py:7 imports numpy",
        "relay/core/probe.py:8 imports node.storage.NodeStore",
        "relay/core/probe.py:9 calls open()",
    ]
