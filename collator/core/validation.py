"""The parachain validation function (the PVF): what validators re-execute to check a candidate.

The PoV carries the whole parent state as witness (checked against the parent header's state root)
and the block; the function re-runs the block through the same runtime code the collator used and
requires the header it declares, state root included. Outputs become the candidate commitments.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from collator.core.consensus_hook import BlockInvalid
from collator.core.para_runtime import WEIGHT_PER_MS, ParaBlock, decode_head, weight_of
from collator.core.parachain_system import execute_block
from collator.core.storage_keys import CODE_KEY
from proto.candidate import CandidateCommitments, PersistedValidationData, PoV
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.primitives import MAX_LIST, Blob, Struct
from proto.relay_state import state_root

VALIDATION_CODE = b"asyncback-para-runtime-v1"
VALIDATION_CODE_HASH = blake2_256(VALIDATION_CODE)


class InvalidBlock(ValueError):
    """The candidate's block does not validate; the reason is for logs and reports."""


class StateEntry(Struct, frozen=True):
    key: Blob
    value: Blob


class PovBlockData(Struct, frozen=True):
    parent_state: Annotated[list[StateEntry], msgspec.Meta(max_length=MAX_LIST)]
    block: ParaBlock


def make_pov(parent_entries: dict[bytes, bytes], block: ParaBlock) -> PoV:
    witness = [StateEntry(k, parent_entries[k]) for k in sorted(parent_entries)]
    return PoV(encode(PovBlockData(witness, block)))


def validate_block(pvd: PersistedValidationData, pov: PoV, timeout_ms: int | None = None
                   ) -> CandidateCommitments:
    """Commitments of a valid block, or `InvalidBlock`. With `timeout_ms`, a block whose execution
    costs more than that is refused as timed out: execution time is the block's deterministic
    weight (`WEIGHT_PER_MS` per millisecond), so the verdict is the same on every validator."""
    try:
        data = decode(pov.block_data, PovBlockData)
        parent = decode_head(pvd.parent_head)
    except DecodeError as exc:
        raise InvalidBlock(f"undecodable: {exc}") from None
    entries = {e.key: e.value for e in data.parent_state}
    if len(entries) != len(data.parent_state) or state_root(entries) != parent.state_root:
        raise InvalidBlock("the PoV's parent state does not match the parent head's state root")
    if entries.get(CODE_KEY, VALIDATION_CODE) != VALIDATION_CODE:
        raise InvalidBlock("the parent state runs other validation code")
    block = data.block
    if timeout_ms is not None:
        cost = sum(weight_of(x) for x in block.extrinsics)
        if cost > timeout_ms * WEIGHT_PER_MS:
            raise InvalidBlock(f"execution timeout: {cost / WEIGHT_PER_MS:.0f} ms of work "
                               f"exceeds {timeout_ms} ms")
    if block.inherent.validation_data != pvd:
        raise InvalidBlock("the block was built for other validation data")
    try:
        _, out = execute_block(entries, parent, block.inherent, list(block.extrinsics),
                               block.header.core_selector)
    except BlockInvalid as exc:
        raise InvalidBlock(str(exc)) from None
    if out.header != block.header:
        raise InvalidBlock("re-execution produced another header (state or extrinsics root)")
    return CandidateCommitments(out.upward_messages, out.horizontal_messages, out.new_validation_code,
                                out.header.head_data(), out.processed_downward_messages,
                                out.hrmp_watermark)
