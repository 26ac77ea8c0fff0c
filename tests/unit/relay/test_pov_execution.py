"""PoV re-execution off the event loop (relay/service/pov_execution.py), with real worker threads:
a re-execution that blocks does not stop the event loop (other tasks keep running meanwhile), its
deadline fires, a blocked worker keeps its slot so hanging PoVs hold a bounded number of threads,
and once it returns the next execution is served. A real candidate re-executes the same inline
and in a thread. Counts events; `SAFETY_S` only stops a hung test."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from relay.service.pov_execution import (
    DEADLINE_FACTOR,
    ExecutionTimedOut,
    InlineExecution,
    ThreadedExecution,
    deadline_s,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collator"))
from para_fixtures import para_genesis, relay_parent

from collator.core.collation import build_collation
from collator.core.para_runtime import Transfer
from relay.core.candidate_validation import validate_collation

SAFETY_S = 30
DEADLINE = 0.3


def blocking(release: threading.Event) -> str:
    release.wait(SAFETY_S)  # a PoV whose execution hangs until the test lets it go
    return "done"


async def test_a_hanging_execution_times_out_while_the_loop_keeps_serving() -> None:
    execution = ThreadedExecution(max_workers=1)
    release = threading.Event()
    ticks = 0

    async def other_work() -> None:  # what the node's other tasks stand for: peers, authoring
        nonlocal ticks
        while True:
            ticks += 1
            await trio.sleep(0.01)

    with trio.fail_after(SAFETY_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_work)
            with pytest.raises(ExecutionTimedOut):
                await execution.run(DEADLINE, blocking, release)
            served_meanwhile = ticks
            assert served_meanwhile > 2  # the loop ran on while the worker was stuck
            # The stuck thread still holds the only worker: the next one waits for it, within its
            # own deadline, and times out too: a hanging PoV cannot take more threads.
            assert execution.limiter.borrowed_tokens == 1
            with pytest.raises(ExecutionTimedOut):
                await execution.run(DEADLINE, str.upper, "next")
            assert execution.timed_out == 2 and execution.completed == 0
            release.set()
            while execution.limiter.borrowed_tokens:
                await trio.sleep(0.01)
            assert await execution.run(DEADLINE, str.upper, "next") == "NEXT"
            assert execution.completed == 1
            nursery.cancel_scope.cancel()


async def test_a_real_candidate_re_executes_alike_inline_and_in_a_thread() -> None:
    entries, header = para_genesis()
    pool: list[Any] = [Transfer(1, 2, 1, i) for i in range(50)]
    col = build_collation(entries, header, relay_parent(1, 1, header.head_data()), pool, 0, None,
                          0, 5, 1 << 20)
    args = (col.receipt.to_plain(), col.pov, col.pvd, 5, 10_000)
    inline = await InlineExecution().run(DEADLINE, validate_collation, *args)
    with trio.fail_after(SAFETY_S):
        threaded = await ThreadedExecution().run(deadline_s(10_000), validate_collation, *args)
    assert inline == threaded and inline[0] == col.receipt


def test_the_deadline_is_a_multiple_of_the_backing_execution_timeout() -> None:
    assert deadline_s(500) == DEADLINE_FACTOR * 0.5
    assert deadline_s(6000 // 12) == 2.0  # 6 s slots


class InfoLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))

    def __getattr__(self, _level: str) -> Any:
        return self.info


async def test_a_validator_whose_re_execution_misses_the_deadline_does_not_back_and_logs_it(
        ) -> None:
    """A real validator (in-memory network, real time) with one worker thread, which a hanging
    PoV holds: a real candidate re-executed next cannot finish within its deadline (4 x a 1 ms
    backing execution timeout, the wait for a worker included), so it is neither returned nor
    stored, and the timeout is logged."""
    import random

    from node import wiring
    from node.devnet import dev_genesis
    from node.net.memory import MemoryNetwork
    from proto.messages import FRAME_MAX
    from relay.core.config import HostConfiguration

    dev = dev_genesis(3, 1, 1, HostConfiguration(backing_execution_timeout_ms=1))
    net = MemoryNetwork(random.Random(1), FRAME_MAX)
    log = InfoLog()
    key = dev.keys[0]
    execution = ThreadedExecution(max_workers=1)
    validator = wiring.validator("alice", key, net.add_host(key.public), dev.relay,
                                 [k.public for k in dev.keys], log=log,
                                 pov_execution=execution)
    per = validator.backing._rp(validator.chain.genesis.hash())
    assert per is not None and deadline_s(per.state.config.execution_timeout_ms) == 0.004
    entries, header = para_genesis()
    pool: list[Any] = [Transfer(1, 2, 1, i) for i in range(50)]
    col = build_collation(entries, header, relay_parent(1, 1, header.head_data()), pool, 0, None,
                          0, 5, 1 << 20)
    release = threading.Event()
    with trio.fail_after(SAFETY_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(execution.run, SAFETY_S, blocking, release)
            while not execution.limiter.borrowed_tokens:
                await trio.sleep(0.01)
            with pytest.raises(ExecutionTimedOut):
                await validator.backing._validate(per, col.receipt.to_plain(), col.pov, col.pvd)
            release.set()
    assert validator.backing.timed_out == 1 and per.collations == {}
    assert [e for e, _ in log.events if e == "candidate validation timed out"] == [
        "candidate validation timed out"]
