"""The validators' gossip grid (`node/net/grid.py`) and gossip's routes over it: every validator
reached within two hops with one or two copies, the same layout on every node, and over the
in-memory network each message delivered once with about 2n frames. Counts only."""

from __future__ import annotations

from collections import Counter

import pytest
import trio
import trio.testing
from net_fixtures import Node, make_network, peer_id

from node.net.gossip import Route
from node.net.grid import GridTopology, grid_seed
from proto.network import ACCEPT, PeerId

SEED = grid_seed(b"\x01" * 32, 0)


def _validators(n: int) -> list[PeerId]:
    return [peer_id(f"v{i}") for i in range(n)]


def _spread(grid: GridTopology, origin: PeerId) -> tuple[Counter[PeerId], int]:
    """Copies each validator gets of a message `origin` publishes, and the frames it took,
    following `route` hop by hop (each validator routes a message once, on its first copy)."""
    copies: Counter[PeerId] = Counter()
    frames = 0
    frontier = [origin]
    routed = {origin}
    hops = 0
    while frontier:
        hops += 1
        assert hops <= 3, "a message still travelling after two hops"
        nxt = []
        for node in frontier:
            for target in grid.route(node, origin):
                frames += 1
                copies[target] += 1
                if target not in routed:
                    routed.add(target)
                    nxt.append(target)
        frontier = nxt
    return copies, frames


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 10, 16, 20, 23, 50, 99, 100])
def test_every_validator_reached_within_two_hops_with_one_or_two_copies(n: int) -> None:
    validators = _validators(n)
    grid = GridTopology(validators, SEED)
    for origin in validators:
        copies, frames = _spread(grid, origin)
        assert set(copies) == set(validators) - {origin}
        assert all(1 <= c <= 2 for c in copies.values())
        assert frames <= 2 * (n - 1)
    if n >= 16:
        # Most validators get two copies (one through the originator's row, one its column).
        two = sum(c == 2 for o in validators for c in _spread(grid, o)[0].values())
        assert two >= 0.5 * n * (n - 1)


def test_neighbours_are_a_near_square_row_and_column() -> None:
    validators = _validators(100)
    grid = GridTopology(validators, SEED)
    assert grid.width == 10
    for v in validators:
        assert len(grid.row_neighbours(v)) == 9 and len(grid.column_neighbours(v)) == 9
        assert not set(grid.row_neighbours(v)) & set(grid.column_neighbours(v))
    assert grid.route(validators[0], peer_id("not a validator")) == ()
    assert grid.position(peer_id("not a validator")) is None


def test_layout_is_deterministic_and_depends_on_the_seed() -> None:
    validators = _validators(30)
    a = GridTopology(validators, SEED)
    b = GridTopology(list(reversed(validators)), SEED)  # the order it is handed in does not count
    assert all(a.position(v) == b.position(v) for v in validators)
    c = GridTopology(validators, grid_seed(b"\x01" * 32, 1))
    assert any(a.position(v) != c.position(v) for v in validators)
    with pytest.raises(ValueError):
        GridTopology(validators + validators[:1], SEED)


GRID_TOPIC, NAMED_TOPIC, RELAY_TOPIC = 40, 41, 42


async def test_grid_gossip_delivers_once_with_about_two_n_frames(
        autojump_clock: trio.testing.MockClock) -> None:
    """16 validators and a relay node outside the grid, all connected: a grid message reaches
    every validator once in at most 2n + `grid_extra` frames (a flood takes about 5n); a topic
    for relay nodes reaches the relay node too; a named message goes to the named peers only."""
    n = 16
    net = make_network(31)
    delivered: Counter[tuple[str, int, bytes]] = Counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        nodes = [Node(net, f"v{i}") for i in range(n)] + [Node(net, "relay")]
        validators = [node.id for node in nodes[:n]]
        for node in nodes:
            for topic in (GRID_TOPIC, NAMED_TOPIC, RELAY_TOPIC):
                node.gossip.subscribe(
                    topic, lambda src, data: ACCEPT,
                    lambda src, data, name=node.name, t=topic: delivered.update([(name, t, data)]))
            node.gossip.set_route(GRID_TOPIC, Route.GRID)
            node.gossip.set_route(RELAY_TOPIC, Route.GRID, relay_nodes=True)
            node.gossip.set_route(NAMED_TOPIC, Route.TARGETED)
            node.gossip.set_session(validators, b"\x02" * 32, 0)
            await node.start(nursery)
        for i, a in enumerate(nodes):
            for b in nodes[i + 1:]:
                assert await a.peers.connect(b.id)
        await trio.sleep(1)
        sent_before = net.stats.sent
        await nodes[3].gossip.publish(GRID_TOPIC, b"vote")
        await trio.sleep(5)
        grid_frames = net.stats.sent - sent_before
        await nodes[5].gossip.publish(RELAY_TOPIC, b"finality")
        await nodes[0].gossip.send_to(NAMED_TOPIC, b"bitfield", [nodes[7].id, nodes[9].id])
        with pytest.raises(ValueError):
            await nodes[0].gossip.publish(NAMED_TOPIC, b"no audience named")
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    names = [node.name for node in nodes]
    assert {name: delivered[(name, GRID_TOPIC, b"vote")] for name in names} == {
        name: int(name not in ("v3", "relay")) for name in names}
    assert grid_frames <= 2 * n + nodes[3].gossip.grid_extra
    assert {name: delivered[(name, RELAY_TOPIC, b"finality")] for name in names} == {
        name: int(name != "v5") for name in names}
    assert {name for name in names if delivered[(name, NAMED_TOPIC, b"bitfield")]} == {"v7", "v9"}
