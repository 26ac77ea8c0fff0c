"""Re-importing a node's stored relay chain when it starts, and finding the records that fail
their check.

The store is not trusted to hold only valid blocks: every record is decoded, must hash to the key
it is stored under, and is re-executed on its parent. A record that fails is a *bad record*; the
records built on it (and on a parent record that is missing altogether) cannot be verified and
are *dropped* with it: the bad record and everything after it on that chain. What imported is
kept. `RelayNodeService` decides what to do with a replay that found bad records (re-sync the
dropped range from peers, or refuse to start).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proto.codec import decode
from proto.errors import DecodeError
from proto.ports import RelayStore
from proto.relay_block import RelayBlock, RelayHeader
from relay.core.relay_chain import RelayChain

TABLE = "relay_blocks"
HEADS = "relay_heads"


def short(h: bytes) -> str:
    return "0x" + h[:8].hex() + "…"


@dataclass(frozen=True)
class BadRecord:
    number: int
    hash: bytes  # the key the record is stored (or missing) under
    problem: str
    table: str = TABLE

    @property
    def key(self) -> str:
        return f"block #{self.number} 0x{self.hash.hex()}"


@dataclass
class Replay:
    bad: list[BadRecord] = field(default_factory=list)
    # Every record not imported (the bad ones and their descendants): hash -> number.
    dropped: dict[bytes, int] = field(default_factory=dict)
    # Headers of the records that decoded and hash to their key (their parent links are sound).
    headers: dict[bytes, RelayHeader] = field(default_factory=dict)

    @property
    def span(self) -> tuple[int, int]:
        numbers = [*self.dropped.values(), *(b.number for b in self.bad)]
        return min(numbers), max(numbers)

    def verified_ancestor(self, chain: RelayChain, h: bytes) -> bytes | None:
        """The newest block of `chain` on `h`'s chain, walking the parent links of dropped
        records whose header is sound; None where a link is unknown."""
        while h not in chain:
            header = self.headers.get(h)
            if header is None:
                return None
            h = header.parent_hash
        return h


def replay(chain: RelayChain, store: RelayStore) -> Replay:
    """Import every stored block into `chain` (parents first) and report what failed."""
    out = Replay()
    waiting: dict[bytes, RelayBlock] = {}  # decoded, sound, parent not imported (yet)
    for h, raw in store.relay_blocks_from(1):
        problem, block = _check(chain, h, raw)
        if block is not None and problem is None and h not in chain:
            waiting[h] = block
        if block is not None and block.header.hash() == h:
            out.headers[h] = block.header
        if problem is not None:
            number = block.header.number if block is not None else store.relay_block_number(h)
            out.bad.append(BadRecord(number or 0, h, problem))
            out.dropped[h] = number or 0
    # What is still waiting never connected: to a bad record, or to one that is not stored.
    for h, block in sorted(waiting.items(), key=lambda kv: kv[1].header.number):
        if h in chain:
            continue  # a parent stored under a higher number arrived later and took it along
        parent = block.header.parent_hash
        if parent not in out.dropped and parent not in waiting:
            out.bad.append(BadRecord(block.header.number - 1, parent,
                                     f"is missing (parent of #{block.header.number} {short(h)})"))
        out.dropped[h] = block.header.number
    return out


def _check(chain: RelayChain, h: bytes, raw: bytes) -> tuple[str | None, RelayBlock | None]:
    try:
        block = decode(raw, RelayBlock)
    except DecodeError as exc:
        return f"does not decode: {exc}", None
    if block.header.hash() != h:
        return f"holds block {short(block.header.hash())}, not the one its key names", block
    try:
        chain.import_block(block)
    except ValueError as exc:  # every import error, below-finality ones included
        return f"fails re-execution: {type(exc).__name__}: {exc}", block
    return None, block
