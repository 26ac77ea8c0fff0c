"""node/rpc/client.py and node/rpc/relay_interface.py: a collator's view of its relay node over
the node's real JSON-RPC WebSocket on 127.0.0.1.

The relay node is a `RelayNodeService` into which the ideal network's relay blocks are imported
one by one (as in test_rpc.py), so every head and collation context read over RPC is compared
with (==) what the node answers in-process. A scripted trio-websocket server plays the hostile
relay node. Assertions count heads, connections and rejections, never time; `fail_after` only
turns a hang into a failure.
"""

from __future__ import annotations

import functools
import json
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from collator.core.collation import RelayParentData
from collator.core.collator_chain import CollationTarget
from node import wiring
from node.devnet import dev_genesis
from node.ideal import IdealNetwork
from node.net.memory import MemoryNetwork
from node.rpc import serve_rpc
from node.rpc.client import RpcConnectionError, RpcResponseError, RpcTimeout, connect
from node.rpc.errors import INVALID_PARAMS, METHOD_NOT_FOUND, STATE_UNAVAILABLE, RpcError
from node.rpc.methods import collation_context_json, relay_header_raw
from node.rpc.relay_interface import (
    RpcRelayInterface,
    decode_collation_context,
    decode_relay_header,
)
from node.run_config import RunConfig
from proto.codec import encode
from proto.keys import Keypair
from proto.messages import FRAME_MAX
from proto.relay_block import RelayBlock, RelayHeader
from proto.relay_state import StateProof, StateProofEntry
from relay.core.collator_api import CollationContext
from relay.core.config import HostConfiguration
from relay.service.full_node import RelayNodeService

VALIDATORS, PARA = 3, 2000
IDEAL_BLOCKS = 12
IMPORTED_AT_START = 6
GUARD_S = 20  # hang guard only


@functools.cache
def ideal_blocks() -> list[RelayBlock]:
    """The relay blocks the ideal network's authors build (it backs and includes PARA's
    candidates, so the contexts carry pending heads). Deterministic: built once."""
    net = IdealNetwork(RunConfig(validators=VALIDATORS, paras=1, relay_blocks=IDEAL_BLOCKS))
    net.run()
    return net.blocks


@dataclass
class Relay:
    node: RelayNodeService
    imported: int = 0

    async def import_up_to(self, number: int) -> None:
        """Import blocks up to `number`, each time until the node announces it as best."""
        for block in ideal_blocks()[self.imported:number]:
            with self.node.watch_heads() as heads:
                self.node.notify_imported(self.node.chain.import_block(block).imported)
                with trio.fail_after(GUARD_S):
                    while (await heads.receive()).number < block.header.number:
                        pass
            self.imported = block.header.number


@pytest.fixture
async def relay(nursery: trio.Nursery) -> Relay:
    network = MemoryNetwork(random.Random(0), FRAME_MAX, record_trace=False)
    await nursery.start(network.run)
    genesis = dev_genesis(VALIDATORS, 1, 1, HostConfiguration()).relay
    key = Keypair.from_name("relay-a")
    node = wiring.relay_node("relay-a", network.add_host(key.public), genesis, [key.public])
    await nursery.start(node.run)
    fixture = Relay(node)
    await fixture.import_up_to(IMPORTED_AT_START)
    return fixture


def ws_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(GUARD_S):
        while not condition():
            await trio.sleep(0.01)


async def next_head(heads: trio.MemoryReceiveChannel[RelayHeader]) -> RelayHeader:
    with trio.fail_after(GUARD_S):
        return await heads.receive()


# -- the wire format ------------------------------------------------------------------------


async def test_collation_context_round_trips_exactly(relay: Relay) -> None:
    contexts: list[CollationContext] = []
    for block in ideal_blocks()[:IMPORTED_AT_START]:
        ctx = await relay.node.collation_context(PARA, block.hash())
        assert ctx is not None
        contexts.append(ctx)
    assert any(c.pending_heads for c in contexts)  # the pipeline is running in these blocks
    proof = StateProof(7, [StateProofEntry(b"k", b"v", 3, [bytes(32)])])
    contexts.append(CollationContext(
        CollationTarget(RelayParentData(b"\x01" * 32, 5, b"\x02" * 32, proof), (3, 0), 1, 5,
                        1 << 20, 4, 4),
        b"head", (), {3: (b"\x03" * 32, b"\x04" * 32), 0: ()}))
    for ctx in contexts:
        back = decode_collation_context(json.loads(json.dumps(collation_context_json(ctx))))
        assert back == ctx
        assert back is not None and encode(back) == encode(ctx)
        # == between a tuple and a list is False, so this pins the container types too
        assert all(type(k) is int and type(v) is tuple for k, v in back.backers.items())
        assert type(back.pending_heads) is tuple and type(back.target.cores) is tuple
        assert list(back.backers) == list(ctx.backers)
    header = ideal_blocks()[2].header
    assert decode_relay_header(relay_header_raw(header)) == header


def test_malformed_wire_values_decode_to_none() -> None:
    header = ideal_blocks()[0].header
    raw = encode(header)
    for bad in [None, 7, "", "0x", raw.hex(), "0x" + raw.hex() + "00", "0x" + raw.hex()[:-2],
                "0xzz", "0x" + "00" * 5000, {"context": "0x00"}]:
        assert decode_relay_header(bad) is None
    good = collation_context_json(CollationContext(
        CollationTarget(RelayParentData(bytes(32), 1, bytes(32), StateProof(0, [])), (), 0, 1,
                        1, 0, 1), b"", (), {}))
    assert decode_collation_context(good) is not None
    bad_contexts: list[Any] = [
        None, "0x00", [], {}, {"context": 5}, {"context": "0x" + raw.hex()},
        {"context": good["context"][:-2]}, {"context": good["context"] + "c0"}]
    for bad_ctx in bad_contexts:
        assert decode_collation_context(bad_ctx) is None


# -- the client -----------------------------------------------------------------------------


async def test_client_calls_and_error_codes(relay: Relay, nursery: trio.Nursery) -> None:
    port = await nursery.start(serve_rpc, relay.node, "127.0.0.1", 0)
    async with connect(ws_url(port)) as rpc:
        assert await rpc.call("system_name") == "relay-a"
        best = relay.node.chain.best
        assert await rpc.call("chain_getHeaderRaw") == relay_header_raw(best)
        assert await rpc.call("chain_getHeaderRaw", {"hash": "0x" + bytes(32).hex()}) is None
        codes = []
        for method, params in [("no_such_method", None),
                               ("parachain_collationContext", []),
                               ("parachain_collationContext", [PARA, "0x12"]),
                               ("parachain_collationContext", [PARA, "0x" + "ab" * 32])]:
            with pytest.raises(RpcError) as info:
                await rpc.call(method, params)
            codes.append(info.value.code)
            assert info.value.message
        assert codes == [METHOD_NOT_FOUND, INVALID_PARAMS, INVALID_PARAMS, STATE_UNAVAILABLE]
        assert await rpc.call("parachain_collationContext", [9999]) is None  # not registered
        assert await rpc.call("system_name") == "relay-a"  # errors leave the connection usable


async def test_client_subscription_and_connection_loss(relay: Relay) -> None:
    async with trio.open_nursery() as server:
        port = await server.start(serve_rpc, relay.node, "127.0.0.1", 0)
        async with connect(ws_url(port)) as rpc:
            heads = await rpc.subscribe("chain_subscribeNewHeadsRaw",
                                        unsubscribe="chain_unsubscribeNewHeadsRaw")
            with trio.fail_after(GUARD_S):
                assert decode_relay_header(await heads.receive()) == relay.node.chain.best
                await relay.import_up_to(IMPORTED_AT_START + 1)
                assert decode_relay_header(await heads.receive()) == relay.node.chain.best
            server.cancel_scope.cancel()  # the relay node's RPC goes away
            with trio.fail_after(GUARD_S):
                async for _ in heads:  # the subscription ends with the connection
                    pass
            assert rpc.closed
            with pytest.raises(RpcConnectionError):
                await rpc.call("system_name")


async def test_connecting_to_nothing_is_a_connection_error() -> None:
    with pytest.raises(RpcConnectionError):
        async with connect(ws_url(free_port()), timeout_s=5):
            raise AssertionError("connected to nothing")
    with pytest.raises(RpcConnectionError):
        async with connect("not a url"):
            raise AssertionError("connected to nothing")


async def test_the_body_exception_passes_through_unwrapped(relay: Relay,
                                                           nursery: trio.Nursery) -> None:
    port = await nursery.start(serve_rpc, relay.node, "127.0.0.1", 0)
    with pytest.raises(KeyError):
        async with connect(ws_url(port)):
            raise KeyError("mine")


# -- a scripted relay node ------------------------------------------------------------------

Script = Callable[[Any, dict[str, Any]], Awaitable[None]]


async def scripted_server(nursery: trio.Nursery, script: Script) -> int:
    """A WebSocket server calling `script(ws, request)` for each JSON request it receives."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                await script(ws, json.loads(await ws.get_message()))
        except ConnectionClosed:
            pass

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    return int(server.port)


def reply(request: dict[str, Any], result: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result})


def notify(sub_id: str, result: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "chain_newHeadRaw",
                       "params": {"subscription": sub_id, "result": result}})


async def test_client_survives_garbage_and_times_out(nursery: trio.Nursery) -> None:
    async def script(ws: Any, request: dict[str, Any]) -> None:
        if request["method"] == "silent":
            return
        for junk in ["{nope", "[]", "42", json.dumps({"id": request["id"]}),
                     json.dumps({"jsonrpc": "2.0", "id": True, "result": 1}),
                     json.dumps({"jsonrpc": "2.0", "id": [1], "result": 1}),
                     notify("unknown", 1)]:
            await ws.send_message(junk)
        if request["method"] == "bad_error":
            await ws.send_message(json.dumps({"id": request["id"], "error": {"code": "x"}}))
        elif request["method"] == "subscribe":
            await ws.send_message(reply(request, 17))  # not a subscription id
        else:
            await ws.send_message(reply(request, "fine"))

    port = await scripted_server(nursery, script)
    async with connect(ws_url(port), timeout_s=0.5) as rpc:
        assert await rpc.call("hello") == "fine"
        assert rpc.ignored_messages == 7
        with pytest.raises(RpcResponseError):
            await rpc.call("bad_error")
        with pytest.raises(RpcResponseError):
            await rpc.subscribe("subscribe")
        with pytest.raises(RpcTimeout):
            await rpc.call("silent")
        assert await rpc.call("hello") == "fine"  # still in business


async def test_a_subscriber_that_falls_behind_is_dropped(nursery: trio.Nursery) -> None:
    unsubscribed: list[Any] = []

    async def script(ws: Any, request: dict[str, Any]) -> None:
        if request["method"] == "sub":
            await ws.send_message(reply(request, "s1"))
            for i in range(5):
                await ws.send_message(notify("s1", i))
        elif request["method"] == "unsub":
            unsubscribed.append(request["params"])
            await ws.send_message(reply(request, True))
        else:
            await ws.send_message(reply(request, "pong"))

    port = await scripted_server(nursery, script)
    async with connect(ws_url(port)) as rpc:
        items = await rpc.subscribe("sub", unsubscribe="unsub", buffer=2)
        await until(lambda: bool(unsubscribed))
        assert unsubscribed == [["s1"]]
        assert [x async for x in items] == [0, 1]  # what fitted, then the end
        assert await rpc.call("ping") == "pong"


async def test_interface_rejects_a_hostile_relay_node(nursery: trio.Nursery) -> None:
    good = ideal_blocks()[0].header

    async def script(ws: Any, request: dict[str, Any]) -> None:
        if request["method"] == "chain_subscribeNewHeadsRaw":
            await ws.send_message(reply(request, "s"))
            for junk in [None, "0x00", {"x": 1}, "0x" + encode(good).hex()[:-4]]:
                await ws.send_message(notify("s", junk))
            await ws.send_message(notify("s", relay_header_raw(good)))
        elif request["params"][0] == 1:
            await ws.send_message(reply(request, {"context": "0x1234"}))
        elif request["params"][0] == 2:  # a well-formed context, but for another block
            ctx = CollationContext(CollationTarget(
                RelayParentData(b"\x09" * 32, 1, bytes(32), StateProof(0, [])), (0,), 0, 1, 1,
                0, 1), b"", (), {0: ()})
            await ws.send_message(reply(request, collation_context_json(ctx)))
        else:
            await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                              "error": {"code": -1, "message": "no"}}))

    iface = RpcRelayInterface(ws_url(await scripted_server(nursery, script)), timeout_s=5)
    heads = iface.watch_heads()
    await nursery.start(iface.run)
    assert await next_head(heads) == good
    assert iface.stats.rejected == 4 and iface.stats.heads == 1
    for para_id in (1, 2, 3):
        assert await iface.collation_context(para_id, good.hash()) is None
    assert iface.stats.rejected == 6 and iface.stats.failed_calls == 1
    assert iface.connected and iface.stats.connections == 1


# -- the relay interface against a real relay node ------------------------------------------


def connected_times(iface: RpcRelayInterface, n: int) -> bool:
    return iface.stats.connections == n


async def test_interface_heads_and_contexts_equal_the_nodes(relay: Relay,
                                                            nursery: trio.Nursery) -> None:
    port = await nursery.start(serve_rpc, relay.node, "127.0.0.1", 0)
    iface = RpcRelayInterface(ws_url(port), timeout_s=5)
    heads = iface.watch_heads()
    await nursery.start(iface.run)
    received = [await next_head(heads)]  # the current best, as a subscription starts
    for n in range(IMPORTED_AT_START + 1, IDEAL_BLOCKS + 1):
        await relay.import_up_to(n)
        received.append(await next_head(heads))
    assert received == [b.header for b in ideal_blocks()[IMPORTED_AT_START - 1:]]
    assert all(type(h) is RelayHeader for h in received)
    compared = 0
    for header in received:
        for max_cores in (0, 1):
            over_rpc = await iface.collation_context(PARA, header.hash(), max_cores)
            in_process = await relay.node.collation_context(PARA, header.hash(), max_cores)
            assert over_rpc is not None and over_rpc == in_process
            compared += 1
    assert compared == 2 * len(received)
    assert await iface.collation_context(9999, received[-1].hash()) is None  # not registered
    assert await iface.collation_context(PARA, b"\xab" * 32) is None  # unknown block
    assert iface.stats.connections == 1 and iface.stats.rejected == 0


async def test_interface_waits_for_the_node_and_survives_its_restarts(
        relay: Relay, nursery: trio.Nursery) -> None:
    port = free_port()
    iface = RpcRelayInterface(ws_url(port), timeout_s=5, retry_min_s=0.01, retry_max_s=0.1)
    heads = iface.watch_heads()
    await nursery.start(iface.run)  # before the relay node serves: it keeps trying
    assert await iface.collation_context(PARA, relay.node.chain.best_hash) is None
    number = IMPORTED_AT_START
    for restart in range(1, 4):
        async with trio.open_nursery() as server:
            await server.start(serve_rpc, relay.node, "127.0.0.1", port)
            await until(functools.partial(connected_times, iface, restart))
            if restart == 1:  # the head current at the first connection
                assert await next_head(heads) == relay.node.chain.best
            number += 1
            await relay.import_up_to(number)
            # After a reconnect the first head is the new one: the current head the new
            # subscription starts with had been passed on already.
            assert await next_head(heads) == ideal_blocks()[number - 1].header
            ctx = await iface.collation_context(PARA, relay.node.chain.best_hash)
            assert ctx == await relay.node.collation_context(PARA, relay.node.chain.best_hash)
            server.cancel_scope.cancel()
        await until(lambda: not iface.connected)
        assert await iface.collation_context(PARA, relay.node.chain.best_hash) is None
    assert iface.stats.heads == 1 + 3 and iface.stats.rejected == 0


# -- the relay node's p2p address, for a collator given only the RPC URL ----------------------


async def test_interface_learns_the_relay_nodes_p2p_address(relay: Relay,
                                                            nursery: trio.Nursery) -> None:
    identity = "0x" + Keypair.from_name("relay-a").public.hex()
    port = await nursery.start(functools.partial(
        serve_rpc, relay.node, "127.0.0.1", 0,
        listen_addresses=[f"{identity}@0.0.0.0:30333", f"{identity}@10.1.2.3:30334"]))
    learnt: list[list[str]] = []
    iface = RpcRelayInterface(ws_url(port), timeout_s=5, on_listen_addresses=learnt.append)
    heads = iface.watch_heads()
    await nursery.start(iface.run)
    await next_head(heads)
    await until(lambda: bool(learnt))
    # An address on all interfaces is reached where the RPC was.
    assert learnt == [[f"{identity}@127.0.0.1:30333", f"{identity}@10.1.2.3:30334"]]


async def test_interface_without_or_with_bad_listen_addresses_still_follows_heads(
        nursery: trio.Nursery) -> None:
    good, second = ideal_blocks()[0].header, ideal_blocks()[1].header
    answers: list[str] = []

    async def script(ws: Any, request: dict[str, Any]) -> None:
        if request["method"] == "chain_subscribeNewHeadsRaw":
            await ws.send_message(reply(request, "s"))
            await ws.send_message(notify("s", relay_header_raw(good)))
        elif request["method"] == "system_localListenAddresses":
            answers.append(request["method"])
            if len(answers) == 1:  # a relay node that does not know the method
                await ws.send_message(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {
                    "code": METHOD_NOT_FOUND, "message": "Method not found"}}))
                await ws.send_message(notify("s", relay_header_raw(second)))
                await ws.aclose()  # the interface reconnects
            else:
                await ws.send_message(reply(request, [1, "0x12@h:1"]))

    learnt: list[list[str]] = []
    iface = RpcRelayInterface(ws_url(await scripted_server(nursery, script)), timeout_s=5,
                              retry_min_s=0.01, on_listen_addresses=learnt.append)
    heads = iface.watch_heads()
    await nursery.start(iface.run)
    assert await next_head(heads) == good
    assert await next_head(heads) == second  # heads flow past the unknown method
    await until(lambda: len(answers) == 2 and iface.stats.rejected == 1)
    assert learnt == [] and iface.stats.connections == 2


class _Lines:
    """The interface's log lines, as (level, event, fields): what an operator reads."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **kw: self.lines.append((level, event, kw))


async def test_every_connection_attempt_is_a_line_with_its_backoff(relay: Relay,
                                                                   nursery: trio.Nursery) -> None:
    port = free_port()
    url = ws_url(port)
    log = _Lines()
    iface = RpcRelayInterface(url, timeout_s=5, retry_min_s=0.01, retry_max_s=0.04, log=log)
    await nursery.start(iface.run)
    await until(lambda: len(log.lines) >= 5)
    attempts = log.lines[:5]
    assert all(level == "warning" and event.startswith(f"cannot reach relay RPC {url}: ")
               and "retrying in" in event and kw["url"] == url for level, event, kw in attempts)
    assert [kw["retry_in_s"] for *_, kw in attempts] == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert "Connection refused" in attempts[0][1] and url not in attempts[0][1].split(": ", 1)[1]
    async with trio.open_nursery() as server:
        await server.start(serve_rpc, relay.node, "127.0.0.1", port)
        await until(lambda: iface.connected)
        server.cancel_scope.cancel()
    await until(lambda: any("disconnected" in e for _, e, _ in log.lines))
    events = [event for _, event, _ in log.lines]
    connected = events.index("relay rpc connected")
    assert any(e.startswith(f"relay RPC {url} disconnected") and "reconnecting in 0.01s" in e
               for e in events[connected:])
