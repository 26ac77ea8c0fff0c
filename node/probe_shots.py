"""What `asyncback probe-peer` sends: one `Shot` per kind of frame a peer can send a node, on
every lane of the wire, each built afresh by `node.wiregen` when it is fired.

- gossip: a `GossipEnvelope` per topic carrying that topic's message (a relay block, bitfield,
  finality vote, attested candidate, statement), plus an unknown topic and a topic whose payload
  is another topic's message (which the topic's decoder refuses);
- direct: every `WireMessage` type, the ones a node handles and the ones it does not;
- requests: every request kind with its request type, a payload over the kind's cap, a kind
  nobody serves; responses nobody asked for, on each response lane;
- crafted: the messages random values rarely hit: an `AttestedCandidate` with no statements at a
  relay parent the target knows (the message that used to end a validator), a properly signed
  `Declare` followed by an advert, a well-formed peer exchange;
- garbage: frames no decoder accepts (random bytes, an unknown lane, an empty frame, two frames
  in one record, a frame over its lane's cap, a record that fails authentication). Each of these
  should make the target close the link, so the plan fires one per round of the others.

`ShotPlan.rounds()` yields the shots round after round, each round every non-garbage shot once in
a seeded order, then one garbage shot (round-robin over the garbage kinds).
"""

from __future__ import annotations

import random
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import msgspec

from node.net.gossip import GossipEnvelope
from node.net.reqresp import STATUS_OK, RequestEnvelope, ResponseEnvelope
from node.net.stack import request_kinds
from node.net.transport import encode_wire_frame
from node.wiregen import WireGenerator
from proto.codec import encode
from proto.framing import PREFIX
from proto.keys import Keypair
from proto.messages import (
    FRAME_MAX,
    PROTOCOL_OF,
    REQUEST_MESSAGE,
    TOPIC_MESSAGE,
    AdvertiseCollation,
    AttestedCandidate,
    BlockRequest,
    Declare,
    FinalityVoteMessage,
    PeerAddress,
    PeerExchange,
    PeerRole,
    Protocol,
    StatementMessage,
    WireMessage,
)
from proto.network import Kind, Topic

WIRE_TYPES: tuple[type, ...] = typing.get_args(WireMessage)
UNKNOWN_TOPIC = 65_535
UNKNOWN_KIND = 999
UNKNOWN_LANE = 200
ENVELOPE_OVERHEAD = 32  # an envelope's own fields, generously
DISCARD_PORT = 9  # what a crafted peer exchange says we listen on: nothing answers there


def _names(vocabulary: type) -> dict[int, str]:
    return {v: k.lower() for k, v in vars(vocabulary).items() if isinstance(v, int)}


TOPIC_NAMES = _names(Topic)
KIND_NAMES = _names(Kind)
LANE_NAMES = {int(p): p.name.lower() for p in Protocol}


@dataclass(frozen=True)
class Outgoing:
    """One record to send: a frame on a lane, or (`raw`) a record plaintext as it is."""

    protocol: int
    body: bytes
    raw: bool = False
    corrupt: bool = False
    request: tuple[int, str] | None = None  # (request id, label) when it expects an answer


@dataclass(frozen=True)
class Shot:
    label: str
    fire: Callable[[], list[Outgoing]]
    garbage: bool = False


@dataclass
class Target:
    """What the shots need to know about the target and about us."""

    peer_id: bytes
    key: Keypair
    para_ids: tuple[int, ...]


class ShotPlan:
    def __init__(self, gen: WireGenerator, target: Target) -> None:
        self.gen = gen
        self.rng = gen.rng
        self.target = target
        self._next_request_id = 0
        self.shots = [*self._gossip(), *self._direct(), *self._requests(), *self._responses(),
                      *self._crafted()]
        self.garbage = list(self._garbage())

    @property
    def labels(self) -> list[str]:
        return [s.label for s in [*self.shots, *self.garbage]]

    def rounds(self) -> Iterator[Shot]:
        k = 0
        while True:
            order = list(self.shots)
            self.rng.shuffle(order)
            yield from order
            yield self.garbage[k % len(self.garbage)]
            k += 1

    # -- helpers ----------------------------------------------------------------------------

    def _request_id(self) -> int:
        self._next_request_id += 1
        return self._next_request_id

    def _known_hash(self) -> bytes:
        return self.rng.choice(self.gen.hashes) if self.gen.hashes else self.gen.hash()

    def _para_id(self) -> int:
        return self.rng.choice(self.target.para_ids) if self.target.para_ids else 2000

    def _gossip_frame(self, topic: int, data: bytes) -> Outgoing:
        return Outgoing(Protocol.GOSSIP, encode(GossipEnvelope(topic, data)))

    # -- lanes ------------------------------------------------------------------------------

    def _gossip(self) -> Iterator[Shot]:
        budget = FRAME_MAX[Protocol.GOSSIP] - ENVELOPE_OVERHEAD
        for topic, tp in TOPIC_MESSAGE.items():
            def fire(topic: int = topic, tp: type = tp) -> list[Outgoing]:
                return [self._gossip_frame(topic, encode(self.gen.build(tp, budget)))]
            yield Shot(f"gossip/{TOPIC_NAMES[topic]}:{tp.__name__}", fire)

        def unknown_topic() -> list[Outgoing]:
            return [self._gossip_frame(UNKNOWN_TOPIC, encode(self.gen.build(StatementMessage,
                                                                             budget)))]
        yield Shot("gossip/unknown-topic", unknown_topic)

    def _direct(self) -> Iterator[Shot]:
        budget = FRAME_MAX[Protocol.DIRECT]
        for tp in WIRE_TYPES:
            def fire(tp: type = tp) -> list[Outgoing]:
                return [Outgoing(Protocol.DIRECT, encode(self.gen.build(tp, budget)))]
            yield Shot(f"direct:{tp.__name__}", fire)

    def _requests(self) -> Iterator[Shot]:
        kinds = {k.kind: k for k in request_kinds(1.0)}
        for kind, tp in REQUEST_MESSAGE.items():
            cap = kinds[kind].max_request_bytes
            label = f"request/{KIND_NAMES[kind]}:{tp.__name__}"

            def fire(kind: int = kind, tp: type = tp, cap: int = cap,
                     label: str = label) -> list[Outgoing]:
                return [self._request(kind, encode(self.gen.build(tp, cap)), label)]
            yield Shot(label, fire)

        def oversize() -> list[Outgoing]:
            kind = self.rng.choice(list(REQUEST_MESSAGE))
            payload = self.rng.randbytes(kinds[kind].max_request_bytes + 1)
            return [self._request(kind, payload, "request:over-cap")]
        yield Shot("request:over-cap", oversize)

        def unknown_kind() -> list[Outgoing]:
            payload = encode(self.gen.build(BlockRequest, 256))
            return [self._request(UNKNOWN_KIND, payload, "request:unknown-kind")]
        yield Shot("request:unknown-kind", unknown_kind)

    def _request(self, kind: int, payload: bytes, label: str) -> Outgoing:
        request_id = self._request_id()
        return Outgoing(Protocol.REQUEST, encode(RequestEnvelope(request_id, kind, payload)),
                        request=(request_id, label))

    def _responses(self) -> Iterator[Shot]:
        for tp, lane in PROTOCOL_OF.items():
            if lane not in (Protocol.RESPONSE, Protocol.POV_RESPONSE, Protocol.BLOCKS):
                continue

            def fire(tp: type = tp, lane: int = lane) -> list[Outgoing]:
                payload = encode(self.gen.build(tp, FRAME_MAX[lane] - ENVELOPE_OVERHEAD))
                request_id = self.rng.randrange(2**63)
                return [Outgoing(lane, encode(ResponseEnvelope(request_id, STATUS_OK, payload)))]
            yield Shot(f"response/{LANE_NAMES[lane]}:{tp.__name__}", fire)

    def _crafted(self) -> Iterator[Shot]:
        budget = FRAME_MAX[Protocol.GOSSIP] - ENVELOPE_OVERHEAD

        def attested_without_statements() -> list[Outgoing]:
            attested = self.gen.build(AttestedCandidate, budget)
            descriptor = msgspec.structs.replace(attested.receipt.descriptor,
                                                 relay_parent=self._known_hash(),
                                                 para_id=self._para_id())
            receipt = msgspec.structs.replace(attested.receipt, descriptor=descriptor)
            empty = msgspec.structs.replace(attested, receipt=receipt, statements=[])
            return [self._gossip_frame(Topic.BACKED, encode(empty))]
        yield Shot("crafted:attested-no-statements", attested_without_statements)

        def declare_and_advertise() -> list[Outgoing]:
            declare = Declare.sign(self.target.key, self._para_id(), self.target.peer_id)
            advert = AdvertiseCollation(self._known_hash(), self.gen.hash(), self.gen.hash())
            return [Outgoing(Protocol.DIRECT, encode(declare)),
                    Outgoing(Protocol.DIRECT, encode(advert))]
        yield Shot("crafted:declare-and-advertise", declare_and_advertise)

        def peer_exchange() -> list[Outgoing]:
            me = PeerAddress(self.target.key.public, "127.0.0.1", DISCARD_PORT,
                             PeerRole.RELAY_NODE)
            return [Outgoing(Protocol.DIRECT, encode(PeerExchange([me])))]
        yield Shot("crafted:peer-exchange", peer_exchange)

    def _garbage(self) -> Iterator[Shot]:
        lanes = [Protocol.GOSSIP, Protocol.DIRECT, Protocol.REQUEST]

        def undecodable() -> list[Outgoing]:
            body = self.rng.randbytes(self.rng.randint(1, 64))
            return [Outgoing(self.rng.choice(lanes), body)]
        yield Shot("garbage:undecodable", undecodable, garbage=True)

        def topic_mismatch() -> list[Outgoing]:
            # A valid envelope on a known topic whose payload is another topic's message.
            data = encode(self.gen.build(FinalityVoteMessage, 1024))
            return [self._gossip_frame(Topic.BACKED, data)]
        yield Shot("garbage:topic-mismatch", topic_mismatch, garbage=True)

        def unknown_lane() -> list[Outgoing]:
            return [Outgoing(0, _frame_bytes(UNKNOWN_LANE, b"\x90"), raw=True)]
        yield Shot("garbage:unknown-lane", unknown_lane, garbage=True)

        def empty_frame() -> list[Outgoing]:
            return [Outgoing(0, PREFIX.pack(0), raw=True)]
        yield Shot("garbage:empty-frame", empty_frame, garbage=True)

        def two_frames() -> list[Outgoing]:
            one = encode_wire_frame(Protocol.DIRECT, encode(self.gen.build(WIRE_TYPES[0], 512)),
                                    FRAME_MAX)
            return [Outgoing(0, one + one, raw=True)]
        yield Shot("garbage:two-frames-in-a-record", two_frames, garbage=True)

        def over_cap() -> list[Outgoing]:
            body = self.rng.randbytes(FRAME_MAX[Protocol.REQUEST] + 1)
            return [Outgoing(0, _frame_bytes(Protocol.REQUEST, body), raw=True)]
        yield Shot("garbage:frame-over-lane-cap", over_cap, garbage=True)

        def bad_record() -> list[Outgoing]:
            ping = encode(self.gen.build(WIRE_TYPES[0], 512))
            return [Outgoing(0, _frame_bytes(Protocol.DIRECT, ping), raw=True, corrupt=True)]
        yield Shot("garbage:record-fails-authentication", bad_record, garbage=True)


def _frame_bytes(protocol: int, body: bytes) -> bytes:
    """A wire frame with no cap check (what `encode_wire_frame` would refuse to make)."""
    return PREFIX.pack(len(body) + 1) + bytes((protocol,)) + body


def fresh_key(rng: random.Random) -> Keypair:
    return Keypair(rng.randbytes(32))
