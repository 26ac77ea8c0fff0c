"""The validation function in the validators' shape (`run_pvf`): it reproduces what
`build_collation` produced and refuses tampered PoVs; the para genesis head."""

from __future__ import annotations

import msgspec
import pytest
from para_fixtures import PARA, para_genesis, relay_parent

from collator.core.collation import Collation, build_collation, genesis_header
from collator.core.para_runtime import ParaBlock, ParaHeader, Transfer, ValidationInherent
from collator.core.pvf import (
    VALIDATION_CODE_HASH,
    InvalidBlock,
    ValidationResult,
    genesis_head,
    genesis_state,
    run_pvf,
    validate_candidate,
)
from collator.core.storage_keys import account_key
from collator.core.validation import make_pov
from proto.candidate import PersistedValidationData, PoV
from proto.codec import decode

MAX_POV = 1 << 20


def collate(entries: dict[bytes, bytes], header: ParaHeader, rp_number: int, included: bytes,
            pool: list | None = None) -> Collation:  # type: ignore[type-arg]
    rp = relay_parent(rp_number, rp_number, included)
    return build_collation(entries, header, rp, pool or [], 0, None, 0, 5, MAX_POV)


def pvf(col: Collation, pov: PoV | None = None) -> ValidationResult:
    return run_pvf(col.pvd.parent_head, pov or col.pov, col.pvd.relay_parent_number,
                   col.pvd.relay_parent_storage_root)


def test_run_pvf_reproduces_the_collation_and_refuses_tampering() -> None:
    entries, header = para_genesis()
    pool = [Transfer(1, 2, 5, 0), Transfer(1, 3, 5, 1), Transfer(2, 1, 1, 0)]
    col = collate(entries, header, 1, header.head_data(), pool)
    result = pvf(col)
    assert result.to_commitments() == col.receipt.commitments
    assert result.head_data == col.block.header.head_data()
    assert col.receipt.descriptor.validation_code_hash == VALIDATION_CODE_HASH
    assert validate_candidate(col.pvd, col.pov) == col.receipt.commitments

    changed_tx = msgspec.structs.replace(
        col.block, extrinsics=[Transfer(1, 2, 6, 0), *col.block.extrinsics[1:]])
    with pytest.raises(InvalidBlock, match="another header"):
        pvf(col, make_pov(entries, changed_tx))
    with pytest.raises(InvalidBlock, match="another parent head"):
        run_pvf(b"\x00" * 10, col.pov, 1, col.pvd.relay_parent_storage_root)
    with pytest.raises(InvalidBlock, match="another relay state root"):
        run_pvf(col.pvd.parent_head, col.pov, 1, b"\x01" * 32)
    with pytest.raises(InvalidBlock, match="another relay parent number"):
        run_pvf(col.pvd.parent_head, col.pov, 2, col.pvd.relay_parent_storage_root)
    with pytest.raises(InvalidBlock, match="undecodable"):
        pvf(col, PoV(b"\x93garbage"))
    # a witness that is not the parent's state
    richer = dict(entries)
    richer[account_key(0)] = b"\x00"
    with pytest.raises(InvalidBlock, match="parent state"):
        pvf(col, make_pov(richer, col.block))
    # the relay chain's size cap is checked before the PVF runs
    small = msgspec.structs.replace(col.pvd, max_pov_size=len(col.pov.block_data) - 1)
    with pytest.raises(InvalidBlock, match="exceeds"):
        validate_candidate(small, col.pov)


def test_run_pvf_refuses_a_block_that_overfills_the_segment() -> None:
    entries, header = para_genesis(capacity=3)
    genesis = header.head_data()
    cols = []
    for n in (1, 2, 3):  # nothing included yet: the segment fills to its capacity
        col = collate(entries, header, n, genesis)
        assert pvf(col).head_data == col.block.header.head_data()
        cols.append(col)
        entries, header = col.entries, col.block.header
    honest = collate(entries, header, 4, cols[0].block.header.head_data())  # block 1 included
    assert pvf(honest).head_data == honest.block.header.head_data()
    # the same block claimed against a relay parent where block 1 is not included yet
    stale = relay_parent(4, 4, genesis)
    pvd = PersistedValidationData(header.head_data(), 4, stale.storage_root, MAX_POV)
    forged = ParaBlock(honest.block.header, ValidationInherent(pvd, stale.proof, [], []), [])
    with pytest.raises(InvalidBlock, match="no space left for the block in the unincluded segment"):
        run_pvf(header.head_data(), make_pov(entries, forged), 4, stale.storage_root)


def test_chain_of_collations_on_unincluded_parents_validates_block_by_block() -> None:
    entries, header = para_genesis(capacity=3)
    included = header
    heads = []
    for n in range(1, 7):
        col = collate(entries, header, n, included.head_data(), [Transfer(n, n + 1, 1, 0)])
        assert pvf(col).to_commitments() == col.receipt.commitments
        heads.append(col.block.header)
        entries, header = col.entries, col.block.header
        if n >= 2:
            included = heads[n - 2]  # inclusion lags two blocks: the segment stays at 2–3


def test_genesis_head_is_block_zero_of_the_genesis_state() -> None:
    raw = genesis_head(PARA)
    decoded = decode(raw, ParaHeader)
    assert decoded.number == 0 and decoded.para_id == PARA
    assert raw == genesis_header(PARA, genesis_state(PARA)).head_data()
    assert genesis_head(PARA, capacity=7) != raw  # the constants are part of the state
    assert genesis_head(PARA + 1) != raw
