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
from proto.messages import FRAME_MAX, ChunkRequest, Ping, encode_message
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


async def test_a_handler_meeting_its_own_nodes_shutdown_charges_nobody(
        autojump_clock: trio.testing.MockClock) -> None:
    """A direct handler that starts work in a service nursery which has just closed raises
    `RuntimeError`: while its own task is being cancelled (the node is stopping) that is the
    node's shutdown, counted apart and charged to nobody; outside a shutdown the same error is
    a handler failure like any other."""
    network = MemoryNetwork(random.Random(3), FRAME_MAX)
    stack = NetworkStack(network.add_host(blake2_256(b"stopping")), 6.0)
    sender = blake2_256(b"sender")
    failures: list[HandlerFailure] = []
    stack.peers.add_failure_listener(failures.append)
    async with trio.open_nursery() as closed:
        pass  # a service's nursery after its node began to stop: closed to new tasks

    async def start_work(_peer: PeerId, _msg: Ping) -> None:
        closed.start_soon(trio.sleep, 1)

    stack.on_direct(Ping, start_work)
    ping = encode_message(Ping(7))
    with trio.CancelScope() as stopping:
        stopping.cancel()
        await stack._on_direct(sender, ping)  # no checkpoint before the handler runs
    assert stack.peers.failed_at_shutdown == 1
    assert stack.handler_errors == 0 and failures == []
    assert stack.peers.peerset.reputation(sender, trio.current_time()) == 0

    await stack._on_direct(sender, ping)  # not stopping: a bug the message found
    assert stack.peers.failed_at_shutdown == 1
    assert stack.handler_errors == 1
    assert [type(f.error) for f in failures] == [RuntimeError]
    assert stack.peers.peerset.reputation(sender, trio.current_time()) < 0
