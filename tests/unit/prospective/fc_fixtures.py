"""Shared fixture of the fragment-chain scenarios (spec §7, above scenario 1): relay blocks X(0),
Y(1), Z(2); chain A: 0x0a→0x0b (rp X), B: 0x0b→0x0c (rp Y), C: 0x0c→0x0d (rp Z)."""

from __future__ import annotations

from proto.candidate import (
    CandidateCommitments,
    CandidateDescriptor,
    CommittedCandidateReceipt,
    PersistedValidationData,
    head_hash,
)
from proto.hashing import blake2_256
from relay.core.constraints import Constraints, InboundHrmpLimitations
from relay.core.prospective.candidate_storage import (
    CandidateEntry,
    CandidateState,
    CandidateStorage,
)
from relay.core.prospective.inclusion_emulator import RelayChainBlockInfo
from relay.core.prospective.scope import PendingAvailability, Scope

PARA = 5
CODE_HASH = blake2_256(b"code")
MAX_POV = 1_000_000


def block(name: bytes, number: int) -> RelayChainBlockInfo:
    return RelayChainBlockInfo(blake2_256(b"block" + name), number, blake2_256(b"root" + name))


X, Y, Z = block(b"X", 0), block(b"Y", 1), block(b"Z", 2)


def make_constraints(min_rp: int, valid_watermarks: list[int], required_parent: bytes) -> Constraints:
    return Constraints(
        min_relay_parent_number=min_rp, max_pov_size=MAX_POV, max_code_size=1_000_000,
        max_head_data_size=1024, ump_remaining=10, ump_remaining_bytes=1000,
        max_ump_num_per_candidate=10, dmp_remaining_messages=(),
        hrmp_inbound=InboundHrmpLimitations(tuple(valid_watermarks)), hrmp_channels_out={},
        max_hrmp_num_per_candidate=0, required_parent=required_parent,
        validation_code_hash=CODE_HASH, upgrade_restriction=False, future_validation_code=None,
    )


def make_candidate(
    rp: RelayChainBlockInfo, parent_head: bytes, para_head: bytes, hrmp_watermark: int | None = None
) -> tuple[PersistedValidationData, CommittedCandidateReceipt]:
    pvd = PersistedValidationData(parent_head, rp.number, rp.storage_root, MAX_POV)
    commitments = CandidateCommitments([], [], None, para_head, 0,
                                       rp.number if hrmp_watermark is None else hrmp_watermark)
    descriptor = CandidateDescriptor(
        para_id=PARA, relay_parent=rp.hash, version=0, core_index=0, session_index=0,
        persisted_validation_data_hash=pvd.hash(), pov_hash=blake2_256(b"pov" + para_head),
        erasure_root=bytes(32), para_head=head_hash(para_head), validation_code_hash=CODE_HASH,
    )
    return pvd, CommittedCandidateReceipt(descriptor, commitments)


def entry(rp: RelayChainBlockInfo, parent: bytes, out: bytes, backed: bool = True,
          wm: int | None = None) -> CandidateEntry:
    pvd, receipt = make_candidate(rp, parent, out, wm)
    state = CandidateState.BACKED if backed else CandidateState.SECONDED
    return CandidateEntry.new(receipt.hash(), receipt, pvd, state)


def storage_of(*entries: CandidateEntry) -> CandidateStorage:
    s = CandidateStorage()
    for e in entries:
        s.add_candidate_entry(e)
    return s


def scope(min_rp: int = 0, required_parent: bytes = b"\x0a", max_depth: int = 2,
          ancestors: list[RelayChainBlockInfo] | None = None,
          pending: list[PendingAvailability] | None = None,
          leaf: RelayChainBlockInfo = Z) -> Scope:
    return Scope.with_ancestors(
        leaf, make_constraints(min_rp, [0, 1, 2], required_parent), pending or [], max_depth,
        [Y, X] if ancestors is None else ancestors,
    )
