"""Parent selection over the collator's chain, and the nonce-aware transaction pool."""

from __future__ import annotations

from para_fixtures import para_genesis, relay_parent

from collator.core.collation import build_collation
from collator.core.para_chain import ParaChain
from collator.core.para_import import import_para_block
from collator.core.para_runtime import Transfer
from collator.core.tx_pool import TxPool


def grow(chain: ParaChain, parent: bytes, rp: int, included: bytes) -> bytes:
    col = build_collation(chain.state(parent), chain.header(parent), relay_parent(rp, rp, included),
                          [], 0, None, 0, 4, 1 << 20)
    chain.add(col.entries, col.block.header)
    return col.block.header.hash()


def test_deepest_usable_descendant_of_the_included_block() -> None:
    entries, genesis = para_genesis(capacity=5)
    chain = ParaChain(entries, genesis)
    g = genesis.hash()
    b1 = grow(chain, g, 1, genesis.head_data())
    b2 = grow(chain, b1, 2, genesis.head_data())
    b3 = grow(chain, b2, 3, genesis.head_data())
    assert chain.find_parent(g, set(), min_relay_parent=1, max_depth=5) == b3
    # blocks on relay parents that left the allowed ancestry can never be backed: skip them...
    assert chain.find_parent(g, set(), min_relay_parent=3, max_depth=5) == g
    # ...unless the relay chain already has them pending availability
    pending = {chain.header(b).head_data() for b in (b1, b2)}
    assert chain.find_parent(g, pending, min_relay_parent=3, max_depth=5) == b3
    assert chain.find_parent(g, set(), min_relay_parent=0, max_depth=2) == b2  # depth bound
    assert chain.find_parent(b2, set(), min_relay_parent=0, max_depth=5) == b3


def test_pool_orders_by_nonce_against_the_parent_state() -> None:
    entries, _ = para_genesis()
    pool = TxPool(capacity=5)
    pool.submit(Transfer(1, 2, 1, 1))  # future nonce: waits for nonce 0
    pool.submit(Transfer(1, 2, 1, 0))
    pool.submit(Transfer(3, 2, 1, 0))
    ready = pool.ready(entries, 10)
    assert ready == [Transfer(1, 2, 1, 0), Transfer(3, 2, 1, 0), Transfer(1, 2, 1, 1)]
    pool.generate_transfers(5)
    assert len(pool) == 5 and pool.dropped == 3
    assert len(pool.ready(entries, 2)) == 2


def test_pruning_drops_old_states_and_keeps_headers() -> None:
    entries, genesis = para_genesis(capacity=5)
    chain = ParaChain(entries, genesis)
    hashes = [genesis.hash()]
    for rp in range(1, 6):
        hashes.append(grow(chain, hashes[-1], rp, genesis.head_data()))
    assert chain.prune(3) == 3  # genesis, #1 and #2
    assert chain.prune(2) == 0  # the horizon only moves up
    assert [h in chain for h in hashes] == [False, False, False, True, True, True]
    assert [chain.is_pruned(h) for h in hashes] == [True, True, True, False, False, False]
    assert [chain.header(h).number for h in hashes] == [0, 1, 2, 3, 4, 5]  # headers stay
    assert chain.header(chain.highest).number == 5
    # building goes on from what is kept; nothing is built or imported on pruned history
    assert chain.find_parent(hashes[3], set(), min_relay_parent=0, max_depth=5) == hashes[5]
    assert chain.find_parent(hashes[1], set(), min_relay_parent=0, max_depth=5) == hashes[1]
    fork = build_collation(entries, genesis, relay_parent(9, 9, genesis.head_data()),
                           [], 0, None, 0, 4, 1 << 20).block
    assert not import_para_block(chain, fork)  # its parent's state is gone
