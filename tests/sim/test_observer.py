"""The RPC observer (node/cluster/observe.py) against a simulated network: polled as `asyncback
testnet` polls (four times a slot) through the nodes' own RPC methods (called in process, in
virtual time), it records the very blocks, candidates, transaction counts, finality and
unincluded segments the simulation reads from its services."""

from __future__ import annotations

import functools
import io
from typing import Any

from rich.console import Console

from node.cluster.live import SECONDED_METRIC, LiveView, SecondedCounter, live_table
from node.cluster.observe import NetworkObserver, Rpc
from node.rpc.methods import RpcMethods
from node.sim import OBSERVER, NodeFault, PollHook, SimConfig, Simulation, run_sim
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


def observe(cfg: SimConfig, also: PollHook | None = None) -> tuple[Any, NetworkObserver]:
    observers: list[NetworkObserver] = []

    async def on_poll(sim: Simulation) -> None:
        if also is not None:
            await also(sim)
        if not observers:
            collators = {pid: [in_process(sim, f"collator-{pid}-{k}")
                               for k in range(cfg.collators_per_para)] for pid in sim.dev.paras}
            observers.append(NetworkObserver(in_process(sim, OBSERVER), sim.dev.paras,
                                             collators))
        await observers[0].poll()

    result = run_sim(cfg, on_poll)
    return result, observers[0]


DEFAULT = SimConfig(relay_blocks=30, seed=3)


@functools.cache
def default_run() -> tuple[Any, NetworkObserver, dict[int, float]]:
    """The default network, observed; with each collator's seconded counter at the end."""
    seconded: dict[int, float] = {}

    async def on_poll(sim: Simulation) -> None:
        for pid in sim.dev.paras:
            metrics = sim.services[f"collator-{pid}-0"].metrics
            seconded[pid] = metrics.registry.get_sample_value(SECONDED_METRIC) or 0.0

    result, observer = observe(DEFAULT, on_poll)
    return result, observer, seconded


def test_observer_records_what_the_simulation_holds() -> None:
    cfg = DEFAULT
    result, observer, _ = default_run()
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


def test_collators_count_their_seconded_collations() -> None:
    _, observer, seconded = default_run()
    for pid in (2000, 2001):
        backed = {x.candidate_hash for b in observer.records for x in b.backed if x.para_id == pid}
        # every backed candidate was seconded first, and its collator told so (once each)
        assert len(backed) <= seconded[pid] <= len(backed) + 2


def test_live_view_shows_the_window_and_one_line_per_block() -> None:
    _, observer, seconded = default_run()
    counter = SecondedCounter()
    counter.note(2000, 0, 0.0)
    counter.note(2000, observer.best_number, seconded[2000])
    console = Console(file=io.StringIO(), width=140)
    console.print(live_table(observer, counter, "asyncback-local"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"relay best #{observer.best_number}, finalized #{observer.finalized_number}" in text
    rows = {cells[0]: cells[1:] for line in text.splitlines()
            if len(cells := [c.strip() for c in line.split("│") if c.strip()]) == 7}
    w = observer.window(2001)
    assert rows["2001"][1:4] == [str(w.backed), str(w.included), str(w.pending_availability)]
    assert rows["2001"][0] == "-"  # no seconded samples for 2001 in this counter
    assert int(rows["2000"][0]) == int(seconded[2000])  # all within the window's start
    out = io.StringIO()
    view = LiveView("asyncback-local", out=out, live=False)
    view.update(observer, observer.records[-2:], replaced=False, seconded=counter)
    lines = out.getvalue().splitlines()
    last = observer.records[-1]
    assert len(lines) == 2 and lines[1].startswith(f"#{last.number} {last.hash[:10]} by ")
    included = next(i for i in last.included if i.para_id == 2000)
    assert f"2000: backed #{included.para_number + 1} included #{included.para_number} (" in lines[1]
