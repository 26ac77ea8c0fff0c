"""Backing votes that come with an inclusion are checked at once and held uncounted until
anything else comes about their candidate (relay/core/disputes/coordinator.py): every call answers
as if they had been counted on arrival, which the coordinator did before (`CountingAtOnce`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from approval_fixtures import keys
from dispute_fixtures import backing_votes, candidate, coordinator, vote
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.candidate import CandidateReceipt
from proto.disputes import SignedDisputeStatement
from relay.core.disputes.coordinator import (
    DisputeCoordinator,
    DisputeError,
    DisputeErrorKind,
    DisputeOutcome,
)
from relay.core.events import (
    DisputeEvent,
    DisputeEventKind,
    DisputeLocation,
    DisputeResult,
    OffenceEvent,
    OffenceKind,
)

N = 7  # a supermajority is 5, a byzantine third 2
KS = keys(N)
C = candidate()
H = C.hash()
BLOCK = b"\xb1" * 32


def test_a_dispute_after_held_backing_votes_counts_the_backers_and_slashes_them() -> None:
    dc = coordinator(N)
    out = dc.note_included(0, C.to_plain(), BLOCK, 7, backing_votes(C, [0, 1], KS), now=7)
    assert out == DisputeOutcome()
    votes = dc.candidates[(0, H)]
    assert [v.validator_index for v in votes.held] == [0, 1]  # checked, not counted yet
    # the queries answer as if they were counted, and leave them held
    assert dc.has_voted(0, H, 0) and dc.has_voted(0, H, 1) and not dc.has_voted(0, H, 2)
    assert dc.status(0, H) is None and dc.active_disputes() == []
    assert votes.held
    first = dc.import_statements(0, H, [vote(KS, 2, False, C)], now=8)
    assert not votes.held and votes.state.backers == {0, 1}
    assert first.events == [
        DisputeEvent(DisputeEventKind.INITIATED, 0, H, location=DisputeLocation.LOCAL)]
    out = dc.import_statements(0, H, [vote(KS, v, False, C) for v in range(3, 7)], now=9)
    assert out.concluded == [DisputeResult.INVALID] and out.revert_from == {BLOCK}
    assert OffenceEvent(OffenceKind.ForInvalidBacked, 0, H, (0, 1)) in out.events
    assert out.offenders == {0, 1}


def test_backing_votes_are_checked_when_they_come() -> None:
    dc = coordinator(N)
    forged = backing_votes(C, [0, 1], KS)
    forged[1] = SignedDisputeStatement(forged[1].kind, H, 0, 1, forged[1].relay_parent,
                                       forged[0].signature)
    with pytest.raises(DisputeError) as err:
        dc.note_included(0, C.to_plain(), BLOCK, 7, forged, now=7)
    assert err.value.kind is DisputeErrorKind.InvalidSignature
    assert (0, H) not in dc.candidates


def test_backing_that_alone_concludes_is_counted_at_once() -> None:
    dc = coordinator(3)  # every one of three backs: a supermajority for
    out = dc.note_included(0, C.to_plain(), BLOCK, 7, backing_votes(C, [0, 1, 2], keys(3)),
                           now=7)
    assert out.concluded == [DisputeResult.VALID] and not dc.candidates[(0, H)].held


class CountingAtOnce(DisputeCoordinator):
    """The coordinator as it was: backing votes counted as they come."""

    def note_included(self, session_index: int, receipt: CandidateReceipt, block_hash: bytes,
                      block_number: int, backing_votes: Sequence[SignedDisputeStatement],
                      now: int) -> DisputeOutcome:
        h = receipt.hash()
        votes = self.candidates.get((session_index, h))
        if backing_votes or votes is None or votes.receipt is None \
                or votes.state.concluded_at is not None:
            outcome = self.import_statements(session_index, h, backing_votes, now, receipt)
            votes = self.candidates[(session_index, h)]
        else:
            outcome = DisputeOutcome()
        votes.included_in[block_hash] = block_number
        if votes.state.concluded_invalid:
            outcome.revert_from = outcome.revert_from | {block_hash}
            outcome.events.append(DisputeEvent(DisputeEventKind.REVERT, session_index, h,
                                               revert_number=block_number))
        return outcome


CANDIDATES = [candidate(1), candidate(2), candidate(3, session=1)]
BLOCKS = [bytes([b]) * 32 for b in range(1, 5)]

operation = st.one_of(
    # a block backed the candidate with these backers' votes (or just included it: none)
    st.tuples(st.just("included"), st.integers(0, 2), st.integers(0, 3),
              st.frozensets(st.integers(0, N - 1), max_size=6)),
    # a peer's or our own explicit vote, and the dispute message ours makes
    st.tuples(st.just("vote"), st.integers(0, 2), st.integers(0, N - 1), st.booleans()),
    st.tuples(st.just("local"), st.integers(0, 2), st.integers(0, N - 1), st.booleans()),
    st.tuples(st.just("session"), st.just(0), st.integers(0, 3), st.just(0)),
)


def run(dc: DisputeCoordinator, op: tuple[Any, ...], now: int) -> object:
    kind, ci, a, b = op
    c = CANDIDATES[ci]
    s, h = c.descriptor.session_index, c.hash()
    try:
        if kind == "included":
            return dc.note_included(s, c.to_plain(), BLOCKS[a], 10 + a,
                                    backing_votes(c, sorted(b), KS, s), now)
        if kind == "vote":
            return dc.import_statements(s, h, [vote(KS, a, b, c, s)], now, c.to_plain())
        if kind == "local":
            mine, out = dc.issue_local_statement(KS[a], a, s, h, b, now)
            return out, dc.dispute_message(s, h, mine)
        dc.note_session(a, [k.public for k in KS])
        return None
    except DisputeError as exc:
        return exc.kind


def observe(dc: DisputeCoordinator) -> object:
    """What the service reads without counting anything held."""
    out = [dc.active_disputes()]
    for c in CANDIDATES:
        s, h = c.descriptor.session_index, c.hash()
        votes = dc.candidates.get((s, h))
        out += [dc.status(s, h), dc.possibly_invalid(s, h),
                [dc.has_voted(s, h, v) for v in range(N)],
                None if votes is None else (votes.disputed, dict(votes.included_in))]
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(operation, max_size=14))
def test_holding_backing_votes_answers_every_call_as_counting_them_at_once(
        ops: list[tuple[Any, ...]]) -> None:
    held, counted = coordinator(N, period=2), coordinator(N, period=2)
    counted.__class__ = CountingAtOnce
    for now, op in enumerate(ops, start=10):
        assert run(held, op, now) == run(counted, op, now), op
        assert observe(held) == observe(counted)
    assert held.candidates.keys() == counted.candidates.keys()
    for key, votes in held.candidates.items():
        other = counted.candidates[key]
        assert (votes.state, votes.valid, votes.invalid, votes.receipt, votes.initiated) == \
            (other.state, other.valid, other.invalid, other.receipt, other.initiated)
