"""Operating constraints of a para at a relay block (spec §3.1): what the relay runtime's
`backing_state` reports and what prospective parachains checks candidates against.

Only the data lives here; the arithmetic (modifications, checks) is in
`relay/core/prospective/inclusion_emulator.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proto.candidate import CandidateCommitments, CandidateDescriptor


@dataclass(frozen=True)
class OutboundHrmpChannelLimitations:
    bytes_remaining: int
    messages_remaining: int


@dataclass(frozen=True)
class InboundHrmpLimitations:
    valid_watermarks: tuple[int, ...]  # sorted block numbers at which messages arrived


@dataclass(frozen=True)
class Constraints:
    min_relay_parent_number: int
    max_pov_size: int
    max_code_size: int
    max_head_data_size: int
    ump_remaining: int
    ump_remaining_bytes: int
    max_ump_num_per_candidate: int
    dmp_remaining_messages: tuple[int, ...]  # sent_at of every queued downward message
    hrmp_inbound: InboundHrmpLimitations
    hrmp_channels_out: dict[int, OutboundHrmpChannelLimitations] = field(hash=False)
    max_hrmp_num_per_candidate: int
    required_parent: bytes  # the *included* head
    validation_code_hash: bytes
    upgrade_restriction: bool = False  # `Some(Present)` in the reference
    future_validation_code: tuple[int, bytes] | None = None  # (at relay parent number, code hash)


@dataclass(frozen=True)
class CandidatePendingAvailability:
    """One entry of `backing_state(para).pending_availability`."""

    candidate_hash: bytes
    descriptor: CandidateDescriptor
    commitments: CandidateCommitments
    relay_parent_number: int
    max_pov_size: int


@dataclass(frozen=True)
class BackingState:
    constraints: Constraints
    pending_availability: tuple[CandidatePendingAvailability, ...]
