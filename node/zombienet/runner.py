"""Runs a parsed `.zndsl` test against a running network: each line in order, assertions polled
until their `within` runs out, with a result per line (pass or fail, the value measured, how
long it took).

Semantics follow zombienet's test runner where it has them: a line naming a node group must hold
on every node of it; `parachain P block height` is the para head the relay chain has included
(on a collator: its own para's included block); `is up` is the node's
`process_start_time_seconds` metric; `restart` kills the node, waits `after` seconds (5 unless
told) and starts it again. One departure, on purpose: a metric that never appeared fails, where
zombienet reads it as 0 for `is 0`; a line never passes on a value it did not see.

Every duration (`within`, `after`, `sleep`) is multiplied by `scale`, so a file written for
6-second slots keeps its meaning on a network with shorter ones.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

from node.zombienet.zndsl import (
    Action,
    Degrade,
    Heal,
    IsUp,
    LogCount,
    LogMatch,
    Metric,
    NodeStep,
    ParaHeight,
    ParaRegistered,
    Partition,
    Reports,
    Sleep,
    Step,
    Timed,
    ZndslError,
    ZndslFile,
)


class NodeHandle(Protocol):
    """What the runner needs of a running node (node/cluster/launcher.py's handles)."""

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    @property
    def alive(self) -> bool: ...

    async def rpc(self, method: str, params: Any = None) -> Any: ...

    async def metrics(self) -> Mapping[str, float]: ...

    def kill(self, sig: int = ...) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    async def restart(self) -> None: ...


class LinkFaults(Protocol):
    """What cuts and impairs the links between nodes (`node.cluster.Cluster` with faults)."""

    def partition(self, *groups: Sequence[str], mode: str = ...) -> None: ...

    def degrade(self, names: Sequence[str], *, latency_ms: float = ..., jitter_ms: float = ...,
                loss: float = ...) -> None: ...

    def heal(self) -> None: ...


@dataclass(frozen=True)
class LineResult:
    line: int
    text: str
    passed: bool | None  # None: not run (after a failure, with fail-fast)
    value: str = ""  # what was measured, per node for a group
    duration_s: float = 0.0
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "passed": self.passed,
                "value": self.value, "duration_s": round(self.duration_s, 3),
                "reason": self.reason}


@dataclass(frozen=True)
class Probe:
    ok: bool
    shown: str


_SERIES = re.compile(r'^([^{\s]+)(?:\{(.*)\})?$')
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_series(key: str) -> tuple[str, dict[str, str]]:
    """`name{a="x",b="y"}` as the name and its labels."""
    m = _SERIES.match(key.strip())
    if m is None:
        return key, {}
    return m.group(1), dict(_LABEL.findall(m.group(2) or ""))


def check_names(test: ZndslFile, nodes: Sequence[str], groups: Mapping[str, Sequence[str]]
                ) -> None:
    """Every node a line names exists in the network (before it is started)."""
    for line, name in test.node_names():
        if name not in nodes and name not in groups:
            raise ZndslError(f"{test.path}:{line}: no node or group {name!r} in the network "
                             f"(nodes: {', '.join(nodes)})")


class LogScanner:
    """Reads a node's log as it grows, counting lines that match a pattern; a log that shrank
    (rewritten) is read again from the start."""

    def __init__(self, path: Path, pattern: re.Pattern[str]) -> None:
        self.path, self.pattern = path, pattern
        self.offset = 0
        self.count = 0
        self.first: str | None = None

    def scan(self) -> None:
        try:
            size = self.path.stat().st_size
            if size < self.offset:
                self.offset, self.count, self.first = 0, 0, None
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written waits for its newline
        for raw in data[:end].splitlines():
            text = raw.decode("utf-8", "replace")
            if self.pattern.search(text):
                self.count += 1
                if self.first is None:
                    self.first = text
        self.offset += end


class ZndslRunner:
    def __init__(self, nodes: Mapping[str, NodeHandle], groups: Mapping[str, Sequence[str]],
                 *, scale: float = 1.0, poll_s: float = 0.25,
                 links: LinkFaults | None = None) -> None:
        self.nodes, self.groups = nodes, groups
        self.scale, self.poll_s = scale, poll_s
        self.links = links

    def resolve(self, name: str) -> list[NodeHandle]:
        if name in self.nodes:  # a node's own name wins over a group of the same name
            return [self.nodes[name]]
        if name in self.groups:
            return [self.nodes[n] for n in self.groups[name]]
        raise ZndslError(f"no node or group {name!r}")

    async def run(self, test: ZndslFile, *, fail_fast: bool = False,
                  on_result: Callable[[LineResult], None] | None = None) -> list[LineResult]:
        results: list[LineResult] = []
        failed = False
        for step in test.steps:
            if failed and fail_fast:
                result = LineResult(step.line, step.text, None, reason="not run")
            else:
                result = await self.run_step(step)
                failed = failed or not result.passed
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    async def run_step(self, step: Step) -> LineResult:
        started = trio.current_time()
        if isinstance(step, Sleep):
            await trio.sleep(step.seconds * self.scale)
            return LineResult(step.line, step.text, True, "",
                              trio.current_time() - started)
        if isinstance(step, (Partition, Degrade, Heal)):
            return self._fault(step, started)
        assert isinstance(step, NodeStep)
        nodes = self.resolve(step.node)
        if isinstance(step, Action):
            return await self._act(step, nodes, started)
        assert isinstance(step, Timed)
        probe = self._probe_for(step)
        return await self._poll(step, nodes, probe, started)

    async def _act(self, step: Action, nodes: list[NodeHandle], started: float) -> LineResult:
        try:
            if step.verb == "restart":
                for node in nodes:
                    node.kill(signal.SIGKILL)
            await trio.sleep(step.after_s * self.scale)
            for node in nodes:
                if step.verb == "restart":
                    await node.restart()
                elif step.verb == "pause":
                    node.pause()
                else:
                    node.resume()
        except Exception as exc:  # the node's own failure, reported on the line
            return LineResult(step.line, step.text, False, "",
                              trio.current_time() - started, f"{step.verb} failed: {exc}")
        return LineResult(step.line, step.text, True, "", trio.current_time() - started)

    def _fault(self, step: Partition | Degrade | Heal, started: float) -> LineResult:
        def result(reason: str = "") -> LineResult:
            return LineResult(step.line, step.text, not reason, "",
                              trio.current_time() - started, reason)

        if self.links is None:
            return result("this network's links cannot be cut (start it with link faults)")
        try:
            if isinstance(step, Heal):
                self.links.heal()
            else:
                names = [n.name for n in self.resolve(step.node)]
                if isinstance(step, Partition):
                    self.links.partition(names, mode=step.mode)
                else:
                    self.links.degrade(names, latency_ms=step.latency_ms,
                                       jitter_ms=step.jitter_ms, loss=step.loss)
        except Exception as exc:  # the cluster's refusal, reported on the line
            return result(f"{type(step).__name__.lower()} failed: {exc}")
        return result()

    async def _poll(self, step: Timed, nodes: list[NodeHandle],
                    probe: Callable[[NodeHandle], Awaitable[Probe]],
                    started: float) -> LineResult:
        deadline = started + step.within_s * self.scale
        while True:
            outcomes = [(node, await self._safe(probe, node)) for node in nodes]
            now = trio.current_time()
            shown = ", ".join(f"{n.name}={p.shown}" for n, p in outcomes) if len(nodes) > 1 \
                else outcomes[0][1].shown
            if all(p.ok for _, p in outcomes):
                return LineResult(step.line, step.text, True, shown, now - started)
            if now >= deadline:
                failing = [n.name for n, p in outcomes if not p.ok]
                return LineResult(step.line, step.text, False, shown, now - started,
                                  f"not met within {step.within_s * self.scale:.3g} s"
                                  + (f" on {', '.join(failing)}" if len(nodes) > 1 else ""))
            await trio.sleep(min(self.poll_s, deadline - now))

    @staticmethod
    async def _safe(probe: Callable[[NodeHandle], Awaitable[Probe]], node: NodeHandle) -> Probe:
        try:
            return await probe(node)
        except Exception as exc:  # a node that does not answer is a failing probe, not a crash
            return Probe(False, f"unreachable ({type(exc).__name__}: {exc})"[:200])

    def _probe_for(self, step: Timed) -> Callable[[NodeHandle], Awaitable[Probe]]:
        if isinstance(step, IsUp):
            return self._is_up
        if isinstance(step, ParaRegistered):
            return lambda node: self._registered(node, step.para_id)
        if isinstance(step, ParaHeight):
            return lambda node: self._para_height(node, step)
        if isinstance(step, Reports):
            return lambda node: self._reports(node, step)
        if isinstance(step, LogMatch | LogCount):
            scanners: dict[str, LogScanner] = {}
            return lambda node: self._log(node, step, scanners)
        raise TypeError(f"no probe for {type(step).__name__}")

    async def _is_up(self, node: NodeHandle) -> Probe:
        if not node.alive:
            return Probe(False, "not running")
        value = _metric_value(await node.metrics(), "process_start_time_seconds", ())
        return Probe(value is not None and value >= 1, "up" if value else "no metrics")

    async def _registered(self, node: NodeHandle, para_id: int) -> Probe:
        if node.role == "collator":
            return Probe(False, "a collator; ask a relay-chain node")
        head = await node.rpc("parachain_getParaHead", [para_id])
        return Probe(head is not None, "registered" if head is not None else "not registered")

    async def _para_height(self, node: NodeHandle, step: ParaHeight) -> Probe:
        height = await para_height(node, step.para_id)
        if height is None:
            return Probe(False, "no head")
        return Probe(step.cmp.holds(height), str(height))

    async def _reports(self, node: NodeHandle, step: Reports) -> Probe:
        series = await node.metrics()
        value = _metric_value(series, step.metric.name, step.metric.labels)
        if value is None:
            return Probe(False, f"{step.metric} missing")
        if step.other is not None:
            other = _metric_value(series, step.other.name, step.other.labels)
            if other is None:
                return Probe(False, f"{step.other} missing")
            value += step.sign * other
        return Probe(step.cmp.holds(value), f"{value:g}")

    async def _log(self, node: NodeHandle, step: LogMatch | LogCount,
                   scanners: dict[str, LogScanner]) -> Probe:
        scanner = scanners.get(node.name)
        if scanner is None:
            scanner = scanners[node.name] = LogScanner(Path(node.log_path), step.pattern)
        scanner.scan()
        if isinstance(step, LogCount):
            return Probe(step.cmp.holds(scanner.count), f"{scanner.count} lines")
        if scanner.first is None:
            return Probe(False, "no matching line")
        return Probe(True, scanner.first[:120])


def _metric_value(series: Mapping[str, float], name: str,
                  labels: tuple[tuple[str, str], ...]) -> float | None:
    wanted = Metric(name, labels)
    for key, value in series.items():
        n, ls = parse_series(key)
        if wanted.matches(n, ls):
            return float(value)
    return None


async def para_height(node: NodeHandle, para_id: int) -> int | None:
    """The para's included height: read from the relay chain's para head on a relay node,
    from the collator's included block on a collator of that para."""
    if node.role != "collator":
        head = await node.rpc("parachain_getParaHead", [para_id])
        return None if head is None else int(head["number"])
    segment = await node.rpc("para_unincludedSegment")
    header = await node.rpc("para_getHeader", [segment["includedHash"]])
    if header is None or int(header.get("paraId", para_id)) != para_id:
        return None
    number = header["number"]
    return int(number, 16) if isinstance(number, str) else int(number)
