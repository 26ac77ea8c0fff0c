"""The relay chain's state as a merkle-committed key/value map, and proofs over it.

The relay runtime commits its state root in every header; a collator reads what it needs (its
included head, the relay slot, its message budgets, the abridged host configuration) from a proof
against the relay parent's root, which the validation function checks again. Keys are built here so
both sides agree on them.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Annotated

import msgspec

from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.merkle import merkle_proof, merkle_root, verify_proof
from proto.primitives import MAX_LIST, U32, U64, Blob, Hash, Struct

_U32 = struct.Struct(">I")

CURRENT_SLOT_KEY = b"babe:current_slot"
ACTIVE_CONFIG_KEY = b"configuration:active"
SESSION_INDEX_KEY = b"session:index"
BLOCK_NUMBER_KEY = b"system:number"


def para_head_key(para_id: int) -> bytes:
    return b"paras:heads:" + _U32.pack(para_id)


def upgrade_go_ahead_key(para_id: int) -> bytes:
    return b"paras:upgrade_go_ahead:" + _U32.pack(para_id)


def upgrade_restriction_key(para_id: int) -> bytes:
    return b"paras:upgrade_restriction:" + _U32.pack(para_id)


def relay_dispatch_queue_key(para_id: int) -> bytes:
    return b"dmp:relay_dispatch_queue_remaining:" + _U32.pack(para_id)


def hrmp_channel_key(sender: int, recipient: int) -> bytes:
    return b"hrmp:channels:" + _U32.pack(sender) + _U32.pack(recipient)


def hrmp_egress_index_key(sender: int) -> bytes:
    return b"hrmp:egress:" + _U32.pack(sender)


def dmq_key(para_id: int) -> bytes:
    return b"dmp:queue:" + _U32.pack(para_id)


class AbridgedHostConfiguration(Struct, frozen=True):
    """The part of the host configuration a parachain runtime reads from the relay state."""

    max_code_size: U32
    max_head_data_size: U32
    max_upward_queue_count: U32
    max_upward_queue_size: U32
    max_upward_message_size: U32
    max_upward_message_num_per_candidate: U32
    hrmp_max_message_num_per_candidate: U32
    validation_upgrade_cooldown: U32
    validation_upgrade_delay: U32
    max_candidate_depth: U32
    allowed_ancestry_len: U32


class RelayDispatchQueueRemaining(Struct, frozen=True):
    remaining_count: U32
    remaining_size: U32


class AbridgedHrmpChannel(Struct, frozen=True):
    max_capacity: U32
    max_total_size: U32
    max_message_size: U32
    msg_count: U32
    total_size: U32


class InboundMessage(Struct, frozen=True):
    sent_at: U32
    data: Blob


class StateProofEntry(Struct, frozen=True):
    key: Blob
    value: Blob
    index: U32
    siblings: Annotated[list[Hash], msgspec.Meta(max_length=64)]


class StateProof(Struct, frozen=True):
    """Inclusion proofs of some entries of a `leaf_count`-entry state under one root."""

    leaf_count: U64
    entries: Annotated[list[StateProofEntry], msgspec.Meta(max_length=MAX_LIST)]


class ProofError(ValueError):
    pass


def _leaf(key: bytes, value: bytes) -> bytes:
    return encode([key, value])


def state_root(state: Mapping[bytes, bytes]) -> bytes:
    """Merkle root over the entries sorted by key."""
    keys = sorted(state)
    return merkle_root([_leaf(k, state[k]) for k in keys])


def prove(state: Mapping[bytes, bytes], keys: list[bytes]) -> StateProof:
    """Proof of the given keys (absent keys are simply not in the proof)."""
    ordered = sorted(state)
    leaves = [_leaf(k, state[k]) for k in ordered]
    position = {k: i for i, k in enumerate(ordered)}
    entries = [
        StateProofEntry(k, state[k], position[k], merkle_proof(leaves, position[k]))
        for k in dict.fromkeys(keys)
        if k in position
    ]
    return StateProof(len(ordered), entries)


def verify_state_proof(root: bytes, proof: StateProof) -> dict[bytes, bytes]:
    """The proven entries, or `ProofError` if any entry does not verify against `root`."""
    out: dict[bytes, bytes] = {}
    for e in proof.entries:
        if not verify_proof(root, _leaf(e.key, e.value), e.index, proof.leaf_count, e.siblings):
            raise ProofError(f"entry {e.key!r} does not verify against the relay parent's root")
        out[e.key] = e.value
    return out


def read_u64(value: bytes) -> int:
    try:
        return decode(value, int)
    except DecodeError as exc:
        raise ProofError(str(exc)) from None
