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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated

import msgspec

from node.net.grid import GridTopology, grid_seed
from node.net.peers import PeerManager
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.network import Action, PeerId
from proto.ports import GossipDeliver, GossipValidator
from proto.primitives import Struct

DEFAULT_SEEN_CAPACITY = 65_536
DEFAULT_SEEN_TTL_S = 600.0
DEFAULT_FORWARD_FANOUT = 4
DEFAULT_GRID_EXTRA = 2


class GossipEnvelope(Struct, frozen=True):
    topic: Annotated[int, msgspec.Meta(ge=0, le=65_535)]
    data: bytes
    # The publisher's peer id (what the grid routes by); empty from a publisher that gives none.
    origin: Annotated[bytes, msgspec.Meta(max_length=32)] = b""


class Route(Enum):
    FLOOD = "flood"
    GRID = "grid"
    TARGETED = "targeted"


@dataclass(frozen=True)
class TopicRoute:
    route: Route
    relay_nodes: bool = False  # GRID: relay nodes outside the grid want it too


_FLOOD = TopicRoute(Route.FLOOD)


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

    def _expire(self, now: float) -> None:
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now and len(self._expiry) <= self.capacity:
                return
            del self._expiry[key]

    def check_and_add(self, key: bytes, now: float) -> bool:
        """True if `key` was already seen (and still remembered); records it otherwise."""
        self._expire(now)
        if key in self._expiry:
            return True
        self._expiry[key] = now + self.ttl_s
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
                 grid_extra: int = DEFAULT_GRID_EXTRA) -> None:
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
        peers.register(protocol, self._on_frame)

    def subscribe(self, topic: int, validate: GossipValidator, deliver: GossipDeliver) -> None:
        if topic in self._topics:
            raise ValueError(f"topic {topic} already has a subscriber")
        self._topics[topic] = _Topic(validate, deliver)

    def set_route(self, topic: int, route: Route, *, relay_nodes: bool = False) -> None:
        self.routes[topic] = TopicRoute(route, relay_nodes)

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
        what = self.topic_name(topic)
        sent = 0
        for peer in targets:
            if await self.peers.send(peer, self.protocol, body, what):
                sent += 1
        return sent

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
        peers = self._gossip_peers(source)
        grid, me = self.grid, self.peers.local_id
        if route.route is Route.FLOOD or grid is None or origin not in grid:
            return peers if source is None else self._by_hash(msg_id, peers,
                                                               self.forward_fanout)
        if me not in grid:
            # A relay node outside the grid: it passes the message on among its kind alone.
            others = [p for p in peers if p not in grid]
            return self._by_hash(msg_id, others, self.forward_fanout)
        connected = set(peers)
        targets = [p for p in grid.route(me, origin) if p in connected]
        if source is None:
            chosen = set(targets)
            spare = [p for p in peers if p in grid and p not in chosen]
            targets += self._by_hash(msg_id, spare, self.grid_extra)
            if route.relay_nodes:
                targets += [p for p in peers if p not in grid]
        return targets

    async def _on_frame(self, source: PeerId, body: bytes) -> None:
        envelope = decode(body, GossipEnvelope)
        self.stats.received += 1
        msg_id = message_id(envelope.topic, envelope.data)
        if self.seen.check_and_add(msg_id, self._clock()):
            self.stats.duplicates += 1
            return
        topic = self._topics.get(envelope.topic)
        if topic is None:
            self.stats.unknown_topic += 1
            return
        try:
            verdict = topic.validate(source, envelope.data)
        except DecodeError:
            raise
        except Exception as exc:
            self.stats.rejected += 1
            self.peers.handler_failed("gossip", self.topic_name(envelope.topic), source, exc)
            return
        if verdict.action is Action.REJECT:
            self.stats.rejected += 1
            if verdict.cost is not None:
                self.peers.report(source, verdict.cost)
            return
        if verdict.action is Action.IGNORE:
            self.stats.ignored += 1
            return
        self.stats.accepted += 1
        try:
            topic.deliver(source, envelope.data)
        except Exception as exc:
            self.peers.handler_failed("gossip", self.topic_name(envelope.topic), source, exc)
        targets = self._targets(envelope.topic, msg_id, envelope.origin, source)
        if targets:
            # Re-encoded: what we pass on does not depend on how the sender encoded it.
            canonical = encode(GossipEnvelope(envelope.topic, envelope.data, envelope.origin))
            self.stats.forwarded += await self._send(envelope.topic, canonical, targets)
