"""An in-memory network under trio time: per-link latency with jitter, loss, duplication and
partitions, all drawn from one seeded `random.Random`, so a run is a function of its seed.

Deliveries are kept in one time-ordered queue and released by a single task, so the order in
which messages arrive depends only on send order and the seeded draws, never on the scheduler.
Jitter reorders messages, as a real network may; a partition silently drops traffic between the
two sides (a dead link looks like silence), while killing a host closes its connections.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import trio

from node.net.transport import ConnectionClosed, PeerId


@dataclass(frozen=True)
class LinkProfile:
    latency_ms: float = 5.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0


@dataclass
class TraceEvent:
    at: float
    src: str
    dst: str
    size: int
    event: str  # "deliver", "lost", "duplicate", "blocked"


class MemoryConnection:
    def __init__(self, net: MemoryNetwork, local: PeerId, remote: PeerId) -> None:
        self.net = net
        self._local, self._remote = local, remote
        self.inbox_send, self.inbox = trio.open_memory_channel[bytes](math.inf)
        self.other: MemoryConnection | None = None
        self.closed = False

    @property
    def local(self) -> PeerId:
        return self._local

    @property
    def remote(self) -> PeerId:
        return self._remote

    async def send(self, body: bytes) -> None:
        if self.closed or self.other is None or self.other.closed:
            raise ConnectionClosed(f"{self._local.hex()[:8]} → {self._remote.hex()[:8]}")
        self.net._schedule(self, bytes(body))
        await trio.lowlevel.checkpoint()

    async def receive(self) -> bytes:
        try:
            return await self.inbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed("closed") from None

    async def aclose(self) -> None:
        self._close()
        if self.other is not None:
            self.other._close()
        await trio.lowlevel.checkpoint()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.inbox_send.close()


class MemoryHost:
    def __init__(self, net: MemoryNetwork, peer_id: PeerId) -> None:
        self.net = net
        self._peer_id = peer_id
        self.incoming_send, self.incoming = trio.open_memory_channel[MemoryConnection](math.inf)
        self.connections: list[MemoryConnection] = []
        self.alive = True

    @property
    def peer_id(self) -> PeerId:
        return self._peer_id

    async def dial(self, peer: PeerId) -> MemoryConnection:
        await trio.sleep(self.net.profile(self._peer_id, peer).latency_ms / 1000)
        target = self.net.hosts.get(peer)
        if not self.alive or target is None or not target.alive or self.net.blocked(self._peer_id, peer):
            raise ConnectionClosed(f"cannot reach {peer.hex()[:8]}")
        mine, theirs = MemoryConnection(self.net, self._peer_id, peer), MemoryConnection(
            self.net, peer, self._peer_id)
        mine.other, theirs.other = theirs, mine
        self.connections.append(mine)
        target.connections.append(theirs)
        target.incoming_send.send_nowait(theirs)
        return mine

    async def accept(self) -> MemoryConnection:
        return await self.incoming.receive()


@dataclass(order=True)
class _Pending:
    at: float
    seq: int
    conn: Any = field(compare=False)
    body: bytes = field(compare=False)


class MemoryNetwork:
    def __init__(self, rng: Any, default: LinkProfile | None = None) -> None:
        self.rng = rng  # a seeded random.Random, owned by the simulation
        self.default = default or LinkProfile()
        self.links: dict[tuple[PeerId, PeerId], LinkProfile] = {}
        self.hosts: dict[PeerId, MemoryHost] = {}
        self.partitions: list[set[PeerId]] = []
        self.trace: list[TraceEvent] = []
        self._queue: list[_Pending] = []
        self._seq = 0
        self._wakeup = trio.Event()

    def host(self, peer_id: PeerId) -> MemoryHost:
        h = self.hosts.get(peer_id)
        if h is None or not h.alive:
            h = self.hosts[peer_id] = MemoryHost(self, peer_id)
        return h

    def set_link(self, a: PeerId, b: PeerId, profile: LinkProfile) -> None:
        self.links[(a, b)] = self.links[(b, a)] = profile

    def profile(self, a: PeerId, b: PeerId) -> LinkProfile:
        return self.links.get((a, b), self.default)

    def partition(self, *groups: set[PeerId]) -> None:
        self.partitions = [set(g) for g in groups]

    def heal(self) -> None:
        self.partitions = []

    def blocked(self, a: PeerId, b: PeerId) -> bool:
        side = {p: i for i, g in enumerate(self.partitions) for p in g}
        return a in side and b in side and side[a] != side[b]

    def kill(self, peer_id: PeerId) -> None:
        """The host dies: every connection to or from it closes; it can be started again."""
        h = self.hosts.get(peer_id)
        if h is None:
            return
        h.alive = False
        for c in h.connections:
            c._close()
            if c.other is not None:
                c.other._close()
        h.incoming_send.close()

    def _schedule(self, conn: MemoryConnection, body: bytes) -> None:
        now = trio.current_time()
        p = self.profile(conn.local, conn.remote)
        src, dst = conn.local.hex()[:8], conn.remote.hex()[:8]
        if self.blocked(conn.local, conn.remote):
            self.trace.append(TraceEvent(now, src, dst, len(body), "blocked"))
            return
        if p.loss and self.rng.random() < p.loss:
            self.trace.append(TraceEvent(now, src, dst, len(body), "lost"))
            return
        copies = 2 if p.duplicate and self.rng.random() < p.duplicate else 1
        for _ in range(copies):
            delay = p.latency_ms + (self.rng.uniform(0, p.jitter_ms) if p.jitter_ms else 0.0)
            self._seq += 1
            heapq.heappush(self._queue, _Pending(now + delay / 1000, self._seq, conn, body))
        if copies == 2:
            self.trace.append(TraceEvent(now, src, dst, len(body), "duplicate"))
        self._wakeup.set()

    async def run(self) -> None:
        """Release deliveries at their time; run it in the simulation's nursery."""
        while True:
            if not self._queue:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            head = self._queue[0]
            if trio.current_time() < head.at:
                with trio.move_on_at(head.at):
                    self._wakeup = trio.Event()
                    await self._wakeup.wait()
                continue
            heapq.heappop(self._queue)
            target = head.conn.other
            if target is not None and not target.closed:
                target.inbox_send.send_nowait(head.body)
                self.trace.append(TraceEvent(head.at, head.conn.local.hex()[:8],
                                             head.conn.remote.hex()[:8], len(head.body), "deliver"))
