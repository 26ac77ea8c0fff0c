"""Spec §7 scenarios 34–37 (cumulus `parachain-system` tests) and the build → validate round trip."""

from __future__ import annotations

import msgspec
import pytest
from para_fixtures import PARA, para_genesis, relay_parent

from collator.core.collation import build_collation
from collator.core.consensus_hook import BlockInvalid
from collator.core.para_runtime import (
    HorizontalInbound,
    ParaHeader,
    SendUpward,
    SetCode,
    Transfer,
    ValidationInherent,
)
from collator.core.parachain_system import execute_block, load_segment
from collator.core.relay_view import relay_proof_keys
from collator.core.storage_keys import CODE_KEY, HANDLED_KEY, PENDING_CODE_KEY
from collator.core.unincluded_segment import GoAhead
from collator.core.validation import InvalidBlock, make_pov, validate_block
from proto.candidate import PersistedValidationData, PoV
from proto.codec import decode, encode
from proto.relay_state import InboundMessage, prove, state_root, upgrade_go_ahead_key

Chain = list[tuple[dict[bytes, bytes], ParaHeader]]


def run(chain: Chain, rp_number: int, included: int, go_ahead: bool = False, txs: list | None = None,
        dmp: list | None = None, hrmp: list | None = None) -> None:
    """Execute the next block on `chain[-1]` with `chain[included]` as the included block."""
    entries, header = chain[-1]
    rp = relay_parent(rp_number, rp_number, chain[included][1].head_data(), go_ahead)
    pvd = PersistedValidationData(header.head_data(), rp.number, rp.storage_root, 1 << 20)
    inherent = ValidationInherent(pvd, rp.proof, dmp or [], hrmp or [])
    new_entries, out = execute_block(entries, header, inherent, txs or [])
    chain.append((new_entries, out.header))


def seg_len(chain: Chain) -> int:
    return len(load_segment(chain[-1][0])[0])


def test_s7_34_unincluded_segment_works() -> None:
    chain: Chain = [para_genesis(capacity=10)]
    lens = []
    for n in (1, 2, 3):
        run(chain, rp_number=n, included=max(0, n - 2))  # inclusion delay 1
        lens.append(seg_len(chain))
    assert lens == [1, 2, 2]
    assert load_segment(chain[-1][0])[1] is not None


def test_s7_35_unincluded_segment_is_limited() -> None:
    chain: Chain = [para_genesis(capacity=1)]
    run(chain, 1, included=0)
    with pytest.raises(BlockInvalid, match="no space left for the block in the unincluded segment"):
        run(chain, 2, included=0)  # inclusion delay 2: block 1 is not included yet


def test_s7_36_code_upgrade_go_ahead_is_consumed_once() -> None:
    chain: Chain = [para_genesis(capacity=2)]
    run(chain, 1, included=0, txs=[SetCode(b"code-v2")])
    assert chain[-1][0][PENDING_CODE_KEY] == b"code-v2"
    run(chain, 2, included=0, go_ahead=True)  # block 2 applies it
    assert chain[-1][0][CODE_KEY] == b"code-v2" and PENDING_CODE_KEY not in chain[-1][0]
    run(chain, 3, included=1, go_ahead=True, txs=[SetCode(b"code-v3")])  # repeated signal ignored
    segment, tracker = load_segment(chain[-1][0])
    assert len(segment) == 2 and tracker.consumed_go_ahead_signal == GoAhead.GO_AHEAD
    assert chain[-1][0][PENDING_CODE_KEY] == b"code-v3"
    run(chain, 4, included=2)  # the consumer (block 2) is included
    segment, tracker = load_segment(chain[-1][0])
    assert tracker.consumed_go_ahead_signal is None
    assert chain[-1][0][PENDING_CODE_KEY] == b"code-v3"  # the second upgrade is still pending


def test_s7_37_inherent_processed_messages_are_ignored() -> None:
    chain: Chain = [para_genesis(capacity=5, velocity=2)]
    dmp = [InboundMessage(2, b"down")]
    hrmp = [HorizontalInbound(300, InboundMessage(2, b"side"))]
    run(chain, 1, included=0)
    run(chain, 2, included=0, dmp=dmp, hrmp=hrmp)
    handled = decode(chain[-1][0][HANDLED_KEY], list)
    assert len(handled) == 2
    run(chain, 2, included=0, dmp=dmp, hrmp=hrmp)  # same relay parent: not dispatched again
    assert decode(chain[-1][0][HANDLED_KEY], list) == handled
    run(chain, 3, included=0, dmp=[InboundMessage(3, b"later")])
    assert len(decode(chain[-1][0][HANDLED_KEY], list)) == 3


def _collate(entries: dict[bytes, bytes], header: ParaHeader, rp_number: int, included: bytes,
             pool: list | None = None):  # type: ignore[no-untyped-def]
    rp = relay_parent(rp_number, rp_number, included)
    return build_collation(entries, header, rp, pool or [], 0, None, 0, 5, 1 << 20)


def test_collation_validates_and_tampering_is_caught() -> None:
    entries, header = para_genesis()
    pool = [Transfer(1, 2, 5, 0), Transfer(1, 3, 5, 1), Transfer(2, 1, 1, 0)]
    col = _collate(entries, header, 1, header.head_data(), pool)
    commitments = validate_block(col.pvd, col.pov)
    assert commitments == col.receipt.commitments
    assert col.receipt.head_consistent() and len(col.block.extrinsics) == 3
    tampered = msgspec.structs.replace(col.block, extrinsics=col.block.extrinsics[:2])
    with pytest.raises(InvalidBlock, match="another header"):
        validate_block(col.pvd, make_pov(entries, tampered))
    other_parent = msgspec.structs.replace(col.pvd, parent_head=b"\x00" * 10)
    with pytest.raises(InvalidBlock):
        validate_block(other_parent, col.pov)
    wrong_root = msgspec.structs.replace(col.pvd, relay_parent_storage_root=b"\x01" * 32)
    with pytest.raises(InvalidBlock):
        validate_block(wrong_root, col.pov)
    with pytest.raises(InvalidBlock, match="undecodable"):
        validate_block(col.pvd, PoV(b"\x93garbage"))


def test_chain_on_unincluded_parents_validates_block_by_block() -> None:
    entries, header = para_genesis(capacity=3)
    included = header.head_data()
    blocks = []
    for n in (1, 2, 3):
        col = _collate(entries, header, n, included)
        assert validate_block(col.pvd, col.pov).head_data == col.block.header.head_data()
        blocks.append(col)
        entries, header = col.entries, col.block.header
    with pytest.raises(BlockInvalid, match="no space left"):
        _collate(entries, header, 4, included)  # capacity 3, nothing included yet
    col = _collate(entries, header, 4, blocks[0].block.header.head_data())  # block 1 included
    assert validate_block(col.pvd, col.pov).head_data == col.block.header.head_data()


def test_weight_limit_async_holds_four_times_sync() -> None:
    pool = [Transfer(i % 64, (i + 1) % 64, 1, i // 64) for i in range(1000)]
    sizes = {}
    for ms in (2000, 500):
        entries, header = para_genesis(weight_ms=ms)
        sizes[ms] = len(_collate(entries, header, 1, header.head_data(), pool).block.extrinsics)
    assert sizes[2000] == 4 * sizes[500] and sizes[500] > 0
    assert header.para_id == PARA


def test_upward_messages_respect_the_relay_queue_room_across_the_segment() -> None:
    entries, header = para_genesis(capacity=3)
    genesis_head = header.head_data()
    pool = [SendUpward(b"a"), SendUpward(b"b"), SendUpward(b"c")]
    rp = relay_parent(1, 1, genesis_head, ump=(2, 1 << 20))  # room for two messages
    c1 = build_collation(entries, header, rp, pool, 0, None, 0, 5, 1 << 20)
    assert c1.receipt.commitments.upward_messages == [b"a", b"b"]
    assert validate_block(c1.pvd, c1.pov) == c1.receipt.commitments
    # block 1 is unincluded: its two messages still count against the relay queue's room
    rp2 = relay_parent(2, 2, genesis_head, ump=(2, 1 << 20))
    c2 = build_collation(c1.entries, c1.block.header, rp2, [], 0, None, 0, 5, 1 << 20)
    assert c2.receipt.commitments.upward_messages == []
    # once block 1 is included (and the relay queue drained), the queued message goes out
    rp3 = relay_parent(3, 3, c1.block.header.head_data(), ump=(2, 1 << 20))
    c3 = build_collation(c2.entries, c2.block.header, rp3, [], 0, None, 0, 5, 1 << 20)
    assert c3.receipt.commitments.upward_messages == [b"c"]
    assert validate_block(c3.pvd, c3.pov) == c3.receipt.commitments


def test_abort_signal_discards_the_pending_code() -> None:
    chain: Chain = [para_genesis(capacity=2)]
    run(chain, 1, included=0, txs=[SetCode(b"code-v2")])
    entries, hdr = chain[-1]
    rp = relay_parent(2, 2, chain[0][1].head_data(), go_ahead=False)
    state = {e.key: e.value for e in rp.proof.entries}
    state[upgrade_go_ahead_key(PARA)] = encode(0)  # Abort
    root = state_root(state)
    pvd = PersistedValidationData(hdr.head_data(), 2, root, 1 << 20)
    inherent = ValidationInherent(pvd, prove(state, relay_proof_keys(PARA)), [], [])
    new_entries, _ = execute_block(entries, hdr, inherent, [])
    assert PENDING_CODE_KEY not in new_entries  # discarded
    assert new_entries[CODE_KEY] == entries[CODE_KEY]  # the old code stays
    _, tracker = load_segment(new_entries)
    assert tracker.consumed_go_ahead_signal == GoAhead.ABORT
