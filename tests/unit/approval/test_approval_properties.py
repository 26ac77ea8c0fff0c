"""Properties of approval checking over random sessions, tranche draws, no-shows and approval
delays, with one candidate gossiped instantly among its checkers (each deciding from the same
view when its own assignment is due, as `process_tick` does):

- safety: a candidate is never approved with fewer than `needed_approvals` approvals from
  validators assigned to it, unless more than a third of all validators approved;
- liveness: with every checker honest, it is approved within `n_delay_tranches` ticks plus the
  slowest approval and `APPROVAL_DELAY`; with some checkers no-shows but more than a third of all validators honest
  checkers, it is still approved, within a bound of a no-show period per no-show.
"""

from __future__ import annotations

from approval_fixtures import keys
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from proto.approvals import IndirectAssignmentCert, IndirectSignedApprovalVote, SignedAssignment
from relay.core.approval.checking import (
    Approved,
    Exact,
    assignments_up_to,
    check_approval,
    tranches_to_approve,
)
from relay.core.approval.criteria import (
    IncludedCandidate,
    SessionInfo,
    compute_assignments,
    relay_vrf_story,
)
from relay.core.approval.ticks import APPROVAL_DELAY, no_show_duration, slot_start_tick
from relay.core.approval.voting import (
    ApprovalEntry,
    ApprovalVoting,
    AssignmentCheckResult,
    should_trigger_assignment,
)
from relay.core.config import HostConfiguration
from relay.core.scheduler import make_groups

KEYS = keys(16)
CANDIDATE = b"\xca" * 32
SLOT = 3


@st.composite
def scenarios(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    n = draw(st.integers(4, 16))
    n_cores = draw(st.integers(2, min(4, n)))  # one core: its group is everyone, no checkers
    host = HostConfiguration(
        needed_approvals=draw(st.integers(1, 5)),
        relay_vrf_modulo_samples=draw(st.integers(0, 3)),
        n_delay_tranches=draw(st.integers(1, 30)),
        zeroth_delay_tranche_width=draw(st.integers(0, 4)),
        no_show_slots=draw(st.integers(1, 2)),
    )
    session = SessionInfo.from_config(host, [k.public for k in KEYS[:n]],
                                      make_groups(n, n_cores), n_cores)
    core = draw(st.integers(0, n_cores - 1))
    checkers = [v for v in range(n) if v not in session.validator_groups[core]]
    no_shows = draw(st.sets(st.sampled_from(checkers), max_size=len(checkers)))
    nsd = no_show_duration(host.no_show_slots)
    delays = {v: draw(st.integers(0, nsd - 1)) for v in checkers}
    return {"session": session, "core": core, "checkers": checkers, "no_shows": no_shows,
            "delays": delays, "block": draw(st.binary(min_size=32, max_size=32))}


def run(sc: dict, ticks: int) -> tuple[int | None, list[str]]:  # type: ignore[type-arg]
    """Play the scenario for `ticks` ticks; (tick approved at or None, safety violations)."""
    s: SessionInfo = sc["session"]
    block: bytes = sc["block"]
    included = [IncludedCandidate(CANDIDATE, sc["core"], sc["core"])]
    t0 = slot_start_tick(SLOT)
    nsd = no_show_duration(s.no_show_slots)
    observer = ApprovalVoting()
    observer.import_block(block, bytes(32), 1, SLOT, 0, s, included)
    entry = observer.blocks[block].candidates[0]
    story = relay_vrf_story(block)
    own = {v: compute_assignments(s, v, story, included)[sc["core"]] for v in sc["checkers"]}
    triggered: dict[int, int] = {}
    unsent: list[SignedAssignment] = []
    approvals_due: dict[int, list[int]] = {}
    problems: list[str] = []
    for tick in range(t0, t0 + ticks):
        required = tranches_to_approve(entry.tranches, observer.approvals[CANDIDATE], tick - t0,
                                       t0, nsd, s.needed_approvals, s.n_validators).required
        for v, a in own.items():
            probe = ApprovalEntry(CANDIDATE, sc["core"], sc["core"], a, entry.tranches,
                                  v in triggered, entry.approved)
            if should_trigger_assignment(probe, required, tick - t0):
                triggered[v] = tick
                unsent.append(SignedAssignment.sign(
                    KEYS[v], IndirectAssignmentCert(block, v, a.cert), 0))
                if v not in sc["no_shows"]:
                    approvals_due.setdefault(tick + sc["delays"][v], []).append(v)
        unsent = [m for m in unsent if observer.check_and_import_assignment(m, tick)
                  is AssignmentCheckResult.TooFarInFuture]
        for v in approvals_due.pop(tick, []):
            if entry.is_assigned(v):
                observer.check_and_import_approval(IndirectSignedApprovalVote.sign(
                    KEYS[v], block, 0, v, CANDIDATE, 0))
            else:  # its assignment is still held back: approve once it is in
                approvals_due.setdefault(tick + 1, []).append(v)
        if observer.process_tick(tick).approved_candidates:
            approvals = observer.approvals[CANDIDATE]
            now = tranches_to_approve(entry.tranches, approvals, tick - t0, t0, nsd,
                                      s.needed_approvals, s.n_validators).required
            check = check_approval(entry.tranches, approvals, s.n_validators, now)
            assigned = {v for t in entry.tranches.values() for v in t}
            if 3 * len(approvals) <= s.n_validators:
                if len(approvals & assigned) < s.needed_approvals:
                    problems.append(f"approved with {len(approvals)} approvals")
                if not isinstance(check, Approved) or not isinstance(now, Exact) or len(
                        approvals & assignments_up_to(entry.tranches, now.needed)) \
                        < s.needed_approvals:
                    problems.append(f"approved by {check} under {now}")
            return tick - t0, problems
    return None, problems


def _viable(sc: dict, honest: int) -> bool:  # type: ignore[type-arg]
    s = sc["session"]
    return honest >= s.needed_approvals or 3 * honest > s.n_validators


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_approval_never_happens_with_fewer_than_needed_approvals_from_assigned(sc: dict) -> None:  # type: ignore[type-arg]
    s = sc["session"]
    _, problems = run(sc, s.n_delay_tranches + 6 * no_show_duration(s.no_show_slots))
    assert problems == []


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_with_all_checkers_honest_approval_comes_within_the_delay_tranches(sc: dict) -> None:  # type: ignore[type-arg]
    sc = {**sc, "no_shows": set()}
    assume(_viable(sc, len(sc["checkers"])))
    s = sc["session"]
    bound = s.n_delay_tranches + max(sc["delays"].values()) + APPROVAL_DELAY
    at, problems = run(sc, bound + 1)
    assert problems == [] and at is not None and at <= bound


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_no_shows_delay_approval_by_at_most_a_no_show_period_each(sc: dict) -> None:  # type: ignore[type-arg]
    s = sc["session"]
    honest = len(sc["checkers"]) - len(sc["no_shows"])
    assume(3 * honest > s.n_validators)
    nsd = no_show_duration(s.no_show_slots)
    bound = s.n_delay_tranches + (len(sc["no_shows"]) + 2) * nsd
    at, problems = run(sc, bound + 1)
    assert problems == [] and at is not None and at <= bound, (at, bound)


def test_a_lone_honest_checker_of_four_validators_cannot_approve_alone() -> None:
    """Four validators, two per group, needed_approvals 2: with the other checker a no-show
    there is nobody left to cover it and one approval is not more than a third, so the
    candidate waits; with both honest it is approved. (The simulation can fail.)"""
    s = SessionInfo.from_config(HostConfiguration(), [k.public for k in KEYS[:4]],
                                make_groups(4, 2), 2)
    sc = {"session": s, "core": 0, "checkers": [2, 3], "no_shows": {3},
          "delays": {2: 0, 3: 0}, "block": b"\x01" * 32}
    assert run(sc, 500) == (None, [])
    at, problems = run({**sc, "no_shows": set()}, 500)
    assert problems == [] and at is not None and at <= s.n_delay_tranches

