"""Which built collations a collator forgets (`spent_collations`): those on a relay parent out of
the allowed ancestry, those the para's included head has passed, and the oldest beyond a bound."""

from __future__ import annotations

from para_fixtures import para_genesis, relay_parent

from collator.core.collation import Collation, spent_collations
from collator.core.collator_chain import CollationTarget, CollatorChain
from collator.core.para_chain import ParaChain
from collator.core.tx_pool import TxPool


def one_block_per_relay_parent(relay_parents: range) -> dict[bytes, Collation]:
    """Para blocks 1, 2, ... each built on the previous one at relay parents 1, 2, ..."""
    entries, genesis = para_genesis(capacity=8, velocity=1)
    chain = CollatorChain(ParaChain(entries, genesis), genesis.hash())
    built: dict[bytes, Collation] = {}
    for n in relay_parents:
        target = CollationTarget(relay_parent(n, n, genesis.head_data()), (0,), session_index=0,
                                 n_validators=5, max_pov_size=1 << 22,
                                 min_relay_parent_number=0, max_depth=8)
        built.update((c.candidate_hash, c) for c in chain.collate(target, TxPool()))
    return built


def described(built: dict[bytes, Collation], hashes: list[bytes]) -> list[tuple[int, int]]:
    """(relay parent number, para block number) of each, in order."""
    return sorted((built[h].pvd.relay_parent_number, built[h].block.header.number)
                  for h in hashes)


def test_relay_parents_older_than_the_allowed_ancestry_are_spent() -> None:
    built = one_block_per_relay_parent(range(1, 6))
    assert described(built, list(built)) == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    assert spent_collations(built, 1, None, 100) == []
    assert described(built, spent_collations(built, 4, None, 100)) == [(1, 1), (2, 2), (3, 3)]


def test_blocks_the_included_head_has_reached_are_spent() -> None:
    built = one_block_per_relay_parent(range(1, 6))
    assert spent_collations(built, 0, 0, 100) == []
    assert described(built, spent_collations(built, 0, 2, 100)) == [(1, 1), (2, 2)]
    # both rules at once: whichever spends a collation first
    assert described(built, spent_collations(built, 4, 1, 100)) == [(1, 1), (2, 2), (3, 3)]
    assert described(built, spent_collations(built, 2, 5, 100)) == [
        (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]


def test_beyond_the_bound_the_oldest_relay_parents_go_first() -> None:
    built = one_block_per_relay_parent(range(1, 6))
    assert described(built, spent_collations(built, 0, None, 2)) == [(1, 1), (2, 2), (3, 3)]
    # the bound applies to what the rules leave
    assert described(built, spent_collations(built, 2, None, 3)) == [(1, 1), (2, 2)]
    assert described(built, spent_collations(built, 2, None, 4)) == [(1, 1)]
    assert described(built, spent_collations(built, 3, None, 2)) == [(1, 1), (2, 2), (3, 3)]
    assert spent_collations(built, 0, None, 5) == []
