"""In-memory network: every node in one `trio.run`, links with seeded latency, jitter, loss,
duplication, reordering and healable partitions, driven by trio time only.

Determinism. trio deliberately shuffles the order in which simultaneously runnable tasks run, so
drawing fault decisions from one shared `random.Random` in the order tasks happen to call `send`
would make a run depend on the scheduler. Instead the network draws one 64-bit base seed from the
injected `random.Random` and derives each transmission's fate (loss, duplicate, latency, reorder)
from a hash of (base seed, link, sender, send time, bytes, occurrence of those bytes at that instant).
Deliveries are dispatched by one scheduler task from a heap ordered by (arrival time, link, send
sequence on that link). Every latency is strictly positive, so nothing sent at time T is dispatched
at T. Under `MockClock(autojump_threshold=0)` a run is then a pure function of the seed, with one
exception: two tasks of one node sending on the same connection at the same virtual instant queue in
trio's (shuffled) scheduling order. `seed_trio_scheduler` removes that last freedom for whole-system
simulations.

Each connection is FIFO, like the TCP stream it stands for: jitter varies latency but a frame never
overtakes an earlier one on the same connection (arrival is clamped to the previous arrival). Only
the explicit `reorder` fault breaks FIFO, by holding a frame back while later ones pass it.

Links carry whole wire frames (or, for hostile-peer tests, raw bytes); the receiving end runs them
through the same `WireFrameDecoder` a TCP stream would, so framing errors behave identically.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
import math
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import trio
import trio.testing

from node.net.transport import (
    Connection,
    ConnectionClosed,
    DialError,
    Direction,
    Frame,
    FrameCaps,
    Host,
    WireFrameDecoder,
    encode_wire_frame,
)
from proto.codec import encode
from proto.errors import DecodeError
from proto.hashing import blake2_256
from proto.network import PeerId

_U64 = 2.0**64
_FATE_PARTS = struct.Struct(">HIdH32sHI")
_EIGHT_U64 = struct.Struct(">8Q")
SEND_YIELD_EVERY = 16
DELIVERY_TICK_S = 0.001


@dataclass(frozen=True)
class LinkProfile:
    """Fault model of one directed link. Latency is `latency_s + jitter_s * U[0,1)`, plus
    `reorder_delay_s` for the fraction `reorder` of messages held back."""

    latency_s: float = 0.05
    jitter_s: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay_s: float = 0.5

    def __post_init__(self) -> None:
        # Strictly positive latency is what keeps dispatch independent of task interleaving.
        if self.latency_s < 1e-6:
            raise ValueError("latency_s must be at least 1 microsecond")
        if self.jitter_s < 0 or self.reorder_delay_s < 0:
            raise ValueError("jitter_s and reorder_delay_s must be non-negative")
        for name in ("loss", "duplicate", "reorder"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability, got {p}")


class TraceEvent(NamedTuple):
    time: float
    kind: str  # "connect" | "deliver" | "drop" | "close" | "kill"
    src: PeerId
    dst: PeerId
    link: int
    digest: bytes  # first 8 bytes of blake2b-256 of the bytes concerned


@dataclass
class NetworkStats:
    sent: int = 0
    bytes_sent: int = 0  # wire bytes of the frames sent (before loss or duplication)
    delivered: int = 0
    lost: int = 0
    partitioned: int = 0
    duplicated: int = 0
    reordered: int = 0
    discarded: int = 0  # arrived at an end that had closed meanwhile


class _Scheduled(NamedTuple):
    # A tuple, so a tick's batch sorts in C. (link, seq) is unique, so the comparison never
    # reaches `target` or `data`.
    time: float
    link: bytes  # (dialer, listener, dial number, sending side)
    seq: int  # send order on that side of the link
    target: MemoryConnection | None  # None: a dial from another process (`_Dial`)
    # The bytes on the wire; a whole frame `send` encoded is carried as its `Frame` (what the
    # receiver's decoder would make of those bytes), so it is not decoded again. None: the
    # sender closed the link. `_Dial`/`_DialReply`: opening a link across processes.
    data: bytes | Frame | _Dial | _DialReply | None


class _RemoteEnd(NamedTuple):
    """The far end of a link whose node runs in another process (`node/net/bridge.py`): what
    is sent to it is handed to that process, by the end's order key, at the next window."""

    key: bytes


class _Dial(NamedTuple):
    """A dial across processes, travelling the link like its first frame."""

    dialer: PeerId
    listener: PeerId
    link: int


class _DialReply(NamedTuple):
    refused: str | None  # why the listener's side refused the link; None: accepted


class _PendingDial:
    def __init__(self) -> None:
        self.answered = trio.Event()
        self.refused: str | None = None


class MemoryConnection(Connection):
    send_may_stall = False  # a send puts the frame in flight and never waits for the receiver

    def __init__(self, network: MemoryNetwork, host: MemoryHost, remote: PeerId,
                 direction: Direction, link: int) -> None:
        self._network = network
        self._host = host
        self.local = host.peer_id
        self.remote = remote
        self.direction = direction
        self.link = link
        self._peer_end: MemoryConnection | _RemoteEnd | None = None
        # What arrived and is not read yet, and the task waiting for more: a deque and a task
        # woken directly cost less a frame than a memory channel or a parking lot (a link has
        # one reader; nearly every frame of a simulation wakes it).
        self._inbox: deque[bytes | Frame] = deque()
        self._reader: trio.lowlevel.Task | None = None
        self._decoder = WireFrameDecoder(network.caps)
        self._fed_bytes = False  # the decoder has had raw bytes (until then it holds nothing)
        self._ready: deque[Frame] = deque()
        self._closed = False
        self._closed_locally = False
        self._last_arrival = 0.0  # of the latest in-order frame: FIFO clamp
        self._last_any_arrival = 0.0  # including held-back frames: the close comes after all
        self._send_seq = 0
        self._sent = 0
        self._order_key = b""
        self._fate_prefix = hashlib.blake2b(digest_size=64)
        self._instant = -math.inf
        self._occurrences: dict[bytes, int] = {}

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, protocol: int, body: bytes) -> None:
        if self._closed:
            raise ConnectionClosed(f"connection to {self.remote.hex()[:8]} is closed")
        network = self._network
        if body is network._last_body and protocol == network._last_protocol:
            # The same frame to another peer (a publish, a fan-out): its wire bytes' digest is
            # known, and a block's is 20 KB of hashing.
            size, digest = network._last_wire
        else:
            wire = encode_wire_frame(protocol, body, network.caps)
            size, digest = len(wire), blake2_256(wire)
            network._last_body, network._last_protocol = body, protocol
            network._last_wire = size, digest
        network._transmit(self, size, digest, Frame(protocol, body))
        # A send never blocks (the link has no buffer to fill), so it yields to other tasks only
        # every `SEND_YIELD_EVERY` frames: a gossip fan-out does not cost a task switch a peer.
        self._sent += 1
        if self._sent % SEND_YIELD_EVERY:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            await trio.lowlevel.checkpoint()

    def send_raw(self, data: bytes) -> None:
        """Put arbitrary bytes on the link (hostile-peer tests): the receiver's decoder sees them
        exactly as it would see them on a byte stream."""
        if self._closed:
            raise ConnectionClosed("connection is closed")
        self._network._transmit(self, len(data), blake2_256(data), data)

    def __aiter__(self) -> MemoryConnection:
        return self

    async def __anext__(self) -> Frame:
        while not self._ready:
            if self._closed_locally:
                raise StopAsyncIteration
            if not self._inbox:
                if self._closed:
                    raise StopAsyncIteration  # the peer's close, after all it had sent
                if self._reader is not None:
                    raise trio.BusyResourceError("another task is already reading this link")
                self._reader = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort_wait)
                continue
            # Frames already queued are taken without a task switch each.
            while self._inbox:
                data = self._inbox.popleft()
                if isinstance(data, Frame) and (not self._fed_bytes
                                                or self._decoder.between_frames):
                    self._ready.append(data)
                    continue
                self._fed_bytes = True
                if isinstance(data, Frame):  # behind raw bytes (a hostile test's): as bytes
                    data = encode_wire_frame(data.protocol, data.body, self._network.caps)
                try:
                    self._ready.extend(self._decoder.feed(data))
                except DecodeError:
                    await self.aclose()
                    raise
        return self._ready.popleft()

    def _abort_wait(self, _: Any) -> trio.lowlevel.Abort:
        self._reader = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _wake(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            trio.lowlevel.reschedule(reader)

    async def aclose(self) -> None:
        self._close_local()
        await trio.lowlevel.checkpoint()

    # -- network side -----------------------------------------------------------------------

    def _close_local(self) -> None:
        if self._closed_locally:
            return
        self._closed_locally = True
        was_open = not self._closed
        self._end()
        if was_open and self._peer_end is not None:
            self._network._schedule_close(self)

    def _end(self) -> None:
        self._closed = True
        self._wake()
        self._host._connections.discard(self)
        if type(self._peer_end) is _RemoteEnd:
            self._network._split_ends.pop(self._order_key, None)

    def _arrive(self, data: bytes | Frame) -> bool:
        if self._closed:
            return False
        self._inbox.append(data)
        if self._reader is not None:
            self._wake()
        return True

    def _occurrence(self, now: float, digest: bytes) -> int:
        # Identical bytes sent at the same instant on one link are told apart by their count;
        # the table only ever holds the current instant.
        if now != self._instant:
            self._instant = now
            self._occurrences.clear()
        n = self._occurrences.get(digest, 0)
        self._occurrences[digest] = n + 1
        return n


class MemoryHost(Host):
    def __init__(self, network: MemoryNetwork, peer_id: PeerId) -> None:
        self._network = network
        self.peer_id = peer_id
        self.alive = True
        self._incoming_send, self._incoming = trio.open_memory_channel[MemoryConnection](math.inf)
        self._connections: set[MemoryConnection] = set()

    async def dial(self, peer: PeerId) -> MemoryConnection:
        net = self._network
        if not self.alive:
            raise DialError("this host is down")
        if peer == self.peer_id:
            raise DialError("cannot dial oneself")
        if peer in net.remote_peers:
            return await net._dial_remote(self, peer)
        # Opening a connection costs one trip over the link.
        await trio.sleep(net.profile(self.peer_id, peer).latency_s)
        target = net.hosts.get(peer)
        if not self.alive or target is None or not target.alive:
            raise DialError(f"peer {peer.hex()[:8]} is unreachable")
        if net.blocked(self.peer_id, peer):
            raise DialError(f"peer {peer.hex()[:8]} is partitioned away")
        if target.admission is not None and not target.admission(self.peer_id):
            raise DialError(f"peer {peer.hex()[:8]} refused us (banned)")  # as at a handshake
        return net._connect(self, target)

    async def accept(self) -> MemoryConnection:
        try:
            return await self._incoming.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed("host is down") from None

    def connections(self) -> list[MemoryConnection]:
        return sorted(self._connections, key=lambda c: (c.remote, c.link, c.direction.value))


class MemoryNetwork:
    """The shared medium. Run `run` in a nursery (`await nursery.start(network.run)`) before any
    traffic: it is the one task that delivers."""

    def __init__(self, rng: Any, caps: FrameCaps, *, default: LinkProfile | None = None,
                 record_trace: bool = True) -> None:
        self.caps = dict(caps)
        self.default = default or LinkProfile()
        self.hosts: dict[PeerId, MemoryHost] = {}
        self.stats = NetworkStats()
        self.record_trace = record_trace
        self._seed = int(rng.getrandbits(64)).to_bytes(8, "big")
        self._links: dict[tuple[PeerId, PeerId], LinkProfile] = {}
        self._group_of: dict[PeerId, int] = {}
        self._dial_counts: dict[tuple[PeerId, PeerId], int] = {}
        # Nodes of other processes, the local ends of links to them by order key, dials to them
        # not answered yet, and what was sent to them since the last window.
        self.remote_peers: frozenset[PeerId] = frozenset()
        self._split_ends: dict[bytes, MemoryConnection] = {}
        self._pending_dials: dict[bytes, _PendingDial] = {}
        self._outbound: list[tuple[int, bytes, int, bytes, Any]] = []
        # Deliveries by tick (arrivals fall on a `DELIVERY_TICK_S` grid), and the ticks pending.
        self._due: dict[int, list[_Scheduled]] = {}
        self._ticks: list[int] = []  # a heap
        self._sleep = trio.CancelScope()  # the delivery task's current sleep
        self._trace: list[TraceEvent] = []
        self._epoch: float | None = None
        # The run's clock, read directly (what `trio.current_time` reads, two calls further).
        self._clock: Callable[[], float] = trio.current_time
        # The last frame sent, by identity (held, so its id is not reused), and its wire size
        # and digest.
        self._last_body: bytes | None = None
        self._last_protocol = -1
        self._last_wire: tuple[int, bytes] = (0, b"")

    def now(self) -> float:
        """Seconds since `run` started (trace times and fault hashes are relative to it)."""
        if self._epoch is None:
            raise RuntimeError("MemoryNetwork.run has not started")
        return self._clock() - self._epoch

    # -- topology and faults ----------------------------------------------------------------

    def add_host(self, peer_id: PeerId) -> MemoryHost:
        old = self.hosts.get(peer_id)
        if old is not None and old.alive:
            raise ValueError(f"host {peer_id.hex()[:8]} already exists")
        host = MemoryHost(self, peer_id)
        self.hosts[peer_id] = host
        return host

    def kill(self, peer_id: PeerId) -> None:
        """The node's process dies: its connections close at both ends, now."""
        host = self.hosts[peer_id]
        if not host.alive:
            return
        host.alive = False
        host._incoming_send.close()
        for conn in host.connections():
            peer_end = conn._peer_end
            if type(peer_end) is _RemoteEnd:  # the other process learns of it a trip later
                self._schedule_close(conn)
            conn._end()
            if isinstance(peer_end, MemoryConnection):
                peer_end._end()
        self._record(TraceEvent(self.now(), "kill", peer_id, peer_id, 0, b""))

    def restart(self, peer_id: PeerId) -> MemoryHost:
        """A fresh host under the same identity (kills the old one first if still alive)."""
        self.kill(peer_id)
        return self.add_host(peer_id)

    def set_link(self, a: PeerId, b: PeerId, profile: LinkProfile, *, both_ways: bool = True) -> None:
        self._links[(a, b)] = profile
        if both_ways:
            self._links[(b, a)] = profile

    def profile(self, src: PeerId, dst: PeerId) -> LinkProfile:
        return self._links.get((src, dst), self.default)

    def partition(self, *groups: set[PeerId] | frozenset[PeerId] | list[PeerId]) -> None:
        """Nodes in different groups cannot reach each other (frames between them are dropped,
        dials fail) until `heal`. Nodes in no group reach everyone."""
        self._group_of = {peer: i for i, group in enumerate(groups) for peer in group}

    def heal(self) -> None:
        self._group_of = {}

    def blocked(self, a: PeerId, b: PeerId) -> bool:
        ga, gb = self._group_of.get(a), self._group_of.get(b)
        return ga is not None and gb is not None and ga != gb

    # -- trace ------------------------------------------------------------------------------

    def trace(self) -> list[TraceEvent]:
        """Every connect, delivery, drop, close and kill, in canonical (time, ...) order."""
        return sorted(self._trace)

    def trace_hash(self) -> bytes:
        return blake2_256(encode([list(e) for e in self.trace()]))

    def _record(self, event: TraceEvent) -> None:
        if self.record_trace:
            self._trace.append(event)

    # -- delivery ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._clock = trio.lowlevel.current_clock().current_time
        self._epoch = self._clock()
        task_status.started()
        epoch = self._epoch
        while True:
            # Compare in the clock's own terms (time + epoch), exactly as the sleep below does,
            # so a wake-up at a deadline always finds its item due (no rounding livelock).
            while self._ticks and self._ticks[0] * DELIVERY_TICK_S + epoch <= trio.current_time():
                # One tick's frames in (link, send order) order: a function of the run, not of
                # the order the sending tasks happened to run in.
                for item in sorted(self._due.pop(heapq.heappop(self._ticks))):
                    self._dispatch(item)
            # Sleep until the earliest delivery. A frame pushed meanwhile that is due sooner moves
            # this deadline (`_push`) rather than waking the task: one wake-up per due instant.
            self._sleep = trio.CancelScope(
                deadline=self._ticks[0] * DELIVERY_TICK_S + epoch if self._ticks else math.inf)
            with self._sleep:
                await trio.sleep_forever()

    def _connect(self, dialer: MemoryHost, target: MemoryHost) -> MemoryConnection:
        pair = (dialer.peer_id, target.peer_id)
        link = self._next_link(pair)
        out = self._new_end(dialer, pair, Direction.OUTBOUND, link)
        inb = self._new_end(target, pair, Direction.INBOUND, link)
        out._peer_end, inb._peer_end = inb, out
        dialer._connections.add(out)
        target._connections.add(inb)
        target._incoming_send.send_nowait(inb)
        self._record(TraceEvent(self.now(), "connect", *pair, link, b""))
        return out

    def _next_link(self, pair: tuple[PeerId, PeerId]) -> int:
        link = self._dial_counts.get(pair, 0)
        self._dial_counts[pair] = link + 1
        return link

    def _new_end(self, host: MemoryHost, pair: tuple[PeerId, PeerId], direction: Direction,
                 link: int) -> MemoryConnection:
        """One end of the `link`-th link dialled from `pair[0]` to `pair[1]`, on `host`'s side."""
        remote = pair[1] if direction is Direction.OUTBOUND else pair[0]
        conn = MemoryConnection(self, host, remote, direction, link)
        conn._order_key = _order_key(pair, link, direction)
        # What every transmission's fate hash starts with on this side of the link.
        for part in (self._seed, *pair, conn.local):
            conn._fate_prefix.update(len(part).to_bytes(2, "big") + part)
        return conn

    # -- links to another process (`node/net/bridge.py`) -------------------------------------

    def set_remote(self, peers: set[PeerId] | frozenset[PeerId]) -> None:
        """The nodes that run in another process of the simulation: dialled, and sent to, across
        the bridge (`node.net.bridge.keep_in_step`)."""
        self.remote_peers = frozenset(peers)

    async def _dial_remote(self, dialer: MemoryHost, peer: PeerId) -> MemoryConnection:
        """A dial to a node of another process: the request travels the link (one trip), the
        listener's process accepts or refuses as `dial` would, and the answer travels back
        ahead of anything the listener sends on the link (a second trip: a process cannot learn
        of the other's state sooner than a link's latency)."""
        pair = (dialer.peer_id, peer)
        link = self._next_link(pair)
        out = self._new_end(dialer, pair, Direction.OUTBOUND, link)
        out._peer_end = _RemoteEnd(_order_key(pair, link, Direction.INBOUND))
        pending = self._pending_dials[out._order_key] = _PendingDial()
        self._split_ends[out._order_key] = out
        at = self.now() + self.profile(*pair).latency_s
        out._last_arrival = out._last_any_arrival = at
        self._push(out, at, _Dial(dialer.peer_id, peer, link))
        try:
            await pending.answered.wait()
        except BaseException:
            # Cancelled while the answer travels: an accepted link is closed when it comes.
            pending.refused = "cancelled"
            raise
        if pending.refused is not None:
            out._end()
            raise DialError(f"peer {peer.hex()[:8]} {pending.refused}")
        if not dialer.alive:
            out._close_local()
            raise DialError("this host is down")
        dialer._connections.add(out)
        self._record(TraceEvent(self.now(), "connect", *pair, link, b""))
        return out

    def _accept_remote(self, dial: _Dial) -> None:
        """A dial from another process arrives: the listener's side of `dial`, as `dial` checks
        it, and the answer sent back."""
        pair = (dial.dialer, dial.listener)
        target = self.hosts.get(dial.listener)
        refused = None
        if target is None or not target.alive:
            refused = "is unreachable"
        elif self.blocked(*pair):
            refused = "is partitioned away"
        elif target.admission is not None and not target.admission(dial.dialer):
            refused = "refused us (banned)"
        host = target if target is not None else MemoryHost(self, dial.listener)
        inb = self._new_end(host, pair, Direction.INBOUND, dial.link)
        inb._peer_end = _RemoteEnd(_order_key(pair, dial.link, Direction.OUTBOUND))
        at = self.now() + self.profile(dial.listener, dial.dialer).latency_s
        inb._last_arrival = inb._last_any_arrival = at
        self._push(inb, at, _DialReply(refused))
        if refused is not None or target is None:
            return
        self._split_ends[inb._order_key] = inb
        target._connections.add(inb)
        target._incoming_send.send_nowait(inb)
        self._record(TraceEvent(self.now(), "connect", *pair, dial.link, b""))

    def _answer_dial(self, end: MemoryConnection, reply: _DialReply) -> None:
        pending = self._pending_dials.pop(end._order_key, None)
        if pending is None or pending.refused == "cancelled":
            if reply.refused is None:
                end._close_local()  # nobody waits for this link any more
            else:
                end._end()
            return
        pending.refused = reply.refused
        pending.answered.set()

    def take_outbound(self) -> list[tuple[int, bytes, int, bytes, Any]]:
        """What was sent to other processes since the last call: (arrival tick, link order key,
        send sequence, far end's order key, data)."""
        out, self._outbound = self._outbound, []
        return out

    def put_inbound(self, items: list[tuple[int, bytes, int, bytes, Any]]) -> None:
        """What other processes sent to this one's nodes, to deliver at its arrival tick (which
        must be later than now: the bridge's window is shorter than any link's latency)."""
        assert self._epoch is not None
        now_tick = (trio.current_time() - self._epoch) / DELIVERY_TICK_S
        for tick, link, seq, key, data in items:
            if tick <= now_tick:
                raise RuntimeError(f"a frame from another process arrived late (tick {tick} at "
                                   f"{now_tick:.1f}): the bridge window is too long")
            target = None  # a dial: its end is made when it arrives (`_accept_remote`)
            if not isinstance(data, _Dial):
                target = self._split_ends.get(key)
                if target is None:
                    self.stats.discarded += 1  # its end closed meanwhile
                    continue
            self._schedule(_Scheduled(tick * DELIVERY_TICK_S, link, seq, target, data), tick)

    def _fate(self, conn: MemoryConnection, now: float, digest: bytes) -> tuple[int, ...]:
        """Eight uniforms for this transmission (`digest`: of its bytes), independent of task
        scheduling, as 64-bit integers: uniform `i` in [0, 1) is `fate[i] / 2**64`, divided
        out only where used (most transmissions use three)."""
        h = conn._fate_prefix.copy()
        # Each part length-prefixed: (link, now) 12 bytes, the digest 32, the occurrence 4.
        h.update(_FATE_PARTS.pack(12, conn.link, now, len(digest), digest, 4,
                                  conn._occurrence(now, digest)))
        return _EIGHT_U64.unpack(h.digest())

    def _push(self, sender: MemoryConnection, time: float,
              data: bytes | Frame | _Dial | _DialReply | None) -> None:
        target = sender._peer_end
        assert target is not None
        # Arrivals fall on a `DELIVERY_TICK_S` grid (rounded up, so never earlier and never at
        # the send instant): the delivery task wakes once a tick for all that is due, not once
        # a frame. Rounding up keeps each link's order.
        tick = math.ceil(time / DELIVERY_TICK_S)
        sender._send_seq += 1
        sender._last_any_arrival = max(sender._last_any_arrival, tick * DELIVERY_TICK_S)
        if type(target) is _RemoteEnd:
            self._outbound.append((tick, sender._order_key, sender._send_seq, target.key, data))
            return
        assert isinstance(target, MemoryConnection)
        self._schedule(_Scheduled(tick * DELIVERY_TICK_S, sender._order_key, sender._send_seq,
                                  target, data), tick)

    def _schedule(self, item: _Scheduled, tick: int) -> None:
        batch = self._due.get(tick)
        if batch is not None:
            batch.append(item)
            return
        self._due[tick] = [item]
        heapq.heappush(self._ticks, tick)
        if self._ticks[0] == tick:
            assert self._epoch is not None
            self._sleep.deadline = item.time + self._epoch

    def _transmit(self, conn: MemoryConnection, size: int, digest: bytes,
                  carried: bytes | Frame) -> None:
        """Put wire bytes (`size` of them, of blake2-256 `digest`) on the link; `carried` is
        what arrives (the bytes, or the frame they encode)."""
        now = self.now()
        self.stats.sent += 1
        self.stats.bytes_sent += size
        src, dst = conn.local, conn.remote
        profile = self.profile(src, dst)
        u = self._fate(conn, now, digest)
        blocked = self.blocked(src, dst)
        if blocked or u[0] / _U64 < profile.loss:
            if blocked:
                self.stats.partitioned += 1
            else:
                self.stats.lost += 1
            self._record(TraceEvent(now, "drop", src, dst, conn.link, digest[:8]))
            return
        copies = 2 if u[1] / _U64 < profile.duplicate else 1
        self.stats.duplicated += copies - 1
        for copy in range(copies):
            at = now + profile.latency_s + profile.jitter_s * (u[2 + 2 * copy] / _U64)
            if u[3 + 2 * copy] / _U64 < profile.reorder:
                at += profile.reorder_delay_s
                self.stats.reordered += 1
            else:
                at = max(at, conn._last_arrival)
                conn._last_arrival = at
            self._push(conn, at, carried)

    def _schedule_close(self, conn: MemoryConnection) -> None:
        # The peer learns of the close after the last frame already on its way (like a FIN).
        at = max(self.now() + self.profile(conn.local, conn.remote).latency_s,
                 conn._last_any_arrival)
        self._push(conn, at, None)

    def _dispatch(self, item: _Scheduled) -> None:
        target = item.target
        if target is None:  # a dial from another process
            assert isinstance(item.data, _Dial)
            self._accept_remote(item.data)
            return
        if isinstance(item.data, _DialReply):
            self._answer_dial(target, item.data)
            return
        assert not isinstance(item.data, _Dial)  # a dial comes with no end (`put_inbound`)
        src = target.remote
        if item.data is None:
            if not target.closed:
                target._end()
                self._record(TraceEvent(item.time, "close", src, target.local, target.link, b""))
            return
        if target._arrive(item.data):
            self.stats.delivered += 1
            if self.record_trace:  # the digest is not worth computing for nobody
                data = item.data
                if isinstance(data, Frame):
                    data = encode_wire_frame(data.protocol, data.body, self.caps)
                self._record(TraceEvent(item.time, "deliver", src, target.local, target.link,
                                        blake2_256(data)[:8]))
        else:
            self.stats.discarded += 1


def _order_key(pair: tuple[PeerId, PeerId], link: int, direction: Direction) -> bytes:
    """What orders one side of a link's frames among a tick's deliveries, and names that side
    across processes: (dialer, listener, dial number, sending side)."""
    side = b"\x00" if direction is Direction.OUTBOUND else b"\x01"
    return pair[0] + pair[1] + link.to_bytes(4, "big") + side


def virtual_clock() -> trio.testing.MockClock:
    """`MockClock(autojump_threshold=0)`, virtual time that moves only when every task waits,
    whose time is read without the real clock (its rate must stay 0).

    At rate 0 a MockClock's time is its virtual base plus zero times the real seconds since the
    base was set: the same number as the base itself, read here as the attribute (MockClock
    cannot be subclassed). A whole simulation reads the time about a million times (each frame
    sent and received, each timer), each read two calls and a real-clock read fewer."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    if not isinstance(getattr(clock, "_virtual_base", None), float):
        raise RuntimeError("this trio version's MockClock keeps no virtual base to read")
    setattr(clock, "current_time", functools.partial(getattr, clock, "_virtual_base"))  # noqa: B010
    return clock


def seed_trio_scheduler(seed: int) -> None:
    """Make trio's choice among simultaneously runnable tasks repeatable.

    trio shuffles each batch of runnable tasks with a module-private `random.Random` (to flush out
    code that depends on scheduling order). A whole-system simulation that wants a bit-identical
    trace from a seed, even where two tasks race at one virtual instant, seeds it before `trio.run`.
    This reaches into trio internals on purpose; it fails loudly if they change.
    """
    from trio._core import _run

    scheduler_rng = getattr(_run, "_r", None)
    if scheduler_rng is None:
        raise RuntimeError("this trio version has no scheduler RNG to seed")
    scheduler_rng.seed(seed)
    # trio picks among simultaneously runnable tasks one of two ways: a shuffle of the batch
    # sorted by spawn order when Hypothesis' plugin has switched it on (always, under this
    # project's pytest), else a coin flip between the batch and its reverse. The same seed gave
    # one run under pytest and another from `asyncback sim`; the shuffle is used everywhere.
    if not hasattr(_run, "_ALLOW_DETERMINISTIC_SCHEDULING"):
        raise RuntimeError("this trio version has no deterministic scheduling switch")
    setattr(_run, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010 (a Final in trio)
    _order_deadline_ties_by_arrival(_run)


def _order_deadline_ties_by_arrival(run_module: Any) -> None:
    """trio breaks ties between timers due at one instant by `id()` of their cancel scopes, a
    memory address: tasks sleeping until the same virtual time (every node's tick, every batch
    window closing together) woke in an order that changed with the process's hash seed, and a
    simulation was not the same from one process to the next (a 10 %-loss run's weakest para:
    11 under pytest, 13 or 14 from a script). Ties are broken by the order the timers were set
    instead, which a deterministic run repeats."""
    deadlines = getattr(run_module, "Deadlines", None)
    if deadlines is None or not hasattr(deadlines, "add"):
        raise RuntimeError("this trio version has no Deadlines heap to order")
    if getattr(deadlines.add, "_asyncback_ordered", False):
        return
    sequence = itertools.count()

    def add(self: Any, deadline: float, cancel_scope: Any) -> None:
        heapq.heappush(self._heap, (deadline, next(sequence), cancel_scope))
        self._active += 1

    add._asyncback_ordered = True  # type: ignore[attr-defined]
    deadlines.add = add
