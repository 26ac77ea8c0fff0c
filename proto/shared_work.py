"""Pure work shared by the simulated nodes of one process.

The cores are pure: a signature check, a collation's validation, a relay block's re-execution
give the same answer wherever they run. A simulator running many nodes in one process can
therefore compute each once and hand the answer to every node that asks, keyed by the inputs'
content. Nothing is shared unless a `SharedWork` is installed (`sharing`), which only the
simulator does: a real node runs alone in its process and does all its own work.

Only results are kept, never failures: a computation that raises is re-run by every caller, so
each node meets its own error. Callers whose result is mutable copy it (`shared` returns the
stored object itself).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_CAPACITY = 1 << 16  # results kept per kind; the oldest half goes when it is exceeded
# Kinds whose every result is large (a validated collation with its erasure chunks, a recovered
# PoV, a relay block's post-state; the caller says so with `large=True`) keep fewer: at 300
# validators a candidate's chunks are ~170 KB, and 65,536 of them kept a long run growing by
# ~10 MB a relay block. The nodes asking for one result ask within a few slots of each other; a
# late one (a node catching up, a dispute's participant) computes it again.
LARGE_RESULT_CAPACITY = 1 << 10


class SharedWork:
    """Results of pure computations, per kind (`"ed25519"`, `"collation"`, ...), by key."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY,
                 large_capacity: int = LARGE_RESULT_CAPACITY) -> None:
        if capacity < 2 or large_capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.large_capacity = min(capacity, large_capacity)
        self._tables: dict[str, dict[Hashable, Any]] = {}
        self.computed: dict[str, int] = {}
        self.reused: dict[str, int] = {}

    def get(self, kind: str, key: Hashable, compute: Callable[[], T], large: bool = False) -> T:
        table = self._tables.get(kind)
        if table is None:
            table = self._tables[kind] = {}
        try:
            result: T = table[key]
        except KeyError:
            pass
        else:
            self.reused[kind] = self.reused.get(kind, 0) + 1
            return result
        result = compute()
        self.computed[kind] = self.computed.get(kind, 0) + 1
        capacity = self.large_capacity if large else self.capacity
        if len(table) >= capacity:
            for old in list(islice(table, capacity // 2)):
                del table[old]
        table[key] = result
        return result

    def counts(self) -> dict[str, dict[str, int]]:
        """Per kind: how many results were computed and how many reused."""
        return {k: {"computed": self.computed.get(k, 0), "reused": self.reused.get(k, 0)}
                for k in sorted(set(self.computed) | set(self.reused))}


_installed: SharedWork | None = None


def shared(kind: str, key: Hashable, compute: Callable[[], T], large: bool = False) -> T:
    """`compute()`, or the result another node of this process already computed for `key`.
    `large`: every result of this kind is big, so fewer are kept."""
    work = _installed
    if work is None:
        return compute()
    return work.get(kind, key, compute, large)


def sharing_active() -> bool:
    return _installed is not None


@contextmanager
def sharing(work: SharedWork | None) -> Iterator[SharedWork | None]:
    """Share pure work through `work` while the block runs (None: every caller computes)."""
    global _installed
    previous = _installed
    _installed = work
    try:
        yield work
    finally:
        _installed = previous
