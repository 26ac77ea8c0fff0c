"""In-memory transport: faults behave as configured and a run is a pure function of the seed.
Everything is counted in messages and virtual seconds (MockClock), never wall-clock time."""

from __future__ import annotations

import itertools
import math

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from net_fixtures import CAPS, GOSSIP, REQUEST, Node, make_network, peer_id

from node.net.memory import (
    LinkProfile,
    MemoryConnection,
    MemoryNetwork,
    seed_trio_scheduler,
    virtual_clock,
)
from node.net.transport import DialError, Frame, WireFrameDecoder, encode_wire_frame
from proto.errors import DecodeError, FrameTooLarge
from proto.network import ACCEPT

N_MESSAGES = 2000


async def _pair(nursery: trio.Nursery, net: MemoryNetwork) -> tuple[MemoryConnection, MemoryConnection]:
    await nursery.start(net.run)
    a, b = net.add_host(peer_id("a")), net.add_host(peer_id("b"))
    out = await a.dial(b.peer_id)
    inb = await b.accept()
    return out, inb


async def _send_and_collect(profile: LinkProfile, n: int, seed: int = 7,
                            spacing_s: float = 0.01) -> list[tuple[float, int]]:
    """Send n numbered frames a->b, one every `spacing_s`; return (latency, number) per arrival."""
    net = make_network(seed, profile)
    sent_at: dict[int, float] = {}
    arrivals: list[tuple[float, int]] = []
    async with trio.open_nursery() as nursery:
        out, inb = await _pair(nursery, net)

        async def receive() -> None:
            async for frame in inb:
                i = int.from_bytes(frame.body, "big")
                arrivals.append((trio.current_time() - sent_at[i], i))

        nursery.start_soon(receive)
        for i in range(n):
            sent_at[i] = trio.current_time()
            await out.send(GOSSIP, i.to_bytes(4, "big"))
            await trio.sleep(spacing_s)
        await trio.sleep(profile.latency_s + profile.jitter_s + profile.reorder_delay_s + 1)
        nursery.cancel_scope.cancel()
    return arrivals


async def test_latency_fixed_plus_jitter(autojump_clock: trio.testing.MockClock) -> None:
    arrivals = await _send_and_collect(LinkProfile(latency_s=0.1, jitter_s=0.05), 500,
                                       spacing_s=0.1)
    assert len(arrivals) == 500
    latencies = [lat for lat, _ in arrivals]
    assert min(latencies) >= 0.1 - 1e-9
    assert max(latencies) < 0.15 + 1e-9
    # jitter is spread over the window, not a constant
    assert max(latencies) - min(latencies) > 0.04


async def test_connection_is_fifo_despite_jitter(autojump_clock: trio.testing.MockClock) -> None:
    # bursts in one instant and sends closer together than the jitter both keep their order
    for spacing in (0.0, 0.01):
        arrivals = await _send_and_collect(LinkProfile(latency_s=0.2, jitter_s=0.5), 300,
                                           spacing_s=spacing)
        assert [i for _, i in arrivals] == list(range(300))


async def test_loss_rate(autojump_clock: trio.testing.MockClock) -> None:
    arrivals = await _send_and_collect(LinkProfile(latency_s=0.01, loss=0.3), N_MESSAGES)
    # binomial(2000, 0.7): mean 1400, sd ~20
    assert 1300 <= len(arrivals) <= 1500
    assert len({i for _, i in arrivals}) == len(arrivals)


async def test_duplication_rate(autojump_clock: trio.testing.MockClock) -> None:
    arrivals = await _send_and_collect(LinkProfile(latency_s=0.01, duplicate=0.2), N_MESSAGES)
    numbers = [i for _, i in arrivals]
    assert set(numbers) == set(range(N_MESSAGES))
    assert 2300 <= len(numbers) <= 2500  # 2000 + binomial(2000, 0.2)


async def test_reordering(autojump_clock: trio.testing.MockClock) -> None:
    profile = LinkProfile(latency_s=0.01, reorder=0.1, reorder_delay_s=0.05)
    arrivals = await _send_and_collect(profile, N_MESSAGES, spacing_s=0.01)
    numbers = [i for _, i in arrivals]
    assert sorted(numbers) == list(range(N_MESSAGES))
    held_back = sum(1 for lat, _ in arrivals if lat > 0.05)
    assert 120 <= held_back <= 280  # binomial(2000, 0.1)
    inversions = sum(1 for x, y in itertools.pairwise(numbers) if x > y)
    assert inversions > 100


async def test_partition_drops_and_refuses_dials_until_healed(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(1)
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        out, inb = await _pair(nursery, net)
        c = net.add_host(peer_id("c"))

        async def receive() -> None:
            async for frame in inb:
                got.append(frame.body)

        nursery.start_soon(receive)
        net.partition({out.local}, {inb.local, c.peer_id})
        for i in range(50):
            await out.send(GOSSIP, bytes([i]))
        with pytest.raises(DialError):
            await net.hosts[out.local].dial(c.peer_id)
        await trio.sleep(1)
        assert got == []
        assert net.stats.partitioned == 50
        net.heal()
        for i in range(50):
            await out.send(GOSSIP, bytes([i]))
        await trio.sleep(1)
        assert len(got) == 50
        conn = await net.hosts[out.local].dial(c.peer_id)
        assert not conn.closed
        nursery.cancel_scope.cancel()


async def test_kill_closes_connections_and_restart_accepts_again(
        autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(2)
    async with trio.open_nursery() as nursery:
        out, inb = await _pair(nursery, net)
        ended = trio.Event()

        async def receive() -> None:
            async for _ in out:
                pass
            ended.set()

        nursery.start_soon(receive)
        net.kill(inb.local)
        with trio.fail_after(1):
            await ended.wait()
        assert out.closed and inb.closed
        with pytest.raises(DialError):
            await net.hosts[out.local].dial(inb.local)
        fresh = net.restart(inb.local)
        again = await net.hosts[out.local].dial(inb.local)
        accepted = await fresh.accept()
        await again.send(GOSSIP, b"hello")
        frame = await accepted.__anext__()
        assert frame == Frame(GOSSIP, b"hello")
        nursery.cancel_scope.cancel()


async def test_close_reaches_peer_after_data_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(3, LinkProfile(latency_s=0.1, jitter_s=0.05))
    async with trio.open_nursery() as nursery:
        out, inb = await _pair(nursery, net)
        for i in range(20):
            await out.send(GOSSIP, bytes([i]))
        await out.aclose()
        got = [f.body[0] async for f in inb]
        assert sorted(got) == list(range(20))
        assert inb.closed
        nursery.cancel_scope.cancel()


async def test_oversize_prefix_is_raised_and_closes(autojump_clock: trio.testing.MockClock) -> None:
    net = make_network(4)
    async with trio.open_nursery() as nursery:
        out, inb = await _pair(nursery, net)
        out.send_raw((2**31).to_bytes(4, "big"))
        with pytest.raises(FrameTooLarge):
            await inb.__anext__()
        assert inb.closed
        await trio.sleep(1)
        assert out.closed  # the close travelled back
        nursery.cancel_scope.cancel()


# -- determinism -------------------------------------------------------------------------------

FAULTY = LinkProfile(latency_s=0.05, jitter_s=0.2, loss=0.05, duplicate=0.2, reorder=0.1)


def _gossip_run(seed: int, clock: trio.testing.MockClock | None = None) -> bytes:
    """Ten nodes on a ring with chords, flooding 20 messages from several origins under faults."""

    async def main() -> bytes:
        net = make_network(seed, FAULTY)
        async with trio.open_nursery() as nursery:
            await nursery.start(net.run)
            nodes = [Node(net, f"n{i}") for i in range(10)]
            for node in nodes:
                node.gossip.subscribe(0, lambda src, data: ACCEPT, lambda src, data: None)
                await node.start(nursery)
            for i, node in enumerate(nodes):
                await node.peers.connect(nodes[(i + 1) % 10].id)
                await node.peers.connect(nodes[(i + 3) % 10].id)
            for k in range(20):
                await nodes[k % 10].gossip.publish(0, b"msg%d" % k)
                await trio.sleep(0.1)
            await trio.sleep(10)
            nursery.cancel_scope.cancel()
        return net.trace_hash()

    # Two frames at one instant on one link keep their send order, and which of two forwarding
    # tasks runs first is trio's choice: seeded, as the simulator seeds it.
    seed_trio_scheduler(seed)
    return trio.run(main, clock=clock or trio.testing.MockClock(autojump_threshold=0))


def test_same_seed_same_trace_different_seed_different_trace() -> None:
    first = _gossip_run(11)
    assert _gossip_run(11) == first
    assert _gossip_run(11) == first
    assert _gossip_run(12) != first


def test_virtual_clock_runs_as_the_mock_clock_it_is() -> None:
    # The simulation's clock reads its virtual base instead of the real clock: every frame at
    # the same virtual instant, so the same trace, as under a plain MockClock.
    assert _gossip_run(11, virtual_clock()) == _gossip_run(11)

    async def sleeps() -> list[float]:
        times = [trio.current_time()]
        for delay in (0.5, 0.001, 3.0):
            await trio.sleep(delay)
            times.append(trio.current_time())
        return times

    assert trio.run(sleeps, clock=virtual_clock()) == trio.run(
        sleeps, clock=trio.testing.MockClock(autojump_threshold=0))


# -- framing -----------------------------------------------------------------------------------

@given(st.lists(st.tuples(st.sampled_from(sorted(CAPS)), st.binary(max_size=300)), max_size=8),
       st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20))
def test_wire_frames_survive_any_chunking(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(encode_wire_frame(p, b, CAPS) for p, b in frames)
    decoder = WireFrameDecoder(CAPS)
    out: list[Frame] = []
    pos, i = 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += decoder.feed(stream[pos:pos + step])
        pos, i = pos + step, i + 1
    assert out == [Frame(p, b) for p, b in frames]


def test_per_lane_cap_and_unknown_lane_are_decode_errors() -> None:
    big_request = encode_wire_frame(GOSSIP, b"x" * 2000, CAPS)
    relabelled = big_request[:4] + bytes([REQUEST]) + big_request[5:]  # 2000 B on the 1 KiB lane
    with pytest.raises(FrameTooLarge):
        WireFrameDecoder(CAPS).feed(relabelled)
    unknown = big_request[:4] + bytes([99]) + big_request[5:]
    with pytest.raises(DecodeError):
        WireFrameDecoder(CAPS).feed(unknown)
    with pytest.raises(FrameTooLarge):
        encode_wire_frame(REQUEST, b"x" * 1025, CAPS)
    assert math.isfinite(LinkProfile().latency_s)


def test_timers_due_at_one_instant_are_ordered_by_when_they_were_set() -> None:
    """With the simulation's scheduler seeded, trio breaks ties between timers due at one
    instant by the order they were set, not by the cancel scopes' memory addresses (which differ
    from process to process, so the same seed gave a different run under another hash seed)."""
    from trio._core import _run

    seed_trio_scheduler(0)
    deadlines = _run.Deadlines()
    scopes = [trio.CancelScope() for _ in range(50)]
    for scope in reversed(scopes):  # set in the reverse of their allocation
        deadlines.add(5.0, scope)
    order = [entry[2] for entry in sorted(deadlines._heap)]
    assert order == list(reversed(scopes))
    # And runnable tasks are picked the same way under pytest (where Hypothesis' plugin switches
    # trio's deterministic shuffle on) as from `asyncback sim` (where nothing would).
    assert _run._ALLOW_DETERMINISTIC_SCHEDULING is True
