"""A simulation split over two processes (`SimConfig.processes = 2`, `node/net/bridge.py`): the
validators of the second process take their full part (backing, availability, approvals,
finality), faults reach them, and the run is a function of its seed."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from node import sim as sim_module
from node.net.bridge import PeerProcessFailed
from node.report import summarize
from node.sim import NodeFault, PartitionFault, SimConfig, SimResult, run_sim
from relay.core.config import ConfigError

_cache: dict[int, SimResult] = {}


def _split_run(seed: int = 5) -> SimResult:
    if seed not in _cache:
        _cache[seed] = run_sim(SimConfig(validators=10, paras=3, relay_blocks=30, seed=seed,
                                         processes=2))
    return _cache[seed]


def test_two_processes_keep_the_async_pace_and_the_invariants() -> None:
    result = _split_run()
    assert result.problems == []
    summary = summarize(result.records, result.para_ids)
    for pid, para in summary["paras"].items():
        assert para["window_min"] >= 14, (pid, para)
    assert summary["finalized_number"] >= summary["best_number"] - 3
    # Every validator is in the result, and those of the second process (bob, dave, ...)
    # authored, backed, checked and finalized like the others.
    validators = {n: i for n, i in result.nodes.items() if i["role"] == "validator"}
    assert len(validators) == 10
    for name in ("bob", "dave", "ferdie"):
        info = validators[name]
        assert info["authored"] > 0 and info["seconded"] > 0, (name, info)
        assert info["approvals"] > 0 and info["bitfields"] > 0, (name, info)
        assert info["finalized"] >= summary["finalized_number"] - 2, (name, info)


def test_same_seed_same_run_across_processes() -> None:
    first = _split_run()
    again = run_sim(SimConfig(validators=10, paras=3, relay_blocks=30, seed=5, processes=2))
    assert [asdict(r) for r in again.records] == [asdict(r) for r in first.records]
    assert again.nodes == first.nodes and again.network == first.network


def test_faults_reach_the_second_process() -> None:
    """Process 0 follows the observed chain and tells the other process, at the next window's
    end, to kill, restart or cut off its nodes: bob (killed, back with its store), harry (joins
    late, empty), charlie and dave (partitioned away) all run in the second process. The run
    goes as the same faults go in one process."""
    faults = (NodeFault("bob", 8, 14, keep_state=True), NodeFault("harry", 0, 10))
    cut = (PartitionFault(("charlie", "dave"), 12, 18),)
    runs = [run_sim(SimConfig(validators=10, paras=3, relay_blocks=36, seed=4, processes=n,
                              faults=faults, partitions=cut)) for n in (2, 1)]
    summaries = [summarize(r.records, r.para_ids) for r in runs]
    for result, summary in zip(runs, summaries, strict=True):
        assert result.problems == []
        assert summary["finalized_number"] >= 33
        assert {c.node: c.caught_up_at is not None for c in result.catch_ups} == \
            {"bob": True, "harry": True}
        for name in ("bob", "harry", "charlie", "dave"):
            assert result.nodes[name]["best"] >= 35 and result.nodes[name]["authored"] > 0
    split, single = summaries
    assert [p["window_min"] for p in split["paras"].values()] == \
        [p["window_min"] for p in single["paras"].values()]


def test_more_processes_than_two_are_refused() -> None:
    with pytest.raises(ConfigError, match="processes must be 1 or 2"):
        run_sim(SimConfig(validators=6, paras=1, relay_blocks=5, processes=3))


def test_a_failure_in_the_second_process_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: sim_module.Simulation) -> dict[str, object]:
        raise RuntimeError("the second process broke")

    # The second process is forked from this one: it runs the patched method.
    monkeypatch.setattr(sim_module.Simulation, "worker_main", broken)
    with pytest.raises(PeerProcessFailed, match="the second process broke"):
        run_sim(SimConfig(validators=6, paras=1, relay_blocks=5, processes=2))
