"""Signed backing statements, validity attestations, backed candidates, bitfields, finality votes.

Signed payloads (spec §1.6, §1.7): backing `"BKNG" ‖ kind ‖ candidate_hash ‖ enc(SigningContext)`;
bitfields `"AVBF" ‖ enc(bits) ‖ enc(SigningContext)`; finality votes `"FNLT" ‖ enc(vote body)`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import msgspec

from proto.candidate import CommittedCandidateReceipt
from proto.codec import encode
from proto.keys import Keypair, verify
from proto.primitives import (
    BlockNumber,
    CoreIndex,
    Hash,
    SessionIndex,
    Signature,
    Struct,
    ValidatorIndex,
)

BACKING_DOMAIN = b"BKNG"
BITFIELD_DOMAIN = b"AVBF"
FINALITY_DOMAIN = b"FNLT"
MAX_BITS = 4096

Bits = Annotated[list[bool], msgspec.Meta(max_length=MAX_BITS)]


class StatementKind(IntEnum):
    SECONDED = 1
    VALID = 2


class SigningContext(Struct, frozen=True):
    session_index: SessionIndex
    parent_hash: Hash


class CompactStatement(Struct, frozen=True):
    kind: StatementKind
    candidate_hash: Hash

    def payload(self, ctx: SigningContext) -> bytes:
        return bytes([self.kind]) + self.candidate_hash + encode(ctx)


class SignedStatement(Struct, frozen=True):
    statement: CompactStatement
    validator_index: ValidatorIndex
    signature: Signature

    @classmethod
    def sign(
        cls, key: Keypair, statement: CompactStatement, ctx: SigningContext, index: int
    ) -> SignedStatement:
        return cls(statement, index, key.sign(BACKING_DOMAIN, statement.payload(ctx)))

    def check(self, public: bytes, ctx: SigningContext) -> bool:
        return verify(public, BACKING_DOMAIN, self.statement.payload(ctx), self.signature)


class AttestationKind(IntEnum):
    IMPLICIT = 1  # from a Seconded statement
    EXPLICIT = 2  # from a Valid statement


class ValidityAttestation(Struct, frozen=True):
    kind: AttestationKind
    signature: Signature

    def statement(self, candidate_hash: bytes) -> CompactStatement:
        kind = StatementKind.SECONDED if self.kind == AttestationKind.IMPLICIT else StatementKind.VALID
        return CompactStatement(kind, candidate_hash)


class BackedCandidate(Struct, frozen=True):
    """A candidate with its backing votes; `validator_indices` has one bit per group member."""

    candidate: CommittedCandidateReceipt
    validity_votes: Annotated[list[ValidityAttestation], msgspec.Meta(max_length=MAX_BITS)]
    validator_indices: Bits
    core_index: CoreIndex

    def hash(self) -> bytes:
        return self.candidate.hash()


class SignedAvailabilityBitfield(Struct, frozen=True):
    """One bit per availability core; signed for the parent of the relay block that carries it."""

    bits: Bits
    validator_index: ValidatorIndex
    signature: Signature

    @staticmethod
    def payload(bits: list[bool], ctx: SigningContext) -> bytes:
        return encode(bits) + encode(ctx)

    @classmethod
    def sign(
        cls, key: Keypair, bits: list[bool], ctx: SigningContext, index: int
    ) -> SignedAvailabilityBitfield:
        return cls(list(bits), index, key.sign(BITFIELD_DOMAIN, cls.payload(bits, ctx)))

    def check(self, public: bytes, ctx: SigningContext) -> bool:
        return verify(public, BITFIELD_DOMAIN, self.payload(self.bits, ctx), self.signature)


class FinalityVote(Struct, frozen=True):
    """A validator's vote for its best block; a vote counts for every ancestor too."""

    block_hash: Hash
    number: BlockNumber
    session_index: SessionIndex
    validator_index: ValidatorIndex
    signature: Signature

    @staticmethod
    def payload(block_hash: bytes, number: int, session_index: int) -> bytes:
        return encode([block_hash, number, session_index])

    @classmethod
    def sign(
        cls, key: Keypair, block_hash: bytes, number: int, session_index: int, index: int
    ) -> FinalityVote:
        sig = key.sign(FINALITY_DOMAIN, cls.payload(block_hash, number, session_index))
        return cls(block_hash, number, session_index, index, sig)

    def check(self, public: bytes) -> bool:
        payload = self.payload(self.block_hash, self.number, self.session_index)
        return verify(public, FINALITY_DOMAIN, payload, self.signature)
