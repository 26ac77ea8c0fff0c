"""Collators of one para as separate processes find each other (collator/service.py): learnt
para peers, their turns by relay slot, para block sync from them however long the gap. Two
collator services over the in-memory network in virtual time; their relay chain never runs
(blocks are built here with the para runtime), so only the para side is exercised."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from para_fixtures import PARA, para_genesis, relay_parent

from collator import service as collator_service
from collator.core.collation import build_collation
from collator.core.collator_chain import CollatorChain
from collator.core.para_chain import ParaChain
from collator.core.para_runtime import ParaBlock, ParaHeader
from collator.service import MAX_PARA_SYNC, CollatorService
from node import wiring
from node.net.memory import MemoryNetwork
from node.net.stack import NetworkStack
from node.storage import NodeStore
from proto.codec import decode, encode
from proto.keys import Keypair
from proto.messages import (
    FRAME_MAX,
    MAX_PARA_ANCESTORS,
    ParaBlockAnnounce,
    ParaBlockResponse,
    ParaCollatorHello,
)
from proto.network import Kind


class NoRelay:
    def watch_heads(self, buffer: int = 16) -> trio.MemoryReceiveChannel[object]:
        raise AssertionError("not used")

    async def collation_context(self, para_id: int, leaf: bytes, max_cores: int = 0) -> None:
        raise AssertionError("not used")


def chain_of(length: int) -> list[ParaBlock]:
    """`length` para blocks from genesis, each built with its parent included."""
    entries, header = para_genesis()
    blocks = []
    for n in range(1, length + 1):
        col = build_collation(entries, header, relay_parent(n, n, header.head_data()), [], 0,
                              None, 0, 5, 1 << 20)
        blocks.append(col.block)
        entries, header = col.entries, col.block.header
    return blocks


def genesis_chain() -> CollatorChain:
    entries, header = para_genesis()
    return CollatorChain(ParaChain(dict(entries), header), header.hash())


@dataclass
class Pair:
    a: CollatorService
    b: CollatorService
    net: MemoryNetwork

    def rogue(self) -> NetworkStack:
        return NetworkStack(self.net.add_host(Keypair.from_name("rogue").public), 6.0)


@pytest.fixture
async def pair(autojump_clock: trio.abc.Clock) -> AsyncIterator[Pair]:
    net = MemoryNetwork(random.Random(3), FRAME_MAX)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        services = []
        for name in ("collator-2000-0", "collator-2000-1"):
            key = Keypair.from_name(name)
            service = wiring.collator(name, key, PARA, net.add_host(key.public), genesis_chain(),
                                      NoRelay(), 6000)
            await nursery.start(service.net.run)
            services.append(service)
        yield Pair(services[0], services[1], net)
        nursery.cancel_scope.cancel()


def count_responses(service: CollatorService) -> list[int]:
    """Blocks in each para block response `service` receives from now on."""
    served: list[int] = []
    request = service.net.request

    async def counting(peer: bytes, kind: int, message: Any) -> bytes:
        raw = await request(peer, kind, message)
        if kind == Kind.PARA_BLOCK:
            response = decode(raw, ParaBlockResponse)
            served.append(len(response.ancestors) + (response.block is not None))
        return raw

    service.net.request = counting  # type: ignore[method-assign]
    return served


async def test_a_run_of_blocks_ends_where_a_block_is_not_the_parent_of_the_last(
        pair: Pair) -> None:
    blocks = chain_of(5)
    other = chain_of(6)[-1]  # another block of the para, not in this chain
    request = pair.b.net.request

    async def lied_to(peer: bytes, kind: int, message: Any) -> bytes:
        honest = decode(await request(peer, kind, message), ParaBlockResponse)
        return encode(ParaBlockResponse(honest.block, [honest.ancestors[0], encode(other),
                                                       *honest.ancestors[2:]]))

    for block in blocks:
        assert pair.a._import(b"", block)
    pair.b.net.request = lied_to  # type: ignore[method-assign]
    run = await pair.b._fetch_para_blocks(blocks[-1].header.hash(), [pair.a.key.public])
    assert run == [blocks[-1], blocks[-2]]


def tip(service: CollatorService) -> ParaHeader | None:
    heads = [service.chain.chain.header(h) for h in service.blocks]
    return max(heads, key=lambda h: h.number) if heads else None


async def test_a_collator_syncs_a_long_gap_from_a_para_peer_and_is_learnt_back(
        pair: Pair) -> None:
    blocks = chain_of(MAX_PARA_SYNC + 6)
    for block in blocks:
        assert pair.a._import(b"", block)
    target = blocks[-1].header.hash()
    served = count_responses(pair.b)
    pair.b.add_para_peer(pair.a.key.public)
    await pair.b._sync_to(target)  # the first MAX_PARA_SYNC are fetched and kept ...
    assert target not in pair.b.chain.chain
    await pair.b._sync_to(target)  # ... and the next call closes the gap
    assert target in pair.b.chain.chain and len(pair.b.blocks) == len(blocks)
    # a run of blocks a request, not one
    assert served == [MAX_PARA_ANCESTORS + 1] * (MAX_PARA_SYNC // (MAX_PARA_ANCESTORS + 1)) + [6]
    # a has not heard of b until b announces a block of the para
    assert pair.a.para_peers == []
    nxt = chain_of(len(blocks) + 1)[-1]
    assert pair.b._import(b"", nxt)
    await pair.b._announce(nxt)
    await trio.sleep(0.5)
    assert pair.a.para_peers == [pair.b.key.public]
    assert nxt.header.hash() in pair.a.chain.chain


async def test_turns_go_round_the_collators_that_know_each_other(pair: Pair) -> None:
    assert all(pair.a.is_my_slot(s) for s in range(4))  # alone: every slot
    pair.a.add_para_peer(pair.b.key.public)
    pair.b.add_para_peer(pair.a.key.public)
    mine = [[c.is_my_slot(s) for s in range(6)] for c in (pair.a, pair.b)]
    assert [x != y for x, y in zip(*mine, strict=True)] == [True] * 6  # one author per slot
    assert sum(mine[0]) == 3
    await pair.a.net.peers.connect(pair.b.key.public)
    await pair.a.net.peers.disconnect(pair.b.key.public)
    await trio.sleep(0.5)
    assert pair.a.para_peers == [] and all(pair.a.is_my_slot(s) for s in range(4))


async def test_an_announcement_of_another_para_costs_and_teaches_nothing(pair: Pair) -> None:
    rogue = pair.rogue()
    async with trio.open_nursery() as nursery:
        await nursery.start(rogue.run)
        assert await rogue.peers.connect(pair.a.key.public)
        block = chain_of(1)[0]
        await rogue.send_direct(pair.a.key.public, ParaBlockAnnounce(PARA + 1, encode(block)))
        await trio.sleep(0.5)
        assert pair.a.para_peers == []
        assert pair.a.net.peers.peerset.reputation(rogue.peer_id, trio.current_time()) < 0
        nursery.cancel_scope.cancel()


async def test_a_fixed_round_admits_no_one(autojump_clock: trio.abc.Clock) -> None:
    net = MemoryNetwork(random.Random(4), FRAME_MAX)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        key = Keypair.from_name("collator-2000-0")
        fixed = wiring.collator("c", key, PARA, net.add_host(key.public), genesis_chain(),
                                NoRelay(), 6000, author_index=0)
        await nursery.start(fixed.net.run)
        rogue = NetworkStack(net.add_host(Keypair.from_name("rogue").public), 6.0)
        await nursery.start(rogue.run)
        assert await rogue.peers.connect(key.public)
        block = chain_of(1)[0]
        await rogue.send_direct(key.public, ParaBlockAnnounce(PARA, encode(block)))
        await trio.sleep(0.5)
        assert fixed.para_peers == [] and block.header.hash() not in fixed.chain.chain
        nursery.cancel_scope.cancel()


class FixedRelay:
    """Reports one collation context: the para's included head, one core, nothing pending."""

    def __init__(self, included_head: bytes) -> None:
        self.ctx = SimpleNamespace(
            target=SimpleNamespace(cores=(0,), min_relay_parent_number=0, max_depth=4),
            included_head=included_head, pending_heads=(), backers={})

    def watch_heads(self, buffer: int = 16) -> trio.MemoryReceiveChannel[object]:
        raise AssertionError("not used")

    async def collation_context(self, para_id: int, leaf: bytes, max_cores: int = 0) -> Any:
        return self.ctx


def relay_head(slot: int) -> Any:
    return SimpleNamespace(slot=slot, hash=lambda: bytes([slot % 256]) * 32)


def built_by(*services: CollatorService) -> list[list[int]]:
    """Replaces each service's block building with a record of the calls."""
    built: list[list[int]] = [[] for _ in services]
    for service, record in zip(services, built, strict=True):
        service.chain.collate = (  # type: ignore[method-assign]
            lambda *args, record=record: record.append(1) or [])
    return built


def synced_pair(pair: Pair) -> bytes:
    """a holds three para blocks, the last included; both hear so from the relay chain. The
    included block's hash."""
    blocks = chain_of(3)
    for block in blocks:
        assert pair.a._import(b"", block)
    for service in (pair.a, pair.b):
        service.relay = FixedRelay(blocks[-1].header.head_data())
    return blocks[-1].header.hash()


async def test_a_joining_collator_says_hello_and_takes_its_first_turn(pair: Pair) -> None:
    synced_pair(pair)
    built = built_by(pair.a, pair.b)
    pair.b.add_para_peer(pair.a.key.public)  # as --para-bootnodes does; a has not heard of b
    assert await pair.b._introduce()  # what add_para_peer starts when b runs
    await trio.sleep(0.5)
    assert pair.a.para_peers == [pair.b.key.public]
    assert pair.a.net.peers.peerset.reputation(pair.b.key.public, trio.current_time()) >= 0
    turns = {s: pair.b.is_my_slot(s) for s in range(10, 14)}
    assert [pair.a.is_my_slot(s) for s in turns] == [not mine for mine in turns.values()]
    for slot, b_turn in turns.items():  # one author a slot, b from its first turn
        await (pair.b if b_turn else pair.a).on_relay_head(relay_head(slot))
    assert built == [[1, 1], [1, 1]]
    assert not await pair.b._introduce()  # said once while the link lasts
    await pair.b.net.peers.disconnect(pair.a.key.public)
    await trio.sleep(0.5)
    pair.b.add_para_peer(pair.a.key.public)  # dialled again: a may have restarted
    assert await pair.b._introduce()


async def test_a_hello_said_at_a_relay_block_gives_up_that_turn(pair: Pair) -> None:
    included = synced_pair(pair)
    built = built_by(pair.b)
    pair.b.add_para_peer(pair.a.key.public)  # not said yet: the link was not up, say
    b_turns = [s for s in range(10, 20) if pair.b.is_my_slot(s)]
    await pair.b.on_relay_head(relay_head(b_turns[0]))  # syncs from a, then says hello
    assert pair.b.chain.included_hash == included and included in pair.b.chain.chain
    assert built == [[]]  # a, not counting b before, may have built in this slot
    await trio.sleep(0.5)
    assert pair.a.para_peers == [pair.b.key.public]
    await pair.b.on_relay_head(relay_head(b_turns[1]))
    assert built == [[1]]


async def test_a_hello_joins_only_a_learnt_round_of_its_own_para(pair: Pair) -> None:
    rogue = pair.rogue()
    async with trio.open_nursery() as nursery:
        await nursery.start(rogue.run)
        assert await rogue.peers.connect(pair.a.key.public)
        await rogue.send_direct(pair.a.key.public, ParaCollatorHello(PARA + 1))
        await trio.sleep(0.5)
        assert pair.a.para_peers == []
        assert pair.a.net.peers.peerset.reputation(rogue.peer_id, trio.current_time()) < 0
        nursery.cancel_scope.cancel()
    pair.a.author_index = 0  # a fixed round
    await pair.b.net.peers.connect(pair.a.key.public)
    await pair.b.net.send_direct(pair.a.key.public, ParaCollatorHello(PARA))
    await trio.sleep(0.5)
    assert pair.a.para_peers == []


async def test_history_pruned_from_memory_is_served_from_the_store(
        autojump_clock: trio.abc.Clock) -> None:
    """A long-running collator keeps post-states and bodies only so far below the included
    block (`_prune_history`); a collator joining late still syncs the para from genesis, the
    old bodies read back from the first one's store."""
    net = MemoryNetwork(random.Random(3), FRAME_MAX)
    blocks = chain_of(40)
    async with trio.open_nursery() as nursery:
        await nursery.start(net.run)
        services = []
        for name, store in (("collator-2000-0", NodeStore(":memory:")), ("collator-2000-1", None)):
            key = Keypair.from_name(name)
            service = wiring.collator(name, key, PARA, net.add_host(key.public), genesis_chain(),
                                      NoRelay(), 6000, store=store)
            await nursery.start(service.net.run)
            services.append(service)
        old, new = services
        for block in blocks:
            assert old._import(b"", block)
        old._prune_history(30)
        assert len(old.blocks) == 11 and len(old.chain.chain.states) == 11  # #30 .. #40
        assert old.block_body(blocks[0].header.hash()) == blocks[0]
        new.add_para_peer(old.key.public)
        target = blocks[-1].header.hash()
        await new._sync_to(target)
        assert target in new.chain.chain and len(new.blocks) == len(blocks)
        nursery.cancel_scope.cancel()


async def test_a_restart_replays_the_store_keeping_only_recent_history(
        autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collator_service, "PARA_STATES_KEPT", 8)
    net = MemoryNetwork(random.Random(3), FRAME_MAX)
    store = NodeStore(":memory:")
    blocks = chain_of(40)
    key = Keypair.from_name("collator-2000-0")
    first = wiring.collator("collator-2000-0", key, PARA, net.add_host(key.public),
                            genesis_chain(), NoRelay(), 6000, store=store)
    for block in blocks:
        assert first._import(b"", block)
    restarted_net = MemoryNetwork(random.Random(3), FRAME_MAX)  # the same identity again
    again = wiring.collator("collator-2000-0", key, PARA, restarted_net.add_host(key.public),
                            genesis_chain(), NoRelay(), 6000, store=store)
    # pruned every 8 blocks of the replay, to 16 below: at #40, below #24
    assert blocks[-1].header.hash() in again.chain.chain
    assert len(again.chain.chain.states) == len(again.blocks) == 17
    assert again.block_body(blocks[0].header.hash()) == blocks[0]
