"""Availability on a validator: every candidate occupying a core at a new leaf has its erasure
chunks spread so that any third of the validators can recover it. Each validator fetches its own
chunk (with its merkle proof against the candidate's erasure root) from the candidate's backers,
who hold all chunks since they validated the PoV; a fixed delay into the block (a quarter of the
slot, polkadot's 1.5 s at 6 s) later it signs one bit per core for that leaf and sends it to the
next two block authors (round robin: known in advance), who count these bitfields toward the
availability supermajority. Nobody else uses them, so nobody else gets them.

A fetch does not end with the bitfield it was started for: it goes on, round after round of the
backers, until the chunk is held or no leaf has the candidate pending any more (included, or
timed out). A validator that could not reach the backers in one block's quarter slot (a backing
group just back from a partition, its links not yet up again) then has the chunk whenever in
the slot they answer, for the next block's bitfield, instead of trying again only in the first
quarter of each slot.

A backer also keeps the whole `AvailableData` of what it backed, and answers approval checkers
and dispute participants who ask for it (`Kind.AVAILABLE_DATA`): for a small PoV one request to
a backer replaces a third of the chunks (`recovery.py`, which checks it against the erasure root).
"""

from __future__ import annotations

import trio

from proto.availability import ErasureChunk, chunk_valid
from proto.candidate import AvailableData
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.messages import (
    AvailableDataRequest,
    AvailableDataResponse,
    BitfieldMessage,
    ChunkRequest,
    ChunkResponse,
)
from proto.network import (
    ACCEPT,
    COST_INVALID_SIGNATURE,
    COST_MAJOR,
    IGNORE,
    Kind,
    PeerId,
    RequestError,
    Topic,
    Verdict,
    deliver_nothing,
    reject,
)
from proto.relay_block import RelayHeader
from proto.statements import SignedAvailabilityBitfield, SigningContext
from relay.core import runtime as rt
from relay.core.events import EventKind
from relay.core.horizons import availability_horizon
from relay.core.provisioner import availability_bits
from relay.service.signed_records import BITFIELD
from relay.service.validator_context import ValidatorContext


class Availability:
    def __init__(self, v: ValidatorContext) -> None:
        self.v = v
        self.own: dict[bytes, ErasureChunk] = {}  # candidate -> our chunk
        self.all: dict[bytes, list[ErasureChunk]] = {}  # candidates we backed -> every chunk
        self.available: dict[bytes, AvailableData] = {}  # candidates we backed -> their data
        self.relay_parent_of: dict[bytes, bytes] = {}  # candidate -> its relay parent
        self.bitfields: dict[bytes, dict[int, SignedAvailabilityBitfield]] = {}  # by leaf
        self.fetching: set[bytes] = set()
        self.signed = 0  # bitfields this validator signed
        self._nursery: trio.Nursery | None = None
        v.net.serve(Kind.CHUNK, self._serve_chunk)
        v.net.serve(Kind.AVAILABLE_DATA, self._serve_available_data)
        v.net.gossip.subscribe(Topic.BITFIELD, self._validate_bitfield, deliver_nothing)

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def store_all(self, candidate_hash: bytes, relay_parent: bytes, data: AvailableData,
                  chunks: list[ErasureChunk]) -> None:
        """A candidate we backed: its data and every chunk made from it."""
        self.all[candidate_hash] = chunks
        self.available[candidate_hash] = data
        self.own[candidate_hash] = chunks[self.v.index]
        self.relay_parent_of[candidate_hash] = relay_parent

    def bitfields_for(self, leaf: bytes) -> list[SignedAvailabilityBitfield]:
        return [bf for _, bf in sorted(self.bitfields.get(leaf, {}).items())]

    def on_leaf(self, header: RelayHeader) -> None:
        h = header.hash()
        state = self.v.chain.state(h)
        if state is None or self._nursery is None or self.v.is_history(header.number) \
                or header.number < self.v.chain.best.number:
            return  # history being caught up, or a leaf already passed: nothing to sign for it
        for _para, pending in sorted(state.inclusion.pending.items()):
            for p in pending:
                if p.hash in self.own or p.hash in self.fetching:
                    continue
                group = state.scheduler.groups[p.backing_group]
                backers = [group[i] for i, backed in enumerate(p.backers) if backed]
                self.fetching.add(p.hash)
                self._nursery.start_soon(self._fetch_chunk, p.hash, p.descriptor.erasure_root,
                                         p.descriptor.relay_parent, backers)
        self._nursery.start_soon(self._sign_later, header)
        self._prune()

    async def _fetch_chunk(self, candidate_hash: bytes, erasure_root: bytes, relay_parent: bytes,
                           backers: list[int]) -> None:
        """Ask the backers in turn, round after round, until our chunk is held or the candidate
        is pending at no leaf (see the module docstring). Rounds start a sixtieth of a slot
        apart, backing off to a twelfth while nobody answers."""
        n = len(self.v.validators)
        others = [b for b in backers if b != self.v.index]
        pause = self.v.slot_s / 60
        try:
            while others:
                for backer in others:
                    try:
                        raw = await self.v.net.request(self.v.peer_of(backer), Kind.CHUNK,
                                                       ChunkRequest(candidate_hash, self.v.index))
                        chunk = decode(raw, ChunkResponse).chunk
                    except (RequestError, DecodeError):
                        continue
                    if chunk is None:
                        continue
                    if chunk.index != self.v.index or not chunk_valid(erasure_root, chunk, n):
                        self.v.net.peers.report(self.v.peer_of(backer), COST_MAJOR)
                        continue
                    self.own[candidate_hash] = chunk
                    self.relay_parent_of[candidate_hash] = relay_parent
                    return
                await trio.sleep(pause)
                pause = min(2 * pause, self.v.slot_s / 12)
                if candidate_hash not in self.pending_at_leaves():
                    return  # included or timed out: nobody counts its bit any more
        finally:
            self.fetching.discard(candidate_hash)

    async def _sign_later(self, header: RelayHeader) -> None:
        await trio.sleep(self.v.slot_s / 4)
        h = header.hash()
        state = self.v.chain.state(h)
        if state is None or self.v.is_history(header.number):
            return
        bits = availability_bits(state, self.own.__contains__)
        ctx = SigningContext(rt.session_index_for_child(state), h)
        signed = SignedAvailabilityBitfield.sign(self.v.key, bits, ctx, self.v.index)
        raw = self.v.sign_once(BITFIELD, h, encode(signed), header.number)
        if raw is None:
            return
        signed = decode(raw, SignedAvailabilityBitfield)
        self.bitfields.setdefault(h, {})[self.v.index] = signed
        self.v.metrics.bitfields_signed.inc()
        self.signed += 1
        # Only a block author puts bitfields to use: the next ones get it, nobody else.
        await self.v.net.gossip.send_to(Topic.BITFIELD, encode(BitfieldMessage(h, signed)),
                                        self.v.upcoming_authors())

    async def offer_again(self) -> None:
        """Our bitfield for the best block, to the authors of the next slots again: called when a
        slot went by without a block, so the authors it first went to may be down or cut off and
        the next author on the chain would otherwise build without it."""
        h = self.v.chain.best_hash
        own = self.bitfields.get(h, {}).get(self.v.index)
        if own is not None:
            await self.v.net.gossip.send_to(Topic.BITFIELD, encode(BitfieldMessage(h, own)),
                                            self.v.upcoming_authors())

    def _validate_bitfield(self, source: PeerId | None, data: bytes) -> Verdict:
        msg = decode(data, BitfieldMessage)
        state = self.v.chain.state(msg.relay_parent)
        if state is None:
            return IGNORE  # not (yet) in our view
        bf = msg.bitfield
        # Cheap checks before the signature (testing.md item 17).
        if bf.validator_index >= len(self.v.validators):
            return reject(COST_MAJOR)
        if len(bf.bits) != state.scheduler.n_cores:
            return reject(COST_MAJOR)
        held = self.bitfields.setdefault(msg.relay_parent, {})
        if bf.validator_index in held:
            return IGNORE
        ctx = SigningContext(rt.session_index_for_child(state), msg.relay_parent)
        if not bf.check(self.v.validators[bf.validator_index], ctx):
            return reject(COST_INVALID_SIGNATURE)
        held[bf.validator_index] = bf
        # The upcoming authors pass it on to each other once: a second path to each of them, so
        # one lost frame does not cost the block a bitfield.
        if self._nursery is not None:
            self._nursery.start_soon(self._pass_on, data, source)
        return ACCEPT

    async def _pass_on(self, data: bytes, source: PeerId | None) -> None:
        await self.v.net.gossip.send_to(Topic.BITFIELD, data,
                                        [p for p in self.v.upcoming_authors() if p != source])

    async def _serve_chunk(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, ChunkRequest)
        chunks = self.all.get(req.candidate_hash)
        if chunks is not None and 0 <= req.index < len(chunks):
            return encode(ChunkResponse(chunks[req.index]))
        # Every validator serves the chunk it holds itself: what recovery (`recovery.py`) asks.
        own = self.own.get(req.candidate_hash)
        if own is not None and own.index == req.index:
            return encode(ChunkResponse(own))
        return encode(ChunkResponse(None))

    async def _serve_available_data(self, _peer: PeerId, payload: bytes) -> bytes | None:
        req = decode(payload, AvailableDataRequest)
        return encode(AvailableDataResponse(self.available.get(req.candidate_hash)))

    def pending_at_leaves(self) -> set[bytes]:
        """Candidates pending availability at any leaf of our chain: their chunks are still
        wanted however old their relay parent (a candidate times out only at a group rotation,
        so one whose backers were cut off waits there until they are back)."""
        out: set[bytes] = set()
        for leaf in self.v.chain.tree.leaves():
            state = self.v.chain.state(leaf)
            if state is not None:
                out.update(p.hash for pending in state.inclusion.pending.values()
                           for p in pending)
        return out

    def included_unfinalized(self) -> set[bytes]:
        """Candidates included in a block above finality: approval checkers (and dispute
        participants) still rebuild them from these chunks, however old their relay parent."""
        chain = self.v.chain
        final = chain.finalized.number
        out: set[bytes] = set()
        walked: set[bytes] = set()
        for leaf in chain.tree.leaves():  # down from each leaf: the tree keeps all history
            h = leaf
            while h not in walked and (header := chain.header(h)) is not None \
                    and header.number > final:
                walked.add(h)
                out.update(e.candidate_hash for e in chain.events.get(h, ())
                           if e.kind is EventKind.INCLUDED)
                h = header.parent_hash
        return out

    def _prune(self) -> None:
        """Chunks of candidates no leaf has pending any more and no unfinalized block included,
        and bitfields, are of no further use once their relay parent is well below finality.
        A candidate whose backers were cut off is included long after its relay parent: pruned
        by relay parent alone, its chunks went the moment it was included, and its approval
        checkers never rebuilt it (finality stopped for good after a backing group's
        partition, issue 15)."""
        keep_from = (self.v.chain.finalized.number
                     - availability_horizon(self.v.chain.config))
        wanted = self.pending_at_leaves() | self.included_unfinalized()
        for c in [c for c, rp in self.relay_parent_of.items() if c not in wanted and (
                  (hd := self.v.chain.header(rp)) is None or hd.number < keep_from)]:
            self.own.pop(c, None)
            self.all.pop(c, None)
            self.available.pop(c, None)
            del self.relay_parent_of[c]
        for leaf in [leaf for leaf in self.bitfields
                     if (hd := self.v.chain.header(leaf)) is None or hd.number < keep_from]:
            del self.bitfields[leaf]
