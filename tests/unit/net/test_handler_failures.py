"""No message ends a node: a gossip validator, a direct-message handler or a request handler that
raises something other than `DecodeError` is logged (protocol, kind, peer), counted, costs the
sender, and the node keeps serving that peer and the others. Virtual time, in-memory network."""

from __future__ import annotations

import random
from typing import Any

import trio
import trio.testing
from prometheus_client import CollectorRegistry, Counter

from node.net.memory import MemoryNetwork
from node.net.peers import HandlerFailure
from node.net.stack import NetworkStack
from proto.codec import encode
from proto.hashing import blake2_256
from proto.messages import FRAME_MAX, ChunkRequest, Ping
from proto.network import (
    ACCEPT,
    COST_HANDLER_ERROR,
    Kind,
    PeerId,
    RequestRefused,
    Topic,
    Verdict,
)

BOOM = b"boom"


class Victim:
    """A stack whose handlers raise on a payload/nonce that says so, and count what they see."""

    def __init__(self, network: MemoryNetwork) -> None:
        self.stack = NetworkStack(network.add_host(blake2_256(b"victim")), 6.0)
        self.failures: list[HandlerFailure] = []
        self.seen: list[str] = []
        self.stack.peers.add_failure_listener(self.failures.append)
        self.stack.gossip.subscribe(Topic.BLOCK, self._validate, lambda _s, _d: None)
        self.stack.on_direct(Ping, self._on_ping)
        self.stack.serve(Kind.CHUNK, self._serve_chunk)

    def _validate(self, _source: PeerId | None, data: bytes) -> Verdict:
        if data == BOOM:
            raise KeyError("tables[rp]")
        self.seen.append("gossip")
        return ACCEPT

    async def _on_ping(self, _peer: PeerId, msg: Ping) -> None:
        if msg.nonce == 13:
            raise AssertionError("state is None")
        self.seen.append("direct")

    async def _serve_chunk(self, _peer: PeerId, payload: bytes) -> bytes | None:
        if payload == encode(ChunkRequest(bytes(32), 13)):
            raise IndexError("list index out of range")
        self.seen.append("request")
        return b"chunk"


async def test_a_raising_handler_is_logged_counted_charged_and_the_node_goes_on(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork(random.Random(1), FRAME_MAX)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        victim = Victim(network)
        sender = NetworkStack(network.add_host(blake2_256(b"sender")), 6.0)
        await nursery.start(victim.stack.run)
        await nursery.start(sender.run)
        assert await sender.peers.connect(victim.stack.peer_id)
        await trio.sleep(1)

        await sender.gossip.publish(Topic.BLOCK, BOOM)
        await sender.send_direct(victim.stack.peer_id, Ping(13))
        try:
            await sender.request(victim.stack.peer_id, Kind.CHUNK, ChunkRequest(bytes(32), 13))
            raise AssertionError("a failed handler must refuse the request")
        except RequestRefused:
            pass  # refused at once: the requester does not wait out its timeout
        # The same connection still carries good messages of every kind.
        await sender.gossip.publish(Topic.BLOCK, b"fine")
        await sender.send_direct(victim.stack.peer_id, Ping(1))
        assert await sender.request(victim.stack.peer_id, Kind.CHUNK,
                                    ChunkRequest(bytes(32), 1)) == b"chunk"
        await trio.sleep(1)
        assert victim.stack.peers.is_connected(sender.peer_id)
        nursery.cancel_scope.cancel()

    assert sorted(victim.seen) == ["direct", "gossip", "request"]
    assert dict(victim.stack.peers.handler_errors) == {"gossip": 1, "direct": 1, "request": 1}
    assert victim.stack.handler_errors == 3
    assert sorted((f.protocol, f.kind, type(f.error).__name__) for f in victim.failures) == [
        ("direct", "Ping", "AssertionError"), ("gossip", "block", "KeyError"),
        ("request", "chunk", "IndexError")]
    assert all(f.peer == sender.peer_id for f in victim.failures)
    reputation = victim.stack.peers.peerset.reputation(sender.peer_id, trio.current_time())
    assert reputation <= 3 * COST_HANDLER_ERROR.value * 0.9  # charged three times (some decay)


async def test_handler_failures_reach_the_error_log_and_the_metric(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork(random.Random(2), FRAME_MAX)
    lines: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def error(self, event: str, **kw: Any) -> None:
            lines.append((event, kw))

    registry = CollectorRegistry()
    counter = Counter("handler_errors_total", "test", ["protocol"], registry=registry)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        victim = Victim(network)
        victim.stack.log_handler_failures(Log(), "victim", counter)
        sender = NetworkStack(network.add_host(blake2_256(b"sender")), 6.0)
        await nursery.start(victim.stack.run)
        await nursery.start(sender.run)
        assert await sender.peers.connect(victim.stack.peer_id)
        await trio.sleep(1)
        await sender.gossip.publish(Topic.BLOCK, BOOM)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert registry.get_sample_value("handler_errors_total", {"protocol": "gossip"}) == 1
    [(event, kw)] = lines
    assert event == "message handler failed"
    assert kw["protocol"] == "gossip" and kw["kind"] == "block" and kw["node"] == "victim"
    assert kw["peer"] == "0x" + sender.peer_id.hex()[:16]
    assert kw["error"] == "KeyError: 'tables[rp]'"
