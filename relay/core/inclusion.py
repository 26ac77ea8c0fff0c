"""Inclusion (spec §2.6–§2.7): candidates pending availability, availability votes from bitfields,
in-order enactment at the supermajority, timeouts, and the checks a backed candidate must pass.

Errors carry the reference's names (`InclusionError.kind`), so tests and logs can be compared with
polkadot-sdk's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from proto.candidate import (
    CandidateCommitments,
    CandidateDescriptor,
    CommittedCandidateReceipt,
    PersistedValidationData,
)
from proto.hashing import blake2_256
from proto.keys import verify
from proto.statements import BACKING_DOMAIN, BackedCandidate, SigningContext, ValidityAttestation
from proto.ump_signals import InvalidUmpSignals, split_upward_messages
from relay.core.allowed_relay_parents import AllowedRelayParentsTracker, RelayParentInfo
from relay.core.config import HostConfiguration
from relay.core.errors import NamedError
from relay.core.paras import ParasState


class InclusionErrorKind(StrEnum):
    """The reference implementation's names for a `InclusionError`."""

    DisallowedRelayParent = "DisallowedRelayParent"
    DuplicateCandidate = "DuplicateCandidate"
    HeadDataTooLarge = "HeadDataTooLarge"
    HrmpWatermarkMishandling = "HrmpWatermarkMishandling"
    IncorrectDownwardMessageHandling = "IncorrectDownwardMessageHandling"
    InsufficientBacking = "InsufficientBacking"
    InvalidAssignment = "InvalidAssignment"
    InvalidBacking = "InvalidBacking"
    InvalidCoreIndex = "InvalidCoreIndex"
    InvalidDescriptorVersion = "InvalidDescriptorVersion"
    InvalidGroupIndex = "InvalidGroupIndex"
    InvalidOutboundHrmp = "InvalidOutboundHrmp"
    InvalidSessionIndex = "InvalidSessionIndex"
    InvalidUmpSignals = "InvalidUmpSignals"
    InvalidUpwardMessages = "InvalidUpwardMessages"
    InvalidValidationCodeHash = "InvalidValidationCodeHash"
    NewCodeTooLarge = "NewCodeTooLarge"
    ParaHeadMismatch = "ParaHeadMismatch"
    PrematureCodeUpgrade = "PrematureCodeUpgrade"
    UnscheduledCandidate = "UnscheduledCandidate"
    ValidationDataHashMismatch = "ValidationDataHashMismatch"


class InclusionError(NamedError):
    """A backed candidate that breaks an inclusion rule."""


def supermajority_threshold(n: int) -> int:
    """More than two thirds: `n - floor((n-1)/3)` (4→3, 6→5, 7→5, 9→7)."""
    return n - (n - 1) // 3


def effective_minimum_backing_votes(group_len: int, configured: int) -> int:
    return min(group_len, configured)


@dataclass
class PendingCandidate:
    core: int
    hash: bytes
    descriptor: CandidateDescriptor
    commitments_head: bytes
    commitments: CandidateCommitments
    availability_votes: list[bool]
    backers: list[bool]
    relay_parent_number: int
    backed_in_number: int
    backing_group: int

    def copy(self) -> PendingCandidate:
        return PendingCandidate(self.core, self.hash, self.descriptor, self.commitments_head,
                                self.commitments, list(self.availability_votes), list(self.backers),
                                self.relay_parent_number, self.backed_in_number, self.backing_group)


@dataclass
class InclusionState:
    pending: dict[int, list[PendingCandidate]] = field(default_factory=dict)  # para → FIFO chain

    def copy(self) -> InclusionState:
        return InclusionState({p: [c.copy() for c in q] for p, q in self.pending.items()})

    def occupied_cores(self) -> dict[int, PendingCandidate]:
        return {c.core: c for q in self.pending.values() for c in q}

    def latest_head(self, para_id: int, paras: ParasState) -> bytes:
        q = self.pending.get(para_id)
        return q[-1].commitments_head if q else paras.heads[para_id]

    def latest_context(self, para_id: int, paras: ParasState) -> int:
        q = self.pending.get(para_id)
        return q[-1].relay_parent_number if q else paras.most_recent_context.get(para_id, 0)

    def apply_bitfields(
        self, bitfields: Sequence[tuple[int, Sequence[bool]]], n_validators: int
    ) -> list[PendingCandidate]:
        """Record availability votes; return the candidates enacted now, in chain order per para.

        A candidate is enacted iff it reached the supermajority and every predecessor in its
        para's chain was enacted in this same pass; later available ones keep their votes."""
        by_core = self.occupied_cores()
        for validator, bits in bitfields:
            for core, bit in enumerate(bits):
                cand = by_core.get(core)
                if bit and cand is not None and 0 <= validator < n_validators:
                    cand.availability_votes[validator] = True
        threshold = supermajority_threshold(n_validators)
        enacted: list[PendingCandidate] = []
        for para in sorted(self.pending):
            q = self.pending[para]
            while q and sum(q[0].availability_votes) >= threshold:
                enacted.append(q.pop(0))
            if not q:
                del self.pending[para]
        return enacted

    def free_failed(self, failed: Callable[[PendingCandidate], bool]) -> list[PendingCandidate]:
        """Drop every failed candidate and all its descendants in its para's chain."""
        freed: list[PendingCandidate] = []
        for para in sorted(self.pending):
            q = self.pending[para]
            for i, cand in enumerate(q):
                if failed(cand):
                    freed += q[i:]
                    del q[i:]
                    break
            if not q:
                del self.pending[para]
        return freed

    def clear(self) -> None:
        self.pending.clear()


def make_pvd(parent_head: bytes, info: RelayParentInfo, config: HostConfiguration) -> PersistedValidationData:
    return PersistedValidationData(parent_head, info.number, info.state_root, config.max_pov_size)


def check_validation_outputs(
    candidate: CommittedCandidateReceipt,
    rp_number: int,
    paras: ParasState,
    config: HostConfiguration,
    now: int,
) -> None:
    c = candidate.commitments
    para = candidate.descriptor.para_id
    if len(c.head_data) > config.max_head_data_size:
        raise InclusionError(InclusionErrorKind.HeadDataTooLarge)
    if c.new_validation_code is not None:
        if not paras.upgrade_allowed(para, now):
            raise InclusionError(InclusionErrorKind.PrematureCodeUpgrade)
        if len(c.new_validation_code) > config.max_code_size:
            raise InclusionError(InclusionErrorKind.NewCodeTooLarge)
    if c.processed_downward_messages != 0:  # this model keeps no downward queue
        raise InclusionError(InclusionErrorKind.IncorrectDownwardMessageHandling)
    try:
        upward, _ = split_upward_messages(list(c.upward_messages))
    except InvalidUmpSignals as exc:
        raise InclusionError(InclusionErrorKind.InvalidUpwardMessages, str(exc)) from None
    count, size = paras.ump_queue.get(para, (0, 0))
    if (
        len(upward) > config.max_upward_message_num_per_candidate
        or count + len(upward) > config.max_upward_queue_count
        or size + sum(len(m) for m in upward) > config.max_upward_queue_size
        or any(len(m) > config.max_upward_message_size for m in upward)
    ):
        raise InclusionError(InclusionErrorKind.InvalidUpwardMessages)
    if c.hrmp_watermark != rp_number:  # no inbound HRMP here: only the relay parent is valid
        raise InclusionError(InclusionErrorKind.HrmpWatermarkMishandling,
                             f"watermark {c.hrmp_watermark}, relay parent {rp_number}")
    if c.horizontal_messages:
        raise InclusionError(InclusionErrorKind.InvalidOutboundHrmp, "no HRMP channels are open")


def verify_backed_candidate(
    candidate: CommittedCandidateReceipt,
    parent_head: bytes,
    prev_context: int | None,
    allowed: AllowedRelayParentsTracker,
    paras: ParasState,
    config: HostConfiguration,
    now: int,
) -> RelayParentInfo:
    d = candidate.descriptor
    info = allowed.acquire_info(d.relay_parent, prev_context)
    if info is None:
        raise InclusionError(InclusionErrorKind.DisallowedRelayParent)
    if make_pvd(parent_head, info, config).hash() != d.persisted_validation_data_hash:
        raise InclusionError(InclusionErrorKind.ValidationDataHashMismatch)
    code = paras.code_hash.get(d.para_id)
    if code is None:
        raise InclusionError(InclusionErrorKind.UnscheduledCandidate)
    if d.validation_code_hash != code:
        raise InclusionError(InclusionErrorKind.InvalidValidationCodeHash)
    if d.para_head != blake2_256(candidate.commitments.head_data):
        raise InclusionError(InclusionErrorKind.ParaHeadMismatch)
    check_validation_outputs(candidate, info.number, paras, config, now)
    return info


def check_backing_votes(
    backed: BackedCandidate,
    group: Sequence[int],
    validators: Sequence[bytes],
    ctx: SigningContext,
    minimum_backing_votes: int,
) -> list[bool]:
    """Verify every vote against its group member; return the backers bitfield."""
    bits = list(backed.validator_indices)
    if len(bits) != len(group):
        raise InclusionError(InclusionErrorKind.InvalidBacking, "validator_indices length is not the group size")
    signers = [group[i] for i, b in enumerate(bits) if b]
    if len(signers) != len(backed.validity_votes) or len(backed.validity_votes) > len(group):
        raise InclusionError(InclusionErrorKind.InvalidBacking, "votes do not match validator_indices")
    h = backed.candidate.hash()
    for signer, vote in zip(signers, backed.validity_votes, strict=True):
        if not _vote_valid(vote, h, validators[signer], ctx):
            raise InclusionError(InclusionErrorKind.InvalidBacking, f"bad signature of validator {signer}")
    if len(signers) < effective_minimum_backing_votes(len(group), minimum_backing_votes):
        raise InclusionError(InclusionErrorKind.InsufficientBacking)
    return bits


def _vote_valid(vote: ValidityAttestation, candidate_hash: bytes, public: bytes,
                ctx: SigningContext) -> bool:
    payload = vote.statement(candidate_hash).payload(ctx)
    return verify(public, BACKING_DOMAIN, payload, vote.signature)
