"""Canonical msgpack encoding of typed structs, and the one strict decode boundary.

Structs are `msgspec.Struct(array_like=True, frozen=True)`: they encode as a fixed-order msgpack
array of their fields, byte-identical to `msgpack.packb([...])` of the same values. That encoding is
canonical, so it is what gets hashed and signed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

import msgspec

from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.shared_work import shared

T = TypeVar("T")

_encoder = msgspec.msgpack.Encoder()


def encode(obj: Any) -> bytes:
    """Canonical bytes of a struct (or of plain msgpack values)."""
    return _encoder.encode(obj)


@lru_cache(maxsize=256)
def _decoder(tp: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(tp)


def decode(data: bytes | bytearray | memoryview, tp: type[T]) -> T:
    """Decode `data` as exactly one `tp`; any failure whatsoever raises `DecodeError`.

    msgspec rejects trailing bytes, wrong types, wrong lengths and unknown tags. The broad catch is
    deliberate: this is the single boundary between hostile bytes and protocol logic, and nothing
    below it may ever see an exception other than `DecodeError` (recursion depth, bad UTF-8, ...).
    """
    try:
        return _decoder(tp).decode(data)  # type: ignore[arg-type]
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"cannot decode {getattr(tp, '__name__', tp)}: {exc}") from None


def decode_shared(data: bytes, tp: type[T]) -> T:
    """`decode`, where the simulated nodes of one process that receive the same bytes share the
    one decoded object (`proto.shared_work`): every node decodes every gossiped approval message.
    Only for types no caller mutates. Bytes that do not decode raise in every node."""
    return shared("decode", (tp, data), lambda: decode(data, tp))


def hash_of(obj: Any) -> bytes:
    """`H(obj)`: blake2b-256 of the canonical encoding."""
    return blake2_256(encode(obj))
