"""Wire messages made up at run time from their type annotations: what `asyncback probe-peer`
sends a node to see whether any well-formed message can hurt it.

`WireGenerator.build(SomeStruct, budget)` walks the struct's msgspec annotations
(`msgspec.inspect`) and fills every field with a value its bounds admit: integers at their edges
(0, 1, the minimum, the maximum, one inside each) or drawn from their range, byte strings empty,
short, at their fixed length or as large as the budget allows, lists empty (an `AttestedCandidate`
with no statements is one of these), of one item or a few, every branch of a union, every member
of an enum. A 32-byte field (a hash) is often one the caller says the target knows (its recent
relay parents, its para blocks), so messages reach past "unknown relay parent" into the handlers.
Everything built encodes, decodes back to itself (it is decodable by construction: only values
the schema admits) and fits `budget` bytes encoded; a draw that comes out too large is drawn
again with half the sizes, and the last resort is the smallest value of the type.

Hypothesis does the same job in the property tests, but it is a test dependency: this module is
the run-time generator, small, seeded (`random.Random`), with no shrinking and no database.

Strings: the only string field of the wire (`PeerAddress.host`) is an address a node may dial,
so generated strings are loopback addresses: a target that dials what a probe tells it stays on
its own machine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

import msgspec.inspect as mi

from proto.codec import decode, encode

T = TypeVar("T")

INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
HASH_LEN = 32
DEFAULT_MAX_ITEMS = 4
DEFAULT_MAX_BLOB = 2048
# One draw in this many makes its byte strings as large as the budget allows (within their caps).
LARGE_ONE_IN = 16
ATTEMPTS = 6
LOOPBACK_HOSTS = ("127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "localhost")


@cache
def _info(tp: Any) -> mi.Type:
    return mi.type_info(tp)


class WireGenerator:
    """Seeded values of msgspec types (see the module docstring).

    `hashes`: 32-byte values the target knows, used for half the hash fields; the caller may
    replace the list at any time (the probe refreshes it from the target's RPC)."""

    def __init__(self, rng: random.Random, *, hashes: Sequence[bytes] = (),
                 max_items: int = DEFAULT_MAX_ITEMS, max_blob: int = DEFAULT_MAX_BLOB) -> None:
        self.rng = rng
        self.hashes = list(hashes)
        self.max_items = max_items
        self.max_blob = max_blob

    def build(self, tp: type[T], budget: int) -> T:
        """A value of `tp` whose encoding is at most `budget` bytes (`ValueError` if even the
        smallest value of `tp` is larger)."""
        info = _info(tp)  # type: ignore[arg-type]
        blob = self.max_blob
        if self.rng.randrange(LARGE_ONE_IN) == 0:
            blob = max(blob, budget)
        for _ in range(ATTEMPTS):
            value = self._value(info, blob)
            if len(encode(value)) <= budget:
                return value
            blob //= 2
        value = self._value(info, 0, minimal=True)
        if len(encode(value)) > budget:
            raise ValueError(f"the smallest {getattr(tp, '__name__', tp)} is over {budget} bytes")
        return value

    def hash(self) -> bytes:
        """A 32-byte value: a known one half the time, else zeros, ones or random."""
        r = self.rng.random()
        if self.hashes and r < 0.5:
            return self.rng.choice(self.hashes)
        if r < 0.6:
            return bytes(HASH_LEN)
        if r < 0.65:
            return b"\xff" * HASH_LEN
        return self.rng.randbytes(HASH_LEN)

    # -- by kind of type --------------------------------------------------------------------

    def _value(self, t: mi.Type, blob: int, minimal: bool = False) -> Any:
        if isinstance(t, mi.StructType):
            return t.cls(**{f.name: self._value(f.type, blob, minimal) for f in t.fields})
        if isinstance(t, mi.IntType):
            return self._int(t, minimal)
        if isinstance(t, mi.BytesType):
            return self._bytes(t, blob, minimal)
        if isinstance(t, mi.ListType):
            return self._list(t, blob, minimal)
        if isinstance(t, mi.UnionType):
            branches = list(t.types)
            if minimal:
                nones = [b for b in branches if isinstance(b, mi.NoneType)]
                return self._value((nones or branches)[0], blob, minimal)
            return self._value(self.rng.choice(branches), blob, minimal)
        if isinstance(t, mi.EnumType):
            return self.rng.choice(list(t.cls))
        if isinstance(t, mi.BoolType):
            return bool(self.rng.getrandbits(1))
        if isinstance(t, mi.NoneType):
            return None
        if isinstance(t, mi.StrType):
            return self._str(t)
        raise TypeError(f"no generator for {type(t).__name__}")

    def _int(self, t: mi.IntType, minimal: bool) -> int:
        lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else INT64_MIN)
        hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else UINT64_MAX)
        if minimal:
            return max(lo, min(0, hi))
        r = self.rng.random()
        if r < 0.4:
            edges = [v for v in (lo, hi, lo + 1, hi - 1, 0, 1, 2) if lo <= v <= hi]
            return self.rng.choice(edges)
        if r < 0.8:  # small values: indices, counts, para ids, block numbers near the chain's
            small_lo = max(lo, 0) if hi >= 0 else lo
            return self.rng.randint(small_lo, min(hi, small_lo + 2100))
        return self.rng.randint(lo, hi)

    def _bytes(self, t: mi.BytesType, blob: int, minimal: bool) -> bytes:
        lo = t.min_length or 0
        hi = t.max_length if t.max_length is not None else blob
        if lo == hi == HASH_LEN and not minimal:
            return self.hash()
        if lo == hi:
            return self.rng.randbytes(lo)  # a signature or key: random (almost never valid)
        if minimal:
            return bytes(lo)
        cap = max(lo, min(hi, blob))
        r = self.rng.random()
        if r < 0.25:
            n = lo
        elif r < 0.4:
            n = cap
        else:
            n = self.rng.randint(lo, min(cap, lo + 64))
        return self.rng.randbytes(n)

    def _list(self, t: mi.ListType, blob: int, minimal: bool) -> list[Any]:
        lo = t.min_length or 0
        hi = t.max_length if t.max_length is not None else self.max_items
        if minimal:
            n = lo
        else:
            n = self.rng.choice([lo, lo, min(hi, lo + 1), self.rng.randint(lo, max(lo, min(
                hi, self.max_items)))])
        # Items share the byte budget, so a long list of blobs does not outgrow the frame.
        item_blob = blob // max(1, n)
        return [self._value(t.item_type, item_blob, minimal) for _ in range(n)]

    def _str(self, t: mi.StrType) -> str:
        candidates = [h for h in LOOPBACK_HOSTS
                      if (t.min_length or 0) <= len(h) <= (t.max_length or len(h))]
        return self.rng.choice(candidates) if candidates else ""


def decodes_to_itself(value: Any, tp: Any) -> bool:
    """Whether `value` survives the node's strict decoder as `tp` unchanged (what every value
    this module builds must do)."""
    try:
        return bool(decode(encode(value), tp) == value)
    except Exception:
        return False
