"""Dispute statements on the wire: each kind verifies against what its signer really signed
(explicit verdicts, backing statements, approval votes), and no signature moves to another kind,
candidate, session or relay parent."""

from __future__ import annotations

from approval_fixtures import keys
from dispute_fixtures import RELAY_PARENT, backed, candidate

from proto.approvals import IndirectSignedApprovalVote
from proto.disputes import DisputeStatementKind, SignedDisputeStatement
from relay.core.disputes.votes import approval_statement, backing_statements

KS = keys(4)
C = candidate()
H = C.hash()


def test_explicit_statements_verify_and_cannot_change_side_or_subject() -> None:
    for valid in (True, False):
        s = SignedDisputeStatement.explicit(KS[1], valid, H, 3, 1)
        assert s.valid is valid and s.check(KS[1].public) and not s.check(KS[2].public)
        flipped = DisputeStatementKind.EXPLICIT_INVALID if valid \
            else DisputeStatementKind.EXPLICIT_VALID
        for forged in (SignedDisputeStatement(flipped, H, 3, 1, None, s.signature),
                       SignedDisputeStatement(s.kind, b"\x01" * 32, 3, 1, None, s.signature),
                       SignedDisputeStatement(s.kind, H, 4, 1, None, s.signature)):
            assert not forged.check(KS[1].public)


def test_backing_votes_count_as_valid_statements_with_their_relay_parent() -> None:
    statements = backing_statements(backed(C, [0, 2], KS), [0, 2], 0)
    assert [(s.kind, s.validator_index) for s in statements] == [
        (DisputeStatementKind.BACKING_SECONDED, 0), (DisputeStatementKind.BACKING_VALID, 2)]
    assert all(s.valid and s.kind.is_backing and s.check(KS[s.validator_index].public)
               for s in statements)
    seconded = statements[0]
    for forged in (SignedDisputeStatement(seconded.kind, H, 0, 0, b"\x0b" * 32, seconded.signature),
                   SignedDisputeStatement(seconded.kind, H, 0, 0, None, seconded.signature),
                   SignedDisputeStatement(DisputeStatementKind.BACKING_VALID, H, 0, 0,
                                          RELAY_PARENT, seconded.signature),
                   SignedDisputeStatement(DisputeStatementKind.EXPLICIT_VALID, H, 0, 0, None,
                                          seconded.signature)):
        assert not forged.check(KS[0].public)


def test_only_the_set_bits_of_the_group_are_backers() -> None:
    b = backed(C, [1, 3], KS)
    partial = type(b)(b.candidate, b.validity_votes[1:], [False, True], 0)
    assert [s.validator_index for s in backing_statements(partial, [1, 3], 0)] == [3]
    assert backing_statements(partial, [1, 3], 0)[0].check(KS[3].public)


def test_an_approval_vote_is_a_valid_statement() -> None:
    vote = IndirectSignedApprovalVote.sign(KS[2], b"\x0c" * 32, 0, 2, H, 5)
    s = approval_statement(vote, H, 5)
    assert s.valid and s.kind is DisputeStatementKind.APPROVAL_CHECKING and s.check(KS[2].public)
    assert not approval_statement(vote, H, 6).check(KS[2].public)
