"""The pure cores never import I/O, clocks or randomness (design.md §1).

Walks every module under proto/, relay/core/ and collator/core/ and inspects its import statements
with `ast`, so a forbidden import anywhere (even inside a function) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_DIRS = ("proto", "relay/core", "collator/core")
FORBIDDEN = {"trio", "socket", "time", "random", "os", "subprocess", "asyncio", "threading"}


def _pure_files() -> list[Path]:
    files = [p for d in PURE_DIRS for p in sorted((ROOT / d).rglob("*.py"))]
    assert files, "no pure-core modules found"
    return files


def _forbidden_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                if n.split(".")[0] in FORBIDDEN]
    return bad


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_core_module_has_no_io_imports(path: Path) -> None:
    assert _forbidden_imports(path) == []


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = ROOT / "proto" / "_purity_probe_tmp.py"
    try:
        sample.write_text("def f():\n    import time.monotonic\n")
        assert _forbidden_imports(sample) == ["proto/_purity_probe_tmp.py:2 imports time.monotonic"]
    finally:
        sample.unlink()
