"""The .zndsl parser: files in polkadot-sdk's style parse into steps; lines asyncback cannot run
and lines that are not zombienet's are one-line errors naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.zombienet.zndsl import (
    DEFAULT_WITHIN_S,
    Action,
    Comparison,
    Degrade,
    Heal,
    IsUp,
    LogCount,
    LogMatch,
    Metric,
    ParaHeight,
    ParaRegistered,
    Partition,
    Reports,
    Sleep,
    ZndslError,
    parse,
    parse_file,
)

FILES = Path(__file__).parent / "files"
HEAD = "Description: d\nNetwork: ./net.toml\nCreds: config\n"


def one(line: str) -> object:
    (step,) = parse(HEAD + line + "\n", Path("t.zndsl")).steps
    return step


def error(text: str) -> str:
    with pytest.raises(ZndslError) as info:
        parse(text, Path("t.zndsl"))
    assert "\n" not in str(info.value)
    return str(info.value)


def test_async_backing_file() -> None:
    test = parse_file(FILES / "async-backing.zndsl")
    assert test.network == "./async-backing.toml"
    assert test.network_path == (FILES / "async-backing.toml").resolve()
    assert test.creds == "config" and test.description is not None
    kinds = [type(s).__name__ for s in test.steps]
    assert kinds == ["Reports", "ParaRegistered", "ParaRegistered", "Reports", "ParaHeight",
                     "ParaHeight"]
    roles = test.steps[0]
    assert isinstance(roles, Reports) and roles.metric == Metric("node_roles")
    assert roles.cmp == Comparison("==", 4) and roles.within_s == DEFAULT_WITHIN_S
    finalized = test.steps[3]
    assert isinstance(finalized, Reports)
    assert finalized.metric == Metric("substrate_block_height", (("status", "finalized"),))
    assert (finalized.cmp, finalized.within) == (Comparison(">=", 10), 100.0)
    height = test.steps[4]
    assert isinstance(height, ParaHeight)
    assert (height.node, height.para_id, height.cmp, height.within) == (
        "alice", 2000, Comparison(">=", 30), 240.0)
    assert height.line == 13 and height.text.startswith("alice: parachain 2000 block height")


def test_sync_backing_and_elastic_files() -> None:
    sync = parse_file(FILES / "sync-backing.zndsl")
    assert isinstance(sync.steps[3], Sleep) and sync.steps[3].seconds == 120
    upper = sync.steps[-1]
    assert isinstance(upper, ParaHeight) and upper.cmp == Comparison("<", 17)
    elastic = parse_file(FILES / "elastic-scaling.zndsl")
    up = elastic.steps[0]
    assert isinstance(up, IsUp) and up.node == "elastic-validator" and up.within is None
    assert isinstance(elastic.steps[2], IsUp) and elastic.steps[2].within == 20  # "secs"
    lag = elastic.steps[4]
    assert isinstance(lag, Reports)
    assert lag.metric == Metric("block_height", (("status", "best"),))
    assert lag.other == Metric("block_height", (("status", "finalized"),))
    assert (lag.sign, lag.cmp) == (-1, Comparison("<=", 3))
    log = elastic.steps[5]
    assert isinstance(log, LogMatch) and log.pattern.search("a COLLATION built here")
    count = elastic.steps[6]
    assert isinstance(count, LogCount) and count.cmp == Comparison("==", 0)
    assert count.pattern.match("thread 'main' panicked at x")
    assert not count.pattern.match("all fine")


@pytest.mark.parametrize(("words", "op"), [
    ("is", "=="), ("equals", "=="), ("is equal to", "=="), ("==", "=="), ("=", "=="),
    ("!=", "!="), ("is at least", ">="), ("at least", ">="), (">=", ">="),
    ("is at most", "<="), ("<=", "<="), ("is lower than", "<"), ("<", "<"),
    ("is greater than", ">"), ("greater than", ">"), (">", ">"),
])
def test_comparison_spellings(words: str, op: str) -> None:
    step = one(f"alice: reports peers count {words} 3 within 5 s")
    assert isinstance(step, Reports)
    assert step.cmp == Comparison(op, 3)
    assert step.metric == Metric("sub_libp2p_peers_count")


def test_every_line_kind() -> None:
    assert one("bob: is up") == IsUp(4, "bob: is up", "bob", None)
    reg = one("bob: parachain 2001 is registered within 30 seconds")
    assert isinstance(reg, ParaRegistered) and (reg.para_id, reg.within) == (2001, 30)
    assert isinstance(one("bob: parachain 2000 block height equals 5"), ParaHeight)
    assert isinstance(one('bob: log line matches regex "imported #\\d+" within 3 secs'), LogMatch)
    count = one('bob: count of log lines containing "x" is at least 2 within 10 seconds')
    assert isinstance(count, LogCount) and count.cmp == Comparison(">=", 2)
    restart = one("bob: restart after 15 seconds")
    assert isinstance(restart, Action) and (restart.verb, restart.after_s) == ("restart", 15)
    assert isinstance(one("bob: restart"), Action) and one("bob: restart").after_s == 5  # type: ignore[attr-defined]
    pause = one("bob: pause")
    assert isinstance(pause, Action) and pause.after_s == 0
    assert isinstance(one("bob: resume after 2 s"), Action)
    assert one("sleep 12 seconds") == Sleep(4, "sleep 12 seconds", 12.0)
    calc = one("bob: reports block height plus finalised height > 3")
    assert isinstance(calc, Reports) and calc.sign == 1 and calc.other is not None
    # comments and blank lines are skipped; line numbers count them
    test = parse(HEAD + "\n# a comment\n// another\nbob: is up\n", Path("t"))
    assert test.steps[0].line == 7


@pytest.mark.parametrize(("line", "why"), [
    ('alice: js-script ./register.js with "2000,1" return is 0 within 600 seconds', "js-script"),
    ("alice: ts-script ./x.ts return is 0 within 60 seconds", "ts-script"),
    ("alice: run ./script.sh within 200 seconds", "shell scripts"),
    ('alice: system event contains "paras.CandidateIncluded" within 10 seconds', "system events"),
    ("alice: trace with traceID 94c1501a78a0d83c498cc92deec264d9 contains [\"a\"]", "Jaeger"),
    ('alice: reports histogram polkadot_pvf_execution_time has at least 2 samples in buckets '
     '["0.1"] within 10 seconds', "histogram"),
    ("alice: parachain 100 perform upgrade with ./wasm within 200 seconds", "runtime upgrades"),
    ("alice: parachain 100 perform dummy upgrade within 200 seconds", "runtime upgrades"),
])
def test_unsupported_lines_fail_with_their_number_and_why(line: str, why: str) -> None:
    message = error(HEAD + "\nalice: is up\n" + line + "\n")
    assert message.startswith("t.zndsl:6: unsupported: ")
    assert why in message and message.endswith(line)


@pytest.mark.parametrize(("text", "expected"), [
    (HEAD + "alice: flies within 3 seconds\n", "t.zndsl:4: not an assertion asyncback knows"),
    (HEAD + "hello world\n", "t.zndsl:4: not a zombienet test line"),
    (HEAD + "alice: parachain 2000 block height is about 5\n", "t.zndsl:4:"),
    (HEAD + 'alice: log line matches "(unclosed" within 3 seconds\n',
     "t.zndsl:4: bad regular expression"),
    ("Description: d\nalice: is up\n", "t.zndsl: no Network header"),
    ("Network: net.toml\n", "t.zndsl:1: Network needs a file path"),
    (HEAD + "Network: ./other.toml\n", "t.zndsl:4: a second Network header (the first is on line 2)"),
    (HEAD + 'alice: reports x{a=b} is 1\n', "t.zndsl:4:"),
])
def test_bad_lines_are_one_line_errors(text: str, expected: str) -> None:
    assert error(text).startswith(expected)


def test_missing_test_file(tmp_path: Path) -> None:
    with pytest.raises(ZndslError, match="no such test file"):
        parse_file(tmp_path / "nope.zndsl")


def test_metric_matching_follows_zombienet() -> None:
    roles = Metric.parse("node_roles")
    assert roles.matches("substrate_node_roles", {})  # the namespace may be left out
    assert roles.matches("node_roles", {})
    assert not roles.matches("substrate_x_node_roles", {})  # only one namespace word
    assert not roles.matches("substrate_node_roles", {"role": "x"})  # labels match exactly
    finalized = Metric.parse('substrate_block_height{status="finalized"}')
    assert finalized.matches("substrate_block_height", {"status": "finalized"})
    assert finalized.matches("substrate_block_height", {"status": "finalized", "chain": "rococo"})
    assert not finalized.matches("substrate_block_height", {"status": "best"})
    assert not finalized.matches("substrate_block_height", {})
    assert Metric.parse('m{b="2", a="1"}') == Metric("m", (("a", "1"), ("b", "2")))
    assert str(finalized) == 'substrate_block_height{status="finalized"}'


def test_link_fault_lines() -> None:
    text = HEAD + ("alice: partition\nbob: partition reset\n"
                   "validator: degrade latency 200 ms jitter 50 ms loss 5%\n"
                   "charlie: degrade loss 10%\nheal\nalice: is up\n")
    test = parse(text, Path("t.zndsl"))
    assert test.steps[:5] == (
        Partition(4, "alice: partition", "alice", "hold"),
        Partition(5, "bob: partition reset", "bob", "reset"),
        Degrade(6, "validator: degrade latency 200 ms jitter 50 ms loss 5%", "validator",
                200.0, 50.0, 0.05),
        Degrade(7, "charlie: degrade loss 10%", "charlie", 0.0, 0.0, 0.1),
        Heal(8, "heal"),
    )
    assert test.needs_link_faults
    assert not parse(HEAD + "alice: is up\n", Path("t.zndsl")).needs_link_faults


@pytest.mark.parametrize(("line", "expected"), [
    ("alice: degrade", "degrade needs a latency, a jitter or a loss"),
    ("alice: degrade loss 100%", "loss must be below 100%"),
    ("alice: partition forever", "not an assertion asyncback knows"),
])
def test_bad_link_fault_lines(line: str, expected: str) -> None:
    with pytest.raises(ZndslError, match=expected):
        parse(HEAD + line + "\n", Path("t.zndsl"))
