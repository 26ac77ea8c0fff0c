"""Approval voting: importing blocks, signed assignments and approvals (each rule refused with
polkadot's name and nothing changed), own assignments triggering when due, no-shows pulling in
later tranches, blocks approved when all their candidates are, and the approved-ancestor rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from approval_fixtures import GENESIS, child, keys, session, tree

from proto.approvals import (
    IndirectAssignmentCert,
    IndirectSignedApprovalVote,
    RelayVRFDelay,
    SignedAssignment,
)
from relay.core.approval.criteria import (
    Assignment,
    IncludedCandidate,
    compute_assignments,
    relay_vrf_story,
)
from relay.core.approval.ticks import (
    APPROVAL_DELAY,
    TICK_TOO_FAR_IN_FUTURE,
    TICKS_PER_SLOT,
    no_show_duration,
    slot_start_tick,
    tick_of,
)
from relay.core.approval.voting import (
    ApprovalCheckError,
    ApprovalCheckErrorKind,
    ApprovalCheckResult,
    ApprovalVoting,
    ApprovalVotingError,
    AssignmentCheckError,
    AssignmentCheckErrorKind,
    AssignmentCheckResult,
)

N = 10
KEYS = keys(N)
S = session(N, 5)  # groups of two per core; needed_approvals 2, no-shows after 2 slots
SLOT = 5
T0 = slot_start_tick(SLOT)
BLOCK = b"\xb1" * 32
CANDIDATES = [IncludedCandidate(b"\xc0" * 32, 0, 0), IncludedCandidate(b"\xc1" * 32, 3, 3)]


def voting(own: int | None = None, block: bytes = BLOCK,
           included: list[IncludedCandidate] = CANDIDATES) -> ApprovalVoting:
    av = ApprovalVoting(KEYS[own] if own is not None else None)
    av.import_block(block, b"\x00" * 32, 1, SLOT, 0, S, included)
    return av


def assignment_of(v: int, index: int = 0, block: bytes = BLOCK,
                  included: list[IncludedCandidate] = CANDIDATES) -> Assignment:
    return compute_assignments(S, v, relay_vrf_story(block), included)[included[index].core]


def signed(v: int, index: int = 0, block: bytes = BLOCK,
           included: list[IncludedCandidate] = CANDIDATES) -> SignedAssignment:
    a = assignment_of(v, index, block, included)
    return SignedAssignment.sign(KEYS[v], IndirectAssignmentCert(block, v, a.cert), index)


def approval(v: int, index: int = 0, block: bytes = BLOCK,
             included: list[IncludedCandidate] = CANDIDATES) -> IndirectSignedApprovalVote:
    return IndirectSignedApprovalVote.sign(KEYS[v], block, index, v,
                                           included[index].candidate_hash, 0)


def checkers_by_tranche(index: int = 0) -> list[int]:
    """The validators outside the backing group of candidate `index`, earliest tranche first."""
    group = S.validator_groups[CANDIDATES[index].backing_group]
    return sorted((v for v in range(N) if v not in group),
                  key=lambda v: (assignment_of(v, index).tranche, v))


def test_ticks_are_twelfths_of_a_slot_at_any_slot_length() -> None:
    assert tick_of(6000, 6000) == TICKS_PER_SLOT == 12 and tick_of(500, 1000) == 6
    assert slot_start_tick(3) == 36 and no_show_duration(2) == 24


def test_a_block_without_candidates_is_approved_at_import() -> None:
    av = voting(included=[])
    assert av.is_approved(BLOCK)
    assert not voting().is_approved(BLOCK)
    assert not av.import_block(BLOCK, b"\x00" * 32, 1, SLOT, 0, S, [])  # known: a no-op


def test_import_block_refuses_two_candidates_on_one_core_or_a_core_out_of_range() -> None:
    av = ApprovalVoting()
    with pytest.raises(ApprovalVotingError, match="two candidates"):
        av.import_block(BLOCK, bytes(32), 1, SLOT, 0, S, [CANDIDATES[0], CANDIDATES[0]])
    with pytest.raises(ApprovalVotingError, match="core 5"):
        av.import_block(BLOCK, bytes(32), 1, SLOT, 0, S, [IncludedCandidate(b"\x01" * 32, 5, 0)])
    assert av.blocks == {}


@pytest.mark.parametrize(("make", "kind"), [
    (lambda: signed(4, block=b"\xee" * 32), AssignmentCheckErrorKind.UnknownBlock),
    (lambda: SignedAssignment.sign(KEYS[4], signed(4).assignment, 2),
     AssignmentCheckErrorKind.InvalidCandidateIndex),
    (lambda: SignedAssignment.sign(KEYS[1], IndirectAssignmentCert(BLOCK, 1, RelayVRFDelay(0)), 0),
     AssignmentCheckErrorKind.InvalidCert),  # validator 1 backed candidate 0
    (lambda: SignedAssignment.sign(KEYS[4], IndirectAssignmentCert(BLOCK, 4, RelayVRFDelay(3)), 0),
     AssignmentCheckErrorKind.InvalidCert),  # a certificate for core 3, claimed for core 0
    (lambda: SignedAssignment(signed(4).assignment, 0, signed(5).signature),
     AssignmentCheckErrorKind.InvalidCert),  # someone else's signature
])
def test_bad_assignments_are_refused_and_change_nothing(
        make: Callable[[], SignedAssignment], kind: AssignmentCheckErrorKind) -> None:
    av = voting()
    before = [dict(e.tranches) for e in av.blocks[BLOCK].candidates]
    with pytest.raises(AssignmentCheckError) as err:
        av.check_and_import_assignment(make(), T0)
    assert err.value.kind is kind
    assert [dict(e.tranches) for e in av.blocks[BLOCK].candidates] == before


def test_assignments_are_accepted_once_and_held_back_when_far_in_the_future() -> None:
    av = voting()
    v = checkers_by_tranche()[-1]
    tranche = assignment_of(v).tranche
    assert tranche >= 1
    early = T0 + tranche - TICK_TOO_FAR_IN_FUTURE
    assert av.check_and_import_assignment(signed(v), early) is AssignmentCheckResult.TooFarInFuture
    assert not av.blocks[BLOCK].candidates[0].is_assigned(v)
    assert av.check_and_import_assignment(signed(v), early + 1) is AssignmentCheckResult.Accepted
    assert av.blocks[BLOCK].candidates[0].tranches[tranche] == {v: early + 1}
    assert av.check_and_import_assignment(signed(v), T0 + 50) is \
        AssignmentCheckResult.AcceptedDuplicate
    assert av.blocks[BLOCK].candidates[0].tranches[tranche] == {v: early + 1}


def test_approvals_need_an_assignment_and_a_signature_over_candidate_and_session() -> None:
    av = voting()
    v = checkers_by_tranche()[0]
    K = ApprovalCheckErrorKind
    with pytest.raises(ApprovalCheckError) as err:
        av.check_and_import_approval(approval(v))
    assert err.value.kind is K.NoAssignment
    av.check_and_import_assignment(signed(v), T0)
    wrong = [
        (IndirectSignedApprovalVote(BLOCK, 0, N, approval(v).signature), K.InvalidValidatorIndex),
        (IndirectSignedApprovalVote.sign(KEYS[v], BLOCK, 0, v, CANDIDATES[1].candidate_hash, 0),
         K.InvalidSignature),  # signed for the other candidate
        (IndirectSignedApprovalVote.sign(KEYS[v], BLOCK, 0, v, CANDIDATES[0].candidate_hash, 1),
         K.InvalidSignature),  # signed for another session
        (IndirectSignedApprovalVote(b"\xee" * 32, 0, v, approval(v).signature), K.UnknownBlock),
        (IndirectSignedApprovalVote(BLOCK, 7, v, approval(v).signature), K.InvalidCandidateIndex),
    ]
    for vote, kind in wrong:
        with pytest.raises(ApprovalCheckError) as err:
            av.check_and_import_approval(vote)
        assert err.value.kind is kind
    assert av.approvals[CANDIDATES[0].candidate_hash] == set()
    assert av.check_and_import_approval(approval(v)) is ApprovalCheckResult.Accepted
    assert av.check_and_import_approval(approval(v)) is ApprovalCheckResult.AcceptedDuplicate


def test_candidate_is_approved_by_needed_approvals_from_assigned_checkers_after_a_delay() -> None:
    av = voting()
    first, second = checkers_by_tranche()[:2]
    tick = T0 + assignment_of(second).tranche
    for v in (first, second):
        av.check_and_import_assignment(signed(v), tick)
    av.check_and_import_approval(approval(first))
    assert av.process_tick(tick).approved_candidates == []
    av.check_and_import_approval(approval(second))
    # not before the last assignment counted is APPROVAL_DELAY ticks old
    assert av.process_tick(tick + APPROVAL_DELAY - 1).approved_candidates == []
    out = av.process_tick(tick + APPROVAL_DELAY)
    assert out.approved_candidates == [(BLOCK, CANDIDATES[0].candidate_hash)]
    assert out.approved_blocks == [] and not av.is_approved(BLOCK)  # candidate 1 is not yet


def test_block_is_approved_when_all_its_candidates_are() -> None:
    av = voting()
    tick = T0 + S.n_delay_tranches
    for index in (0, 1):
        group = S.validator_groups[CANDIDATES[index].backing_group]
        for v in (v for v in range(N) if v not in group):
            av.check_and_import_assignment(signed(v, index), tick)
            av.check_and_import_approval(approval(v, index))
        out = av.process_tick(tick)
        assert out.approved_blocks == ([BLOCK] if index == 1 else [])
    assert av.is_approved(BLOCK)


def test_own_tranche_zero_assignment_triggers_at_once_and_only_once() -> None:
    v = next(v for v in checkers_by_tranche() if assignment_of(v).tranche == 0)
    av = voting(own=v)
    out = av.process_tick(T0)
    work = [w for w in out.work if w.candidate_index == 0]
    assert len(work) == 1 and work[0].tranche == 0 and work[0].candidate_hash == b"\xc0" * 32
    sent = next(a for a in out.assignments if a.candidate_index == 0)
    assert sent.check(KEYS[v].public) and sent.assignment.validator == v
    assert av.blocks[BLOCK].candidates[0].is_assigned(v)
    assert all(w.candidate_index != 0 for w in av.process_tick(T0 + 1).work)
    # its own approval counts, and is a vote other nodes accept
    vote = av.issue_approval(BLOCK, 0)
    other = voting()
    other.check_and_import_assignment(sent, T0)
    assert other.check_and_import_approval(vote) is ApprovalCheckResult.Accepted


def test_issue_approval_needs_a_triggered_assignment() -> None:
    backer = S.validator_groups[0][0]
    av = voting(own=backer)  # it backed candidate 0: never assigned to it
    av.process_tick(T0 + 100)
    with pytest.raises(ApprovalVotingError, match="no triggered assignment"):
        av.issue_approval(BLOCK, 0)
    with pytest.raises(ApprovalVotingError):
        av.issue_approval(b"\xee" * 32, 0)


def test_delay_assignment_waits_while_enough_checkers_approve() -> None:
    order = checkers_by_tranche()
    own = order[-1]  # the latest tranche
    av = voting(own=own)
    tranche = assignment_of(own).tranche
    for v in order[:2]:
        av.check_and_import_assignment(signed(v), T0)
        av.check_and_import_approval(approval(v))
    out = av.process_tick(T0 + tranche + 5)
    assert all(w.candidate_index != 0 for w in out.work)  # approved before its tranche mattered


def test_a_no_show_pulls_in_the_next_tranche() -> None:
    order = checkers_by_tranche()
    needed, spare = order[:2], order[2]  # the first two approve... one of them does not
    own_tranche = assignment_of(spare).tranche
    av = voting(own=spare)
    start = T0 + assignment_of(needed[1]).tranche
    for v in needed:
        av.check_and_import_assignment(signed(v), start)
    av.check_and_import_approval(approval(needed[0]))  # needed[1] stays silent
    late = max(start, T0 + own_tranche)
    assert all(w.candidate_index != 0 for w in av.process_tick(late).work)  # not a no-show yet
    no_show_at = start + no_show_duration(S.no_show_slots)
    # counted on a clock one no-show period behind, the spare's tranche must be due again
    due = max(no_show_at, T0 + own_tranche + no_show_duration(S.no_show_slots))
    assert all(w.candidate_index != 0 for w in av.process_tick(no_show_at - 1).work)
    out = av.process_tick(due)
    assert [w.candidate_index for w in out.work if w.candidate_index == 0] == [0]
    av.issue_approval(BLOCK, 0)
    approved = av.process_tick(due + APPROVAL_DELAY).approved_candidates
    assert (BLOCK, CANDIDATES[0].candidate_hash) in approved


def test_an_approval_counts_on_another_fork_only_where_its_validator_is_assigned() -> None:
    fork = b"\xb2" * 32
    av = voting()
    av.import_block(fork, b"\x00" * 32, 1, SLOT, 0, S, CANDIDATES)
    v = checkers_by_tranche()[0]
    av.check_and_import_assignment(signed(v), T0)
    av.check_and_import_approval(approval(v))
    assert v in av.approvals[CANDIDATES[0].candidate_hash]
    assert not av.blocks[fork].candidates[0].is_assigned(v)
    with pytest.raises(ApprovalCheckError) as err:
        av.check_and_import_approval(approval(v, block=fork))
    assert err.value.kind is ApprovalCheckErrorKind.NoAssignment


def test_approved_ancestor_is_the_highest_block_whose_chain_is_all_approved() -> None:
    t = tree()
    b1 = child(GENESIS, 1)
    b2 = child(b1, 2)
    b3 = child(b2, 3)
    b4 = child(b3, 4)
    f2 = child(b1, 2, b"fork")
    for h in (b1, b2, b3, b4, f2):
        t.add(h, None)
    av = ApprovalVoting()
    with_candidate = [IncludedCandidate(b"\xc0" * 32, 0, 0)]
    for h in (b1, b2, b4, f2):
        av.import_block(h.hash(), h.parent_hash, h.number, h.slot, 0, S, [])
    av.import_block(b3.hash(), b3.parent_hash, 3, 3, 0, S, with_candidate)
    assert av.approved_ancestor(t, b4.hash()) == b2.hash()  # b3 waits for its candidate
    assert av.approved_ancestor(t, f2.hash()) == f2.hash()
    assert av.approved_ancestor(t, GENESIS.hash()) == GENESIS.hash()
    av.blocks[b3.hash()].candidates[0].approved = True
    assert av.approved_ancestor(t, b4.hash()) == b4.hash()
    av.drop_blocks([b2.hash()])  # a block approval voting does not know is not approved
    assert av.approved_ancestor(t, b4.hash()) == b1.hash()
    unrelated = child(GENESIS, 9, b"elsewhere")
    with pytest.raises(ApprovalVotingError):
        av.approved_ancestor(t, unrelated.hash())


def test_prune_finalized_forgets_blocks_and_their_approvals() -> None:
    av = voting()
    av.import_block(b"\xb2" * 32, BLOCK, 2, SLOT + 1, 0, S, [IncludedCandidate(b"\xc9" * 32, 1, 1)])
    av.prune_finalized(1)
    assert set(av.blocks) == {b"\xb2" * 32} and set(av.approvals) == {b"\xc9" * 32}
