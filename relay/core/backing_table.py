"""The backing statement table of one relay parent (spec §1.6, §5.4–§5.7): signed Seconded/Valid
statements per candidate from the group assigned to its core, until enough make it backable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from proto.candidate import CommittedCandidateReceipt
from proto.statements import (
    AttestationKind,
    BackedCandidate,
    SignedStatement,
    SigningContext,
    StatementKind,
    ValidityAttestation,
)
from relay.core.errors import NamedError
from relay.core.inclusion import effective_minimum_backing_votes


class BackingErrorKind(StrEnum):
    """The reference implementation's names for a `BackingError`."""

    DoubleVote = "DoubleVote"
    ExcessiveSeconded = "ExcessiveSeconded"
    InvalidSignature = "InvalidSignature"
    MissingCandidate = "MissingCandidate"
    NotInGroup = "NotInGroup"
    UnknownCandidate = "UnknownCandidate"


class BackingError(NamedError):
    """A statement the table refuses."""


@dataclass
class CandidateVotes:
    receipt: CommittedCandidateReceipt
    core: int
    group: tuple[int, ...]
    votes: dict[int, SignedStatement] = field(default_factory=dict)


class BackingTable:
    def __init__(self, ctx: SigningContext, validators: Sequence[bytes], seconding_limit: int) -> None:
        self.ctx = ctx
        self.validators = tuple(validators)
        self.seconding_limit = seconding_limit
        self.candidates: dict[bytes, CandidateVotes] = {}
        self.seconded_by: dict[int, set[bytes]] = {}

    def import_statement(
        self,
        signed: SignedStatement,
        group: Sequence[int],
        core: int,
        receipt: CommittedCandidateReceipt | None = None,
    ) -> bool:
        """Record a statement; True if it is new, False for a duplicate, `BackingError` if
        refused. Cheap checks run before the signature check."""
        v = signed.validator_index
        h = signed.statement.candidate_hash
        if v not in group:
            raise BackingError(BackingErrorKind.NotInGroup, f"validator {v}")
        entry = self.candidates.get(h)
        previous = entry.votes.get(v) if entry else None
        if previous is not None:
            if previous.statement.kind == signed.statement.kind:
                return False
            if previous.statement.kind == StatementKind.SECONDED:
                return False  # a Seconded already counts as this validator's vote
            raise BackingError(BackingErrorKind.DoubleVote, "Valid before Seconded by the same validator")
        if signed.statement.kind == StatementKind.SECONDED:
            if receipt is None or receipt.hash() != h:
                raise BackingError(BackingErrorKind.MissingCandidate, "a Seconded needs the matching receipt")
            if len(self.seconded_by.get(v, set())) >= self.seconding_limit:
                raise BackingError(BackingErrorKind.ExcessiveSeconded, f"validator {v}")
        elif entry is None:
            raise BackingError(BackingErrorKind.UnknownCandidate, "Valid for a candidate nobody seconded")
        if not signed.check(self.validators[v], self.ctx):
            raise BackingError(BackingErrorKind.InvalidSignature, f"validator {v}")
        if entry is None:
            assert receipt is not None
            entry = self.candidates[h] = CandidateVotes(receipt, core, tuple(group))
        entry.votes[v] = signed
        if signed.statement.kind == StatementKind.SECONDED:
            self.seconded_by.setdefault(v, set()).add(h)
        return True

    def attested(self, candidate_hash: bytes, minimum_backing_votes: int) -> BackedCandidate | None:
        entry = self.candidates.get(candidate_hash)
        if entry is None:
            return None
        need = effective_minimum_backing_votes(len(entry.group), minimum_backing_votes)
        if len(entry.votes) < need:
            return None
        bits, votes = [], []
        for member in entry.group:
            s = entry.votes.get(member)
            bits.append(s is not None)
            if s is not None:
                kind = (AttestationKind.IMPLICIT if s.statement.kind == StatementKind.SECONDED
                        else AttestationKind.EXPLICIT)
                votes.append(ValidityAttestation(kind, s.signature))
        return BackedCandidate(entry.receipt, votes, bits, entry.core)

    def is_backable(self, candidate_hash: bytes, minimum_backing_votes: int) -> bool:
        entry = self.candidates.get(candidate_hash)
        if entry is None:
            return False
        return len(entry.votes) >= effective_minimum_backing_votes(len(entry.group),
                                                                   minimum_backing_votes)
