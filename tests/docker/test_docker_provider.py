"""The docker provider end to end: `asyncback testnet --provider docker` and `asyncback test` on
a network file whose `[settings] provider` is "docker", on the image under test, at 1 s slots.

- the testnet writes the run directory the native launcher writes (network.json, now with
  container ids; a log per node; report.json; timeline.png) and each para gets >= 14 included
  per 15-block window;
- a container killed from outside is a node that died: the testnet stops, naming it and its
  log; Ctrl-C stops it as asked;
- pause/resume, kill and restart through the `Cluster` API act on the containers;
- the async-backing example's `.zndsl` passes on containers (node names that are not dev names,
  log lines, metrics, para heights);
- each leaves no container, network or volume of its compose project.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from docker_env import ROOT, leftovers, run

HANG_GUARD_S = 420  # turns a hang into a failure; never a measure of speed
NODES = {"alice", "bob", "charlie", "dave", "eve", "ferdie", "collator-2000-0",
         "collator-2001-0"}


def asyncback(image: str, *args: str, cwd: Path) -> subprocess.Popen[bytes]:
    out = (cwd / "out.txt").open("wb")
    return subprocess.Popen([sys.executable, "-m", "node.cli", *args], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "ASYNCBACK_IMAGE": image},
                            stdout=out, stderr=subprocess.STDOUT)


def network_of(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "network.json").read_text()))


def assert_nothing_left(network: dict[str, Any]) -> None:
    project = network["project"]
    assert project.startswith("asyncback-")
    left = leftovers(f"com.docker.compose.project={project}")
    assert left == {"containers": [], "networks": [], "volumes": []}, left
    ids = [n["container"] for n in network["nodes"]]
    still = run("docker", "ps", "-aq", "--no-trunc", check=False).stdout.split()
    assert not set(ids) & set(still)


def test_testnet_on_docker_writes_the_native_run_directory(image: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "R"
    began = time.monotonic()
    proc = asyncback(image, "testnet", "--provider", "docker", "--slot-ms", "1000",
                     "--relay-blocks", "40", "--run-dir", str(run_dir), cwd=tmp_path)
    code = proc.wait(timeout=HANG_GUARD_S)
    text = (tmp_path / "out.txt").read_text()
    assert code == 0, text
    network = network_of(run_dir)
    assert network["provider"] == "docker" and network["state"] == "stopped"
    assert network["image"] == image
    assert {n["name"] for n in network["nodes"]} == NODES
    for n in network["nodes"]:
        assert re.fullmatch(r"[0-9a-f]{64}", n["container"]), n
        assert n["rpc_url"].startswith("http://127.0.0.1:")
        assert any(line.startswith(n["name"]) and n["rpc_url"] in line
                   and n["prometheus_url"] in line and n["log_path"] in line
                   for line in text.splitlines()), n["name"]
        log = Path(n["log_path"])
        assert log.parent == run_dir.resolve()
        assert '"event": "node started"' in log.read_text(), log
    assert (run_dir / "docker-compose.yml").exists() and (run_dir / "chain-spec.json").exists()
    report = json.loads((run_dir / "report.json").read_text())
    assert len(report["relay_blocks"]) == 40 and report["config"]["mode"] == "testnet"
    windows = {}
    for para in ("2000", "2001"):
        s = report["summary"]["paras"][para]
        windows[para] = (s["window_min"], s["window_max"])
        assert s["window_min"] >= 14, s
        assert s["txs_included"] > 0
    assert (run_dir / "timeline.png").read_bytes().startswith(b"\x89PNG")
    assert "stopped by relay-blocks" in " ".join(text.split())
    print(f"\ndocker testnet: every node answering RPC {network['started_in_s']} s after the "
          f"launch; included per 15-block window (min, max) {windows}; whole run "
          f"{time.monotonic() - began:.0f} s")
    assert_nothing_left(network)


@pytest.mark.parametrize("ending", ["container killed", "sigint"])
def test_a_testnet_stopped_midway_cleans_up(image: str, tmp_path: Path, ending: str) -> None:
    """A container killed from outside is a node that died: the testnet stops with status 1,
    naming it and its log. Ctrl-C stops it as asked (status 0). Either way nothing is left."""
    run_dir = tmp_path / "R"
    proc = asyncback(image, "testnet", "--provider", "docker", "--slot-ms", "1000",
                     "--run-dir", str(run_dir), cwd=tmp_path)
    out = tmp_path / "out.txt"
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while not any(line.startswith("#3 ") for line in out.read_text().splitlines()):
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        network = network_of(run_dir)
        victim = next(n for n in network["nodes"] if n["name"] == "collator-2001-0")
        if ending == "sigint":
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=HANG_GUARD_S) == 0, out.read_text()
        else:
            run("docker", "kill", victim["container"])
            assert proc.wait(timeout=HANG_GUARD_S) == 1, out.read_text()
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=HANG_GUARD_S)
    assert_nothing_left(network_of(run_dir))
    text = " ".join(out.read_text().split())
    if ending == "sigint":
        assert "stopped by interrupted" in text, text
        return
    # docker reports a SIGKILLed container's exit status as 128 + 9
    assert (f"node collator-2001-0 (collator) exited with status 137; its log: "
            f"{victim['log_path']}") in text, text
    assert (run_dir / "report.json").exists()


def test_a_zndsl_runs_on_containers_when_the_network_file_says_docker(image: str,
                                                                        tmp_path: Path) -> None:
    toml = (ROOT / "examples" / "async-backing.toml").read_text()
    assert 'provider = "native"' in toml
    network_file = tmp_path / "async-backing-docker.toml"
    network_file.write_text(toml.replace('provider = "native"', 'provider = "docker"'))
    run_dir = tmp_path / "R"
    proc = asyncback(image, "test", str(ROOT / "examples" / "async-backing.zndsl"),
                     "--network", str(network_file), "--slot-ms", "1000",
                     "--run-dir", str(run_dir), cwd=tmp_path)
    code = proc.wait(timeout=HANG_GUARD_S)
    text = (tmp_path / "out.txt").read_text()
    assert code == 0, text
    results = json.loads((run_dir / "test-results.json").read_text())["results"]
    assert results and all(r["passed"] for r in results), results
    network = network_of(run_dir)
    assert network["provider"] == "docker"
    assert {n["name"] for n in network["nodes"]} >= {"ferdie", "validator-0", "collator-2000"}
    print(text)
    assert_nothing_left(network)


def test_faults_on_containers_through_the_cluster_api(image: str, tmp_path: Path) -> None:
    """pause/resume, kill and restart of a node are its container's: the chain goes on, a node
    the harness stopped is not a crash, and a restarted collator resumes its para."""
    import trio

    from node.cluster import Cluster, default_network
    from relay.core.config import HostConfiguration

    net = default_network(HostConfiguration(slot_ms=1000), validators=4, paras=1)
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with Cluster(net, tmp_path / "R", provider="docker", image=image) as cluster:
            seen["project"] = cluster.provider.network_json()["project"]
            await cluster.wait_para_height(2000, 3)
            dave, collator = cluster["dave"], cluster["collator-2000-0"]
            dave.pause()
            assert dave.alive and dave.paused
            best = await cluster.wait_relay_height(await cluster.best_number() + 3)
            dave.resume()
            dave.kill()
            assert not dave.alive and not dave.crashed and cluster.crashed() == []
            await cluster.wait_relay_height(best + 3)
            await collator.restart()
            assert collator.alive and collator.starts == 2 and cluster.crashed() == []
            height = await cluster.para_height(2000)
            await cluster.wait_para_height(2000, height + 3)
            await dave.restart()
            assert await dave.rpc("system_name") == "dave"

    trio.run(main)
    network = network_of(tmp_path / "R")
    assert network["project"] == seen["project"]
    assert_nothing_left(network)
