"""Peer set: named costs, one malicious report bans, ban windows, decay toward 0, slots.
Pure: time is passed in (virtual seconds)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.net.peerset import BAN_WINDOW_S, BANNED_THRESHOLD, PeerSet
from node.net.transport import Direction
from proto.network import (
    BENEFIT_MAJOR,
    BENEFIT_MINOR,
    COST_INVALID_SIGNATURE,
    COST_MAJOR,
    COST_MALICIOUS,
    COST_MINOR,
    COST_UNEXPECTED_MESSAGE,
    MALICIOUS,
    ReputationChange,
)

P, Q, R = b"p" * 32, b"q" * 32, b"r" * 32


def test_costs_accumulate_without_ban() -> None:
    ps = PeerSet()
    assert not ps.report(P, COST_MINOR, 0.0)
    assert not ps.report(P, COST_MAJOR, 0.0)
    assert not ps.report(P, COST_UNEXPECTED_MESSAGE, 0.0)
    assert ps.reputation(P, 0.0) == -500_000
    assert ps.reputation(Q, 0.0) == 0
    assert ps.banned(0.0) == []


def test_one_malicious_report_bans_for_the_window_then_allows_again() -> None:
    assert COST_MALICIOUS is MALICIOUS
    assert MALICIOUS.value < BANNED_THRESHOLD
    ps = PeerSet()
    assert ps.report(P, MALICIOUS, 10.0)
    assert ps.is_banned(P, 10.0)
    assert ps.banned(10.0) == [P]
    assert not ps.try_reserve(P, Direction.INBOUND, 10.0 + BAN_WINDOW_S - 0.5)
    assert not ps.is_banned(P, 10.0 + BAN_WINDOW_S + 0.5)
    assert ps.try_reserve(P, Direction.INBOUND, 10.0 + BAN_WINDOW_S + 0.5)
    # an invalid signature is as fatal as any malicious report
    assert ps.report(Q, COST_INVALID_SIGNATURE, 0.0)


def test_ban_lasts_while_score_stays_below_threshold() -> None:
    # No decay: the score never recovers, so the ban outlives its window.
    ps = PeerSet(decay_per_second=1.0, ban_window_s=5.0)
    assert ps.report(P, MALICIOUS, 0.0)
    assert ps.is_banned(P, 1000.0)


def test_decay_halves_every_140_virtual_seconds_and_reaches_zero() -> None:
    ps = PeerSet()
    ps.report(P, COST_MAJOR, 0.0)
    ps.report(Q, BENEFIT_MAJOR, 0.0)
    for t in (140.0, 280.0, 420.0):
        assert abs(ps.reputation(P, t)) <= abs(ps.reputation(P, t - 140.0)) / 2
        assert ps.reputation(Q, t) <= ps.reputation(Q, t - 140.0) / 2
    assert ps.reputation(P, 10_000.0) == 0
    ps.prune(10_000.0)
    assert len(ps) == 0


def test_benefits_raise_the_score() -> None:
    ps = PeerSet()
    ps.report(P, COST_MINOR, 0.0)
    ps.report(P, BENEFIT_MINOR, 0.0)
    assert ps.reputation(P, 0.0) == COST_MINOR.value + BENEFIT_MINOR.value


def test_slots_per_direction() -> None:
    ps = PeerSet(max_inbound=1, max_outbound=1)
    assert ps.try_reserve(P, Direction.INBOUND, 0.0)
    assert not ps.try_reserve(Q, Direction.INBOUND, 0.0)  # inbound full
    assert not ps.try_reserve(P, Direction.OUTBOUND, 0.0)  # P already holds a slot
    assert ps.try_reserve(Q, Direction.OUTBOUND, 0.0)
    assert not ps.try_reserve(R, Direction.OUTBOUND, 0.0)
    ps.release(P)
    assert ps.slots_used(Direction.INBOUND) == 0
    assert ps.try_reserve(R, Direction.INBOUND, 0.0)
    with pytest.raises(ValueError):
        PeerSet(max_inbound=-1)


changes = st.builds(ReputationChange, st.integers(min_value=-(2**31), max_value=2**31 - 1),
                    st.just("x"))


@given(st.lists(st.tuples(changes, st.floats(min_value=0, max_value=1000)), max_size=20),
       st.floats(min_value=0, max_value=1e5), st.floats(min_value=140, max_value=1e4))
def test_any_score_at_least_halves_toward_zero_per_140_s(
        reports: list[tuple[ReputationChange, float]], start: float, dt: float) -> None:
    ps = PeerSet()
    t = 0.0
    for change, gap in reports:
        t += gap
        ps.report(P, change, t)
    t0 = max(t, start)
    before, after = ps.reputation(P, t0), ps.reputation(P, t0 + dt)
    assert abs(after) <= abs(before) / 2 + 1
    assert after * before >= 0  # decays toward 0, never across it
