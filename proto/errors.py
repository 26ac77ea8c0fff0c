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
