"""The finality vote's target: one walk up the unfinalized chain for both rules (approval checking
and disputes), and the block tree's path above finality that it walks."""

from __future__ import annotations

import pytest
from approval_fixtures import GENESIS, child, tree

from relay.core.block_tree import BlockTreeError
from relay.core.finality_vote import VoteTarget, vote_target


def test_each_rule_stops_at_its_first_refused_block_and_the_vote_at_the_lower() -> None:
    path = [bytes([i]) * 32 for i in range(1, 7)]
    unapproved = {path[4]}
    disputed = {path[2], path[5]}
    seen: list[bytes] = []

    def approved(h: bytes) -> bool:
        seen.append(h)
        return h not in unapproved

    target = vote_target(path, approved, lambda h: h not in disputed)
    assert target == VoteTarget(approved=4, undisputed=2)
    assert target.allowed == 2
    assert seen == path[:5]  # stops once both rules refused a block: path[5] is never looked at
    assert vote_target(path, lambda _: True, lambda _: True).allowed == len(path)
    assert vote_target([], lambda _: False, lambda _: False) == VoteTarget(0, 0)
    assert vote_target(path, lambda _: False, lambda _: True) == VoteTarget(0, 6)


def test_path_above_finalized_is_oldest_first_and_refuses_other_chains() -> None:
    t = tree()
    b1 = child(GENESIS, 1)
    b2 = child(b1, 2)
    b3 = child(b2, 3)
    f2 = child(b1, 2, b"fork")
    for h in (b1, b2, b3, f2):
        t.add(h, None)
    assert t.path_above_finalized(b3.hash()) == [b1.hash(), b2.hash(), b3.hash()]
    assert t.path_above_finalized(GENESIS.hash()) == []
    t.finalized = b2.hash()  # as `_advance` sets it, without the votes
    assert t.path_above_finalized(b3.hash()) == [b3.hash()]
    with pytest.raises(BlockTreeError):
        t.path_above_finalized(f2.hash())  # a fork below finality
    with pytest.raises(BlockTreeError):
        t.path_above_finalized(child(GENESIS, 9, b"unknown").hash())
