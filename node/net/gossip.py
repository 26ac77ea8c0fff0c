"""Flood gossip over a node's connections.

Each message travels as a `GossipEnvelope(topic, data)` frame on the gossip lane. A node handles a
message once: the envelope's hash goes into a bounded, expiring seen-cache before anything else, so
network duplicates and echoes cost nothing. The topic's validator then decides, in the spirit of
consensus-specs' ordered IGNORE/REJECT rules:
- ACCEPT: delivered to the local subscriber and forwarded to every connected peer but the source;
- IGNORE: dropped quietly (not yet useful, out of view), no cost, not forwarded;
- REJECT: dropped, not forwarded, and the source is charged the verdict's cost.
An envelope that does not decode raises `DecodeError` to the peer manager, which closes the link.
Any other exception out of a validator or a subscriber is a handler failure (`PeerManager.
handler_failed`: logged, counted, the source charged): the message is treated as rejected and the
node goes on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import msgspec

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


class GossipEnvelope(Struct, frozen=True):
    topic: Annotated[int, msgspec.Meta(ge=0, le=65_535)]
    data: bytes


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
                 forward_fanout: int = DEFAULT_FORWARD_FANOUT) -> None:
        self.peers = peers
        # Which connected peers take part in gossip (a relay node does not flood its collators).
        self.fan_out_to = fan_out_to or (lambda _peer: True)
        # A publisher sends to every peer; a forwarder to `forward_fanout` of them, picked by a
        # hash of the message and the peer: redundancy against loss without n² frames per message
        # (deterministic, so a seeded simulation stays a function of its seed).
        self.forward_fanout = forward_fanout
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

    def validators(self) -> dict[int, GossipValidator]:
        """Each subscribed topic's validator (what a property test feeds directly)."""
        return {t: sub.validate for t, sub in self._topics.items()}

    def topic_name(self, topic: int) -> str:
        return self.topic_names.get(topic, f"topic {topic}")

    async def publish(self, topic: int, data: bytes) -> int:
        """Send our own message to every connected peer; returns how many it went to. Our own
        message is marked seen, so echoes of it are dropped."""
        body = encode(GossipEnvelope(topic, data))
        self.seen.check_and_add(blake2_256(body), self._clock())
        return await self._fan_out(body, exclude=None)

    async def _fan_out(self, body: bytes, exclude: PeerId | None, limit: int | None = None
                       ) -> int:
        targets = [p for p in self.peers.connected_peers() if p != exclude and self.fan_out_to(p)]
        if limit is not None and len(targets) > limit:
            msg_id = blake2_256(body)
            targets = sorted(targets, key=lambda p: blake2_256(msg_id + p))[:limit]
        sent = 0
        for peer in targets:
            if await self.peers.send(peer, self.protocol, body):
                sent += 1
        return sent

    async def _on_frame(self, source: PeerId, body: bytes) -> None:
        envelope = decode(body, GossipEnvelope)
        self.stats.received += 1
        # Re-encode: the id must not depend on how the sender chose to encode the same envelope.
        canonical = encode(envelope)
        if self.seen.check_and_add(blake2_256(canonical), self._clock()):
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
        self.stats.forwarded += await self._fan_out(canonical, exclude=source,
                                                    limit=self.forward_fanout)
