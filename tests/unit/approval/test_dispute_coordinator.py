"""The dispute coordinator: a dispute starts with an invalid vote from a checker or a backer;
every validator's vote counts; more than two thirds conclude it; a candidate concluded invalid
reverts the blocks that included it with their descendants and reports and disables its backers;
one concluded valid punishes who disputed it. Bad statements change nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from approval_fixtures import GENESIS, child, keys, tree
from dispute_fixtures import backing_votes, candidate, coordinator, vote

from proto.disputes import SignedDisputeStatement
from proto.keys import Keypair
from relay.core.disputes.coordinator import (
    DisputeCoordinator,
    DisputeError,
    DisputeErrorKind,
    DisputeStatus,
    disabled_after,
)
from relay.core.disputes.revert import blocks_to_revert
from relay.core.events import (
    DisputeEvent,
    DisputeEventKind,
    DisputeLocation,
    DisputeResult,
    OffenceEvent,
    OffenceKind,
)

KS = keys(4)
C = candidate()
H = C.hash()
BLOCK = b"\xb1" * 32


def included(n: int = 4,
             group: tuple[int, ...] = (0, 1)) -> tuple[DisputeCoordinator, list[Keypair]]:
    dc = coordinator(n)
    ks = keys(n)
    out = dc.note_included(0, C.to_plain(), BLOCK, 7, backing_votes(C, list(group), ks), now=7)
    assert out.events == [] and dc.status(0, H) is None  # backing alone is no dispute
    return dc, ks


def test_an_invalid_vote_from_a_checker_starts_a_local_dispute() -> None:
    dc, ks = included(7, (0,))
    out = dc.import_statements(0, H, [vote(ks, 2, False, C)], now=8)
    assert out.initiated and out.events == [
        DisputeEvent(DisputeEventKind.INITIATED, 0, H, location=DisputeLocation.LOCAL)]
    assert dc.status(0, H) is DisputeStatus.Active and dc.active_disputes() == [(0, H)]
    again = dc.import_statements(0, H, [vote(ks, 2, False, C), vote(ks, 3, True, C)], now=8)
    assert not again.initiated and again.events == []
    assert dc.status(0, H) is DisputeStatus.Confirmed  # three of seven: an honest one among them


def test_a_backer_that_votes_invalid_starts_it_too_and_stays_a_backer() -> None:
    dc, ks = included()
    out = dc.import_statements(0, H, [vote(ks, 1, False, C)], now=8)
    assert out.initiated
    state = dc.candidates[(0, H)].state
    assert 1 in state.validators_for and 1 in state.validators_against and state.backers == {0, 1}


def test_a_dispute_on_a_candidate_never_included_here_is_remote() -> None:
    dc = coordinator(4)
    out = dc.import_statements(0, H, [vote(KS, 0, True, C), vote(KS, 2, False, C)], now=1)
    assert out.events[0].location is DisputeLocation.REMOTE


def test_concluded_invalid_reverts_the_including_blocks_and_reports_backers_and_approvers() -> None:
    dc, ks = included(10, (0, 1))
    dc.import_statements(0, H, [vote(ks, 2, True, C)], now=8)  # an approver, wrongly
    dc.import_statements(0, H, [vote(ks, v, False, C) for v in range(3, 9)], now=9)
    out = dc.import_statements(0, H, [vote(ks, 9, False, C)], now=10)  # 7 of 10
    assert out.concluded == [DisputeResult.INVALID]
    assert out.revert_from == {BLOCK}
    assert out.events == [
        DisputeEvent(DisputeEventKind.CONCLUDED, 0, H, result=DisputeResult.INVALID),
        DisputeEvent(DisputeEventKind.REVERT, 0, H, revert_number=7),
        OffenceEvent(OffenceKind.ForInvalidBacked, 0, H, (0, 1)),
        OffenceEvent(OffenceKind.ForInvalidApproved, 0, H, (2,)),
    ]
    assert out.offenders == {0, 1, 2}
    assert dc.status(0, H) is DisputeStatus.ConcludedAgainst
    assert "There is an offence reported" in out.events[2].describe()  # zombienet's 0004 words


def test_concluded_valid_punishes_who_disputed_it_and_reverts_nothing() -> None:
    dc, ks = included()
    dc.import_statements(0, H, [vote(ks, 3, False, C)], now=8)
    out = dc.import_statements(0, H, [vote(ks, 2, True, C)], now=9)  # 0, 1 backed: 3 of 4
    assert out.concluded == [DisputeResult.VALID] and out.revert_from == frozenset()
    assert out.events == [
        DisputeEvent(DisputeEventKind.CONCLUDED, 0, H, result=DisputeResult.VALID),
        OffenceEvent(OffenceKind.AgainstValid, 0, H, (3,))]
    assert out.offenders == {3} and dc.status(0, H) is DisputeStatus.ConcludedFor
    assert dc.active_disputes() == []


def test_two_colluding_backers_of_twenty_are_both_reported_and_disabled() -> None:
    dc, ks = included(20, (4, 5))
    outcomes = [dc.import_statements(0, H, [vote(ks, v, False, C)], now=8)
                for v in range(20) if v not in (4, 5)]
    concluded = [o for o in outcomes if o.concluded]
    assert len(concluded) == 1 and concluded[0].concluded == [DisputeResult.INVALID]
    assert outcomes.index(concluded[0]) == 13  # the 14th invalid vote: 20 - 19 // 3
    assert OffenceEvent(OffenceKind.ForInvalidBacked, 0, H, (4, 5)) in concluded[0].events
    assert disabled_after(frozenset(), concluded[0].offenders, 20) == {4, 5}


def test_disabling_keeps_at_most_a_byzantine_third_of_the_validators_out() -> None:
    assert disabled_after(frozenset(), {2, 0, 1}, 4) == {0}
    assert disabled_after(frozenset({3}), {0}, 4) == {3}
    assert disabled_after(frozenset({3}), {0, 1}, 7) == {0, 3}


@pytest.mark.parametrize(("make", "kind"), [
    (lambda: vote(KS, 2, False, candidate(9)), DisputeErrorKind.StatementForAnotherCandidate),
    (lambda: SignedDisputeStatement.explicit(KS[2], False, H, 0, 9),
     DisputeErrorKind.ValidatorIndexOutOfBounds),
    (lambda: SignedDisputeStatement.explicit(KS[3], False, H, 0, 2), DisputeErrorKind.InvalidSignature),
])
def test_bad_statements_are_refused_and_change_nothing(
        make: Callable[[], SignedDisputeStatement], kind: DisputeErrorKind) -> None:
    dc, ks = included()
    before = dc.candidates[(0, H)].state
    with pytest.raises(DisputeError) as err:
        dc.import_statements(0, H, [vote(ks, 3, False, C), make()], now=8)
    assert err.value.kind is kind
    assert dc.candidates[(0, H)].state == before and dc.status(0, H) is None


def test_statements_for_unknown_ancient_or_long_concluded_disputes_are_refused() -> None:
    dc = coordinator(4, period=2, acceptance=5)
    with pytest.raises(DisputeError) as err:
        dc.import_statements(1, H, [], now=0)
    assert err.value.kind is DisputeErrorKind.UnknownSession
    dc.import_statements(0, H, [vote(KS, v, False, C) for v in range(3)], now=10)
    dc.import_statements(0, H, [vote(KS, 3, True, C)], now=15)  # within the acceptance period
    with pytest.raises(DisputeError) as err:
        dc.import_statements(0, H, [vote(KS, 3, True, C)], now=16)
    assert err.value.kind is DisputeErrorKind.AncientDisputeStatement
    dc.note_session(3, [k.public for k in KS])
    with pytest.raises(DisputeError) as err:
        dc.import_statements(0, H, [], now=16)
    assert err.value.kind is DisputeErrorKind.AncientDisputeStatement
    assert (0, H) not in dc.candidates  # forgotten with its session


def test_a_block_including_a_candidate_already_concluded_invalid_is_reverted_too() -> None:
    dc, ks = included()
    dc.import_statements(0, H, [vote(ks, v, False, C) for v in (1, 2, 3)], now=8)
    out = dc.note_included(0, C.to_plain(), b"\xb2" * 32, 9, [], now=9)
    assert out.revert_from == {b"\xb2" * 32}
    assert DisputeEvent(DisputeEventKind.REVERT, 0, H, revert_number=9) in out.events


def test_issue_local_statement_and_the_dispute_message_carry_both_sides() -> None:
    dc, ks = included()
    mine, out = dc.issue_local_statement(ks[2], 2, 0, H, False, now=8)
    assert out.initiated and mine.check(ks[2].public) and dc.has_voted(0, H, 2)
    msg = dc.dispute_message(0, H, mine)
    assert msg is not None and msg.invalid_vote == mine and msg.valid_vote.kind.is_backing
    assert msg.candidate_receipt.hash() == H
    remote = coordinator(4)
    assert remote.dispute_message(0, H, mine) is None  # no receipt, no other side
    assert remote.import_statements(0, H, [msg.valid_vote, msg.invalid_vote], 8,
                                    msg.candidate_receipt).initiated


def test_revert_takes_the_including_blocks_and_their_descendants_on_every_fork() -> None:
    t = tree()
    a1 = child(GENESIS, 1)
    a2 = child(a1, 2)
    a3 = child(a2, 3)
    b2 = child(a1, 2, b"fork")
    b3 = child(b2, 3)
    c4 = child(a3, 4)
    for h in (a1, a2, a3, b2, b3, c4):
        t.add(h, None)
    plan = blocks_to_revert(t, [a2.hash(), b3.hash(), b"\xee" * 32])
    assert set(plan.blocks) == {a2.hash(), a3.hash(), c4.hash(), b3.hash()}
    assert plan.blocks[0] == a2.hash() and plan.blocks[-1] == c4.hash()  # parents first
    assert plan.revert_numbers == (2, 3) and plan.finalized == ()
    t.finalized = a2.hash()  # had the including block been final, nothing can undo it
    plan = blocks_to_revert(t, [a2.hash()])
    assert plan.finalized == (a2.hash(),) and plan.blocks == ()


def test_finality_stops_below_a_block_with_a_candidate_disputed_and_not_concluded_valid() -> None:
    dc, ks = included()
    other = candidate(2).hash()
    chain = [(b"\x01" * 32, 0, [other]), (BLOCK, 0, [H]), (b"\x03" * 32, 0, [])]
    assert dc.undisputed_chain(b"\x00" * 32, chain) == b"\x03" * 32
    dc.import_statements(0, H, [vote(ks, 3, False, C)], now=8)
    assert dc.undisputed_chain(b"\x00" * 32, chain) == b"\x01" * 32
    assert dc.undisputed_chain(b"\x00" * 32, chain[1:]) == b"\x00" * 32
    dc.import_statements(0, H, [vote(ks, 2, True, C)], now=9)  # concluded valid
    assert dc.undisputed_chain(b"\x00" * 32, chain) == b"\x03" * 32
