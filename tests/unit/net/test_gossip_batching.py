"""Batched gossip: what a node sends on a batched topic within one window goes to each peer as
one frame, every message still reaches every node once, and a batch cannot carry more than the
message budget or another batch. Counts frames and messages, virtual seconds only."""

from __future__ import annotations

from collections import Counter

import trio
import trio.testing
from net_fixtures import GOSSIP, Node, make_network

from node.net.gossip import (
    BATCH_TOPIC,
    MAX_BATCH,
    MAX_OUTBOX,
    GossipEnvelope,
    Route,
    batch_frames,
)
from node.net.grid import GridTopology
from node.net.lanes import Budget
from node.net.memory import MemoryNetwork
from proto.codec import decode, encode
from proto.messages import FRAME_MAX, Protocol
from proto.network import ACCEPT, COST_FLOOD, COST_MALFORMED_MESSAGE, PeerId, Verdict

TOPIC = 7
WINDOW_S = 0.05


def _frames(node: Node) -> int:
    return sum(n for (lane, _), n in node.peers.sent_frames.items() if lane == GOSSIP)


async def _grid_network(net: MemoryNetwork, nursery: trio.Nursery, n: int, *, batched: bool,
                        log: Counter[tuple[str, bytes]]) -> list[Node]:
    await nursery.start(net.run)
    nodes = [Node(net, f"v{i}") for i in range(n)]
    grid = GridTopology([node.id for node in nodes], b"seed")
    for node in nodes:
        await node.start(nursery)
        if batched:
            await nursery.start(node.gossip.run_batching, WINDOW_S)
        node.gossip.set_route(TOPIC, Route.GRID, batched=True)
        node.gossip.set_grid(grid)

        def deliver(_source: PeerId | None, data: bytes, name: str = node.name) -> None:
            log[(name, data)] += 1

        node.gossip.subscribe(TOPIC, lambda _s, _d: ACCEPT, deliver)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert await a.peers.connect(b.id)
    await trio.sleep(1)
    return nodes


async def _burst(nodes: list[Node]) -> list[tuple[str, bytes]]:
    """Each node publishes three messages at once (a tick's assignments, say)."""
    sent = []
    for node in nodes:
        for k in range(3):
            data = f"{node.name}-{k}".encode()
            await node.gossip.publish(TOPIC, data)
            sent.append((node.name, data))
    return sent


async def _run(batched: bool
               ) -> tuple[list[Node], Counter[tuple[str, bytes]], list[tuple[str, bytes]]]:
    net = make_network(31)
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        nodes = await _grid_network(net, nursery, 16, batched=batched, log=log)
        sent = await _burst(nodes)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    return nodes, log, sent


async def test_batched_messages_reach_everyone_once_in_fewer_frames(
        autojump_clock: trio.testing.MockClock) -> None:
    plain_nodes, plain_log, sent = await _run(batched=False)
    nodes, log, _ = await _run(batched=True)
    for origin, data in sent:
        for node in nodes:
            assert log[(node.name, data)] == (0 if node.name == origin else 1), (node.name, data)
            assert plain_log[(node.name, data)] == log[(node.name, data)]
    plain = sum(_frames(node) for node in plain_nodes)
    batched = sum(_frames(node) for node in nodes)
    messages = sum(sum(node.gossip.sent_messages.values()) for node in nodes)
    # The same messages went to the same peers; batched, each peer pair shares frames: on a
    # 4×4 grid every node sends to 6 neighbours (+2 random) in the first window and forwards
    # along one dimension in the second, so frames are bounded by peers × windows, not messages.
    assert messages == sum(sum(node.gossip.sent_messages.values()) for node in plain_nodes)
    assert plain == messages
    assert batched * 3 <= plain, (batched, plain)
    assert sum(node.peers.sent_frames[(GOSSIP, "batch")] for node in nodes) > 0


def test_batch_frames_respect_the_item_and_byte_caps() -> None:
    one = encode(GossipEnvelope(TOPIC, b"x", b"o"))
    assert batch_frames([one]) == [one]  # alone: sent as itself
    frames = batch_frames([one] * (MAX_BATCH + 1))
    assert len(frames) == 2
    first = decode(frames[0], GossipEnvelope)
    assert first.topic == BATCH_TOPIC
    assert decode(first.data, list[GossipEnvelope]) == [GossipEnvelope(TOPIC, b"x", b"o")] * MAX_BATCH
    assert frames[1] == one
    big = encode(GossipEnvelope(TOPIC, b"y" * 40_000, b"o"))
    frames = batch_frames([big] * 7)
    assert all(len(f) <= FRAME_MAX[Protocol.GOSSIP] for f in frames)
    items = [item for f in frames for item in
             (decode(decode(f, GossipEnvelope).data, list[GossipEnvelope])
              if decode(f, GossipEnvelope).topic == BATCH_TOPIC else [decode(f, GossipEnvelope)])]
    assert len(items) == 7


async def _pair(nursery: trio.Nursery, log: Counter[tuple[str, bytes]],
                budget: Budget | None = None) -> tuple[Node, Node]:
    net = make_network(32)
    await nursery.start(net.run)
    a, b = Node(net, "a"), Node(net, "b")
    for node in (a, b):
        await node.start(nursery)

        def deliver(_source: PeerId | None, data: bytes, name: str = node.name) -> None:
            log[(name, data)] += 1

        def validate(_source: PeerId | None, _data: bytes) -> Verdict:
            return ACCEPT

        node.gossip.subscribe(TOPIC, validate, deliver)
    b.gossip.message_budget = budget
    assert await a.peers.connect(b.id)
    await trio.sleep(1)
    return a, b


async def test_a_batch_inside_a_batch_closes_the_link(
        autojump_clock: trio.testing.MockClock) -> None:
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        a, b = await _pair(nursery, log)
        inner = batch_frames([encode(GossipEnvelope(TOPIC, b"m%d" % i)) for i in range(2)])[0]
        nested = batch_frames([inner, encode(GossipEnvelope(TOPIC, b"m9"))])[0]
        await a.peers.send(b.id, GOSSIP, nested)
        await trio.sleep(2)
        assert not b.peers.is_connected(a.id)
        assert b.peerset.reputation(a.id, trio.current_time()) < COST_MALFORMED_MESSAGE.value / 2
        assert log[("b", b"m9")] == 0  # nothing of a malformed batch is handled
        nursery.cancel_scope.cancel()


async def test_envelopes_over_the_message_budget_are_dropped_and_charged(
        autojump_clock: trio.testing.MockClock) -> None:
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        a, b = await _pair(nursery, log, Budget(rate=1.0, burst=10))
        frame = batch_frames([encode(GossipEnvelope(TOPIC, b"m%d" % i)) for i in range(25)])[0]
        await a.peers.send(b.id, GOSSIP, frame)  # one frame: inside the lane's frame budget
        await trio.sleep(0.5)
        delivered = sum(1 for (name, _), n in log.items() if name == "b" and n)
        assert delivered == 10
        assert b.gossip.stats.over_budget == 15
        assert b.peerset.reputation(a.id, trio.current_time()) < 14 * COST_FLOOD.value
        nursery.cancel_scope.cancel()


async def test_a_peer_that_stops_reading_holds_up_only_its_own_batches(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(33)
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        nodes = await _grid_network(net, nursery, 4, batched=True, log=log)
        a, stuck = nodes[0], nodes[1]
        real_send = a.peers.send

        async def send(peer: PeerId, protocol: int, body: bytes, what: str = "") -> bool:
            if peer == stuck.id:
                await trio.sleep_forever()  # a TCP peer whose window never opens
            return await real_send(peer, protocol, body, what)

        a.peers.send = send  # type: ignore[method-assign]
        a.peers.send_may_stall = lambda _peer: True  # type: ignore[method-assign]
        for k in range(3):
            await a.gossip.publish(TOPIC, b"m%d" % k)
            await trio.sleep(1)
        for node in nodes[2:]:
            assert all(log[(node.name, b"m%d" % k)] == 1 for k in range(3)), node.name
        # What waits for the stuck peer stays bounded.
        for k in range(MAX_OUTBOX + 10):
            await a.gossip.publish(TOPIC, b"x%d" % k)
        assert len(a.gossip._outbox[stuck.id]) <= MAX_OUTBOX
        nursery.cancel_scope.cancel()
