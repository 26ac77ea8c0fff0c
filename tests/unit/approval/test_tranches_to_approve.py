"""`tranches_to_approve` and `check_approval`: the counting rules of approval checking, on the
reference implementation's scenarios (block at tick 20, no-shows after 10 ticks)."""

from __future__ import annotations

from relay.core.approval.checking import (
    UNBOUNDED,
    All,
    Approved,
    ApprovedOneThird,
    Exact,
    Pending,
    Unapproved,
    check_approval,
    tranches_to_approve,
)

BLOCK_TICK, NO_SHOW = 20, 10


def required(tranches: dict[int, dict[int, int]], approvals: set[int], tranche_now: int,
             needed: int = 4, n: int = 8) -> object:
    return tranches_to_approve(tranches, approvals, tranche_now, BLOCK_TICK, NO_SHOW, needed,
                               n).required


def test_everyone_present_needs_only_the_tranches_holding_needed_approvals() -> None:
    t = {0: {0: 20, 1: 20}, 1: {2: 21, 3: 21}, 2: {4: 22}}
    assert required(t, {0, 1, 2, 3, 4}, 2, n=5) == Exact(1, 0, None, 21)


def test_too_few_assignments_stay_pending_and_accept_any_tranche() -> None:
    t = {0: {0: 20}, 1: {2: 20}}
    assert required(t, set(), 2, n=10) == Pending(2, BLOCK_TICK + NO_SHOW, UNBOUNDED, 0)


def test_no_shows_before_the_initial_count_are_only_counted_once_it_is_reached() -> None:
    t = {0: {0: 20, 1: 20}, 1: {2: 20}}
    assert required(t, {0, 1}, NO_SHOW + 1, n=10) == Pending(11, None, UNBOUNDED, 0)


def test_a_no_show_must_be_covered_by_one_more_tranche() -> None:
    t = {0: {0: 20, 1: 20}, 1: {2: 20, 3: 20}}
    # validator 2 is a no-show: tranche 2 must cover it, on a clock one no-show period behind
    assert required(t, {0, 1, 3}, NO_SHOW + 1) == Pending(1, None, 2, NO_SHOW)
    assert required(t, {1, 3}, NO_SHOW + 1) == Pending(1, None, 3, NO_SHOW)  # two no-shows


def test_a_covering_tranche_covers_one_no_show_however_many_it_holds() -> None:
    t = {0: {0: 20, 1: 20}, 1: {2: 21, 3: 21}, 2: {4: 32, 5: 32}}
    approvals = {0, 1, 3, 4, 5}
    assert required(t, approvals, NO_SHOW + 2) == Exact(2, 1, None, 32)
    approvals.discard(0)  # a second no-show: tranche 2 covers only one of them
    assert required(t, approvals, NO_SHOW + 2) == Pending(2, None, 3, NO_SHOW)
    t[3] = {6: 20}
    approvals.add(6)
    assert required(t, approvals, NO_SHOW + 3) == Exact(3, 2, None, 32)


def test_no_shows_among_covering_checkers_are_covered_at_the_next_depth() -> None:
    t = {0: {0: 20, 1: 20}, 1: {2: 21, 3: 21}, 2: {4: 32, 5: 32}}
    approvals = {0, 1, 3, 5}
    assert required(t, approvals, 1) == Exact(1, 0, BLOCK_TICK + NO_SHOW + 1, 21)
    assert required(t, approvals, NO_SHOW + 2) == Exact(2, 1, BLOCK_TICK + 2 * NO_SHOW + 2, 32)
    # validator 4 (covering 2) is silent too: depth 2, the clock two periods behind
    assert required(t, approvals, 2 * NO_SHOW + 2) == Pending(2, None, 3, 2 * NO_SHOW)


def test_when_every_validator_would_not_cover_the_no_shows_all_are_required() -> None:
    t = {0: {0: 20, 1: 20}, 1: {2: 20, 3: 20}}
    assert required(t, set(), NO_SHOW + 1, n=4) == All()


def test_validator_indices_out_of_range_are_ignored() -> None:
    t = {1: {2: 1, 3: 1, 4: 1}}  # only validator 2 of the three exists, and is a no-show
    result = tranches_to_approve(t, set(), 10, BLOCK_TICK, NO_SHOW, 3, 3)
    assert result.required == Pending(10, None, UNBOUNDED, 0)
    assert result.total_observed_no_shows == 1


def test_empty_tranches_are_skipped_without_changing_the_count() -> None:
    t = {0: {0: 20}, 7: {1: 27}, 9: {2: 29}}
    assert required(t, {0, 1, 2}, 8, needed=3) == Pending(8, None, UNBOUNDED, 0)
    assert required(t, {0, 1, 2}, 9, needed=3) == Exact(9, 0, None, 29)
    assert required(t, {0, 1, 2}, 10_000, needed=3) == Exact(9, 0, None, 29)


def test_check_approval_exact_counts_assignments_up_to_needed_less_tolerated() -> None:
    t = {0: {0: 0, 1: 0}, 1: {2: 1, 3: 1, 4: 1}, 2: {5: 0, 6: 0, 7: 0, 8: 0, 9: 0}}
    approvals = {0, 1, 2}
    assert check_approval(t, approvals, 10, Exact(0, 0, None, None)) == Approved(0, None)
    assert check_approval(t, approvals, 10, Exact(1, 0, None, None)) == Unapproved()
    assert check_approval(t, approvals, 10, Exact(1, 2, None, None)) == Approved(2, None)


def test_pending_and_all_are_unapproved_until_more_than_a_third_approve() -> None:
    t = {0: {0: 0, 1: 0, 2: 0, 3: 0}, 1: {4: 1, 5: 1}}
    approvals = {0, 1, 2}
    for req in (All(), Pending(5, None, 8, 12), Exact(10, 0, None, None)):
        assert check_approval(t, approvals, 10, req) == Unapproved()
        assert check_approval(t, approvals | {3}, 10, req) == ApprovedOneThird()
