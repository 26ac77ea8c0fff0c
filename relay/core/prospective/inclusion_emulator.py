"""The inclusion emulator (spec §3.2–§3.3): how a chain of not-yet-included candidates changes a
para's operating constraints, and whether a candidate fits the constraints it would build on.

Validators use it to judge candidates whose parents the relay chain has not included yet: each
candidate's outputs become `ConstraintModifications`, modifications stack along a chain, and the
stacked result applied to the base constraints gives the constraints for the next candidate.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from proto.candidate import CandidateCommitments, PersistedValidationData
from proto.ump_signals import UMP_SEPARATOR, InvalidUmpSignals, split_upward_messages
from relay.core.constraints import (
    Constraints,
    InboundHrmpLimitations,
    OutboundHrmpChannelLimitations,
)


@dataclass(frozen=True)
class HrmpWatermarkUpdate:
    """`Head(n)`: the candidate's own relay parent; `Trunk(n)`: an earlier block with messages."""

    block_number: int
    is_head: bool

    @classmethod
    def head(cls, n: int) -> HrmpWatermarkUpdate:
        return cls(n, True)

    @classmethod
    def trunk(cls, n: int) -> HrmpWatermarkUpdate:
        return cls(n, False)


@dataclass(frozen=True)
class OutboundHrmpChannelModification:
    bytes_submitted: int = 0
    messages_submitted: int = 0


@dataclass(frozen=True)
class ConstraintModifications:
    required_parent: bytes | None = None
    hrmp_watermark: HrmpWatermarkUpdate | None = None
    outbound_hrmp: Mapping[int, OutboundHrmpChannelModification] = field(default_factory=dict)
    ump_messages_sent: int = 0
    ump_bytes_sent: int = 0
    dmp_messages_processed: int = 0
    code_upgrade_applied: bool = False

    @classmethod
    def identity(cls) -> ConstraintModifications:
        return cls()

    def stack(self, other: ConstraintModifications) -> ConstraintModifications:
        """`self` then `other`: later parent/watermark win, counts add, upgrades OR."""
        out = dict(self.outbound_hrmp)
        for para, m in other.outbound_hrmp.items():
            prev = out.get(para, OutboundHrmpChannelModification())
            out[para] = OutboundHrmpChannelModification(
                prev.bytes_submitted + m.bytes_submitted,
                prev.messages_submitted + m.messages_submitted,
            )
        return ConstraintModifications(
            required_parent=other.required_parent if other.required_parent is not None
            else self.required_parent,
            hrmp_watermark=other.hrmp_watermark if other.hrmp_watermark is not None
            else self.hrmp_watermark,
            outbound_hrmp=out,
            ump_messages_sent=self.ump_messages_sent + other.ump_messages_sent,
            ump_bytes_sent=self.ump_bytes_sent + other.ump_bytes_sent,
            dmp_messages_processed=self.dmp_messages_processed + other.dmp_messages_processed,
            code_upgrade_applied=self.code_upgrade_applied or other.code_upgrade_applied,
        )


class ModificationErrorKind(StrEnum):
    """The reference implementation's names for a `ModificationError`."""

    AppliedNonexistentCodeUpgrade = "AppliedNonexistentCodeUpgrade"
    DisallowedHrmpWatermark = "DisallowedHrmpWatermark"
    DmpMessagesUnderflow = "DmpMessagesUnderflow"
    HrmpBytesOverflow = "HrmpBytesOverflow"
    HrmpMessagesOverflow = "HrmpMessagesOverflow"
    NoSuchHrmpChannel = "NoSuchHrmpChannel"
    UmpBytesOverflow = "UmpBytesOverflow"
    UmpMessagesOverflow = "UmpMessagesOverflow"


class ModificationError(ValueError):
    """Modifications that the constraints cannot absorb. `kind` is the reference's variant name."""

    def __init__(self, kind: ModificationErrorKind, **fields: Any) -> None:
        detail = ", ".join(f"{k}={v}" for k, v in fields.items())
        super().__init__(f"{kind}({detail})" if detail else kind)
        self.kind = kind
        self.fields = fields


def _apply(c: Constraints, m: ConstraintModifications) -> Constraints:
    """The constraints after `m`, or `ModificationError` (the checks of §3.2, in order)."""
    watermarks = list(c.hrmp_inbound.valid_watermarks)
    if m.hrmp_watermark is not None:
        wm = m.hrmp_watermark
        pos = bisect.bisect_left(watermarks, wm.block_number)
        if (pos < len(watermarks) and watermarks[pos] == wm.block_number) or wm.is_head:
            watermarks = watermarks[pos:]
        else:
            raise ModificationError(ModificationErrorKind.DisallowedHrmpWatermark, block_number=wm.block_number)
    channels = dict(c.hrmp_channels_out)
    for para, out in m.outbound_hrmp.items():
        lim = channels.get(para)
        if lim is None:
            raise ModificationError(ModificationErrorKind.NoSuchHrmpChannel, para_id=para)
        if out.bytes_submitted > lim.bytes_remaining:
            raise ModificationError(ModificationErrorKind.HrmpBytesOverflow, para_id=para,
                                    bytes_remaining=lim.bytes_remaining,
                                    bytes_submitted=out.bytes_submitted)
        if out.messages_submitted > lim.messages_remaining:
            raise ModificationError(ModificationErrorKind.HrmpMessagesOverflow, para_id=para,
                                    messages_remaining=lim.messages_remaining,
                                    messages_submitted=out.messages_submitted)
        channels[para] = OutboundHrmpChannelLimitations(
            lim.bytes_remaining - out.bytes_submitted,
            lim.messages_remaining - out.messages_submitted,
        )
    if m.ump_messages_sent > c.ump_remaining:
        raise ModificationError(ModificationErrorKind.UmpMessagesOverflow, messages_remaining=c.ump_remaining,
                                messages_submitted=m.ump_messages_sent)
    if m.ump_bytes_sent > c.ump_remaining_bytes:
        raise ModificationError(ModificationErrorKind.UmpBytesOverflow, bytes_remaining=c.ump_remaining_bytes,
                                bytes_submitted=m.ump_bytes_sent)
    if m.dmp_messages_processed > len(c.dmp_remaining_messages):
        raise ModificationError(ModificationErrorKind.DmpMessagesUnderflow,
                                messages_remaining=len(c.dmp_remaining_messages),
                                messages_processed=m.dmp_messages_processed)
    code_hash = c.validation_code_hash
    future = c.future_validation_code
    if m.code_upgrade_applied:
        if future is None:
            raise ModificationError(ModificationErrorKind.AppliedNonexistentCodeUpgrade)
        code_hash, future = future[1], None
    return dataclasses.replace(
        c,
        required_parent=m.required_parent if m.required_parent is not None else c.required_parent,
        hrmp_inbound=InboundHrmpLimitations(tuple(watermarks)),
        hrmp_channels_out=channels,
        ump_remaining=c.ump_remaining - m.ump_messages_sent,
        ump_remaining_bytes=c.ump_remaining_bytes - m.ump_bytes_sent,
        dmp_remaining_messages=c.dmp_remaining_messages[m.dmp_messages_processed:],
        validation_code_hash=code_hash,
        future_validation_code=future,
    )


def check_modifications(c: Constraints, m: ConstraintModifications) -> None:
    _apply(c, m)


def apply_modifications(c: Constraints, m: ConstraintModifications) -> Constraints:
    return _apply(c, m)


@dataclass(frozen=True)
class RelayChainBlockInfo:
    hash: bytes
    number: int
    storage_root: bytes


class FragmentValidityErrorKind(StrEnum):
    """The reference implementation's names for a `FragmentValidityError`."""

    CodeSizeTooLarge = "CodeSizeTooLarge"
    CodeUpgradeRestricted = "CodeUpgradeRestricted"
    DmpAdvancementRule = "DmpAdvancementRule"
    HeadDataTooLarge = "HeadDataTooLarge"
    HrmpMessagesDescendingOrDuplicate = "HrmpMessagesDescendingOrDuplicate"
    HrmpMessagesPerCandidateOverflow = "HrmpMessagesPerCandidateOverflow"
    OutputsInvalid = "OutputsInvalid"
    PersistedValidationDataMismatch = "PersistedValidationDataMismatch"
    RelayParentTooOld = "RelayParentTooOld"
    UmpMessagesPerCandidateOverflow = "UmpMessagesPerCandidateOverflow"
    ValidationCodeMismatch = "ValidationCodeMismatch"


class FragmentValidityError(ValueError):
    """A candidate that does not fit its operating constraints (§3.3); `kind` is the reference
    name (`ValidationCodeMismatch`, `RelayParentTooOld`, ...)."""

    def __init__(self, kind: FragmentValidityErrorKind, **fields: Any) -> None:
        detail = ", ".join(f"{k}={v!r}" if isinstance(v, bytes) else f"{k}={v}"
                           for k, v in fields.items())
        super().__init__(f"{kind}({detail})" if detail else kind)
        self.kind = kind
        self.fields = fields


@dataclass(frozen=True)
class Fragment:
    """A candidate checked against the constraints at its relay parent."""

    relay_parent: RelayChainBlockInfo
    operating_constraints: Constraints
    commitments: CandidateCommitments
    persisted_validation_data: PersistedValidationData
    validation_code_hash: bytes
    modifications: ConstraintModifications

    @classmethod
    def new(
        cls,
        relay_parent: RelayChainBlockInfo,
        operating_constraints: Constraints,
        commitments: CandidateCommitments,
        persisted_validation_data: PersistedValidationData,
        validation_code_hash: bytes,
    ) -> Fragment:
        mods = check_against_constraints(
            relay_parent, operating_constraints, commitments, validation_code_hash,
            persisted_validation_data,
        )
        return cls(relay_parent, operating_constraints, commitments, persisted_validation_data,
                   validation_code_hash, mods)


def modifications_of(
    relay_parent: RelayChainBlockInfo, c: Constraints, commitments: CandidateCommitments
) -> ConstraintModifications:
    """The modifications a candidate's outputs make (UMP counted before the signal section)."""
    try:
        upward, _signals = split_upward_messages(list(commitments.upward_messages))
    except InvalidUmpSignals:
        # A malformed signal section is the relay runtime's to refuse; the limits still count
        # only the real messages before the separator.
        messages = list(commitments.upward_messages)
        upward = messages[: messages.index(UMP_SEPARATOR)]
    wm = commitments.hrmp_watermark
    watermark = (HrmpWatermarkUpdate.head(wm) if wm == relay_parent.number
                 else HrmpWatermarkUpdate.trunk(wm))
    outbound: dict[int, OutboundHrmpChannelModification] = {}
    last_recipient: int | None = None
    for i, msg in enumerate(commitments.horizontal_messages):
        if last_recipient is not None and msg.recipient <= last_recipient:
            raise FragmentValidityError(FragmentValidityErrorKind.HrmpMessagesDescendingOrDuplicate, index=i)
        last_recipient = msg.recipient
        prev = outbound.get(msg.recipient, OutboundHrmpChannelModification())
        outbound[msg.recipient] = OutboundHrmpChannelModification(
            prev.bytes_submitted + len(msg.data), prev.messages_submitted + 1
        )
    upgrade_applied = (
        c.future_validation_code is not None and relay_parent.number >= c.future_validation_code[0]
    )
    return ConstraintModifications(
        required_parent=commitments.head_data,
        hrmp_watermark=watermark,
        outbound_hrmp=outbound,
        ump_messages_sent=len(upward),
        ump_bytes_sent=sum(len(u) for u in upward),
        dmp_messages_processed=commitments.processed_downward_messages,
        code_upgrade_applied=upgrade_applied,
    )


def check_against_constraints(
    relay_parent: RelayChainBlockInfo,
    c: Constraints,
    commitments: CandidateCommitments,
    validation_code_hash: bytes,
    pvd: PersistedValidationData,
) -> ConstraintModifications:
    """The candidate's modifications if it fits `c` (checks in the order of §3.3), else
    `FragmentValidityError`."""
    mods = modifications_of(relay_parent, c, commitments)
    if validation_code_hash != c.validation_code_hash:
        raise FragmentValidityError(FragmentValidityErrorKind.ValidationCodeMismatch, expected=c.validation_code_hash,
                                    got=validation_code_hash)
    if len(commitments.head_data) > c.max_head_data_size:
        raise FragmentValidityError(FragmentValidityErrorKind.HeadDataTooLarge, max=c.max_head_data_size,
                                    got=len(commitments.head_data))
    if relay_parent.number < c.min_relay_parent_number:
        raise FragmentValidityError(FragmentValidityErrorKind.RelayParentTooOld, min=c.min_relay_parent_number,
                                    got=relay_parent.number)
    if commitments.new_validation_code is not None:
        if c.upgrade_restriction:
            raise FragmentValidityError(FragmentValidityErrorKind.CodeUpgradeRestricted)
        if len(commitments.new_validation_code) > c.max_code_size:
            raise FragmentValidityError(FragmentValidityErrorKind.CodeSizeTooLarge, max=c.max_code_size,
                                        got=len(commitments.new_validation_code))
    if len(commitments.horizontal_messages) > c.max_hrmp_num_per_candidate:
        raise FragmentValidityError(FragmentValidityErrorKind.HrmpMessagesPerCandidateOverflow,
                                    messages_allowed=c.max_hrmp_num_per_candidate,
                                    messages_submitted=len(commitments.horizontal_messages))
    expected = PersistedValidationData(c.required_parent, relay_parent.number,
                                       relay_parent.storage_root, c.max_pov_size)
    if pvd != expected:
        raise FragmentValidityError(FragmentValidityErrorKind.PersistedValidationDataMismatch, expected=expected, got=pvd)
    if (
        commitments.processed_downward_messages == 0
        and c.dmp_remaining_messages
        and c.dmp_remaining_messages[0] <= relay_parent.number
    ):
        raise FragmentValidityError(FragmentValidityErrorKind.DmpAdvancementRule)
    if mods.ump_messages_sent > c.max_ump_num_per_candidate:
        raise FragmentValidityError(FragmentValidityErrorKind.UmpMessagesPerCandidateOverflow,
                                    messages_allowed=c.max_ump_num_per_candidate,
                                    messages_submitted=mods.ump_messages_sent)
    try:
        check_modifications(c, mods)
    except ModificationError as exc:
        raise FragmentValidityError(FragmentValidityErrorKind.OutputsInvalid, error=exc) from None
    return mods
