"""The base of the relay runtime's errors: each carries the reference implementation's name."""

from __future__ import annotations


class NamedError(ValueError):
    """An error whose `kind` is polkadot-sdk's name for it (`InsufficientBacking`, ...), so tests
    and logs compare one to one with the reference."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
