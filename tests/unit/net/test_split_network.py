"""Two in-memory networks in step, each holding some of the nodes, bridged at windows shorter
than a link's latency (what `node/net/bridge.py` does between two processes): dials, frames and
closes cross, in order and on time. Both networks run in one trio run here, and a task hands
each one's outbound items to the other at every window's end."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from net_fixtures import GOSSIP, make_network, peer_id

from node.net.memory import DELIVERY_TICK_S, LinkProfile, MemoryNetwork
from node.net.transport import DialError

PROFILE = LinkProfile(latency_s=0.05, jitter_s=0.02)
WINDOW_S = PROFILE.latency_s - DELIVERY_TICK_S


async def _bridge(a: MemoryNetwork, b: MemoryNetwork) -> None:
    start = trio.current_time()
    k = 1
    while True:
        await trio.sleep_until(start + k * WINDOW_S)
        from_a, from_b = a.take_outbound(), b.take_outbound()
        a.put_inbound(from_b)
        b.put_inbound(from_a)
        k += 1


async def _two_halves(nursery: trio.Nursery, seed: int = 3) -> tuple[MemoryNetwork, MemoryNetwork]:
    left, right = make_network(seed, PROFILE), make_network(seed, PROFILE)
    await nursery.start(left.run)
    await nursery.start(right.run)
    left.add_host(peer_id("a"))
    right.add_host(peer_id("b"))
    left.set_remote({peer_id("b")})
    right.set_remote({peer_id("a")})
    nursery.start_soon(_bridge, left, right)
    return left, right


async def test_frames_cross_in_order_and_on_time(autojump_clock: trio.testing.MockClock) -> None:
    arrivals: list[tuple[float, int]] = []
    sent_at: dict[int, float] = {}
    async with trio.open_nursery() as nursery:
        left, right = await _two_halves(nursery)
        started = trio.current_time()
        out = await left.hosts[peer_id("a")].dial(peer_id("b"))
        inb = await right.hosts[peer_id("b")].accept()
        # two trips: the dial there, the answer back
        assert trio.current_time() - started >= 2 * PROFILE.latency_s - 1e-9
        assert (out.remote, inb.remote) == (peer_id("b"), peer_id("a"))

        async def receive() -> None:
            async for frame in inb:
                n = int.from_bytes(frame.body, "big")
                arrivals.append((trio.current_time() - sent_at[n], n))

        nursery.start_soon(receive)
        for n in range(300):
            sent_at[n] = trio.current_time()
            await out.send(GOSSIP, n.to_bytes(4, "big"))
            await trio.sleep(0.003)
        await inb.send(GOSSIP, b"back")
        reply = await out.__anext__()
        assert reply.body == b"back"
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [n for _, n in arrivals] == list(range(300))  # FIFO across the bridge
    latencies = [lat for lat, _ in arrivals]
    assert min(latencies) >= PROFILE.latency_s - 1e-9
    assert max(latencies) < PROFILE.latency_s + PROFILE.jitter_s + 0.01


async def test_close_and_kill_cross(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        left, right = await _two_halves(nursery)
        out = await left.hosts[peer_id("a")].dial(peer_id("b"))
        inb = await right.hosts[peer_id("b")].accept()
        await out.aclose()
        await trio.sleep(PROFILE.latency_s * 2)
        assert inb.closed
        out = await left.hosts[peer_id("a")].dial(peer_id("b"))
        inb = await right.hosts[peer_id("b")].accept()
        right.kill(peer_id("b"))
        await trio.sleep(PROFILE.latency_s * 2)
        assert out.closed
        nursery.cancel_scope.cancel()


async def test_dial_to_a_dead_or_banning_node_is_refused(
        autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        left, right = await _two_halves(nursery)
        b = right.hosts[peer_id("b")]
        b.admission = lambda _peer: False
        with pytest.raises(DialError, match="banned"):
            await left.hosts[peer_id("a")].dial(peer_id("b"))
        right.kill(peer_id("b"))
        with pytest.raises(DialError, match="unreachable"):
            await left.hosts[peer_id("a")].dial(peer_id("b"))
        nursery.cancel_scope.cancel()


async def test_a_frame_due_before_the_window_ends_is_refused(
        autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        left, _right = await _two_halves(nursery)
        await trio.sleep(1)
        with pytest.raises(RuntimeError, match="late"):
            left.put_inbound([(10, b"x", 1, b"y", b"late")])
        nursery.cancel_scope.cancel()


def test_bridge_exchanges_large_windows_both_ways_then_stops() -> None:
    """Both ends write a window larger than a socket's buffer before either reads: neither
    blocks the other. Then process 0 stops the run and gets the other's result."""
    import socket
    import threading

    from node.net.bridge import Bridge, BridgeStopped

    a, b = socket.socketpair()
    left, right = Bridge(a), Bridge(b)
    big_left = [(n, b"x" * 1000) for n in range(5000)]
    big_right = [(n, b"y" * 1000) for n in range(4000)]
    got: dict[str, object] = {}

    def other_side() -> None:
        got["right"], got["right_controls"] = right.exchange(big_right)
        try:
            right.exchange([])
        except BridgeStopped:
            right.send_result({"part": 1})

    thread = threading.Thread(target=other_side)
    thread.start()
    got["left"], controls = left.exchange(big_left, [("observed", 3)])
    assert left.stop() == {"part": 1}
    thread.join(timeout=10)
    assert got["left"] == big_right and got["right"] == big_left
    assert controls == [] and got["right_controls"] == [("observed", 3)]


def test_bridge_reports_the_other_sides_failure() -> None:
    import socket

    from node.net.bridge import Bridge, PeerProcessFailed

    a, b = socket.socketpair()
    Bridge(b).send_error("Traceback: it broke")
    with pytest.raises(PeerProcessFailed, match="it broke"):
        Bridge(a).exchange([])
    b.close()
    with pytest.raises(PeerProcessFailed, match="closed"):
        Bridge(a).exchange([])
