"""Gossip over the in-memory network: exactly-once delivery despite duplication, validation verdicts
deciding propagation and reputation, bounded seen-cache. Counts messages, virtual seconds only."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import trio
import trio.testing
from net_fixtures import GOSSIP, Node, make_network

from node.net.gossip import GossipEnvelope, SeenCache
from node.net.memory import LinkProfile, MemoryNetwork
from proto.codec import decode, encode
from proto.network import (
    ACCEPT,
    COST_MAJOR,
    COST_MALFORMED_MESSAGE,
    IGNORE,
    MALICIOUS,
    PeerId,
    Verdict,
    reject,
)

TOPIC = 7


def _recorder(node: Node, log: Counter[tuple[str, bytes]],
              verdict_of: Callable[[bytes], Verdict] | None = None) -> None:
    def validate(source: PeerId | None, data: bytes) -> Verdict:
        return ACCEPT if verdict_of is None else verdict_of(data)

    def deliver(source: PeerId | None, data: bytes) -> None:
        log[(node.name, data)] += 1

    node.gossip.subscribe(TOPIC, validate, deliver)


async def _start(net: MemoryNetwork, nursery: trio.Nursery, names: list[str]) -> list[Node]:
    await nursery.start(net.run)
    nodes = [Node(net, name) for name in names]
    for node in nodes:
        await node.start(nursery)
    return nodes


async def test_gossip_reaches_every_node_exactly_once_despite_duplication(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(21, LinkProfile(latency_s=0.05, jitter_s=0.3, duplicate=0.3, reorder=0.1))
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        nodes = await _start(net, nursery, [f"n{i}" for i in range(10)])
        for node in nodes:
            _recorder(node, log)
        # a random connected graph: a spanning path plus 8 random chords
        rng = random.Random(3)
        order = list(range(10))
        rng.shuffle(order)
        edges = {tuple(sorted((order[i], order[i + 1]))) for i in range(9)}
        while len(edges) < 17:
            a, b = rng.sample(range(10), 2)
            edges.add(tuple(sorted((a, b))))
        for a, b in sorted(edges):
            assert await nodes[a].peers.connect(nodes[b].id)
        await trio.sleep(1)
        messages = [b"block-%d" % k for k in range(5)]
        for k, msg in enumerate(messages):
            await nodes[(3 * k) % 10].gossip.publish(TOPIC, msg)
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    for k, msg in enumerate(messages):
        origin = nodes[(3 * k) % 10].name
        assert {node.name: log[(node.name, msg)] for node in nodes} == {
            node.name: 0 if node.name == origin else 1 for node in nodes}
    assert net.stats.duplicated > 0
    assert sum(node.gossip.stats.duplicates for node in nodes) > 0


async def test_rejected_message_costs_reputation_and_stops_propagation(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(22)
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        a, b, c = await _start(net, nursery, ["a", "b", "c"])
        _recorder(a, log)
        _recorder(b, log, lambda data: reject(COST_MAJOR) if data.startswith(b"bad") else ACCEPT)
        _recorder(c, log)
        assert await a.peers.connect(b.id)
        assert await b.peers.connect(c.id)
        await trio.sleep(1)
        await a.gossip.publish(TOPIC, b"bad-1")
        await a.gossip.publish(TOPIC, b"good-1")
        await trio.sleep(5)
        assert log[("b", b"bad-1")] == 0 and log[("c", b"bad-1")] == 0
        assert log[("b", b"good-1")] == 1 and log[("c", b"good-1")] == 1
        assert b.gossip.stats.rejected == 1
        assert b.peerset.reputation(a.id, trio.current_time()) < 0
        assert b.peerset.reputation(a.id, trio.current_time()) >= COST_MAJOR.value
        assert c.peerset.reputation(b.id, trio.current_time()) == 0
        assert b.peers.is_connected(a.id)  # a major cost alone does not ban
        nursery.cancel_scope.cancel()


async def test_ignored_message_neither_costs_nor_propagates(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(23)
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        a, b, c = await _start(net, nursery, ["a", "b", "c"])
        _recorder(a, log)
        _recorder(b, log, lambda data: IGNORE)
        _recorder(c, log)
        await a.peers.connect(b.id)
        await b.peers.connect(c.id)
        await trio.sleep(1)
        await a.gossip.publish(TOPIC, b"early")
        await trio.sleep(5)
        assert log[("b", b"early")] == 0 and log[("c", b"early")] == 0
        assert b.gossip.stats.ignored == 1
        assert b.peerset.reputation(a.id, trio.current_time()) == 0
        nursery.cancel_scope.cancel()


async def test_malicious_message_bans_and_disconnects_the_source(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(24)
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        a, b = await _start(net, nursery, ["a", "b"])
        _recorder(a, log)
        _recorder(b, log, lambda data: reject(MALICIOUS))
        await a.peers.connect(b.id)
        await trio.sleep(1)
        await a.gossip.publish(TOPIC, b"forged")
        await trio.sleep(2)
        assert b.peerset.is_banned(a.id, trio.current_time())
        assert not b.peers.is_connected(a.id)
        assert not a.peers.is_connected(b.id)  # the close reached a
        # a redial is refused while banned, at the handshake: a gets no link at all
        assert not await a.peers.connect(b.id)
        await trio.sleep(2)
        assert not b.peers.is_connected(a.id)
        assert b.peers.refused_banned == 1 and b.peers.bans == 1
        nursery.cancel_scope.cancel()


async def test_undecodable_gossip_closes_that_link_only(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(25)
    log: Counter[tuple[str, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        a, b, c = await _start(net, nursery, ["a", "b", "c"])
        for node in (a, b, c):
            _recorder(node, log)
        await a.peers.connect(b.id)
        await c.peers.connect(b.id)
        await trio.sleep(1)
        await a.peers.send(b.id, GOSSIP, b"\xc1garbage")
        await trio.sleep(2)
        assert not b.peers.is_connected(a.id)
        assert b.peerset.reputation(a.id, trio.current_time()) < 0
        assert b.peerset.reputation(a.id, trio.current_time()) >= COST_MALFORMED_MESSAGE.value
        await c.gossip.publish(TOPIC, b"still-works")
        await trio.sleep(2)
        assert log[("b", b"still-works")] == 1
        nursery.cancel_scope.cancel()


def test_seen_cache_dedups_expires_and_stays_bounded() -> None:
    cache = SeenCache(capacity=3, ttl_s=10.0)
    assert not cache.check_and_add(b"a", 0.0)
    assert cache.check_and_add(b"a", 5.0)
    assert not cache.check_and_add(b"a", 10.5)  # expired, seen afresh
    for key in (b"b", b"c", b"d", b"e"):
        cache.check_and_add(key, 11.0)
    assert len(cache) == 3
    assert not cache.check_and_add(b"b", 11.0)  # evicted as the oldest


def test_seen_cache_forgets_expired_ids_when_others_are_added() -> None:
    cache = SeenCache(capacity=100, ttl_s=10.0)
    for i, key in enumerate((b"a", b"b", b"c")):
        cache.check_and_add(key, float(i))
    assert cache.check_and_add(b"c", 9.0)  # a duplicate expires nothing
    assert len(cache) == 3
    cache.check_and_add(b"d", 11.5)  # a and b are past their ten seconds
    assert len(cache) == 2
    cache.check_and_add(b"e", 30.0)
    assert len(cache) == 1


def test_envelope_encoding_is_canonical() -> None:
    assert encode(GossipEnvelope(1, b"x", b"o")) == b"\x93\x01\xc4\x01x\xc4\x01o"
    # An envelope without an origin (an older sender, a probe) still decodes: nothing to route by.
    assert decode(b"\x92\x01\xc4\x01x", GossipEnvelope) == GossipEnvelope(1, b"x", b"")
