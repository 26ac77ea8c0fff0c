"""Waits and assertions on a running network, counted in relay blocks read over JSON-RPC.

Nothing here assumes progress from elapsed time. A wait for relay height N gives up once the
slots still to go plus `slack_slots` have passed since it first read the height (a stalled
chain fails; a chain that is only slow to start does not, as long as it keeps one block per
slot within the slack); a wait for a para height counts the relay blocks that pass (one per para
block, two with sync backing, plus the slack) and gives up after that many. Assertions read the
best chain backwards from its head by parent hash, so a window is one consistent chain even if
the node reorganises while it is read.

Every poll also checks that no node has crashed (exited without the harness stopping it): a wait
on a network with a dead node fails at once with `NodeCrashed`, naming the node and its log, not
after its deadline. Failures are `AssertionError`s (`WaitTimeout`, `NodeCrashed`), so a test
reports them as failures of the network, not errors of the harness.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from node.cluster.handle import NodeBase, last_lines
from node.cluster.http import NodeUnreachable
from node.rpc.errors import RpcError
from relay.core.scheduler import GroupRotationInfo

DEFAULT_SLACK_SLOTS = 30
STARTUP_GRACE_S = 60.0  # before a node answers at all (it may be starting or restarting)
INCLUDED, BACKED, TIMED_OUT = "CandidateIncluded", "CandidateBacked", "CandidateTimedOut"


class WaitTimeout(AssertionError):
    pass


class NodeCrashed(AssertionError):
    def __init__(self, nodes: list[NodeBase]) -> None:
        super().__init__("; ".join(
            f"node {n.name} exited with status {n.returncode} (log {n.log_path})\n"
            f"{last_lines(n.log_path)}" for n in nodes))
        self.nodes = nodes


@dataclass(frozen=True)
class RelayBlock:
    number: int
    hash: str
    parent_hash: str
    events: tuple[dict[str, Any], ...]

    def of(self, kind: str, para_id: int | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events
                if e["type"] == kind and (para_id is None or e["para_id"] == para_id)]


class RelayChainWaits:
    """The waits and assertions of a `Cluster`. Subclasses provide the node to read from by
    default (`observer`), the slot length, the backing mode and the crash check."""

    slot_s: float
    sync_backing: bool
    nodes: dict[str, NodeBase]

    @property
    def observer(self) -> NodeBase:
        raise NotImplementedError

    def crashed(self) -> list[NodeBase]:
        raise NotImplementedError

    def check_crashed(self) -> None:
        dead = self.crashed()
        if dead:
            raise NodeCrashed(dead)

    # -- reads ----------------------------------------------------------------------------------

    async def best_number(self, node: NodeBase | None = None) -> int:
        header = await (node or self.observer).rpc("chain_getHeader")
        return int(header["number"], 16)

    async def finalized_number(self, node: NodeBase | None = None) -> int:
        node = node or self.observer
        header = await node.rpc("chain_getHeader", [await node.rpc("chain_getFinalizedHead")])
        return int(header["number"], 16)

    async def para_height(self, para_id: int, node: NodeBase | None = None) -> int:
        """The number of the para's head included at the best relay block."""
        head = await (node or self.observer).rpc("parachain_getParaHead", [para_id])
        if head is None:
            raise WaitTimeout(f"para {para_id} is not registered on the relay chain")
        return int(head["number"])

    async def best_chain(self, count: int, node: NodeBase | None = None) -> list[RelayBlock]:
        """The last `count` blocks of the best chain (fewer near genesis), oldest first, with
        their `parachain_events`. Walked back by parent hash from one read of the head."""
        node = node or self.observer
        header = await node.rpc("chain_getHeader")
        blocks: list[RelayBlock] = []
        while header is not None and len(blocks) < count and int(header["number"], 16) > 0:
            events = await node.rpc("parachain_events", [header["hash"]]) or []
            blocks.append(RelayBlock(int(header["number"], 16), header["hash"],
                                     header["parentHash"], tuple(events)))
            header = await node.rpc("chain_getHeader", [header["parentHash"]])
        return blocks[::-1]

    async def backing_group(self, para_id: int, node: NodeBase | None = None) -> list[str]:
        """The names of the validators in the group that backs `para_id`'s cores at the next
        relay block (read over RPC: the claim queue, the validator groups and their rotation)."""
        node = node or self.observer
        queue = await node.rpc("parachain_claimQueue")
        answer = await node.rpc("parachain_validatorGroups")
        keys = await node.rpc("parachain_validators")
        groups, info = answer["groups"], answer["groupRotationInfo"]
        rotation = GroupRotationInfo(info["sessionStartBlock"], info["groupRotationFrequency"],
                                     info["now"])
        cores = sorted(int(c) for c, paras in queue.items() if para_id in paras)
        if not cores:
            raise AssertionError(f"para {para_id} has no core in the claim queue")
        names = {"0x" + n.identity.hex(): n.name for n in self.nodes.values()}
        members = sorted({i for core in cores
                          for i in groups[rotation.group_for_core(core, len(groups))]})
        return [names.get(keys[i], keys[i]) for i in members]

    # -- waits ----------------------------------------------------------------------------------

    async def _poll(self, read: Callable[[], Awaitable[int]], target: int, what: str,
                    slack_slots: int) -> int:
        deadline = trio.current_time() + STARTUP_GRACE_S
        first: int | None = None
        last: int | None = None
        while True:
            self.check_crashed()
            with contextlib.suppress(NodeUnreachable, RpcError):
                last = await read()
            if last is not None:
                if last >= target:
                    return last
                if first is None:
                    first = last
                    deadline = trio.current_time() + (target - last + slack_slots) * self.slot_s
            if trio.current_time() > deadline:
                seen = "no answer" if last is None else f"#{last} (from #{first})"
                raise WaitTimeout(f"{what}: wanted #{target}, reached {seen} within "
                                  f"{target - (first or 0) + slack_slots} slots")
            await trio.sleep(self.slot_s / 4)

    async def wait_relay_height(self, n: int, node: NodeBase | None = None, *,
                                slack_slots: int = DEFAULT_SLACK_SLOTS) -> int:
        """Until `node`'s (default: the observer's) best block is at least `n`; returns it."""
        node = node or self.observer
        return await self._poll(lambda: self.best_number(node), n,
                                f"{node.name} best relay block", slack_slots)

    async def wait_finalized_height(self, n: int, node: NodeBase | None = None, *,
                                    slack_slots: int = DEFAULT_SLACK_SLOTS) -> int:
        node = node or self.observer
        return await self._poll(lambda: self.finalized_number(node), n,
                                f"{node.name} finalized relay block", slack_slots)

    async def follow_finality(self, until: int, node: NodeBase | None = None, *,
                              slack_slots: int = DEFAULT_SLACK_SLOTS) -> dict[int, int]:
        """Until `node`'s best block is at least `until`: for each block finalized meanwhile, the
        best number when it was first seen final (the simulator's `finalized_at`). Finality is
        read before the best block, so a lag is never under-counted."""
        node = node or self.observer
        seen: dict[int, int] = {}
        base: list[int] = []  # the finalized number at the first read: counted from there

        async def read() -> int:
            finalized = await self.finalized_number(node)
            best = await self.best_number(node)
            if not base:
                base.append(finalized)
            for n in range(max(seen, default=base[0]) + 1, finalized + 1):
                seen[n] = best
            return best

        await self._poll(read, until, f"{node.name} best relay block", slack_slots)
        return seen

    async def wait_para_height(self, para_id: int, n: int, node: NodeBase | None = None, *,
                               slack_slots: int = DEFAULT_SLACK_SLOTS) -> int:
        """Until the para head included at the best relay block has number `n` or more. Gives
        up once more relay blocks have passed than the para blocks to go should take (one each,
        two with sync backing) plus `slack_slots`."""
        node = node or self.observer
        per_block = 2 if self.sync_backing else 1
        start: tuple[int, int] | None = None  # relay and para height at the first read
        budget = 0
        deadline = trio.current_time() + STARTUP_GRACE_S
        height: int | None = None
        while True:
            self.check_crashed()
            relay: int | None = None
            try:
                height = await self.para_height(para_id, node)
                relay = await self.best_number(node)
            except (NodeUnreachable, RpcError):
                pass
            if height is not None and height >= n:
                return height
            if relay is not None and height is not None and start is None:
                start = relay, height
                budget = (n - height) * per_block + slack_slots
                # A relay chain that stalls outright still ends the wait.
                deadline = trio.current_time() + (budget + slack_slots) * self.slot_s
            passed = relay - start[0] if relay is not None and start is not None else 0
            if passed > budget or trio.current_time() > deadline:
                raise WaitTimeout(f"para {para_id}: wanted height {n}, at {height} "
                                  f"(from {start[1] if start else None}) after {passed} relay "
                                  f"blocks (allowed {budget})")
            await trio.sleep(self.slot_s / 4)

    # -- assertions -----------------------------------------------------------------------------

    async def assert_para_throughput(self, window: int = 15,
                                     expected: Mapping[int, range] | None = None,
                                     node: NodeBase | None = None) -> dict[int, int]:
        """Count `CandidateIncluded` per para over the last `window` relay blocks of the best
        chain and check each count of `expected` (`{para_id: range}`, inclusive of `start`,
        exclusive of `stop` as Python's ranges are). Waits for the chain to be `window` blocks
        long first. Returns the counts of every para seen or expected."""
        expected = expected or {}
        await self.wait_relay_height(window, node)
        blocks = await self.best_chain(window, node)
        counts = {pid: 0 for pid in expected}
        for block in blocks:
            for e in block.of(INCLUDED):
                counts[e["para_id"]] = counts.get(e["para_id"], 0) + 1
        span = f"relay blocks #{blocks[0].number}-#{blocks[-1].number}" if blocks else "no blocks"
        for pid, allowed in expected.items():
            if counts[pid] not in allowed:
                raise AssertionError(
                    f"para {pid}: {counts[pid]} included in the last {window} relay blocks "
                    f"({span}), expected {allowed.start}-{allowed.stop - 1}")
        return counts

    async def assert_finality_lag(self, max_blocks: int, node: NodeBase | None = None) -> int:
        """Best minus finalized number is at most `max_blocks`; returns it. The best block is
        read first, so a block imported between the two reads cannot inflate the lag."""
        self.check_crashed()
        best = await self.best_number(node)
        finalized = await self.finalized_number(node)
        lag = best - finalized
        if lag > max_blocks:
            raise AssertionError(f"finality lags {lag} blocks (best #{best}, finalized "
                                 f"#{finalized}), expected at most {max_blocks}")
        return lag

    async def assert_para_chains_consistent(self, node: NodeBase | None = None
                                            ) -> dict[int, list[int]]:
        """Over the whole best chain: each para's included block numbers are consecutive with
        none twice, and no para number was backed as two different candidates unless the first
        timed out (a collator that built a second block at a number it had already had backed
        would show here). Returns the included numbers per para."""
        node = node or self.observer
        blocks = await self.best_chain(await self.best_number(node), node)
        included: dict[int, list[int]] = {}
        backed: dict[tuple[int, int], str] = {}
        for block in blocks:
            for e in block.events:
                key = (e["para_id"], e["para_number"])
                if e["type"] == INCLUDED:
                    included.setdefault(e["para_id"], []).append(e["para_number"])
                elif e["type"] == TIMED_OUT and backed.get(key) == e["candidate_hash"]:
                    del backed[key]
                elif e["type"] == BACKED:
                    earlier = backed.get(key)
                    if earlier is not None and earlier != e["candidate_hash"]:
                        raise AssertionError(
                            f"para {key[0]} number {key[1]} backed as {earlier[:18]}… and "
                            f"again as {e['candidate_hash'][:18]}… in relay block "
                            f"#{block.number}, the first never timed out")
                    backed[key] = e["candidate_hash"]
        for pid, numbers in included.items():
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                raise AssertionError(f"para {pid}: included numbers do not chain: {numbers}")
        return included
