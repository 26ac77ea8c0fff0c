"""UMP signals (spec §1.3): an empty separator message, then at most two encoded signals.

Everything before the separator is a real upward message; limits count only those.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.primitives import Struct

UMP_SEPARATOR = b""
MAX_SIGNALS = 2


class SelectCore(Struct, frozen=True, tag=0):
    core_selector: Annotated[int, msgspec.Meta(ge=0, le=255)]
    claim_queue_offset: Annotated[int, msgspec.Meta(ge=0, le=255)]


class ApprovedPeer(Struct, frozen=True, tag=1):
    peer_id: Annotated[bytes, msgspec.Meta(max_length=64)]


UmpSignal = SelectCore | ApprovedPeer


class InvalidUmpSignals(ValueError):
    pass


def split_upward_messages(messages: list[bytes]) -> tuple[list[bytes], list[UmpSignal]]:
    """Split into (real messages, signals); raises `InvalidUmpSignals` on a malformed section."""
    if UMP_SEPARATOR not in messages:
        return list(messages), []
    cut = messages.index(UMP_SEPARATOR)
    raw = messages[cut + 1 :]
    if not raw:
        raise InvalidUmpSignals("separator without any signal after it")
    if len(raw) > MAX_SIGNALS:
        raise InvalidUmpSignals(f"{len(raw)} signals, at most {MAX_SIGNALS}")
    signals: list[UmpSignal] = []
    for item in raw:
        try:
            signals.append(decode(item, UmpSignal))  # type: ignore[arg-type]
        except DecodeError as exc:
            raise InvalidUmpSignals(f"undecodable signal: {exc}") from None
    kinds = [type(s) for s in signals]
    if len(set(kinds)) != len(kinds):
        raise InvalidUmpSignals("a signal kind appears twice")
    return list(messages[:cut]), signals


def with_signals(messages: list[bytes], signals: list[UmpSignal]) -> list[bytes]:
    """Append the separator and the encoded signals (no-op when there are none)."""
    if not signals:
        return list(messages)
    return [*messages, UMP_SEPARATOR, *(encode(s) for s in signals)]


def select_core(signals: list[UmpSignal]) -> SelectCore | None:
    for s in signals:
        if isinstance(s, SelectCore):
            return s
    return None
