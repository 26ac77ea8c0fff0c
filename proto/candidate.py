"""Candidate data types (spec §1.2–§1.5): PVD, PoV, commitments, v2 descriptor, receipts.

Only the v2 descriptor (RFC-103) is modelled: the candidate commits to a core index and a session
index; the collator's identity is authenticated on the network layer (signed `Declare`) instead of
inside the descriptor.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from proto.codec import hash_of
from proto.hashing import blake2_256
from proto.primitives import (
    MAX_LIST,
    U32,
    Blob,
    BlockNumber,
    CoreIndex,
    Hash,
    HeadData,
    ParaId,
    SessionIndex,
    Struct,
)


class PersistedValidationData(Struct, frozen=True):
    """Everything the validation function needs besides the PoV (field order is hashed)."""

    parent_head: HeadData
    relay_parent_number: BlockNumber
    relay_parent_storage_root: Hash
    max_pov_size: U32

    def hash(self) -> bytes:
        return hash_of(self)


class PoV(Struct, frozen=True):
    block_data: Blob

    def hash(self) -> bytes:
        return hash_of(self)


class OutboundHrmpMessage(Struct, frozen=True):
    recipient: ParaId
    data: Blob


class CandidateCommitments(Struct, frozen=True):
    upward_messages: Annotated[list[Blob], msgspec.Meta(max_length=MAX_LIST)]
    horizontal_messages: Annotated[list[OutboundHrmpMessage], msgspec.Meta(max_length=MAX_LIST)]
    new_validation_code: Blob | None
    head_data: HeadData
    processed_downward_messages: U32
    hrmp_watermark: BlockNumber

    def hash(self) -> bytes:
        return hash_of(self)


class CandidateDescriptor(Struct, frozen=True):
    """v2 descriptor: `version` 0, with the core and session the candidate commits to."""

    para_id: ParaId
    relay_parent: Hash
    version: Annotated[int, msgspec.Meta(ge=0, le=255)]
    core_index: CoreIndex
    session_index: SessionIndex
    persisted_validation_data_hash: Hash
    pov_hash: Hash
    erasure_root: Hash
    para_head: Hash
    validation_code_hash: Hash


class CandidateReceipt(Struct, frozen=True):
    descriptor: CandidateDescriptor
    commitments_hash: Hash

    def hash(self) -> bytes:
        """The candidate hash: `H(descriptor, commitments_hash)`."""
        return hash_of(self)


class CommittedCandidateReceipt(Struct, frozen=True):
    descriptor: CandidateDescriptor
    commitments: CandidateCommitments

    def to_plain(self) -> CandidateReceipt:
        return CandidateReceipt(self.descriptor, self.commitments.hash())

    def hash(self) -> bytes:
        """Same as the plain receipt's hash (commitments are hashed first)."""
        return self.to_plain().hash()

    @property
    def para_id(self) -> int:
        return self.descriptor.para_id

    @property
    def relay_parent(self) -> bytes:
        return self.descriptor.relay_parent

    def head_consistent(self) -> bool:
        """`descriptor.para_head == H(commitments.head_data)`."""
        return self.descriptor.para_head == blake2_256(self.commitments.head_data)


class AvailableData(Struct, frozen=True):
    """What availability persists and erasure-codes: the PoV plus its PVD."""

    pov: PoV
    validation_data: PersistedValidationData


def head_hash(head: bytes) -> bytes:
    """Hash of a para head (`H(head_bytes)`)."""
    return blake2_256(head)
