"""Executing a parachain block (cumulus `parachain-system`, spec §4.3): the same code builds a
block on the collator and re-executes it in the validation function.

Per block: note the parent's head hash on the newest unincluded ancestor; check the relay state
proof against the relay parent's root; apply the velocity hook; prune the unincluded segment by the
included head read from the proof; refuse the block if the segment is full; consume an upgrade
go-ahead at most once per segment; dispatch inbound messages not handled by an ancestor; apply the
transactions within the weight limit; then append this block to the segment's bandwidth tracker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collator.core.consensus_hook import BlockInvalid, FixedVelocityConsensusHook, RelaySlotInfo
from collator.core.outbound_messages import select_outbound
from collator.core.para_runtime import (
    Extrinsic,
    ExtrinsicError,
    ParaHeader,
    SetCode,
    ValidationInherent,
    apply_extrinsic,
    extrinsics_root,
    read_int,
    weight_of,
)
from collator.core.relay_view import read_relay_view
from collator.core.segment_lifecycle import UnincludedSegment
from collator.core.storage_keys import (
    CAPACITY_KEY,
    CODE_KEY,
    HANDLED_KEY,
    HORIZONTAL_QUEUE_KEY,
    LAST_RELAY_KEY,
    NUMBER_KEY,
    PENDING_CODE_KEY,
    RELAY_SLOT_MS_KEY,
    SEGMENT_KEY,
    SLOT_INFO_KEY,
    TRACKER_KEY,
    UPWARD_QUEUE_KEY,
    VELOCITY_KEY,
    WEIGHT_LIMIT_KEY,
)
from collator.core.unincluded_segment import (
    Ancestor,
    GoAhead,
    HrmpChannelUpdate,
    HrmpWatermarkUpdate,
    SegmentTracker,
    UsedBandwidth,
)
from proto.candidate import OutboundHrmpMessage
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.relay_state import (
    state_root,
)
from proto.ump_signals import SelectCore, UmpSignal, with_signals

# -- segment storage codec ------------------------------------------------------------------


def _bw_to(b: UsedBandwidth) -> list[object]:
    return [b.ump_msg_count, b.ump_total_bytes,
            [[r, u.msg_count, u.total_bytes] for r, u in sorted(b.hrmp_outgoing.items())]]


def _bw_from(x: list[Any]) -> UsedBandwidth:
    return UsedBandwidth(x[0], x[1], {r: HrmpChannelUpdate(m, s) for r, m, s in x[2]})


def _signal_to(s: GoAhead | None) -> str | None:
    return s.value if s is not None else None


def _signal_from(s: str | None) -> GoAhead | None:
    return GoAhead(s) if s is not None else None


def load_segment(entries: dict[bytes, bytes]) -> tuple[list[Ancestor], SegmentTracker]:
    try:
        raw = decode(entries[SEGMENT_KEY], list) if SEGMENT_KEY in entries else []
        t = decode(entries[TRACKER_KEY], list) if TRACKER_KEY in entries else None
    except DecodeError as exc:
        raise BlockInvalid(f"corrupt unincluded segment: {exc}") from None
    segment = [Ancestor(_bw_from(a[0]), a[1], _signal_from(a[2])) for a in raw]
    tracker = SegmentTracker() if t is None else SegmentTracker(_bw_from(t[0]), t[1], _signal_from(t[2]))
    return segment, tracker


def store_segment(entries: dict[bytes, bytes], segment: list[Ancestor], tracker: SegmentTracker) -> None:
    entries[SEGMENT_KEY] = encode([[_bw_to(a.used_bandwidth), a.para_head_hash,
                                    _signal_to(a.consumed_go_ahead_signal)] for a in segment])
    entries[TRACKER_KEY] = encode([_bw_to(tracker.used_bandwidth), tracker.hrmp_watermark,
                                   _signal_to(tracker.consumed_go_ahead_signal)])


def hook_of(entries: dict[bytes, bytes]) -> FixedVelocityConsensusHook:
    return FixedVelocityConsensusHook(read_int(entries, VELOCITY_KEY, 1),
                                      read_int(entries, CAPACITY_KEY, 1),
                                      read_int(entries, RELAY_SLOT_MS_KEY, 6000))


def slot_info_of(entries: dict[bytes, bytes]) -> RelaySlotInfo | None:
    raw = entries.get(SLOT_INFO_KEY)
    if raw is None:
        return None
    slot, authored = decode(raw, list)
    return RelaySlotInfo(slot, authored)


@dataclass(frozen=True)
class ExecutionOutput:
    header: ParaHeader
    upward_messages: list[bytes]
    horizontal_messages: list[OutboundHrmpMessage]
    new_validation_code: bytes | None
    processed_downward_messages: int
    hrmp_watermark: int
    weight: int


def execute_block(
    parent_entries: dict[bytes, bytes],
    parent_header: ParaHeader,
    inherent: ValidationInherent,
    extrinsics: list[Extrinsic],
    core_selector: int | None = None,
) -> tuple[dict[bytes, bytes], ExecutionOutput]:
    """Run a block on a copy of the parent state; `BlockInvalid` on any rule broken. The returned
    header has the state and extrinsics roots filled in."""
    entries = dict(parent_entries)
    para_id = parent_header.para_id
    pvd = inherent.validation_data
    if pvd.parent_head != parent_header.head_data():
        raise BlockInvalid("validation data names another parent head")
    # on_initialize: the parent's head hash is now known for the newest ancestor
    ancestors, tracker = load_segment(entries)
    segment = UnincludedSegment(tuple(ancestors), tracker).note_parent_head(parent_header.hash())
    last_relay = read_int(entries, LAST_RELAY_KEY, 0)
    if pvd.relay_parent_number < last_relay:
        raise BlockInvalid("relay parent number moved backwards")
    view = read_relay_view(pvd.relay_parent_storage_root, inherent.relay_state_proof, para_id)
    hook = hook_of(entries)
    capacity, slot_info = hook.on_state_proof(view.relay_slot, view.relay_slot, hook.relay_slot_ms,
                                              slot_info_of(entries))
    entries[SLOT_INFO_KEY] = encode([slot_info.relay_slot, slot_info.authored])
    included = None if view.included_head is None else blake2_256(view.included_head)
    segment = segment.prune_included(included, parent_header.hash())
    segment.check_capacity(capacity)
    # an upgrade signal is consumed by one block of the segment only
    consumed: GoAhead | None = None
    if view.upgrade_signal is not None and segment.tracker.consumed_go_ahead_signal is None:
        consumed = view.upgrade_signal
        pending_code = entries.pop(PENDING_CODE_KEY, None)
        if pending_code is not None and consumed is GoAhead.GO_AHEAD:
            entries[CODE_KEY] = pending_code
    # inbound messages: dispatch only those an ancestor has not handled yet
    handled = decode(entries[HANDLED_KEY], list) if HANDLED_KEY in entries else []
    new_dmp = [m for m in inherent.downward_messages if m.sent_at > last_relay]
    new_hrmp = [m for m in inherent.horizontal_messages if m.message.sent_at > last_relay]
    for m in new_dmp:
        handled.append(["dmp", m.sent_at, blake2_256(m.data)])
    for h in new_hrmp:
        handled.append(["hrmp", h.sender, h.message.sent_at, blake2_256(h.message.data)])
    entries[HANDLED_KEY] = encode(handled)
    watermark = max([m.message.sent_at for m in new_hrmp], default=pvd.relay_parent_number)
    # transactions
    limit = read_int(entries, WEIGHT_LIMIT_KEY, 0)
    weight = 0
    new_code: bytes | None = None
    for x in extrinsics:
        weight += weight_of(x)
        if weight > limit:
            raise BlockInvalid(f"block weight {weight} exceeds the limit {limit}")
        try:
            apply_extrinsic(entries, x)
        except ExtrinsicError as exc:
            raise BlockInvalid(f"extrinsic failed: {exc}") from None
        if isinstance(x, SetCode):
            new_code = x.code
    # on_finalize: send what the relay queues still take after the segment's usage, then join
    # the segment
    config = view.config
    upward_queue = decode(entries[UPWARD_QUEUE_KEY], list) if UPWARD_QUEUE_KEY in entries else []
    side_queue = [OutboundHrmpMessage(r, d) for r, d in (
        decode(entries[HORIZONTAL_QUEUE_KEY], list) if HORIZONTAL_QUEUE_KEY in entries else [])]
    limits = view.outbound_limits()
    selection = select_outbound(
        upward_queue, side_queue, limits, segment.tracker,
        config.max_upward_message_num_per_candidate if config else 0,
        config.max_upward_message_size if config else 0,
        config.hrmp_max_message_num_per_candidate if config else 0,
        {r: view.hrmp_max_message_size(r) for r in view.egress_channels})
    entries[UPWARD_QUEUE_KEY] = encode(selection.upward_left)
    entries[HORIZONTAL_QUEUE_KEY] = encode([[m.recipient, m.data] for m in selection.horizontal_left])
    ancestor = Ancestor(selection.used_bandwidth(), None, consumed)
    segment = segment.append(ancestor, HrmpWatermarkUpdate.new(watermark, pvd.relay_parent_number),
                             limits)
    store_segment(entries, list(segment.ancestors), segment.tracker)
    entries[LAST_RELAY_KEY] = encode(pvd.relay_parent_number)
    number = parent_header.number + 1
    entries[NUMBER_KEY] = encode(number)
    header = ParaHeader(para_id, number, parent_header.hash(), state_root(entries),
                        extrinsics_root(extrinsics), pvd.relay_parent_number, view.relay_slot,
                        core_selector)
    signals: list[UmpSignal] = [] if core_selector is None else [SelectCore(core_selector, 0)]
    return entries, ExecutionOutput(header, with_signals(selection.upward, signals),
                                    selection.horizontal, new_code, len(new_dmp), watermark,
                                    weight)
