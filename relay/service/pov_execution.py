"""Where a validator re-executes a candidate's PoV: off the event loop, under a deadline. Backing
(`backing.py`), approval checks (`approvals.py`) and dispute participation (`disputes.py`) all
re-execute here, sharing one pool of workers.

Re-execution (`relay.core.candidate_validation.validate_collation`: the para's validation function,
then the erasure coding of the PoV) is CPU work of unbounded length as far as the node knows: a
para block may be slow to execute, or hang, whatever its declared weight says. On the event loop
it would stop every peer's reader, the block production and finality of this node meanwhile.

- `ThreadedExecution` (real nodes): the work runs in a worker thread (`trio.to_thread`), at most
  `MAX_EXECUTIONS` at once; the caller waits at most its deadline, queueing for a worker included.
  Past it, `ExecutionTimedOut`: the candidate is not seconded or voted for, and the caller logs it.
  The thread cannot be killed; it is abandoned, keeps its worker slot until it returns, and its
  result is thrown away, so hanging PoVs can hold at most `MAX_EXECUTIONS` threads.
- `InlineExecution` (the simulation, the ideal driver's peers): runs the work at once, on the
  loop. Virtual time does not advance while a thread works, and a thread's finishing time is not
  a function of the seed, so a simulated validator validates inline and stays deterministic; the
  deterministic verdict on slow blocks is the weight check inside the validation function.

The deadline is `DEADLINE_FACTOR` times the host configuration's backing execution timeout
(`HostConfiguration.execution_timeout_ms`, a twelfth of a slot by default): the weight check
already refuses, identically on every validator, a block whose declared work exceeds that timeout,
so the wall-clock deadline only catches execution that runs far past what its weight says (a slow
or hanging PoV), with room for a loaded machine. At 6 s slots that is 2 s. Approval checks and
dispute participation wait `APPROVAL_DEADLINE_FACTOR` times longer (polkadot gives them 12 s against
backing's 2 s): they come after inclusion, where a hasty verdict costs more than a late one. Their
caller treats a timeout as no verdict (no approval, no dispute vote), never as invalid: a machine
that is merely loaded must not dispute, and the other checkers cover a missing approval.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol, TypeVar

import trio

T = TypeVar("T")

MAX_EXECUTIONS = 2
DEADLINE_FACTOR = 4
APPROVAL_DEADLINE_FACTOR = 6


class ExecutionTimedOut(Exception):
    """Re-execution did not finish within its deadline."""


def deadline_s(execution_timeout_ms: int) -> float:
    return DEADLINE_FACTOR * execution_timeout_ms / 1000


def approval_deadline_s(execution_timeout_ms: int) -> float:
    """The deadline of an approval check's or a dispute participation's re-execution."""
    return APPROVAL_DEADLINE_FACTOR * deadline_s(execution_timeout_ms)


class PovExecution(Protocol):
    async def run(self, deadline: float, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)`'s result, or `ExecutionTimedOut` once `deadline` seconds have passed."""
        ...


class InlineExecution:
    """On the event loop, at once (deterministic: see the module docstring)."""

    async def run(self, deadline: float, fn: Callable[..., T], *args: object) -> T:
        del deadline  # nothing else runs meanwhile, so nothing to wait for
        await trio.lowlevel.checkpoint()
        return fn(*args)


class ThreadedExecution:
    """In worker threads, at most `max_workers` at once, each call under its deadline."""

    def __init__(self, max_workers: int = MAX_EXECUTIONS) -> None:
        self.limiter = trio.CapacityLimiter(max_workers)
        self.completed = 0
        self.timed_out = 0

    async def run(self, deadline: float, fn: Callable[..., T], *args: object) -> T:
        with trio.move_on_after(deadline):
            result = await trio.to_thread.run_sync(partial(fn, *args), abandon_on_cancel=True,
                                                   limiter=self.limiter)
            self.completed += 1
            return result
        self.timed_out += 1
        raise ExecutionTimedOut(f"no result within {deadline:.3f} s "
                                f"({self.limiter.borrowed_tokens} worker(s) busy)")
