"""Network messages: every kind round-trips under its tag; Declare is bound to the peer."""

from __future__ import annotations

import typing

import pytest

from proto.availability import make_chunks
from proto.candidate import AvailableData, PersistedValidationData, PoV
from proto.errors import DecodeError
from proto.framing import frame
from proto.keys import Keypair
from proto.messages import (
    FRAME_MAX,
    PROTOCOL_OF,
    REQUEST_MESSAGE,
    TOPIC_MESSAGE,
    AdvertiseCollation,
    BlockRequest,
    ChunkRequest,
    ChunkResponse,
    Declare,
    PeerAddress,
    PeerExchange,
    Ping,
    Protocol,
    WireMessage,
    decode_message,
    encode_message,
    protocol_of,
)
from proto.network import Kind, Topic

COLLATOR = Keypair.from_name("collator-2000")
VALIDATOR = Keypair.from_name("alice")


def test_round_trips() -> None:
    _, chunks = make_chunks(AvailableData(PoV(b"x" * 100), PersistedValidationData(b"h", 1, bytes(32), 9)), 4)
    for m in (Declare.sign(COLLATOR, 2000, VALIDATOR.public),
              AdvertiseCollation(b"\x01" * 32, b"\x02" * 32, b"\x03" * 32),
              BlockRequest(b"\x04" * 32, 3, 16), ChunkRequest(b"\x05" * 32, 2),
              ChunkResponse(chunks[2]), ChunkResponse(None),
              PeerExchange([PeerAddress(VALIDATOR.public, "127.0.0.1", 30333, 1)]), Ping(7)):
        assert decode_message(encode_message(m)) == m
        assert len(encode_message(m)) <= FRAME_MAX[protocol_of(m)]
    assert protocol_of(ChunkRequest(b"\x05" * 32, 2)) is Protocol.REQUEST


def test_declare_is_bound_to_the_receiving_peer() -> None:
    d = Declare.sign(COLLATOR, 2000, VALIDATOR.public)
    assert d.check(VALIDATOR.public)
    assert not d.check(Keypair.from_name("bob").public)
    forged = Declare(COLLATOR.public, 2001, d.signature)
    assert not forged.check(VALIDATOR.public)


def test_unknown_tag_and_bad_fields_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        decode_message(b"\x92\x63\x00")  # tag 99
    with pytest.raises(DecodeError):
        decode_message(encode_message(BlockRequest(b"\x04" * 32, 3, 16)).replace(b"\x10", b"\xcc\xff"))
    with pytest.raises(DecodeError):
        frame(b"x" * (FRAME_MAX[Protocol.REQUEST] + 1), FRAME_MAX[Protocol.REQUEST])


def _constants(vocabulary: type) -> set[int]:
    return {v for k, v in vars(vocabulary).items() if k.isupper() and isinstance(v, int)}


def test_every_topic_and_kind_has_its_message_type() -> None:
    assert set(TOPIC_MESSAGE) == _constants(Topic)
    assert set(REQUEST_MESSAGE) == _constants(Kind)
    # A request is a wire message of the request lane; no two topics or kinds share a type.
    for tp in REQUEST_MESSAGE.values():
        assert tp in typing.get_args(WireMessage) and PROTOCOL_OF[tp] is Protocol.REQUEST
    assert len(set(TOPIC_MESSAGE.values())) == len(TOPIC_MESSAGE)
    assert len(set(REQUEST_MESSAGE.values())) == len(REQUEST_MESSAGE)
