"""The relay full node: follows the relay chain from gossip (re-executing every block), catches up
by block requests, counts finality votes, and answers what an attached collator asks. Validators
are full nodes that also author and back (`validator.py`).

Catch-up. Relay peers tell each other their best (sealed) header and finalized block when they
connect (`ChainStatus`), and every gossiped block whose parent we lack tells us its sender has it.
Each such claim, verified by its author's seal, is a sync target; one task at a time walks the
highest target's chain forward from our best block in batches, stepping back (doubling the
distance, never below finality) while a batch does not connect to what we have, so it converges
from any distance, from genesis, and off a fork above finality. A target the peer cannot deliver
is dropped, as are a peer's claims when it disconnects. The node is *major syncing* while the best
claim is more than `MAJOR_SYNC_GAP` blocks above its best (`system_health`'s isSyncing). A
validator authors nothing while any claim is above its best (or before any relay peer has told it
its chain), and signs nothing (finality votes, bitfields, statements) for a block more than
`MAJOR_SYNC_GAP` below the best claim. A peer whose finalized block differs from ours at the same
height, or whose chain does not connect above our finalized block, is an error in the log naming
the height and both hashes.

Restart. The stored chain is re-imported and re-executed (`restore.py`); a record that fails its
check is a warning naming the store, table and key, and it is dropped with everything built on
it and re-synced from peers. While the stored finalized head is missing from the chain (it was in
the dropped range) the node is *recovering*: finality is held at the newest verified block, and
the validator authors and signs nothing (`is_recovering`, and `is_history` for every block).

Thin shell: every rule lives in `relay.core` (`RelayChain`, the runtime); this module turns
network input into calls on it and calls' results into network output.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from proto.codec import decode, decode_shared, encode
from proto.errors import CorruptRecord, DecodeError
from proto.messages import BlockRequest, BlockResponse, ChainStatus, FinalityVoteMessage
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
from proto.ports import Head, Metrics, Network, RelayStore
from proto.relay_block import RelayBlock, RelayHeader
from relay.core.block_tree import BlockTreeError
from relay.core.collator_api import CollationContext, collation_context
from relay.core.events import EventKind
from relay.core.horizons import signed_record_horizon
from relay.core.inherent_errors import ANY_IMPORT_ERROR
from relay.core.relay_chain import BODIES_KEEP_BELOW_FINALIZED, RelayChain
from relay.core.state import RelayState
from relay.service.restore import HEADS, BadRecord, Replay, replay

SYNC_BATCH = 128
# Behind the best claim by more than this many blocks is a major sync (Substrate counts 5 too).
MAJOR_SYNC_GAP = 5


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
        self._genesis_hash = header.hash()
        # The gossip grid of the genesis session's validators (re-laid at a session change).
        self.net.gossip.set_session(state.validators, self._genesis_hash, state.session_index)
        self.net.gossip.subscribe(Topic.BLOCK, self._validate_block, deliver_nothing)
        self.net.gossip.subscribe(Topic.FINALITY, self._validate_vote, deliver_nothing)
        self.net.serve(Kind.BLOCKS, self._serve_blocks)
        self.net.on_direct(ChainStatus, self._on_status)
        self.net.peers.add_listener(self)
        self.log = log
        self._imported_send, self._imported_recv = trio.open_memory_channel[list[bytes]](math.inf)
        # Imported and still waiting in that channel: not stored yet, so not a head to record.
        self._head_watchers: list[trio.MemorySendChannel[RelayHeader]] = []
        # Per peer, the highest block it has shown us that we lack: (number, hash).
        self._claims: dict[PeerId, tuple[int, bytes]] = {}
        self._status_sent: set[PeerId] = set()  # on the current connection
        self._status_heard: set[PeerId] = set()
        self._sync_wakeup = trio.Event()
        self.chain_disagreements = 0
        self._nursery: trio.Nursery | None = None
        self._dial_now = trio.Event()  # a relay peer became reachable: `_keep_connected` runs now
        self._last_best = header.hash()
        self._last_finalized = header.hash()
        self.bad_blocks = 0
        self.metrics = metrics
        self.store = store
        # The stored finalized head while a corrupted range below it is re-synced.
        self._recovering: Head | None = None
        if store is not None:
            self._restore(store)

    # -- sync state ---------------------------------------------------------------------------

    @property
    def best_seen(self) -> int:
        """The highest block number a peer has shown us (our own best if none is higher)."""
        best = self.chain.best.number
        for peer, (number, h) in list(self._claims.items()):
            if h in self.chain:
                del self._claims[peer]
            else:
                best = max(best, number)
        return best

    @property
    def is_syncing(self) -> bool:
        """Major sync: more than `MAJOR_SYNC_GAP` blocks behind the best a peer has shown us, or
        re-syncing what a corrupted store record cost us."""
        return self.is_recovering or self.best_seen - self.chain.best.number > MAJOR_SYNC_GAP

    def is_history(self, number: int) -> bool:
        """A block this far below the best a peer has shown us is catch-up, not the chain's
        head: nothing is signed for it (nor for anything while re-syncing after a corrupted
        record)."""
        return self.is_recovering or number + MAJOR_SYNC_GAP < self.best_seen

    @property
    def is_recovering(self) -> bool:
        """Our stored finalized head was in a corrupted range and the chain does not hold it
        again yet: building or signing on our chain could contradict what we finalized."""
        return self._recovering is not None

    @property
    def is_behind(self) -> bool:
        """A peer has shown us a block above our best that we do not have yet: building on our
        best now would be building a fork."""
        return self.best_seen > self.chain.best.number

    @property
    def is_offline(self) -> bool:
        """We have relay peers and none of them has told us its chain yet (we cannot know whether
        we are behind)."""
        return bool(self.relay_peers) and not any(
            self.net.peers.is_connected(p) for p in self._status_heard if p in self.relay_peers)

    def add_relay_peer(self, peer: PeerId) -> None:
        """A relay node learnt of at run time (validators come from the chain spec)."""
        if peer != self.net.peer_id:
            self.relay_peers.add(peer)
            # Already connected (it dialled us before discovery said what it is): it gets our
            # status now, as a relay peer connecting later would.
            if self.net.peers.is_connected(peer) and self._nursery is not None:
                self._nursery.start_soon(self._send_status, peer)

    def dials(self, peer: PeerId) -> bool:
        """Whether this node is the one of the pair that dials `peer` (`_keep_connected`)."""
        return peer > self.net.peer_id

    def dial_now(self, _peer: PeerId) -> None:
        """Discovery found where a relay peer listens: the next `_keep_connected` pass runs now
        rather than up to a slot later (it dials only the peers this node is to dial)."""
        self._dial_now.set()

    # -- persistence ------------------------------------------------------------------------

    def _restore(self, store: RelayStore) -> None:
        """Re-import what this node had imported before it stopped (re-executing every block:
        the store is not trusted to hold only valid blocks), then its finalized head. A record
        that fails its check is dropped with everything built on it and re-synced from peers
        (`_resync_after`); with no relay peer to re-sync from, the node refuses to start."""
        done = replay(self.chain, store)
        finalized = store.finalized()
        if finalized is not None and finalized.hash not in self.chain and not done.bad:
            done.bad.append(BadRecord(finalized.number, finalized.hash,
                                      "is the finalized head and is not stored", table=HEADS))
        if done.bad:
            self._resync_after(store, done, finalized)
        elif finalized is not None:
            self.chain.restore_finalized(finalized.hash)
        self._last_best = self.chain.best_hash
        self._last_finalized = self.chain.tree.finalized

    def _resync_after(self, store: RelayStore, done: Replay, finalized: Head | None) -> None:
        """Drop the records that failed (and what was built on them) from the store and re-sync
        them from peers. Finality is held at the newest verified block of the stored finalized
        chain, and the stored finalized head is the target: until the chain holds it again this
        node authors and signs nothing (`is_recovering`), so it cannot build a fork below what it
        had finalized."""
        first = min(done.bad, key=lambda b: b.number)
        if not self.relay_peers:
            raise CorruptRecord(store.path, first.table, first.key,
                                first.problem + "; no relay peer to re-sync from")
        low, high = done.span
        store.drop_relay_blocks(done.dropped)
        for bad in done.bad:
            self.log_warning("corrupted store record", store=store.path, table=bad.table,
                             key=bad.key, error=bad.problem)
        self.log_warning(f"re-syncing #{low}..#{high} from peers after corrupted record "
                         f"{first.key}", store=store.path, table=first.table,
                         records=len(done.dropped))
        if finalized is None:
            return
        if finalized.hash in self.chain:
            self.chain.restore_finalized(finalized.hash)
            return
        held = done.verified_ancestor(self.chain, finalized.hash)
        if held is not None:
            self.chain.restore_finalized(held)
        self._recovering = finalized
        self.log_warning(f"finalized head #{finalized.number} is in the corrupted range: finality "
                         f"held at #{self.chain.finalized.number} until it is re-synced",
                         finalized="0x" + finalized.hash.hex())

    def _check_recovered(self) -> None:
        """The stored finalized head lost to a corrupted record is back: finality returns to it
        (or, if votes took it further meanwhile, must contain it)."""
        target = self._recovering
        if target is None or target.hash not in self.chain:
            return
        finalized = self.chain.finalized
        if finalized.number < target.number:
            recovered = self.chain.restore_finalized(target.hash)
        else:
            recovered = self._ancestor_at(finalized.hash(), target.number) == target.hash
        if not recovered:
            self.chain_disagreements += 1
            if self.log is not None:
                self.log.error("the re-synced chain is not the one this node had finalized",
                               node=self.name, number=target.number,
                               stored="0x" + target.hash.hex(),
                               finalized="0x" + finalized.hash().hex())
            return  # stays recovering: a loud error, never a fork of our own finality
        self._recovering = None
        self._last_finalized = target.hash
        self.log_warning(f"finalized head #{target.number} re-synced; finalized "
                         f"#{self.chain.finalized.number}", finalized="0x" + target.hash.hex())

    def _ancestor_at(self, h: bytes, number: int) -> bytes | None:
        header = self.chain.header(h)
        while header is not None and header.number > number:
            header = self.chain.header(header.parent_hash)
        return header.hash() if header is not None and header.number == number else None

    def _persist(self, hashes: list[bytes]) -> None:
        if self.store is None:
            return
        for h in hashes:
            block, header = self.chain.blocks.get(h), self.chain.header(h)
            if block is not None and header is not None:
                self.store.put_relay_block(h, header.number, header.parent_hash, encode(block))
        # The chain may already hold blocks imported after this batch was queued (two gossiped
        # blocks before this task ran): a head naming one of them waits for its own batch, as
        # the store refuses a head it does not hold.
        best = self.chain.best_hash
        if self.chain.best.number > 0 and self.store.relay_block_number(best) is not None:
            self.store.set_best(best)
        finalized = self.chain.finalized
        if finalized.hash() == self._last_finalized or finalized.number == 0 \
                or self.store.relay_block_number(finalized.hash()) is None:
            return
        if self._recovering is not None:
            return  # the store's finalized head is ahead of ours until it is re-synced
        self.store.set_finalized(finalized.hash(), finalized.number)
        # The store holds every body persisted above: memory keeps the recent ones only.
        self.chain.forget_bodies_below(finalized.number - BODIES_KEEP_BELOW_FINALIZED)
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
            nursery.start_soon(self._sync_loop)
            await self.start_roles(nursery)
            task_status.started()

    async def start_roles(self, nursery: trio.Nursery) -> None:
        """Hook for validators: their extra tasks."""

    async def _keep_connected(self) -> None:
        """Dial the relay peers we lack, now, once per slot (peers restart, links heal) and when
        discovery finds one (at start-up, a slot's wait would leave a validator without its
        group, and the collators without their validators, for that slot). Only the lower
        identity of a pair dials: two nodes dialling each other at the same instant would each
        refuse the other's connection (one per peer) and end up with none."""
        while True:
            for peer in sorted(p for p in self.relay_peers if self.dials(p)):
                if not self.net.peers.is_connected(peer):
                    await self.net.peers.connect(peer)
            with trio.move_on_after(self.slot_s):
                await self._dial_now.wait()
            self._dial_now = trio.Event()

    # -- block import -------------------------------------------------------------------------

    def _validate_block(self, source: PeerId | None, data: bytes) -> Verdict:
        # Simulated nodes share the decoded block (it is immutable), so a long run keeps each
        # block's objects once per process rather than once per node.
        block = decode_shared(data, RelayBlock)
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
                self._note_claim(source, block.header)
            return IGNORE
        if outcome.duplicate:
            return IGNORE
        self._log_imported(outcome.imported, source)
        self._queue_imported(outcome.imported)
        return ACCEPT

    def _log_imported(self, hashes: list[bytes], peer: PeerId | None, how: str = "gossip"
                      ) -> None:
        """One line per block a peer gave us, one per batch while catching up."""
        if self.log is None or not hashes:
            return
        first, last = self.chain.header(hashes[0]), self.chain.header(hashes[-1])
        if first is None or last is None:
            return
        origin = "0x" + peer.hex()[:16] if peer is not None else "own"
        if len(hashes) == 1:
            self.log.info("block imported", node=self.name, number=first.number,
                          hash="0x" + hashes[0].hex()[:16], peer=origin, via=how)
        else:
            self.log.info("blocks imported", node=self.name, first=first.number,
                          last=last.number, count=len(hashes), hash="0x" + hashes[-1].hex()[:16],
                          peer=origin, via=how)

    # -- catch-up -----------------------------------------------------------------------------

    def peer_connected(self, peer: PeerId) -> None:
        if peer in self.relay_peers and self._nursery is not None:
            self._nursery.start_soon(self._send_status, peer)

    def peer_disconnected(self, peer: PeerId) -> None:
        self._claims.pop(peer, None)
        self._status_sent.discard(peer)
        self._status_heard.discard(peer)

    def chain_status(self) -> ChainStatus:
        finalized = self.chain.finalized
        return ChainStatus(self.chain.best, finalized.number, finalized.hash())

    async def _send_status(self, peer: PeerId) -> None:
        if peer not in self._status_sent:
            self._status_sent.add(peer)
            await self.net.send_direct(peer, self.chain_status())

    async def _on_status(self, peer: PeerId, msg: ChainStatus) -> None:
        if msg.finalized_number > msg.best.number:
            self.net.peers.report(peer, COST_MINOR)
            return
        if msg.best.number > 0 and not self._sealed(msg.best):
            self.net.peers.report(peer, COST_INVALID_SIGNATURE)
            return
        # Kept whoever sent it: a relay node that dialled us is known as one only once discovery
        # says so, after its status came (its status would not be sent again).
        self._status_heard.add(peer)
        self._check_agreement(peer, msg.finalized_number, msg.finalized_hash)
        self._note_claim(peer, msg.best)
        await self._send_status(peer)  # a peer that learnt of us before we learnt of it

    def _sealed(self, header: RelayHeader) -> bool:
        validators = self.chain.tree.validators
        return header.author < len(validators) and header.seal_valid(validators[header.author])

    def _note_claim(self, peer: PeerId, header: RelayHeader) -> None:
        """`peer` has `header`'s block. Above our best and sealed by a validator, it is a sync
        target (a peer cannot make us think we are behind without a validator's signature)."""
        h = header.hash()
        if header.number <= self.chain.best.number or h in self.chain:
            return
        held = self._claims.get(peer)
        if held is not None and held[0] >= header.number:
            return
        if not self._sealed(header):
            self.net.peers.report(peer, COST_INVALID_SIGNATURE)
            return
        self._claims[peer] = (header.number, h)
        self._sync_wakeup.set()

    def _check_agreement(self, peer: PeerId, number: int, finalized_hash: bytes) -> None:
        """The peer's finalized block against our block at that height on our best chain."""
        ours = self.chain.tree.block_at(number, self.chain.best_hash)
        if ours is not None and ours != finalized_hash:
            self._disagree(peer, number, ours, finalized_hash)

    def _disagree(self, peer: PeerId, number: int, ours: bytes, theirs: bytes) -> None:
        """Loud: below our finality this node can never follow that peer; above it, our best
        chain is a fork the peer has finalized against (catch-up will leave it)."""
        self.chain_disagreements += 1
        final = number <= self.chain.finalized.number
        event = ("our finalized chain disagrees with a peer's chain" if final
                 else "our best chain disagrees with a peer's finalized block")
        if self.log is not None:
            self.log.error(event, node=self.name, number=number, ours="0x" + ours.hex(),
                           theirs="0x" + theirs.hex(), peer="0x" + peer.hex()[:16])

    async def _sync_loop(self) -> None:
        """One catch-up at a time, always toward the highest claim."""
        while True:
            await self._sync_wakeup.wait()
            self._sync_wakeup = trio.Event()
            while self.best_seen > self.chain.best.number:
                peer, (number, target) = max(self._claims.items(), key=lambda c: (c[1][0], c[0]))
                try:
                    await self._sync_toward(peer, target, number)
                except Exception as exc:  # what the peer sent broke something: not the node
                    self.net.peers.handler_failed("response", "blocks", peer, exc)
                if target not in self.chain and self._claims.get(peer) == (number, target):
                    del self._claims[peer]  # it could not show us what it claimed

    async def _sync_toward(self, peer: PeerId, target: bytes, number: int) -> None:
        """Fetch and import `target`'s chain from `peer`, from our best block upwards; while a
        batch does not connect, step back (doubling) toward our finalized block."""
        step = 0
        cursor = min(self.chain.best.number, number - 1) + 1
        while target not in self.chain:
            try:
                raw = await self.net.request(peer, Kind.BLOCKS,
                                             BlockRequest(target, cursor, SYNC_BATCH))
                blocks = decode(raw, BlockResponse).blocks
            except (RequestError, DecodeError):
                return
            if not blocks or blocks[0].header.number != cursor:
                self.net.peers.report(peer, COST_MINOR)  # not what we asked for
                return
            first = blocks[0].header
            if first.parent_hash not in self.chain:
                floor = self.chain.finalized.number + 1
                if cursor <= floor:
                    ours = self.chain.tree.block_at(cursor - 1, self.chain.best_hash)
                    self._disagree(peer, cursor - 1, ours or bytes(32), first.parent_hash)
                    return
                step = max(2 * step, SYNC_BATCH)
                cursor = max(floor, cursor - step)
                continue
            if not self._import_batch(peer, blocks):
                return
            cursor = blocks[-1].header.number + 1
            await trio.sleep(0)  # a long catch-up does not starve the node's other tasks

    def _import_batch(self, peer: PeerId, blocks: list[RelayBlock]) -> bool:
        imported: list[bytes] = []
        try:
            for block in blocks:
                outcome = self.chain.import_block(block)
                if outcome.missing_parent is not None:
                    self.net.peers.report(peer, COST_MAJOR)  # a batch with a gap in it
                    return False
                imported += outcome.imported
        except BlockTreeError:
            return False  # below or off our finality: stale, not malicious
        except ANY_IMPORT_ERROR as exc:
            self.bad_blocks += 1
            self.log_event("synced block rejected", number=block.header.number, error=str(exc))
            self.net.peers.report(peer, COST_MAJOR)
            return False
        finally:
            if imported:
                self._log_imported(imported, peer, "sync")
                self._imported_send.send_nowait(imported)
        return True

    def block_body(self, block_hash: bytes) -> RelayBlock | None:
        """A block of the chain, from memory or, once dropped from it (`_persist`), from the
        store; None for genesis, an unknown block or a damaged row."""
        block = self.chain.blocks.get(block_hash)
        if block is not None or self.store is None:
            return block
        raw = self.store.relay_block(block_hash)
        if raw is None:
            return None
        try:
            return decode_shared(raw, RelayBlock)
        except DecodeError:
            return None

    async def _serve_blocks(self, _peer: PeerId, payload: bytes) -> bytes | None:
        request = decode(payload, BlockRequest)
        if request.head not in self.chain:
            return None
        blocks = []
        for header in self.chain.headers_from(request.head, request.from_number,
                                              request.max_blocks):
            block = self.block_body(header.hash())
            if block is None:
                break
            blocks.append(block)
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
            self._check_recovered()
            self._persist(hashes)
            self._observe_candidates(hashes)
            best = self.chain.best_hash
            if best != self._last_best:
                self._last_best = best
                await self.on_new_best(self.chain.best)

    def _observe_candidates(self, hashes: list[bytes]) -> None:
        """The candidate events of the blocks just imported onto the best chain, as metrics:
        backing latency (relay parent to the block that backed it) and inclusion latency (that
        block to the one that included it), in seconds of slot; inclusions per para."""
        best = self.chain.best_hash
        for h in hashes:
            header = self.chain.header(h)
            if header is None or self.chain.tree.block_at(header.number, best) != h:
                continue
            for event in self.chain.events.get(h, ()):
                if event.kind is EventKind.BACKED:
                    self.metrics.backing_latency.observe(
                        (event.backed_in_number - event.relay_parent_number) * self.slot_s)
                elif event.kind is EventKind.INCLUDED:
                    self.metrics.inclusion_latency.observe(
                        (header.number - event.backed_in_number) * self.slot_s)
                    self.metrics.candidates_included.labels(str(event.para_id)).inc()

    async def on_imported(self, hashes: list[bytes]) -> None:
        """Hook: blocks just added to the chain, in import order."""

    async def on_new_best(self, header: RelayHeader) -> None:
        state = self.chain.state(header.hash())
        if state is not None:
            self.net.gossip.set_session(state.validators, self._genesis_hash,
                                        state.session_index)
        for watcher in list(self._head_watchers):
            try:
                watcher.send_nowait(header)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._head_watchers.remove(watcher)

    def notify_imported(self, hashes: list[bytes]) -> None:
        """Blocks this node added itself (authored)."""
        self._queue_imported(hashes)

    def _queue_imported(self, hashes: list[bytes]) -> None:
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

    def log_warning(self, event: str, **kw: Any) -> None:
        if self.log is not None:
            self.log.warning(event, node=self.name, **kw)

    def log_error(self, event: str, **kw: Any) -> None:
        if self.log is not None:
            self.log.error(event, node=self.name, **kw)
