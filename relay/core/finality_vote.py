"""The block a validator votes final: the highest block above finality such that it and every block
below it down to finality pass both voting rules, approval checking (its included candidates are
approved) and disputes (it backed no candidate that is disputed and not concluded valid).

Both rules look at the same blocks, the unfinalized part of the best chain, so one pass up that
path serves both: it stops once each rule has refused a block, and reports how far each rule alone
reaches (the two finality-lag metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

BlockRule = Callable[[bytes], bool]


@dataclass(frozen=True)
class VoteTarget:
    """How many blocks of the path (from just above finality) each rule lets through."""

    approved: int  # blocks approved, all of them and every one below
    undisputed: int  # blocks backing nothing disputed, likewise

    @property
    def allowed(self) -> int:
        """How many blocks of the path a finality vote may cover: both rules hold."""
        return min(self.approved, self.undisputed)


def vote_target(path: Sequence[bytes], approved: BlockRule, undisputed: BlockRule) -> VoteTarget:
    """Walk `path` (unfinalized blocks, oldest first) once, up to the first block failing each
    rule."""
    n_approved: int | None = None
    n_undisputed: int | None = None
    for i, h in enumerate(path):
        if n_approved is None and not approved(h):
            n_approved = i
        if n_undisputed is None and not undisputed(h):
            n_undisputed = i
        if n_approved is not None and n_undisputed is not None:
            break
    return VoteTarget(len(path) if n_approved is None else n_approved,
                      len(path) if n_undisputed is None else n_undisputed)


__all__ = ["BlockRule", "VoteTarget", "vote_target"]
