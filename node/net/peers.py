"""One node's connections: accepting and dialing within the peer set's slots and bans, one reader
task per connection dispatching frames by protocol id, and the decoder boundary.

A frame handler may raise `proto.errors.DecodeError` (or the transport may, for a malformed frame):
that peer's connection is closed and its reputation charged, and nothing else happens; every other
peer keeps being served. At most one connection per peer is kept (a second one is refused), so
nothing a peer sends is counted twice.

Inbound frames are budgeted per peer and lane (`node.net.lanes`, where every queue's bound and
policy is stated): a frame over its lane's budget is not handed to the handler; the lane's overflow
hook (or, by default, nothing) runs and the peer is charged `COST_FLOOD`, so a flooder ends banned.
A banned peer is disconnected and, while the ban lasts, refused at the handshake: the manager
installs its admission check on the host (`Host.admission`), so the banned key never gets a link
to send a frame on. Bans and refusals go to the ban listeners (the service's rate-limited log).

Any other exception out of a handler is a bug the peer's message found (ours, or one a hostile
peer aims at): it must not end the node. `handler_failed` is the one place such a failure goes,
whichever layer caught it (this reader, gossip validators, request handlers, direct handlers): it
is counted per protocol, the peer is charged `COST_HANDLER_ERROR`, the listeners (the service's
error log and metric) are told, and the node carries on with the next frame. The exception: a
`RuntimeError` raised while the handling task is being cancelled (its node is stopping) is the
node's own shutdown met half-way, a handler starting a task in a service nursery that has just
closed; it is counted apart (`failed_at_shutdown`) and nobody is charged.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import trio

from node.net.lanes import PEER_TABLE_SOFT_CAP, Budget, TokenBucket
from node.net.peerset import PeerSet
from node.net.transport import (
    Connection,
    ConnectionClosed,
    DialError,
    Direction,
    Host,
    TransportError,
)
from proto.errors import DecodeError, FrameTooLarge
from proto.network import (
    COST_FLOOD,
    COST_HANDLER_ERROR,
    COST_MALFORMED_MESSAGE,
    COST_OVERSIZED_FRAME,
    COST_UNEXPECTED_MESSAGE,
    PeerId,
    ReputationChange,
)

FrameHandler = Callable[[PeerId, bytes], Awaitable[None]]
OverflowHandler = Callable[[PeerId, bytes], Awaitable[None]]


@dataclass(frozen=True)
class HandlerFailure:
    """An unexpected exception out of the handler of a peer's message."""

    protocol: str  # the lane: "gossip", "direct", "request", "response" (what a service made
    # of a peer's answer), "frame" (the reader's backstop)
    kind: str  # what on that lane: a gossip topic, a message type, a request kind
    peer: PeerId
    error: Exception

    def describe(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


FailureListener = Callable[[HandlerFailure], None]
# (peer, change, banned afterwards): every reputation change applied, for metrics and logs.
ReportListener = Callable[[PeerId, ReputationChange, bool], None]


class BanListener(Protocol):
    def peer_banned(self, peer: PeerId, reason: str) -> None: ...

    def banned_peer_refused(self, peer: PeerId) -> None: ...

    def frame_over_budget(self, peer: PeerId, protocol: int) -> None: ...


class PeerListener(Protocol):
    def peer_connected(self, peer: PeerId) -> None: ...

    def peer_disconnected(self, peer: PeerId) -> None: ...


class PeerManager:
    def __init__(self, host: Host, peerset: PeerSet,
                 clock: Callable[[], float] | None = None, *,
                 budgets: dict[int, Budget] | None = None,
                 send_stall_s: float = math.inf) -> None:
        self.host = host
        self.peerset = peerset
        # Without a clock given, trio's: read from the run's clock itself once `run` starts
        # (what `trio.current_time` reads, two calls further; every frame received reads it).
        self._given_clock = clock is not None
        self._clock = clock or trio.current_time
        self.budgets = dict(budgets or {})
        self.send_stall_s = send_stall_s
        self._overflow: dict[int, OverflowHandler] = {}
        self.over_budget: Counter[int] = Counter()  # frames dropped, by lane
        self.refused_banned = 0  # handshakes refused to a banned key
        self.bans = 0
        self.stalled = 0  # peers disconnected for taking no frame within `send_stall_s`
        self._ban_listeners: list[BanListener] = []
        self._cut: set[PeerId] = set()  # banned while connected: no further frame is handled
        host.admission = self._admit
        self._handlers: dict[int, FrameHandler] = {}
        self._listeners: list[PeerListener] = []
        self._connections: dict[PeerId, Connection] = {}
        self._nursery: trio.Nursery | None = None
        self.refused = 0
        self.malformed = 0
        self.handler_errors: Counter[str] = Counter()  # by protocol
        self.failed_at_shutdown = 0  # handlers that met their node's shutdown (not the peer's)
        self._failure_listeners: list[FailureListener] = []
        self._report_listeners: list[ReportListener] = []
        # Frames and payload bytes this node sent, by (lane, what on it): a gossip topic, a direct
        # message type, a request kind. What `benchmarks/scale.py` breaks traffic down by.
        self.sent_frames: Counter[tuple[int, str]] = Counter()
        self.sent_bytes: Counter[tuple[int, str]] = Counter()

    @property
    def local_id(self) -> PeerId:
        return self.host.peer_id

    def now(self) -> float:
        return self._clock()

    def register(self, protocol: int, handler: FrameHandler) -> None:
        if protocol in self._handlers:
            raise ValueError(f"protocol {protocol} already has a handler")
        self._handlers[protocol] = handler

    def add_listener(self, listener: PeerListener) -> None:
        self._listeners.append(listener)

    def add_failure_listener(self, listener: FailureListener) -> None:
        self._failure_listeners.append(listener)

    def add_report_listener(self, listener: ReportListener) -> None:
        self._report_listeners.append(listener)

    def add_ban_listener(self, listener: BanListener) -> None:
        self._ban_listeners.append(listener)

    def on_overflow(self, protocol: int, handler: OverflowHandler) -> None:
        """What a frame over `protocol`'s budget gets instead of its handler (besides the cost):
        the request lane answers Busy."""
        self._overflow[protocol] = handler

    def _admit(self, peer: PeerId) -> bool:
        """The host's admission check, at the handshake: a banned key gets no link."""
        if not self.peerset.is_banned(peer, self._clock()):
            return True
        self.refused_banned += 1
        for listener in self._ban_listeners:
            with contextlib.suppress(Exception):
                listener.banned_peer_refused(peer)
        return False

    def _over_budget(self, peer: PeerId, protocol: int) -> None:
        """A frame of `peer`'s over its lane's budget: counted, told, charged."""
        self.over_budget[protocol] += 1
        for listener in self._ban_listeners:
            with contextlib.suppress(Exception):
                listener.frame_over_budget(peer, protocol)
        self.report(peer, COST_FLOOD)

    def handler_failed(self, protocol: str, kind: str, peer: PeerId, error: Exception) -> None:
        """A handler of `peer`'s message raised something other than `DecodeError`: count it,
        charge the peer, tell the listeners; the caller goes on with the next message."""
        if isinstance(error, RuntimeError) and _being_cancelled():
            self.failed_at_shutdown += 1
            return
        self.handler_errors[protocol] += 1
        failure = HandlerFailure(protocol, kind, peer, error)
        for listener in self._failure_listeners:
            # A broken logger must not turn one failure into a crash.
            with contextlib.suppress(Exception):
                listener(failure)
        self.report(peer, COST_HANDLER_ERROR)

    def connected_peers(self) -> list[PeerId]:
        return sorted(self._connections)

    def is_connected(self, peer: PeerId) -> bool:
        return peer in self._connections

    def send_may_stall(self, peer: PeerId) -> bool:
        """Whether a send to `peer` can wait on the peer (a TCP link; False if not connected)."""
        conn = self._connections.get(peer)
        return conn is not None and conn.send_may_stall

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept until the host goes down; reader tasks live in this task's nursery."""
        if not self._given_clock:
            self._clock = trio.lowlevel.current_clock().current_time
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                try:
                    conn = await self.host.accept()
                except ConnectionClosed:
                    break
                if self.peerset.try_reserve(conn.remote, Direction.INBOUND, self._clock()):
                    self._adopt(conn)
                else:
                    # Banned since its handshake, a second link, or out of slots.
                    self.refused += 1
                    await conn.aclose()

    async def connect(self, peer: PeerId) -> bool:
        """Dial `peer` unless already connected; False when banned, out of slots or unreachable."""
        if peer in self._connections:
            return True
        if not self.peerset.try_reserve(peer, Direction.OUTBOUND, self._clock()):
            return False
        try:
            conn = await self.host.dial(peer)
        except DialError:
            self.peerset.release(peer)
            return False
        if peer in self._connections:  # its own dial reached us first
            self.peerset.release(peer)
            await conn.aclose()
            return True
        self._adopt(conn)
        return True

    async def keep_dialled(self, conn: Connection) -> bool:
        """A link this node dialled by address alone (a bootnode given without its identity),
        kept as the peer's link; False (and closed) when banned or out of slots. Closing it and
        dialling again would reach the peer while it may still hold the first link: it refuses
        one link of two, and its services see the peer leave just after it came."""
        peer = conn.remote
        if peer in self._connections:
            await conn.aclose()
            return True
        if not self.peerset.try_reserve(peer, Direction.OUTBOUND, self._clock()):
            await conn.aclose()
            return False
        self._adopt(conn)
        return True

    def _adopt(self, conn: Connection) -> None:
        assert self._nursery is not None, "PeerManager.run must be started first"
        if len(self.peerset) > PEER_TABLE_SOFT_CAP:
            self.peerset.prune(self._clock())
        self._connections[conn.remote] = conn
        for listener in self._listeners:
            listener.peer_connected(conn.remote)
        self._nursery.start_soon(self._read, conn)

    async def _read(self, conn: Connection) -> None:
        peer = conn.remote
        # This link's token buckets, by lane (a peer has one link at a time, and a new link
        # starts with full buckets).
        buckets: dict[int, TokenBucket] = {}
        handlers, budgets, cut, clock = self._handlers, self.budgets, self._cut, self._clock
        try:
            async for protocol, body in conn:
                if peer in cut:
                    break  # banned: what it sent before the link closes is not read
                handler = handlers.get(protocol)
                if handler is None:
                    self.report(peer, COST_UNEXPECTED_MESSAGE)
                    continue
                budget = budgets.get(protocol)
                if budget is not None:
                    now = clock()
                    bucket = buckets.get(protocol)
                    if bucket is None:
                        bucket = buckets[protocol] = TokenBucket(budget, now)
                    if not bucket.take(now):
                        handler = self._overflow.get(protocol)
                        self._over_budget(peer, protocol)
                        if handler is None or conn.closed:
                            continue
                try:
                    await handler(peer, body)
                except DecodeError:
                    raise
                except Exception as exc:
                    # The layers above catch their own with more detail; this is the backstop.
                    self.handler_failed("frame", f"lane {protocol}", peer, exc)
        except FrameTooLarge:
            self.malformed += 1
            self.report(peer, COST_OVERSIZED_FRAME)
        except DecodeError:
            self.malformed += 1
            self.report(peer, COST_MALFORMED_MESSAGE)
        finally:
            await conn.aclose()
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        if self._connections.get(conn.remote) is not conn:
            return
        del self._connections[conn.remote]
        self._cut.discard(conn.remote)
        self.peerset.release(conn.remote)
        for listener in self._listeners:
            listener.peer_disconnected(conn.remote)

    async def send(self, peer: PeerId, protocol: int, body: bytes, what: str = "") -> bool:
        """Send one frame; False if not connected (or the connection just closed). `what` names
        the frame's content in the traffic counters (a topic, a message type, a request kind)."""
        conn = self._connections.get(peer)
        if conn is None:
            return False
        key = (protocol, what)
        self.sent_frames[key] += 1
        self.sent_bytes[key] += len(body)
        if not conn.send_may_stall:
            # No timer to arm: a cancel scope a frame is most of a simulated send's cost.
            try:
                await conn.send(protocol, body)
            except TransportError:
                return False
            return True
        try:
            with trio.move_on_after(self.send_stall_s) as stall:
                await conn.send(protocol, body)
        except TransportError:
            return False
        if stall.cancelled_caught:
            # It takes nothing: a frame cut short closed the link (the transport's rule), and
            # our tasks stop waiting on a peer that does not read.
            self.stalled += 1
            await conn.aclose()
            return False
        return True

    def report(self, peer: PeerId, change: ReputationChange) -> None:
        """Charge or reward `peer`; a ban disconnects it."""
        now = self._clock()
        was_banned = self.peerset.is_banned(peer, now)
        banned = self.peerset.report(peer, change, now)
        for listener in self._report_listeners:
            with contextlib.suppress(Exception):  # a broken logger must not fail the report
                listener(peer, change, banned)
        if banned:
            if not was_banned:
                self.bans += 1
                for ban_listener in self._ban_listeners:
                    with contextlib.suppress(Exception):
                        ban_listener.peer_banned(peer, change.reason)
            if peer in self._connections:
                self._cut.add(peer)
            self.disconnect_soon(peer)

    def disconnect_soon(self, peer: PeerId) -> None:
        conn = self._connections.get(peer)
        if conn is not None and self._nursery is not None:
            self._nursery.start_soon(conn.aclose)

    async def disconnect(self, peer: PeerId) -> None:
        conn = self._connections.get(peer)
        if conn is not None:
            await conn.aclose()


def _being_cancelled() -> bool:
    """Whether the calling task's cancel scope has been cancelled: the node it belongs to is
    stopping (trio delivers the cancellation only at the task's next checkpoint)."""
    try:
        return trio.current_effective_deadline() == -math.inf
    except RuntimeError:  # not inside trio
        return False
