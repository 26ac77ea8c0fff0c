"""Wire properties of every network message: hypothesis builds real structs of each kind; each round-trips canonically under its own tag, fits its protocol's frame cap, and any
mutation of its frame (bit flips, truncation, extension, random bytes) yields only
`DecodeError` or a well-formed message, never another exception."""

from __future__ import annotations

import typing

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proto.approvals import (
    IndirectAssignmentCert,
    IndirectSignedApprovalVote,
    RelayVRFDelay,
    RelayVRFModulo,
    SignedAssignment,
)
from proto.availability import ErasureChunk
from proto.candidate import (
    CandidateCommitments,
    CandidateDescriptor,
    CandidateReceipt,
    CommittedCandidateReceipt,
    OutboundHrmpMessage,
    PersistedValidationData,
    PoV,
)
from proto.disputes import DisputeStatementKind, SignedDisputeStatement, UncheckedDisputeMessage
from proto.errors import DecodeError
from proto.framing import FrameDecoder, frame
from proto.keys import Keypair
from proto.messages import (
    FRAME_MAX,
    MAX_APPROVAL_BATCH,
    AdvertiseCollation,
    ApprovalsMessage,
    AssignmentsMessage,
    AttestedCandidate,
    BitfieldMessage,
    BlockAnnounce,
    BlockRequest,
    BlockResponse,
    ChunkRequest,
    ChunkResponse,
    CollationResponse,
    CollationSeconded,
    Declare,
    DisputeRequest,
    DisputeResponse,
    FetchAttested,
    FetchCollation,
    FetchParaBlock,
    FetchPoV,
    FinalityVoteMessage,
    ParaBlockAnnounce,
    ParaBlockResponse,
    PeerAddress,
    PeerExchange,
    Ping,
    Pong,
    PoVResponse,
    Protocol,
    StatementMessage,
    WireMessage,
    decode_message,
    encode_message,
    protocol_of,
)
from proto.relay_block import ParachainsInherentData, RelayBlock, RelayHeader
from proto.statements import (
    AttestationKind,
    BackedCandidate,
    CompactStatement,
    FinalityVote,
    SignedAvailabilityBitfield,
    SignedStatement,
    SigningContext,
    StatementKind,
    ValidityAttestation,
)

KEY = Keypair.from_name("alice")
h32 = st.binary(min_size=32, max_size=32)
sig64 = st.binary(min_size=64, max_size=64)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**63 - 1)
small = st.binary(max_size=48)

pvds = st.builds(PersistedValidationData, small, u32, h32, u32)
commitments = st.builds(
    CandidateCommitments, st.lists(small, max_size=3),
    st.lists(st.builds(OutboundHrmpMessage, u32, small), max_size=2), st.none() | small, small,
    u32, u32)
descriptors = st.builds(CandidateDescriptor, u32, h32, st.integers(0, 255), u32, u32, h32, h32,
                        h32, h32, h32)
committed = st.builds(CommittedCandidateReceipt, descriptors, commitments)
plain = st.builds(CandidateReceipt, descriptors, h32)
povs = st.builds(PoV, st.binary(max_size=256))
statements = st.one_of(
    st.builds(lambda kind, h, i: SignedStatement.sign(
        KEY, CompactStatement(kind, h), SigningContext(0, h), i),
        st.sampled_from(list(StatementKind)), h32, u32),
    st.builds(SignedStatement, st.builds(CompactStatement, st.sampled_from(list(StatementKind)),
                                          h32), u32, sig64))
bits = st.lists(st.booleans(), max_size=40)
bitfields = st.builds(SignedAvailabilityBitfield, bits, u32, sig64)
headers = st.builds(RelayHeader, h32, u32, u64, u32, h32, h32, sig64)
backed = st.builds(
    BackedCandidate, committed,
    st.lists(st.builds(ValidityAttestation, st.sampled_from(list(AttestationKind)), sig64),
             max_size=3), bits, u32)
blocks = st.builds(RelayBlock, headers, st.builds(
    ParachainsInherentData, st.lists(bitfields, max_size=2), st.lists(backed, max_size=2), h32))
chunks = st.builds(ErasureChunk, st.binary(max_size=200), u32, st.lists(h32, max_size=6))
votes = st.builds(FinalityVote, h32, u32, u32, u32, sig64)
certs = st.one_of(st.builds(RelayVRFModulo, u32), st.builds(RelayVRFDelay, u32))
assignments = st.builds(SignedAssignment, st.builds(IndirectAssignmentCert, h32, u32, certs), u32,
                        sig64)
approvals = st.builds(IndirectSignedApprovalVote, h32, u32, u32, sig64)
dispute_votes = st.builds(SignedDisputeStatement, st.sampled_from(list(DisputeStatementKind)), h32,
                          u32, u32, st.none() | h32, sig64)
hosts = st.text(st.characters(codec="utf-8"), max_size=40)
peers = st.builds(PeerAddress, h32, hosts, st.integers(1, 65535), st.integers(0, 2))

MESSAGES: dict[type, st.SearchStrategy[typing.Any]] = {
    Declare: st.builds(Declare.sign, st.just(KEY), u32, h32),
    AdvertiseCollation: st.builds(AdvertiseCollation, h32, h32, h32),
    FetchCollation: st.builds(FetchCollation, h32, u32, h32),
    CollationResponse: st.builds(CollationResponse, plain, povs, st.none() | small),
    CollationSeconded: st.builds(CollationSeconded, h32, statements),
    StatementMessage: st.builds(StatementMessage, h32, statements),
    FetchAttested: st.builds(FetchAttested, h32, h32),
    AttestedCandidate: st.builds(AttestedCandidate, committed, pvds,
                                 st.lists(statements, max_size=4)),
    FetchPoV: st.builds(FetchPoV, h32, h32),
    PoVResponse: st.builds(PoVResponse, st.none() | povs),
    BitfieldMessage: st.builds(BitfieldMessage, h32, bitfields),
    BlockAnnounce: st.builds(BlockAnnounce, headers),
    BlockRequest: st.builds(BlockRequest, h32, u32, st.integers(1, 128)),
    BlockResponse: st.builds(BlockResponse, st.lists(blocks, max_size=3)),
    ChunkRequest: st.builds(ChunkRequest, h32, u32),
    ChunkResponse: st.builds(ChunkResponse, st.none() | chunks),
    FinalityVoteMessage: st.builds(FinalityVoteMessage, votes),
    PeerExchange: st.builds(PeerExchange, st.lists(peers, max_size=5)),
    Ping: st.builds(Ping, u64),
    Pong: st.builds(Pong, u64),
    ParaBlockAnnounce: st.builds(ParaBlockAnnounce, u32, small),
    FetchParaBlock: st.builds(FetchParaBlock, u32, h32),
    ParaBlockResponse: st.builds(ParaBlockResponse, st.none() | small),
    AssignmentsMessage: st.builds(AssignmentsMessage, st.lists(assignments, max_size=4)),
    ApprovalsMessage: st.builds(ApprovalsMessage, st.lists(approvals, max_size=4)),
    DisputeRequest: st.builds(DisputeRequest, st.builds(UncheckedDisputeMessage, plain, u32,
                                                        dispute_votes, dispute_votes)),
    DisputeResponse: st.just(DisputeResponse()),
}
messages = st.one_of(*MESSAGES.values())


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
