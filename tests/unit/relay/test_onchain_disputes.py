"""Disputes in relay blocks (relay/core/disputes/onchain.py): statement sets counted by the
runtime, a conclusion's events, disabling, and blocks that carry bad sets."""

from __future__ import annotations

import pytest
from relay_fixtures import Chain, back, make_candidate

from proto.disputes import DisputeStatementSet, SignedDisputeStatement
from proto.relay_block import ParachainsInherentData
from proto.statements import BackedCandidate
from relay.core.config import HostConfiguration
from relay.core.disputes.onchain import apply_disputes
from relay.core.disputes.votes import backing_statements
from relay.core.events import (
    DisputeEvent,
    DisputeEventKind,
    DisputeLocation,
    DisputeResult,
    EventKind,
    OffenceEvent,
    OffenceKind,
)
from relay.core.paras_inherent import InherentError, Mode, enter


def backed_chain() -> tuple[Chain, BackedCandidate, list[SignedDisputeStatement]]:
    """Four validators in one group, the threshold at 1: validator 0 alone backs a candidate
    in block 1. Returns the chain, the backed candidate and its backing vote as a dispute vote."""
    chain = Chain(n_validators=4, paras=((1, 1),),
                  config=HostConfiguration(minimum_backing_votes=1))
    rp = chain.head
    c = make_candidate(rp, 1, bytes([1, 0]), b"garbage")
    backed = back(chain, c, 0, rp.number, votes=1)
    chain.block([backed])
    assert [e.kind for e in chain.events[-1]] == [EventKind.BACKED]
    return chain, backed, backing_statements(backed, chain.state.scheduler.groups[0], 0)


def explicit(chain: Chain, h: bytes, valid: bool, who: list[int]) -> list[SignedDisputeStatement]:
    return [SignedDisputeStatement.explicit(chain.keys[v], valid, h, 0, v) for v in who]


def test_concluded_invalid_frees_the_core_reports_the_backer_and_disables_it() -> None:
    chain, backed, votes = backed_chain()
    h = backed.hash()
    chain.block(disputes=[DisputeStatementSet(h, 0, votes + explicit(chain, h, False, [1, 2, 3]))])
    events = chain.events[-1]
    assert events[:3] == [
        DisputeEvent(DisputeEventKind.INITIATED, 0, h, location=DisputeLocation.LOCAL),
        DisputeEvent(DisputeEventKind.CONCLUDED, 0, h, result=DisputeResult.INVALID),
        DisputeEvent(DisputeEventKind.REVERT, 0, h, revert_number=1)]
    assert events[3] == OffenceEvent(OffenceKind.ForInvalidBacked, 0, h, (0,))
    assert chain.state.disabled == frozenset({0})
    assert chain.state.inclusion.pending == {}  # freed before any bitfield could enact it
    # never backed again on this chain, even by an honest group
    chain.block([back(chain, backed.candidate, 0, chain.headers[0].number, votes=2,
                      signer_group=0)])
    assert [e.kind for e in chain.events[-1] if hasattr(e, "para_id")] == []
    assert any("concluded invalid" in f for f in chain.filtered[-1])


def test_votes_spread_over_blocks_conclude_when_the_supermajority_is_reached() -> None:
    chain, backed, votes = backed_chain()
    h = backed.hash()
    chain.block(disputes=[DisputeStatementSet(h, 0, votes + explicit(chain, h, False, [1]))])
    assert [type(e) for e in chain.events[-1]] == [DisputeEvent]  # initiated only
    assert chain.state.disabled == frozenset()
    chain.block(disputes=[DisputeStatementSet(h, 0, explicit(chain, h, False, [2, 3]))])
    assert DisputeEvent(DisputeEventKind.CONCLUDED, 0, h, result=DisputeResult.INVALID) \
        in chain.events[-1]
    assert chain.state.disabled == frozenset({0})


def test_concluded_valid_disables_the_disputer_who_cannot_start_another() -> None:
    chain, backed, votes = backed_chain()
    h = backed.hash()
    chain.block(disputes=[DisputeStatementSet(
        h, 0, votes + explicit(chain, h, True, [1, 2]) + explicit(chain, h, False, [3]))])
    assert DisputeEvent(DisputeEventKind.CONCLUDED, 0, h, result=DisputeResult.VALID) \
        in chain.events[-1]
    assert OffenceEvent(OffenceKind.AgainstValid, 0, h, (3,)) in chain.events[-1]
    assert chain.state.disabled == frozenset({3})
    # the same disputer against another candidate: the author drops it
    other = b"\x07" * 32
    chain.block(disputes=[DisputeStatementSet(
        other, 0, explicit(chain, other, True, [1]) + explicit(chain, other, False, [3]))])
    assert chain.events[-1] == []
    assert chain.filtered[-1] == [f"dispute 0x{other.hex()[:8]}: only disabled validators "
                                  f"dispute it"]


def bad_statements(why: str, chain: Chain, h: bytes,
                   votes: list[SignedDisputeStatement]) -> list[SignedDisputeStatement]:
    if why == "bad signature":  # validator 1's signature under validator 2's index
        stolen = explicit(chain, h, False, [1])[0]
        return [*votes, SignedDisputeStatement(stolen.kind, h, 0, 2, None, stolen.signature)]
    if why == "out of bounds":
        return [*votes, SignedDisputeStatement.explicit(chain.keys[1], False, h, 0, 9)]
    if why == "vote counted already":
        return [*votes, *votes]
    return votes  # votes on one side only


@pytest.mark.parametrize("why", ["bad signature", "votes on one side only", "out of bounds",
                                 "vote counted already"])
def test_a_bad_set_is_dropped_by_the_author_and_fails_an_imported_block(why: str) -> None:
    chain, backed, votes = backed_chain()
    h = backed.hash()
    bad = DisputeStatementSet(h, 0, bad_statements(why, chain, h, votes))
    state = chain.state.copy()
    applied = apply_disputes(state, [bad], chain.head.number + 1)
    assert applied.sets == [] and why in applied.problems[0]
    data = ParachainsInherentData([], [], chain.head.hash(), [bad])
    with pytest.raises(InherentError):
        enter(chain.state.copy(), data, chain.head.hash(), chain.head.state_root,
              chain.head.number + 1, Mode.ENTER)
    chain.block(disputes=[bad])  # the author filters it: the block is fine
    assert chain.events[-1] == [] and chain.state.disputes == {}
