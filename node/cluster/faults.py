"""Faults on the links between a cluster's nodes: partitions, latency, jitter and loss, healed at
will (`Cluster(..., faults=True)`, then `cluster.partition`, `cluster.degrade`, `cluster.heal`).

Why a proxy in userspace, not network namespaces with veth pairs and `tc netem`. The kernel of
these machines (and of CI, the same kind of machine) is built without `sch_netem`
(`CONFIG_NET_SCH_NETEM` is not set, and there are no modules to load), so netem's delay and loss
are not there to be had; namespaces alone would give partitions but no latency or loss. They would
also move every node off 127.0.0.1 onto addresses of its own namespace, with a bridge and routes
for the harness to reach each node's RPC, all created and torn down as root. A proxy needs none
of that, works wherever the nodes run as ordinary processes, and is driven from the test's own
loop, so a fault takes effect at a known instant.

How links go through it. Node k of a faults cluster listens (p2p, RPC, Prometheus) on its own
loopback address, `127.77.0.k`, and dials its peers from that address too (a node dials from a
loopback address it listens on: `node.net.tcp`). Its p2p port is also opened by this module on
`127.78.0.k` (same port number), and that is the address the node announces (`--public-host`):
in its peer exchange, its `system_localListenAddresses` (how a collator finds its relay node) and
the bootnode address the launcher hands the others. So every p2p connection between two nodes
reaches its responder through the responder's proxy, and the proxy tells the dialer from the
connection's source address: each connection is one known link (dialer, responder). Nothing of
the nodes' real addresses leaks through discovery, because the only addresses a node ever
announces are its proxy's. RPC and metrics are not proxied (a collator's RPC link to its relay
node stays up in a partition; the launcher's reads too). A connection from an address that is no
node of the cluster (a `probe-peer`, a test's own dial) passes untouched.

What each fault does to a link (both directions; a link touching several degraded nodes gets the
worst of each figure, as if they sat behind one bad router):
- latency and jitter: each chunk of bytes is delivered `latency ± jitter` (uniform) after it was
  read, never before the chunk ahead of it: TCP delivers in order, so jitter shows as bursts, not
  as reordering (netem's jitter reorders packets; TCP puts them back in order the same way).
- loss: what a lost segment does to a TCP stream, since the stream itself never loses a byte: a
  chunk of n segments (1448 bytes each) stalls with probability 1 - (1 - loss)^n, for one
  retransmission timeout (200 ms plus the round trip), doubling while the retransmission is lost
  too; the chunks behind it wait (head-of-line blocking).
- partition (`hold`, the default): bytes that cross it are held, as TCP keeps retransmitting them,
  and delivered when it heals (at once, without the retransmission backoff a real stack would add);
  a dial across it connects but is answered only after the heal, so the dialer's handshake times
  out. Connections stay up, as they do over a real partition until a keep-alive notices.
  Held bytes are capped per direction (`MAX_HELD_BYTES`); beyond that the proxy stops reading and
  the sender's writes block, as a full TCP window makes them.
- partition (`reset`): connections across it are closed at once and dials across it are closed
  as soon as they connect, as a firewall that rejects makes them.
`heal()` lifts every partition and degradation. Faults are driven by a seeded `random.Random`.
"""

from __future__ import annotations

import errno
import math
import random
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

NODE_NET = "127.77.0.{}"  # where node k listens and dials from
PROXY_NET = "127.78.0.{}"  # where its proxy listens, and what it announces
MAX_NODES = 254
MSS = 1448
MIN_RTO_S = 0.2
MAX_BACKOFFS = 6
MAX_HELD_BYTES = 32 << 20
CHUNK = 65536
MODES = ("hold", "reset")


def node_address(index: int) -> str:
    """Node `index` (0-based, in start order) listens on this loopback address."""
    if not 0 <= index < MAX_NODES:
        raise ValueError(f"a faults cluster has at most {MAX_NODES} nodes")
    return NODE_NET.format(index + 1)


def proxy_address(index: int) -> str:
    return PROXY_NET.format(index + 1)


@dataclass(frozen=True)
class Impairment:
    """What a degraded link does: one-way latency and jitter (seconds), segment loss (0..1)."""

    latency_s: float = 0.0
    jitter_s: float = 0.0
    loss: float = 0.0

    def __post_init__(self) -> None:
        if self.latency_s < 0 or self.jitter_s < 0:
            raise ValueError("latency and jitter cannot be negative")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("loss is a fraction in [0, 1)")

    def worst(self, other: Impairment) -> Impairment:
        return Impairment(max(self.latency_s, other.latency_s),
                          max(self.jitter_s, other.jitter_s), max(self.loss, other.loss))

    @property
    def none(self) -> bool:
        return self == NO_IMPAIRMENT


NO_IMPAIRMENT = Impairment()


def delivery_time(now: float, size: int, impairment: Impairment, rng: random.Random,
                  previous: float) -> float:
    """When a chunk of `size` bytes read at `now` is delivered on an impaired link, the chunk
    ahead of it having been delivered at `previous` (see the module docstring)."""
    delay = impairment.latency_s
    if impairment.jitter_s:
        delay = max(0.0, delay + rng.uniform(-impairment.jitter_s, impairment.jitter_s))
    if impairment.loss:
        segments = max(1, math.ceil(size / MSS))
        rto = MIN_RTO_S + 2 * impairment.latency_s
        if rng.random() < 1.0 - (1.0 - impairment.loss) ** segments:
            backoffs = 1
            while backoffs < MAX_BACKOFFS and rng.random() < impairment.loss:
                backoffs += 1
            delay += rto * (2 ** backoffs - 1)
    return max(previous, now + delay)


class LinkFaults:
    """Which nodes may reach which, and how badly: pure state, no sockets."""

    def __init__(self) -> None:
        self.sides: dict[str, int] = {}  # node -> its side of the partition; unlisted: side -1
        self.impairments: dict[str, Impairment] = {}
        self.mode = "hold"

    def partition(self, groups: Iterable[Iterable[str]], mode: str = "hold") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        sides: dict[str, int] = {}
        for side, group in enumerate(groups):
            for name in group:
                if name in sides:
                    raise ValueError(f"node {name} is named in two sides of the partition")
                sides[name] = side
        self.sides, self.mode = sides, mode

    def degrade(self, names: Iterable[str], impairment: Impairment) -> None:
        for name in names:
            self.impairments[name] = impairment

    def heal(self) -> None:
        self.sides.clear()
        self.impairments.clear()
        self.mode = "hold"

    def blocked(self, a: str | None, b: str | None) -> bool:
        """Whether a partition separates `a` and `b` (None: not a node of the cluster)."""
        if a is None or b is None:
            return False
        return self.sides.get(a, -1) != self.sides.get(b, -1)

    def impairment(self, a: str | None, b: str | None) -> Impairment:
        if a is None or b is None:
            return NO_IMPAIRMENT
        return self.impairments.get(a, NO_IMPAIRMENT).worst(
            self.impairments.get(b, NO_IMPAIRMENT))


@dataclass
class LinkStats:
    connections: int = 0
    bytes: int = 0
    held_dials: int = 0
    resets: int = 0


@dataclass(eq=False)
class _Connection:
    dialer: str | None
    responder: str
    sockets: list[trio.SocketStream] = field(default_factory=list)

    def close(self) -> None:
        for s in self.sockets:
            s.socket.close()


def _listen(host: str, port: int) -> trio.SocketListener:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


class FaultProxies:
    """The proxies of one cluster: one listener per node, one task pair per connection.

    They run in a trio system task for as long as the cluster: `Cluster` is an async context
    manager with no nursery of its own, and trio lets a nursery close only in the task and scope
    that opened it, which a cluster entered in one task and stopped from another could not
    promise. Every failure inside is caught where it happens (a connection's trouble ends that
    connection), so nothing escapes to the system nursery."""

    def __init__(self, seed: int = 0) -> None:
        self.faults = LinkFaults()
        self.rng = random.Random(seed)
        self.names: dict[str, str] = {}  # source address -> node name
        self.stats: dict[tuple[str | None, str], LinkStats] = {}
        self._listeners: dict[str, tuple[int, trio.SocketListener, trio.CancelScope]] = {}
        self._live: set[_Connection] = set()
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._scope = trio.CancelScope()
        self._started = trio.Event()
        self.errors: list[str] = []  # what a proxy task met that it did not expect

    async def start(self) -> None:
        trio.lowlevel.spawn_system_task(self._serve, name="fault proxies")
        await self._started.wait()

    async def _serve(self) -> None:
        with self._scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._started.set()
                await trio.sleep_forever()

    def close(self) -> None:
        """Stop every proxy and close every connection through them."""
        self._scope.cancel()
        for _, listener, _ in self._listeners.values():
            listener.socket.close()
        for conn in list(self._live):
            conn.close()
        self._listeners.clear()

    # -- nodes ------------------------------------------------------------------------------

    def expose(self, name: str, source: str, public: tuple[str, int],
               upstream: tuple[str, int]) -> int:
        """Proxy `public` to node `name`'s p2p listener at `upstream`; connections from `source`
        are that node's. Called again with another port, the old listener goes. Returns the
        port listened on (`public`'s, or the one the system chose for port 0)."""
        assert self._nursery is not None, "start() first"
        self.names[source] = name
        held = self._listeners.get(name)
        if held is not None and public[1] in (0, held[0]):
            return held[0]
        if held is not None:
            held[2].cancel()
            held[1].socket.close()
        listener = _listen(*public)
        port = int(listener.socket.getsockname()[1])
        scope = trio.CancelScope()
        self._listeners[name] = (port, listener, scope)
        self._nursery.start_soon(self._guarded, self._accept_loop, name, listener, upstream,
                                 scope)
        return port

    # -- faults -----------------------------------------------------------------------------

    def partition(self, groups: list[list[str]], mode: str = "hold") -> None:
        self.faults.partition(groups, mode)
        if mode == "reset":
            for conn in list(self._live):
                if self.faults.blocked(conn.dialer, conn.responder):
                    self._stat(conn.dialer, conn.responder).resets += 1
                    conn.close()
        self._notify()

    def degrade(self, names: list[str], impairment: Impairment) -> None:
        self.faults.degrade(names, impairment)
        self._notify()

    def heal(self) -> None:
        self.faults.heal()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _until_open(self, a: str | None, b: str | None) -> None:
        while True:
            changed = self._changed
            if not self.faults.blocked(a, b):
                return
            await changed.wait()

    def _stat(self, a: str | None, b: str) -> LinkStats:
        """The figures of the link `a` dials `b` (`a` None: a dialer that is no node)."""
        return self.stats.setdefault((a, b), LinkStats())

    # -- connections ------------------------------------------------------------------------

    async def _guarded(self, task: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run one proxy task; an exception it did not expect ends it and is recorded, and never
        reaches the system nursery (where it would end the whole trio run)."""
        try:
            await task(*args)
        except Exception as exc:
            self.errors.append(f"{getattr(task, '__name__', task)}: {type(exc).__name__}: {exc}")

    async def _accept_loop(self, name: str, listener: trio.SocketListener,
                           upstream: tuple[str, int], scope: trio.CancelScope) -> None:
        assert self._nursery is not None
        with scope:
            while True:
                try:
                    stream = await listener.accept()
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    return
                except OSError as exc:
                    if exc.errno in (errno.EBADF, errno.EINVAL):
                        return
                    await trio.sleep(0.1)  # out of descriptors or the like: back off
                    continue
                self._nursery.start_soon(self._guarded, self._handle, name, stream, upstream)

    async def _handle(self, responder: str, inbound: trio.SocketStream,
                      upstream: tuple[str, int]) -> None:
        try:
            source = str(inbound.socket.getpeername()[0])
        except OSError:
            inbound.socket.close()
            return
        dialer = self.names.get(source)
        conn = _Connection(dialer, responder, [inbound])
        self._live.add(conn)
        stat = self._stat(dialer, responder)
        stat.connections += 1
        try:
            if self.faults.blocked(dialer, responder):
                if self.faults.mode == "reset":
                    stat.resets += 1
                    return
                stat.held_dials += 1
                await self._until_open(dialer, responder)
            try:
                outbound = await trio.open_tcp_stream(*upstream)
            except OSError:
                return  # the node is down: the dialer sees the connection close
            conn.sockets.append(outbound)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, inbound, outbound, dialer, responder, stat,
                                   nursery.cancel_scope)
                nursery.start_soon(self._pump, outbound, inbound, responder, dialer, stat,
                                   nursery.cancel_scope)
        finally:
            conn.close()
            self._live.discard(conn)

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, a: str | None,
                    b: str | None, stat: LinkStats, done: trio.CancelScope) -> None:
        """Bytes from `source` (node `a`'s end) to `sink` (node `b`'s), delayed and held as the
        link's faults say; when either end goes, the whole connection goes (`done`)."""
        pipe = _Pipe()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read, pipe, source, a, b)
            nursery.start_soon(self._write, pipe, sink, a, b, stat, done)

    async def _read(self, pipe: _Pipe, source: trio.SocketStream, a: str | None,
                    b: str | None) -> None:
        while True:
            try:
                data = await source.receive_some(CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                pipe.eof = True
                pipe.arrived.set()
                return
            now = trio.current_time()
            impairment = self.faults.impairment(a, b)
            at = now if impairment.none else delivery_time(now, len(data), impairment, self.rng,
                                                          pipe.last)
            pipe.last = max(at, pipe.last)
            pipe.queue.append((pipe.last, data))
            pipe.held += len(data)
            pipe.arrived.set()
            while pipe.held > MAX_HELD_BYTES:
                pipe.drained = trio.Event()
                await pipe.drained.wait()

    async def _write(self, pipe: _Pipe, sink: trio.SocketStream, a: str | None, b: str | None,
                     stat: LinkStats, done: trio.CancelScope) -> None:
        while True:
            if not pipe.queue:
                if pipe.eof:
                    done.cancel()
                    return
                pipe.arrived = trio.Event()
                await pipe.arrived.wait()
                continue
            at, data = pipe.queue[0]
            await trio.sleep_until(at)
            await self._until_open(a, b)
            try:
                await sink.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                done.cancel()
                return
            pipe.queue.popleft()
            pipe.held -= len(data)
            stat.bytes += len(data)
            pipe.drained.set()


@dataclass
class _Pipe:
    """One direction of a proxied connection: chunks read and not yet delivered."""

    queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    held: int = 0
    eof: bool = False
    last: float = 0.0  # when the last queued chunk is due
    arrived: trio.Event = field(default_factory=trio.Event)
    drained: trio.Event = field(default_factory=trio.Event)
