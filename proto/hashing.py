"""blake2b-256, the one hash function of the protocol (spec conventions: `H(x)`)."""

from __future__ import annotations

import hashlib

HASH_LEN = 32
ZERO_HASH = bytes(HASH_LEN)


def blake2_256(data: bytes) -> bytes:
    """32-byte blake2b digest, as polkadot-sdk's `BlakeTwo256`."""
    return hashlib.blake2b(data, digest_size=HASH_LEN).digest()


def short(h: bytes) -> str:
    """A hash as `0x1234…abcd` for logs and error messages."""
    x = h.hex()
    return f"0x{x[:4]}…{x[-4:]}" if len(x) > 8 else f"0x{x}"
