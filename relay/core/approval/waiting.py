"""Approval gossip that waits for its block or its assignment, bounded in all and per peer.

Gossip does not keep order: an assignment or approval may come before the block it is about, or
an approval before its checker's assignment. Such a message is held and tried again when its block
(or an assignment for it) arrives. Nothing in it can be checked before its block is known, so
anyone can send messages about blocks that never come; two caps bound what they cost:

- `max_total` in all: past it the oldest message goes;
- `max_per_peer` from one sender: past it that sender's own oldest goes (`Added.OVER_PEER_CAP`,
  which the caller charges), so one peer's junk cannot push out what the others sent.

An approval that waits for its checker's assignment says whose (`awaits`): an accepted
assignment then retries that checker's approvals alone (`take_awaiting`), not every approval
waiting on the block, which at 100 validators re-checked each waiting approval once per
assignment that came in meanwhile.

Each operation is O(1) but `take` and `take_awaiting`, which are O(what they return).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

P = TypeVar("P")  # who sent a message (None: this node itself)

Key = tuple[int, bytes, bytes]  # topic, block hash, the encoded message


@dataclass(frozen=True)
class Waiting(Generic[P]):
    topic: int
    block_hash: bytes
    raw: bytes
    source: P | None


class Added(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # the same message waits already (from whichever peer)
    OVER_PEER_CAP = "over peer cap"  # held, and the sender's oldest dropped for it


class WaitingRoom(Generic[P]):
    def __init__(self, max_total: int, max_per_peer: int) -> None:
        if not 0 < max_per_peer <= max_total:
            raise ValueError("caps: 0 < max_per_peer <= max_total")
        self.max_total = max_total
        self.max_per_peer = max_per_peer
        self._all: OrderedDict[Key, P | None] = OrderedDict()  # oldest first
        self._by_peer: dict[P | None, OrderedDict[Key, None]] = {}
        self._by_block: dict[bytes, OrderedDict[Key, None]] = {}
        self._awaits: dict[Key, int] = {}  # the validator whose assignment the message awaits
        self._by_awaited: dict[tuple[bytes, int], OrderedDict[Key, None]] = {}
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._all)

    def from_peer(self, source: P | None) -> int:
        return len(self._by_peer.get(source, ()))

    def add(self, topic: int, block_hash: bytes, raw: bytes, source: P | None,
            awaits: int | None = None) -> Added:
        """Hold a message; `awaits`: the validator whose assignment it waits for, if that is
        what it waits for."""
        key = (topic, block_hash, raw)
        if key in self._all:
            return Added.DUPLICATE
        result = Added.NEW
        own = self._by_peer.get(source)
        if own is not None and len(own) >= self.max_per_peer:
            self._remove(next(iter(own)))
            self.dropped += 1
            result = Added.OVER_PEER_CAP
        elif len(self._all) >= self.max_total:
            self._remove(next(iter(self._all)))
            self.dropped += 1
        self._all[key] = source
        self._by_peer.setdefault(source, OrderedDict())[key] = None
        self._by_block.setdefault(block_hash, OrderedDict())[key] = None
        if awaits is not None:
            self._awaits[key] = awaits
            self._by_awaited.setdefault((block_hash, awaits), OrderedDict())[key] = None
        return result

    def take(self, block_hash: bytes, topic: int | None = None) -> list[Waiting[P]]:
        """Remove and return what waits for `block_hash` (only `topic`'s, if given), oldest
        first."""
        keys = [k for k in self._by_block.get(block_hash, ()) if topic in (None, k[0])]
        return self._take(keys)

    def awaiting_assignments(self) -> bool:
        """Whether anything waits for an assignment: most of the time nothing does, and each
        assignment imported would ask `take_awaiting` in vain."""
        return bool(self._by_awaited)

    def take_awaiting(self, block_hash: bytes, validator: int) -> list[Waiting[P]]:
        """Remove and return what waits for `validator`'s assignment under `block_hash`."""
        keys = self._by_awaited.get((block_hash, validator))
        return self._take(list(keys)) if keys else []

    def _take(self, keys: list[Key]) -> list[Waiting[P]]:
        out = [Waiting(k[0], k[1], k[2], self._all[k]) for k in keys]
        for k in keys:
            self._remove(k)
        return out

    def _remove(self, key: Key) -> None:
        source = self._all.pop(key)
        from_peer = self._by_peer[source]
        del from_peer[key]
        if not from_peer:
            del self._by_peer[source]
        for_block = self._by_block[key[1]]
        del for_block[key]
        if not for_block:
            del self._by_block[key[1]]
        awaited = self._awaits.pop(key, None)
        if awaited is not None:
            tagged = self._by_awaited[(key[1], awaited)]
            del tagged[key]
            if not tagged:
                del self._by_awaited[(key[1], awaited)]
