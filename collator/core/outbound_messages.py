"""Choosing what a block sends upward (UMP) and sideways (HRMP) in on_finalize (spec §4.3).

The relay limits are totals for the whole unincluded segment, so a block may only use what its
unincluded ancestors have not used yet: remaining = relay limit − tracker usage. Messages that do
not fit stay queued in the para's state for a later block.

- UMP is an ordered queue: send the longest prefix within the per-candidate count, the remaining
  count and bytes, and the maximum message size.
- HRMP: commitments carry at most one message per recipient, recipients strictly ascending
  (spec §1.3); per recipient send the first queued message that fits the channel's remaining
  messages and bytes, for at most `hrmp_max_message_num_per_candidate` recipients.
"""

from __future__ import annotations

from dataclasses import dataclass

from collator.core.unincluded_segment import (
    HrmpChannelUpdate,
    HrmpOutboundLimits,
    OutboundBandwidthLimits,
    SegmentTracker,
    UsedBandwidth,
)
from proto.candidate import OutboundHrmpMessage


def remaining_after_segment(
    limits: OutboundBandwidthLimits, tracker: SegmentTracker
) -> OutboundBandwidthLimits:
    """The relay limits reduced by what the unincluded segment already uses (saturating)."""
    used = tracker.used_bandwidth
    channels = {}
    for recipient, lim in limits.hrmp_outgoing.items():
        u = used.hrmp_outgoing.get(recipient, HrmpChannelUpdate())
        channels[recipient] = HrmpOutboundLimits(
            bytes_remaining=max(0, lim.bytes_remaining - u.total_bytes),
            messages_remaining=max(0, lim.messages_remaining - u.msg_count),
        )
    return OutboundBandwidthLimits(
        max(0, limits.ump_messages_remaining - used.ump_msg_count),
        max(0, limits.ump_bytes_remaining - used.ump_total_bytes),
        channels,
    )


@dataclass(frozen=True)
class OutboundSelection:
    upward: list[bytes]
    horizontal: list[OutboundHrmpMessage]
    upward_left: list[bytes]
    horizontal_left: list[OutboundHrmpMessage]

    def used_bandwidth(self) -> UsedBandwidth:
        channels: dict[int, HrmpChannelUpdate] = {}
        for m in self.horizontal:
            prev = channels.get(m.recipient, HrmpChannelUpdate())
            channels[m.recipient] = prev.add(HrmpChannelUpdate(1, len(m.data)))
        return UsedBandwidth(len(self.upward), sum(len(m) for m in self.upward), channels)


def select_upward(
    queue: list[bytes], remaining: OutboundBandwidthLimits, max_per_candidate: int,
    max_message_size: int,
) -> tuple[list[bytes], list[bytes]]:
    """(sent, still queued): the longest prefix of `queue` that fits."""
    count_cap = min(max_per_candidate, remaining.ump_messages_remaining)
    sent: list[bytes] = []
    size = 0
    for msg in queue:
        if len(sent) >= count_cap or len(msg) > max_message_size:
            break
        if size + len(msg) > remaining.ump_bytes_remaining:
            break
        sent.append(msg)
        size += len(msg)
    return sent, queue[len(sent):]


def select_horizontal(
    queue: list[OutboundHrmpMessage], remaining: OutboundBandwidthLimits,
    max_per_candidate: int, max_message_size: dict[int, int],
) -> tuple[list[OutboundHrmpMessage], list[OutboundHrmpMessage]]:
    """(sent sorted by recipient, still queued in arrival order)."""
    chosen: dict[int, int] = {}  # recipient -> index in queue
    for i, m in enumerate(queue):
        if m.recipient in chosen or len(chosen) >= max_per_candidate:
            continue
        lim = remaining.hrmp_outgoing.get(m.recipient)
        if lim is None or lim.messages_remaining < 1 or len(m.data) > lim.bytes_remaining:
            continue
        if len(m.data) > max_message_size.get(m.recipient, 0):
            continue
        chosen[m.recipient] = i
    taken = set(chosen.values())
    sent = [queue[chosen[r]] for r in sorted(chosen)]
    return sent, [m for i, m in enumerate(queue) if i not in taken]


def select_outbound(
    upward_queue: list[bytes],
    horizontal_queue: list[OutboundHrmpMessage],
    limits: OutboundBandwidthLimits,
    tracker: SegmentTracker,
    max_upward_per_candidate: int,
    max_upward_message_size: int,
    hrmp_max_per_candidate: int,
    hrmp_max_message_size: dict[int, int],
) -> OutboundSelection:
    """What this block sends, given the relay `limits` and the segment's `tracker` before it."""
    remaining = remaining_after_segment(limits, tracker)
    up, up_left = select_upward(upward_queue, remaining, max_upward_per_candidate,
                                max_upward_message_size)
    side, side_left = select_horizontal(horizontal_queue, remaining, hrmp_max_per_candidate,
                                        hrmp_max_message_size)
    return OutboundSelection(up, side, up_left, side_left)
