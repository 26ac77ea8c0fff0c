"""Wire properties of every network message: hypothesis builds real structs of each kind; each round-trips canonically under its own tag, fits its protocol's frame cap, and any
mutation of its frame (bit flips, truncation, extension, random bytes) yields only
`DecodeError` or a well-formed message, never another exception."""

from __future__ import annotations

import typing

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import KEY, MESSAGES, h32, messages, u32

from proto.approvals import (
    IndirectAssignmentCert,
    IndirectSignedApprovalVote,
    RelayVRFDelay,
    SignedAssignment,
)
from proto.candidate import CandidateDescriptor, CandidateReceipt
from proto.disputes import DisputeStatementKind, SignedDisputeStatement, UncheckedDisputeMessage
from proto.errors import DecodeError
from proto.framing import FrameDecoder, frame
from proto.messages import (
    FRAME_MAX,
    MAX_APPROVAL_BATCH,
    ApprovalsMessage,
    AssignmentsMessage,
    BlockRequest,
    ChunkRequest,
    Declare,
    DisputeRequest,
    FetchAttested,
    FetchCollation,
    FetchPoV,
    PeerAddress,
    PeerExchange,
    Ping,
    Protocol,
    WireMessage,
    decode_message,
    encode_message,
    protocol_of,
)


def test_every_wire_message_kind_has_a_strategy_and_a_distinct_tag() -> None:
    kinds = typing.get_args(WireMessage)
    assert set(kinds) == set(MESSAGES)
    tags = [k.__struct_config__.tag for k in kinds]
    assert len(set(tags)) == len(kinds) and all(isinstance(t, int) for t in tags)


@settings(max_examples=600, deadline=None)
@given(messages)
def test_every_message_round_trips_canonically(message: WireMessage) -> None:
    raw = encode_message(message)
    back = decode_message(raw)
    assert back == message and type(back) is type(message)
    assert encode_message(back) == raw
    # the tag leads the array, and the bytes are plain msgpack of the field list
    as_list = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    assert as_list[0] == type(message).__struct_config__.tag
    assert msgpack.packb(as_list, use_bin_type=True) == raw
    assert len(raw) <= FRAME_MAX[protocol_of(message)]


@settings(max_examples=1500, deadline=None)
@given(messages, st.data())
def test_mutated_frames_raise_only_decode_error(message: WireMessage, data: st.DataObject) -> None:
    cap = FRAME_MAX[protocol_of(message)]
    raw = bytearray(frame(encode_message(message), cap))
    how = data.draw(st.sampled_from(["flip", "truncate", "extend", "replace", "splice"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 3))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "extend":
        raw += data.draw(st.binary(min_size=1, max_size=16))
    elif how == "replace":
        raw = bytearray(data.draw(st.binary(max_size=300)))
    else:  # same length prefix, foreign bytes somewhere inside the body
        i = data.draw(st.integers(4, len(raw) - 1))
        patch = data.draw(st.binary(min_size=1, max_size=8))
        raw[i : i + len(patch)] = patch[: len(raw) - i]
    decoder = FrameDecoder(cap)
    try:
        bodies = decoder.feed(bytes(raw))
        for body in bodies:
            out = decode_message(body)
            assert isinstance(out, typing.get_args(WireMessage))
    except DecodeError:
        return


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, min_size=1, max_size=6), st.lists(st.integers(1, 64), min_size=1))
def test_a_stream_of_messages_survives_any_chunking(batch: list[WireMessage],
                                                    cuts: list[int]) -> None:
    cap = max(FRAME_MAX.values())
    stream = b"".join(frame(encode_message(m), cap) for m in batch)
    decoder = FrameDecoder(cap)
    received: list[WireMessage] = []
    i = k = 0
    while i < len(stream):
        n = cuts[k % len(cuts)]
        received += [decode_message(b) for b in decoder.feed(stream[i : i + n])]
        i, k = i + n, k + 1
    assert received == batch and decoder.buffered == 0


def test_largest_requests_fit_the_request_cap() -> None:
    top = 2**32 - 1
    h = b"\xff" * 32
    receipt = CandidateReceipt(CandidateDescriptor(top, h, 255, top, top, h, h, h, h, h), h)
    vote = SignedDisputeStatement(DisputeStatementKind.BACKING_VALID, h, top, top, h, b"\xff" * 64)
    for m in (FetchCollation(h, top, h), FetchAttested(h, h), FetchPoV(h, h),
              BlockRequest(h, top, 128), ChunkRequest(h, top),
              DisputeRequest(UncheckedDisputeMessage(receipt, top, vote, vote))):
        assert protocol_of(m) is Protocol.REQUEST
        assert len(encode_message(m)) <= FRAME_MAX[Protocol.REQUEST]


def test_full_approval_batches_fit_the_gossip_cap() -> None:
    top, h, sig = 2**32 - 1, b"\xff" * 32, b"\xff" * 64
    full = [AssignmentsMessage([SignedAssignment(IndirectAssignmentCert(h, top, RelayVRFDelay(top)),
                                                 top, sig)] * MAX_APPROVAL_BATCH),
            ApprovalsMessage([IndirectSignedApprovalVote(h, top, top, sig)] * MAX_APPROVAL_BATCH)]
    for m in full:
        assert protocol_of(m) is Protocol.GOSSIP
        assert len(encode_message(m)) <= FRAME_MAX[Protocol.GOSSIP]
    with pytest.raises(DecodeError):  # one more than a batch holds
        decode_message(encode_message(ApprovalsMessage(full[1].approvals * 2)))


@settings(max_examples=50, deadline=None)
@given(u32, h32, h32)
def test_declare_cannot_be_replayed_to_another_peer(para_id: int, peer: bytes,
                                                    other: bytes) -> None:
    declare = decode_message(encode_message(Declare.sign(KEY, para_id, peer)))
    assert isinstance(declare, Declare) and declare.check(peer)
    assert declare.check(other) == (other == peer)
    moved = Declare(declare.collator_id, (para_id + 1) % 2**32, declare.signature)
    assert not moved.check(peer)


@pytest.mark.parametrize("raw", [
    b"\x91" * 2000 + b"\xc0",                                   # nesting depth 2000
    encode_message(Ping(5)) + b"\x00",                          # trailing bytes
    b"\x81\x13\x05",                                            # a map with an int key
    b"\x92\xa2\xff\xfe\x05",                                    # invalid UTF-8 as the tag
    encode_message(PeerExchange([PeerAddress(KEY.public, "ab", 30333, 0)])).replace(
        b"\xa2ab", b"\xa2\xff\xfe"),                              # invalid UTF-8 in a host
    b"\xc1",                                                    # the never-used byte
    b"\x92\x63\x00",                                            # unknown tag 99
    b"\x92\x13\xcf" + b"\xff" * 8,                              # nonce above 2^63 - 1
    b"\x93\x0d" + b"\xc4\x20" + bytes(32) + b"\x00",            # BlockRequest missing a field
    b"\x94\x0d" + b"\xc4\x20" + bytes(32) + b"\x00\x00",        # max_blocks 0
    b"\x94\x0d" + b"\xc4\x20" + bytes(32) + b"\x00\xcc\x81",    # max_blocks 129
    b"\x92\x13\xd6\xff\x00\x00\x00\x00",                        # timestamp extension as nonce
])
def test_hostile_message_bytes_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(raw)
