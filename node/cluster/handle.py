"""A handle on one node process of a `Cluster`: where it listens and logs, its RPC and metrics,
and the faults a test injects (kill, pause/resume, restart).

Lifecycle. `start` spawns `asyncback <role>` (see `process.spawn`) and returns once the node's
log says "node started" with the ports it was given: listeners bound, services running. A node
whose port was taken between the launcher's check and its own bind exits with "cannot listen";
on a first start the handle draws fresh ports and tries again (`PORT_ATTEMPTS` times). `restart`
keeps the ports and base path (peers and attached collators know them): a port another program
took while the node was down is tried again a few times, then fails the restart (`NodeFailed`).

Crashed or deliberately down. A node that exits by itself has crashed (`crashed`); one the test
stopped through this handle (`kill`, `restart`, teardown) has not, even while it is down. Signals
go to the node's process group; `pause`/`resume` are SIGSTOP/SIGCONT, and a paused node is alive
but answers nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from prometheus_client.parser import text_string_to_metric_families

from node.cluster.http import DEFAULT_TIMEOUT_S, get_text, rpc_call
from node.cluster.ports import PortAllocator
from node.cluster.process import signal_group, spawn
from node.cluster.spec import NodeSpec
from proto.keys import Keypair

PORT_NAMES = ("p2p", "rpc", "prometheus")
PORT_ATTEMPTS = 5
POLL_S = 0.05
LOG_TAIL_LINES = 5

Ports = dict[str, int]


class ClusterError(Exception):
    """The launcher could not do what was asked (start a node, find a free port, ...)."""


class NodeFailed(ClusterError):
    def __init__(self, name: str, problem: str, log_path: Path | None = None) -> None:
        tail = last_lines(log_path) if log_path is not None else ""
        where = f" (log {log_path})" if log_path is not None else ""
        super().__init__(f"node {name}: {problem}{where}" + (f"\n{tail}" if tail else ""))
        self.name = name
        self.problem = problem


def last_lines(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-n:])


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition as `{'name{label="value",...}': value}` (the bare name when a
    sample has no labels), labels in the order the node wrote them."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
    return out


class _LogWatch:
    """Reads a log from an offset on, line by line, for the launcher's own markers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self._partial = b""
        self.recent: deque[bytes] = deque(maxlen=LOG_TAIL_LINES)

    def tail(self) -> str:
        """The last lines read, and a last line without its newline yet."""
        self.new_lines()
        lines = [*self.recent, self._partial] if self._partial else list(self.recent)
        return b"\n".join(lines).decode(errors="replace").strip()

    def new_lines(self) -> list[bytes]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        self.recent.extend(lines)
        return lines


def _started_event(line: bytes) -> dict[str, Any] | None:
    if b"node started" not in line:
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("event") == "node started" else None


@dataclass
class NodeBase:
    """What every node of a cluster offers, however it runs (a process here, a container):
    its name and role, its URLs on this machine, RPC and metrics, and the harness's record of
    it (stopped by the harness, paused, how often started). The faults and lifecycle (`alive`,
    `kill`, `pause`, `resume`, `restart`, `stop`) are each provider's."""

    spec: NodeSpec
    host: str
    ports: Ports
    log_path: Path
    # Keyword-only: each provider's own fields follow these positionally.
    stopped_by_harness: bool = field(default=False, kw_only=True)
    paused: bool = field(default=False, kw_only=True)
    starts: int = field(default=0, kw_only=True)
    identity: bytes = field(init=False)  # its p2p public key (derived from its name)

    def __post_init__(self) -> None:
        self.identity = Keypair.from_name(self.spec.name).public

    def starting(self) -> None:
        """Record a (re)start: no longer stopped by the harness, not paused, one more start."""
        self.stopped_by_harness = False
        self.paused = False
        self.starts += 1

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def para_id(self) -> int | None:
        return self.spec.para_id

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.ports['rpc']}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ports['rpc']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.ports['prometheus']}/metrics"

    @property
    def launched(self) -> bool:
        """Started at least once (a process spawned, a container created)."""
        raise NotImplementedError

    @property
    def alive(self) -> bool:
        raise NotImplementedError

    @property
    def crashed(self) -> bool:
        """Exited by itself: launched, not stopped through this handle, and no longer alive."""
        return self.launched and not self.stopped_by_harness and not self.alive

    @property
    def returncode(self) -> int | None:
        raise NotImplementedError

    def kill(self, sig: int = signal.SIGKILL) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        raise NotImplementedError

    async def restart(self, startup_timeout_s: float = 60.0) -> None:
        raise NotImplementedError

    async def stop(self, timeout_s: float = 10.0) -> None:
        raise NotImplementedError

    @property
    def bootnode(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """The node as `network.json` lists it; each provider adds what identifies its process
        or container."""
        return {
            "name": self.name, "role": self.role, "para_id": self.para_id,
            "ports": dict(self.ports), "rpc_url": self.rpc_url, "ws_url": self.ws_url,
            "prometheus_url": self.prometheus_url, "log_path": str(self.log_path),
            "identity": "0x" + self.identity.hex(), "bootnode": self.bootnode, "host": self.host,
        }

    async def rpc(self, method: str, params: Any = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        """JSON-RPC over HTTP. `node.rpc.errors.RpcError` for an error answer,
        `NodeUnreachable` when the node does not answer (down, paused, or too slow)."""
        return await rpc_call(self.host, self.ports["rpc"], method, params, timeout_s)

    async def metrics(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, float]:
        """The node's Prometheus samples (see `parse_metrics`)."""
        return parse_metrics(await get_text(self.host, self.ports["prometheus"], "/metrics",
                                            timeout_s))


@dataclass
class NodeHandle(NodeBase):
    """A node run as a process of this machine (the native provider's)."""

    base_path: Path
    # argv for given ports (the launcher's: chain spec, bootnodes, relay URL ...)
    command: Callable[[Mapping[str, int]], list[str]]
    cwd: Path
    env: dict[str, str]
    allocator: PortAllocator
    on_change: Callable[[], None] = lambda: None  # network.json is rewritten
    # The p2p address peers are told (a fault proxy's: see `faults`); default: `host`.
    public_host: str | None = None
    proc: subprocess.Popen[bytes] | None = None

    # -- what it is -----------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def launched(self) -> bool:
        return self.proc is not None

    @property
    def alive(self) -> bool:
        """Running or paused (reaps the process if it has exited)."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    @property
    def bootnode(self) -> str:
        """This node's p2p address as `--bootnodes` takes it (the one its peers are told)."""
        return f"0x{self.identity.hex()}@{self.public_host or self.host}:{self.ports['p2p']}"

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "pid": self.pid, "base_path": str(self.base_path)}

    # -- faults ---------------------------------------------------------------------------------

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the node's process group; the node counts as stopped by the harness
        (not crashed) if it exits. A paused node is continued after a terminating signal other
        than SIGKILL, or it would hold the signal pending."""
        self.stopped_by_harness = True
        if self.proc is not None and signal_group(self.proc, sig) and self.paused \
                and sig != signal.SIGKILL:
            signal_group(self.proc, signal.SIGCONT)
            self.paused = False

    def pause(self) -> None:
        """SIGSTOP the node's group: alive, silent, its slots and votes missed."""
        if self.proc is not None and signal_group(self.proc, signal.SIGSTOP):
            self.paused = True

    def resume(self) -> None:
        if self.proc is not None and signal_group(self.proc, signal.SIGCONT):
            self.paused = False

    async def restart(self, startup_timeout_s: float = 60.0) -> None:
        """Stop the node if it runs (SIGTERM, then SIGKILL), and start it again on the same base
        path and ports; returns once it has started."""
        await self.stop()
        await self.start(startup_timeout_s, fresh_ports=False)

    # -- lifecycle (the launcher's) -------------------------------------------------------------

    async def start(self, startup_timeout_s: float = 60.0, *, fresh_ports: bool = True) -> None:
        """Spawn and wait for "node started". `fresh_ports`: on "cannot listen", draw new ports
        and try again; otherwise the node keeps its ports and a clash is `NodeFailed`."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            watch = _LogWatch(self.log_path)
            self.proc = spawn(self.command(self.ports), self.log_path, cwd=self.cwd, env=self.env)
            self.starting()
            self.on_change()
            problem = await self._wait_started(watch, startup_timeout_s)
            if problem is None:
                return
            if "cannot listen" not in problem or attempt == PORT_ATTEMPTS:
                raise NodeFailed(self.name, problem, self.log_path)
            if not fresh_ports:
                # Ours while the node was down? Only another program's; wait it out briefly.
                await trio.sleep(0.5)
                continue
            for port in self.ports.values():
                self.allocator.release(port)
            self.ports = {name: self.allocator.allocate() for name in PORT_NAMES}
        raise AssertionError("unreachable")

    async def _wait_started(self, watch: _LogWatch, timeout_s: float) -> str | None:
        """None once the node's log says it started; otherwise what went wrong."""
        assert self.proc is not None
        with trio.move_on_after(timeout_s):
            while True:
                for line in watch.new_lines():
                    event = _started_event(line)
                    if event is None:
                        continue
                    bound = {k: event.get(k) for k in PORT_NAMES}
                    if bound != self.ports:
                        await self.stop()
                        return f"started on ports {bound}, not the ports it was given {self.ports}"
                    return None
                code = self.proc.poll()
                if code is not None:
                    last = watch.tail().splitlines()[-1:] or ["(nothing logged)"]
                    return f"exited with status {code} before it started: {last[0][-300:]}"
                await trio.sleep(POLL_S)
        await self.stop()
        return f"did not start within {timeout_s:.0f} s"

    async def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the group (continuing it if paused), wait `timeout_s`, then SIGKILL; returns
        once the process is reaped. Marks the node as stopped by the harness."""
        self.stopped_by_harness = True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        signal_group(proc, signal.SIGTERM)
        signal_group(proc, signal.SIGCONT)
        self.paused = False
        with trio.move_on_after(timeout_s):
            while proc.poll() is None:
                await trio.sleep(POLL_S)
        if proc.poll() is None:
            signal_group(proc, signal.SIGKILL)
            while proc.poll() is None:
                await trio.sleep(POLL_S)
