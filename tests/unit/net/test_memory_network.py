"""The in-memory network in virtual time: latency, loss, duplication, partitions and kills behave
as configured, and a run is a function of its seed."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from node.net.memory import LinkProfile, MemoryNetwork
from node.net.transport import ConnectionClosed

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


async def exchange(seed: int, profile: LinkProfile, n: int = 200) -> tuple[list, list[bytes]]:
    net = MemoryNetwork(random.Random(seed), profile)
    start = trio.current_time()
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        hb = net.host(B)
        conn = await net.host(A).dial(B)
        inbound = await hb.accept()

        async def reader() -> None:
            while True:
                got.append(await inbound.receive())

        nursery.start_soon(reader)
        for i in range(n):
            await conn.send(i.to_bytes(2, "big"))
            await trio.sleep(0.01)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    return [(round(e.at - start, 6), e.event) for e in net.trace], got


async def test_latency_is_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    net = MemoryNetwork(random.Random(1), LinkProfile(latency_ms=250))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        hb = net.host(B)
        conn = await net.host(A).dial(B)
        inbound = await hb.accept()
        start = trio.current_time()
        await conn.send(b"hello")
        assert await inbound.receive() == b"hello"
        assert trio.current_time() - start == pytest.approx(0.25)
        nursery.cancel_scope.cancel()


async def test_same_seed_same_trace(autojump_clock: trio.testing.MockClock) -> None:
    profile = LinkProfile(latency_ms=20, jitter_ms=30, loss=0.1, duplicate=0.1)
    t1, g1 = await exchange(7, profile)
    t2, g2 = await exchange(7, profile)
    t3, g3 = await exchange(8, profile)
    assert t1 == t2 and g1 == g2
    assert g1 != g3 and t1 != t3


async def test_loss_duplication_and_reordering(autojump_clock: trio.testing.MockClock) -> None:
    _, lossy = await exchange(3, LinkProfile(loss=0.2), n=500)
    assert 330 <= len(lossy) <= 470  # ~400 expected
    _, dup = await exchange(3, LinkProfile(duplicate=0.1), n=500)
    assert 520 <= len(dup) <= 580 and len(set(dup)) == 500
    _, jittered = await exchange(3, LinkProfile(latency_ms=5, jitter_ms=100), n=200)
    assert sorted(jittered) == [i.to_bytes(2, "big") for i in range(200)]
    assert jittered != sorted(jittered)  # jitter reorders
    _, clean = await exchange(3, LinkProfile(), n=200)
    assert clean == [i.to_bytes(2, "big") for i in range(200)]


async def test_partition_and_kill(autojump_clock: trio.testing.MockClock) -> None:
    net = MemoryNetwork(random.Random(1))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        hb = net.host(B)
        net.host(C)
        ab = await net.host(A).dial(B)
        ba = await hb.accept()
        net.partition({A}, {B, C})
        await ab.send(b"lost in the partition")
        with trio.move_on_after(1) as scope:
            await ba.receive()
        assert scope.cancelled_caught
        with pytest.raises(ConnectionClosed):
            await net.host(A).dial(C)
        net.heal()
        await ab.send(b"after heal")
        assert await ba.receive() == b"after heal"
        net.kill(B)
        with pytest.raises(ConnectionClosed):
            await ab.send(b"to a dead host")
        with pytest.raises(ConnectionClosed):
            await ba.receive()
        revived = net.host(B)
        assert revived.alive
        ab2 = await net.host(A).dial(B)
        await ab2.send(b"back")
        assert await (await revived.accept()).receive() == b"back"
        nursery.cancel_scope.cancel()
