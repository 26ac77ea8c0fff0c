"""The relay runtime's entry points: genesis, authoring and importing a block (with a state root
committing to the whole state), and the runtime APIs nodes and collators query (spec §2.8)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from proto.candidate import PersistedValidationData
from proto.codec import encode, hash_of
from proto.hashing import ZERO_HASH
from proto.keys import Keypair
from proto.relay_block import ParachainsInherentData, RelayBlock, RelayHeader
from proto.relay_state import (
    ACTIVE_CONFIG_KEY,
    BLOCK_NUMBER_KEY,
    CURRENT_SLOT_KEY,
    SESSION_INDEX_KEY,
    AbridgedHostConfiguration,
    RelayDispatchQueueRemaining,
    StateProof,
    para_head_key,
    prove,
    relay_dispatch_queue_key,
    state_root,
    upgrade_go_ahead_key,
    upgrade_restriction_key,
)
from proto.shared_work import shared
from relay.core.allowed_relay_parents import AllowedRelayParentsTracker
from relay.core.config import ConfigError, HostConfiguration, ParaGenesis
from relay.core.constraints import (
    BackingState,
    CandidatePendingAvailability,
    Constraints,
    InboundHrmpLimitations,
)
from relay.core.errors import NamedError
from relay.core.events import RelayEvent
from relay.core.inclusion import InclusionState
from relay.core.paras import ParasState
from relay.core.paras_inherent import Mode, enter
from relay.core.scheduler import GroupRotationInfo, Scheduler, make_groups
from relay.core.state import RelayState


class BlockImportErrorKind(StrEnum):
    """The reference implementation's names for a `BlockImportError`."""

    BadNumber = "BadNumber"
    BadSeal = "BadSeal"
    BodyRootMismatch = "BodyRootMismatch"
    SlotNotIncreasing = "SlotNotIncreasing"
    StateRootMismatch = "StateRootMismatch"
    UnknownParent = "UnknownParent"
    WrongAuthor = "WrongAuthor"


class BlockImportError(NamedError):
    """A block that fails import."""


@dataclass(frozen=True)
class RelayGenesis:
    validators: tuple[bytes, ...]
    paras: tuple[ParaGenesis, ...]
    config: HostConfiguration


def genesis(g: RelayGenesis) -> tuple[RelayHeader, RelayState]:
    if not g.validators:
        raise ConfigError("at least one validator is needed")
    assignments = [p.para_id for p in g.paras for _ in range(p.cores)]
    if g.config.num_cores not in (0, len(assignments)):
        raise ConfigError(f"num_cores is {g.config.num_cores} but the paras claim "
                          f"{len(assignments)} cores")
    paras = ParasState()
    for p in g.paras:
        paras.register(p.para_id, p.genesis_head, p.validation_code)
    groups = make_groups(len(g.validators), len(assignments), g.config.max_validators_per_core)
    if any(not group for group in groups):
        raise ConfigError(f"{len(assignments)} cores need at least as many validators "
                          f"(one backing group per core), got {len(g.validators)}")
    state = RelayState(
        config=g.config, validators=tuple(g.validators),
        para_ids=tuple(p.para_id for p in g.paras), number=0, slot=0, session_index=0,
        allowed=AllowedRelayParentsTracker(),
        scheduler=Scheduler(assignments, groups, 0, g.config.group_rotation_frequency,
                            g.config.lookahead),
        inclusion=InclusionState(), paras=paras,
    )
    root = state_root(state_entries(state))
    body = ParachainsInherentData([], [], ZERO_HASH)
    header = RelayHeader(ZERO_HASH, 0, 0, 0, root, RelayBlock.body_root(body))
    return header, state


def abridged_config(c: HostConfiguration) -> AbridgedHostConfiguration:
    return AbridgedHostConfiguration(
        c.max_code_size, c.max_head_data_size, c.max_upward_queue_count, c.max_upward_queue_size,
        c.max_upward_message_size, c.max_upward_message_num_per_candidate,
        c.hrmp_max_message_num_per_candidate, c.validation_upgrade_cooldown,
        c.validation_upgrade_delay, c.max_candidate_depth, c.allowed_ancestry_len)


def state_entries(s: RelayState) -> dict[bytes, bytes]:
    """Every piece of runtime state as key/value entries: what the state root commits to."""
    c = s.config
    e: dict[bytes, bytes] = {
        CURRENT_SLOT_KEY: encode(s.slot),
        ACTIVE_CONFIG_KEY: encode(abridged_config(c)),
        SESSION_INDEX_KEY: encode(s.session_index),
        BLOCK_NUMBER_KEY: encode(s.number),
        b"session:disabled": encode(sorted(s.disabled)),
        b"scheduler:claim_queue": encode(sorted((k, list(v)) for k, v in s.scheduler.snapshot().items())),
        b"scheduler:groups": encode([s.scheduler.groups, s.scheduler.session_start_block]),
        b"shared:allowed_relay_parents": encode(
            [[[a.hash, a.state_root] for a in s.allowed.buffer], s.allowed.latest_number]),
        b"ump:processed": encode(s.paras.ump_processed),
        b"disputes:votes": encode(sorted(
            [k[0], k[1], sorted(d.validators_for), sorted(d.validators_against), sorted(d.backers),
             d.concluded_at] for k, d in s.disputes.items())),
        b"disputes:backed_at": encode(sorted([h, n] for h, n in s.backed_at.items())),
    }
    for p in s.para_ids:
        count, size = s.paras.ump_queue.get(p, (0, 0))
        e[para_head_key(p)] = s.paras.heads[p]
        e[relay_dispatch_queue_key(p)] = encode(RelayDispatchQueueRemaining(
            max(0, c.max_upward_queue_count - count), max(0, c.max_upward_queue_size - size)))
        e[b"paras:code_hash:" + p.to_bytes(4, "big")] = s.paras.code_hash[p]
        e[b"paras:context:" + p.to_bytes(4, "big")] = encode(s.paras.most_recent_context.get(p, 0))
        fut = s.paras.future_code.get(p)
        if fut is not None:
            e[b"paras:future_code:" + p.to_bytes(4, "big")] = encode([fut.code_hash, fut.expected_at])
        if not s.paras.upgrade_allowed(p, s.number):
            e[upgrade_restriction_key(p)] = encode(1)
        if s.paras.go_ahead.get(p):
            e[upgrade_go_ahead_key(p)] = encode(1)
        pending = s.inclusion.pending.get(p, [])
        if pending:
            e[b"inclusion:pending:" + p.to_bytes(4, "big")] = encode([
                [c2.hash, c2.core, c2.relay_parent_number, c2.backed_in_number,
                 c2.availability_votes, c2.backers, c2.backing_group] for c2 in pending])
    return e


def state_proof(s: RelayState, keys: list[bytes]) -> StateProof:
    return prove(state_entries(s), keys)


def expected_author(s: RelayState, slot: int) -> int:
    """Aura-style round robin: slot `k` belongs to validator `k mod n`."""
    return slot % s.n_validators


def build_block(
    parent: RelayHeader,
    parent_state: RelayState,
    inherent: ParachainsInherentData,
    slot: int,
    author_key: Keypair,
    max_weight: int | None = None,
    shuffle: Callable[[list[int]], None] | None = None,
) -> tuple[RelayBlock, RelayState, list[RelayEvent], list[str]]:
    """Author a block on `parent`: filter what does not pass, apply, seal. Returns the block, its
    post-state, its events and why anything was filtered."""
    author = expected_author(parent_state, slot)
    if parent_state.validators[author] != author_key.public:
        raise BlockImportError(BlockImportErrorKind.WrongAuthor, f"slot {slot} belongs to validator {author}")
    if slot <= parent.slot:
        raise BlockImportError(BlockImportErrorKind.SlotNotIncreasing)
    state = parent_state.copy()
    now = parent.number + 1
    processed = enter(state, inherent, parent.hash(), parent.state_root, now, Mode.CREATE,
                      max_weight, shuffle)
    state.number, state.slot = now, slot
    header = RelayHeader(parent.hash(), now, slot, author, state_root(state_entries(state)),
                         RelayBlock.body_root(processed.data)).sealed(author_key)
    return RelayBlock(header, processed.data), state, processed.events, processed.filtered


def import_block(
    parent: RelayHeader, parent_state: RelayState, block: RelayBlock,
    max_weight: int | None = None,
) -> tuple[RelayState, list[RelayEvent]]:
    """Re-execute `block` on `parent`'s state; `BlockImportError` (or `InherentError`) if any
    rule is broken. The parent state is never modified.

    Pure, so the simulated nodes of one process re-execute each block once
    (`proto.shared_work`): keyed by the parent header's hash (which commits to its state root, so
    to the state it was imported with) and the whole block's; each caller gets its own copy of
    the state."""
    key = (parent.hash(), hash_of(block), max_weight)
    state, events = shared("relay_block", key, lambda: _import_block(
        parent, parent_state, block, max_weight), large=True)
    return state.copy(), list(events)


def _import_block(
    parent: RelayHeader, parent_state: RelayState, block: RelayBlock, max_weight: int | None,
) -> tuple[RelayState, list[RelayEvent]]:
    h = block.header
    if h.parent_hash != parent.hash():
        raise BlockImportError(BlockImportErrorKind.UnknownParent)
    if h.number != parent.number + 1:
        raise BlockImportError(BlockImportErrorKind.BadNumber, f"{h.number} after {parent.number}")
    if h.slot <= parent.slot:
        raise BlockImportError(BlockImportErrorKind.SlotNotIncreasing)
    if h.author != expected_author(parent_state, h.slot):
        raise BlockImportError(BlockImportErrorKind.WrongAuthor, f"slot {h.slot} belongs to validator "
                                              f"{expected_author(parent_state, h.slot)}")
    if not h.seal_valid(parent_state.validators[h.author]):
        raise BlockImportError(BlockImportErrorKind.BadSeal)
    if h.body_root != RelayBlock.body_root(block.body):
        raise BlockImportError(BlockImportErrorKind.BodyRootMismatch)
    state = parent_state.copy()
    processed = enter(state, block.body, parent.hash(), parent.state_root, h.number, Mode.ENTER,
                      max_weight)
    state.number, state.slot = h.number, h.slot
    if state_root(state_entries(state)) != h.state_root:
        raise BlockImportError(BlockImportErrorKind.StateRootMismatch)
    return state, processed.events


# -- runtime APIs ---------------------------------------------------------------------------


class OccupiedCoreAssumption(Enum):
    INCLUDED = "Included"
    TIMED_OUT = "TimedOut"
    FREE = "Free"


def backing_state(s: RelayState, para_id: int) -> BackingState | None:
    if para_id not in s.paras.heads:
        return None
    c = s.config
    count, size = s.paras.ump_queue.get(para_id, (0, 0))
    fut = s.paras.future_code.get(para_id)
    constraints = Constraints(
        min_relay_parent_number=s.allowed.hypothetical_earliest_block_number(
            s.number, c.allowed_ancestry_len),
        max_pov_size=c.max_pov_size, max_code_size=c.max_code_size,
        max_head_data_size=c.max_head_data_size,
        ump_remaining=max(0, c.max_upward_queue_count - count),
        ump_remaining_bytes=max(0, c.max_upward_queue_size - size),
        max_ump_num_per_candidate=c.max_upward_message_num_per_candidate,
        dmp_remaining_messages=(), hrmp_inbound=InboundHrmpLimitations(()), hrmp_channels_out={},
        max_hrmp_num_per_candidate=c.hrmp_max_message_num_per_candidate,
        required_parent=s.paras.heads[para_id],
        validation_code_hash=s.paras.code_hash[para_id],
        upgrade_restriction=not s.paras.upgrade_allowed(para_id, s.number),
        future_validation_code=(fut.expected_at, fut.code_hash) if fut is not None else None,
    )
    pending = tuple(
        CandidatePendingAvailability(p.hash, p.descriptor, p.commitments, p.relay_parent_number,
                                     c.max_pov_size)
        for p in s.inclusion.pending.get(para_id, []))
    return BackingState(constraints, pending)


def claim_queue(s: RelayState) -> dict[int, list[int]]:
    return {core: list(q) for core, q in s.scheduler.snapshot().items()}


def validator_groups(s: RelayState) -> tuple[list[list[int]], GroupRotationInfo]:
    return [list(g) for g in s.scheduler.groups], s.scheduler.rotation_info(s.number + 1)


def session_index_for_child(s: RelayState) -> int:
    return s.session_index + (1 if s.session_change_pending(s.number) else 0)


def async_backing_params(s: RelayState) -> tuple[int, int]:
    return s.config.max_candidate_depth, s.config.allowed_ancestry_len


def para_head(s: RelayState, para_id: int) -> bytes | None:
    return s.paras.heads.get(para_id)


def candidates_pending_availability(s: RelayState, para_id: int) -> list[CandidatePendingAvailability]:
    bs = backing_state(s, para_id)
    return list(bs.pending_availability) if bs else []


def availability_cores(s: RelayState) -> list[tuple[int, bytes] | None]:
    """Per core: (para, candidate hash) of the candidate occupying it, or None when free."""
    occupied = s.inclusion.occupied_cores()
    return [(occupied[c].descriptor.para_id, occupied[c].hash) if c in occupied else None
            for c in range(s.n_cores)]


def validation_code_hash(s: RelayState, para_id: int) -> bytes | None:
    return s.paras.code_hash.get(para_id)


def cores_of(s: RelayState, para_id: int) -> Sequence[int]:
    return [c for c, p in enumerate(s.scheduler.assignments) if p == para_id]


def persisted_validation_data(
    s: RelayState, para_id: int, assumption: OccupiedCoreAssumption
) -> PersistedValidationData | None:
    """The PVD of a candidate whose relay parent is this block: `Included` pretends the pending
    candidates got enacted (their last head), `TimedOut` that they were dropped (the included
    head), `Free` only answers when nothing is pending."""
    head = s.paras.heads.get(para_id)
    if head is None:
        return None
    pending = s.inclusion.pending.get(para_id, [])
    if pending and assumption is OccupiedCoreAssumption.INCLUDED:
        head = pending[-1].commitments_head
    elif pending and assumption is OccupiedCoreAssumption.FREE:
        return None
    return PersistedValidationData(head, s.number, state_root(state_entries(s)),
                                   s.config.max_pov_size)


def minimum_backing_votes(s: RelayState) -> int:
    return s.config.minimum_backing_votes


def validators(s: RelayState) -> tuple[bytes, ...]:
    return s.validators


def scheduling_lookahead(s: RelayState) -> int:
    return s.config.lookahead
