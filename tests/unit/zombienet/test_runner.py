"""The .zndsl runner against fake node handles in virtual time: a fake chain whose relay and
para heights grow with trio's clock at a given pace, so a file's lines pass or fail the way
they would against a network that fast."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from node.zombienet.runner import LineResult, LogScanner, ZndslRunner, check_names, parse_series
from node.zombienet.zndsl import ZndslError, parse

FILES = Path(__file__).parent / "files"


@dataclass
class FakeChain:
    """Relay blocks every `slot_s`, a para block every `para_every` relay blocks."""

    slot_s: float = 6.0
    para_every: int = 1
    start: float = field(default_factory=trio.current_time)

    def relay(self) -> int:
        return int((trio.current_time() - self.start) // self.slot_s)

    def para(self) -> int:
        return max(0, self.relay() - 1) // self.para_every


@dataclass
class FakeNode:
    name: str
    chain: FakeChain
    log_path: Path
    role: str = "validator"
    paras: tuple[int, ...] = (2000, 2001)
    lag: int = 0  # blocks this node is behind
    extra_metrics: dict[str, float] = field(default_factory=dict)
    unreachable: bool = False
    alive: bool = True
    calls: list[tuple[str, float]] = field(default_factory=list)

    async def rpc(self, method: str, params: Any = None) -> Any:
        if self.unreachable:
            raise OSError("connection refused")
        if method == "parachain_getParaHead":
            (para_id,) = params
            if para_id not in self.paras:
                return None
            return {"paraId": para_id, "number": max(0, self.chain.para() - self.lag)}
        raise AssertionError(method)

    async def metrics(self) -> Mapping[str, float]:
        if self.unreachable:
            raise OSError("connection refused")
        best = max(0, self.chain.relay() - self.lag)
        return {"substrate_node_roles": 4.0, "process_start_time_seconds": 1.7e9,
                'substrate_block_height{status="best"}': float(best),
                'substrate_block_height{status="finalized"}': float(max(0, best - 2)),
                **self.extra_metrics}

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.calls.append((f"kill {sig}", trio.current_time()))
        self.alive = False

    def pause(self) -> None:
        self.calls.append(("pause", trio.current_time()))

    def resume(self) -> None:
        self.calls.append(("resume", trio.current_time()))

    async def restart(self) -> None:
        self.calls.append(("restart", trio.current_time()))
        self.alive = True


def network(tmp_path: Path, chain: FakeChain, names: list[str], **kw: Any) -> dict[str, Any]:
    return {n: FakeNode(n, chain, tmp_path / f"{n}.log", **kw) for n in names}


def alice_group(tmp_path: Path, chain: FakeChain) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    nodes = network(tmp_path, chain, [f"alice-{i}" for i in range(4)])
    return nodes, {"alice": tuple(nodes)}


def summary(results: list[LineResult]) -> list[tuple[int, bool | None]]:
    return [(r.line, r.passed) for r in results]


async def test_async_file_passes_on_an_async_paced_network(tmp_path: Path,
                                                            autojump_clock: Any) -> None:
    test = parse((FILES / "async-backing.zndsl").read_text(), FILES / "async-backing.zndsl")
    nodes, groups = alice_group(tmp_path, FakeChain(slot_s=6.0, para_every=1))
    results = await ZndslRunner(nodes, groups).run(test)
    assert all(r.passed for r in results), results
    height = results[4]
    # polled until 30 held on every node of the group
    assert height.value == ", ".join(f"alice-{i}=30" for i in range(4))


async def test_async_file_fails_on_a_sync_paced_network(tmp_path: Path,
                                                        autojump_clock: Any) -> None:
    test = parse((FILES / "async-backing.zndsl").read_text(), FILES / "async-backing.zndsl")
    nodes, groups = alice_group(tmp_path, FakeChain(slot_s=6.0, para_every=2))
    results = await ZndslRunner(nodes, groups).run(test)
    assert summary(results)[4:] == [(13, False), (14, False)]
    assert "not met within 240 s" in results[4].reason


@pytest.mark.parametrize(("para_every", "expected"), [(2, True), (1, False)])
async def test_sync_bounds_over_a_fixed_stretch(tmp_path: Path, autojump_clock: Any,
                                                para_every: int, expected: bool) -> None:
    """Lower and upper bounds read after a `sleep`: sync pace passes, async pace exceeds the
    upper bound and fails on that line."""
    test = parse((FILES / "sync-backing.zndsl").read_text(), FILES / "sync-backing.zndsl")
    nodes, groups = alice_group(tmp_path, FakeChain(slot_s=6.0, para_every=para_every))
    results = await ZndslRunner(nodes, groups).run(test)
    assert results[-1].passed is expected
    assert all(r.passed for r in results[:-1])
    if not expected:
        assert results[-1].line == 9 and "lower than 17" in results[-1].text


async def test_scale_shrinks_within_sleep_and_after(tmp_path: Path, autojump_clock: Any) -> None:
    """At 1 s slots (scale 1/6) the sync file passes in a sixth of the time."""
    test = parse((FILES / "sync-backing.zndsl").read_text(), FILES / "sync-backing.zndsl")
    nodes, groups = alice_group(tmp_path, FakeChain(slot_s=1.0, para_every=2))
    start = trio.current_time()
    results = await ZndslRunner(nodes, groups, scale=1 / 6).run(test)
    assert all(r.passed for r in results), results
    assert results[3].duration_s == pytest.approx(20.0)  # sleep 120 s at a sixth
    assert trio.current_time() - start < 60


async def test_a_metric_that_never_appeared_fails_is_zero(tmp_path: Path,
                                                          autojump_clock: Any) -> None:
    text = ("Network: ./n.toml\nalice: reports polkadot_parachain_disputes_total is 0 "
            "within 3 seconds\nalice: reports node_roles is 4\n"
            "alice: reports parachain_disputes_total is 0\n")
    nodes = network(tmp_path, FakeChain(), ["alice"])
    results = await ZndslRunner(nodes, {}).run(parse(text, Path("t.zndsl")))
    assert summary(results) == [(2, False), (3, True), (4, False)]
    assert results[0].value == "polkadot_parachain_disputes_total missing"
    nodes["alice"].extra_metrics["polkadot_parachain_disputes_total"] = 0.0
    results = await ZndslRunner(nodes, {}).run(parse(text, Path("t.zndsl")))
    assert summary(results) == [(2, True), (3, True), (4, True)]  # namespace left out on line 4


async def test_a_group_line_must_hold_on_every_node(tmp_path: Path, autojump_clock: Any) -> None:
    nodes, groups = alice_group(tmp_path, FakeChain(slot_s=1.0))
    nodes["alice-2"].lag = 50
    text = "Network: ./n.toml\nalice: parachain 2000 block height is at least 10 within 20 s\n"
    (result,) = await ZndslRunner(nodes, groups).run(parse(text, Path("t.zndsl")))
    assert result.passed is False and result.reason.endswith("on alice-2")
    assert "alice-2=0" in result.value and "alice-0=19" in result.value
    (single,) = await ZndslRunner(nodes, groups).run(parse(text.replace("alice:", "alice-0:"),
                                                          Path("t.zndsl")))
    assert single.passed


async def test_registration_and_unreachable_nodes(tmp_path: Path, autojump_clock: Any) -> None:
    nodes = network(tmp_path, FakeChain(), ["alice", "bob"])
    nodes["bob"].unreachable = True
    text = ("Network: ./n.toml\nalice: parachain 2001 is registered within 5 seconds\n"
            "alice: parachain 2002 is registered within 5 seconds\n"
            "bob: parachain 2000 is registered within 5 seconds\nbob: is up\n")
    results = await ZndslRunner(nodes, {}).run(parse(text, Path("t.zndsl")))
    assert summary(results) == [(2, True), (3, False), (4, False), (5, False)]
    assert results[2].value.startswith("unreachable (OSError")
    nodes["bob"].unreachable = False
    nodes["bob"].alive = False
    (up,) = await ZndslRunner(nodes, {}).run(parse("Network: ./n.toml\nbob: is up\n", Path("t")))
    assert up.passed is False and up.value == "not running"


async def test_restart_pause_resume_wait_their_scaled_after(tmp_path: Path,
                                                           autojump_clock: Any) -> None:
    nodes, groups = alice_group(tmp_path, FakeChain())
    text = ("Network: ./n.toml\nalice-1: restart after 12 seconds\nalice-1: restart\n"
            "alice: pause\nalice-3: resume after 6 s\n")
    start = trio.current_time()
    results = await ZndslRunner(nodes, groups, scale=0.5).run(parse(text, Path("t.zndsl")))
    assert all(r.passed for r in results)
    calls = [(c, round(t - start, 6)) for c, t in nodes["alice-1"].calls]
    assert calls == [(f"kill {signal.SIGKILL}", 0), ("restart", 6.0),
                     (f"kill {signal.SIGKILL}", 6.0), ("restart", 8.5), ("pause", 8.5)]
    assert [c for c, _ in nodes["alice-0"].calls] == ["pause"]
    assert [(c, round(t - start, 6)) for c, t in nodes["alice-3"].calls] == [
        ("pause", 8.5), ("resume", 11.5)]


async def test_log_lines_as_they_are_written(tmp_path: Path, autojump_clock: Any) -> None:
    nodes = network(tmp_path, FakeChain(), ["alice"])
    log = nodes["alice"].log_path
    log.write_text('{"event": "node started"}\n')
    text = ('Network: ./n.toml\nalice: log line contains "imported #3" within 10 seconds\n'
            'alice: count of log lines matching "imported #\\d+" is 5 within 10 seconds\n'
            'alice: count of log lines containing "panicked" is 0 within 2 seconds\n'
            'alice: log line matches glob "*never*" within 2 seconds\n')

    async def write_log() -> None:
        for i in range(1, 6):
            await trio.sleep(1)
            with log.open("a") as f:
                f.write(f'{{"event": "Imported #{i}"}}\n{{"partial": ')  # a line being written
                f.write('"rest"}\n')

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_log)
        results = await ZndslRunner(nodes, {}).run(parse(text, Path("t.zndsl")))
    assert summary(results) == [(2, True), (3, True), (4, True), (5, False)]
    assert results[0].value == '{"event": "Imported #3"}'
    assert results[1].value == "5 lines"


def test_log_scanner_reads_a_rewritten_log_again(tmp_path: Path) -> None:
    import re

    log = tmp_path / "a.log"
    log.write_text("x\nx\n")
    scanner = LogScanner(log, re.compile("x"))
    scanner.scan()
    assert scanner.count == 2
    log.write_text("x\n")
    scanner.scan()
    assert scanner.count == 1
    scanner.scan()
    assert scanner.count == 1


async def test_fail_fast_leaves_the_rest_unrun(tmp_path: Path, autojump_clock: Any) -> None:
    nodes = network(tmp_path, FakeChain(), ["alice"])
    text = ("Network: ./n.toml\nalice: reports node_roles is 1 within 1 seconds\n"
            "alice: reports node_roles is 4\n")
    seen: list[LineResult] = []
    results = await ZndslRunner(nodes, {}).run(parse(text, Path("t")), fail_fast=True,
                                              on_result=seen.append)
    assert summary(results) == [(2, False), (3, None)] and seen == results
    assert results[0].value == "4"


def test_names_are_checked_before_the_network_starts() -> None:
    test = parse("Network: ./n.toml\nalice: is up\nzed: is up\n", Path("t.zndsl"))
    check_names(parse("Network: ./n.toml\nalice: is up\n", Path("t")), ["bob"], {"alice": ()})
    with pytest.raises(ZndslError, match=r"t.zndsl:3: no node or group 'zed'"):
        check_names(test, ["alice"], {})


def test_series_keys() -> None:
    assert parse_series('substrate_block_height{status="best",chain="x"}') == (
        "substrate_block_height", {"status": "best", "chain": "x"})
    assert parse_series("process_start_time_seconds") == ("process_start_time_seconds", {})


@dataclass
class FakeLinks:
    """Records what the runner asked of the links, as `Cluster(faults=True)` would be asked."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: bool = False

    def partition(self, *groups: Any, mode: str = "hold") -> None:
        if self.refuse:
            raise RuntimeError("no node named zed")
        self.calls.append(("partition", [list(g) for g in groups], mode))

    def degrade(self, names: Any, *, latency_ms: float = 0.0, jitter_ms: float = 0.0,
                loss: float = 0.0) -> None:
        self.calls.append(("degrade", list(names), latency_ms, jitter_ms, loss))

    def heal(self) -> None:
        self.calls.append(("heal",))


async def test_link_fault_lines_drive_the_links(tmp_path: Path, autojump_clock: Any) -> None:
    nodes, groups = alice_group(tmp_path, FakeChain())
    links = FakeLinks()
    text = ("Network: ./n.toml\nalice-1: partition reset\nalice: degrade latency 100 ms loss 2%\n"
            "heal\n")
    results = await ZndslRunner(nodes, groups, links=links).run(parse(text, Path("t")))
    assert summary(results) == [(2, True), (3, True), (4, True)]
    assert links.calls == [("partition", [["alice-1"]], "reset"),
                           ("degrade", list(nodes), 100.0, 0.0, 0.02), ("heal",)]


async def test_link_faults_without_a_faults_network_fail_on_their_line(
        tmp_path: Path, autojump_clock: Any) -> None:
    nodes, groups = alice_group(tmp_path, FakeChain())
    text = "Network: ./n.toml\nalice-1: partition\n"
    (result,) = await ZndslRunner(nodes, groups).run(parse(text, Path("t")))
    assert result.passed is False and "cannot be cut" in result.reason
    (refused,) = await ZndslRunner(nodes, groups, links=FakeLinks(refuse=True)).run(
        parse(text, Path("t")))
    assert refused.passed is False and "partition failed: no node named zed" in refused.reason
