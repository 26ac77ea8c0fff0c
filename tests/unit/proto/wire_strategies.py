"""Hypothesis strategies for the wire types, shared by the codec and message property tests: real
structs of every candidate, statement, block and network message type, with field values over their
whole declared range (hashes of 32 bytes, u32 and u64 bounds), small enough to fit the frame caps.

Statements come both signed by alice and with arbitrary signature bytes: decoding never checks a
signature, so both must round-trip.
"""

from __future__ import annotations

import typing

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
    AvailableData,
    CandidateCommitments,
    CandidateDescriptor,
    CandidateReceipt,
    CommittedCandidateReceipt,
    OutboundHrmpMessage,
    PersistedValidationData,
    PoV,
)
from proto.disputes import DisputeStatementKind, SignedDisputeStatement, UncheckedDisputeMessage
from proto.keys import Keypair
from proto.messages import (
    AdvertiseCollation,
    ApprovalsMessage,
    AssignmentsMessage,
    AttestedCandidate,
    AvailableDataRequest,
    AvailableDataResponse,
    BitfieldMessage,
    BlockAnnounce,
    BlockRequest,
    BlockResponse,
    ChainStatus,
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
    ParaCollatorHello,
    PeerAddress,
    PeerExchange,
    Ping,
    Pong,
    PoVResponse,
    StatementMessage,
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
hosts = st.text(st.characters(codec="utf-8"), max_size=40)
peers = st.builds(PeerAddress, h32, hosts, st.integers(1, 65535), st.integers(0, 2))
certs = st.one_of(st.builds(RelayVRFModulo, u32), st.builds(RelayVRFDelay, u32))
assignments = st.builds(SignedAssignment, st.builds(IndirectAssignmentCert, h32, u32, certs), u32,
                        sig64)
approvals = st.builds(IndirectSignedApprovalVote, h32, u32, u32, sig64)
dispute_votes = st.builds(SignedDisputeStatement, st.sampled_from(list(DisputeStatementKind)), h32,
                          u32, u32, st.none() | h32, sig64)

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
    ParaCollatorHello: st.builds(ParaCollatorHello, u32),
    FetchParaBlock: st.builds(FetchParaBlock, u32, h32, u32),
    ParaBlockResponse: st.builds(ParaBlockResponse, st.none() | small,
                                 st.lists(small, max_size=3)),
    AssignmentsMessage: st.builds(AssignmentsMessage, st.lists(assignments, max_size=4)),
    ApprovalsMessage: st.builds(ApprovalsMessage, st.lists(approvals, max_size=4)),
    DisputeRequest: st.builds(DisputeRequest, st.builds(UncheckedDisputeMessage, plain, u32,
                                                        dispute_votes, dispute_votes)),
    DisputeResponse: st.just(DisputeResponse()),
    AvailableDataRequest: st.builds(AvailableDataRequest, h32),
    AvailableDataResponse: st.builds(AvailableDataResponse,
                                     st.none() | st.builds(AvailableData, povs, pvds)),
    ChainStatus: st.builds(ChainStatus, headers, u32, h32),
}
messages = st.one_of(*MESSAGES.values())
