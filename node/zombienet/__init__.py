"""Zombienet's test files read by asyncback: network files (TOML) and `.zndsl` tests."""

from __future__ import annotations

from pathlib import Path


def read_named_file(path: Path, what: str, error: type[Exception]) -> str:
    """The text of a file the user named, or `error` with one line saying why not."""
    try:
        return path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
