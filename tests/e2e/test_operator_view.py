"""What an operator sees of a short real run (4 validators, a relay node, a collator; 1 s slots):
every metric each role declares has been observed (`node.metrics.unobserved`: this test fails
naming any family a role exports and never observes), collators export their para's best and
included heights, and every node's JSON log holds the informant's lines (blocks imported and
authored with their para candidates, the idle summary, finality, peers, collations built and
seconded) and, after SIGTERM, why it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from node.cluster import Cluster, default_network
from node.cluster.http import get_text
from node.metrics import unobserved
from relay.core.config import HostConfiguration

PARA = 2000
EXPECTED_EVENTS = {
    "validator": {"node started", "peer connected", "block imported", "block authored", "idle",
                  "finalized"},
    "relay-node": {"node started", "peer connected", "block imported", "idle", "finalized"},
    "collator": {"node started", "relay rpc connected", "peer connected", "collation built",
                 "collation seconded", "idle"},
}


def events(log: Path) -> list[dict[str, Any]]:
    """Every line of a node's log, each a JSON object (the format docker and the launcher use)."""
    out = []
    for line in log.read_text().splitlines():
        doc = json.loads(line)  # a line that is not JSON fails here
        assert isinstance(doc, dict) and "event" in doc and "level" in doc, line
        out.append(doc)
    return out


def test_every_declared_metric_is_observed_and_the_logs_tell_the_story(tmp_path: Path) -> None:
    spec = default_network(HostConfiguration(slot_ms=1000), validators=4, paras=1)
    problems: dict[str, list[str]] = {}
    heights: dict[str, float] = {}

    async def run() -> Cluster:
        async with Cluster(spec, tmp_path) as cluster:
            # Enough for every role's work to have happened: candidates backed and included,
            # finality moving, and at least one informant summary (every 5 s) on every node.
            await cluster.wait_para_height(PARA, 6)
            await cluster.wait_finalized_height(8)
            await trio.sleep(5)
            for node in cluster:
                text = await get_text(node.host, node.ports["prometheus"], "/metrics", 10)
                problems[node.name] = unobserved(node.role, text)
            collator = cluster.collators(PARA)[0]
            m = await collator.metrics()
            heights["best"] = m[f'asyncback_para_best_height{{para_id="{PARA}"}}']
            heights["finalized"] = m[f'asyncback_para_finalized_height{{para_id="{PARA}"}}']
            await cluster.assert_no_handler_errors()
            return cluster

    cluster = trio.run(run)
    assert not {name: p for name, p in problems.items() if p}, problems
    assert heights["best"] >= 6 and 1 <= heights["finalized"] <= heights["best"], heights
    for node in cluster:
        logged = events(node.log_path)
        names = {e["event"] for e in logged}
        missing = EXPECTED_EVENTS[node.role] - names
        assert not missing, f"{node.name} never logged {missing}"
        stopped = [e for e in logged if e["event"] == "node stopped"]
        assert stopped and stopped[-1]["reason"] == "SIGTERM received", node.name
        if node.role == "validator":
            authored = [e for e in logged if e["event"] == "block authored"]
            assert all({"backed", "included", "bitfields"} <= set(e) for e in authored)
        if node.role != "collator":
            idle = [e for e in logged if e["event"] == "idle"]
            assert all(e["best"].startswith("#") and "finalized" in e and "down" in e
                       for e in idle)
