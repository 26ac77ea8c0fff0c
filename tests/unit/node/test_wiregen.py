"""The run-time wire generator (`node.wiregen`) and the shots `probe-peer` fires
(`node.probe_shots`): every wire type is produced, everything built decodes back to itself and
fits its lane's frame cap, edge cases come up, and every garbage shot is refused by a node's
decoder."""

from __future__ import annotations

import random
import typing
from collections import Counter

import msgspec
import pytest

from node.net.gossip import GossipEnvelope
from node.net.reqresp import RequestEnvelope
from node.net.stack import request_kinds
from node.net.transport import WireFrameDecoder, encode_wire_frame
from node.probe_shots import WIRE_TYPES, ShotPlan, Target
from node.wiregen import LOOPBACK_HOSTS, WireGenerator, decodes_to_itself
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.keys import Keypair
from proto.messages import (
    FRAME_MAX,
    PROTOCOL_OF,
    REQUEST_MESSAGE,
    TOPIC_MESSAGE,
    AttestedCandidate,
    Declare,
    PeerExchange,
    Protocol,
    WireMessage,
    decode_message,
)
from proto.primitives import U32_MAX
from proto.relay_block import RelayBlock

DRAWS = 40
KNOWN = [bytes([i]) * 32 for i in range(1, 4)]


def generator(seed: int = 0) -> WireGenerator:
    return WireGenerator(random.Random(seed), hashes=KNOWN)


def lane_of(tp: type) -> Protocol:
    return PROTOCOL_OF.get(tp, Protocol.GOSSIP)


def test_every_wire_type_is_built_decodable_and_within_its_frame_cap() -> None:
    gen = generator()
    built: Counter[str] = Counter()
    for _ in range(DRAWS):
        for tp in WIRE_TYPES:
            message: object = gen.build(tp, FRAME_MAX[lane_of(tp)])
            assert isinstance(message, tp)
            assert len(encode(message)) <= FRAME_MAX[lane_of(tp)]
            assert decodes_to_itself(message, WireMessage)
            assert type(decode_message(encode(message))) is tp
            built[tp.__name__] += 1
    assert set(built) == {tp.__name__ for tp in typing.get_args(WireMessage)}
    others: list[type] = [RelayBlock, GossipEnvelope, RequestEnvelope]
    for tp in others:
        value: object = gen.build(tp, FRAME_MAX[Protocol.GOSSIP])
        assert decodes_to_itself(value, tp)


def test_the_same_seed_builds_the_same_messages() -> None:
    first = [encode(generator(7).build(tp, 4096)) for tp in WIRE_TYPES]
    again = [encode(generator(7).build(tp, 4096)) for tp in WIRE_TYPES]
    other = [encode(generator(8).build(tp, 4096)) for tp in WIRE_TYPES]
    assert first == again != other


def test_edge_cases_come_up() -> None:
    gen = generator(1)
    attested = [gen.build(AttestedCandidate, FRAME_MAX[Protocol.RESPONSE]) for _ in range(60)]
    assert any(a.statements == [] for a in attested)  # the message that once ended a validator
    assert any(len(a.statements) > 1 for a in attested)
    para_ids = {a.receipt.descriptor.para_id for a in attested}
    assert 0 in para_ids and U32_MAX in para_ids
    relay_parents = [a.receipt.descriptor.relay_parent for a in attested]
    assert any(rp in KNOWN for rp in relay_parents)  # known to the target
    assert any(rp not in KNOWN for rp in relay_parents)  # and not
    heads = [len(a.persisted_validation_data.parent_head) for a in attested]
    assert 0 in heads and max(heads) > 64


def test_a_budget_is_kept_and_a_budget_too_small_is_refused() -> None:
    gen = generator(2)
    for budget in (64, 256, 1024):
        for tp in WIRE_TYPES:
            try:
                message: object = gen.build(tp, budget)
            except ValueError:
                smallest = gen._value(msgspec.inspect.type_info(tp), 0, minimal=True)
                assert len(encode(smallest)) > budget
                continue
            assert len(encode(message)) <= budget
    with pytest.raises(ValueError, match="over 16 bytes"):
        gen.build(Declare, 16)


def test_generated_addresses_stay_on_this_machine() -> None:
    gen = generator(3)
    hosts = {peer.host for _ in range(DRAWS)
             for peer in gen.build(PeerExchange, FRAME_MAX[Protocol.DIRECT]).peers}
    assert hosts and hosts <= set(LOOPBACK_HOSTS)


def plan(seed: int = 0) -> ShotPlan:
    target = Target(Keypair.from_name("alice").public, Keypair.from_name("probe"), (2000, 2001))
    return ShotPlan(generator(seed), target)


def test_the_plan_covers_every_lane_and_type() -> None:
    labels = plan().labels
    for tp in WIRE_TYPES:
        assert f"direct:{tp.__name__}" in labels
    for tp in TOPIC_MESSAGE.values():
        assert any(label.startswith("gossip/") and label.endswith(f":{tp.__name__}")
                   for label in labels)
    for tp in REQUEST_MESSAGE.values():
        assert any(label.startswith("request/") and label.endswith(f":{tp.__name__}")
                   for label in labels)
    for lane in ("response/", "crafted:attested-no-statements", "garbage:"):
        assert any(label.startswith(lane) for label in labels)


def test_every_shot_fits_the_wire_unless_it_is_meant_not_to() -> None:
    shots = plan(4)
    caps = {k.kind: k.max_request_bytes for k in request_kinds(1.0)}
    for _ in range(5):
        for shot in shots.shots:
            for out in shot.fire():
                assert not out.raw
                encode_wire_frame(out.protocol, out.body, FRAME_MAX)  # raises if over the cap
                if out.protocol == Protocol.REQUEST and shot.label.startswith("request/"):
                    envelope = decode(out.body, RequestEnvelope)
                    assert len(envelope.payload) <= caps[envelope.kind]
                    assert out.request is not None and out.request[0] == envelope.request_id


def test_the_empty_statements_shot_is_at_a_known_relay_parent() -> None:
    shot = next(s for s in plan(5).shots if s.label == "crafted:attested-no-statements")
    for _ in range(10):
        (out,) = shot.fire()
        envelope = decode(out.body, GossipEnvelope)
        attested = decode(envelope.data, AttestedCandidate)
        assert attested.statements == []
        assert attested.receipt.descriptor.relay_parent in KNOWN
        assert attested.receipt.descriptor.para_id in (2000, 2001)


def test_declares_are_signed_for_the_target() -> None:
    shots = plan(6)
    shot = next(s for s in shots.shots if s.label == "crafted:declare-and-advertise")
    declare = decode_message(shot.fire()[0].body)
    assert isinstance(declare, Declare) and declare.check(shots.target.peer_id)


def test_every_garbage_shot_is_refused_by_a_nodes_decoder() -> None:
    for shot in plan(7).garbage:
        out, = shot.fire()
        if out.corrupt:
            continue  # fails authentication before any decoder sees it (tests/unit/net)
        with pytest.raises(DecodeError):
            if out.raw:
                frames = WireFrameDecoder(FRAME_MAX).feed(out.body)
                if len(frames) != 1:  # what TcpConnection refuses: one record, one frame
                    raise DecodeError("a record must carry exactly one whole frame")
            elif out.protocol == Protocol.GOSSIP:
                envelope = decode(out.body, GossipEnvelope)
                decode(envelope.data, TOPIC_MESSAGE[envelope.topic])
            elif out.protocol == Protocol.REQUEST:
                decode(out.body, RequestEnvelope)
            else:
                decode_message(out.body)


def test_rounds_fire_every_shot_then_one_garbage() -> None:
    shots = plan(8)
    rounds = shots.rounds()
    first = [next(rounds) for _ in range(len(shots.shots) + 1)]
    assert sorted(s.label for s in first[:-1]) == sorted(s.label for s in shots.shots)
    assert first[-1].garbage
