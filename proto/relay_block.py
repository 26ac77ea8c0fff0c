"""Relay chain blocks: header (Aura-style slot, author, state root, sealed) and the parachains
inherent that forms the body (spec §1.8)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from proto.codec import encode, hash_of
from proto.disputes import DisputeStatementSet
from proto.keys import Keypair, verify
from proto.primitives import (
    MAX_LIST,
    U64,
    BlockNumber,
    Hash,
    Signature,
    Struct,
    ValidatorIndex,
)
from proto.statements import BackedCandidate, SignedAvailabilityBitfield

SEAL_DOMAIN = b"SEAL"
EMPTY_SEAL = bytes(64)


class ParachainsInherentData(Struct, frozen=True):
    """Bitfields sorted by validator index; backed candidates contiguous and in chain order per
    para; dispute statement sets, one per candidate (runtime: relay/core/disputes/onchain.py)."""

    bitfields: Annotated[list[SignedAvailabilityBitfield], msgspec.Meta(max_length=MAX_LIST)]
    backed_candidates: Annotated[list[BackedCandidate], msgspec.Meta(max_length=MAX_LIST)]
    parent_hash: Hash
    disputes: Annotated[list[DisputeStatementSet], msgspec.Meta(max_length=MAX_LIST)] = []


class RelayHeader(Struct, frozen=True, dict=True):
    # `dict=True` gives each header a `__dict__` (not encoded, not compared) to keep its hash in:
    # fork choice and finality hash the same headers over and over.
    parent_hash: Hash
    number: BlockNumber
    slot: U64
    author: ValidatorIndex
    state_root: Hash
    body_root: Hash
    seal: Signature = EMPTY_SEAL

    def hash(self) -> bytes:
        cached: bytes | None = self.__dict__.get("_hash")
        if cached is None:
            cached = self.__dict__["_hash"] = hash_of(self)
        return cached

    def pre_hash(self) -> bytes:
        """Hash of the header without its seal: what the author signs."""
        return hash_of(msgspec.structs.replace(self, seal=EMPTY_SEAL))

    def sealed(self, key: Keypair) -> RelayHeader:
        return msgspec.structs.replace(self, seal=key.sign(SEAL_DOMAIN, self.pre_hash()))

    def seal_valid(self, public: bytes) -> bool:
        return verify(public, SEAL_DOMAIN, self.pre_hash(), self.seal)


class RelayBlock(Struct, frozen=True):
    header: RelayHeader
    body: ParachainsInherentData

    def hash(self) -> bytes:
        return self.header.hash()

    @staticmethod
    def body_root(body: ParachainsInherentData) -> bytes:
        return hash_of(body)


def encode_block(block: RelayBlock) -> bytes:
    return encode(block)
