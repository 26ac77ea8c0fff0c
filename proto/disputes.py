"""Dispute statements: a validator's signed word that a candidate is valid or invalid.

Every vote a validator already gave on a candidate counts in its dispute, so a statement names how
it was signed (polkadot-sdk's `DisputeStatement`):
- `EXPLICIT_VALID` / `EXPLICIT_INVALID`: `"DISP" ‖ enc([valid, candidate_hash, session_index])`,
  cast by a validator that re-executed the candidate for the dispute (or found it invalid while
  backing or approval checking);
- `BACKING_SECONDED` / `BACKING_VALID`: the backing statement itself, `"BKNG" ‖ kind ‖ hash ‖
  enc(SigningContext(session, relay_parent))` (proto/statements.py), so backers are on the valid
  side without signing anything new;
- `APPROVAL_CHECKING`: the approval vote, `"APPR" ‖ enc([candidate_hash, session_index])`
  (proto/approvals.py).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import msgspec

from proto.approvals import APPROVAL_DOMAIN, approval_vote_payload
from proto.candidate import CandidateReceipt
from proto.codec import encode
from proto.keys import Keypair, verify
from proto.primitives import MAX_LIST, Hash, SessionIndex, Signature, Struct, ValidatorIndex
from proto.statements import BACKING_DOMAIN, CompactStatement, SigningContext, StatementKind

DISPUTE_DOMAIN = b"DISP"


class DisputeStatementKind(IntEnum):
    EXPLICIT_VALID = 1
    BACKING_SECONDED = 2
    BACKING_VALID = 3
    APPROVAL_CHECKING = 4
    EXPLICIT_INVALID = 5

    @property
    def indicates_validity(self) -> bool:
        return self is not DisputeStatementKind.EXPLICIT_INVALID

    @property
    def is_backing(self) -> bool:
        return self in (DisputeStatementKind.BACKING_SECONDED, DisputeStatementKind.BACKING_VALID)


def explicit_payload(valid: bool, candidate_hash: bytes, session_index: int) -> bytes:
    return encode([valid, candidate_hash, session_index])


class SignedDisputeStatement(Struct, frozen=True):
    """One vote. `relay_parent` is the backing statement's signing context (backing kinds only)."""

    kind: DisputeStatementKind
    candidate_hash: Hash
    session_index: SessionIndex
    validator_index: ValidatorIndex
    relay_parent: Hash | None
    signature: Signature

    @property
    def valid(self) -> bool:
        return self.kind.indicates_validity

    def _signed(self) -> tuple[bytes, bytes] | None:
        """(domain, payload) this vote's signature covers; None for a malformed backing vote."""
        k, h, s = self.kind, self.candidate_hash, self.session_index
        if k.is_backing:
            if self.relay_parent is None:
                return None
            kind = StatementKind.SECONDED if k is DisputeStatementKind.BACKING_SECONDED \
                else StatementKind.VALID
            return BACKING_DOMAIN, CompactStatement(kind, h).payload(
                SigningContext(s, self.relay_parent))
        if k is DisputeStatementKind.APPROVAL_CHECKING:
            return APPROVAL_DOMAIN, approval_vote_payload(h, s)
        return DISPUTE_DOMAIN, explicit_payload(k.indicates_validity, h, s)

    @classmethod
    def explicit(cls, key: Keypair, valid: bool, candidate_hash: bytes, session_index: int,
                 validator_index: int) -> SignedDisputeStatement:
        kind = DisputeStatementKind.EXPLICIT_VALID if valid else DisputeStatementKind.EXPLICIT_INVALID
        sig = key.sign(DISPUTE_DOMAIN, explicit_payload(valid, candidate_hash, session_index))
        return cls(kind, candidate_hash, session_index, validator_index, None, sig)

    def check(self, public: bytes) -> bool:
        signed = self._signed()
        return signed is not None and verify(public, signed[0], signed[1], self.signature)


class UncheckedDisputeMessage(Struct, frozen=True):
    """What a validator sends every other validator to raise or join a dispute: the candidate, and
    one vote on each side (polkadot's dispute-distribution `DisputeRequest` payload)."""

    candidate_receipt: CandidateReceipt
    session_index: SessionIndex
    invalid_vote: SignedDisputeStatement
    valid_vote: SignedDisputeStatement


class DisputeStatementSet(Struct, frozen=True):
    """Votes on one candidate as a block carries them (polkadot's `DisputeStatementSet`): the block
    author puts every vote it knows and the chain has not counted yet into the parachains
    inherent, so the runtime sees disputes conclude and acts on it."""

    candidate_hash: Hash
    session_index: SessionIndex
    statements: Annotated[list[SignedDisputeStatement], msgspec.Meta(max_length=MAX_LIST)]
