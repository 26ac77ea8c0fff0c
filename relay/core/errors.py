"""The base of the relay runtime's errors: each carries the reference implementation's name."""

from __future__ import annotations

from enum import StrEnum


class NamedError(ValueError):
    """An error whose `kind` (a member of its own `...Kind` enum) is polkadot-sdk's name for it (`InsufficientBacking`, ...), so tests
    and logs compare one to one with the reference."""

    def __init__(self, kind: StrEnum, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
