"""The relay full node: follows the relay chain from gossip (re-executing every block), catches up
by block requests when a block's parent is missing, counts finality votes, and answers what an
attached collator asks. Validators are full nodes that also author and back (`validator.py`).

Thin shell: every rule lives in `relay.core` (`RelayChain`, the runtime); this module turns
network input into calls on it and calls' results into network output.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.messages import BlockRequest, BlockResponse, FinalityVoteMessage
from proto.network import (
    ACCEPT,
    COST_INVALID_SIGNATURE,
    COST_MAJOR,
    COST_MINOR,
    IGNORE,
    Kind,
    PeerId,
    RequestError,
    Topic,
    Verdict,
    deliver_nothing,
    reject,
)
from proto.ports import Metrics, Network, RelayStore
from proto.relay_block import RelayBlock, RelayHeader
from relay.core.block_tree import BlockTreeError
from relay.core.collator_api import CollationContext, collation_context
from relay.core.horizons import signed_record_horizon
from relay.core.inherent_errors import ANY_IMPORT_ERROR
from relay.core.relay_chain import RelayChain
from relay.core.state import RelayState

SYNC_BATCH = 128


class RelayNodeService:
    role = "relay-node"

    def __init__(self, name: str, net: Network, metrics: Metrics,
                 genesis: tuple[RelayHeader, RelayState], relay_peers: list[PeerId], *,
                 log: Any = None, store: RelayStore | None = None) -> None:
        self.name = name
        header, state = genesis
        self.chain = RelayChain(header, state)
        self.slot_s = state.config.slot_ms / 1000
        self.net = net
        self.relay_peers = set(relay_peers) - {net.peer_id}
        self.net.gossip.fan_out_to = self.relay_peers.__contains__
        self.net.gossip.subscribe(Topic.BLOCK, self._validate_block, deliver_nothing)
        self.net.gossip.subscribe(Topic.FINALITY, self._validate_vote, deliver_nothing)
        self.net.serve(Kind.BLOCKS, self._serve_blocks)
        self.log = log
        self._imported_send, self._imported_recv = trio.open_memory_channel[list[bytes]](math.inf)
        # Imported and still waiting in that channel: not stored yet, so not a head to record.
        self._queued: set[bytes] = set()
        self._head_watchers: list[trio.MemorySendChannel[RelayHeader]] = []
        self._syncing: set[bytes] = set()
        self._nursery: trio.Nursery | None = None
        self._last_best = header.hash()
        self._last_finalized = header.hash()
        self.bad_blocks = 0
        self.metrics = metrics
        self.store = store
        if store is not None:
            self._restore(store)

    @property
    def is_syncing(self) -> bool:
        """True while this node is fetching missing blocks from a peer."""
        return bool(self._syncing)

    def add_relay_peer(self, peer: PeerId) -> None:
        """A relay node learnt of at run time (validators come from the chain spec)."""
        if peer != self.net.peer_id:
            self.relay_peers.add(peer)

    # -- persistence ------------------------------------------------------------------------

    def _restore(self, store: RelayStore) -> None:
        """Re-import what this node had imported before it stopped (re-executing every block:
        the store is not trusted to hold only valid blocks), then its finalized head."""
        for _, raw in store.relay_blocks_from(1):
            try:
                self.chain.import_block(decode(raw, RelayBlock))
            except (ValueError, DecodeError) as exc:
                self.log_event("stored block skipped", error=str(exc))
        finalized = store.finalized()
        if finalized is not None:
            self.chain.restore_finalized(finalized.hash)
        self._last_best = self.chain.best_hash
        self._last_finalized = self.chain.tree.finalized

    def _persist(self, hashes: list[bytes]) -> None:
        self._queued.difference_update(hashes)
        if self.store is None:
            return
        for h in hashes:
            block, header = self.chain.blocks.get(h), self.chain.header(h)
            if block is not None and header is not None:
                self.store.put_relay_block(h, header.number, header.parent_hash, encode(block))
        # The chain may already hold blocks of batches still queued behind this one (imports run
        # as blocks arrive, this runs after them): a head among those is recorded with its batch.
        if self.chain.best.number > 0 and self.chain.best_hash not in self._queued:
            self.store.set_best(self.chain.best_hash)
        finalized = self.chain.finalized
        if finalized.hash() in self._queued:
            return
        if finalized.hash() != self._last_finalized and finalized.number > 0:
            self.store.set_finalized(finalized.hash(), finalized.number)
            # What was signed for relay parents far below finality can never be asked for again.
            horizon = signed_record_horizon(self.chain.config)
            if finalized.number > horizon:
                self.store.prune_below(finalized.number - horizon)
        self._last_finalized = finalized.hash()

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.net.run)
            nursery.start_soon(self._keep_connected)
            nursery.start_soon(self._process_imports)
            await self.start_roles(nursery)
            task_status.started()

    async def start_roles(self, nursery: trio.Nursery) -> None:
        """Hook for validators: their extra tasks."""

    async def _keep_connected(self) -> None:
        """Dial the relay peers we lack, now and once per slot (peers restart, links heal).
        Only the lower identity of a pair dials: two nodes dialling each other at the same
        instant would each refuse the other's connection (one per peer) and end up with none."""
        me = self.net.peer_id
        while True:
            for peer in sorted(p for p in self.relay_peers if p > me):
                if not self.net.peers.is_connected(peer):
                    await self.net.peers.connect(peer)
            await trio.sleep(self.slot_s)

    # -- block import -------------------------------------------------------------------------

    def _validate_block(self, source: PeerId | None, data: bytes) -> Verdict:
        block = decode(data, RelayBlock)
        try:
            outcome = self.chain.import_block(block)
        except BlockTreeError:
            return IGNORE  # below finality or on a pruned fork: stale, not malicious
        except ANY_IMPORT_ERROR as exc:
            self.bad_blocks += 1
            self.log_event("block rejected", number=block.header.number, error=str(exc))
            return reject(COST_MAJOR)
        if outcome.missing_parent is not None:
            if source is not None:
                self._start_sync(source, outcome.missing_parent)
            return IGNORE
        if outcome.duplicate:
            return IGNORE
        self._queue_imported(outcome.imported)
        return ACCEPT

    def _start_sync(self, peer: PeerId, missing: bytes) -> None:
        if missing in self._syncing or self._nursery is None:
            return
        self._syncing.add(missing)
        self._nursery.start_soon(self._sync_from, peer, missing)

    async def _sync_from(self, peer: PeerId, missing: bytes) -> None:
        """Fetch the chain ending at `missing` from `peer`, in batches from our finalized block."""
        try:
            while missing not in self.chain:
                request = BlockRequest(missing, self.chain.finalized.number + 1, SYNC_BATCH)
                try:
                    raw = await self.net.request(peer, Kind.BLOCKS, request)
                    blocks = decode(raw, BlockResponse).blocks
                except (RequestError, DecodeError):
                    return
                if not blocks:
                    return
                imported: list[bytes] = []
                for block in blocks:
                    try:
                        imported += self.chain.import_block(block).imported
                    except ValueError:
                        self.net.peers.report(peer, COST_MAJOR)
                        return
                if not imported:
                    return  # nothing connected: the peer is on another chain
                self._queue_imported(imported)
        finally:
            self._syncing.discard(missing)

    async def _serve_blocks(self, _peer: PeerId, payload: bytes) -> bytes | None:
        request = decode(payload, BlockRequest)
        if request.head not in self.chain:
            return None
        blocks = self.chain.blocks_from(request.head, request.from_number, request.max_blocks)
        # Keep the response under its cap: drop the newest blocks, the requester asks again.
        while blocks:
            body = encode(BlockResponse(blocks))
            if len(body) <= self.net.kinds[Kind.BLOCKS].max_response_bytes:
                return body
            blocks = blocks[: len(blocks) // 2]
        return encode(BlockResponse([]))

    async def _process_imports(self) -> None:
        async for hashes in self._imported_recv:
            await self.on_imported(hashes)
            self.chain.apply_pending_votes()
            self._persist(hashes)
            best = self.chain.best_hash
            if best != self._last_best:
                self._last_best = best
                await self.on_new_best(self.chain.best)

    async def on_imported(self, hashes: list[bytes]) -> None:
        """Hook: blocks just added to the chain, in import order."""

    async def on_new_best(self, header: RelayHeader) -> None:
        for watcher in list(self._head_watchers):
            try:
                watcher.send_nowait(header)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._head_watchers.remove(watcher)

    def notify_imported(self, hashes: list[bytes]) -> None:
        """Blocks this node added itself (authored)."""
        self._queue_imported(hashes)

    def _queue_imported(self, hashes: list[bytes]) -> None:
        self._queued.update(hashes)
        self._imported_send.send_nowait(hashes)

    async def publish_block(self, block: RelayBlock) -> None:
        await self.net.gossip.publish(Topic.BLOCK, encode(block))

    # -- finality -----------------------------------------------------------------------------

    def _validate_vote(self, _source: PeerId | None, data: bytes) -> Verdict:
        vote = decode(data, FinalityVoteMessage).vote
        try:
            self.chain.note_vote(vote)
        except BlockTreeError as exc:
            if "signature" in str(exc):
                return reject(COST_INVALID_SIGNATURE)
            return reject(COST_MINOR)
        return ACCEPT

    # -- what collators ask -----------------------------------------------------------------

    def watch_heads(self, buffer: int = 16) -> trio.MemoryReceiveChannel[RelayHeader]:
        """New best heads from now on; a watcher that falls `buffer` behind is dropped."""
        send, recv = trio.open_memory_channel[RelayHeader](buffer)
        self._head_watchers.append(send)
        return recv

    async def collation_context(self, para_id: int, leaf: bytes, max_cores: int = 0
                                ) -> CollationContext | None:
        state, header = self.chain.state(leaf), self.chain.header(leaf)
        if state is None or header is None:
            return None
        return collation_context(state, header, para_id, max_cores)

    def log_event(self, event: str, **kw: Any) -> None:
        if self.log is not None:
            self.log.info(event, node=self.name, **kw)
