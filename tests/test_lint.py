"""ruff and mypy over the whole tree: style and types are part of the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff() -> None:
    res = _run("ruff", "check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy() -> None:
    res = _run("mypy")
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_two_test_modules_share_a_name() -> None:
    """Test folders are not packages, so pytest imports each module by its file name: a second
    `test_x.py` elsewhere stops the whole collection ("import file mismatch")."""
    from collections import Counter
    from pathlib import Path

    names = Counter(p.name for p in (Path(__file__).parent).rglob("*.py")
                    if p.name != "__init__.py" and p.name != "conftest.py")
    assert [n for n, k in names.items() if k > 1] == []
