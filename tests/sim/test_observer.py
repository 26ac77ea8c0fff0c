"""The RPC observer (node/cluster/observe.py) against a simulated network: polled as `asyncback
testnet` polls (four times a slot) through the nodes' own RPC methods (called in process, in
virtual time), it records the very blocks, candidates, transaction counts, finality and
unincluded segments the simulation reads from its services."""

from __future__ import annotations

from typing import Any

from node.cluster.observe import NetworkObserver, Rpc
from node.rpc.methods import RpcMethods
from node.sim import OBSERVER, NodeFault, SimConfig, Simulation, run_sim
from relay.core.config import HostConfiguration


def in_process(sim: Simulation, name: str) -> Rpc:
    """`rpc(method, params)` on the node currently running under `name` (a restarted node is a
    new service object)."""
    registries: dict[int, RpcMethods] = {}

    async def rpc(method: str, params: list[Any]) -> Any:
        service = sim.services[name]
        methods = registries.setdefault(id(service), RpcMethods.for_node(service))
        return methods.call(method, params)

    return rpc


def observe(cfg: SimConfig) -> tuple[Any, NetworkObserver]:
    observers: list[NetworkObserver] = []

    async def on_poll(sim: Simulation) -> None:
        if not observers:
            collators = {pid: [in_process(sim, f"collator-{pid}-{k}")
                               for k in range(cfg.collators_per_para)] for pid in sim.dev.paras}
            observers.append(NetworkObserver(in_process(sim, OBSERVER), sim.dev.paras,
                                             collators))
        await observers[0].poll()

    result = run_sim(cfg, on_poll)
    return result, observers[0]


def test_observer_records_what_the_simulation_holds() -> None:
    cfg = SimConfig(relay_blocks=30, seed=3)
    result, observer = observe(cfg)
    assert observer.records[: cfg.relay_blocks] == result.records
    assert observer.segment_lengths == result.segment_lengths
    assert observer.collator_segment_lengths == result.collator_segment_lengths
    assert observer.reorgs == 0
    summary = observer.summary(cfg.relay_blocks)["paras"]
    for para in ("2000", "2001"):
        assert summary[para]["window_min"] == 15
        assert summary[para]["txs_per_relay_block"] > 0  # read from the collators' para blocks
        assert summary[para]["collator_unincluded_segment"]["max"] >= 2  # async backing


def test_observer_follows_elastic_scaling_and_a_restarted_collator() -> None:
    cfg = SimConfig(paras=1, cores_per_para=3, relay_blocks=30, seed=1,
                    host=HostConfiguration(max_candidate_depth=6),
                    faults=[NodeFault("collator-2000-0", 12, 15)])
    result, observer = observe(cfg)
    assert observer.records[: cfg.relay_blocks] == result.records
    assert max(len(b.included) for b in observer.records) == 3
    window, last = observer.window(2000), result.records[-15:]
    assert window.included == sum(len(b.included) for b in last) >= 30
    assert window.backed == sum(len(b.backed) for b in last)
    ages = [b.number - x.relay_parent_number for b in last for x in b.backed]
    assert window.relay_parent_age == sum(ages) / len(ages)
    assert window.pending_availability == result.segment_lengths[2000][-1]
    assert window.unincluded_segment == result.collator_segment_lengths[2000][-1]
