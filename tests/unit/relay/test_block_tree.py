"""Block tree: fork choice and vote-based finality with five validators (four votes needed)."""

from __future__ import annotations

import pytest

from proto.hashing import blake2_256
from proto.keys import Keypair, dev_name
from proto.relay_block import RelayHeader
from proto.statements import FinalityVote
from relay.core.block_tree import BlockTree, BlockTreeError

KEYS = [Keypair.from_name(dev_name(i)) for i in range(5)]
GENESIS = RelayHeader(bytes(32), 0, 0, 0, bytes(32), bytes(32))


def child(parent: RelayHeader, slot: int, tag: bytes = b"") -> RelayHeader:
    return RelayHeader(parent.hash(), parent.number + 1, slot, slot % 5, blake2_256(tag), bytes(32))


def vote(v: int, h: RelayHeader) -> FinalityVote:
    return FinalityVote.sign(KEYS[v], h.hash(), h.number, 0, v)


def tree() -> BlockTree[int]:
    return BlockTree(GENESIS, 0, [k.public for k in KEYS])


def test_fork_choice_longest_then_lower_slot_then_hash() -> None:
    t = tree()
    a1 = child(GENESIS, 1)
    b1 = child(GENESIS, 2, b"b")
    t.add(a1, 1)
    t.add(b1, 1)
    assert t.best == a1.hash()  # lower slot
    b2 = child(b1, 3)
    t.add(b2, 2)
    assert t.best == b2.hash()  # longer
    assert t.is_descendant(b2.hash(), b1.hash()) and not t.is_descendant(b2.hash(), a1.hash())
    assert t.ancestors(b2.hash(), 5) == [b1.hash(), GENESIS.hash()]
    assert t.block_at(1, b2.hash()) == b1.hash()
    with pytest.raises(BlockTreeError, match="unknown parent"):
        t.add(child(child(GENESIS, 9), 10), 0)


def test_finality_needs_more_than_two_thirds_and_prunes_forks() -> None:
    t = tree()
    a1, b1 = child(GENESIS, 1), child(GENESIS, 2, b"b")
    a2 = child(a1, 3)
    for h in (a1, b1, a2):
        t.add(h, h.number)
    assert t.note_vote(vote(0, a2)) == [] and t.note_vote(vote(1, a2)) == []
    assert t.note_vote(vote(2, a1)) == []  # three of five: not final
    assert t.note_vote(vote(3, a2)) == [a1.hash()]  # 4 votes for a1 or descendants
    assert t.finalized == a1.hash()
    assert b1.hash() not in t  # the conflicting fork is pruned
    with pytest.raises(BlockTreeError, match="unknown parent"):
        t.add(child(b1, 4), 0)
    assert t.note_vote(vote(4, a2)) == [a2.hash()]


def test_bad_votes_are_refused() -> None:
    t = tree()
    a1 = child(GENESIS, 1)
    t.add(a1, 1)
    forged = FinalityVote(a1.hash(), 1, 0, 2, vote(1, a1).signature)
    with pytest.raises(BlockTreeError, match="signature"):
        t.note_vote(forged)
    with pytest.raises(BlockTreeError, match="unknown validator"):
        t.note_vote(FinalityVote(a1.hash(), 1, 0, 9, bytes(64)))


def test_votes_for_unknown_blocks_wait_for_the_block() -> None:
    t = tree()
    a1 = child(GENESIS, 1)
    for v in range(4):
        assert t.note_vote(vote(v, a1)) == []
    t.add(a1, 1)
    assert t.apply_pending_votes() == [a1.hash()]


def test_mislabelled_and_replayed_votes() -> None:
    t = tree()
    a1 = child(GENESIS, 1)
    t.add(a1, 1)
    lying = FinalityVote.sign(KEYS[0], a1.hash(), 99, 0, 0)  # block #1 claimed as #99
    with pytest.raises(BlockTreeError, match="names #99"):
        t.note_vote(lying)
    assert t.note_vote(vote(0, a1)) == []  # the real vote still counts
    future = child(a1, 2)
    for _ in range(5):
        t.note_vote(vote(1, future))  # replays of one pending vote
    assert len(t.pending_votes) == 1


def test_finalizing_keeps_exactly_the_finalized_chain_and_its_descendants() -> None:
    """Random forks at every height, finality moved up step by step: after each step the tree
    holds the finalized block's ancestors and descendants, no other block, and its leaves are
    those of that set (the walks start at the old finalized block, not at genesis)."""
    import random

    rng = random.Random(5)
    t = tree()
    headers = {GENESIS.hash(): GENESIS}
    slot = 0
    for _ in range(60):
        parent = headers[rng.choice(list(t.nodes))]
        if not t.is_descendant(parent.hash(), t.finalized):
            continue
        slot += 1
        h = child(parent, slot, bytes([rng.randrange(256)]))
        t.add(h, h.number)
        headers[h.hash()] = h
        if rng.random() < 0.3:
            above = [x for x in t.nodes if t.is_descendant(x, t.finalized)]
            previous = t.finalized
            target = rng.choice(above)
            before = set(t.nodes)
            pruned = t.finalize(target)
            ancestors = set(t.ancestors(target, len(headers)))
            expected = {x for x in before if x in ancestors or t.is_descendant(x, target)}
            assert set(t.nodes) == expected and set(pruned) == before - expected
            assert t.finalize(target) == []  # finalizing it again drops nothing
            assert previous in t.nodes
            assert sorted(t.leaves()) == sorted(x for x in t.nodes if not t.nodes[x].children)
            assert all(c in t.nodes for x in t.nodes for c in t.nodes[x].children)
    with pytest.raises(BlockTreeError, match="descend"):
        t.finalize(GENESIS.hash()) if t.finalized != GENESIS.hash() else t.finalize(bytes(32))
