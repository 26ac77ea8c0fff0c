"""Executing a parachain block (cumulus `parachain-system`, spec §4.3): the same code builds a
block on the collator and re-executes it in the validation function.

`execute_block` runs these phases in order: `check_parent` (the validation data names this
parent), `on_initialize` (note the parent's head hash on the newest unincluded ancestor; the relay
parent never moves back), `on_state_proof` (read the relay state proof against the relay parent's
root, apply the velocity hook, prune the segment by the included head, refuse the block if the
segment is full), `consume_go_ahead` (at most once per segment), `dispatch_inbound` (messages no
ancestor handled), `apply_extrinsics` (within the weight limit) and `on_finalize` (send what the
relay's limits allow and append this block to the segment's bandwidth tracker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collator.core.consensus_hook import BlockInvalid, FixedVelocityConsensusHook, RelaySlotInfo
from collator.core.outbound_messages import OutboundSelection, select_outbound
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
from collator.core.relay_view import RelayChainView, read_relay_view
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
from proto.candidate import OutboundHrmpMessage, PersistedValidationData
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
    header has the state and extrinsics roots filled in.

    The phases below run in this order, each on the same copy of the state; a later phase relies on
    what an earlier one wrote (the segment pruned before the go-ahead is looked at, the inbound
    messages dispatched before the transactions run, the outbound queues filled by the transactions
    before they are drained)."""
    entries = dict(parent_entries)
    pvd = inherent.validation_data
    check_parent(parent_header, pvd)
    segment, last_relay = on_initialize(entries, parent_header, pvd)
    view, segment = on_state_proof(entries, inherent, segment, parent_header)
    consumed = consume_go_ahead(entries, view, segment)
    processed_downward, watermark = dispatch_inbound(entries, inherent, last_relay)
    weight, new_code = apply_extrinsics(entries, extrinsics)
    selection = on_finalize(entries, view, segment, consumed, watermark, parent_header, pvd)
    header = ParaHeader(parent_header.para_id, parent_header.number + 1, parent_header.hash(),
                        state_root(entries), extrinsics_root(extrinsics), pvd.relay_parent_number,
                        view.relay_slot, core_selector)
    signals: list[UmpSignal] = [] if core_selector is None else [SelectCore(core_selector, 0)]
    return entries, ExecutionOutput(header, with_signals(selection.upward, signals),
                                    selection.horizontal, new_code, processed_downward, watermark,
                                    weight)


def check_parent(parent_header: ParaHeader, pvd: PersistedValidationData) -> None:
    """The inherent's validation data must name the parent this block is executed on.

    A phase of its own because it is the one check that reads no state: it ties the inherent, which
    came with the block from its author, to the parent the executor chose, before any of that
    parent's state is used."""
    if pvd.parent_head != parent_header.head_data():
        raise BlockInvalid("validation data names another parent head")


def on_initialize(
    entries: dict[bytes, bytes], parent_header: ParaHeader, pvd: PersistedValidationData,
) -> tuple[UnincludedSegment, int]:
    """Load the unincluded segment, record the parent's head hash on its newest ancestor, and
    refuse a relay parent older than the parent block's. Returns the segment and the relay parent
    number the parent block was built on.

    Cumulus does this in `on_initialize`, before the inherent is seen: the parent's hash only
    becomes known once a child is built on it, and the relay parent bound is what the inherent's
    proof is then read against."""
    ancestors, tracker = load_segment(entries)
    segment = UnincludedSegment(tuple(ancestors), tracker).note_parent_head(parent_header.hash())
    last_relay = read_int(entries, LAST_RELAY_KEY, 0)
    if pvd.relay_parent_number < last_relay:
        raise BlockInvalid("relay parent number moved backwards")
    return segment, last_relay


def on_state_proof(
    entries: dict[bytes, bytes], inherent: ValidationInherent, segment: UnincludedSegment,
    parent_header: ParaHeader,
) -> tuple[RelayChainView, UnincludedSegment]:
    """Read the relay state proof against the relay parent's storage root, apply the velocity hook
    to the relay slot it holds, drop the ancestors the relay chain has included, and refuse the
    block if the segment has no room left for it. Returns the relay view and the pruned segment.

    A phase of its own because it is the consensus hook's: everything here depends only on the
    relay state proof and the runtime's constants, and it must run before the segment is used to
    decide what this block may consume or send."""
    pvd = inherent.validation_data
    view = read_relay_view(pvd.relay_parent_storage_root, inherent.relay_state_proof,
                           parent_header.para_id)
    hook = hook_of(entries)
    capacity, slot_info = hook.on_state_proof(view.relay_slot, view.relay_slot, hook.relay_slot_ms,
                                              slot_info_of(entries))
    entries[SLOT_INFO_KEY] = encode([slot_info.relay_slot, slot_info.authored])
    included = None if view.included_head is None else blake2_256(view.included_head)
    segment = segment.prune_included(included, parent_header.hash())
    segment.check_capacity(capacity)
    return view, segment


def consume_go_ahead(
    entries: dict[bytes, bytes], view: RelayChainView, segment: UnincludedSegment,
) -> GoAhead | None:
    """Consume the relay's upgrade signal if no block of the segment has yet: on a go-ahead the
    pending code becomes the code, on an abort it is dropped. Returns the signal consumed.

    Separate from the state-proof phase because it reads the segment after pruning: a signal is
    consumed by one block of the segment only, and an included ancestor no longer counts."""
    if view.upgrade_signal is None or segment.tracker.consumed_go_ahead_signal is not None:
        return None
    consumed = view.upgrade_signal
    pending_code = entries.pop(PENDING_CODE_KEY, None)
    if pending_code is not None and consumed is GoAhead.GO_AHEAD:
        entries[CODE_KEY] = pending_code
    return consumed


def dispatch_inbound(
    entries: dict[bytes, bytes], inherent: ValidationInherent, last_relay: int,
) -> tuple[int, int]:
    """Record the downward and horizontal messages sent after the parent's relay parent (older
    ones an ancestor has handled). Returns how many downward messages were processed and the new
    HRMP watermark.

    A phase of its own because its results are commitments the relay chain checks against its own
    queues (processed downward messages, HRMP watermark), and it runs before the transactions, as
    cumulus handles inbound messages in the validation-data inherent that opens every block."""
    pvd = inherent.validation_data
    handled = decode(entries[HANDLED_KEY], list) if HANDLED_KEY in entries else []
    new_dmp = [m for m in inherent.downward_messages if m.sent_at > last_relay]
    new_hrmp = [m for m in inherent.horizontal_messages if m.message.sent_at > last_relay]
    for m in new_dmp:
        handled.append(["dmp", m.sent_at, blake2_256(m.data)])
    for h in new_hrmp:
        handled.append(["hrmp", h.sender, h.message.sent_at, blake2_256(h.message.data)])
    entries[HANDLED_KEY] = encode(handled)
    watermark = max([m.message.sent_at for m in new_hrmp], default=pvd.relay_parent_number)
    return len(new_dmp), watermark


def apply_extrinsics(
    entries: dict[bytes, bytes], extrinsics: list[Extrinsic],
) -> tuple[int, bytes | None]:
    """Apply the transactions in order within the weight limit; any failing one invalidates the
    block. Returns the block's weight and the code a `SetCode` proposed, if any.

    The only phase that runs user input: it sits between the runtime's own bookkeeping before it
    and the draining of the queues it fills after it."""
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
    return weight, new_code


def on_finalize(
    entries: dict[bytes, bytes], view: RelayChainView, segment: UnincludedSegment,
    consumed: GoAhead | None, watermark: int, parent_header: ParaHeader,
    pvd: PersistedValidationData,
) -> OutboundSelection:
    """Send from the outbound queues what the relay's limits still allow after the segment's
    usage, append this block to the segment, and store the segment, the relay parent number and
    the block number. Returns the messages selected for this block's commitments.

    Cumulus does this in `on_finalize`: only once every transaction has run are the queues final,
    and the block's bandwidth known to add to the segment."""
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
    entries[NUMBER_KEY] = encode(parent_header.number + 1)
    return selection
