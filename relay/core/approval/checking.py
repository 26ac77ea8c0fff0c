"""Whether a candidate is approved under a block: `tranches_to_approve` and `check_approval`.

The input is the assignments one (block, candidate) has gathered, by tranche, each with the tick
it arrived at, and the set of validators that approved the candidate. Tranches are taken in order
from 0 while they are due (`tranche ≤ tranche_now`):

1. Until `needed_approvals` assignments are counted, every tranche is taken.
2. An assigned checker that has not approved `no_show_duration` ticks after its assignment arrived
   (and never before the block's own tick) is a no-show. Each no-show must be covered by one more
   non-empty tranche, however many assignments that tranche holds; no-shows found among those
   covering checkers are covered in turn, one depth further.
3. Counting at depth `d` looks at the clock as if `d × no_show_duration` ticks earlier (the clock
   drift), so covering checkers get a whole no-show period of their own before they are judged.

The result (`RequiredTranches`) is `Exact` once enough assignments are counted and every no-show is
covered: the candidate is approved when every checker assigned up to that tranche approved, less
the covered no-shows. It is `Pending` while more tranches are needed (with the highest tranche a
checker should announce itself in), and `All` once even every validator would not be enough.
Independently, approvals from more than a third of all validators approve a candidate (at least one
of them is honest).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

Tranches = Mapping[int, Mapping[int, int]]  # tranche → {validator index: tick the assignment came}
UNBOUNDED = 2**32 - 1  # `maximum_broadcast` while gathering the first needed_approvals checkers


@dataclass(frozen=True)
class Pending:
    """More assignments are needed; checkers in tranches up to `maximum_broadcast` (and due, on
    the clock less `clock_drift`) should announce themselves."""

    considered: int
    next_no_show: int | None
    maximum_broadcast: int
    clock_drift: int


@dataclass(frozen=True)
class Exact:
    """Enough assignments up to tranche `needed`; `tolerated_missing` covered no-shows may stay
    silent."""

    needed: int
    tolerated_missing: int
    next_no_show: int | None
    last_assignment_tick: int | None


@dataclass(frozen=True)
class All:
    """Even every validator would not cover the no-shows: only a third of approvals will do."""


RequiredTranches = Pending | Exact | All


@dataclass(frozen=True)
class TranchesToApprove:
    required: RequiredTranches
    total_observed_no_shows: int


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True)
class _Count:
    """The walk's state after some tranches."""

    assignments: int = 0
    depth: int = 0  # 0: gathering needed_approvals; d > 0: covering no-shows of depth d - 1
    covered: int = 0  # no-shows covered so far
    covering: int = 0  # what this depth still has to cover (checkers at 0, no-shows after)
    uncovered: int = 0  # no-shows seen at this depth, to cover at the next
    next_no_show: int | None = None
    last_assignment_tick: int | None = None
    no_shows: int = 0

    def drift(self, no_show_duration: int) -> int:
        return self.depth * no_show_duration

    def take(self, n_assigned: int, n_no_shows: int, next_no_show: int | None,
             last_tick: int | None) -> _Count:
        # Gathering, each assignment counts; covering, a non-empty tranche covers one no-show.
        gained = n_assigned if self.depth == 0 else min(1, n_assigned)
        covering = max(0, self.covering - gained)
        covered = 0 if self.depth == 0 else self.covered + gained
        uncovered = self.uncovered + n_no_shows
        depth = self.depth
        if covering == 0 and uncovered > 0:  # this depth is done: cover its no-shows next
            depth, covering, uncovered = depth + 1, uncovered, 0
        ticks = [t for t in (self.last_assignment_tick, last_tick) if t is not None]
        return _Count(self.assignments + n_assigned, depth, covered, covering, uncovered,
                      _earliest(self.next_no_show, next_no_show), max(ticks, default=None),
                      self.no_shows + n_no_shows)

    def required(self, tranche: int, needed_approvals: int, n_validators: int,
                 no_show_duration: int) -> RequiredTranches:
        covering = self.covering if self.depth > 0 else 0
        if self.depth > 0 and self.assignments + covering + self.uncovered >= n_validators:
            return All()
        if self.assignments >= needed_approvals and covering + self.uncovered == 0:
            return Exact(tranche, self.covered, self.next_no_show, self.last_assignment_tick)
        broadcast = UNBOUNDED if self.depth == 0 else tranche + covering + self.uncovered
        return Pending(tranche, self.next_no_show, broadcast, self.drift(no_show_duration))


def _no_shows(assignments: Mapping[int, int], approvals: Set[int], n_validators: int,
              drift: int, block_tick: int, no_show_duration: int,
              drifted_now: int) -> tuple[int, int | None]:
    """(no-shows among one tranche's checkers, the earliest tick a silent one becomes one)."""
    count, upcoming = 0, None
    for validator, tick in assignments.items():
        if validator >= n_validators or validator in approvals:
            continue
        no_show_at = max(0, max(tick, block_tick) - drift) + no_show_duration
        if no_show_at <= drifted_now:
            count += 1
        else:  # reported on the undrifted clock, when this node should look again
            upcoming = _earliest(upcoming, no_show_at + drift)
    return count, upcoming


def tranches_to_approve(tranches: Tranches, approvals: Set[int], tranche_now: int,
                        block_tick: int, no_show_duration: int, needed_approvals: int,
                        n_validators: int) -> TranchesToApprove:
    tick_now = block_tick + tranche_now
    count = _Count(covering=needed_approvals)
    tranche = 0
    result: RequiredTranches | None = None
    while True:
        drift = count.drift(no_show_duration)
        drifted_now = max(0, tick_now - drift)
        due = max(0, drifted_now - block_tick)
        if tranche > due:
            break
        assigned = tranches.get(tranche, {})
        if not assigned and result is not None:
            # Empty tranches change nothing but the tranche counted up to: jump to the next
            # non-empty one, or to the last one due.
            nxt = min((t for t, a in tranches.items() if a and t > tranche), default=None)
            last = due if nxt is None else min(nxt - 1, due)
            result = count.required(last, needed_approvals, n_validators, no_show_duration)
            tranche = last + 1
            continue
        n_assigned = sum(1 for v in assigned if v < n_validators)
        last_tick = max(assigned.values(), default=None)
        n_no_shows, upcoming = _no_shows(assigned, approvals, n_validators, drift, block_tick,
                                         no_show_duration, drifted_now)
        count = count.take(n_assigned, n_no_shows, upcoming, last_tick)
        result = count.required(tranche, needed_approvals, n_validators, no_show_duration)
        if not isinstance(result, Pending):
            break
        tranche += 1
    assert result is not None  # tranche 0 is always due
    return TranchesToApprove(result, count.no_shows)


def assignments_up_to(tranches: Tranches, tranche: int) -> set[int]:
    return {v for t, a in tranches.items() if t <= tranche for v in a}


@dataclass(frozen=True)
class Approved:
    """Approved by the required tranches, tolerating `no_shows` covered no-shows."""

    no_shows: int
    last_assignment_tick: int | None


@dataclass(frozen=True)
class ApprovedOneThird:
    """Approved by more than a third of all validators."""


@dataclass(frozen=True)
class Unapproved:
    pass


Check = Approved | ApprovedOneThird | Unapproved


def check_approval(tranches: Tranches, approvals: Set[int], n_validators: int,
                   required: RequiredTranches) -> Check:
    if 3 * len(approvals) > n_validators:
        return ApprovedOneThird()
    if not isinstance(required, Exact):
        return Unapproved()
    assigned = assignments_up_to(tranches, required.needed)
    approved = len(assigned & approvals)
    if approved + required.tolerated_missing >= len(assigned):
        return Approved(required.tolerated_missing, required.last_assignment_tick)
    return Unapproved()
