"""Disputes as the relay runtime sees them (polkadot's `paras_inherent` dispute part and the
`disputes` pallet), pure: the statement sets a block carries are checked and counted into the
chain's own record of every dispute (`RelayState.disputes`), and a conclusion acts on the chain.

- Concluded invalid: `DisputeConcluded(Invalid)`; if this chain backed the candidate,
  `Revert(number)` naming the block that did (nodes drop that block and everything above it); a
  candidate still pending availability is freed with its descendants; whoever voted valid (its
  backers first) is reported (`Offence`) and disabled. A backed candidate concluded invalid is
  never backed again on this chain.
- Concluded valid: `DisputeConcluded(Valid)`; whoever voted invalid is reported and disabled.

Disabling is capped at a byzantine third of the validators (`coordinator.disabled_after`). A
dispute no block carried yet cannot be started by disabled validators alone (the disputer that
lost once is not heard again). The author drops what does not pass and says why; an importer
fails the block on any of it (the caller decides by mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from proto.disputes import DisputeStatementSet
from relay.core.disputes.coordinator import disabled_after
from relay.core.disputes.state import DisputeFlags, DisputeState, ImportSummary, Vote, import_votes
from relay.core.events import (
    DisputeEvent,
    DisputeEventKind,
    DisputeLocation,
    DisputeResult,
    OffenceEvent,
    OffenceKind,
    RelayEvent,
)
from relay.core.state import RelayState

# Where this chain backed a candidate is remembered this many blocks (a `Revert` names it); a
# dispute concluding later than that still disables, but names no block.
BACKED_AT_KEPT = 128


@dataclass
class DisputesApplied:
    sets: list[DisputeStatementSet] = field(default_factory=list)  # what the block keeps
    events: list[RelayEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # dropped, and why


def concluded_invalid(state: RelayState, candidate_hash: bytes) -> bool:
    return any(h == candidate_hash and d.concluded_invalid
               for (_, h), d in state.disputes.items())


def _check_set(state: RelayState, s: DisputeStatementSet, now: int) -> str | None:
    """Why the set cannot be counted, or None. Statements already counted are an error too: the
    author sends only what the chain lacks."""
    cfg = state.config
    if not state.session_index - cfg.dispute_period <= s.session_index <= state.session_index:
        return f"session {s.session_index} is not disputable"
    if not s.statements:
        return "no statements"
    known = state.disputes.get((s.session_index, s.candidate_hash))
    if known is not None and known.concluded_at is not None \
            and now > known.concluded_at + cfg.dispute_post_conclusion_acceptance_period:
        return "the dispute concluded long ago"
    seen: set[tuple[int, bool]] = set()
    for st in s.statements:
        v = st.validator_index
        if st.candidate_hash != s.candidate_hash or st.session_index != s.session_index:
            return f"validator {v}: statement for another candidate"
        if not 0 <= v < state.n_validators:
            return f"validator {v}: out of bounds"
        side = (v, st.valid)
        counted = known is not None and v in (known.validators_for if st.valid
                                              else known.validators_against)
        if side in seen or counted:
            return f"validator {v}: vote counted already"
        seen.add(side)
        if not st.check(state.validators[v]):
            return f"validator {v}: bad signature"
    if known is None or not known.disputed:
        against = {st.validator_index for st in s.statements if not st.valid}
        if known is not None:
            against |= known.validators_against
        if against and against <= state.disabled:
            return "only disabled validators dispute it"
    return None


def _offences(session: int, h: bytes, summary: ImportSummary) -> list[OffenceEvent]:
    backers = summary.state.backers
    out = []
    for kind, who in ((OffenceKind.ForInvalidBacked, summary.slash_for & backers),
                      (OffenceKind.ForInvalidApproved, summary.slash_for - backers),
                      (OffenceKind.AgainstValid, summary.slash_against)):
        if who:
            out.append(OffenceEvent(kind, session, h, tuple(sorted(who))))
    return out


def apply_disputes(state: RelayState, sets: Sequence[DisputeStatementSet],
                   now: int) -> DisputesApplied:
    """Count `sets` into `state` (mutated: pass a copy) at block `now`."""
    out = DisputesApplied()
    done: set[tuple[int, bytes]] = set()
    for s in sets:
        key = (s.session_index, s.candidate_hash)
        why = "candidate twice in one block" if key in done else _check_set(state, s, now)
        if why is None:
            before = state.disputes.get(key) or DisputeState(state.n_validators)
            summary = import_votes(before, [Vote(st.validator_index, st.valid, st.kind.is_backing)
                                            for st in s.statements], now)
            if not summary.state.disputed:
                why = "votes on one side only: no dispute"
        if why is not None:
            out.problems.append(f"dispute 0x{s.candidate_hash.hex()[:8]}: {why}")
            continue
        done.add(key)
        out.sets.append(s)
        state.disputes[key] = summary.state
        out.events += _conclude(state, s.session_index, s.candidate_hash, before, summary)
    _prune(state, now)
    return out


def _conclude(state: RelayState, session: int, h: bytes, before: DisputeState,
              summary: ImportSummary) -> list[RelayEvent]:
    events: list[RelayEvent] = []
    backed_at = state.backed_at.get(h)
    if not before.disputed:
        where = DisputeLocation.LOCAL if backed_at is not None else DisputeLocation.REMOTE
        events.append(DisputeEvent(DisputeEventKind.INITIATED, session, h, location=where))
    if DisputeFlags.FOR_SUPERMAJORITY in summary.new_flags:
        events.append(DisputeEvent(DisputeEventKind.CONCLUDED, session, h,
                                   result=DisputeResult.VALID))
    if DisputeFlags.AGAINST_SUPERMAJORITY in summary.new_flags:
        events.append(DisputeEvent(DisputeEventKind.CONCLUDED, session, h,
                                   result=DisputeResult.INVALID))
        if backed_at is not None:
            events.append(DisputeEvent(DisputeEventKind.REVERT, session, h,
                                       revert_number=backed_at))
        state.inclusion.free_failed(lambda c: c.hash == h)
    offences = _offences(session, h, summary)
    events += offences
    offenders = [v for o in offences for v in o.offenders]
    if offenders:
        state.disabled = disabled_after(state.disabled, offenders, state.n_validators)
    return events


def note_backed(state: RelayState, candidate_hashes: Sequence[bytes], now: int) -> None:
    for h in candidate_hashes:
        state.backed_at[h] = now


def _prune(state: RelayState, now: int) -> None:
    """Bounded: concluded disputes past their acceptance period, sessions past the dispute
    period and backings older than `BACKED_AT_KEPT` blocks are forgotten."""
    cfg = state.config
    oldest = state.session_index - cfg.dispute_period
    state.disputes = {
        k: d for k, d in state.disputes.items()
        if k[0] >= oldest and (d.concluded_at is None
                               or now <= d.concluded_at + cfg.dispute_post_conclusion_acceptance_period)}
    state.backed_at = {h: n for h, n in state.backed_at.items() if n > now - BACKED_AT_KEPT}
