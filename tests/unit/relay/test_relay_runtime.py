"""Relay runtime end to end: genesis, authoring, import by another node, the async pipeline."""

from __future__ import annotations

import msgspec
import pytest
from relay_fixtures import Chain, back, bitfields, make_candidate

from proto.relay_block import RelayBlock
from relay.core.config import sync_backing
from relay.core.events import EventKind
from relay.core.inherent_errors import ANY_IMPORT_ERROR
from relay.core.runtime import (
    OccupiedCoreAssumption,
    backing_state,
    import_block,
    minimum_backing_votes,
    persisted_validation_data,
    scheduling_lookahead,
    validators,
)

PARA = 1000


def test_backed_then_included_next_block() -> None:
    chain = Chain()
    rp = chain.head
    c1 = make_candidate(rp, PARA, bytes([PARA % 256, 0]), b"head-1")
    chain.block([back(chain, c1, 0, rp.number)])
    assert [e.kind for e in chain.events[-1]] == [EventKind.BACKED]
    assert backing_state(chain.state, PARA).pending_availability[0].candidate_hash == c1.hash()
    # the pipeline: inclusion of c1 and backing of c2 (built on c1's head) in the same block
    rp2 = chain.head
    c2 = make_candidate(rp2, PARA, b"head-1", b"head-2")
    chain.block([back(chain, c2, 0, rp2.number)], bitfields(chain, {0}))
    assert [(e.kind, e.candidate_hash) for e in chain.events[-1]] == [
        (EventKind.INCLUDED, c1.hash()), (EventKind.BACKED, c2.hash())]
    assert chain.state.paras.heads[PARA] == b"head-1"


def test_tampered_blocks_fail_import() -> None:
    chain = Chain()
    rp = chain.head
    c1 = make_candidate(rp, PARA, bytes([PARA % 256, 0]), b"head-1")
    parent, parent_state = chain.head, chain.state
    block = chain.block([back(chain, c1, 0, rp.number)])
    bad_root = msgspec.structs.replace(block.header, state_root=b"\x01" * 32)
    with pytest.raises(ANY_IMPORT_ERROR, match="StateRootMismatch"):
        import_block(parent, parent_state, RelayBlock(bad_root.sealed(chain.keys[1]), block.body))
    with pytest.raises(ANY_IMPORT_ERROR, match="BadSeal"):
        import_block(parent, parent_state, RelayBlock(bad_root, block.body))
    forged = back(chain, c1, 0, rp.number, tamper=True)
    body = msgspec.structs.replace(block.body, backed_candidates=[forged])
    header = msgspec.structs.replace(block.header, body_root=RelayBlock.body_root(body))
    with pytest.raises(ANY_IMPORT_ERROR, match="CandidatesFilteredDuringExecution"):
        import_block(parent, parent_state, RelayBlock(header.sealed(chain.keys[1]), body))
    assert parent_state.inclusion.pending == {}  # the parent state was never touched


def test_sync_backing_accepts_only_the_parent_as_relay_parent() -> None:
    chain = Chain(config=sync_backing(Chain().config))
    chain.empty_blocks(2)
    old = chain.rp(1)
    stale = make_candidate(old, PARA, bytes([PARA % 256, 0]), b"h1")
    chain.block([back(chain, stale, 0, old.number)])
    assert [e.kind for e in chain.events[-1]] == []
    assert "DisallowedRelayParent" in chain.filtered[-1][0]
    fresh = make_candidate(chain.head, PARA, bytes([PARA % 256, 0]), b"h1")
    chain.block([back(chain, fresh, 0, chain.head.number)])
    assert [e.kind for e in chain.events[-1]] == [EventKind.BACKED]


def test_persisted_validation_data_assumptions() -> None:
    chain = Chain()
    genesis = bytes([PARA % 256, 0])
    rp = chain.head
    c1 = make_candidate(rp, PARA, genesis, b"head-1")
    chain.block([back(chain, c1, 0, rp.number)])
    s = chain.state
    included = persisted_validation_data(s, PARA, OccupiedCoreAssumption.INCLUDED)
    timed_out = persisted_validation_data(s, PARA, OccupiedCoreAssumption.TIMED_OUT)
    assert included is not None and included.parent_head == b"head-1"
    assert timed_out is not None and timed_out.parent_head == genesis
    assert persisted_validation_data(s, PARA, OccupiedCoreAssumption.FREE) is None
    assert included.relay_parent_number == chain.head.number
    assert included.relay_parent_storage_root == chain.head.state_root  # what collators commit to
    assert persisted_validation_data(s, 9999, OccupiedCoreAssumption.FREE) is None
    assert minimum_backing_votes(s) == 2 and scheduling_lookahead(s) == 3
    assert validators(s) == tuple(k.public for k in chain.keys)
