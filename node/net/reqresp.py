"""Request/response over a node's connections.

All requests travel on one request lane as `RequestEnvelope(request_id, kind, payload)`; each kind
(chunk fetch, collation fetch, ...) is registered with its own size caps, timeout, response lane
and cap on concurrent inbound requests per peer. Responses come back as
`ResponseEnvelope(request_id, status, payload)` on the kind's response lane.

Rules enforced here so protocol handlers never see them:
- a request over its kind's cap, or for a kind we do not serve, costs the peer and is not served;
- beyond `max_inbound_per_peer` requests of one kind in flight from one peer, the excess is
  refused at once with `STATUS_BUSY` and counted, not charged (the requester's `RequestRefused`
  comes now instead of a timeout; an honest peer that retries can overlap itself);
- a request frame over the request lane's budget (`node.net.lanes`) is refused the same way, and
  the peer manager charges it `COST_FLOOD`;
- a response that matches no request we sent to that peer, or exceeds its cap, costs the peer;
  a late response to one we gave up on (timed out, or its caller cancelled it: a chunk fetched
  from several peers at once stops waiting for the others) is dropped without a charge, since an
  honest peer answers every request it accepted (the last `ABANDONED_REMEMBERED` per node);
- a request waits at most its timeout (trio time, so virtual under MockClock);
- an envelope that does not decode, or a handler that raises `DecodeError` on the payload, closes
  that peer's connection and costs reputation (the peer manager's decoder boundary);
- a handler that raises anything else is a handler failure (`PeerManager.handler_failed`: logged,
  counted, the peer charged): the request is refused and the node goes on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import msgspec
import trio

from node.net.peers import PeerManager
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.network import (
    COST_MALFORMED_MESSAGE,
    COST_OVERSIZED_FRAME,
    COST_OVERSIZED_RESPONSE,
    COST_UNEXPECTED_MESSAGE,
    NotConnected,
    PeerId,
    RequestRefused,
    RequestTimeout,
)
from proto.ports import RequestHandler
from proto.primitives import U64, Struct

STATUS_OK = 0
STATUS_REFUSED = 1
STATUS_BUSY = 2  # not served now: too many of this peer's requests in flight, or over budget

ABANDONED_REMEMBERED = 1024  # requests given up on whose late response is not charged


class RequestEnvelope(Struct, frozen=True):
    request_id: U64
    kind: Annotated[int, msgspec.Meta(ge=0, le=65_535)]
    payload: bytes


class ResponseEnvelope(Struct, frozen=True):
    request_id: U64
    status: Annotated[int, msgspec.Meta(ge=0, le=255)]
    payload: bytes


@dataclass(frozen=True)
class RequestKind:
    kind: int
    response_protocol: int
    max_request_bytes: int
    max_response_bytes: int
    timeout_s: float
    max_inbound_per_peer: int = 1


"""Serves one request payload; None refuses it. May raise DecodeError on a malformed payload."""


@dataclass
class ReqRespStats:
    served: int = 0
    refused: int = 0
    refused_busy: int = 0  # over the per-peer concurrency cap or the lane's budget
    oversize_requests: int = 0
    oversize_responses: int = 0
    unexpected_responses: int = 0
    late_responses: int = 0  # to a request we had given up on: dropped, not charged
    timeouts: int = 0
    malformed: int = 0


class _Reply:
    """Where a request's one answer goes (None: the link closed): an event and a slot cost
    less to make than a memory channel, once a request."""

    __slots__ = ("arrived", "response")

    def __init__(self) -> None:
        self.arrived = trio.Event()
        self.response: ResponseEnvelope | None = None

    def put(self, response: ResponseEnvelope | None) -> None:
        self.response = response
        self.arrived.set()


@dataclass
class _Pending:
    kind: RequestKind
    reply: _Reply


@dataclass
class _Served:
    kind: RequestKind
    handler: RequestHandler | None
    in_flight: dict[PeerId, int] = field(default_factory=dict)


class RequestResponse:
    def __init__(self, peers: PeerManager, request_protocol: int) -> None:
        self.peers = peers
        self.request_protocol = request_protocol
        self._kinds: dict[int, _Served] = {}
        self._response_lanes: set[int] = set()
        self._pending: dict[tuple[PeerId, int], _Pending] = {}
        # Requests given up on before their response came (timed out or cancelled), oldest first,
        # each with its response lane: a late answer is not the peer's fault.
        self._abandoned: OrderedDict[tuple[PeerId, int], int] = OrderedDict()
        self._next_id = 0
        self._nursery: trio.Nursery | None = None
        self._stopping = False
        self.stats = ReqRespStats()
        self.kind_names: dict[int, str] = {}  # for logs (the stack knows its kinds' names)
        peers.register(request_protocol, self._on_request)
        peers.on_overflow(request_protocol, self._refuse_busy)
        peers.add_listener(self)

    def register(self, kind: RequestKind, handler: RequestHandler | None = None) -> None:
        """Declare a request kind; with a handler this node also serves it."""
        if kind.kind in self._kinds:
            raise ValueError(f"request kind {kind.kind} already registered")
        if kind.response_protocol == self.request_protocol:
            raise ValueError("responses need their own lane")
        self._kinds[kind.kind] = _Served(kind, handler)
        if kind.response_protocol not in self._response_lanes:
            self._response_lanes.add(kind.response_protocol)
            self.peers.register(kind.response_protocol, self._response_handler(kind.response_protocol))

    def is_registered(self, kind: int) -> bool:
        return kind in self._kinds

    def handlers(self) -> dict[int, RequestHandler]:
        """Each served kind's handler (what a property test feeds directly)."""
        return {k: s.handler for k, s in self._kinds.items() if s.handler is not None}

    def kind_name(self, kind: int) -> str:
        return self.kind_names.get(kind, f"kind {kind}")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hosts the tasks serving inbound requests; must run before requests arrive."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._stopping = True  # the nursery takes no more: the node is shutting down

    # -- outbound ---------------------------------------------------------------------------

    async def request(self, peer: PeerId, kind: int, payload: bytes,
                      timeout_s: float | None = None) -> bytes:
        served = self._kinds[kind]
        spec = served.kind
        if len(payload) > spec.max_request_bytes:
            raise ValueError(f"request of {len(payload)} bytes exceeds cap {spec.max_request_bytes}")
        request_id = self._next_id
        self._next_id += 1
        reply = _Reply()
        self._pending[(peer, request_id)] = _Pending(spec, reply)
        try:
            body = encode(RequestEnvelope(request_id, kind, payload))
            if not await self.peers.send(peer, self.request_protocol, body, self.kind_name(kind)):
                # Never sent: no response to wait for. The link may have closed while sending, and
                # its closing already failed (and removed) what was pending on it.
                self._pending.pop((peer, request_id), None)
                raise NotConnected(f"not connected to {peer.hex()[:8]}")
            with trio.move_on_after(spec.timeout_s if timeout_s is None else timeout_s):
                await reply.arrived.wait()
                response = reply.response
                if response is None:
                    raise NotConnected(f"{peer.hex()[:8]} disconnected")
                if response.status == STATUS_BUSY:
                    raise RequestRefused(f"{peer.hex()[:8]} is busy (request kind {kind})")
                if response.status != STATUS_OK:
                    raise RequestRefused(f"{peer.hex()[:8]} refused request kind {kind}")
                return response.payload
            self.stats.timeouts += 1
            raise RequestTimeout(f"request kind {kind} to {peer.hex()[:8]} timed out")
        finally:
            if self._pending.pop((peer, request_id), None) is not None:
                self._abandon(peer, request_id, spec.response_protocol)

    def _abandon(self, peer: PeerId, request_id: int, lane: int) -> None:
        """Note a request sent to `peer` whose response we no longer wait for."""
        self._abandoned[(peer, request_id)] = lane
        while len(self._abandoned) > ABANDONED_REMEMBERED:
            self._abandoned.popitem(last=False)

    def _response_handler(self, lane: int) -> Callable[[PeerId, bytes], Awaitable[None]]:
        async def on_response(peer: PeerId, body: bytes) -> None:
            response = decode(body, ResponseEnvelope)
            key = (peer, response.request_id)
            pending = self._pending.get(key)
            if pending is None and self._abandoned.get(key) == lane:
                del self._abandoned[key]
                self.stats.late_responses += 1
                return
            if pending is None or pending.kind.response_protocol != lane:
                self.stats.unexpected_responses += 1
                self.peers.report(peer, COST_UNEXPECTED_MESSAGE)
                return
            del self._pending[(peer, response.request_id)]
            if len(response.payload) > pending.kind.max_response_bytes:
                self.stats.oversize_responses += 1
                self.peers.report(peer, COST_OVERSIZED_RESPONSE)
                response = ResponseEnvelope(response.request_id, STATUS_REFUSED, b"")
            pending.reply.put(response)

        return on_response

    def peer_connected(self, peer: PeerId) -> None:
        pass

    def peer_disconnected(self, peer: PeerId) -> None:
        # Requests to a peer that is gone fail now instead of waiting out their timeout.
        for key in [k for k in self._pending if k[0] == peer]:
            self._pending.pop(key).reply.put(None)
        for key in [k for k in self._abandoned if k[0] == peer]:
            del self._abandoned[key]  # its responses died with the link
        for served in self._kinds.values():
            served.in_flight.pop(peer, None)

    # -- inbound ----------------------------------------------------------------------------

    async def _on_request(self, peer: PeerId, body: bytes) -> None:
        envelope = decode(body, RequestEnvelope)
        served = self._kinds.get(envelope.kind)
        if served is None or served.handler is None:
            self.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        if len(envelope.payload) > served.kind.max_request_bytes:
            self.stats.oversize_requests += 1
            self.peers.report(peer, COST_OVERSIZED_FRAME)
            return
        busy = served.in_flight.get(peer, 0)
        if busy >= served.kind.max_inbound_per_peer:
            await self._answer_busy(peer, served, envelope)
            return
        assert self._nursery is not None, "RequestResponse.run must be started first"
        if self._stopping:
            return  # a request read while the node shuts down: nobody is left to serve it
        served.in_flight[peer] = busy + 1
        self._nursery.start_soon(self._serve, peer, served, envelope)

    async def _refuse_busy(self, peer: PeerId, body: bytes) -> None:
        """A request over the lane's budget: Busy, without a look at what it asks."""
        envelope = decode(body, RequestEnvelope)
        served = self._kinds.get(envelope.kind)
        if served is not None and served.handler is not None:
            await self._answer_busy(peer, served, envelope)

    async def _answer_busy(self, peer: PeerId, served: _Served, envelope: RequestEnvelope
                           ) -> None:
        self.stats.refused_busy += 1
        response = encode(ResponseEnvelope(envelope.request_id, STATUS_BUSY, b""))
        await self.peers.send(peer, served.kind.response_protocol, response,
                              self.kind_name(envelope.kind))

    async def _serve(self, peer: PeerId, served: _Served, envelope: RequestEnvelope) -> None:
        assert served.handler is not None
        try:
            try:
                result = await served.handler(peer, envelope.payload)
            except DecodeError:
                self.stats.malformed += 1
                self.peers.report(peer, COST_MALFORMED_MESSAGE)
                await self.peers.disconnect(peer)
                return
            except Exception as exc:
                self.peers.handler_failed("request", self.kind_name(envelope.kind), peer, exc)
                result = None  # refused: the requester need not wait out its timeout
            status, payload = STATUS_OK, result or b""
            if result is None:
                self.stats.refused += 1
                status = STATUS_REFUSED
            elif len(result) > served.kind.max_response_bytes:
                # Our own handler overstepped: refuse rather than send what the peer must reject.
                self.stats.oversize_responses += 1
                status, payload = STATUS_REFUSED, b""
            else:
                self.stats.served += 1
            response = encode(ResponseEnvelope(envelope.request_id, status, payload))
            await self.peers.send(peer, served.kind.response_protocol, response,
                                  self.kind_name(envelope.kind))
        finally:
            left = served.in_flight.get(peer, 0) - 1
            if left > 0:
                served.in_flight[peer] = left
            else:
                served.in_flight.pop(peer, None)


__all__ = [
    "STATUS_BUSY",
    "STATUS_OK",
    "STATUS_REFUSED",
    "ReqRespStats",
    "RequestEnvelope",
    "RequestHandler",
    "RequestKind",
    "RequestResponse",
    "ResponseEnvelope",
]
