"""The collator: keeps its parachain's chain and transaction pool, and at every new relay block
its relay node reports builds on the best unincluded parent (as many blocks as its cores at the
front of the claim queue and the runtime's unincluded segment allow), advertises each collation
to the backing group of its core, and serves it to the validators that fetch it.

The relay node is reached through a `RelayChainInterface` (in-process here, RPC over TCP): the
collator never reads relay state it was not given.

Several collators of one para take turns by relay slot (Aura on the parachain) and announce their
blocks to each other. The simulator gives each its place in a fixed list (`author_index`). Real
processes start and stop on their own, so with no index the turn goes round the sorted identities
of this collator and the para peers it currently knows: given ones, those added at run time
(`add_para_peer`: a collator reached through `--para-bootnodes`) and any peer that says hello or
announces a valid block of this para; a peer leaves the round when its connection goes. A
collator says hello (`ParaCollatorHello`) to each para peer that has not heard from it as soon
as it knows the peer, so both count the same round before its first turn; one that had to say
it while handling a relay block (the link was down when it learnt the peer) does not build in
that slot, where the peer, not counting it yet, may have built too. Anyone connected can join a
learnt round this way; a chain spec that lists the para's collators fixes the round instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from collator.core.collation import Collation, spent_collations
from collator.core.collator_chain import CollatorChain
from collator.core.para_import import import_para_block
from collator.core.para_runtime import ParaBlock, read_int
from collator.core.parachain_system import load_segment
from collator.core.storage_keys import CAPACITY_KEY
from collator.core.tx_pool import TxPool, saturated_pool
from collator.core.validation import InvalidBlock
from proto.candidate import head_hash
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.keys import Keypair
from proto.messages import (
    FRAME_MAX,
    MAX_PARA_ANCESTORS,
    AdvertiseCollation,
    CollationResponse,
    CollationSeconded,
    Declare,
    FetchCollation,
    FetchParaBlock,
    ParaBlockAnnounce,
    ParaBlockResponse,
    ParaCollatorHello,
)
from proto.messages import Protocol as WireProtocol
from proto.network import COST_MAJOR, COST_UNEXPECTED_MESSAGE, Kind, PeerId, RequestError
from proto.ports import Metrics, Network, ParaStore
from proto.relay_block import RelayHeader
from relay.core.collator_api import CollationContext

# Adverts repeated by sixths of a slot for a whole slot (was half): a collation stays fetchable
# while its relay parent is in the allowed ancestry, and a collator that built before its links
# to the backing group were up (at start-up: discovery still under way) gets it seconded once
# they are, not never.
READVERTISE_ATTEMPTS = 6
MAX_PARA_SYNC = 512  # para blocks fetched per sync call; a longer gap is closed over several
# A para block response fills its frame with ancestors up to this much short of the frame cap
# (the block itself goes first; the rest is the envelope's own bytes).
RESPONSE_MARGIN = 4096
MAX_PARA_BACKLOG = 4096  # fetched blocks kept while their ancestors are still being fetched
# A validator a relay block behind this collator still sees the previous allowed ancestry and
# may fetch from its oldest relay parent: built collations are kept that one block longer.
VIEW_SKEW_BLOCKS = 1
MAX_BUILT = 256  # built collations kept at most, whatever the relay node reports
# Post-states kept below the included block (Substrate keeps 256 by default): a relay fork the
# chain abandons may move the included head back, never this far without finality stopping.
PARA_STATES_KEPT = 256


class RelayChainInterface(Protocol):
    def watch_heads(self, buffer: int = 16) -> trio.MemoryReceiveChannel[RelayHeader]: ...

    async def collation_context(self, para_id: int, leaf: bytes, max_cores: int = 0
                                ) -> CollationContext | None: ...


@dataclass
class LoadConfig:
    saturate: bool = True
    tx_rate: float = 0.0  # transactions per second when not saturating


@dataclass
class CollatorStats:
    built: int = 0
    advertised: int = 0
    seconded: int = 0
    served: int = 0
    tx_counts: dict[bytes, int] = field(default_factory=dict)  # candidate -> transactions
    max_segment: int = 0  # longest unincluded segment any built block carried
    problems: list[str] = field(default_factory=list)  # invariant violations seen here


class CollatorService:
    role = "collator"

    def __init__(self, name: str, key: Keypair, para_id: int, net: Network, metrics: Metrics,
                 chain: CollatorChain, relay: RelayChainInterface, slot_ms: int, *,
                 load: LoadConfig | None = None, blocks_per_relay_parent: int = 0,
                 para_peers: Sequence[PeerId] = (), author_index: int | None = None,
                 log: Any = None,
                 store: ParaStore | None = None) -> None:
        self.name = name
        self.key = key
        self.para_id = para_id
        self.chain = chain
        self.relay = relay
        self.slot_s = slot_ms / 1000
        self.net = net
        self.net.gossip.fan_out_to = lambda _peer: False  # a collator relays no relay gossip
        self.net.serve(Kind.COLLATION, self._serve_collation)
        self.net.on_direct(CollationSeconded, self._on_seconded)
        self.net.on_direct(ParaBlockAnnounce, self._on_para_block)
        self.net.on_direct(ParaCollatorHello, self._on_hello)
        self.net.serve(Kind.PARA_BLOCK, self._serve_para_block)
        # The other collators of this para; para slots go round all of us by relay slot
        # (Aura on the parachain), and each block is announced to the others.
        self.para_peers = [p for p in para_peers if p != key.public]
        self.author_index = author_index  # None: the round is learnt (see the module doc)
        # Learnt round: para peers that count us (they spoke to us first, or we said hello).
        self._counted_by: set[PeerId] = set()
        # Bodies of non-genesis blocks, for peers: the recent ones only when a store holds the
        # rest (`_prune_history`).
        self.blocks: dict[bytes, ParaBlock] = {}
        # Blocks fetched from para peers whose ancestors are still missing: a collator that
        # joins a para far from genesis closes the gap MAX_PARA_SYNC blocks per relay block,
        # MAX_PARA_ANCESTORS + 1 a request.
        self._backlog: dict[bytes, ParaBlock] = {}
        self.store = store
        if store is not None:
            self._restore(store)
        self.net.peers.add_listener(self)
        self.load = load or LoadConfig()
        self.pool = TxPool(capacity=1_000_000)
        self.blocks_per_relay_parent = blocks_per_relay_parent
        self.log = log
        self.metrics = metrics
        self.stats = CollatorStats()
        self.built: dict[bytes, Collation] = {}
        self._declared: set[PeerId] = set()
        self._seconded: dict[bytes, set[PeerId]] = {}  # candidate -> validators that seconded
        self._nursery: trio.Nursery | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        heads = self.relay.watch_heads()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.net.run)
            self._nursery = nursery
            if not self.load.saturate and self.load.tx_rate > 0:
                nursery.start_soon(self._generate_load)
            task_status.started()
            async for header in heads:
                await self.on_relay_head(header)

    def peer_connected(self, peer: PeerId) -> None:
        pass

    def peer_disconnected(self, peer: PeerId) -> None:
        self._declared.discard(peer)
        self._counted_by.discard(peer)  # back, it may have restarted and forgotten us
        if self.author_index is None and peer in self.para_peers:
            self.para_peers.remove(peer)  # it announces again, or is dialled again, if it lives

    def add_para_peer(self, peer: PeerId) -> None:
        """Another collator of this para, to sync blocks from and take turns with."""
        if peer != self.key.public and peer not in self.para_peers:
            self.para_peers.append(peer)
        if peer not in self._counted_by and self._nursery is not None:
            self._nursery.start_soon(self._introduce)

    def is_my_slot(self, slot: int) -> bool:
        if self.author_index is not None:
            return slot % (len(self.para_peers) + 1) == self.author_index
        ring = sorted([self.key.public, *self.para_peers])
        return ring[slot % len(ring)] == self.key.public

    async def _generate_load(self) -> None:
        """`tx_rate` transfers per second, offered ten times a second."""
        owed = 0.0
        while True:
            await trio.sleep(0.1)
            owed += self.load.tx_rate * 0.1
            n = int(owed)
            owed -= n
            self.pool.generate_transfers(n)

    # -- building ---------------------------------------------------------------------------

    async def on_relay_head(self, header: RelayHeader) -> None:
        ctx = await self.relay.collation_context(self.para_id, header.hash(),
                                                 self.blocks_per_relay_parent)
        if ctx is None:
            return
        self._prune(ctx)
        if not ctx.target.cores:
            return
        self.chain.note_included(ctx.included_head)
        if self.store is not None and self.chain.included_hash in self.blocks:
            self.store.set_para_included(self.para_id, self.chain.included_hash)
        if self.chain.included_hash in self.chain.chain:
            included = self.chain.chain.header(self.chain.included_hash)
            self._prune_history(included.number - PARA_STATES_KEPT)
        await self._sync_to(blake2_256(ctx.included_head))
        for head in ctx.pending_heads:
            await self._sync_to(blake2_256(head))
        introduced = await self._introduce()
        if not self.is_my_slot(header.slot):
            return  # another collator's para slot
        if introduced:
            return  # a peer that just heard of us may have built in this slot: ours is next
        if self.chain.included_hash not in self.chain.chain:
            return  # the para moved on without us and no peer could fill the gap
        pending = set(ctx.pending_heads)
        pool = self.pool
        if self.load.saturate:
            parent = self.chain.best(pending, ctx.target.min_relay_parent_number,
                                     ctx.target.max_depth)
            pool = saturated_pool(self.chain.chain.state(parent), len(ctx.target.cores))
        built = self.chain.collate(ctx.target, pool, pending)
        if not self.load.saturate and self.chain.included_hash in self.chain.chain:
            self.pool.prune(self.chain.chain.state(self.chain.included_hash))
        for c in built:
            self.built[c.candidate_hash] = c
            self.stats.built += 1
            self.stats.tx_counts[c.candidate_hash] = len(c.block.extrinsics)
            self._check_segment(c)
            self.blocks[c.block.header.hash()] = c.block
            self._persist(c.block)
            self.metrics.collations_built.inc()
            backers = ctx.backers.get(c.receipt.descriptor.core_index, ())
            if self.log is not None:
                self.log.info("collation built", candidate="0x" + c.candidate_hash.hex(),
                              number=c.block.header.number,
                              hash="0x" + c.block.header.hash().hex()[:16],
                              relay_parent=c.pvd.relay_parent_number,
                              core=c.receipt.descriptor.core_index,
                              transactions=len(c.block.extrinsics), backers=len(backers))
            await self._advertise(c, backers)
        for c in built:
            announced = await self._announce(c.block)
            if self.log is not None and announced:
                self.log.info("para block announced", number=c.block.header.number,
                              hash="0x" + c.block.header.hash().hex()[:16], collators=announced)

    async def _advertise(self, c: Collation, backers: tuple[bytes, ...]) -> None:
        d = c.receipt.descriptor
        advert = AdvertiseCollation(d.relay_parent, c.candidate_hash, head_hash(c.pvd.parent_head))
        for peer in backers:
            await self._advertise_to(peer, advert, redeclare=False)
        if self._nursery is not None:
            self._nursery.start_soon(self._readvertise, advert, backers)

    async def _advertise_to(self, peer: PeerId, advert: AdvertiseCollation, redeclare: bool
                            ) -> None:
        if not await self.net.peers.connect(peer):
            return
        if peer not in self._declared or redeclare:
            if not await self.net.send_direct(peer, Declare.sign(self.key, self.para_id, peer)):
                return
            self._declared.add(peer)
        if await self.net.send_direct(peer, advert):
            self.stats.advertised += 1

    async def _readvertise(self, advert: AdvertiseCollation, backers: tuple[bytes, ...]) -> None:
        """Nothing acknowledges an advert but a Seconded; until one comes, say it again (with the
        Declare, in case that was what got lost) a few times within the slot."""
        for _ in range(READVERTISE_ATTEMPTS):
            await trio.sleep(self.slot_s / 6)
            if advert.candidate_hash not in self.built:
                return
            acked = self._seconded.get(advert.candidate_hash, set())
            for peer in backers:
                if peer not in acked:
                    await self._advertise_to(peer, advert, redeclare=True)

    def _check_segment(self, c: Collation) -> None:
        """testing.md: the unincluded segment never exceeds its capacity (the runtime refuses to
        build past it; this checks that it really did)."""
        segment, _ = load_segment(c.entries)
        capacity = read_int(c.entries, CAPACITY_KEY, 0)
        self.stats.max_segment = max(self.stats.max_segment, len(segment))
        if len(segment) > capacity:
            self.stats.problems.append(
                f"{self.name}: para block #{c.block.header.number} (candidate "
                f"0x{c.candidate_hash.hex()[:8]}) carries an unincluded segment of "
                f"{len(segment)} > capacity {capacity}")

    def _prune(self, ctx: CollationContext) -> None:
        """Forget the collations no validator will fetch any more (`spent_collations`): their
        relay parent left the allowed ancestry, or the para's included head has passed them."""
        included = blake2_256(ctx.included_head)
        included_number = (self.chain.chain.header(included).number
                           if included in self.chain.chain else None)
        for h in spent_collations(self.built,
                                  ctx.target.min_relay_parent_number - VIEW_SKEW_BLOCKS,
                                  included_number, MAX_BUILT):
            del self.built[h]
            self._seconded.pop(h, None)

    # -- persistence ----------------------------------------------------------------------

    def _restore(self, store: ParaStore) -> None:
        """Re-import the para blocks this collator had before it stopped, re-executing each (a
        stored block is not trusted blindly), so it resumes on its own unincluded segment and
        never builds a second block at a number it already built."""
        for rec in store.para_blocks(self.para_id):
            try:
                block = decode(rec.encoded_block, ParaBlock)
                if import_para_block(self.chain.chain, block):
                    self.blocks[block.header.hash()] = block
            except (DecodeError, InvalidBlock):
                continue
            # Stored blocks come in height order and the included one is a few below the
            # highest: what is this far below the newest is pruned as the replay goes.
            if rec.number % PARA_STATES_KEPT == 0:
                self._prune_history(rec.number - 2 * PARA_STATES_KEPT)
        included = store.para_included(self.para_id)
        if included is not None and included.hash in self.chain.chain:
            self.chain.included_hash = included.hash

    def _prune_history(self, keep_from: int) -> None:
        """Post-states below `keep_from` go; so do bodies, when the store holds them (they are
        read back from it for a peer that syncs, or an RPC caller): memory stays bounded
        however long the collator runs. Without a store (a simulation) bodies stay: a
        collator that joins late syncs the para from them."""
        if not self.chain.chain.prune(keep_from) or self.store is None:
            return
        for h in [h for h, b in self.blocks.items() if b.header.number < keep_from]:
            del self.blocks[h]

    def block_body(self, block_hash: bytes) -> ParaBlock | None:
        """A para block this collator built or imported, from memory or, once pruned from it,
        from the store."""
        block = self.blocks.get(block_hash)
        if block is not None or self.store is None:
            return block
        rec = self.store.para_block(self.para_id, block_hash)
        if rec is None:
            return None
        try:
            return decode(rec.encoded_block, ParaBlock)
        except DecodeError:
            return None  # a damaged row: as if absent (the block is re-fetched by who needs it)

    def _persist(self, block: ParaBlock) -> None:
        if self.store is None:
            return
        h = block.header
        self.store.put_para_block(self.para_id, h.number, h.hash(), h.parent_hash, encode(block),
                                  encode(self.chain.chain.state(h.hash())))

    # -- para block sync ------------------------------------------------------------------

    async def _announce(self, block: ParaBlock) -> int:
        """To the para's other collators; returns to how many it went."""
        msg = ParaBlockAnnounce(self.para_id, encode(block))
        sent = 0
        for peer in self.para_peers:
            if await self.net.peers.connect(peer) and await self.net.send_direct(peer, msg):
                sent += 1
        return sent

    async def _introduce(self) -> bool:
        """Say hello to the para peers of a learnt round that may not count us yet; whether
        any was told now."""
        if self.author_index is not None:
            return False
        told = []
        msg = ParaCollatorHello(self.para_id)
        for peer in [p for p in self.para_peers if p not in self._counted_by]:
            self._counted_by.add(peer)  # a concurrent call (a new peer, a relay block) skips it
            if await self.net.peers.connect(peer) and await self.net.send_direct(peer, msg):
                told.append(peer)
            else:
                self._counted_by.discard(peer)  # told at the next relay block, if it is back
        if told and self.log is not None:
            self.log.info("hello to para peers", peers=["0x" + p.hex()[:16] for p in told])
        return bool(told)

    async def _on_hello(self, peer: PeerId, msg: ParaCollatorHello) -> None:
        if msg.para_id != self.para_id or self.author_index is not None:
            self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)  # a fixed round admits no one
            return
        self._counted_by.add(peer)  # it found us: we are in its round
        self.add_para_peer(peer)
        if self.log is not None:
            self.log.info("para peer joined", peer="0x" + peer.hex()[:16])

    async def _on_para_block(self, peer: PeerId, msg: ParaBlockAnnounce) -> None:
        learns = self.author_index is None  # a fixed round admits no one else
        if msg.para_id != self.para_id or (peer not in self.para_peers and not learns):
            self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        block = decode(msg.block, ParaBlock)
        if peer not in self.para_peers and block.header.para_id != self.para_id:
            self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        self._counted_by.add(peer)  # it announces to us: we are in its round
        if peer not in self.para_peers:
            self.add_para_peer(peer)  # a bad block still costs it below
        if not self._import(peer, block) and self._nursery is not None:
            self._nursery.start_soon(self._sync_to, block.header.parent_hash, peer, block)

    def _import(self, peer: PeerId, block: ParaBlock) -> bool:
        try:
            known = import_para_block(self.chain.chain, block)
        except InvalidBlock:
            self.net.peers.report(peer, COST_MAJOR)
            if self.author_index is None and peer in self.para_peers:
                self.para_peers.remove(peer)  # no turn for a peer that sends bad blocks
            return True  # nothing more to do with it
        if known and block.header.hash() not in self.blocks:
            self.blocks[block.header.hash()] = block
            self._persist(block)
            if self.log is not None:
                self.log.info("para block imported", number=block.header.number,
                              hash="0x" + block.header.hash().hex()[:16],
                              peer="0x" + peer.hex()[:16])
        return known

    async def _sync_to(self, target: bytes, source: PeerId | None = None,
                       then: ParaBlock | None = None) -> None:
        """Fetch `target` and whatever ancestors of it we lack from our para peers, import them
        oldest first, then `then` (a block that was waiting for `target`). About MAX_PARA_SYNC
        blocks fetched per call, a run of them a request: what was fetched is kept, and the next
        call goes on from there."""
        path: list[ParaBlock] = []
        want = target
        peers = [source] if source is not None else []
        peers += [p for p in self.para_peers if p != source]
        fetches = 0
        while want not in self.chain.chain:
            if self.chain.chain.is_pruned(want):
                return  # below our pruning horizon: history, nothing to import onto it
            block = self._backlog.get(want)
            if block is None:
                if fetches >= MAX_PARA_SYNC:
                    return
                run = await self._fetch_para_blocks(want, peers)
                if not run:
                    return
                fetches += len(run)
                if len(self._backlog) + len(run) > MAX_PARA_BACKLOG:
                    self._backlog.clear()  # a gap this long is not closing: start over
                for b in run:
                    h = b.header.hash()
                    if h in self.chain.chain:
                        break  # the rest of the run we have already
                    self._backlog[h] = b
                block = run[0]
            path.append(block)
            want = block.header.parent_hash
        for block in [*reversed(path), *([then] if then is not None else [])]:
            self._backlog.pop(block.header.hash(), None)
            if not self._import(source or b"", block):
                return

    async def _fetch_para_blocks(self, block_hash: bytes, peers: list[PeerId]
                                 ) -> list[ParaBlock]:
        """The block `block_hash` and as many of its ancestors as the first peer that has it
        sends (each the parent of the one before, or the run ends there); empty if none has it."""
        for peer in peers:
            if not await self.net.peers.connect(peer):
                continue
            try:
                raw = await self.net.request(
                    peer, Kind.PARA_BLOCK,
                    FetchParaBlock(self.para_id, block_hash, MAX_PARA_ANCESTORS))
                response = decode(raw, ParaBlockResponse)
            except (RequestError, DecodeError):
                continue
            run: list[ParaBlock] = []
            want = block_hash
            for body in [response.block, *response.ancestors]:
                try:
                    block = decode(body, ParaBlock) if body is not None else None
                except DecodeError:
                    break
                if block is None or block.header.hash() != want:
                    break
                run.append(block)
                want = block.header.parent_hash
            if run:
                return run
        return []

    async def _serve_para_block(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, FetchParaBlock)
        block = self.block_body(req.block_hash) if req.para_id == self.para_id else None
        if block is None:
            return encode(ParaBlockResponse(None))
        first = encode(block)
        room = FRAME_MAX[WireProtocol.POV_RESPONSE] - RESPONSE_MARGIN - len(first)
        ancestors: list[bytes] = []
        parent = self.block_body(block.header.parent_hash)
        while parent is not None and len(ancestors) < min(req.ancestors, MAX_PARA_ANCESTORS):
            body = encode(parent)
            room -= len(body) + 8  # a blob's length prefix
            if room < 0:
                break
            ancestors.append(body)
            parent = self.block_body(parent.header.parent_hash)
        return encode(ParaBlockResponse(first, ancestors))

    # -- serving ----------------------------------------------------------------------------

    async def _serve_collation(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, FetchCollation)
        c = self.built.get(req.candidate_hash)
        if c is None or req.para_id != self.para_id \
                or c.receipt.descriptor.relay_parent != req.relay_parent:
            return None
        self.stats.served += 1
        return encode(CollationResponse(c.receipt.to_plain(), c.pov, c.pvd.parent_head))

    async def _on_seconded(self, peer: PeerId, msg: CollationSeconded) -> None:
        h = msg.statement.statement.candidate_hash
        if h in self.built:
            self.stats.seconded += 1
            if h not in self._seconded:
                self.metrics.collations_seconded.inc()
                if self.log is not None:
                    self.log.info("collation seconded", candidate="0x" + h.hex()[:16],
                                  number=self.built[h].block.header.number,
                                  validator="0x" + peer.hex()[:16])
            self._seconded.setdefault(h, set()).add(peer)


__all__ = ["CollatorService", "LoadConfig", "RelayChainInterface"]
