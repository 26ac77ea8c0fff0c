"""The parachain runtime's state and transactions: dev accounts with balances and nonces, and
transactions whose cost is a deterministic weight, so blocks fill to a weight limit that follows
the para's execution budget (by default the host's backing timeout: 2 s of a 6 s slot for async
backing, 0.5 s for sync, a quarter of the blockspace). Its storage keys are in `storage_keys`.

Head data is the canonical encoding of `ParaHeader`; a block's hash is the hash of its head data.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from collator.core.storage_keys import (
    CAPACITY_KEY,
    CODE_KEY,
    HORIZONTAL_QUEUE_KEY,
    NUMBER_KEY,
    PARA_ID_KEY,
    PENDING_CODE_KEY,
    RELAY_SLOT_MS_KEY,
    UPWARD_QUEUE_KEY,
    VELOCITY_KEY,
    WEIGHT_LIMIT_KEY,
    account_key,
    nonce_key,
)
from proto.candidate import PersistedValidationData
from proto.codec import decode, encode, hash_of
from proto.errors import DecodeError
from proto.hashing import ZERO_HASH, blake2_256
from proto.primitives import MAX_LIST, U32, U64, Blob, BlockNumber, Hash, ParaId, Struct
from proto.relay_state import InboundMessage, StateProof

N_ACCOUNTS = 64
GENESIS_BALANCE = 10**12
WEIGHT_PER_MS = 1_000_000  # weight units (picoseconds / 1000) per millisecond of execution
TRANSFER_WEIGHT = 5_000_000  # 5 µs·1000: a 2000 ms block holds 400 transfers, a 500 ms one 100
SET_CODE_WEIGHT = 50_000_000
BASE_BLOCK_WEIGHT = 0


class ParaHeader(Struct, frozen=True):
    para_id: ParaId
    number: BlockNumber
    parent_hash: Hash
    state_root: Hash
    extrinsics_root: Hash
    relay_parent_number: BlockNumber
    relay_slot: U64
    # Which of the para's cores this block is for (elastic scaling): the runtime turns it into a
    # `SelectCore` UMP signal, as cumulus does from the block's core-selector digest.
    core_selector: Annotated[int, msgspec.Meta(ge=0, le=255)] | None = None

    def head_data(self) -> bytes:
        return encode(self)

    def hash(self) -> bytes:
        return blake2_256(self.head_data())


def decode_head(head: bytes) -> ParaHeader:
    return decode(head, ParaHeader)


class Transfer(Struct, frozen=True, tag=0):
    sender: U32
    recipient: U32
    amount: U64
    nonce: U64


class SetCode(Struct, frozen=True, tag=1):
    code: Blob


class SendUpward(Struct, frozen=True, tag=2):
    """Queue an upward (UMP) message; blocks send what the relay queue still has room for."""

    data: Blob


class SendHorizontal(Struct, frozen=True, tag=3):
    """Queue an HRMP message to another para; sent when the channel has room."""

    recipient: ParaId
    data: Blob


Extrinsic = Transfer | SetCode | SendUpward | SendHorizontal
MESSAGE_WEIGHT = 10_000_000


def weight_of(x: Extrinsic) -> int:
    if isinstance(x, Transfer):
        return TRANSFER_WEIGHT
    return SET_CODE_WEIGHT if isinstance(x, SetCode) else MESSAGE_WEIGHT


class ExtrinsicError(ValueError):
    pass


class HorizontalInbound(Struct, frozen=True):
    sender: ParaId
    message: InboundMessage


class ValidationInherent(Struct, frozen=True):
    """What the collator hands its runtime about the relay chain (cumulus'
    `ParachainInherentData`): the PVD, a proof of relay state, and inbound messages."""

    validation_data: PersistedValidationData
    relay_state_proof: StateProof
    downward_messages: Annotated[list[InboundMessage], msgspec.Meta(max_length=MAX_LIST)]
    horizontal_messages: Annotated[list[HorizontalInbound], msgspec.Meta(max_length=MAX_LIST)]


class ParaBlock(Struct, frozen=True):
    header: ParaHeader
    inherent: ValidationInherent
    extrinsics: Annotated[list[Extrinsic], msgspec.Meta(max_length=MAX_LIST)]


def extrinsics_root(extrinsics: list[Extrinsic]) -> bytes:
    return hash_of(extrinsics) if extrinsics else ZERO_HASH


def genesis_entries(
    para_id: int, velocity: int, capacity: int, relay_slot_ms: int, weight_limit: int,
    code: bytes = b"asyncback-para-runtime-v1",
) -> dict[bytes, bytes]:
    """The para's genesis state, with the runtime constants its validation function enforces."""
    e = {account_key(i): encode(GENESIS_BALANCE) for i in range(N_ACCOUNTS)}
    e[VELOCITY_KEY] = encode(velocity)
    e[CAPACITY_KEY] = encode(capacity)
    e[RELAY_SLOT_MS_KEY] = encode(relay_slot_ms)
    e[WEIGHT_LIMIT_KEY] = encode(weight_limit)
    e[CODE_KEY] = code
    e.update({nonce_key(i): encode(0) for i in range(N_ACCOUNTS)})
    e[PARA_ID_KEY] = encode(para_id)
    e[NUMBER_KEY] = encode(0)
    return e


def read_int(entries: dict[bytes, bytes], key: bytes, default: int = 0) -> int:
    raw = entries.get(key)
    if raw is None:
        return default
    try:
        return decode(raw, int)
    except DecodeError as exc:
        raise ExtrinsicError(f"corrupt state at {key!r}: {exc}") from None


def apply_extrinsic(entries: dict[bytes, bytes], x: Extrinsic) -> None:
    """Apply one transaction to `entries` (mutated) or raise `ExtrinsicError`, leaving it intact."""
    if isinstance(x, Transfer):
        if not (0 <= x.sender < N_ACCOUNTS and 0 <= x.recipient < N_ACCOUNTS):
            raise ExtrinsicError("unknown account")
        if read_int(entries, nonce_key(x.sender)) != x.nonce:
            raise ExtrinsicError("stale or future nonce")
        balance = read_int(entries, account_key(x.sender))
        if balance < x.amount:
            raise ExtrinsicError("insufficient balance")
        entries[nonce_key(x.sender)] = encode(x.nonce + 1)
        entries[account_key(x.sender)] = encode(balance - x.amount)
        to = read_int(entries, account_key(x.recipient))
        entries[account_key(x.recipient)] = encode(to + x.amount)
    elif isinstance(x, SetCode):
        entries[PENDING_CODE_KEY] = x.code
    elif isinstance(x, SendUpward):
        queue = decode(entries[UPWARD_QUEUE_KEY], list) if UPWARD_QUEUE_KEY in entries else []
        entries[UPWARD_QUEUE_KEY] = encode([*queue, x.data])
    else:
        queue = (decode(entries[HORIZONTAL_QUEUE_KEY], list)
                 if HORIZONTAL_QUEUE_KEY in entries else [])
        entries[HORIZONTAL_QUEUE_KEY] = encode([*queue, [x.recipient, x.data]])
