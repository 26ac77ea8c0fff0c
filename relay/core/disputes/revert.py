"""Which relay blocks a candidate concluded invalid takes with it.

Every block that backed or included the candidate goes, with everything built on it, on whichever
fork it is: a chain on top of an invalid parachain block must not be finalized (polkadot's dispute
coordinator asks chain selection to revert them; the runtime's `Revert(number)` names the height).
A block that is already final cannot go, and the plan reports it instead of pretending: a final
block that backed it is expected when an approval checker found it after inclusion (the caller
reverts from the including block), one that included it is what approval gating must prevent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from relay.core.block_tree import BlockTree


@dataclass(frozen=True)
class RevertPlan:
    blocks: tuple[bytes, ...]  # to drop, parents before children
    revert_numbers: tuple[int, ...]  # heights of the including blocks that go (`Revert` events)
    finalized: tuple[bytes, ...]  # backing or including blocks already final (see above)

    @property
    def empty(self) -> bool:
        return not self.blocks and not self.finalized


def blocks_to_revert(tree: BlockTree[Any], included_in: Iterable[bytes]) -> RevertPlan:
    """The unfinalized blocks among `included_in` and all their descendants in `tree`; blocks the
    tree no longer holds (pruned forks) are gone already."""
    roots: list[bytes] = []
    final: list[bytes] = []
    for h in dict.fromkeys(included_in):
        if h not in tree:
            continue
        (final if tree.is_descendant(tree.finalized, h) else roots).append(h)
    doomed: set[bytes] = set()
    stack = list(roots)
    while stack:
        h = stack.pop()
        if h not in doomed:
            doomed.add(h)
            stack.extend(tree.children(h))

    def height(h: bytes) -> int:
        header = tree.header(h)
        assert header is not None
        return header.number

    order = sorted(doomed, key=lambda h: (height(h), h))
    return RevertPlan(tuple(order), tuple(sorted({height(h) for h in roots})), tuple(final))
