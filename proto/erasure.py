"""Erasure coding behind a small wrapper, so the backend can be swapped.

`n` chunks, any `recovery_threshold(n)` of which rebuild the data. Backend: reed-solomon-leopard
(GF(2^16), scales past 256 validators). It does not detect corrupt shards; callers check every
chunk against the erasure root's merkle proof before use.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import reed_solomon_leopard as leopard

_LEN = struct.Struct(">Q")


class ErasureError(ValueError):
    pass


def recovery_threshold(n: int) -> int:
    """Chunks needed to recover: `floor((n-1)/3) + 1` (more than a third)."""
    if n < 1:
        raise ErasureError("need at least one validator")
    return (n - 1) // 3 + 1


def _shard_len(size: int, k: int) -> int:
    per = -(-size // k)
    return max(2, per + (per % 2))  # leopard wants an even, non-zero shard length


def encode(data: bytes, n: int) -> list[bytes]:
    """`n` chunks of `data` (length-prefixed so padding can be stripped on recovery)."""
    k = recovery_threshold(n)
    payload = _LEN.pack(len(data)) + data
    length = _shard_len(len(payload), k)
    padded = payload.ljust(length * k, b"\0")
    originals = [padded[i * length : (i + 1) * length] for i in range(k)]
    if n == k:
        return originals
    return originals + [bytes(r) for r in leopard.encode(originals, n - k)]


def reconstruct(chunks: Mapping[int, bytes], n: int) -> bytes:
    """The data from any `recovery_threshold(n)` distinct chunks (index → chunk)."""
    k = recovery_threshold(n)
    valid = {i: c for i, c in chunks.items() if 0 <= i < n}
    if len(valid) < k:
        raise ErasureError(f"{len(valid)} chunks, {k} needed")
    lengths = {len(c) for c in valid.values()}
    if len(lengths) != 1:
        raise ErasureError("chunks of different lengths")
    originals = {i: c for i, c in valid.items() if i < k}
    if len(originals) < k:
        recovery = {i - k: c for i, c in valid.items() if i >= k}
        try:
            restored = leopard.decode(k, n - k, originals, recovery)
        except Exception as exc:  # the backend's own error types are not part of our API
            raise ErasureError(f"cannot reconstruct: {exc}") from None
        originals.update({i: bytes(c) for i, c in restored.items()})
    payload = b"".join(originals[i] for i in range(k))
    (size,) = _LEN.unpack_from(payload)
    if size > len(payload) - _LEN.size:
        raise ErasureError("length prefix beyond the recovered data")
    return payload[_LEN.size : _LEN.size + size]
