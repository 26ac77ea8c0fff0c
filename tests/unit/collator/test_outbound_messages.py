"""Spec §7 scenario 38 and the on_finalize message selection: a block sends only what still fits
once its unincluded ancestors' usage is counted; the segment's prune / capacity / append steps."""

from __future__ import annotations

import pytest

from collator.core.consensus_hook import BlockInvalid
from collator.core.outbound_messages import (
    remaining_after_segment,
    select_horizontal,
    select_outbound,
    select_upward,
)
from collator.core.relay_view import GO_AHEAD_VALUE, read_relay_view, relay_proof_keys
from collator.core.segment_lifecycle import UnincludedSegment
from collator.core.unincluded_segment import (
    Ancestor,
    GoAhead,
    HrmpChannelUpdate,
    HrmpOutboundLimits,
    HrmpWatermarkUpdate,
    OutboundBandwidthLimits,
    SegmentTracker,
    UsedBandwidth,
)
from proto.candidate import OutboundHrmpMessage
from proto.codec import encode
from proto.hashing import blake2_256
from proto.relay_state import (
    ACTIVE_CONFIG_KEY,
    CURRENT_SLOT_KEY,
    AbridgedHostConfiguration,
    AbridgedHrmpChannel,
    RelayDispatchQueueRemaining,
    hrmp_channel_key,
    para_head_key,
    prove,
    relay_dispatch_queue_key,
    state_root,
    upgrade_go_ahead_key,
)

PARA = 2000
RECIPIENT = 400


def config(hrmp_per_candidate: int = 10, ump_per_candidate: int = 10) -> AbridgedHostConfiguration:
    return AbridgedHostConfiguration(
        max_code_size=1 << 20, max_head_data_size=1 << 15, max_upward_queue_count=10,
        max_upward_queue_size=1 << 16, max_upward_message_size=1 << 10,
        max_upward_message_num_per_candidate=ump_per_candidate,
        hrmp_max_message_num_per_candidate=hrmp_per_candidate, validation_upgrade_cooldown=2,
        validation_upgrade_delay=2, max_candidate_depth=3, allowed_ancestry_len=2)


def head(n: int) -> bytes:
    return b"para-head-%d" % n


def relay_state(slot: int, included: int, channel: tuple[int, int] | None,
                signal: int | None = None) -> dict[bytes, bytes]:
    state = {
        CURRENT_SLOT_KEY: encode(slot),
        ACTIVE_CONFIG_KEY: encode(config()),
        para_head_key(PARA): head(included),
        relay_dispatch_queue_key(PARA): encode(RelayDispatchQueueRemaining(5, 1000)),
        b"unrelated": b"x",
    }
    if channel is not None:
        msg_count, total_size = channel
        state[hrmp_channel_key(PARA, RECIPIENT)] = encode(
            AbridgedHrmpChannel(max_capacity=2, max_total_size=4, max_message_size=10,
                                msg_count=msg_count, total_size=total_size))
    if signal is not None:
        state[upgrade_go_ahead_key(PARA)] = encode(signal)
    return state


def test_s7_38_hrmp_outbound_respects_used_bandwidth() -> None:
    # What the relay chain holds in the channel when block n is built (messages of included
    # blocks land there, and the recipient drains them).
    in_channel = {5: (1, 1), 6: (2, 2), 7: (1, 1), 8: (0, 0)}
    queued_by_block = {2: [b"2", b"2222"], 3: [b"3"], 4: [b"444", b"4"]}
    segment = UnincludedSegment()
    queue: list[OutboundHrmpMessage] = []
    sent: dict[int, list[bytes]] = {}
    for n in range(1, 9):
        included = max(0, n - 3)  # inclusion delay 2
        state = relay_state(n, included, in_channel.get(n, (0, 0)))
        view = read_relay_view(state_root(state), prove(state, relay_proof_keys(PARA, [RECIPIENT])),
                               PARA)
        segment = segment.note_parent_head(blake2_256(head(n - 1)))
        assert view.included_head is not None
        segment = segment.prune_included(blake2_256(view.included_head), blake2_256(head(n - 1)))
        segment.check_capacity(3)
        queue += [OutboundHrmpMessage(RECIPIENT, d) for d in queued_by_block.get(n, [])]
        assert view.config is not None
        selection = select_outbound([], queue, view.outbound_limits(), segment.tracker, 0, 0,
                                    view.config.hrmp_max_message_num_per_candidate,
                                    {RECIPIENT: view.hrmp_max_message_size(RECIPIENT)})
        queue = selection.horizontal_left
        segment = segment.append(Ancestor(selection.used_bandwidth()),
                                 HrmpWatermarkUpdate.new(n, n), view.outbound_limits())
        sent[n] = [m.data for m in selection.horizontal]
    assert sent == {1: [], 2: [b"2"], 3: [b"3"], 4: [], 5: [], 6: [], 7: [b"444"], 8: [b"4"]}
    assert [m.data for m in queue] == [b"2222"]  # never fits the 4-byte channel next to others


def test_upward_messages_are_an_ordered_prefix_within_what_is_left() -> None:
    limits = OutboundBandwidthLimits(5, 50, {})
    tracker = SegmentTracker(UsedBandwidth(2, 20, {}))
    left = remaining_after_segment(limits, tracker)
    assert (left.ump_messages_remaining, left.ump_bytes_remaining) == (3, 30)
    queue = [b"a" * 10, b"b" * 15, b"c" * 10, b"d"]
    assert select_upward(queue, left, 10, 100) == ([b"a" * 10, b"b" * 15], [b"c" * 10, b"d"])
    assert select_upward(queue, left, 1, 100) == ([b"a" * 10], queue[1:])
    assert select_upward(queue, left, 10, 9) == ([], queue)  # too big to ever go first


def test_horizontal_messages_one_per_recipient_in_ascending_order() -> None:
    remaining = OutboundBandwidthLimits(0, 0, {
        7: HrmpOutboundLimits(bytes_remaining=100, messages_remaining=5),
        3: HrmpOutboundLimits(bytes_remaining=100, messages_remaining=5),
    })
    queue = [OutboundHrmpMessage(7, b"x"), OutboundHrmpMessage(3, b"y"),
             OutboundHrmpMessage(7, b"z"), OutboundHrmpMessage(9, b"no channel")]
    sent, left = select_horizontal(queue, remaining, 10, {3: 10, 7: 10})
    assert sent == [OutboundHrmpMessage(3, b"y"), OutboundHrmpMessage(7, b"x")]
    assert left == [OutboundHrmpMessage(7, b"z"), OutboundHrmpMessage(9, b"no channel")]
    sent, _ = select_horizontal(queue, remaining, 1, {3: 10, 7: 10})
    assert sent == [OutboundHrmpMessage(7, b"x")]  # per-candidate cap: first recipient in queue
    sent, _ = select_horizontal(queue, remaining, 10, {3: 0, 7: 10})
    assert sent == [OutboundHrmpMessage(7, b"x")]  # above the channel's max message size


def test_relay_view_reads_optional_entries_and_rejects_a_forged_proof() -> None:
    state = relay_state(9, 4, None, signal=GO_AHEAD_VALUE)
    proof = prove(state, relay_proof_keys(PARA, [RECIPIENT]))
    view = read_relay_view(state_root(state), proof, PARA)
    assert view.relay_slot == 9 and view.included_head == head(4)
    assert view.upgrade_signal == GoAhead.GO_AHEAD and view.egress_channels == {}
    assert view.outbound_limits().ump_messages_remaining == 5
    aborted = relay_state(9, 4, None, signal=0)
    assert read_relay_view(state_root(aborted), prove(aborted, relay_proof_keys(PARA)),
                           PARA).upgrade_signal == GoAhead.ABORT
    with pytest.raises(BlockInvalid, match="invalid relay state proof"):
        read_relay_view(state_root(relay_state(9, 5, None)), proof, PARA)


def test_segment_capacity_and_expect_parent_included() -> None:
    parent = blake2_256(b"parent")
    seg = UnincludedSegment().append(Ancestor(UsedBandwidth(1, 4, {})), HrmpWatermarkUpdate(1, True),
                                     OutboundBandwidthLimits(10, 100, {}))
    seg = seg.note_parent_head(parent)
    with pytest.raises(BlockInvalid, match=r"no space left for the block in the unincluded "
                                           r"segment: new_len\(1\) < capacity\(1\)"):
        seg.prune_included(blake2_256(b"older"), parent).check_capacity(1)
    # sync rule: the parent must be the included block; a missing head is taken to be the parent
    with pytest.raises(BlockInvalid, match="expected parent to be included"):
        seg.prune_included(blake2_256(b"older"), parent, expects_parent_included=True)
    pruned = seg.prune_included(None, parent, expects_parent_included=True)
    assert len(pruned) == 0 and pruned.tracker.used_bandwidth == UsedBandwidth(0, 0, {})
    with pytest.raises(BlockInvalid, match="lacks the included para head"):
        seg.prune_included(None, parent)


def test_append_refuses_what_the_relay_limits_do_not_allow() -> None:
    limits = OutboundBandwidthLimits(0, 0, {5: HrmpOutboundLimits(3, 1)})
    seg = UnincludedSegment().append(
        Ancestor(UsedBandwidth(0, 0, {5: HrmpChannelUpdate(1, 3)})), HrmpWatermarkUpdate(1, True),
        limits)
    with pytest.raises(BlockInvalid, match="HrmpMessagesOverflow"):
        seg.append(Ancestor(UsedBandwidth(0, 0, {5: HrmpChannelUpdate(1, 0)})),
                   HrmpWatermarkUpdate(2, True), limits)
    assert len(seg) == 1
