"""Property: whatever the pool and the execution budget, a built block never exceeds its weight
limit, takes as many ready transactions as fit, and the validation function reproduces exactly the
same head and commitments."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from para_fixtures import para_genesis, relay_parent

from collator.core.collation import build_collation
from collator.core.para_runtime import (
    N_ACCOUNTS,
    TRANSFER_WEIGHT,
    WEIGHT_PER_MS,
    Transfer,
    weight_of,
)
from collator.core.pvf import run_pvf
from collator.core.tx_pool import TxPool

transfers = st.lists(
    st.tuples(st.integers(0, N_ACCOUNTS - 1), st.integers(0, N_ACCOUNTS - 1),
              st.integers(0, 10**6)),
    max_size=600,
)


@settings(max_examples=40, deadline=None)
# small budgets (a few transfers) make the limit bind for the list sizes hypothesis likes
@given(transfers, st.one_of(st.integers(0, 60), st.integers(0, 2500)), st.randoms(use_true_random=False))
def test_built_block_fits_its_weight_limit_and_validates_to_the_same_head(
    raw: list[tuple[int, int, int]], budget_ms: int, rng: random.Random
) -> None:
    entries, header = para_genesis(capacity=3, weight_ms=budget_ms)
    nonces: dict[int, int] = {}
    txs = []
    for sender, recipient, amount in raw:
        txs.append(Transfer(sender, recipient, amount, nonces.get(sender, 0)))
        nonces[sender] = nonces.get(sender, 0) + 1
    rng.shuffle(txs)  # arrival order is not nonce order
    pool = TxPool()
    for x in txs:
        pool.submit(x)
    ready = pool.ready(entries, len(pool))
    assert len(ready) == len(txs)  # every sender's nonces are contiguous from 0

    col = build_collation(entries, header, relay_parent(1, 1, header.head_data()), ready, 0,
                          None, 0, 4, 1 << 22)
    limit = budget_ms * WEIGHT_PER_MS
    assert col.weight == sum(weight_of(x) for x in col.block.extrinsics) <= limit
    assert len(col.block.extrinsics) == min(len(ready), limit // TRANSFER_WEIGHT)
    result = run_pvf(col.pvd.parent_head, col.pov, col.pvd.relay_parent_number,
                     col.pvd.relay_parent_storage_root)
    assert result.head_data == col.block.header.head_data()
    assert result.to_commitments() == col.receipt.commitments
