"""Votes a validator already gave, as dispute statements: backing votes from a backed candidate,
approval votes from approval checking. Nothing is re-signed; the original signature is carried
with what it covers (proto/disputes.py)."""

from __future__ import annotations

from collections.abc import Sequence

from proto.approvals import IndirectSignedApprovalVote
from proto.disputes import DisputeStatementKind, SignedDisputeStatement
from proto.statements import AttestationKind, BackedCandidate


def backing_statements(backed: BackedCandidate, group: Sequence[int],
                       session_index: int) -> list[SignedDisputeStatement]:
    """One valid vote per backer: `validator_indices` picks the group members, in order, whose
    attestations `validity_votes` holds (spec §1.6)."""
    h = backed.hash()
    relay_parent = backed.candidate.descriptor.relay_parent
    signers = [group[i] for i, bit in enumerate(backed.validator_indices) if bit and i < len(group)]
    out = []
    for signer, vote in zip(signers, backed.validity_votes, strict=False):
        kind = DisputeStatementKind.BACKING_SECONDED if vote.kind == AttestationKind.IMPLICIT \
            else DisputeStatementKind.BACKING_VALID
        out.append(SignedDisputeStatement(kind, h, session_index, signer, relay_parent,
                                          vote.signature))
    return out


def approval_statement(vote: IndirectSignedApprovalVote, candidate_hash: bytes,
                       session_index: int) -> SignedDisputeStatement:
    return SignedDisputeStatement(DisputeStatementKind.APPROVAL_CHECKING, candidate_hash,
                                  session_index, vote.validator, None, vote.signature)
