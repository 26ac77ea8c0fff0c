"""What a node process does with an error nobody expected: the whole traceback (an exception
group from trio can run to 80 lines) goes to a file, the terminal gets one line naming the error
and that file. Errors the operator can act on (configuration, store, a port in use) never come
here: they are one line of their own, without a traceback.
"""

from __future__ import annotations

import datetime
import tempfile
import traceback
from pathlib import Path

import trio

CRASH_LOG = "crash.log"


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside `exc`'s groups, depth first (`exc` itself if it is not a group)."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def cause(exc: BaseException) -> BaseException:
    """The exception that stands for `exc`: its first leaf that is not a cancellation (what the
    failure cancelled), or its first leaf."""
    found = leaves(exc)
    return next((e for e in found if not isinstance(e, trio.Cancelled)), found[0])


def write_crash_log(exc: BaseException, base_path: Path, name: str) -> Path:
    """Append `exc`'s full traceback to `base_path/crash.log` (or, when that cannot be written,
    to one in the temporary directory); returns the file written."""
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    text = f"--- {stamp} {name}: unexpected error\n" + "".join(
        traceback.format_exception(exc))
    for path in (base_path / CRASH_LOG, Path(tempfile.gettempdir()) / f"asyncback-{name}-crash.log"):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(text)
        except OSError:
            continue
        return path
    raise OSError(f"could not write a crash log for {name}")


def one_line(exc: BaseException, log_path: Path) -> str:
    """The line the terminal gets."""
    first = cause(exc)
    what = f"{type(first).__name__}: {first}".rstrip(": ").replace("\n", " ")
    return f"unexpected error: {what} (full traceback in {log_path})"
