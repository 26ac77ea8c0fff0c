"""Strict parsing of JSON-RPC parameters: positional (array) or by name (object), every value
checked before a method sees it, every failure an `Invalid params` error (-32602)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from node.rpc.errors import invalid_params

U32_MAX = 2**32 - 1  # block numbers and para ids are u32 on the wire


@dataclass(frozen=True)
class Param:
    name: str
    parse: Callable[[Any], Any]
    required: bool = False


def hex_bytes(value: Any, *, max_len: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise invalid_params("expected a 0x-prefixed hex string")
    digits = value[2:]
    if max_len is not None and len(digits) > 2 * max_len:
        raise invalid_params(f"hex string longer than {max_len} bytes")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise invalid_params("malformed hex string") from None


def block_hash(value: Any) -> bytes:
    raw = hex_bytes(value, max_len=32)
    if len(raw) != 32:
        raise invalid_params("a block hash is 32 bytes")
    return raw


def u32(value: Any) -> int:
    """An integer, or a 0x-hex string as Substrate clients send block numbers."""
    if isinstance(value, str) and value.startswith("0x") and 2 < len(value) <= 10:
        try:
            value = int(value[2:], 16)
        except ValueError:
            raise invalid_params("malformed hex number") from None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U32_MAX:
        raise invalid_params("expected an unsigned 32-bit integer")
    return value


def bind(params: Any, spec: Sequence[Param]) -> list[Any]:
    """The method's arguments in `spec` order; absent or null optional ones are None."""
    if params is None:
        values: list[Any] = [None] * len(spec)
    elif isinstance(params, list):
        if len(params) > len(spec):
            raise invalid_params(f"expected at most {len(spec)} parameters, got {len(params)}")
        values = params + [None] * (len(spec) - len(params))
    elif isinstance(params, dict):
        unknown = set(params) - {p.name for p in spec}
        if unknown:
            raise invalid_params(f"unknown parameter {sorted(unknown)[0]!r}")
        values = [params.get(p.name) for p in spec]
    else:
        raise invalid_params("params must be an array or an object")
    out: list[Any] = []
    for p, value in zip(spec, values, strict=True):
        if value is None:
            if p.required:
                raise invalid_params(f"missing parameter {p.name!r}")
            out.append(None)
        else:
            out.append(p.parse(value))
    return out
