"""structlog set-up: JSON lines off a TTY (containers, files), a console renderer on one; every line
carries the node's name, bound per task tree so in-process clusters keep their logs apart."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog

_configured = False


def configure(level: str = "info", fmt: str | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog and route stdlib loggers (hypercorn, ...) through the same renderer.

    `fmt` is "json" or "console"; by default console on a TTY, JSON otherwise (`LOG_FORMAT`
    overrides)."""
    global _configured
    stream = stream or sys.stderr
    fmt = fmt or os.environ.get("LOG_FORMAT") or ("console" if stream.isatty() else "json")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer])
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _configured = True


def get_logger(name: str = "asyncback") -> Any:
    return structlog.get_logger(name)


def bind_node(name: str, **extra: Any) -> None:
    """Bind `node=name` (and extra context) for the current task tree."""
    structlog.contextvars.bind_contextvars(node=name, **extra)
