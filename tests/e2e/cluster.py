"""A cluster of real asyncback processes on 127.0.0.1 for end-to-end tests: a chain spec from
`asyncback genesis`, validators, a relay node and collators as subprocesses with their own base
paths, ports and log files, and helpers that wait in relay blocks (read over JSON-RPC), never in
seconds of assumed progress."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ASYNCBACK = [sys.executable, "-m", "node.cli"]
ROOT = Path(__file__).resolve().parents[2]
NAMES = ["alice", "bob", "charlie", "dave", "eve", "ferdie"]
HANDLER_ERRORS = "substrate_sub_libp2p_handler_errors_total"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    name: str
    role: str
    args: list[str]
    log: Path
    p2p: int
    rpc: int
    prometheus: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([*ASYNCBACK, *self.args], cwd=ROOT, env=env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rpc_call(self, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        req = urllib.request.Request(f"http://127.0.0.1:{self.rpc}/", body.encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            doc = json.loads(resp.read())
        if "error" in doc:
            raise RuntimeError(f"{self.name} {method}: {doc['error']}")
        return doc["result"]


@dataclass
class Cluster:
    workdir: Path
    slot_ms: int = 1000
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def spec(self) -> Path:
        return self.workdir / "spec.json"

    def genesis(self, *args: str) -> None:
        out = subprocess.run([*ASYNCBACK, "genesis", "--slot-ms", str(self.slot_ms), *args,
                              "--out", str(self.spec)], cwd=ROOT, capture_output=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.returncode == 0, out.stderr.decode()

    def add(self, name: str, role: str, *extra: str, bootnode: Node | None = None) -> Node:
        p2p, rpc, prom = free_port(), free_port(), free_port()
        args = [role, "--chain", str(self.spec), "--name", name,
                "--base-path", str(self.workdir / "data" / name), "--port", str(p2p),
                "--rpc-port", str(rpc), "--prometheus-port", str(prom), "--log-format", "json",
                *extra]
        if bootnode is not None:
            args += ["--bootnodes", f"127.0.0.1:{bootnode.p2p}"]
        node = Node(name, role, args, self.workdir / f"{name}.log", p2p, rpc, prom)
        self.nodes[name] = node
        node.start()
        return node

    def stop(self) -> None:
        for node in self.nodes.values():
            node.kill(signal.SIGTERM)

    # -- no message ended or upset a node ------------------------------------------------------

    def handler_errors(self) -> dict[str, float]:
        """Per node, messages whose handler failed: the metric of every running node (which must
        be there), plus the error lines of every log (a restarted node's counter starts again;
        its log does not)."""
        out: dict[str, float] = {}
        for name, node in self.nodes.items():
            logged = float(sum(1 for line in node.log.read_text(errors="replace").splitlines()
                               if '"message handler failed"' in line))
            counted = 0.0
            if node.alive():
                url = f"http://127.0.0.1:{node.prometheus}/metrics"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    text = resp.read().decode()
                samples = [line for line in text.splitlines()
                           if line.startswith(HANDLER_ERRORS + "{")]
                assert samples, f"{name}: no {HANDLER_ERRORS} metric"
                counted = sum(float(line.rsplit(" ", 1)[1]) for line in samples)
            out[name] = max(logged, counted)
        return out

    def assert_no_handler_errors(self) -> None:
        errors = {name: n for name, n in self.handler_errors().items() if n}
        assert errors == {}, f"message handlers failed: {errors}"

    # -- waiting, in relay blocks -----------------------------------------------------------

    def best_number(self, node: Node) -> int:
        return int(node.rpc_call("chain_getHeader")["number"], 16)

    def finalized_number(self, node: Node) -> int:
        head = node.rpc_call("chain_getFinalizedHead")
        return int(node.rpc_call("chain_getHeader", [head])["number"], 16)

    def wait_for_block(self, node: Node, number: int, slack_slots: int = 30) -> None:
        """Wait until `node`'s best block reaches `number`; fails after the slots that should
        take plus `slack_slots` more (a stalled chain, not a slow machine, is the failure)."""
        deadline: float | None = None
        while True:
            try:
                best = self.best_number(node)
            except OSError:
                best = -1
            if best >= number:
                return
            if deadline is None and best >= 0:
                deadline = time.monotonic() + (number - best + slack_slots) * self.slot_ms / 1000
            if deadline is None:
                deadline = time.monotonic() + 60  # the node is still starting
            assert time.monotonic() < deadline, f"{node.name} stuck at #{best}, wanted #{number}"
            time.sleep(self.slot_ms / 4000)

    def included_per_para(self, node: Node, first: int, last: int) -> dict[int, list[int]]:
        """Para block numbers included in relay blocks first..last of `node`'s best chain."""
        out: dict[int, list[int]] = {}
        for n in range(first, last + 1):
            h = node.rpc_call("chain_getBlockHash", [n])
            for e in node.rpc_call("parachain_events", [h]):
                if e["type"] == "CandidateIncluded":
                    out.setdefault(e["para_id"], []).append(e["para_number"])
        return out
