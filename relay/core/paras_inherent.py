"""`paras_inherent.enter` (spec §2.5–§2.6): the parachains part of every relay block, processed in
the reference order. The block author runs it in `CREATE` mode, where whatever does not pass is
filtered out (as `create_inherent` does); importers run it in `ENTER` mode, where nothing may be
filtered and any problem makes the whole block invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

import msgspec

from proto.candidate import CandidateReceipt
from proto.relay_block import ParachainsInherentData
from proto.statements import BackedCandidate, SignedAvailabilityBitfield, SigningContext
from proto.ump_signals import InvalidUmpSignals, select_core, split_upward_messages
from relay.core.disputes.onchain import apply_disputes, concluded_invalid, note_backed
from relay.core.errors import NamedError
from relay.core.events import CandidateEvent, EventKind, RelayEvent
from relay.core.inclusion import (
    InclusionError,
    InclusionErrorKind,
    PendingCandidate,
    check_backing_votes,
    verify_backed_candidate,
)
from relay.core.state import RelayState

BITFIELD_WEIGHT = 1
CANDIDATE_WEIGHT = 100


class Mode(Enum):
    CREATE = "create"
    ENTER = "enter"


class InherentErrorKind(StrEnum):
    """The reference implementation's names for a `InherentError`."""

    CandidatesFilteredDuringExecution = "CandidatesFilteredDuringExecution"
    InherentDataFilteredDuringExecution = "InherentDataFilteredDuringExecution"
    InherentOverweight = "InherentOverweight"
    InvalidParentHeader = "InvalidParentHeader"


class InherentError(NamedError):
    """An inherent that cannot be applied to the block."""


@dataclass(frozen=True)
class Processed:
    data: ParachainsInherentData  # what was actually applied (filtered in CREATE mode)
    events: list[RelayEvent]
    filtered: list[str]  # why anything was dropped (CREATE mode)


def inherent_weight(bitfields: int, candidates: int) -> int:
    return bitfields * BITFIELD_WEIGHT + candidates * CANDIDATE_WEIGHT


def _para_chains(candidates: Sequence[BackedCandidate]) -> dict[int, list[BackedCandidate]]:
    out: dict[int, list[BackedCandidate]] = {}
    for b in candidates:
        out.setdefault(b.candidate.descriptor.para_id, []).append(b)
    return out


def limit_weight(
    bitfields: list[SignedAvailabilityBitfield],
    candidates: list[BackedCandidate],
    max_weight: int,
    shuffle: Callable[[list[int]], None] | None = None,
) -> list[BackedCandidate]:
    """Keep whole per-para chains that fit after all bitfields; chains carrying a code upgrade go
    first, then (optionally shuffled, else longest first) the rest. Never a partial chain."""
    budget = max_weight - inherent_weight(len(bitfields), 0)
    chains = _para_chains(candidates)
    order = list(chains)
    if shuffle is not None:
        shuffle(order)
    else:
        order.sort(key=lambda p: (-len(chains[p]), p))
    order.sort(key=lambda p: not any(b.candidate.commitments.new_validation_code is not None
                                     for b in chains[p]))
    keep: set[int] = set()
    for p in order:
        w = inherent_weight(0, len(chains[p]))
        if w <= budget:
            keep.add(p)
            budget -= w
    return [b for b in candidates if b.candidate.descriptor.para_id in keep]


def _check_bitfield(state: RelayState, bf: SignedAvailabilityBitfield, last: int,
                    ctx: SigningContext) -> str | None:
    if len(bf.bits) != state.n_cores:
        return "bitfield of the wrong length"
    if not 0 <= bf.validator_index < state.n_validators:
        return "validator index out of range"
    if bf.validator_index <= last:
        return "bitfields not sorted by validator index or duplicated"
    if not bf.check(state.validators[bf.validator_index], ctx):
        return "bad bitfield signature"
    return None


def _committed_core(state: RelayState, b: BackedCandidate,
                    claim_queue: dict[int, tuple[int, ...]]) -> int:
    """The core a v2 candidate commits to, checked against its relay parent's claim queue."""
    d = b.candidate.descriptor
    if d.version != 0:
        raise InclusionError(InclusionErrorKind.InvalidDescriptorVersion)
    if d.session_index != state.session_index:
        raise InclusionError(InclusionErrorKind.InvalidSessionIndex)
    try:
        _, signals = split_upward_messages(list(b.candidate.commitments.upward_messages))
    except InvalidUmpSignals as exc:
        raise InclusionError(InclusionErrorKind.InvalidUmpSignals, str(exc)) from None
    selector = select_core(signals)
    offset = selector.claim_queue_offset if selector is not None else 0
    assigned = sorted(c for c, q in claim_queue.items() if len(q) > offset and q[offset] == d.para_id)
    if not assigned:
        raise InclusionError(InclusionErrorKind.InvalidCoreIndex, "para has no claim at that depth")
    if selector is not None:
        committed = assigned[selector.core_selector % len(assigned)]
        if committed != d.core_index:
            raise InclusionError(InclusionErrorKind.InvalidCoreIndex, "descriptor core differs from the selected")
    elif len(assigned) == 1:
        if assigned[0] != d.core_index:
            raise InclusionError(InclusionErrorKind.InvalidCoreIndex)
    elif d.core_index not in assigned:
        raise InclusionError(InclusionErrorKind.InvalidCoreIndex, "no core selector and core not assigned")
    return d.core_index


def _without_disabled(state: RelayState, b: BackedCandidate, group: Sequence[int]) -> BackedCandidate:
    if not state.disabled:
        return b
    bits = list(b.validator_indices)
    votes, new_bits, vi = [], [], 0
    for i, bit in enumerate(bits):
        if bit:
            if group[i] not in state.disabled:
                votes.append(b.validity_votes[vi])
                new_bits.append(True)
            else:
                new_bits.append(False)
            vi += 1
        else:
            new_bits.append(False)
    return msgspec.structs.replace(b, validity_votes=votes, validator_indices=new_bits)


def sanitize_backed_candidates(
    state: RelayState, candidates: Sequence[BackedCandidate], eligible: dict[int, list[int]],
    now: int, filtered: list[str],
) -> list[tuple[BackedCandidate, int]]:
    """Per para in input order: the longest prefix that chains, fits a free eligible core and has
    enough valid votes. Dropping a candidate drops every later one of its para."""
    out: list[tuple[BackedCandidate, int]] = []
    pending_hashes = {c.hash for q in state.inclusion.pending.values() for c in q}
    for para, chain in _para_chains(candidates).items():
        if para not in state.paras.heads:
            filtered.append(f"para {para}: not registered")
            continue
        head = state.inclusion.latest_head(para, state.paras)
        context = state.inclusion.latest_context(para, state.paras)
        used: set[int] = set()
        seen: set[bytes] = set()
        for b in chain:
            h = b.hash()
            if concluded_invalid(state, h):
                filtered.append(f"para {para} candidate 0x{h.hex()[:8]}: concluded invalid")
                break
            try:
                if h in seen or h in pending_hashes:
                    raise InclusionError(InclusionErrorKind.DuplicateCandidate)
                info = verify_backed_candidate(b.candidate, head, context, state.allowed,
                                               state.paras, state.config, now)
                core = _committed_core(state, b, info.claim_queue)
                if core not in eligible.get(para, []) or core in used or b.core_index != core:
                    raise InclusionError(InclusionErrorKind.UnscheduledCandidate, f"core {core} not free for para")
                gi = state.scheduler.group_assigned_to_core(core, info.number + 1)
                group = state.scheduler.groups[gi] if gi is not None else []
                b = _without_disabled(state, b, group)
                check_backing_votes(b, group, state.validators,
                                    SigningContext(state.session_index, b.candidate.relay_parent),
                                    state.config.minimum_backing_votes)
            except InclusionError as exc:
                filtered.append(f"para {para} candidate 0x{h.hex()[:8]}: {exc.kind}")
                break
            seen.add(h)
            used.add(core)
            head = b.candidate.commitments.head_data
            context = info.number
            out.append((b, core))
    return out


def process_candidates(
    state: RelayState, candidates: Sequence[tuple[BackedCandidate, int]], now: int
) -> list[CandidateEvent]:
    """Occupy cores with already-sanitized candidates (chain order per para); re-verifies and
    raises `InclusionError` with the reference's names."""
    events = []
    for b, core in candidates:
        c = b.candidate
        para = c.descriptor.para_id
        head = state.inclusion.latest_head(para, state.paras)
        info = verify_backed_candidate(c, head, None, state.allowed, state.paras, state.config, now)
        gi = state.scheduler.group_assigned_to_core(core, info.number + 1)
        if gi is None:
            raise InclusionError(InclusionErrorKind.InvalidAssignment)
        if not 0 <= gi < len(state.scheduler.groups) or not state.scheduler.groups[gi]:
            raise InclusionError(InclusionErrorKind.InvalidGroupIndex)
        group = state.scheduler.groups[gi]
        backers = check_backing_votes(b, group, state.validators,
                                      SigningContext(state.session_index, c.relay_parent),
                                      state.config.minimum_backing_votes)
        h = c.hash()
        state.inclusion.pending.setdefault(para, []).append(PendingCandidate(
            core, h, c.descriptor, c.commitments.head_data, c.commitments,
            [False] * state.n_validators, backers, info.number, now, gi))
        events.append(CandidateEvent(EventKind.BACKED, para, h, c.to_plain(),
                                     c.commitments.head_data, core, gi, info.number, now))
    return events


def enact_candidate(state: RelayState, cand: PendingCandidate, now: int) -> CandidateEvent:
    para = cand.descriptor.para_id
    c = cand.commitments
    if c.new_validation_code is not None:
        state.paras.schedule_code_upgrade(
            para, c.new_validation_code, now + state.config.validation_upgrade_delay,
            now + state.config.validation_upgrade_cooldown)
    try:
        upward, _ = split_upward_messages(list(c.upward_messages))
    except InvalidUmpSignals:
        upward = []
    state.paras.enqueue_ump(para, upward)
    state.paras.hrmp_watermark[para] = c.hrmp_watermark
    state.paras.note_new_head(para, cand.commitments_head, cand.relay_parent_number)
    receipt = CandidateReceipt(cand.descriptor, c.hash())
    return CandidateEvent(EventKind.INCLUDED, para, cand.hash, receipt, cand.commitments_head,
                          cand.core, cand.backing_group, cand.relay_parent_number,
                          cand.backed_in_number)


def _timeout_check_required(state: RelayState, now: int) -> bool:
    info = state.scheduler.rotation_info(now + 1)
    return now + 1 < info.last_rotation_at() + state.config.paras_availability_period


def _timed_out(state: RelayState, now: int, required: bool) -> Callable[[PendingCandidate], bool]:
    period = state.config.paras_availability_period
    next_rotation = state.scheduler.rotation_info(now).next_rotation_at()

    def pred(c: PendingCandidate) -> bool:
        time_out_at = c.backed_in_number + period if required else next_rotation + period
        return time_out_at <= now

    return pred


def enter(
    state: RelayState,
    data: ParachainsInherentData,
    parent_hash: bytes,
    parent_state_root: bytes,
    now: int,
    mode: Mode,
    max_weight: int | None = None,
    shuffle: Callable[[list[int]], None] | None = None,
) -> Processed:
    """Apply the inherent to `state` (mutated: pass a copy). Order of spec §2.5."""
    if data.parent_hash != parent_hash:
        raise InherentError(InherentErrorKind.InvalidParentHeader)
    cfg = state.config
    state.allowed.update(parent_hash, parent_state_root, state.scheduler.snapshot(), now - 1,
                         cfg.allowed_ancestry_len)
    state.paras.drain_ump()
    state.paras.go_ahead.clear()
    filtered: list[str] = []
    bitfields = list(data.bitfields)
    candidates = list(data.backed_candidates)
    if max_weight is not None and inherent_weight(len(bitfields), len(candidates)) > max_weight:
        if mode is Mode.ENTER:
            raise InherentError(InherentErrorKind.InherentOverweight)
        kept = limit_weight(bitfields, candidates, max_weight, shuffle)
        filtered += [f"candidate 0x{b.hash().hex()[:8]}: weight" for b in candidates if b not in kept]
        candidates = kept
    ctx = SigningContext(state.session_index, parent_hash)
    # Disputes first (as the reference orders it): a candidate concluded invalid here is freed
    # before bitfields could enact it, and never backed again below.
    disputes = apply_disputes(state, data.disputes, now)
    if disputes.problems:
        if mode is Mode.ENTER:
            raise InherentError(InherentErrorKind.InherentDataFilteredDuringExecution,
                                "; ".join(disputes.problems))
        filtered += disputes.problems
    good_bitfields: list[SignedAvailabilityBitfield] = []
    last = -1
    for bf in bitfields:
        why = _check_bitfield(state, bf, last, ctx)
        if why is not None:
            if mode is Mode.ENTER:
                raise InherentError(InherentErrorKind.InherentDataFilteredDuringExecution, why)
            filtered.append(f"bitfield of validator {bf.validator_index}: {why}")
            continue
        last = bf.validator_index
        good_bitfields.append(bf)
    events: list[RelayEvent] = list(disputes.events)
    enacted = state.inclusion.apply_bitfields(
        [(bf.validator_index, bf.bits) for bf in good_bitfields], state.n_validators)
    events += [enact_candidate(state, c, now) for c in enacted]
    if _timeout_check_required(state, now):
        for c in state.inclusion.free_failed(_timed_out(state, now, True)):
            events.append(CandidateEvent(EventKind.TIMED_OUT, c.descriptor.para_id, c.hash,
                                         _receipt(c), c.commitments_head, c.core, c.backing_group,
                                         c.relay_parent_number, c.backed_in_number))
    occupied = set(state.inclusion.occupied_cores())
    eligible = state.scheduler.eligible_cores(occupied)
    session_change = state.session_change_pending(now)
    if session_change and candidates:
        if mode is Mode.ENTER:
            raise InherentError(InherentErrorKind.CandidatesFilteredDuringExecution, "session change at block end")
        filtered.append(f"{len(candidates)} candidates: session change at the end of the block")
        candidates = []
    sanitized_filtered: list[str] = []
    sanitized = sanitize_backed_candidates(state, candidates, eligible, now, sanitized_filtered)
    if sanitized_filtered and mode is Mode.ENTER:
        raise InherentError(InherentErrorKind.CandidatesFilteredDuringExecution, "; ".join(sanitized_filtered))
    filtered += sanitized_filtered
    events += process_candidates(state, sanitized, now)
    note_backed(state, [b.hash() for b, _ in sanitized], now)
    if not session_change:
        state.scheduler.advance_claim_queue(except_for=occupied)
    else:
        _new_session(state, now)
    applied = ParachainsInherentData(good_bitfields, [b for b, _ in sanitized], parent_hash,
                                     disputes.sets)
    return Processed(applied, events, filtered)


def _receipt(c: PendingCandidate) -> CandidateReceipt:
    return CandidateReceipt(c.descriptor, c.commitments.hash())


def _new_session(state: RelayState, now: int) -> None:
    """Session boundary at the end of block `now`: nothing pending survives, relay parents of the
    old session are no longer allowed, groups start rotating afresh."""
    state.session_index += 1
    state.inclusion.clear()
    state.allowed.clear()
    state.scheduler.new_session(state.scheduler.groups, now + 1)


