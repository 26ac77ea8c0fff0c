"""`asyncback testnet` end to end, as a user runs it: real processes at 1 s slots, stopped by
`--relay-blocks`, by SIGINT or SIGTERM (two testnets side by side, started at once from the same
directory), or by SIGKILL (then the kernel's parent-death signal takes the nodes down). Every
check reads what the command leaves in its run directory: network.json (pids), logs,
report.json, timeline.png."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TESTNET = [sys.executable, "-m", "node.cli", "testnet", "--slot-ms", "1000"]
HANG_GUARD_S = 240  # turns a hang into a failure; never a measure of speed


def launch(cwd: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    out = cwd / f"testnet-{time.monotonic_ns()}.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*TESTNET, *args], cwd=cwd, env=env, stdout=out.open("wb"),
                            stderr=subprocess.STDOUT)
    return proc, out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def node_pids(network: dict[str, Any]) -> dict[str, int]:
    return {n["name"]: n["pid"] for n in network["nodes"] if n["pid"] is not None}


def run_dir_of(out: Path) -> Path:
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("run directory: "):
            return Path(line.removeprefix("run directory: "))
    raise AssertionError(f"no run directory printed:\n{out.read_text()}")


def wait_for_block(proc: subprocess.Popen[bytes], out: Path, number: int) -> None:
    """Until the command has printed relay block `number` (one line per block off a TTY)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not any(line.startswith(f"#{number} ") for line in out.read_text().splitlines()):
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.2)


def test_testnet_runs_40_relay_blocks_and_leaves_its_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "R"
    proc, out = launch(tmp_path, "--relay-blocks", "40", "--run-dir", str(run_dir))
    code = proc.wait(timeout=HANG_GUARD_S)
    text = out.read_text()
    assert code == 0, text
    network = json.loads((run_dir / "network.json").read_text())
    names = {n["name"] for n in network["nodes"]}
    assert names == {"alice", "bob", "charlie", "dave", "eve", "ferdie", "collator-2000-0",
                     "collator-2001-0"}
    for n in network["nodes"]:
        # printed at start: role, RPC/WS URL, Prometheus URL and log
        assert any(line.startswith(n["name"]) and n["role"] in line and n["rpc_url"] in line
                   and n["ws_url"] in line and n["prometheus_url"] in line
                   and n["log_path"] in line for line in text.splitlines()), n["name"]
        log = Path(n["log_path"])
        assert log.parent == run_dir.resolve() and log.stat().st_size > 0
    report = json.loads((run_dir / "report.json").read_text())
    assert len(report["relay_blocks"]) == 40
    assert report["config"]["mode"] == "testnet"
    for para in ("2000", "2001"):
        s = report["summary"]["paras"][para]
        assert s["window_min"] >= 14, s
        assert s["txs_included"] > 0
    assert (run_dir / "timeline.png").read_bytes().startswith(b"\x89PNG")
    # sim's summary table, one row per para
    assert "stopped by relay-blocks" in " ".join(text.split())
    assert all(any(line.startswith(f"│ {p} │") for line in text.splitlines()) for p in (2000, 2001))
    assert not [name for name, pid in node_pids(network).items() if alive(pid)]


def test_two_testnets_side_by_side_stop_cleanly_on_sigint_and_sigterm(tmp_path: Path) -> None:
    # Started at once from one directory, without --run-dir: runs/<timestamp> each, no clash.
    first, first_out = launch(tmp_path)
    second, second_out = launch(tmp_path)
    try:
        for proc, out in ((first, first_out), (second, second_out)):
            wait_for_block(proc, out, 2)
        dirs = [run_dir_of(first_out), run_dir_of(second_out)]
        assert dirs[0] != dirs[1] and all(d.parent == tmp_path / "runs" for d in dirs)
        networks = [json.loads((d / "network.json").read_text()) for d in dirs]
        ports = [p for net in networks for n in net["nodes"] for p in n["ports"].values()]
        assert len(ports) == len(set(ports))
        pids = {**{f"1:{k}": v for k, v in node_pids(networks[0]).items()},
                **{f"2:{k}": v for k, v in node_pids(networks[1]).items()}}
        assert all(alive(pid) for pid in pids.values())
        first.send_signal(signal.SIGINT)
        second.send_signal(signal.SIGTERM)
        assert first.wait(timeout=HANG_GUARD_S) == 0, first_out.read_text()
        assert second.wait(timeout=HANG_GUARD_S) == 0, second_out.read_text()
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    assert not [name for name, pid in pids.items() if alive(pid)]
    for d, out in zip(dirs, (first_out, second_out), strict=True):
        assert json.loads((d / "network.json").read_text())["state"] == "stopped"
        assert (d / "report.json").exists(), out.read_text()
    assert "stopped by interrupted" in " ".join(first_out.read_text().split())
    assert "stopped by terminated" in " ".join(second_out.read_text().split())


def test_sigkill_to_testnet_takes_every_node_down_within_5_seconds(tmp_path: Path) -> None:
    proc, out = launch(tmp_path, "--run-dir", str(tmp_path / "R"))
    try:
        wait_for_block(proc, out, 1)
        pids = node_pids(json.loads((tmp_path / "R" / "network.json").read_text()))
        assert len(pids) == 8 and all(alive(p) for p in pids.values())
        proc.kill()
        proc.wait(timeout=HANG_GUARD_S)
        deadline = time.monotonic() + 5.0  # the bound on the parent-death watch
        while any(alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [name for name, pid in pids.items() if alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_node_dying_stops_the_testnet_naming_it_and_its_log(tmp_path: Path) -> None:
    proc, out = launch(tmp_path, "--run-dir", str(tmp_path / "R"))
    try:
        wait_for_block(proc, out, 1)
        network = json.loads((tmp_path / "R" / "network.json").read_text())
        victim = next(n for n in network["nodes"] if n["name"] == "collator-2001-0")
        os.kill(victim["pid"], signal.SIGKILL)
        assert proc.wait(timeout=HANG_GUARD_S) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    text = " ".join(out.read_text().split())
    assert (f"node collator-2001-0 (collator) exited with status -9; its log: "
            f"{victim['log_path']}") in text, text
    assert (tmp_path / "R" / "report.json").exists()
    assert not [n for n, pid in node_pids(network).items() if alive(pid)]
