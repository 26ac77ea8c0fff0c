"""Errors of the wire layer. Every malformed input surfaces as exactly one `DecodeError`."""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes that are not a valid encoding of the expected message (any cause)."""


class FrameTooLarge(DecodeError):
    """A length prefix above the protocol's cap: the body is never read."""

    def __init__(self, length: int, cap: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the cap of {cap} bytes")
        self.length = length
        self.cap = cap


class SignatureError(ValueError):
    """A signature that does not verify against the claimed key and payload."""


class CorruptRecord(Exception):
    """A stored record that fails its check (does not decode, is not what its key names, or
    breaks a rule when re-executed), and the node will not start on it."""

    def __init__(self, store: str, table: str, key: str, problem: str) -> None:
        super().__init__(f"store {store}: table {table}, {key}: {problem}")
        self.store = store
        self.table = table
        self.key = key
        self.problem = problem


class SigningRefused(Exception):
    """The store will not record a signature at this relay parent (it is below the bound under
    which records were pruned): whoever asked signs nothing there."""
