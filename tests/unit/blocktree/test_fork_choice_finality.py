"""Relay block tree: fork choice, finality by more than two thirds of the validators' latest
votes (five validators: four needed, three not enough), pruning of forks, refusals."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.hashing import blake2_256
from proto.keys import Keypair, dev_name
from proto.relay_block import RelayHeader
from proto.statements import FinalityVote
from relay.core.block_tree import MAX_PENDING_VOTES, BlockTree, BlockTreeError

N = 5
KEYS = [Keypair.from_name(dev_name(i)) for i in range(N)]
GENESIS = RelayHeader(bytes(32), 0, 0, 0, bytes(32), bytes(32))


def child(parent: RelayHeader, slot: int, tag: bytes = b"") -> RelayHeader:
    """A child of `parent`; `tag` makes siblings with the same slot distinct."""
    return RelayHeader(parent.hash(), parent.number + 1, slot, slot % N, blake2_256(tag),
                       bytes(32))


def vote(v: int, h: RelayHeader, session: int = 0) -> FinalityVote:
    return FinalityVote.sign(KEYS[v], h.hash(), h.number, session, v)


def new_tree() -> BlockTree[str]:
    return BlockTree(GENESIS, "genesis", [k.public for k in KEYS])


def chain(t: BlockTree[str], parent: RelayHeader, n: int, first_slot: int,
          tag: bytes = b"") -> list[RelayHeader]:
    out = []
    for i in range(n):
        parent = child(parent, first_slot + i, tag)
        t.add(parent, f"{tag!r}{parent.number}")
        out.append(parent)
    return out


def test_structure_queries_on_a_fork() -> None:
    t = new_tree()
    a1, a2, a3 = chain(t, GENESIS, 3, 1, b"a")
    b2 = child(a1, 5, b"b")
    assert t.add(b2, "b2") is True
    assert t.add(b2, "other payload") is False  # duplicate: idempotent, payload kept
    assert t.get(b2.hash()) == "b2" and t.header(b2.hash()) == b2
    assert t.get(b"\x00" * 32) is None and t.header(b"\x00" * 32) is None
    assert sorted(t.children(a1.hash())) == sorted([a2.hash(), b2.hash()])
    assert sorted(t.leaves()) == sorted([a3.hash(), b2.hash()])
    assert t.ancestors(a3.hash(), 10) == [a2.hash(), a1.hash(), GENESIS.hash()]
    assert t.ancestors(a3.hash(), 1) == [a2.hash()]
    assert t.is_descendant(a3.hash(), a1.hash()) and t.is_descendant(a3.hash(), a3.hash())
    assert not t.is_descendant(a3.hash(), b2.hash()) and not t.is_descendant(a1.hash(), a3.hash())
    assert t.block_at(2, on_chain_of=a3.hash()) == a2.hash()
    assert t.block_at(2, on_chain_of=b2.hash()) == b2.hash()
    assert t.block_at(0, on_chain_of=b2.hash()) == GENESIS.hash()
    assert t.block_at(3, on_chain_of=b2.hash()) is None


def test_fork_choice_longest_then_lower_slot_then_lower_hash() -> None:
    t = new_tree()
    a1 = child(GENESIS, 2, b"a")
    b1 = child(GENESIS, 1, b"b")
    t.add(a1, "a1")
    assert t.best == a1.hash()
    t.add(b1, "b1")
    assert t.best == b1.hash()  # same height, lower slot
    c1, d1 = child(GENESIS, 1, b"c"), child(GENESIS, 1, b"d")
    t.add(c1, "c1")
    t.add(d1, "d1")
    assert t.best == min(b1.hash(), c1.hash(), d1.hash())  # same height and slot: lower hash
    a2 = child(a1, 9, b"a")
    t.add(a2, "a2")
    assert t.best == a2.hash()  # longest wins over any slot


def test_fork_choice_is_independent_of_arrival_order() -> None:
    blocks = [child(GENESIS, s, bytes([s])) for s in (3, 1, 2)]
    blocks += [child(blocks[0], 7, b"x"), child(blocks[2], 4, b"y"), child(blocks[2], 4, b"z")]
    one, two = new_tree(), new_tree()
    for h in blocks:
        one.add(h, "")
    for h in [blocks[2], blocks[5], blocks[4], blocks[1], blocks[0], blocks[3]]:
        two.add(h, "")
    expected = min(blocks[3:], key=lambda h: (h.slot, h.hash()))
    assert one.best == two.best == expected.hash()


def test_unknown_parent_and_wrong_number_are_refused() -> None:
    t = new_tree()
    orphan = child(child(GENESIS, 1, b"missing"), 2)
    with pytest.raises(BlockTreeError, match="unknown parent"):
        t.add(orphan, "")
    skipping = RelayHeader(GENESIS.hash(), 2, 1, 1, bytes(32), bytes(32))
    with pytest.raises(BlockTreeError, match="number"):
        t.add(skipping, "")
    assert len(t.leaves()) == 1 and t.best == GENESIS.hash()


def test_finality_needs_four_of_five_and_votes_count_for_ancestors() -> None:
    t = new_tree()
    a1, a2, a3 = chain(t, GENESIS, 3, 1, b"a")
    b1 = child(GENESIS, 1, b"b")
    t.add(b1, "b1")
    assert t.note_vote(vote(0, a3)) == []
    assert t.note_vote(vote(1, a2)) == []
    assert t.note_vote(vote(2, a1)) == []
    assert t.finalized == GENESIS.hash()  # three of five is not more than two thirds
    assert t.note_vote(vote(3, b1)) == []  # a vote on another fork supports only that fork
    assert t.finalized == GENESIS.hash()
    # the fourth vote on chain a, for a descendant, finalizes a1 (the deepest block 4 votes share)
    assert t.note_vote(vote(4, a2)) == [a1.hash()]
    assert t.finalized == a1.hash()
    # validator 2 moves up to a3: votes for a2 or below now come from 0, 1, 2, 4
    assert t.note_vote(vote(2, a3)) == [a2.hash()]
    assert t.best == a3.hash()


def test_finality_can_jump_several_blocks_oldest_first() -> None:
    t = new_tree()
    blocks = chain(t, GENESIS, 4, 1)
    for v in range(3):
        assert t.note_vote(vote(v, blocks[-1])) == []
    assert t.note_vote(vote(3, blocks[-1])) == [h.hash() for h in blocks]
    assert t.finalized == blocks[-1].hash()


def test_only_the_latest_vote_of_a_validator_counts() -> None:
    t = new_tree()
    a1, a2 = chain(t, GENESIS, 2, 1, b"a")
    b1, b2, b3 = chain(t, GENESIS, 3, 10, b"b")
    for v in range(3):
        t.note_vote(vote(v, a2))
    t.note_vote(vote(3, b3))  # validator 3 is on chain b, at height 3
    # validator 3 signing an older, lower vote for a1 does not replace its newer vote
    assert t.note_vote(vote(3, a1)) == []
    assert t.finalized == GENESIS.hash()
    # a repeated vote changes nothing either
    assert t.note_vote(vote(0, a2)) == []
    a3 = child(a2, 20, b"a")
    t.add(a3, "a3")
    assert t.note_vote(vote(3, a3)) == []  # same height as its vote for b3: not newer, ignored
    a4 = child(a3, 21, b"a")
    t.add(a4, "a4")
    assert t.note_vote(vote(3, a4)) == [a1.hash(), a2.hash()]  # higher vote: now it counts for a
    assert b1.hash() not in t and b2.hash() not in t and b3.hash() not in t


def test_finality_prunes_every_conflicting_fork() -> None:
    t = new_tree()
    a1, a2 = chain(t, GENESIS, 2, 1, b"a")
    b1, b2 = chain(t, GENESIS, 2, 5, b"b")
    c2 = child(a1, 9, b"c")
    t.add(c2, "c2")
    for v in range(4):
        t.note_vote(vote(v, a2))
    assert t.finalized == a2.hash()
    for gone in (b1, b2, c2):
        assert gone.hash() not in t and t.header(gone.hash()) is None
    # the finalized chain stays: it is the history block_at answers from
    assert GENESIS.hash() in t and a1.hash() in t
    assert t.children(a1.hash()) == [a2.hash()] and t.children(GENESIS.hash()) == [a1.hash()]
    assert t.leaves() == [a2.hash()] and t.best == a2.hash()
    assert t.block_at(1, on_chain_of=a2.hash()) == a1.hash()


def test_blocks_below_or_conflicting_with_finality_are_refused() -> None:
    t = new_tree()
    a1, a2 = chain(t, GENESIS, 2, 1, b"a")
    b1 = child(GENESIS, 5, b"b")
    t.add(b1, "b1")
    for v in range(4):
        t.note_vote(vote(v, a2))
    with pytest.raises(BlockTreeError, match="finality"):
        t.add(child(GENESIS, 7, b"late fork"), "")  # forks off finalized history
    with pytest.raises(BlockTreeError, match="finality"):
        t.add(child(a1, 8, b"late fork"), "")
    with pytest.raises(BlockTreeError):
        t.add(child(b1, 6, b"b"), "")  # builds on a pruned fork
    assert t.add(a1, "a1") is False  # a known finalized block is still a harmless duplicate
    a3 = child(a2, 9, b"a")
    assert t.add(a3, "a3") is True and t.best == a3.hash()


def test_bad_votes_are_refused_and_change_nothing() -> None:
    t = new_tree()
    a1 = child(GENESIS, 1)
    t.add(a1, "a1")
    good = vote(1, a1)
    forged = FinalityVote(a1.hash(), 1, 0, 2, good.signature)  # 1's signature claimed by 2
    with pytest.raises(BlockTreeError, match="signature"):
        t.note_vote(forged)
    altered = FinalityVote(a1.hash(), 2, 0, 1, good.signature)  # number changed after signing
    with pytest.raises(BlockTreeError, match="signature"):
        t.note_vote(altered)
    # cheap checks come first: an out-of-range index or foreign session is refused as such,
    # whatever the signature
    with pytest.raises(BlockTreeError, match="unknown validator"):
        t.note_vote(FinalityVote(a1.hash(), 1, 0, N, bytes(64)))
    with pytest.raises(BlockTreeError, match="session"):
        t.note_vote(FinalityVote(a1.hash(), 1, 7, 0, bytes(64)))
    with pytest.raises(BlockTreeError, match="session"):
        t.note_vote(vote(0, a1, session=1))  # a genuine vote, but for another session
    # none of the refused votes counted: three genuine ones are still not enough
    for v in (0, 3, 4):
        assert t.note_vote(vote(v, a1)) == []
    assert t.note_vote(good) == [a1.hash()]


def test_votes_for_unknown_blocks_wait_for_the_block() -> None:
    t = new_tree()
    a1 = child(GENESIS, 1)
    for v in range(4):
        assert t.note_vote(vote(v, a1)) == []
    assert t.finalized == GENESIS.hash()
    t.add(a1, "a1")
    assert t.apply_pending_votes() == [a1.hash()]
    assert t.apply_pending_votes() == []


def test_pending_votes_are_bounded_and_checked() -> None:
    t = new_tree()
    unknown = child(GENESIS, 1, b"never arrives")
    with pytest.raises(BlockTreeError, match="signature"):
        t.note_vote(FinalityVote(unknown.hash(), 1, 0, 0, vote(1, unknown).signature))
    parent = GENESIS
    for i in range(MAX_PENDING_VOTES + 10):
        parent = child(parent, i + 1, b"far")
        t.note_vote(vote(i % N, parent))
    assert len(t.pending_votes) == MAX_PENDING_VOTES


@st.composite
def trees_and_votes(draw: st.DrawFn) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """Blocks as (parent position, slot, tag) over earlier positions (0 = genesis), and votes as
    (validator, block position)."""
    n = draw(st.integers(1, 14))
    blocks = [(draw(st.integers(0, i)), draw(st.integers(1, 4)), draw(st.integers(0, 3)))
              for i in range(n)]
    votes = draw(st.lists(st.tuples(st.integers(0, N - 1), st.integers(0, n)), max_size=25))
    return blocks, votes


@settings(max_examples=150, deadline=None)
@given(trees_and_votes())
def test_finality_is_safe_monotone_and_live(case: tuple[list[tuple[int, int, int]],
                                                        list[tuple[int, int]]]) -> None:
    blocks, votes = case
    headers = [GENESIS]
    t = new_tree()
    for parent, slot, tag in blocks:
        h = child(headers[parent], headers[parent].slot + slot, bytes([tag, len(headers)]))
        headers.append(h)
        t.add(h, "")
    by_hash = {h.hash(): h for h in headers}

    def descends(x: bytes, ancestor: bytes) -> bool:
        while x in by_hash and by_hash[x].number > by_hash[ancestor].number:
            x = by_hash[x].parent_hash
        return x == ancestor

    cast: dict[int, list[bytes]] = {v: [] for v in range(N)}
    for v, pos in votes:
        before = t.finalized
        newly = t.note_vote(vote(v, headers[pos]))
        cast[v].append(headers[pos].hash())
        if newly:
            # monotone: a contiguous chain continuing the previous finalized block
            assert by_hash[newly[0]].parent_hash == before
            for older, newer in pairwise(newly):
                assert by_hash[newer].parent_hash == older
            assert t.finalized == newly[-1]
            # safe: more than 2/3 of the validators did vote for it or a descendant
            supporters = [w for w in range(N) if any(descends(x, newly[-1]) for x in cast[w])]
            assert 3 * len(supporters) > 2 * N
        else:
            assert t.finalized == before
        # every kept block is on the finalized chain or descends from the finalized block
        for h in headers:
            if h.hash() in t:
                assert descends(h.hash(), t.finalized) or descends(t.finalized, h.hash())
        # best: a leaf descending from finality, first by (height, slot, hash)
        best = by_hash[t.best]
        assert descends(t.best, t.finalized)
        for leaf in t.leaves():
            lh = by_hash[leaf]
            assert (-best.number, best.slot, t.best) <= (-lh.number, lh.slot, leaf)
    # live: a new block on top of best that four validators vote for becomes final
    tip = child(by_hash[t.best], 10_000, b"tip")
    t.add(tip, "")
    for v in range(4):
        t.note_vote(vote(v, tip))
    assert t.finalized == tip.hash() and t.leaves() == [tip.hash()]


class RecountingTree(BlockTree[str]):
    """The tree as it was before it kept a count of the votes above finality and its last fork
    choice (a recount at every vote, a fork choice at every ask), and before finalizing and
    finding leaves walked only the blocks above the finalized one (a look at every block)."""

    def _votes_above(self, final: int) -> int:
        return sum(1 for vote in self.votes.values() if vote.number > final)

    @property
    def best(self) -> bytes:
        self._best = None
        return super().best

    def leaves(self) -> list[bytes]:
        return [h for h, n in self.nodes.items() if not n.children]

    def finalize(self, target: bytes) -> list[bytes]:
        if not self.is_descendant(target, self.finalized):
            raise BlockTreeError("a new finalized block must descend from the finalized one")
        self.finalized = target
        keep = {target, *self.ancestors(target, len(self.nodes))}
        pruned = [h for h in self.nodes if h not in keep and not self.is_descendant(h, target)]
        for h in pruned:
            del self.nodes[h]
        for n in self.nodes.values():
            n.children = [c for c in n.children if c in self.nodes]
        self.votes = {v: x for v, x in self.votes.items() if x.block_hash in self.nodes}
        self._above = None
        self._best = None
        return pruned


@st.composite
def tree_operations(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """("add", parent position, tag), ("vote", validator, position), ("apply", 0, 0),
    ("remove", position, 0) and ("restore", position, 0) over the blocks added so far (a
    position past them: a block voted for before it is added, by an add with tag 3)."""
    ops: list[tuple[str, int, int]] = []
    blocks = 1  # genesis
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["add", "add", "vote", "vote", "vote", "apply", "remove",
                                     "restore"]))
        if kind == "add":
            ops.append((kind, draw(st.integers(0, blocks - 1)), draw(st.integers(0, 3))))
            blocks += 1
        elif kind == "vote":
            # a vote may name a block added later (it waits) or one of the added
            ops.append((kind, draw(st.integers(0, N - 1)), draw(st.integers(0, blocks + 2))))
        else:
            ops.append((kind, draw(st.integers(0, blocks - 1)), 0))
    return ops


@settings(max_examples=150, deadline=None)
@given(tree_operations())
def test_the_kept_count_of_votes_above_finality_and_fork_choice_change_nothing(
        ops: list[tuple[str, int, int]]) -> None:
    """Votes, pending votes, reverts and a restored finality: the tree that keeps a count of
    the votes above finality and its last fork choice finalizes and chooses exactly what the
    recounting one does."""
    kept, recounting = new_tree(), RecountingTree(GENESIS, "genesis", [k.public for k in KEYS])
    headers = [GENESIS]
    planned: list[RelayHeader] = []  # voted for before they are added

    for kind, a, b in ops:
        if kind != "vote":
            a %= len(headers)  # an add may have been refused
        if kind == "add":
            h = planned.pop(0) if b == 3 and planned else \
                child(headers[a], headers[a].slot + 1, bytes([b, len(headers)]))
        elif kind == "vote" and b >= len(headers):
            h = child(headers[b % len(headers)], 50_000 + len(planned), b"planned")
            planned.append(h)
        elif kind == "vote":
            h = headers[b]
        results = []
        for t in (kept, recounting):
            try:
                if kind == "add":
                    results.append(t.add(h, ""))
                elif kind == "vote":
                    results.append(t.note_vote(vote(a, h)))
                elif kind == "apply":
                    results.append(t.apply_pending_votes())
                elif kind == "remove":
                    results.append(t.remove([headers[a].hash()]))
                else:  # what RelayChain.restore_finalized does
                    target = headers[a].hash()
                    if target in t and t.is_descendant(target, t.finalized):
                        t.finalize(target)
                    results.append(t.finalized)
            except BlockTreeError as exc:
                results.append(str(exc))
        if kind == "add" and results[0] is True:
            headers.append(h)
        assert results[0] == results[1]
        assert kept.finalized == recounting.finalized and kept.votes == recounting.votes
        assert kept.best == recounting.best
        assert set(kept.nodes) == set(recounting.nodes)
        assert sorted(kept.leaves()) == sorted(recounting.leaves())
        assert all(sorted(n.children) == sorted(recounting.nodes[h].children)
                   for h, n in kept.nodes.items())
        final = kept.nodes[kept.finalized].header.number
        assert kept._votes_above(final) == recounting._votes_above(final)
