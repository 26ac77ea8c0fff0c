"""One dispute's votes: more than two thirds on a side conclude it (the project's supermajority,
`n - (n-1)//3`), more than a third confirm it, and whoever is on the losing side lost, including
votes that arrive after the conclusion."""

from __future__ import annotations

import pytest

from relay.core.disputes.state import (
    DisputeFlags,
    DisputeState,
    DisputeStateError,
    Vote,
    byzantine_threshold,
    import_votes,
)
from relay.core.inclusion import supermajority_threshold


def test_thresholds_are_the_projects_supermajority_and_a_byzantine_third() -> None:
    assert [byzantine_threshold(n) for n in (1, 4, 7, 10, 20)] == [0, 1, 2, 3, 6]
    assert [supermajority_threshold(n) for n in (4, 7, 10, 20)] == [3, 5, 7, 14]


def test_invalid_supermajority_concludes_invalid_and_every_valid_voter_lost() -> None:
    s = DisputeState(4)
    first = import_votes(s, [Vote(0, True, backing=True), Vote(1, True, backing=True),
                             Vote(2, False)], now=10)
    assert first.state.disputed and not first.state.concluded_invalid
    assert first.new_flags == DisputeFlags.CONFIRMED
    second = import_votes(first.state, [Vote(3, False)], now=11)
    assert second.new_flags == DisputeFlags.AGAINST_BYZANTINE  # 2 of 4 invalid, 3 needed
    third = import_votes(second.state, [Vote(1, False)], now=12)  # a backer turns
    assert third.new_flags == DisputeFlags.AGAINST_SUPERMAJORITY
    assert third.state.concluded_invalid and third.state.concluded_at == 12
    assert third.slash_for == {0, 1} and third.slash_against == frozenset()
    assert third.state.backers == {0, 1}


def test_valid_supermajority_concludes_valid_and_the_invalid_voters_lost() -> None:
    summary = import_votes(DisputeState(7), [Vote(v, True) for v in range(5)] + [Vote(6, False)], 3)
    assert summary.state.concluded_valid and DisputeFlags.FOR_SUPERMAJORITY in summary.new_flags
    assert summary.slash_against == {6} and summary.slash_for == frozenset()


def test_losing_votes_after_the_conclusion_lose_when_they_come() -> None:
    done = import_votes(DisputeState(4), [Vote(v, False) for v in range(3)], 1)
    assert done.state.concluded_invalid and done.slash_for == frozenset()
    late = import_votes(done.state, [Vote(3, True, backing=True)], 5)
    assert late.slash_for == {3} and late.new_flags == DisputeFlags.NONE
    assert late.state.concluded_at == 1  # concluded once


def test_votes_count_once_per_side_and_an_equivocator_on_both() -> None:
    s = import_votes(DisputeState(4), [Vote(0, True), Vote(0, True), Vote(0, False)], 0).state
    assert s.validators_for == {0} and s.validators_against == {0}


def test_a_vote_from_outside_the_session_is_refused_before_anything_counts() -> None:
    s = DisputeState(4)
    with pytest.raises(DisputeStateError, match="validator 4"):
        import_votes(s, [Vote(0, False), Vote(4, False)], 0)
    assert s == DisputeState(4)
