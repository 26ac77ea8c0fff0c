"""The collator's decision loop over real runtime state: how many blocks it builds per relay
slot (velocity), where the unincluded segment stops it (capacity), and that every block it builds
validates and spends each transaction once."""

from __future__ import annotations

from para_fixtures import para_genesis, relay_parent

from collator.core.collator_chain import CollationTarget, CollatorChain, can_build_upon
from collator.core.para_chain import ParaChain
from collator.core.pvf import run_pvf
from collator.core.tx_pool import TxPool


def target(rp_number: int, included_head: bytes, cores: tuple[int, ...],
           min_relay_parent: int = 0) -> CollationTarget:
    return CollationTarget(relay_parent(rp_number, rp_number, included_head), cores,
                           session_index=0, n_validators=5, max_pov_size=1 << 22,
                           min_relay_parent_number=min_relay_parent, max_depth=8)


def test_builds_velocity_plus_one_per_slot_until_the_segment_is_full() -> None:
    entries, genesis = para_genesis(capacity=5, velocity=1)
    chain = CollatorChain(ParaChain(entries, genesis), genesis.hash())
    pool = TxPool()
    pool.generate_transfers(3000)
    cores = (0, 1, 2)
    built_per_slot = []
    all_txs = []
    for slot in (1, 2, 3, 4):
        cols = chain.collate(target(slot, genesis.head_data(), cores), pool)
        built_per_slot.append(len(cols))
        for c in cols:
            result = run_pvf(c.pvd.parent_head, c.pov, c.pvd.relay_parent_number,
                             c.pvd.relay_parent_storage_root)
            assert result.to_commitments() == c.receipt.commitments
            all_txs.extend(c.block.extrinsics)
        assert [c.receipt.descriptor.core_index for c in cols] == list(cores[: len(cols)])
    # V=1 tolerates V+1 = 2 blocks per relay slot; capacity 5 with nothing included stops at 5
    assert built_per_slot == [2, 2, 1, 0]
    assert len(all_txs) == len(set(all_txs)) == 5 * 400
    # inclusion frees the segment: two more blocks fit once block 2 is included
    best = chain.best(set(), 0, 8)
    assert chain.chain.header(best).number == 5
    second = next(h for h, hdr in chain.chain.headers.items() if hdr.number == 2)
    chain.note_included(chain.chain.header(second).head_data())
    assert chain.can_build_upon(best, 5)
    cols = chain.collate(target(5, chain.chain.header(second).head_data(), cores), pool)
    assert [c.block.header.number for c in cols] == [6, 7]


def test_blocks_on_relay_parents_out_of_ancestry_are_abandoned() -> None:
    entries, genesis = para_genesis(capacity=5, velocity=1)
    chain = CollatorChain(ParaChain(entries, genesis), genesis.hash())
    first = chain.collate(target(1, genesis.head_data(), (0,)), TxPool())
    assert [c.block.header.number for c in first] == [1]
    # relay parent 1 is older than the allowed ancestry of relay block 4 and block 1 was never
    # backed: building on it is useless, the collator starts again from the included block
    assert chain.best(set(), min_relay_parent=2, max_depth=8) == genesis.hash()
    # unless the relay chain has block 1 pending availability
    pending = {first[0].block.header.head_data()}
    on_top = chain.collate(target(4, genesis.head_data(), (0,), min_relay_parent=2), TxPool(),
                           pending)
    assert [c.block.header.parent_hash for c in on_top] == [first[0].block.header.hash()]
    # without it, the collator forks off the included block
    again = chain.collate(target(4, genesis.head_data(), (0,), min_relay_parent=2), TxPool())
    assert [c.block.header.parent_hash for c in again] == [genesis.hash()]


def test_can_build_upon_reads_the_parent_state() -> None:
    entries, genesis = para_genesis(capacity=2, velocity=1)
    chain = CollatorChain(ParaChain(entries, genesis), genesis.hash())
    assert chain.can_build_upon(genesis.hash(), 1)  # the included block itself: always
    assert not chain.can_build_upon(b"\x07" * 32, 1)  # unknown parent
    cols = chain.collate(target(1, genesis.head_data(), (0,)), TxPool())
    assert len(cols) == 1
    post = cols[0].entries
    assert can_build_upon(post, genesis.hash(), 1)  # one authored in slot 1, V+1 = 2 allowed
    assert not can_build_upon(post, genesis.hash(), 0)  # relay slot went backwards
    second = chain.collate(target(2, genesis.head_data(), (0,)), TxPool())
    assert len(second) == 1
    assert not can_build_upon(second[0].entries, genesis.hash(), 3)  # capacity 2 reached
