"""The validation function in the shape validators call it (polkadot's `ValidationParams` →
`ValidationResult`), and the para's genesis for the relay chain's registration.

`run_pvf(parent_head, pov, relay_parent_number, relay_parent_storage_root)` takes exactly what the
relay chain knows about a candidate and nothing the collator could pick: the block inside the PoV
must have been built for that parent head and that relay parent (number and state root); the
maximum PoV size is the relay chain's business (checked before the PVF runs, see
`validate_candidate`). Re-execution itself is `validation.validate_block`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from collator.core.collation import genesis_header
from collator.core.para_runtime import WEIGHT_PER_MS, genesis_entries
from collator.core.validation import (
    VALIDATION_CODE,
    VALIDATION_CODE_HASH,
    InvalidBlock,
    PovBlockData,
    validate_block,
)
from proto.candidate import CandidateCommitments, OutboundHrmpMessage, PersistedValidationData, PoV
from proto.codec import decode
from proto.errors import DecodeError
from proto.primitives import MAX_LIST, U32, Blob, BlockNumber, HeadData, Struct

__all__ = [
    "VALIDATION_CODE",
    "VALIDATION_CODE_HASH",
    "InvalidBlock",
    "ValidationResult",
    "genesis_head",
    "genesis_state",
    "run_pvf",
    "validate_candidate",
]

# Defaults of a dev para: async backing (C=3, V=1, 6 s relay slots, 2 s of execution per block).
DEFAULT_VELOCITY = 1
DEFAULT_CAPACITY = 3
DEFAULT_RELAY_SLOT_MS = 6000
DEFAULT_EXECUTION_MS = 2000


class ValidationResult(Struct, frozen=True):
    """The PVF's outputs: the candidate commitments, field for field."""

    head_data: HeadData
    upward_messages: Annotated[list[Blob], msgspec.Meta(max_length=MAX_LIST)]
    horizontal_messages: Annotated[list[OutboundHrmpMessage], msgspec.Meta(max_length=MAX_LIST)]
    new_validation_code: Blob | None
    processed_downward_messages: U32
    hrmp_watermark: BlockNumber

    def to_commitments(self) -> CandidateCommitments:
        return CandidateCommitments(
            upward_messages=list(self.upward_messages),
            horizontal_messages=list(self.horizontal_messages),
            new_validation_code=self.new_validation_code,
            head_data=self.head_data,
            processed_downward_messages=self.processed_downward_messages,
            hrmp_watermark=self.hrmp_watermark,
        )

    @classmethod
    def from_commitments(cls, c: CandidateCommitments) -> ValidationResult:
        return cls(c.head_data, list(c.upward_messages), list(c.horizontal_messages),
                   c.new_validation_code, c.processed_downward_messages, c.hrmp_watermark)


def run_pvf(
    parent_head: bytes,
    pov: PoV,
    relay_parent_number: int,
    relay_parent_storage_root: bytes,
) -> ValidationResult:
    """Re-execute the PoV's block on `parent_head` at the given relay parent; `InvalidBlock` on
    any failure (undecodable PoV, other parent or relay parent, bad proof, wrong state root,
    segment capacity, velocity, ...)."""
    try:
        data = decode(pov.block_data, PovBlockData)
    except DecodeError as exc:
        raise InvalidBlock(f"undecodable: {exc}") from None
    built_for = data.block.inherent.validation_data
    if built_for.parent_head != parent_head:
        raise InvalidBlock("the block was built on another parent head")
    if built_for.relay_parent_number != relay_parent_number:
        raise InvalidBlock("the block was built for another relay parent number")
    if built_for.relay_parent_storage_root != relay_parent_storage_root:
        raise InvalidBlock("the block was built against another relay state root")
    # The block's own validation data now agrees with the relay chain on everything but the
    # size cap, which is not the PVF's to check.
    return ValidationResult.from_commitments(validate_block(built_for, pov))


def validate_candidate(pvd: PersistedValidationData, pov: PoV, timeout_ms: int | None = None
                       ) -> CandidateCommitments:
    """The candidate-validation view: basic PoV size check against the PVD, then the PVF under
    the backing timeout."""
    if len(pov.block_data) > pvd.max_pov_size:
        raise InvalidBlock(f"PoV of {len(pov.block_data)} bytes exceeds {pvd.max_pov_size}")
    # `validate_block` decodes the PoV once and requires the block's validation data to equal
    # `pvd` as a whole, which covers every check `run_pvf` makes on the relay chain's inputs.
    return validate_block(pvd, pov, timeout_ms)


def genesis_state(
    para_id: int,
    velocity: int = DEFAULT_VELOCITY,
    capacity: int = DEFAULT_CAPACITY,
    relay_slot_ms: int = DEFAULT_RELAY_SLOT_MS,
    execution_ms: int = DEFAULT_EXECUTION_MS,
) -> dict[bytes, bytes]:
    """The para's genesis entries: funded dev accounts and the runtime constants
    (velocity, capacity, slot length, weight limit = execution budget × `WEIGHT_PER_MS`)."""
    return genesis_entries(para_id, velocity, capacity, relay_slot_ms,
                           execution_ms * WEIGHT_PER_MS, VALIDATION_CODE)


def genesis_head(para_id: int, **params: int) -> bytes:
    """Head data of block 0, what the relay genesis registers for `para_id`."""
    return genesis_header(para_id, genesis_state(para_id, **params)).head_data()

