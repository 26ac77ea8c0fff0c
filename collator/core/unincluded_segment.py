"""The unincluded segment (cumulus `parachain-system`, spec §4.1–§4.2).

A parachain runtime keeps the chain of its own blocks that the relay chain has not included yet,
and the bandwidth (UMP, HRMP) they used in total, so a block can only send what still fits in the
relay chain's queues once all its unincluded ancestors are counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum


@dataclass(frozen=True)
class HrmpChannelUpdate:
    msg_count: int = 0
    total_bytes: int = 0

    def add(self, other: HrmpChannelUpdate) -> HrmpChannelUpdate:
        return HrmpChannelUpdate(self.msg_count + other.msg_count, self.total_bytes + other.total_bytes)

    def sub(self, other: HrmpChannelUpdate) -> HrmpChannelUpdate:
        return HrmpChannelUpdate(
            max(0, self.msg_count - other.msg_count), max(0, self.total_bytes - other.total_bytes)
        )

    def is_empty(self) -> bool:
        return self.msg_count == 0 and self.total_bytes == 0


@dataclass(frozen=True)
class UsedBandwidth:
    ump_msg_count: int = 0
    ump_total_bytes: int = 0
    hrmp_outgoing: Mapping[int, HrmpChannelUpdate] = field(default_factory=dict)


class GoAhead(Enum):
    GO_AHEAD = "GoAhead"
    ABORT = "Abort"


@dataclass(frozen=True)
class Ancestor:
    """One unincluded block: what it used, its head hash once known, the signal it consumed."""

    used_bandwidth: UsedBandwidth
    para_head_hash: bytes | None = None
    consumed_go_ahead_signal: GoAhead | None = None


@dataclass(frozen=True)
class HrmpOutboundLimits:
    bytes_remaining: int
    messages_remaining: int


@dataclass(frozen=True)
class OutboundBandwidthLimits:
    """What the whole segment may still send, read from the relay state at the relay parent."""

    ump_messages_remaining: int
    ump_bytes_remaining: int
    hrmp_outgoing: Mapping[int, HrmpOutboundLimits]

    @classmethod
    def from_relay_state(
        cls,
        ump_remaining: tuple[int, int],
        egress_channels: Mapping[int, tuple[int, int, int, int]],
    ) -> OutboundBandwidthLimits:
        """`ump_remaining` = (count, bytes) of the relay dispatch queue;
        `egress_channels[recipient]` = (max_capacity, max_total_size, msg_count, total_size)."""
        return cls(
            ump_remaining[0],
            ump_remaining[1],
            {
                r: HrmpOutboundLimits(
                    bytes_remaining=max(0, max_size - size),
                    messages_remaining=max(0, max_cap - count),
                )
                for r, (max_cap, max_size, count, size) in egress_channels.items()
            },
        )


class ErrorKind(Enum):
    HRMP_MESSAGES_OVERFLOW = "HrmpMessagesOverflow"
    HRMP_BYTES_OVERFLOW = "HrmpBytesOverflow"
    UMP_MESSAGES_OVERFLOW = "UmpMessagesOverflow"
    UMP_BYTES_OVERFLOW = "UmpBytesOverflow"
    INVALID_HRMP_WATERMARK = "InvalidHrmpWatermark"
    UPGRADE_GO_AHEAD_ALREADY_PROCESSED = "UpgradeGoAheadAlreadyProcessed"


class BandwidthUpdateError(ValueError):
    """A block that would push the segment past a limit. `remaining`/`submitted` (or
    `submitted`/`latest` for watermarks) mirror the reference's error fields."""

    def __init__(self, kind: ErrorKind, *, recipient: int | None = None, remaining: int = 0,
                 submitted: int = 0, latest: int = 0) -> None:
        super().__init__(f"{kind.value}(recipient={recipient}, remaining={remaining}, "
                         f"submitted={submitted}, latest={latest})")
        self.kind = kind
        self.recipient = recipient
        self.remaining = remaining
        self.submitted = submitted
        self.latest = latest


@dataclass(frozen=True)
class HrmpWatermarkUpdate:
    """`Head(n)`: the block's relay parent (always allowed); `Trunk(n)`: an older block number."""

    value: int
    is_head: bool

    @classmethod
    def new(cls, watermark: int, relay_parent_number: int) -> HrmpWatermarkUpdate:
        if watermark >= relay_parent_number:
            return cls(relay_parent_number, True)
        return cls(watermark, False)


@dataclass(frozen=True)
class SegmentTracker:
    """Aggregate of the segment: total bandwidth used, latest watermark, the go-ahead consumed."""

    used_bandwidth: UsedBandwidth = field(default_factory=UsedBandwidth)
    hrmp_watermark: int | None = None
    consumed_go_ahead_signal: GoAhead | None = None

    def append(
        self,
        block: Ancestor,
        watermark: HrmpWatermarkUpdate,
        limits: OutboundBandwidthLimits,
    ) -> SegmentTracker:
        """The tracker with `block` added, or `BandwidthUpdateError` (self is never changed)."""
        if self.consumed_go_ahead_signal is not None and block.consumed_go_ahead_signal is not None:
            raise BandwidthUpdateError(ErrorKind.UPGRADE_GO_AHEAD_ALREADY_PROCESSED)
        if (
            self.hrmp_watermark is not None
            and not watermark.is_head
            and watermark.value < self.hrmp_watermark
        ):
            raise BandwidthUpdateError(
                ErrorKind.INVALID_HRMP_WATERMARK,
                submitted=watermark.value,
                latest=self.hrmp_watermark,
            )
        used = self.used_bandwidth
        add = block.used_bandwidth
        ump_count = used.ump_msg_count + add.ump_msg_count
        if ump_count > limits.ump_messages_remaining:
            raise BandwidthUpdateError(
                ErrorKind.UMP_MESSAGES_OVERFLOW,
                remaining=limits.ump_messages_remaining,
                submitted=ump_count,
            )
        ump_bytes = used.ump_total_bytes + add.ump_total_bytes
        if ump_bytes > limits.ump_bytes_remaining:
            raise BandwidthUpdateError(
                ErrorKind.UMP_BYTES_OVERFLOW, remaining=limits.ump_bytes_remaining, submitted=ump_bytes
            )
        hrmp = dict(used.hrmp_outgoing)
        for recipient, update in add.hrmp_outgoing.items():
            lim = limits.hrmp_outgoing.get(recipient, HrmpOutboundLimits(0, 0))
            total = hrmp.get(recipient, HrmpChannelUpdate()).add(update)
            if total.msg_count > lim.messages_remaining:
                raise BandwidthUpdateError(
                    ErrorKind.HRMP_MESSAGES_OVERFLOW,
                    recipient=recipient,
                    remaining=lim.messages_remaining,
                    submitted=total.msg_count,
                )
            if total.total_bytes > lim.bytes_remaining:
                raise BandwidthUpdateError(
                    ErrorKind.HRMP_BYTES_OVERFLOW,
                    recipient=recipient,
                    remaining=lim.bytes_remaining,
                    submitted=total.total_bytes,
                )
            hrmp[recipient] = total
        return SegmentTracker(
            UsedBandwidth(ump_count, ump_bytes, hrmp),
            watermark.value,
            block.consumed_go_ahead_signal or self.consumed_go_ahead_signal,
        )

    def subtract(self, block: Ancestor) -> SegmentTracker:
        """The tracker without `block` (always the oldest: the watermark stays as it is)."""
        used = self.used_bandwidth
        sub = block.used_bandwidth
        hrmp = dict(used.hrmp_outgoing)
        for recipient, update in sub.hrmp_outgoing.items():
            left = hrmp.get(recipient, HrmpChannelUpdate()).sub(update)
            if left.is_empty():
                hrmp.pop(recipient, None)
            else:
                hrmp[recipient] = left
        signal = self.consumed_go_ahead_signal
        if block.consumed_go_ahead_signal is not None and block.consumed_go_ahead_signal == signal:
            signal = None
        return replace(
            self,
            used_bandwidth=UsedBandwidth(
                max(0, used.ump_msg_count - sub.ump_msg_count),
                max(0, used.ump_total_bytes - sub.ump_total_bytes),
                hrmp,
            ),
            consumed_go_ahead_signal=signal,
        )


def size_after_included(included_hash: bytes, segment: Sequence[Ancestor]) -> int:
    """Ancestors after the one whose head is `included_hash`; the whole segment if not found."""
    for i, ancestor in enumerate(segment):
        if ancestor.para_head_hash == included_hash:
            return len(segment) - i - 1
    return len(segment)
