"""Network messages (spec §1.9, design.md §3): every kind a fixed integer tag, a change of meaning
is a new tag. Decoding is strict: anything malformed is one `DecodeError`, checked against the
frame cap of the protocol the message travels on before a byte of the body is read.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import msgspec

from proto.approvals import IndirectSignedApprovalVote, SignedAssignment
from proto.availability import ErasureChunk
from proto.candidate import (
    AvailableData,
    CandidateReceipt,
    CommittedCandidateReceipt,
    PersistedValidationData,
    PoV,
)
from proto.codec import decode, encode
from proto.disputes import UncheckedDisputeMessage
from proto.keys import Keypair, verify
from proto.network import Kind, Topic
from proto.primitives import (
    MAX_LIST,
    U32,
    U64,
    Blob,
    BlockNumber,
    Hash,
    HeadData,
    ParaId,
    PublicKey,
    Signature,
    Struct,
)
from proto.relay_block import RelayBlock, RelayHeader
from proto.statements import FinalityVote, SignedAvailabilityBitfield, SignedStatement

DECLARE_DOMAIN = b"DCLR"
KIB = 1024
# Assignments and approvals travel in batches (polkadot's approval-distribution packs them per
# peer); 512 of either fit the gossip frame cap with room to spare.
MAX_APPROVAL_BATCH = 512


class Protocol(IntEnum):
    """Each protocol has its own frame cap (testing.md's FRAME_MAX)."""

    GOSSIP = 1
    REQUEST = 2
    RESPONSE = 3
    POV_RESPONSE = 4
    BLOCKS = 5
    DIRECT = 6  # notifications to one peer, never forwarded (collator protocol, statements)


FRAME_MAX: dict[int, int] = {  # by Protocol (an IntEnum, so plain ints key it too)
    Protocol.GOSSIP: 128 * KIB,
    Protocol.REQUEST: 1 * KIB,
    Protocol.RESPONSE: 128 * KIB,
    Protocol.POV_RESPONSE: 1024 * KIB,
    Protocol.BLOCKS: 4096 * KIB,
    Protocol.DIRECT: 128 * KIB,
}


class Declare(Struct, frozen=True, tag=1):
    """A collator's signed claim to collate for a para, bound to the receiving peer's identity so
    it cannot be replayed to another validator."""

    collator_id: PublicKey
    para_id: ParaId
    signature: Signature

    @staticmethod
    def payload(para_id: int, peer_id: bytes) -> bytes:
        return encode([para_id, peer_id])

    @classmethod
    def sign(cls, key: Keypair, para_id: int, peer_id: bytes) -> Declare:
        return cls(key.public, para_id, key.sign(DECLARE_DOMAIN, cls.payload(para_id, peer_id)))

    def check(self, peer_id: bytes) -> bool:
        return verify(self.collator_id, DECLARE_DOMAIN, self.payload(self.para_id, peer_id),
                      self.signature)


class AdvertiseCollation(Struct, frozen=True, tag=2):
    relay_parent: Hash
    candidate_hash: Hash
    parent_head_data_hash: Hash


class FetchCollation(Struct, frozen=True, tag=3):
    relay_parent: Hash
    para_id: ParaId
    candidate_hash: Hash


class CollationResponse(Struct, frozen=True, tag=4):
    receipt: CandidateReceipt
    pov: PoV
    parent_head_data: HeadData | None


class CollationSeconded(Struct, frozen=True, tag=5):
    relay_parent: Hash
    statement: SignedStatement


class StatementMessage(Struct, frozen=True, tag=6):
    relay_parent: Hash
    statement: SignedStatement


class FetchAttested(Struct, frozen=True, tag=7):
    relay_parent: Hash
    candidate_hash: Hash


class AttestedCandidate(Struct, frozen=True, tag=8):
    receipt: CommittedCandidateReceipt
    persisted_validation_data: PersistedValidationData
    statements: Annotated[list[SignedStatement], msgspec.Meta(max_length=64)]


class FetchPoV(Struct, frozen=True, tag=9):
    relay_parent: Hash
    candidate_hash: Hash


class PoVResponse(Struct, frozen=True, tag=10):
    pov: PoV | None


class BitfieldMessage(Struct, frozen=True, tag=11):
    relay_parent: Hash
    bitfield: SignedAvailabilityBitfield


class BlockAnnounce(Struct, frozen=True, tag=12):
    header: RelayHeader


class BlockRequest(Struct, frozen=True, tag=13):
    """Blocks from `from_number` (inclusive) on the chain ending at `head`, at most `max_blocks`."""

    head: Hash
    from_number: BlockNumber
    max_blocks: Annotated[int, msgspec.Meta(ge=1, le=128)]


class BlockResponse(Struct, frozen=True, tag=14):
    blocks: Annotated[list[RelayBlock], msgspec.Meta(max_length=128)]


class ChunkRequest(Struct, frozen=True, tag=15):
    candidate_hash: Hash
    index: U32


class ChunkResponse(Struct, frozen=True, tag=16):
    chunk: ErasureChunk | None


class FinalityVoteMessage(Struct, frozen=True, tag=17):
    vote: FinalityVote


class PeerRole(IntEnum):
    RELAY_NODE = 0
    VALIDATOR = 1
    COLLATOR = 2


class PeerAddress(Struct, frozen=True):
    """Where a node listens, and what it is (relay nodes join relay gossip; collators do not)."""

    identity: PublicKey
    host: Annotated[str, msgspec.Meta(max_length=253)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    role: Annotated[int, msgspec.Meta(ge=0, le=2)]


class PeerExchange(Struct, frozen=True, tag=18):
    peers: Annotated[list[PeerAddress], msgspec.Meta(max_length=MAX_LIST // 1000)]


class Ping(Struct, frozen=True, tag=19):
    nonce: U64


class Pong(Struct, frozen=True, tag=20):
    nonce: U64


class ParaBlockAnnounce(Struct, frozen=True, tag=21):
    """A para block, to the other collators of its para (they re-execute it). The block is the
    para runtime's encoding, decoded strictly by the receiver."""

    para_id: ParaId
    block: Blob


class ParaCollatorHello(Struct, frozen=True, tag=31):
    """A collator of `para_id` to another it found (`--para-bootnodes`): count me in the
    para's round of turns (learnt rounds: collator/service.py)."""

    para_id: ParaId


MAX_PARA_ANCESTORS = 63  # ancestors one para block response may carry besides the block


class FetchParaBlock(Struct, frozen=True, tag=22):
    """A para block by hash; with `ancestors`, also up to that many of its ancestors (a
    collator syncing a long gap fetches a run of blocks per request, not one)."""

    para_id: ParaId
    block_hash: Hash
    ancestors: U32 = 0


class ParaBlockResponse(Struct, frozen=True, tag=23):
    block: Blob | None
    # The block's parent, grandparent, ... as many as were asked for, the server holds and fit
    # the frame; each the para runtime's encoding, decoded strictly and hash-checked by the
    # receiver.
    ancestors: Annotated[list[Blob], msgspec.Meta(max_length=MAX_PARA_ANCESTORS)] = []


class AssignmentsMessage(Struct, frozen=True, tag=24):
    """Approval distribution: assignments, each signed by the validator it assigns."""

    assignments: Annotated[list[SignedAssignment], msgspec.Meta(max_length=MAX_APPROVAL_BATCH)]


class ApprovalsMessage(Struct, frozen=True, tag=25):
    """Approval distribution: approval votes for candidates the sender was assigned to."""

    approvals: Annotated[list[IndirectSignedApprovalVote],
                         msgspec.Meta(max_length=MAX_APPROVAL_BATCH)]


class DisputeRequest(Struct, frozen=True, tag=26):
    """Dispute distribution: a dispute raised or joined, sent to every validator."""

    message: UncheckedDisputeMessage


class DisputeResponse(Struct, frozen=True, tag=27):
    """The receiver imported the votes (polkadot's `DisputeResponse::Confirmed`)."""


class ChainStatus(Struct, frozen=True, tag=28):
    """What a relay node has, told to each relay peer when they connect (Substrate's block
    announce handshake): its best header, sealed, so a claim to be ahead costs a validator's
    signature to make; and its finalized block, which the receiver checks against its own chain."""

    best: RelayHeader
    finalized_number: BlockNumber
    finalized_hash: Hash


class AvailableDataRequest(Struct, frozen=True, tag=29):
    """A candidate's whole available data, asked of a validator that backed it: an approval
    checker's (or dispute participant's) one request instead of a third of the chunks, checked
    against the erasure root (`relay/service/recovery.py`)."""

    candidate_hash: Hash


class AvailableDataResponse(Struct, frozen=True, tag=30):
    data: AvailableData | None


WireMessage = (
    Declare | AdvertiseCollation | FetchCollation | CollationResponse | CollationSeconded
    | StatementMessage | FetchAttested | AttestedCandidate | FetchPoV | PoVResponse
    | BitfieldMessage | BlockAnnounce | BlockRequest | BlockResponse | ChunkRequest
    | ChunkResponse | FinalityVoteMessage | PeerExchange | Ping | Pong | ParaBlockAnnounce
    | ParaCollatorHello | FetchParaBlock | ParaBlockResponse | AssignmentsMessage | ApprovalsMessage
    | DisputeRequest | DisputeResponse | ChainStatus | AvailableDataRequest | AvailableDataResponse
)

PROTOCOL_OF: dict[type, Protocol] = {
    FetchCollation: Protocol.REQUEST, FetchAttested: Protocol.REQUEST, FetchPoV: Protocol.REQUEST,
    BlockRequest: Protocol.REQUEST, ChunkRequest: Protocol.REQUEST,
    FetchParaBlock: Protocol.REQUEST, ParaBlockResponse: Protocol.POV_RESPONSE,
    ParaBlockAnnounce: Protocol.DIRECT, ParaCollatorHello: Protocol.DIRECT,
    ChainStatus: Protocol.DIRECT,
    CollationResponse: Protocol.POV_RESPONSE, PoVResponse: Protocol.POV_RESPONSE,
    AttestedCandidate: Protocol.RESPONSE, ChunkResponse: Protocol.RESPONSE,
    BlockResponse: Protocol.BLOCKS,
    DisputeRequest: Protocol.REQUEST, DisputeResponse: Protocol.RESPONSE,
    AvailableDataRequest: Protocol.REQUEST, AvailableDataResponse: Protocol.POV_RESPONSE,
}


# What each gossip topic and request kind carries: the one table the probe (`node.probe_shots`)
# and the handler properties read. A new `Topic` or `Kind` adds its type here (a test checks).
TOPIC_MESSAGE: dict[int, type] = {
    Topic.BLOCK: RelayBlock, Topic.BITFIELD: BitfieldMessage,
    Topic.FINALITY: FinalityVoteMessage, Topic.BACKED: AttestedCandidate,
    Topic.STATEMENT: StatementMessage, Topic.ASSIGNMENT: AssignmentsMessage,
    Topic.APPROVAL: ApprovalsMessage, Topic.DISPUTE: UncheckedDisputeMessage,
}
REQUEST_MESSAGE: dict[int, type] = {
    Kind.BLOCKS: BlockRequest, Kind.COLLATION: FetchCollation, Kind.ATTESTED: FetchAttested,
    Kind.POV: FetchPoV, Kind.CHUNK: ChunkRequest, Kind.PARA_BLOCK: FetchParaBlock,
    Kind.AVAILABLE_DATA: AvailableDataRequest,
}


def protocol_of(message: WireMessage) -> Protocol:
    return PROTOCOL_OF.get(type(message), Protocol.GOSSIP)


def encode_message(message: WireMessage) -> bytes:
    return encode(message)


def decode_message(body: bytes) -> WireMessage:
    return decode(body, WireMessage)  # type: ignore[arg-type]
