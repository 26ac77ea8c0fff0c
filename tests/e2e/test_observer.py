"""The RPC observer (node/cluster/observe.py) following a real network at 1 s slots over
WebSocket JSON-RPC while it runs: what it recorded block by block is what the nodes hold when
read afresh afterwards, from another node (a validator), and its transaction counts are the
collators' para blocks."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio
from cluster import NAMES, Cluster

from node.cluster.observe import NetworkObserver
from node.invariants import check_invariants
from node.rpc.client import RpcConnectionError, connect

BLOCKS = 26  # one 15-block window after 10 warm-up blocks
PARAS = (2000, 2001)


async def follow(cluster: Cluster) -> NetworkObserver:
    relay = cluster.nodes["relay"]
    async with AsyncExitStack() as stack:
        async def client(port: int) -> Any:
            for _ in range(240):  # the process is still starting: a hang guard, not a timing
                try:
                    return await stack.enter_async_context(connect(f"ws://127.0.0.1:{port}/"))
                except RpcConnectionError:
                    await trio.sleep(0.25)
            raise AssertionError(f"no RPC on port {port}")

        relay_rpc = (await client(relay.rpc)).call
        collators = {p: [(await client(cluster.nodes[f"collator-{p}"].rpc)).call] for p in PARAS}
        observer = NetworkObserver(relay_rpc, PARAS, collators)
        stalled = 0
        while len(observer.records) < BLOCKS + 2:
            stalled = 0 if await observer.poll() else stalled + 1
            assert stalled < 200, f"relay node stuck at #{observer.best_number}"
            await trio.sleep(cluster.slot_ms / 4000)
        return observer


def test_observer_follows_a_real_network(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    cluster.genesis("--validators", "4", "--paras", "2")
    try:
        boot = cluster.add(NAMES[0], "validator")
        for name in NAMES[1:4]:
            cluster.add(name, "validator", bootnode=boot)
        relay = cluster.add("relay", "relay-node", bootnode=boot)
        for pid in PARAS:
            cluster.add(f"collator-{pid}", "collator", "--para-id", str(pid),
                        "--relay-chain-rpc-url", f"ws://127.0.0.1:{relay.rpc}", bootnode=relay)
        observer = trio.run(follow, cluster)
        alice = cluster.nodes["alice"]
        cluster.wait_for_block(alice, BLOCKS)
        # Read afresh from alice: her best chain and events agree with what was followed live
        # (blocks below the observed finalized head cannot have changed since).
        finalized = observer.finalized_number
        assert finalized >= BLOCKS - 3
        for rec in observer.records[:finalized]:
            assert alice.rpc_call("chain_getBlockHash", [rec.number]) == rec.hash
            header = alice.rpc_call("chain_getHeader", [rec.hash])
            assert (header["slot"], header["author"]) == (rec.slot, rec.author)
            events = alice.rpc_call("parachain_events", [rec.hash])
            assert [(e["candidate_hash"], e["backed_in"]) for e in events
                    if e["type"] == "CandidateIncluded"] == \
                [(i.candidate_hash, i.backed_in) for i in rec.included]
            assert [e["candidate_hash"] for e in events if e["type"] == "CandidateBacked"] == \
                [b.candidate_hash for b in rec.backed]
            assert rec.finalized and rec.finalized_at is not None
        assert check_invariants(observer.records, 2, 3) == []
        # transaction counts are the collators' para blocks
        included = [i for r in observer.records for i in r.included]
        assert included and all(i.txs > 0 for i in included)
        summary = observer.summary(BLOCKS)["paras"]
        for p in PARAS:
            s = summary[str(p)]
            assert s["window_min"] is not None and s["window_min"] >= 14, s
            assert s["collator_unincluded_segment"]["max"] >= 1
            assert s["inclusion_to_finality"] is not None
    finally:
        cluster.stop()
