"""A simulation is a function of its configuration and seed."""

from __future__ import annotations

from dataclasses import asdict

from node.sim import SimConfig, run_sim


def test_same_seed_gives_identical_relay_blocks() -> None:
    a = run_sim(SimConfig(relay_blocks=16, seed=7, loss=0.05))
    b = run_sim(SimConfig(relay_blocks=16, seed=7, loss=0.05))
    assert [asdict(r) for r in a.records] == [asdict(r) for r in b.records]


def test_other_seeds_differ_in_detail_and_still_pass() -> None:
    runs = [run_sim(SimConfig(relay_blocks=16, seed=s, loss=0.05)) for s in (1, 2)]
    for r in runs:
        assert r.problems == []
        assert sum(len(b.included) for b in r.records) >= 20
    assert [b.hash for b in runs[0].records] != [b.hash for b in runs[1].records]
