"""The launcher itself (`node.cluster`), with real processes at 1 s slots: two clusters side by side
(one with sync backing, one that gets a collator while running), a port taken between the check
and the node's bind, a body that fails, and a launcher that is SIGKILLed. Each check reads the
pids from `network.json` to show that no process is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.cluster import (
    Cluster,
    NetworkSpec,
    NodeFailed,
    NodeSpec,
    ParaSpec,
    default_network,
    process_alive,
)
from node.cluster.ports import PortAllocator
from relay.core.config import HostConfiguration, sync_backing

WARMUP, WINDOW = 10, 15
SYNC_TARGET = range(7, 9)  # testing.md: 7-8 per window with sync backing, never more
PARENT_DEATH_S = 5.0  # the bound the issue sets for nodes to follow a SIGKILLed launcher


def host(sync: bool = False) -> HostConfiguration:
    """1 s slots, async backing (depth 3, ancestry 2) or sync backing."""
    config = HostConfiguration(slot_ms=1000)
    return sync_backing(config) if sync else config


def pids(run_dir: Path) -> dict[str, int]:
    doc = json.loads((run_dir / "network.json").read_text())
    return {n["name"]: n["pid"] for n in doc["nodes"]}


def alive(run_dir: Path) -> list[str]:
    return [name for name, pid in pids(run_dir).items() if process_alive(pid)]


def small_network() -> NetworkSpec:
    """Three validators and no full node (collators attach to alice); para 2000 with two
    collators taking turns, para 2001 registered with none yet."""
    return NetworkSpec(host(), tuple(NodeSpec(n, "validator") for n in ("alice", "bob", "charlie")),
                       paras=(ParaSpec(2000, collators=tuple(
                           NodeSpec(f"collator-2000-{k}", "collator", 2000) for k in (0, 1))),
                              ParaSpec(2001)), name="small")


async def test_two_clusters_side_by_side_sync_backing_and_an_added_collator(tmp_path: Path
                                                                            ) -> None:
    sync_dir, small_dir = tmp_path / "sync", tmp_path / "small"
    sync_net = default_network(host(sync=True), validators=4)
    async with Cluster(sync_net, sync_dir) as sync, Cluster(small_network(), small_dir) as small:
        ports = [{p for n in c for p in n.ports.values()} for c in (sync, small)]
        assert ports[0].isdisjoint(ports[1])
        assert small.observer.name == "alice"  # no full node: collators attach to a validator
        # A collator added to a running network: its para is backed within 5 relay blocks.
        await small.wait_para_height(2000, 3)
        collator = await small.add_collator(2001)
        added_at = await small.best_number()
        assert collator.name == "collator-2001-0" and collator.name in pids(small_dir)
        await small.wait_relay_height(added_at + 5)
        blocks = await small.best_chain(await small.best_number() - added_at)
        first_backed = [b.number for b in blocks if b.of("CandidateBacked", 2001)]
        assert first_backed and first_backed[0] <= added_at + 5, first_backed
        # Sync backing, measured on the other cluster meanwhile.
        await sync.wait_relay_height(WARMUP + WINDOW)
        await sync.assert_para_throughput(WINDOW, {2000: SYNC_TARGET, 2001: SYNC_TARGET})
        await small.wait_para_height(2001, 3)
        # Para 2000's two collators took turns by relay slot and kept one chain between them.
        built = [(await small[f"collator-2000-{k}"].metrics()).get(
            "polkadot_parachain_collations_generated_total", 0.0) for k in (0, 1)]
        assert all(n > 0 for n in built), built
        await small.assert_para_chains_consistent()
        assert sync.crashed() == [] and small.crashed() == []
        await sync.assert_no_handler_errors()
        await small.assert_no_handler_errors()
    for run_dir in (sync_dir, small_dir):
        assert alive(run_dir) == []
        for name in pids(run_dir):  # logs are kept after teardown
            assert (run_dir / f"{name}.log").stat().st_size > 0


class TakenFirst(PortAllocator):
    """Hands out `taken` first, as if another program bound it after the launcher's check."""

    def __init__(self, taken: int) -> None:
        super().__init__()
        self.taken: list[int] = [taken]

    def allocate(self) -> int:
        return self.taken.pop() if self.taken else super().allocate()


async def test_a_port_taken_after_the_check_is_retried_and_a_failing_body_stops_all(
        tmp_path: Path) -> None:
    net = NetworkSpec(host(), (NodeSpec("alice", "validator"), NodeSpec("bob", "validator")))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match="the test body failed"):
            async with Cluster(net, tmp_path, ports=TakenFirst(taken)) as cluster:
                alice = cluster["alice"]
                assert alice.starts == 2 and taken not in alice.ports.values()
                assert alice.log_path.read_text().count("cannot listen") == 1
                assert pids(tmp_path)["alice"] == alice.pid
                await cluster.wait_relay_height(2)
                raise RuntimeError("the test body failed")
    assert alive(tmp_path) == []
    assert json.loads((tmp_path / "network.json").read_text())["state"] == "stopped"


LAUNCHER = """
import sys
from node.cluster import SyncCluster, default_network
from relay.core.config import HostConfiguration

net = default_network(HostConfiguration(slot_ms=1000), validators=2, paras=1)
with SyncCluster(net, sys.argv[1]) as cluster:
    cluster["bob"].pause()  # a stopped node must die too
    print("running", flush=True)
    sys.stdin.read()  # until the test kills us
"""


def test_nodes_exit_when_the_launcher_is_sigkilled(tmp_path: Path) -> None:
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert launcher.stdout is not None
        line = launcher.stdout.readline()
        assert line == b"running\n", launcher.stderr.read() if launcher.stderr else line
        started = pids(tmp_path)
        assert sorted(started) == ["alice", "bob", "charlie", "collator-2000-0"]
        assert alive(tmp_path) == list(started)
    finally:
        launcher.kill()
        launcher.wait()
    deadline = time.monotonic() + PARENT_DEATH_S
    while alive(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = alive(tmp_path)
    for name in left:  # leave nothing running even when the check fails
        os.killpg(started[name], signal.SIGKILL)
    assert left == [], f"still running {PARENT_DEATH_S} s after the launcher was SIGKILLed"


async def test_a_failed_start_names_the_node_and_leaves_nothing_running(tmp_path: Path
                                                                      ) -> None:
    # A collator for a para the chain spec does not register: its node refuses to start.
    net = NetworkSpec(host(), (NodeSpec("alice", "validator"),),
                      paras=(ParaSpec(2000, registered=False, collators=(
                          NodeSpec("collator-2000-0", "collator", 2000),)),))
    with pytest.raises(NodeFailed, match="node collator-2000-0: exited with status 1 before "
                                         "it started: error: para 2000 is not in the chain spec"):
        async with Cluster(net, tmp_path):
            raise AssertionError("the cluster should not have started")
    assert alive(tmp_path) == []
