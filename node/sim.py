"""A whole testnet in one process: validator, relay-node and collator services over the in-memory
network, in virtual time (`trio.testing.MockClock`), deterministic from a seed.

The services are the same code that runs over TCP; what differs is the `Host`, the clock and the
store (in memory, and only for a node restarted with `keep_state`: otherwise a restarted relay
node or validator starts empty and syncs from its peers, a restarted collator keeps its para
chain in memory). Faults are injected in the network (latency,
jitter, loss, a partition) or by killing and restarting a node when the observed chain reaches a
given relay block. The run's record is the best chain of the observer (the relay full node the
collators attach to), checked against the invariants.
"""

from __future__ import annotations

import gc
import os
import random
import signal
import socket
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import trio

from collator.core.collator_chain import CollatorChain
from collator.service import CollatorService, LoadConfig
from node import wiring
from node.devnet import DevGenesis, dev_genesis
from node.invariants import check_invariants
from node.net.bridge import Bridge, PeerProcessFailed, keep_in_step, lockstep_figures
from node.net.memory import (
    DELIVERY_TICK_S,
    LinkProfile,
    MemoryNetwork,
    seed_trio_scheduler,
    virtual_clock,
)
from node.records import block_record
from node.report import BlockRecord
from node.run_config import RunConfig
from node.storage import NodeStore
from proto.keys import SIGNATURE_CHECKS, Keypair, dev_name
from proto.messages import FRAME_MAX, Protocol
from proto.relay_block import RelayHeader
from proto.shared_work import SharedWork, sharing
from relay.core.config import ConfigError
from relay.core.events import DisputeResult
from relay.service.full_node import RelayNodeService
from relay.service.malus import MALUS_MODES
from relay.service.validator import ValidatorService

OBSERVER = "relay-0"
POLLS_PER_SLOT = 4  # as often as asyncback testnet polls its nodes
STALL_SLOTS_PER_BLOCK = 4


@dataclass(frozen=True)
class NodeFault:
    """Kill `node` when the observed best block reaches `at_block`; restart it (same identity) at
    `restart_at` if given: with empty state, or with what it had stored (`keep_state`, a relay
    node or validator). `at_block` 0 is a node that is not there from the start and joins, with
    empty state, at `restart_at`."""

    node: str
    at_block: int
    restart_at: int | None = None
    keep_state: bool = False


@dataclass(frozen=True)
class CatchUp:
    """A node (re)started behind the chain, and when it had caught up (None: never did)."""

    node: str
    started_at: int  # the observed best block when it started
    behind: int  # how many blocks its best was below that
    # The observed best block when its best reached it: checked at each new observed block and
    # at each poll, so a node that holds the chain's head is not counted behind for the few
    # milliseconds a new block reaches the observer before it.
    caught_up_at: int | None = None


@dataclass(frozen=True)
class PartitionFault:
    """Cut `nodes` off from everyone else from `at_block` until `heal_at`."""

    nodes: tuple[str, ...]
    at_block: int
    heal_at: int


@dataclass(frozen=True)
class SimConfig(RunConfig):
    """A run's shape plus the simulated network: its seed, link profile and faults."""

    seed: int = 0
    latency_ms: float = 50.0
    jitter_ms: float = 20.0
    loss: float = 0.0
    faults: Sequence[NodeFault] = ()
    partitions: Sequence[PartitionFault] = ()
    # Compute pure work (signature checks, collation validation, relay block import) once for
    # all the simulated nodes (`proto.shared_work`). Changes wall time only, never the run: it is
    # not part of the report's configuration.
    sharing: bool = True
    # (validator name, malus mode): relay/service/malus.py; "no-show" makes an approval no-show.
    malus: Sequence[tuple[str, str]] = ()
    # 2: every other validator runs in a second process, in step with this one (`node/net/
    # bridge.py`): twice the cores for a large network. A link across processes takes two trips
    # to open rather than one, and a fault of a node of the second process is applied at the
    # next window's end (under a link's latency later); otherwise the rules are the same.
    processes: int = 1

    def to_json(self, mode: str = "sim") -> dict[str, Any]:
        return {
            **super().to_json(mode), "seed": self.seed,
            "latency_ms": self.latency_ms, "jitter_ms": self.jitter_ms, "loss": self.loss,
            "faults": [vars(f) for f in self.faults],
            "partitions": [{"nodes": list(p.nodes), "at_block": p.at_block, "heal_at": p.heal_at}
                           for p in self.partitions],
            "malus": [f"{name}:{mode}" for name, mode in self.malus],
            "processes": self.processes,
        }


@dataclass
class SimResult:
    records: list[BlockRecord]
    problems: list[str]
    para_ids: list[int]
    virtual_seconds: float
    nodes: dict[str, dict[str, Any]]  # per node: role and counters worth reporting
    segment_lengths: dict[int, list[int]]  # candidates pending availability, per relay block
    collator_segment_lengths: dict[int, list[int]]  # collators' unincluded segments, likewise
    # Per node, messages whose handler raised (every incarnation of a restarted node); any is
    # also a problem: no message may make a handler fail.
    handler_errors: dict[str, int] = field(default_factory=dict)
    catch_ups: list[CatchUp] = field(default_factory=list)
    # Per validator, the hashes of the blocks its last incarnation authored.
    authored: dict[str, list[bytes]] = field(default_factory=dict)
    # Every relay node's finalized block at the end: (number, hash).
    finalized: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    # The in-memory network's counters (frames and bytes sent, delivered, lost, ...).
    network: dict[str, int] = field(default_factory=dict)
    # Per kind of shared pure work: results computed and reused (empty without sharing; in a
    # run over several processes, process 0's).
    shared_work: dict[str, dict[str, int]] = field(default_factory=dict)
    # Frames and payload bytes every node sent, by "lane/what" (a topic, message type, kind).
    traffic: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Gossip messages sent per topic, alone or in batches (traffic counts frames).
    gossip_messages: dict[str, int] = field(default_factory=dict)
    # A run over several processes: windows, each process's CPU seconds in them, and the wall
    # seconds the run needs on that many idle cores (`node.net.bridge.lockstep_figures`).
    split: dict[str, float] = field(default_factory=dict)


PollHook = Callable[["Simulation"], Awaitable[None]]


class Simulation:
    def __init__(self, cfg: SimConfig, on_poll: PollHook | None = None, *, process: int = 0,
                 bridge: Bridge | None = None) -> None:
        """`on_poll` is awaited at each of the run's polls (`POLLS_PER_SLOT` a slot, in virtual
        time, and once at the end, each before the run's own look), e.g. to read the nodes
        over their RPC methods as `asyncback testnet` does. `process`: which of the run's
        processes this is (`cfg.processes`), linked to the other by `bridge`; process 0 holds
        the observer and the collators, and `services` only this process's nodes."""
        self.cfg = cfg
        self.on_poll = on_poll
        self.process = process
        self.bridge = bridge
        if cfg.processes not in (1, 2):
            raise ConfigError(f"processes must be 1 or 2, not {cfg.processes}")
        # The bridge's window: shorter than the shortest latency by a delivery tick, so what one
        # process sends during a window is due after the window's end, when the other has it
        # (node/net/bridge.py). Checked here, before a second process is forked.
        self._window_s = cfg.latency_ms / 1000 - DELIVERY_TICK_S
        if cfg.processes > 1 and self._window_s < DELIVERY_TICK_S:
            raise ConfigError(f"processes = {cfg.processes} needs a link latency of at least "
                              f"{2 * DELIVERY_TICK_S * 1000:.0f} ms")
        self.dev: DevGenesis = dev_genesis(cfg.validators, cfg.paras, cfg.cores_per_para,
                                           cfg.host)
        self.network: MemoryNetwork | None = None
        self.validator_names = [dev_name(i) for i in range(len(self.dev.keys))]
        self._process_of = {name: _process_of_validator(i, cfg.processes)
                            for i, name in enumerate(self.validator_names)}
        self.keys: dict[str, Keypair] = dict(zip(self.validator_names, self.dev.keys, strict=True))
        self.keys[OBSERVER] = Keypair.from_name(OBSERVER)
        for pid in self.dev.paras:
            for k in range(cfg.collators_per_para):
                self.keys[f"collator-{pid}-{k}"] = Keypair.from_name(f"collator-{pid}-{k}")
        for f in cfg.faults:
            if f.node not in self.keys:
                raise ConfigError(f"fault names unknown node {f.node!r} (nodes: "
                                  f"{', '.join(self.keys)})")
            if f.restart_at is not None and f.restart_at <= f.at_block:
                raise ConfigError(f"{f.node}: restart block must follow the kill block")
            if f.at_block == 0 and f.restart_at is None:
                raise ConfigError(f"{f.node}: a node absent from the start needs a join block")
            if f.keep_state and f.node.startswith("collator"):
                raise ConfigError(f"{f.node}: keep_state is for relay nodes and validators")
        for p in cfg.partitions:
            unknown = [n for n in p.nodes if n not in self.keys]
            if unknown:
                raise ConfigError(f"partition names unknown node(s) {', '.join(unknown)}")
            if p.heal_at <= p.at_block:
                raise ConfigError("a partition must heal after it starts")
        self.malus = dict(cfg.malus)
        for name, mode in self.malus.items():
            if name not in self.validator_names:
                raise ConfigError(f"malus names {name!r}, not a validator (validators: "
                                  f"{', '.join(self.validator_names)})")
            if mode not in MALUS_MODES:
                raise ConfigError(f"{name}: unknown malus mode {mode!r} (modes: "
                                  f"{', '.join(MALUS_MODES)})")
        self.relay_peers = [k.public for n, k in self.keys.items() if not n.startswith("collator")]
        self.services: dict[str, Any] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self.tx_counts: dict[bytes, int] = {}
        self.handler_errors: dict[str, int] = {}  # of killed incarnations
        # Frames and bytes sent by killed incarnations, then by all: (lane, what) -> count.
        self._traffic_frames: Counter[tuple[int, str]] = Counter()
        self._traffic_bytes: Counter[tuple[int, str]] = Counter()
        self._traffic_counted: set[int] = set()
        self._gossip_messages: Counter[str] = Counter()
        # In-memory stores of the nodes restarted with their state, kept across incarnations.
        self._stores: dict[str, NodeStore] = {f.node: NodeStore(":memory:")
                                              for f in cfg.faults if f.keep_state}
        self._catching_up: dict[str, CatchUp] = {}
        # Process 0's word to the others, sent at the next window's end: faults to apply to
        # their nodes and the observed best block (what their restarted nodes catch up to).
        self._controls: list[tuple[Any, ...]] = []
        self._nursery: trio.Nursery | None = None
        self.catch_ups: list[CatchUp] = []
        self.segment_lengths: dict[int, list[int]] = {}
        self._heads: trio.MemoryReceiveChannel[RelayHeader] | None = None
        self._followed = 0
        self._para_chains: dict[str, CollatorChain] = {}
        self.epoch = 0.0
        self._finalized_at: dict[int, int] = {}  # block number -> best number when finalized
        self._finalized_seen = 0
        self._polled_best = 0
        self._collator_segments: dict[int, list[int]] = {p: [] for p in self.dev.paras}

    # -- nodes ----------------------------------------------------------------------------------

    def _make(self, name: str) -> Any:
        assert self.network is not None
        key = self.keys[name]
        host = self.network.add_host(key.public)
        store = self._stores.get(name)
        if name in self.validator_names:
            return wiring.validator(name, key, host, self.dev.relay, self.relay_peers,
                                    epoch=self.epoch, store=store, malus=self.malus.get(name))
        if name == OBSERVER:
            return wiring.relay_node(name, host, self.dev.relay, self.relay_peers, store=store)
        _, pid_s, index_s = name.split("-")
        pid = int(pid_s)
        load = LoadConfig(self.cfg.saturate, self.cfg.tx_rate)
        peers = [self.keys[f"collator-{pid}-{k}"].public
                 for k in range(self.cfg.collators_per_para)]
        # A restarted collator reopens its chain store (what issue 4 keeps on disk).
        chain = self._para_chains.setdefault(name, self.dev.paras[pid].new_chain())
        return wiring.collator(name, key, pid, host, chain,
                               self.services[OBSERVER], self.cfg.host.slot_ms, load=load,
                               blocks_per_relay_parent=self.cfg.blocks_per_relay_parent,
                               para_peers=peers, author_index=int(index_s))

    async def _start(self, nursery: trio.Nursery, name: str) -> None:
        service = self.services[name] = self._make(name)
        scope = trio.CancelScope()
        self._scopes[name] = scope

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await service.run(task_status=task_status)

        await nursery.start(run)

    def _kill(self, name: str) -> None:
        assert self.network is not None
        if name not in self.services:
            return
        self._scopes[name].cancel()
        service = self.services[name]
        if isinstance(service, CollatorService):
            self.tx_counts.update(service.stats.tx_counts)
        self.handler_errors[name] = self.handler_errors.get(name, 0) + service.net.handler_errors
        self._count_traffic(service)
        self.network.kill(self.keys[name].public)

    # -- run ------------------------------------------------------------------------------------

    async def main(self) -> SimResult:
        cfg = self.cfg
        async with trio.open_nursery() as nursery:
            await self.boot(nursery)
            if self.bridge is not None:
                assert self.network is not None
                nursery.start_soon(keep_in_step, self.network, self.bridge, self._window_s,
                                   self)
            nursery.start_soon(self._poll_periodically)
            # A chain that stops (more than a third of the validators gone) must end the run,
            # not spin virtual time forever: four slots per block is far beyond any healthy run.
            with trio.move_on_after(STALL_SLOTS_PER_BLOCK * cfg.relay_blocks
                                    * cfg.host.slot_ms / 1000) as deadline:
                await self.follow(nursery, cfg.relay_blocks)
            await self._poll()
            nursery.cancel_scope.cancel()
        # The other process's part, once it has stopped at its next window.
        result = self._result([self.bridge.stop()] if self.bridge is not None else [])
        if deadline.cancelled_caught:
            result.problems.append(f"stalled: the observed chain reached #{self._followed} of "
                                   f"#{cfg.relay_blocks} in {deadline.deadline - self.epoch:.0f} "
                                   f"virtual seconds")
        return result

    async def boot(self, nursery: trio.Nursery) -> None:
        """Start the network and every node that is there from the start, in `nursery`."""
        cfg = self.cfg
        self._nursery = nursery
        profile = LinkProfile(latency_s=cfg.latency_ms / 1000, jitter_s=cfg.jitter_ms / 1000,
                              loss=cfg.loss)
        self.network = MemoryNetwork(random.Random(cfg.seed), FRAME_MAX, default=profile,
                                     record_trace=False)
        self.segment_lengths = {p: [] for p in self.dev.paras}
        await nursery.start(self.network.run)
        self.epoch = trio.current_time()
        names = [n for n in self.keys if not n.startswith("collator")] + \
                [n for n in self.keys if n.startswith("collator")]
        self.network.set_remote({self.keys[n].public for n in names if not self.is_local(n)})
        absent = {f.node for f in cfg.faults if f.at_block == 0}
        for name in names:
            if name not in absent and self.is_local(name):
                await self._start(nursery, name)
        if OBSERVER in self.services:
            self._heads = self.services[OBSERVER].watch_heads(buffer=1024)

    def is_local(self, name: str) -> bool:
        """Whether node `name` runs in this process."""
        return self._process_of.get(name, 0) == self.process

    async def worker_main(self) -> dict[str, Any]:
        """A process other than 0: its nodes, in step with process 0 until it ends the run;
        this process's part of the result."""
        assert self.bridge is not None
        async with trio.open_nursery() as nursery:
            await self.boot(nursery)
            assert self.network is not None
            await keep_in_step(self.network, self.bridge, self._window_s, self)
            nursery.cancel_scope.cancel()
        return self._local_part()

    async def follow(self, nursery: trio.Nursery, until: int) -> None:
        """Follow the observer's new best blocks until #`until`, applying the faults due."""
        observer: RelayNodeService = self.services[OBSERVER]
        assert self._heads is not None, "boot first"
        async for header in self._heads:
            for n in range(self._followed + 1, header.number + 1):
                await self._apply_faults(nursery, n)
            self._followed = max(self._followed, header.number)
            self._note_catch_ups(header.number)
            state = observer.chain.state(header.hash())
            if state is not None:
                for pid, lengths in self.segment_lengths.items():
                    lengths.append(len(state.inclusion.pending.get(pid, [])))
            if header.number >= until:
                return

    def observed(self) -> tuple[int, int]:
        """The observer's best and finalized block numbers now (0, 0 before it is up)."""
        observer = self.services.get(OBSERVER)
        if not isinstance(observer, RelayNodeService):
            return 0, 0
        return observer.chain.best.number, observer.chain.finalized.number

    async def _poll_periodically(self) -> None:
        while True:
            await trio.sleep(self.cfg.host.slot_ms / 1000 / POLLS_PER_SLOT)
            await self._poll()

    async def _poll(self) -> None:
        """What `asyncback testnet` does at each poll of its nodes, so that what happens
        between blocks is counted alike in both: finality (which moves on votes, between
        blocks) noted with the best number at the time (`finalized_at`), and, once per new
        best block, the collators' unincluded segments."""
        if self.on_poll is not None:
            await self.on_poll(self)
        best, finalized = self.observed()
        self._note_catch_ups(best)
        for n in range(self._finalized_seen + 1, finalized + 1):
            self._finalized_at[n] = best
        self._finalized_seen = max(self._finalized_seen, finalized)
        if best > self._polled_best:
            self._polled_best = best
            for pid, lengths in self._collator_segments.items():
                lengths.append(self._collator_segment(pid))

    def _collator_segment(self, para_id: int) -> int:
        """The longest unincluded segment among the para's running collators (they sync each
        other's blocks, so they mostly agree)."""
        lengths = [len(s.chain.unincluded_segment()) for name, s in self.services.items()
                   if isinstance(s, CollatorService) and s.para_id == para_id
                   and not self._scopes[name].cancel_called]
        return max(lengths, default=0)

    async def _apply_faults(self, nursery: trio.Nursery, number: int) -> None:
        """The faults due at observed block `number`; those of another process's nodes go to it
        at the next window's end (under a link's latency later, in virtual time)."""
        assert self.network is not None
        for f in self.cfg.faults:
            if f.at_block == number:
                if self.is_local(f.node):
                    self._kill(f.node)
                else:
                    self._controls.append(("kill", f.node))
            if f.restart_at == number:
                if self.is_local(f.node):
                    await self._restart(nursery, f.node, number)
                else:
                    self._controls.append(("restart", f.node, number))
        for p in self.cfg.partitions:
            if p.at_block == number:
                self._partition(p.nodes)
                self._controls.append(("partition", p.nodes))
            if p.heal_at == number:
                self.network.heal()
                self._controls.append(("heal",))

    async def _restart(self, nursery: trio.Nursery, name: str, number: int) -> None:
        await self._start(nursery, name)
        service = self.services[name]
        if isinstance(service, RelayNodeService):
            self._catching_up[name] = CatchUp(name, number, number - service.chain.best.number)

    def _partition(self, nodes: Sequence[str]) -> None:
        assert self.network is not None
        cut = {self.keys[n].public for n in nodes}
        self.network.partition(cut, set(k.public for k in self.keys.values()) - cut)

    # -- the other processes' side of the controls (node/net/bridge.py `keep_in_step`) --------

    def controls_out(self) -> list[tuple[Any, ...]]:
        """What process 0 tells the others at this window's end."""
        if self.process != 0:
            return []
        out, self._controls = [*self._controls, ("observed", self.observed()[0])], []
        return out

    def controls_in(self, controls: list[tuple[Any, ...]]) -> None:
        """Process 0's word, at a window's end: faults of this process's nodes, partitions."""
        assert self.network is not None and self._nursery is not None
        for control in controls:
            match control:
                case ("kill", name):
                    self._kill(name)
                case ("restart", name, number):
                    self._nursery.start_soon(self._restart, self._nursery, name, number)
                case ("partition", nodes):
                    self._partition(nodes)
                case ("heal",):
                    self.network.heal()
                case ("observed", best):
                    self._note_catch_ups(best)
                case _:
                    raise RuntimeError(f"unknown control from process 0: {control!r}")

    def _note_catch_ups(self, observed: int) -> None:
        for name, pending in list(self._catching_up.items()):
            if self.services[name].chain.best.number >= observed:
                self.catch_ups.append(replace(pending, caught_up_at=observed))
                del self._catching_up[name]

    def _count_traffic(self, service: Any) -> None:
        if id(service) in self._traffic_counted:  # killed and not restarted: counted already
            return
        self._traffic_counted.add(id(service))
        peers = service.net.peers
        for key, frames in peers.sent_frames.items():
            self._traffic_frames[key] += frames
            self._traffic_bytes[key] += peers.sent_bytes[key]
        self._gossip_messages.update(service.net.gossip.sent_messages)

    def _count_running_traffic(self) -> None:
        for s in self.services.values():
            self._count_traffic(s)

    def _local_part(self) -> dict[str, Any]:
        """What this process's nodes contribute to the run's result (picklable: the other
        process of a split run sends it to process 0)."""
        for s in self.services.values():
            if isinstance(s, CollatorService):
                self.tx_counts.update(s.stats.tx_counts)
        validators = [s for s in self.services.values() if isinstance(s, ValidatorService)]
        handler_errors = {name: self.handler_errors.get(name, 0) + s.net.handler_errors
                          for name, s in self.services.items()}
        self._count_running_traffic()
        return {
            "concluded_invalid": {"0x" + h.hex() for s in validators
                                  for h, r in s.disputes.concluded.items()
                                  if r is DisputeResult.INVALID},
            "approved": {("0x" + b.hex(), "0x" + c.hex()) for s in validators
                         for b, c in s.approvals.approved},
            "problems": [p for s in self.services.values() if isinstance(s, CollatorService)
                         for p in s.stats.problems],
            "handler_errors": handler_errors,
            "nodes": {name: _node_info(s) for name, s in self.services.items()},
            "authored": {name: list(s.authored_blocks) for name, s in self.services.items()
                         if isinstance(s, ValidatorService)},
            "finalized": {name: (s.chain.finalized.number, s.chain.finalized.hash())
                          for name, s in self.services.items()
                          if isinstance(s, RelayNodeService)},
            "network": vars(self.network.stats).copy() if self.network else {},
            "traffic_frames": self._traffic_frames, "traffic_bytes": self._traffic_bytes,
            "gossip_messages": self._gossip_messages,
            "window_cpu": self.bridge.window_cpu if self.bridge is not None else [],
            "catch_ups": self.catch_ups + list(self._catching_up.values()),
            "signature_checks": (SIGNATURE_CHECKS.requested, SIGNATURE_CHECKS.performed),
        }

    def _result(self, others: Sequence[dict[str, Any]] = ()) -> SimResult:
        """The run's result from the observer's chain and every process's part (`others`: the
        parts of the other processes)."""
        observer: RelayNodeService = self.services[OBSERVER]
        chain = observer.chain
        parts = [self._local_part(), *others]
        finalized = chain.finalized.number
        best = chain.best_hash
        records = [block_record(h, chain.events.get(h.hash(), []), self.tx_counts,
                                h.number <= finalized)
                   for h in chain.chain_to(best)][: self.cfg.relay_blocks]
        for r in records:
            if r.finalized:
                r.finalized_at = self._finalized_at.get(r.number)
        host = self.cfg.host
        problems = check_invariants(records, host.allowed_ancestry_len, host.max_candidate_depth,
                                    concluded_invalid=set().union(
                                        *(p["concluded_invalid"] for p in parts)),
                                    approved=set().union(*(p["approved"] for p in parts)))
        order = {name: i for i, name in enumerate(self.keys)}

        def merged(key: str) -> dict[str, Any]:
            both = {k: v for p in parts for k, v in p[key].items()}
            return dict(sorted(both.items(), key=lambda kv: order.get(kv[0], len(order))))

        handler_errors = merged("handler_errors")
        problems += [p for part in parts for p in part["problems"]]
        problems += [f"{name}: {n} message(s) made a handler fail"
                     for name, n in handler_errors.items() if n]
        network: Counter[str] = Counter()
        frames: Counter[tuple[int, str]] = Counter()
        nbytes: Counter[tuple[int, str]] = Counter()
        messages: Counter[str] = Counter()
        for p in parts:
            network.update(p["network"])
            frames.update(p["traffic_frames"])
            nbytes.update(p["traffic_bytes"])
            messages.update(p["gossip_messages"])
        lanes = {int(p): p.name.lower() for p in Protocol}
        traffic = {f"{lanes.get(lane, lane)}/{what}": (n, nbytes[(lane, what)])
                   for (lane, what), n in sorted(frames.items())}
        for p in others:  # the process-wide counters of benchmarks count the whole run
            SIGNATURE_CHECKS.requested += p["signature_checks"][0]
            SIGNATURE_CHECKS.performed += p["signature_checks"][1]
        split = lockstep_figures([p["window_cpu"] for p in parts]) if others else {}
        return SimResult(records, problems, sorted(self.dev.paras),
                         trio.current_time() - self.epoch, merged("nodes"), self.segment_lengths,
                         self._collator_segments, handler_errors,
                         [c for p in parts for c in p["catch_ups"]], merged("authored"),
                         merged("finalized"), dict(network) if self.network else {},
                         traffic=traffic, gossip_messages=dict(sorted(messages.items())),
                         split=split)


def _node_info(s: Any) -> dict[str, Any]:
    """What the result says of one node: its role and counters worth reporting."""
    info: dict[str, Any] = {"role": s.role}
    if isinstance(s, RelayNodeService):
        info.update(best=s.chain.best.number, finalized=s.chain.finalized.number)
    if isinstance(s, ValidatorService):
        info.update(authored=s.authored, seconded=s.backing.seconded_total,
                    invalid=s.backing.invalid, votes=s.votes_signed,
                    bitfields=s.availability.signed,
                    garbage_seconded=len(s.backing.garbage),
                    disputes_concluded={r.value.lower(): sum(
                        1 for x in s.disputes.concluded.values() if x is r)
                        for r in DisputeResult},
                    reverts=[vars(x) for x in s.disputes.reverts],
                    finalized_invalid=s.disputes.finalized_invalid,
                    assignments=s.approvals.assignments_sent,
                    approvals=s.approvals.approvals_sent,
                    recovered=s.approvals.recovery.recovered,
                    recovered_from_backers=s.approvals.recovery.recovered_from_backers,
                    found_invalid=s.approvals.invalid_found)
    if isinstance(s, CollatorService):
        info.update(built=s.stats.built, advertised=s.stats.advertised,
                    seconded=s.stats.seconded, max_segment=s.stats.max_segment)
    return info


# From this many validators a run over two processes finishes sooner than one on two cores
# (`benchmarks/scale.py`: 50/10 about 1.4x, 100/20 1.2-1.4x; at 20/4 the second start-up and each
# process re-executing every block make two processes slower).
AUTO_SPLIT_VALIDATORS = 50


def auto_processes(validators: int, cores: int | None = None) -> int:
    """The process count `--processes auto` picks: 2 for a network of at least
    `AUTO_SPLIT_VALIDATORS` validators when this process may use two cores or more, else 1.
    (The count is part of the run, as a dial across processes takes two trips: the same seed
    on another machine may pick another count; the report records the one used.)"""
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    return 2 if validators >= AUTO_SPLIT_VALIDATORS and cores >= 2 else 1


def _process_of_validator(index: int, processes: int) -> int:
    """Which process runs validator `index`: every other one in the second process, so each
    process holds members of every backing group."""
    return index % processes


@contextmanager
def _collector_tuned_for_simulation() -> Iterator[None]:
    """Python's cyclic collector, at its default of a young collection every 700 allocations,
    traversed the simulation's fast-growing heap so often that it took about a quarter of a
    50-validator run's CPU (and found almost no cycles: 25 objects in 15 relay blocks). The run
    collects young objects every 200,000 allocations and the whole heap rarely; the thresholds
    are put back afterwards."""
    saved = gc.get_threshold()
    gc.set_threshold(200_000, 50, 20)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def run_sim(cfg: SimConfig, on_poll: PollHook | None = None) -> SimResult:
    """Run a simulation to completion; deterministic for a given config (seed included)."""
    if cfg.processes == 1:
        return _run_process(Simulation(cfg, on_poll))
    a, b = socket.socketpair()
    sim = Simulation(cfg, on_poll, bridge=Bridge(a))  # checks the config before forking
    pid = os.fork()
    if pid == 0:  # the second process: its validators until process 0 stops the run
        a.close()
        os._exit(_run_worker(Simulation(cfg, process=1, bridge=Bridge(b))))
    b.close()
    try:
        return _run_process(sim)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.waitpid(pid, 0)
        a.close()


def _run_process(sim: Simulation) -> SimResult:
    seed_trio_scheduler(sim.cfg.seed)
    work = SharedWork() if sim.cfg.sharing else None
    with sharing(work), _collector_tuned_for_simulation():
        try:
            result: SimResult = trio.run(sim.main, clock=virtual_clock())
        except BaseExceptionGroup as group:
            # The other process's failure, out of the nursery's group: the error to show.
            failed = group.subgroup(PeerProcessFailed)
            if failed is None:
                raise
            first: BaseException = failed
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
    if work is not None:
        result.shared_work = work.counts()
    return result


def _run_worker(sim: Simulation) -> int:
    """A second process's whole life: its exit status (its failure goes to process 0 as a
    traceback, which raises it there)."""
    assert sim.bridge is not None
    try:
        # Counted afresh: what process 0 had counted before the fork is its own.
        SIGNATURE_CHECKS.requested = SIGNATURE_CHECKS.performed = 0
        seed_trio_scheduler(sim.cfg.seed + sim.process)
        with sharing(SharedWork() if sim.cfg.sharing else None), \
                _collector_tuned_for_simulation():
            part = trio.run(sim.worker_main, clock=virtual_clock())
        sim.bridge.send_result(part)
        return 0
    except BaseException:
        sim.bridge.send_error(traceback.format_exc())
        return 1
