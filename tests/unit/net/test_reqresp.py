"""Request/response: answers, virtual-time timeouts, size caps, the per-peer concurrency cap, and
the decoder boundary (a malformed frame closes that peer's link; the node keeps serving others)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from net_fixtures import REQUEST, RESPONSE, Node, make_network

from node.net.memory import MemoryNetwork
from node.net.reqresp import RequestEnvelope, RequestKind, ResponseEnvelope
from proto.codec import decode, encode
from proto.errors import DecodeError
from proto.network import (
    COST_MALFORMED_MESSAGE,
    COST_OVERSIZED_FRAME,
    NotConnected,
    PeerId,
    RequestRefused,
    RequestTimeout,
)

ECHO = RequestKind(kind=1, response_protocol=RESPONSE, max_request_bytes=512,
                   max_response_bytes=4096, timeout_s=2.0, max_inbound_per_peer=2)
SLOW_SECONDS = 10.0


class Server:
    """Echoes; b"slow" sleeps first; b"refuse" refuses; b"big" answers over the cap; b"int"
    decodes the payload as an int, so anything else raises DecodeError."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle(self, peer: PeerId, payload: bytes) -> bytes | None:
        self.calls += 1
        if payload.startswith(b"slow"):
            await trio.sleep(SLOW_SECONDS)
        if payload == b"refuse":
            return None
        if payload == b"big":
            return b"x" * (ECHO.max_response_bytes + 1)
        if payload.startswith(b"int:"):
            decode(payload[4:], int)
        return b"echo:" + payload


async def _setup(net: MemoryNetwork, nursery: trio.Nursery, names: list[str]
                 ) -> tuple[Server, list[Node]]:
    await nursery.start(net.run)
    server = Server()
    nodes = [Node(net, name) for name in names]
    for i, node in enumerate(nodes):
        node.rr.register(ECHO, server.handle if i == 0 else None)
        await node.start(nursery)
    for node in nodes[1:]:
        assert await node.peers.connect(nodes[0].id)
    await trio.sleep(1)
    return server, nodes


async def test_request_gets_its_response(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, (srv, cli) = await _setup(make_network(31), nursery, ["srv", "cli"])
        assert await cli.rr.request(srv.id, ECHO.kind, b"hi") == b"echo:hi"
        with pytest.raises(RequestRefused):
            await cli.rr.request(srv.id, ECHO.kind, b"refuse")
        with pytest.raises(RequestRefused):  # the server will not send over the cap
            await cli.rr.request(srv.id, ECHO.kind, b"big")
        assert srv.rr.stats.oversize_responses == 1
        with pytest.raises(ValueError):
            await cli.rr.request(srv.id, ECHO.kind, b"x" * (ECHO.max_request_bytes + 1))
        nursery.cancel_scope.cancel()


async def test_request_times_out_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, (srv, cli) = await _setup(make_network(32), nursery, ["srv", "cli"])
        start = trio.current_time()
        with pytest.raises(RequestTimeout):
            await cli.rr.request(srv.id, ECHO.kind, b"slow")
        assert trio.current_time() - start == pytest.approx(ECHO.timeout_s)
        start = trio.current_time()
        with pytest.raises(RequestTimeout):
            await cli.rr.request(srv.id, ECHO.kind, b"slow", timeout_s=0.5)
        assert trio.current_time() - start == pytest.approx(0.5)
        assert cli.rr.stats.timeouts == 2
        # the late responses answer requests we gave up on: dropped, the honest server not
        # charged for being slow
        await trio.sleep(SLOW_SECONDS + 1)
        assert cli.rr.stats.late_responses == 2
        assert cli.rr.stats.unexpected_responses == 0
        assert cli.peerset.reputation(srv.id, trio.current_time()) >= 0
        nursery.cancel_scope.cancel()


async def test_a_response_to_a_cancelled_request_is_dropped_uncharged_once(
        autojump_clock: trio.testing.MockClock) -> None:
    """A caller that asks several peers and takes the first answer cancels the others (a chunk
    fetch): their answers come to no one waiting and are no fault of theirs. The same request id
    answered twice, or answered by a peer it was not sent to, still is."""
    async with trio.open_nursery() as nursery:
        _, (srv, cli, other) = await _setup(make_network(39), nursery, ["srv", "cli", "other"])
        with trio.move_on_after(1.0):
            await cli.rr.request(srv.id, ECHO.kind, b"slow")
        await trio.sleep(SLOW_SECONDS)
        assert cli.rr.stats.late_responses == 1
        assert cli.rr.stats.unexpected_responses == 0
        assert cli.peerset.reputation(srv.id, trio.current_time()) >= 0
        abandoned_id = cli.rr._next_id - 1
        await srv.peers.send(cli.id, RESPONSE, encode(ResponseEnvelope(abandoned_id, 0, b"again")))
        await trio.sleep(1)
        assert cli.rr.stats.unexpected_responses == 1
        assert cli.peerset.reputation(srv.id, trio.current_time()) < 0

        with trio.move_on_after(1.0):
            await cli.rr.request(srv.id, ECHO.kind, b"slow")
        assert await other.peers.connect(cli.id)
        foreign_id = cli.rr._next_id - 1  # sent to srv: `other` answering it is a forgery
        await other.peers.send(cli.id, RESPONSE, encode(ResponseEnvelope(foreign_id, 0, b"me")))
        await trio.sleep(1)
        assert cli.rr.stats.unexpected_responses == 2
        assert cli.peerset.reputation(other.id, trio.current_time()) < 0
        nursery.cancel_scope.cancel()


async def test_concurrent_inbound_requests_per_peer_are_capped(
        autojump_clock: trio.testing.MockClock) -> None:
    outcomes: list[str] = []
    async with trio.open_nursery() as nursery:
        server, (srv, cli, other) = await _setup(make_network(33), nursery, ["srv", "cli", "other"])

        async def one(node: Node, i: int) -> None:
            try:
                await node.rr.request(srv.id, ECHO.kind, b"slow-%d" % i, timeout_s=SLOW_SECONDS + 2)
                outcomes.append(f"{node.name}:ok")
            except RequestTimeout:
                outcomes.append(f"{node.name}:timeout")
            except RequestRefused as exc:
                outcomes.append(f"{node.name}:busy" if "busy" in str(exc) else f"{node.name}:no")

        async with trio.open_nursery() as burst:
            for i in range(10):
                burst.start_soon(one, cli, i)
            burst.start_soon(one, other, 99)
        assert outcomes.count("cli:ok") == ECHO.max_inbound_per_peer
        # the excess is told Busy at once, it does not wait out its timeout
        assert outcomes.count("cli:busy") == 10 - ECHO.max_inbound_per_peer
        assert outcomes.index("cli:busy") < outcomes.index("cli:ok")
        assert "other:ok" in outcomes  # one peer's flood does not take another's slot
        assert srv.rr.stats.refused_busy == 10 - ECHO.max_inbound_per_peer
        assert server.calls == ECHO.max_inbound_per_peer + 1
        # once the in-flight ones are done, the peer is served again
        assert await cli.rr.request(srv.id, ECHO.kind, b"again") == b"echo:again"
        nursery.cancel_scope.cancel()


async def test_malformed_frame_closes_that_peer_and_the_node_keeps_serving(
        autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, (srv, bad, good) = await _setup(make_network(34), nursery, ["srv", "bad", "good"])
        # an envelope that is not a RequestEnvelope
        await bad.peers.send(srv.id, REQUEST, b"\x93\xff\xff\xff")
        await trio.sleep(1)
        assert not srv.peers.is_connected(bad.id)
        now = trio.current_time()
        assert COST_MALFORMED_MESSAGE.value <= srv.peerset.reputation(bad.id, now) < 0
        assert srv.peers.malformed == 1
        assert await good.rr.request(srv.id, ECHO.kind, b"still") == b"echo:still"
        nursery.cancel_scope.cancel()


async def test_payload_decode_error_in_handler_closes_the_link(
        autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, (srv, bad, good) = await _setup(make_network(35), nursery, ["srv", "bad", "good"])
        assert await good.rr.request(srv.id, ECHO.kind, b"int:" + encode(5)) == b"echo:int:\x05"
        with pytest.raises(Exception) as caught:  # the link drops under the pending request
            await bad.rr.request(srv.id, ECHO.kind, b"int:not-msgpack\xc1")
        assert not isinstance(caught.value, DecodeError)
        assert not srv.peers.is_connected(bad.id)
        assert srv.rr.stats.malformed == 1
        assert srv.peerset.reputation(bad.id, trio.current_time()) < 0
        assert await good.rr.request(srv.id, ECHO.kind, b"ok") == b"echo:ok"
        nursery.cancel_scope.cancel()


async def test_oversize_prefix_on_the_wire_costs_major_and_closes(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(36)
    async with trio.open_nursery() as nursery:
        _, (srv, bad, good) = await _setup(net, nursery, ["srv", "bad", "good"])
        (conn,) = [c for c in net.hosts[bad.id].connections() if c.remote == srv.id]
        conn.send_raw((2**31).to_bytes(4, "big"))
        await trio.sleep(1)
        assert not srv.peers.is_connected(bad.id)
        # charged the major cost (a little decayed after a virtual second), more than a minor one
        reputation = srv.peerset.reputation(bad.id, trio.current_time())
        assert COST_OVERSIZED_FRAME.value <= reputation < COST_MALFORMED_MESSAGE.value
        assert await good.rr.request(srv.id, ECHO.kind, b"fine") == b"echo:fine"
        nursery.cancel_scope.cancel()


async def test_unsolicited_response_is_charged(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        _, (srv, cli) = await _setup(make_network(37), nursery, ["srv", "cli"])
        await srv.peers.send(cli.id, RESPONSE, encode(ResponseEnvelope(42, 0, b"surprise")))
        await trio.sleep(1)
        assert cli.rr.stats.unexpected_responses == 1
        assert cli.peerset.reputation(srv.id, trio.current_time()) < 0
        assert cli.peers.is_connected(srv.id)  # a minor cost, not a disconnect
        nursery.cancel_scope.cancel()


async def test_request_to_disconnected_peer_fails_fast(autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(38)
    async with trio.open_nursery() as nursery:
        _, (srv, cli) = await _setup(net, nursery, ["srv", "cli"])

        async def kill_soon() -> None:
            await trio.sleep(0.5)
            net.kill(srv.id)

        nursery.start_soon(kill_soon)
        start = trio.current_time()
        with pytest.raises(Exception, match="disconnected"):
            await cli.rr.request(srv.id, ECHO.kind, b"slow")
        assert trio.current_time() - start < ECHO.timeout_s
        nursery.cancel_scope.cancel()


async def test_link_closing_during_the_send_fails_the_request_cleanly(
        autojump_clock: trio.testing.MockClock) -> None:
    """The link closes while the request is being written: the close already failed what was
    pending on it, and the request raises NotConnected (it once raised KeyError, which ended a
    validator recovering chunks from a peer that went away)."""
    async with trio.open_nursery() as nursery:
        _, (srv, cli) = await _setup(make_network(39), nursery, ["srv", "cli"])

        async def send_while_the_link_closes(peer: PeerId, *_: object) -> bool:
            cli.rr.peer_disconnected(peer)
            return False

        cli.rr.peers.send = send_while_the_link_closes  # type: ignore[method-assign]
        with pytest.raises(NotConnected):
            await cli.rr.request(srv.id, ECHO.kind, b"hi")
        assert cli.rr._pending == {}
        nursery.cancel_scope.cancel()


def test_envelopes_are_strict() -> None:
    body = encode(RequestEnvelope(1, 1, b"x"))
    assert decode(body, RequestEnvelope) == RequestEnvelope(1, 1, b"x")
    with pytest.raises(DecodeError):
        decode(body + b"\x00", RequestEnvelope)
    with pytest.raises(DecodeError):
        decode(encode([-1, 1, b"x"]), RequestEnvelope)


async def test_a_request_read_while_shutting_down_is_dropped_quietly(
        autojump_clock: trio.testing.MockClock) -> None:
    """Once the serving nursery stops (the node is shutting down), a request its link still
    delivers is dropped: not a handler failure charged to the peer that sent it."""
    async with trio.open_nursery() as nursery:
        server, (srv, cli) = await _setup(make_network(37), nursery, ["srv", "cli"])
        with trio.CancelScope() as serving:
            serving.cancel()
            await srv.rr.run()  # a run that is cancelled at once: its nursery closes
        envelope = encode(RequestEnvelope(99, ECHO.kind, b"late"))
        await srv.rr._on_request(cli.id, envelope)
        assert server.calls == 0
        assert srv.peers.handler_errors["frame"] == 0
        nursery.cancel_scope.cancel()
