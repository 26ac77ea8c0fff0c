"""Primitive value types with their size bounds, enforced by the decoder.

Bounds are checked at decode time (msgspec `Meta`), so an oversized field never reaches logic.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

U32_MAX = 2**32 - 1

Hash = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
PublicKey = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Signature = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
U32 = Annotated[int, msgspec.Meta(ge=0, le=U32_MAX)]
U64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # msgspec bounds fit in int64
ParaId = U32
CoreIndex = U32
GroupIndex = U32
ValidatorIndex = U32
SessionIndex = U32
BlockNumber = U32

# Generous static caps; the host configuration imposes the real, tighter limits.
MAX_HEAD_DATA = 64 * 1024
MAX_BLOB = 16 * 1024 * 1024
MAX_LIST = 100_000
HeadData = Annotated[bytes, msgspec.Meta(max_length=MAX_HEAD_DATA)]
Blob = Annotated[bytes, msgspec.Meta(max_length=MAX_BLOB)]


class Struct(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Base of every wire and hashed type: a fixed-order msgpack array, immutable."""


def bits_to_bytes(bits: list[bool] | tuple[bool, ...]) -> bytes:
    """Pack a bit vector LSB-first (for compact display and hashing helpers)."""
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)
