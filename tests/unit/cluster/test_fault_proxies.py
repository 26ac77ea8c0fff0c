"""node/cluster/faults.py: the link state (who is cut off from whom, how badly each link is
degraded), the delivery schedule of an impaired link, and the proxies over real loopback sockets:
bytes pass unchanged and in order, the dialer is known by its source address, a partition holds
or resets what crosses it and only that, a heal delivers what was held."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trio

from node.cluster.faults import (
    MIN_RTO_S,
    NO_IMPAIRMENT,
    FaultProxies,
    Impairment,
    LinkFaults,
    delivery_time,
    node_address,
    proxy_address,
)

GUARD_S = 10  # a hung test fails instead of blocking the suite; never an expected duration
QUIET_S = 0.3  # how long a held link is watched for bytes that must not arrive


def test_a_chunk_is_delivered_in_order_and_within_its_latency_and_jitter() -> None:
    rng = random.Random(0)
    link = Impairment(latency_s=0.05, jitter_s=0.02)
    previous = 0.0
    for i in range(500):
        now = i * 0.001
        at = delivery_time(now, 100, link, rng, previous)
        assert at >= previous  # never before the chunk ahead of it
        assert at <= max(previous, now + 0.07)
        assert at >= now + 0.03 or at == previous
        previous = at
    assert delivery_time(1.0, 10, NO_IMPAIRMENT, rng, 0.0) == 1.0


def test_loss_stalls_a_chunk_for_retransmission_timeouts() -> None:
    rng = random.Random(1)
    lossy = Impairment(latency_s=0.01, loss=0.2)
    delays = [delivery_time(0.0, 1448, lossy, rng, 0.0) for _ in range(2000)]
    stalled = [d for d in delays if d > 0.01]
    assert 0.1 < len(stalled) / len(delays) < 0.3  # one segment: stalls with the loss rate
    rto = MIN_RTO_S + 0.02
    assert min(stalled) == pytest.approx(0.01 + rto)
    assert any(d == pytest.approx(0.01 + 3 * rto) for d in stalled)  # lost twice: backoff
    big = [delivery_time(0.0, 20 * 1448, lossy, rng, 0.0) for _ in range(500)]
    assert sum(d > 0.01 for d in big) / len(big) > 0.9  # 20 segments: almost always one lost


def test_a_partition_separates_sides_and_unknown_dialers_pass() -> None:
    faults = LinkFaults()
    assert not faults.blocked("a", "b")
    faults.partition([["a", "b"]])
    assert not faults.blocked("a", "b") and not faults.blocked("c", "d")
    assert faults.blocked("a", "c") and faults.blocked("d", "b")
    assert not faults.blocked(None, "a") and not faults.blocked("a", None)
    faults.partition([["a"], ["b"]])  # replaces the first; three sides now
    assert faults.blocked("a", "b") and faults.blocked("b", "c") and faults.blocked("a", "c")
    with pytest.raises(ValueError, match="two sides"):
        faults.partition([["a"], ["a"]])
    with pytest.raises(ValueError, match="mode"):
        faults.partition([["a"]], mode="drop")
    faults.heal()
    assert not faults.blocked("a", "b")


def test_a_link_gets_the_worst_of_its_ends() -> None:
    faults = LinkFaults()
    faults.degrade(["a"], Impairment(latency_s=0.1, loss=0.01))
    faults.degrade(["b"], Impairment(latency_s=0.05, jitter_s=0.02, loss=0.05))
    assert faults.impairment("a", "b") == Impairment(0.1, 0.02, 0.05)
    assert faults.impairment("a", "c") == Impairment(0.1, 0.0, 0.01)
    assert faults.impairment("c", "d") == NO_IMPAIRMENT
    assert faults.impairment(None, "a") == NO_IMPAIRMENT
    with pytest.raises(ValueError):
        Impairment(loss=1.0)
    with pytest.raises(ValueError):
        Impairment(latency_s=-1)


def test_addresses_are_loopback_and_distinct() -> None:
    assert node_address(0) == "127.77.0.1" and proxy_address(0) == "127.78.0.1"
    assert node_address(253) == "127.77.0.254"
    with pytest.raises(ValueError):
        node_address(254)


# -- the proxies over real sockets ---------------------------------------------------------------


@dataclass
class Net:
    """Nodes a and b behind their proxies; each node's upstream echoes what it receives."""

    proxies: FaultProxies
    public: dict[str, tuple[str, int]]

    async def dial(self, source: str, to: str) -> trio.SocketStream:
        """A connection from `source` (a node name, or an address) to node `to`'s proxy."""
        address = node_address(0 if source == "a" else 1) if source in ("a", "b") else source
        return await trio.open_tcp_stream(*self.public[to], local_address=address)


async def echo(stream: trio.SocketStream) -> None:
    async with stream:
        try:
            async for data in stream:
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass


@pytest.fixture
async def net(nursery: trio.Nursery) -> AsyncIterator[Net]:
    proxies = FaultProxies(seed=0)
    await proxies.start()
    public = {}
    for i, name in enumerate(["a", "b"]):
        listeners = await trio.open_tcp_listeners(0, host=node_address(i))
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, echo, listeners)
        bound = proxies.expose(name, node_address(i), (proxy_address(i), 0),
                               (node_address(i), port))
        public[name] = (proxy_address(i), bound)
    try:
        yield Net(proxies, public)
    finally:
        proxies.close()
        assert proxies.errors == []


async def receive(stream: trio.SocketStream, n: int) -> bytes:
    """`n` bytes, or fewer if the stream ends first."""
    got = b""
    with trio.fail_after(GUARD_S):
        while len(got) < n:
            chunk = await stream.receive_some()
            if not chunk:
                break
            got += chunk
    return got


async def round_trip(stream: trio.SocketStream, data: bytes) -> bytes:
    await stream.send_all(data)
    return await receive(stream, len(data))


async def nothing_within(stream: trio.SocketStream, seconds: float) -> bool:
    with trio.move_on_after(seconds):
        await stream.receive_some()
        return False
    return True


async def test_bytes_pass_unchanged_and_the_dialer_is_known(net: Net) -> None:
    stream = await net.dial("a", "b")
    payload = bytes(range(256)) * 4096  # 1 MiB, more than one chunk
    assert await round_trip(stream, payload) == payload
    stats = net.proxies.stats[("a", "b")]
    assert stats.connections == 1 and len(payload) <= stats.bytes <= 2 * len(payload)
    await stream.aclose()


async def test_jitter_and_loss_never_reorder_a_stream(net: Net) -> None:
    net.proxies.degrade(["a"], Impairment(latency_s=0.005, jitter_s=0.005, loss=0.01))
    stream = await net.dial("a", "b")
    payload = bytes(random.Random(2).randbytes(300_000))
    assert await round_trip(stream, payload) == payload
    await stream.aclose()


async def test_a_partition_holds_what_crosses_it_until_the_heal(net: Net) -> None:
    open_before = await net.dial("a", "b")
    assert await round_trip(open_before, b"before") == b"before"
    net.proxies.partition([["a"]])
    await open_before.send_all(b"held")
    assert await nothing_within(open_before, QUIET_S)
    dialed_during = await net.dial("a", "b")  # connects, answered only after the heal
    await dialed_during.send_all(b"late")
    assert await nothing_within(dialed_during, QUIET_S)
    outsider = await net.dial("127.0.0.1", "b")  # no node of the cluster: untouched
    assert await round_trip(outsider, b"outside") == b"outside"
    net.proxies.heal()
    assert await receive(open_before, 4) == b"held"
    assert await receive(dialed_during, 4) == b"late"
    assert net.proxies.stats[("a", "b")].held_dials == 1
    for s in (open_before, dialed_during, outsider):
        await s.aclose()


async def test_a_resetting_partition_closes_what_crosses_it(net: Net) -> None:
    crossing = await net.dial("a", "b")
    within = await net.dial("b", "b")
    assert await round_trip(crossing, b"x") == b"x"
    assert await round_trip(within, b"y") == b"y"
    net.proxies.partition([["a"]], mode="reset")
    with trio.fail_after(GUARD_S):
        assert await crossing.receive_some() == b""  # closed
        refused = await net.dial("a", "b")
        assert await refused.receive_some() == b""  # closed as soon as it connected
    assert await round_trip(within, b"still") == b"still"  # b to b is on one side
    net.proxies.heal()
    again = await net.dial("a", "b")
    assert await round_trip(again, b"back") == b"back"
    assert net.proxies.stats[("a", "b")].resets == 2
    for s in (within, refused, again):
        await s.aclose()
