"""Spec §7 scenarios 26–33: the unincluded segment's bandwidth tracker (cumulus
`unincluded_segment.rs` tests)."""

from __future__ import annotations

import pytest

from collator.core.unincluded_segment import (
    Ancestor,
    BandwidthUpdateError,
    ErrorKind,
    GoAhead,
    HrmpChannelUpdate,
    HrmpOutboundLimits,
    HrmpWatermarkUpdate,
    OutboundBandwidthLimits,
    SegmentTracker,
    UsedBandwidth,
    size_after_included,
)

HEAD0 = HrmpWatermarkUpdate(0, True)


def hrmp(recipient: int, msgs: int, size: int) -> Ancestor:
    return Ancestor(UsedBandwidth(0, 0, {recipient: HrmpChannelUpdate(msgs, size)}))


def ump(msgs: int, size: int) -> Ancestor:
    return Ancestor(UsedBandwidth(msgs, size, {}))


def limits(ump_: tuple[int, int] = (0, 0), **channels: tuple[int, int]) -> OutboundBandwidthLimits:
    return OutboundBandwidthLimits(
        ump_[0], ump_[1], {int(k[1:]): HrmpOutboundLimits(b, m) for k, (b, m) in channels.items()}
    )


def test_s7_26_outbound_limits_constructed_correctly() -> None:
    lim = OutboundBandwidthLimits.from_relay_state(
        (1, 50), {1: (7, 60, 5, 50), 2: (50, 500, 40, 500)}
    )
    assert lim.hrmp_outgoing[1] == HrmpOutboundLimits(bytes_remaining=10, messages_remaining=2)
    assert lim.hrmp_outgoing[2] == HrmpOutboundLimits(bytes_remaining=0, messages_remaining=10)
    assert (lim.ump_messages_remaining, lim.ump_bytes_remaining) == (1, 50)


def test_s7_27_hrmp_msg_count_and_bytes_limits() -> None:
    lim = limits(p0=(1000, 5))
    t = SegmentTracker()
    for _ in range(5):
        t = t.append(hrmp(0, 1, 1), HEAD0, lim)
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(hrmp(0, 1, 1), HEAD0, lim)
    assert (e.value.kind, e.value.remaining, e.value.submitted) == (
        ErrorKind.HRMP_MESSAGES_OVERFLOW, 5, 6)
    t = SegmentTracker().append(hrmp(0, 2, 1), HEAD0, limits(p0=(1000, 3)))
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(hrmp(0, 3, 1), HEAD0, limits(p0=(1000, 3)))
    assert (e.value.remaining, e.value.submitted) == (3, 5)
    lim = limits(p0=(25, 1000))
    t = SegmentTracker()
    for _ in range(5):
        t = t.append(hrmp(0, 1, 4), HEAD0, lim)
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(hrmp(0, 1, 6), HEAD0, lim)
    assert (e.value.kind, e.value.remaining, e.value.submitted) == (
        ErrorKind.HRMP_BYTES_OVERFLOW, 25, 26)


def test_s7_28_hrmp_limits_with_segment() -> None:
    lim = limits(p0=(30, 10), p1=(1000, 3))
    segment = [hrmp(0, 1, 6) for _ in range(5)]
    t = SegmentTracker()
    for a in segment:
        t = t.append(a, HEAD0, lim)
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(hrmp(0, 1, 1), HEAD0, lim)
    assert (e.value.kind, e.value.remaining, e.value.submitted) == (
        ErrorKind.HRMP_BYTES_OVERFLOW, 30, 31)
    t = t.subtract(segment[0]).append(hrmp(0, 1, 1), HEAD0, lim)
    t = t.append(hrmp(1, 3, 1), HEAD0, lim)
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(hrmp(1, 3, 1), HEAD0, lim)
    assert (e.value.kind, e.value.recipient, e.value.remaining, e.value.submitted) == (
        ErrorKind.HRMP_MESSAGES_OVERFLOW, 1, 3, 6)


def test_s7_29_ump_limits_with_segment() -> None:
    lim = limits((5, 50))
    t = SegmentTracker()
    for _ in range(4):
        t = t.append(ump(1, 10), HEAD0, lim)
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(ump(1, 30), HEAD0, lim)
    assert (e.value.kind, e.value.remaining, e.value.submitted) == (ErrorKind.UMP_BYTES_OVERFLOW, 50, 70)
    t = t.append(ump(1, 5), HEAD0, lim)
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(ump(1, 5), HEAD0, lim)
    assert (e.value.kind, e.value.remaining, e.value.submitted) == (ErrorKind.UMP_MESSAGES_OVERFLOW, 5, 6)


def test_s7_30_segment_hrmp_watermark() -> None:
    lim = limits()
    empty = ump(0, 0)
    t = SegmentTracker().append(empty, HrmpWatermarkUpdate(0, True), lim)
    t = t.append(empty, HrmpWatermarkUpdate(0, False), lim)
    for w in range(1, 5):
        t = t.append(empty, HrmpWatermarkUpdate(w, False), lim)
    for w in range(0, 4):
        with pytest.raises(BandwidthUpdateError) as e:
            t.append(empty, HrmpWatermarkUpdate(w, False), lim)
        assert (e.value.kind, e.value.submitted, e.value.latest) == (
            ErrorKind.INVALID_HRMP_WATERMARK, w, 4)
    t = t.append(empty, HrmpWatermarkUpdate(5, False), lim)
    assert t.append(empty, HrmpWatermarkUpdate(4, True), lim).hrmp_watermark == 4
    assert HrmpWatermarkUpdate.new(7, 7) == HrmpWatermarkUpdate(7, True)
    assert HrmpWatermarkUpdate.new(9, 7) == HrmpWatermarkUpdate(7, True)
    assert HrmpWatermarkUpdate.new(3, 7) == HrmpWatermarkUpdate(3, False)


def test_s7_31_segment_drops_empty_hrmp_channels() -> None:
    lim = limits(p0=(100, 100), p1=(100, 100))
    a, b = hrmp(0, 1, 1), hrmp(1, 2, 2)
    t = SegmentTracker().append(a, HEAD0, lim).append(b, HEAD0, lim)
    assert len(t.used_bandwidth.hrmp_outgoing) == 2
    t = t.subtract(a)
    assert set(t.used_bandwidth.hrmp_outgoing) == {1}
    t = t.subtract(b)
    assert t.used_bandwidth.hrmp_outgoing == {}


def test_s7_32_segment_go_ahead_signal_is_unique() -> None:
    lim = limits()
    a0 = Ancestor(UsedBandwidth(), None, GoAhead.GO_AHEAD)
    a1 = Ancestor(UsedBandwidth())
    a2 = Ancestor(UsedBandwidth(), None, GoAhead.ABORT)
    t = SegmentTracker().append(a0, HEAD0, lim).append(a1, HEAD0, lim)
    with pytest.raises(BandwidthUpdateError) as e:
        t.append(a2, HEAD0, lim)
    assert e.value.kind == ErrorKind.UPGRADE_GO_AHEAD_ALREADY_PROCESSED
    t = t.subtract(a0).append(a2, HEAD0, lim)
    assert t.consumed_go_ahead_signal == GoAhead.ABORT


def test_s7_33_size_after_included_works() -> None:
    segment = [Ancestor(UsedBandwidth(), bytes([h])) for h in (0xA, 0xB, 0xC)]
    assert [size_after_included(bytes([h]), segment) for h in (0xA, 0xB, 0xC, 0xD)] == [2, 1, 0, 3]
    assert size_after_included(b"\x0a", []) == 0
