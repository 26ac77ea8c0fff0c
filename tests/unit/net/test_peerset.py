"""Reputation: named costs, a ban after one malicious report, decay toward zero over time."""

from __future__ import annotations

from node.net.peerset import BAN_SECONDS, PeerSet, Rep

P = b"p" * 32


def test_costs_accumulate_and_malice_bans() -> None:
    ps = PeerSet()
    assert not ps.report(P, Rep.COST_MINOR, 0.0)
    assert not ps.report(P, Rep.COST_INVALID_SIGNATURE, 0.0)
    assert ps.score(P, 0.0) == -600_000
    assert ps.report(P, Rep.MALICIOUS, 1.0)
    assert ps.is_banned(P, 1.0 + BAN_SECONDS - 1)
    assert not ps.is_banned(P, 1.0 + BAN_SECONDS + 1)
    assert ps.banned(2.0) == [P]


def test_honest_scores_at_least_halve_every_140_seconds() -> None:
    ps = PeerSet()
    ps.report(P, Rep.COST_MAJOR, 0.0)
    for t in (140.0, 280.0, 420.0):
        before = ps.score(P, t - 140.0)
        assert abs(ps.score(P, t)) <= abs(before) / 2
    assert ps.score(P, 10_000.0) == 0.0
    ps.report(P, Rep.BENEFIT_VALID_MESSAGE, 10_000.0)
    assert ps.score(P, 10_000.0) > 0
