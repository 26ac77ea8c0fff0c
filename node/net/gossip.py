"""Gossip over a node's connections, routed per topic.

Each message travels as a `GossipEnvelope(topic, data, origin)` frame on the gossip lane. A node
handles a message once: the message's id (a hash of its topic and data, not of who sent it or
from where) goes into a bounded, expiring seen-cache before anything else, so network duplicates
and echoes cost nothing. The topic's validator then decides, in the spirit of consensus-specs'
ordered IGNORE/REJECT rules:
- ACCEPT: delivered to the local subscriber and passed on by the topic's route;
- IGNORE: dropped quietly (not yet useful, out of view), no cost, not forwarded;
- REJECT: dropped, not forwarded, and the source is charged the verdict's cost.
An envelope that does not decode raises `DecodeError` to the peer manager, which closes the link.
Any other exception out of a validator or a subscriber is a handler failure (`PeerManager.
handler_failed`: logged, counted, the source charged): the message is treated as rejected and the
node goes on.

Routes (`Route`, set per topic by the stack; a topic with none floods):
- FLOOD: the publisher sends to every gossip peer, a forwarder to `forward_fanout` of them picked
  by a hash of the message and the peer (about 5n frames a message on n nodes).
- GRID: among the session's validators the grid of `node/net/grid.py` (the originator to its row
  and column, a receiver along the other dimension: about 2n frames, two copies each), plus
  `grid_extra` other validators the originator picks by hash (they do not forward: redundancy
  against a lost frame or a dead neighbour, polkadot's random routing). A topic marked for relay
  nodes also goes from the originator to every connected gossip peer outside the grid, and those
  pass it on among themselves as FLOOD does. Without a grid, or from an originator outside it,
  the message floods.
- TARGETED: only to the peers the publisher names (`send_to`), never forwarded: what has a known
  audience (a backing group, the next block authors).

Batching (`TopicRoute.batched`, the GRID topics): what a node publishes or forwards on such a
topic waits up to `batch_window_s` in a per-peer outbox and goes out with everything else queued
for that peer as one frame: a `GossipEnvelope` of topic `BATCH_TOPIC` whose data is the list of
envelopes (polkadot's approval-distribution sends `Assignments(Vec<_>)`/`Approvals(Vec<_>)` the
same way). Every validator must see every assignment, approval and finality vote, so those
messages grow as n² a block whatever the route; batched, the frames a node sends are bounded by
its grid neighbours (about 2√n) per window, n·√n a block. The receiver handles each envelope of a
batch as if it had come alone; a batch inside a batch, or more than `MAX_BATCH` envelopes, does
not decode (the link is closed), and envelopes over the per-peer message budget are dropped and
charged like frames over a lane's budget. Latency-bound topics (blocks, statements, bitfields,
backed candidates) are never held back.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated

import msgspec
import trio

from node.net.grid import GridTopology, grid_seed
from node.net.lanes import Budget, TokenBucket
from node.net.peers import PeerManager
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.messages import FRAME_MAX, Protocol
from proto.network import COST_FLOOD, Action, PeerId
from proto.ports import GossipDeliver, GossipValidator
from proto.primitives import Struct

DEFAULT_SEEN_CAPACITY = 65_536
DEFAULT_SEEN_TTL_S = 600.0
DEFAULT_FORWARD_FANOUT = 4
DEFAULT_GRID_EXTRA = 2
BATCH_TOPIC = 65_535  # an envelope of this topic carries a batch of envelopes
MAX_BATCH = 1_024  # envelopes in one batch frame
MAX_OUTBOX = 4 * MAX_BATCH  # envelopes queued for one peer while its last flush is written
# Room for the batch's own envelope around its items, inside the gossip lane's frame cap.
_BATCH_BYTES = FRAME_MAX[Protocol.GOSSIP] - 64


class GossipEnvelope(Struct, frozen=True):
    topic: Annotated[int, msgspec.Meta(ge=0, le=65_535)]
    data: bytes
    # The publisher's peer id (what the grid routes by); empty from a publisher that gives none.
    origin: Annotated[bytes, msgspec.Meta(max_length=32)] = b""


_BatchItems = Annotated[list[GossipEnvelope], msgspec.Meta(max_length=MAX_BATCH)]


def _msgpack_array_header(n: int) -> bytes:
    # A batch is built from envelopes already encoded for their route: the list's msgpack
    # header is written by hand rather than decoding and re-encoding every item.
    if n < 16:
        return bytes([0x90 | n])
    return b"\xdc" + n.to_bytes(2, "big")


def batch_frames(bodies: list[bytes]) -> list[bytes]:
    """Encoded envelopes → gossip frames: one envelope alone as itself, more as `BATCH_TOPIC`
    envelopes of at most `MAX_BATCH` items and the lane's frame cap each."""
    frames: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for body in bodies:
        if chunk and (size + len(body) > _BATCH_BYTES or len(chunk) == MAX_BATCH):
            frames.append(_pack(chunk))
            chunk, size = [], 0
        chunk.append(body)
        size += len(body)
    if chunk:
        frames.append(_pack(chunk))
    return frames


def _pack(bodies: list[bytes]) -> bytes:
    if len(bodies) == 1:
        return bodies[0]
    data = _msgpack_array_header(len(bodies)) + b"".join(bodies)
    return encode(GossipEnvelope(BATCH_TOPIC, data))


class Route(Enum):
    FLOOD = "flood"
    GRID = "grid"
    TARGETED = "targeted"


@dataclass(frozen=True)
class TopicRoute:
    route: Route
    relay_nodes: bool = False  # GRID: relay nodes outside the grid want it too
    batched: bool = False  # may wait up to the batch window, to go out with others


_FLOOD = TopicRoute(Route.FLOOD)
_NO_MEMBERS: frozenset[PeerId] = frozenset()  # the grid's, without a grid


def message_id(topic: int, data: bytes) -> bytes:
    """What the seen-cache remembers: the same message by any path, from any forwarder."""
    return blake2_256(topic.to_bytes(2, "big") + data)


# source is None for a message this node publishes itself.


class SeenCache:
    """Message ids seen recently: at most `capacity`, each remembered for `ttl_s`."""

    def __init__(self, capacity: int = DEFAULT_SEEN_CAPACITY,
                 ttl_s: float = DEFAULT_SEEN_TTL_S) -> None:
        if capacity < 1 or ttl_s <= 0:
            raise ValueError("capacity and ttl must be positive")
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._expiry: OrderedDict[bytes, float] = OrderedDict()
        # When the oldest id expires (never later than that; inf when empty): half the ids
        # checked are duplicates, and a check that expires nothing need not look at the oldest.
        self._next_expiry = math.inf

    def _expire(self, now: float) -> None:
        # Ids go in in time order, so the oldest expire first.
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now and len(self._expiry) <= self.capacity:
                self._next_expiry = expires
                return
            del self._expiry[key]
        self._next_expiry = math.inf

    def check_and_add(self, key: bytes, now: float) -> bool:
        """True if `key` was already seen (and still remembered); records it otherwise."""
        expiry = self._expiry
        expires = expiry.get(key)
        if expires is not None:
            if expires > now:
                return True
            del expiry[key]  # expired: seen afresh
        expires = now + self.ttl_s
        if not expiry:
            self._next_expiry = expires
        expiry[key] = expires
        if self._next_expiry <= now or len(expiry) > self.capacity:
            self._expire(now)
        return False

    def __len__(self) -> int:
        return len(self._expiry)


@dataclass
class GossipStats:
    received: int = 0
    duplicates: int = 0
    accepted: int = 0
    ignored: int = 0
    rejected: int = 0
    unknown_topic: int = 0
    forwarded: int = 0
    batches: int = 0  # batch frames received
    over_budget: int = 0  # envelopes dropped over the per-peer message budget


@dataclass(frozen=True)
class _Topic:
    validate: GossipValidator
    deliver: GossipDeliver


class Gossip:
    def __init__(self, peers: PeerManager, protocol: int, *,
                 seen: SeenCache | None = None,
                 clock: Callable[[], float] | None = None,
                 fan_out_to: Callable[[PeerId], bool] | None = None,
                 forward_fanout: int = DEFAULT_FORWARD_FANOUT,
                 grid_extra: int = DEFAULT_GRID_EXTRA,
                 message_budget: Budget | None = None) -> None:
        self.peers = peers
        # Which connected peers take part in gossip (a relay node does not flood its collators).
        self.fan_out_to = fan_out_to or (lambda _peer: True)
        # FLOOD: a publisher sends to every peer; a forwarder to `forward_fanout` of them, picked
        # by a hash of the message and the peer: redundancy against loss without n² frames per
        # message (deterministic, so a seeded simulation stays a function of its seed).
        self.forward_fanout = forward_fanout
        self.grid_extra = grid_extra
        self.grid: GridTopology | None = None
        self._session: tuple[tuple[PeerId, ...], bytes, int] | None = None
        self.routes: dict[int, TopicRoute] = {}
        self.protocol = protocol
        self.seen = seen or SeenCache()
        self._clock = clock or peers.now
        self._topics: dict[int, _Topic] = {}
        self.topic_names: dict[int, str] = {}  # for logs (the stack knows its topics' names)
        self.stats = GossipStats()
        # Envelopes sent per topic name, whether alone or in a batch (what the frame counters
        # of the peer manager cannot tell apart).
        self.sent_messages: Counter[str] = Counter()
        # Batching: off until `run_batching` runs (a Gossip without it sends at once).
        self.batch_window_s = 0.0
        self._batching = False
        self._outbox: dict[PeerId, list[tuple[str, bytes]]] = {}
        self._flushing: set[PeerId] = set()  # peers a flush is still being written to
        self._outbox_ready = trio.Event()
        # Envelopes per peer, batched or not: a batch frame passes the lane's frame budget as
        # one frame, so what is inside it is budgeted here.
        self.message_budget = message_budget
        self._message_buckets: dict[PeerId, TokenBucket] = {}
        peers.register(protocol, self._on_frame)

    def subscribe(self, topic: int, validate: GossipValidator, deliver: GossipDeliver) -> None:
        if topic in self._topics:
            raise ValueError(f"topic {topic} already has a subscriber")
        self._topics[topic] = _Topic(validate, deliver)

    def set_route(self, topic: int, route: Route, *, relay_nodes: bool = False,
                  batched: bool = False) -> None:
        if topic == BATCH_TOPIC:
            raise ValueError("the batch topic carries other topics")
        self.routes[topic] = TopicRoute(route, relay_nodes, batched)

    def set_grid(self, grid: GridTopology | None) -> None:
        """The session's validator grid (None: GRID topics flood)."""
        self.grid = grid

    def set_session(self, validators: Sequence[PeerId], genesis_hash: bytes,
                    session_index: int) -> None:
        """Lay out the grid of a session's validators (a no-op for the session already laid out):
        every node of the network computes the same one from the same inputs."""
        key = (tuple(validators), genesis_hash, session_index)
        if key != self._session:
            self._session = key
            self.grid = GridTopology(validators, grid_seed(genesis_hash, session_index))

    def validators(self) -> dict[int, GossipValidator]:
        """Each subscribed topic's validator (what a property test feeds directly)."""
        return {t: sub.validate for t, sub in self._topics.items()}

    def topic_name(self, topic: int) -> str:
        return self.topic_names.get(topic, f"topic {topic}")

    async def publish(self, topic: int, data: bytes) -> int:
        """Send our own message by its topic's route; returns how many peers it went to. Our own
        message is marked seen, so echoes of it are dropped."""
        if self.routes.get(topic, _FLOOD).route is Route.TARGETED:
            raise ValueError(f"{self.topic_name(topic)} is sent to named peers (send_to)")
        me = self.peers.local_id
        body = encode(GossipEnvelope(topic, data, me))
        msg_id = message_id(topic, data)
        self.seen.check_and_add(msg_id, self._clock())
        return await self._send(topic, body, self._targets(topic, msg_id, me, source=None))

    async def send_to(self, topic: int, data: bytes, peers: Iterable[PeerId]) -> int:
        """Send our own message to `peers` alone (those connected); a TARGETED topic's receivers
        do not pass it on. Marked seen like a published message."""
        me = self.peers.local_id
        body = encode(GossipEnvelope(topic, data, me))
        self.seen.check_and_add(message_id(topic, data), self._clock())
        targets = sorted({p for p in peers if p != me and self.peers.is_connected(p)})
        return await self._send(topic, body, targets)

    async def _send(self, topic: int, body: bytes, targets: list[PeerId]) -> int:
        """`body` to each of `targets` (connected peers: what `_targets` and `send_to` give,
        with no wait since they looked)."""
        what = self.topic_name(topic)
        if self._batching and self.routes.get(topic, _FLOOD).batched:
            outboxes = self._outbox
            for peer in targets:
                outbox = outboxes.get(peer)
                if outbox is None:
                    outboxes[peer] = [(what, body)]
                    continue
                outbox.append((what, body))
                if len(outbox) > MAX_OUTBOX:  # a peer not reading: its oldest go
                    del outbox[0]
            queued = len(targets)
            self.sent_messages[what] += queued
            if queued:
                self._outbox_ready.set()
            return queued
        sent = 0
        for peer in targets:
            if await self.peers.send(peer, self.protocol, body, what):
                sent += 1
        self.sent_messages[what] += sent
        return sent

    async def run_batching(self, window_s: float, *,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                           ) -> None:
        """Send the batched topics' outboxes: `window_s` after the first envelope queued since
        the last flush, everything queued for each peer in as few frames as the cap allows.
        A peer whose link can stall (TCP) is sent to from a task of its own, and what is
        queued for it meanwhile waits for the next flush (at most `MAX_OUTBOX`, the oldest
        dropped): a peer that stops reading delays itself, not everybody's approvals and votes
        (the link is closed after the stall limit)."""
        if window_s <= 0:
            raise ValueError("the batch window must be positive")
        self.batch_window_s = window_s
        self._batching = True
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                while True:
                    await self._outbox_ready.wait()
                    await trio.sleep(window_s)
                    self._outbox_ready = trio.Event()
                    for peer in list(self._outbox):
                        if peer in self._flushing:
                            continue  # its last flush is still being written: it waits
                        queued = self._outbox.pop(peer)
                        if self.peers.send_may_stall(peer):
                            self._flushing.add(peer)
                            nursery.start_soon(self._flush_alone, peer, queued)
                        else:
                            await self._flush(peer, queued)
        finally:
            self._batching = False
            self._outbox.clear()
            self._flushing.clear()

    async def _flush(self, peer: PeerId, queued: list[tuple[str, bytes]]) -> None:
        if len(queued) == 1:  # alone in the window: sent as itself
            await self.peers.send(peer, self.protocol, queued[0][1], queued[0][0])
            return
        for frame in batch_frames([body for _, body in queued]):
            await self.peers.send(peer, self.protocol, frame, "batch")

    async def _flush_alone(self, peer: PeerId, queued: list[tuple[str, bytes]]) -> None:
        try:
            await self._flush(peer, queued)
        finally:
            self._flushing.discard(peer)
            if self._outbox.get(peer):
                self._outbox_ready.set()

    def _gossip_peers(self, exclude: PeerId | None) -> list[PeerId]:
        return [p for p in self.peers.connected_peers() if p != exclude and self.fan_out_to(p)]

    def _by_hash(self, msg_id: bytes, peers: list[PeerId], limit: int) -> list[PeerId]:
        if len(peers) <= limit:
            return peers
        return sorted(peers, key=lambda p: blake2_256(msg_id + p))[:limit]

    def _targets(self, topic: int, msg_id: bytes, origin: bytes, source: PeerId | None
                 ) -> list[PeerId]:
        """Where a message goes from here: published (`source` None) or forwarded."""
        route = self.routes.get(topic, _FLOOD)
        if route.route is Route.TARGETED:
            return []
        grid, me = self.grid, self.peers.local_id
        members = grid.members if grid is not None else _NO_MEMBERS
        on_grid = route.route is Route.GRID and origin in members
        if on_grid and grid is not None and me in members:
            # Forwarding (most of the grid's work) looks at the √n neighbours alone, not at
            # every connected peer.
            is_connected, fan_out_to = self.peers.is_connected, self.fan_out_to
            targets = [p for p in grid.route(me, origin)
                       if p != source and is_connected(p) and fan_out_to(p)]
            if source is None:
                peers = self._gossip_peers(None)
                chosen = set(targets)
                spare = [p for p in peers if p in members and p not in chosen]
                targets += self._by_hash(msg_id, spare, self.grid_extra)
                if route.relay_nodes:
                    targets += [p for p in peers if p not in members]
            return targets
        peers = self._gossip_peers(source)
        if not on_grid:
            return peers if source is None else self._by_hash(msg_id, peers,
                                                               self.forward_fanout)
        # A relay node outside the grid: it passes the message on among its kind alone.
        others = [p for p in peers if p not in members]
        return self._by_hash(msg_id, others, self.forward_fanout)

    async def _on_frame(self, source: PeerId, body: bytes) -> None:
        envelope = decode(body, GossipEnvelope)
        now = self._clock()  # once a frame: the items of a batch arrived together
        stats = self.stats
        if envelope.topic != BATCH_TOPIC:
            items = [envelope]
        else:
            items = decode(envelope.data, _BatchItems)
            for item in items:
                if item.topic == BATCH_TOPIC:
                    raise DecodeError("a gossip batch inside a batch")
            stats.batches += 1
        n = len(items)
        stats.received += n
        allowed = n if self.message_budget is None else self._message_allowance(source, n, now)
        seen = self.seen
        for item in items if allowed == n else items[:allowed]:
            # The duplicate path (about half of what a grid node receives: its second copy) is
            # kept to the id and the seen-cache, without a coroutine.
            msg_id = message_id(item.topic, item.data)
            if seen.check_and_add(msg_id, now):
                stats.duplicates += 1
                continue
            targets = self._on_new_envelope(source, item, msg_id)
            if targets:
                # Re-encoded: what we pass on does not depend on how the sender encoded it
                # (the decoded envelope encoded as is: the canonical bytes of its fields).
                stats.forwarded += await self._send(item.topic, encode(item), targets)
        for _ in range(n - allowed):
            stats.over_budget += 1
            self.peers.report(source, COST_FLOOD)

    def _message_allowance(self, source: PeerId, n: int, now: float) -> int:
        """How many of `n` envelopes from `source` its message budget admits now."""
        if self.message_budget is None:
            return n
        bucket = self._message_buckets.get(source)
        if bucket is None:
            if len(self._message_buckets) > 4 * len(self.peers.connected_peers()) + 64:
                connected = set(self.peers.connected_peers())
                self._message_buckets = {p: b for p, b in self._message_buckets.items()
                                         if p in connected}
            bucket = self._message_buckets[source] = TokenBucket(self.message_budget, now)
        return bucket.take_up_to(n, now)

    def _on_new_envelope(self, source: PeerId, envelope: GossipEnvelope, msg_id: bytes
                         ) -> list[PeerId]:
        """A message not seen before (`msg_id` now in the seen-cache): validate, deliver; where
        to pass it on (nowhere unless accepted)."""
        topic = self._topics.get(envelope.topic)
        if topic is None:
            self.stats.unknown_topic += 1
            return []
        try:
            verdict = topic.validate(source, envelope.data)
        except DecodeError:
            raise
        except Exception as exc:
            self.stats.rejected += 1
            self.peers.handler_failed("gossip", self.topic_name(envelope.topic), source, exc)
            return []
        if verdict.action is Action.REJECT:
            self.stats.rejected += 1
            if verdict.cost is not None:
                self.peers.report(source, verdict.cost)
            return []
        if verdict.action is Action.IGNORE:
            self.stats.ignored += 1
            return []
        self.stats.accepted += 1
        try:
            topic.deliver(source, envelope.data)
        except Exception as exc:
            self.peers.handler_failed("gossip", self.topic_name(envelope.topic), source, exc)
        return self._targets(envelope.topic, msg_id, envelope.origin, source)
