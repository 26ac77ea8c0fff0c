"""A run's relay-block records (`node.report.BlockRecord`, what `report.json` holds) read from
what the nodes publish over JSON-RPC, and nothing else: the relay node's best chain
(`chain_getHeader`, `chain_getFinalizedHead`), each block's candidate events
(`parachain_events`) and candidates pending availability (`parachain_backingState`), and from the
collators their para blocks (`para_getBlock`, for transaction counts) and unincluded segments
(`para_unincludedSegment`). Every call goes through an async `rpc(method, params)` callable, so
the same code follows processes on this machine, containers, or services in one process.

It is incremental: each `poll()` walks back from the node's best block to the last block it
already holds and records only what is new (replacing the tail after a reorg), so a live view
polls it every relay block and the final report is the same object's records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.cluster.http import NodeUnreachable
from node.report import WINDOW, BackedRecord, BlockRecord, IncludedRecord, summarize
from node.rpc.client import RpcClientError
from node.rpc.errors import RpcError

Rpc = Callable[[str, list[Any]], Awaitable[Any]]

# What a failed call to a node raises: an error answer, no answer over HTTP (the launcher's
# handles), a dropped WebSocket connection, a refused socket.
RPC_ERRORS: tuple[type[BaseException], ...] = (RpcError, NodeUnreachable, RpcClientError,
                                               OSError)

BACKED = "CandidateBacked"
INCLUDED = "CandidateIncluded"


class ObserveError(Exception):
    """The node's answers do not make a chain (e.g. a parent it does not know)."""


@dataclass(frozen=True)
class _Header:
    number: int
    hash: str
    parent_hash: str
    slot: int
    author: int


def _header(doc: Any) -> _Header:
    if not isinstance(doc, dict):
        raise ObserveError(f"expected a header, got {doc!r:.80}")
    try:
        return _Header(int(doc["number"], 16), doc["hash"], doc["parentHash"], int(doc["slot"]),
                       int(doc["author"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ObserveError(f"malformed header {doc!r:.80}: {exc}") from None


@dataclass(frozen=True)
class ParaWindow:
    """One para over the last `window` relay blocks of the best chain, for a live view."""

    para_id: int
    backed: int
    included: int
    pending_availability: int | None  # at the best block
    unincluded_segment: int | None  # the longest of its collators', at the last poll
    relay_parent_age: float | None  # mean, over the candidates backed in the window


class NetworkObserver:
    def __init__(self, relay: Rpc, para_ids: Iterable[int],
                 collators: Mapping[int, Sequence[Rpc]] | None = None) -> None:
        self.relay = relay
        self.para_ids = sorted(para_ids)
        self.collators: dict[int, list[Rpc]] = {p: list((collators or {}).get(p, ()))
                                                for p in self.para_ids}
        self.records: list[BlockRecord] = []  # records[i] is block i + 1 of the best chain
        self.segment_lengths: dict[int, list[int]] = {p: [] for p in self.para_ids}
        self.collator_segment_lengths: dict[int, list[int]] = {p: [] for p in self.para_ids}
        self.best_number = 0
        self.finalized_number = 0
        self.reorgs = 0  # polls that replaced blocks already recorded
        self._pending: dict[int, int] = {}  # per para, at the newest recorded block
        self._segment: dict[int, int] = {}  # per para, at the last poll
        self._txs: dict[str, int] = {}  # candidate hash -> transactions in its para block

    def add_collator(self, para_id: int, rpc: Rpc) -> None:
        self.collators.setdefault(para_id, []).append(rpc)
        if para_id not in self.para_ids:
            self.para_ids = sorted([*self.para_ids, para_id])
            self.segment_lengths[para_id] = []
            self.collator_segment_lengths[para_id] = []

    # -- polling --------------------------------------------------------------------------------

    async def poll(self) -> list[BlockRecord]:
        """Bring the records up to the node's best block. Returns the blocks recorded by this
        poll, oldest first (after a reorg, the ones that replaced the old tail)."""
        best = _header(await self.relay("chain_getHeader", []))
        new: list[_Header] = []
        h = best
        while h.number > 0 and not self._holds(h):
            new.append(h)
            parent = await self.relay("chain_getHeader", [h.parent_hash])
            if parent is None:
                raise ObserveError(f"block #{h.number} {h.hash[:10]}: parent unknown to the node")
            h = _header(parent)
        if h.number < len(self.records):
            self.reorgs += 1
            del self.records[h.number:]
        added = [await self._record(x) for x in reversed(new)]
        self.records.extend(added)
        self.best_number = best.number
        await self._note_finality(best.number)
        if added:
            await self._sample_segments()
        return added

    def _holds(self, h: _Header) -> bool:
        return h.number <= len(self.records) and self.records[h.number - 1].hash == h.hash

    async def _record(self, h: _Header) -> BlockRecord:
        rec = BlockRecord(h.number, h.hash, h.parent_hash, h.slot, h.author)
        for e in await self.relay("parachain_events", [h.hash]) or []:
            number = e["para_number"] if e["para_number"] is not None else -1
            if e["type"] == BACKED:
                rec.backed.append(BackedRecord(e["para_id"], e["candidate_hash"],
                                               e["relay_parent_number"], number, e["core"]))
            elif e["type"] == INCLUDED:
                rec.included.append(IncludedRecord(e["para_id"], e["candidate_hash"],
                                                   e["relay_parent_number"], number,
                                                   e["backed_in"], await self._tx_count(e)))
        for p in self.para_ids:
            try:
                state = await self.relay("parachain_backingState", [p, h.hash])
            except RpcError:
                continue  # the node pruned that block's state
            if state is not None:
                n = len(state["pendingAvailability"])
                self.segment_lengths[p].append(n)
                self._pending[p] = n
        return rec

    async def _tx_count(self, event: Mapping[str, Any]) -> int:
        """Transactions in an included candidate's para block, from any collator of the para
        that holds it (the relay chain never sees a para block's body); 0 if none answers."""
        cached = self._txs.get(event["candidate_hash"])
        if cached is not None:
            return cached
        for rpc in self.collators.get(event["para_id"], ()):
            try:
                doc = await rpc("para_getBlock", [event["para_head_hash"]])
            except RPC_ERRORS:
                continue
            if doc is not None:
                n = len(doc["block"]["extrinsics"])
                self._txs[event["candidate_hash"]] = n
                return n
        return 0

    async def _note_finality(self, best_number: int) -> None:
        fin = _header(await self.relay("chain_getHeader",
                                       [await self.relay("chain_getFinalizedHead", [])]))
        if fin.number == 0 or not self._holds(fin):
            return  # genesis, or (briefly, during a reorg) not on the chain recorded
        self.finalized_number = fin.number
        for r in self.records[: fin.number]:
            if not r.finalized:
                r.finalized = True
                r.finalized_at = best_number

    async def _sample_segments(self) -> None:
        for p in self.para_ids:
            lengths: list[int] = []
            for rpc in self.collators.get(p, ()):
                try:
                    seg = await rpc("para_unincludedSegment", [])
                except RPC_ERRORS:
                    continue  # a collator that is down or restarting
                lengths.append(len(seg["blocks"]))
            if lengths:
                self.collator_segment_lengths[p].append(max(lengths))
                self._segment[p] = max(lengths)

    # -- views ----------------------------------------------------------------------------------

    def window(self, para_id: int, size: int = WINDOW, upto: int | None = None) -> ParaWindow:
        """The last `size` blocks recorded, or those up to block number `upto`."""
        blocks = self.records[:upto][-size:]
        backed = [(b.number, x) for b in blocks for x in b.backed if x.para_id == para_id]
        ages = [n - x.relay_parent_number for n, x in backed]
        return ParaWindow(
            para_id, len(backed),
            sum(1 for b in blocks for i in b.included if i.para_id == para_id),
            self._pending.get(para_id), self._segment.get(para_id),
            sum(ages) / len(ages) if ages else None)

    def summary(self, relay_blocks: int | None = None) -> dict[str, Any]:
        return summarize(self.records[:relay_blocks], self.para_ids,
                         segment_lengths=self.segment_lengths,
                         collator_segment_lengths=self.collator_segment_lengths)
