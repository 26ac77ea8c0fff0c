"""The `asyncback` command line: `main` is the entry point (`node.cli:main`)."""

from node.cli.main import main

__all__ = ["main"]
