"""Shared pieces of the dispute tests: dev keys, a committed candidate, its real backing votes."""

from __future__ import annotations

from approval_fixtures import keys

from proto.candidate import CandidateCommitments, CandidateDescriptor, CommittedCandidateReceipt
from proto.disputes import SignedDisputeStatement
from proto.keys import Keypair
from proto.statements import (
    AttestationKind,
    BackedCandidate,
    CompactStatement,
    SigningContext,
    StatementKind,
    ValidityAttestation,
)
from relay.core.disputes.coordinator import DisputeCoordinator
from relay.core.disputes.votes import backing_statements

RELAY_PARENT = b"\x0a" * 32


def candidate(tag: int = 1, session: int = 0) -> CommittedCandidateReceipt:
    d = CandidateDescriptor(2000, RELAY_PARENT, 0, 0, session, bytes([tag]) * 32, b"\x02" * 32,
                            b"\x03" * 32, b"\x04" * 32, b"\x05" * 32)
    return CommittedCandidateReceipt(d, CandidateCommitments([], [], None, b"head", 0, 0))


def backed(c: CommittedCandidateReceipt, group: list[int], ks: list[Keypair],
           session: int = 0) -> BackedCandidate:
    """Every group member backs: the first seconds, the others say Valid."""
    ctx = SigningContext(session, c.descriptor.relay_parent)
    votes = []
    for i, v in enumerate(group):
        kind = StatementKind.SECONDED if i == 0 else StatementKind.VALID
        sig = ks[v].sign(b"BKNG", CompactStatement(kind, c.hash()).payload(ctx))
        votes.append(ValidityAttestation(
            AttestationKind.IMPLICIT if i == 0 else AttestationKind.EXPLICIT, sig))
    return BackedCandidate(c, votes, [True] * len(group), 0)


def backing_votes(c: CommittedCandidateReceipt, group: list[int], ks: list[Keypair],
                  session: int = 0) -> list[SignedDisputeStatement]:
    return backing_statements(backed(c, group, ks, session), group, session)


def coordinator(n: int, session: int = 0, period: int = 6,
                acceptance: int = 100) -> DisputeCoordinator:
    dc = DisputeCoordinator(period, acceptance)
    dc.note_session(session, [k.public for k in keys(n)])
    return dc


def vote(ks: list[Keypair], v: int, valid: bool, c: CommittedCandidateReceipt,
         session: int = 0) -> SignedDisputeStatement:
    return SignedDisputeStatement.explicit(ks[v], valid, c.hash(), session, v)
