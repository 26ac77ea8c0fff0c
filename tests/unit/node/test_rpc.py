"""node/rpc: JSON-RPC over real HTTP and WebSocket on 127.0.0.1, against real node services.

The relay chain comes from the ideal network (node/ideal.py): its blocks are imported into a
running `RelayNodeService` (with one connected peer, over the in-memory network in real time),
so every answer can be checked against the chain it was read from, and new heads and finality
are produced on demand, block by block. Assertions count blocks and events, never time; the
`fail_after` guards only turn a hang into a failure. One last test runs a small live network
(validators authoring in 200 ms slots, a collator) to see the same RPC follow a chain that is
being built.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

import node.rpc.server as rpc_server
from collator.core.collator_chain import CollatorChain
from collator.core.para_runtime import ParaBlock, Transfer
from collator.service import CollatorService
from node import wiring
from node.devnet import dev_genesis
from node.ideal import IdealNetwork
from node.net.memory import MemoryNetwork
from node.rpc import serve_rpc
from node.rpc.errors import RpcError
from node.rpc.protocol import MAX_BATCH, handle_payload
from node.run_config import RunConfig
from proto.codec import encode
from proto.hashing import blake2_256
from proto.keys import Keypair, dev_name
from proto.messages import FRAME_MAX
from proto.relay_block import RelayBlock
from proto.statements import FinalityVote
from relay.core.config import HostConfiguration
from relay.core.events import EventKind
from relay.service.full_node import RelayNodeService

VALIDATORS, PARA = 3, 2000
IDEAL_BLOCKS = 14
IMPORTED_AT_START = 8  # the rest are imported by the subscription tests
FINALIZED_AT_START = 6
GUARD_S = 20  # hang guard only


def hx(raw: bytes) -> str:
    return "0x" + raw.hex()


@dataclass(frozen=True)
class IdealRun:
    blocks: list[RelayBlock]
    collator_chain: CollatorChain
    keys: list[Keypair]
    para_blocks: dict[bytes, ParaBlock]  # by para block hash


@functools.cache
def ideal_run() -> IdealRun:
    """The ideal network's relay blocks and the collator's chain at the end. Deterministic, so
    one run serves every test."""
    net = IdealNetwork(RunConfig(validators=VALIDATORS, paras=1, relay_blocks=IDEAL_BLOCKS))
    net.run()
    para_blocks = {c.block.header.hash(): c.block for c in net.collators[PARA].built.values()}
    return IdealRun(net.blocks, net.collators[PARA].chain, net.keys, para_blocks)


# -- fixtures ---------------------------------------------------------------------------------------


@dataclass
class RelayFixture:
    node: RelayNodeService
    peer: RelayNodeService
    port: int
    imported: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def import_up_to(self, number: int) -> None:
        """Import the ideal chain's blocks up to `number` one by one, each time waiting until the
        node has announced it as its new best (so every block is a new head)."""
        for block in ideal_run().blocks[self.imported:number]:
            with self.node.watch_heads() as heads:
                outcome = self.node.chain.import_block(block)
                self.node.notify_imported(outcome.imported)
                with trio.fail_after(GUARD_S):
                    while (await heads.receive()).number < block.header.number:
                        pass
            self.imported = block.header.number

    def finalize(self, number: int) -> None:
        block = ideal_run().blocks[number - 1]
        for i, key in enumerate(ideal_run().keys):
            self.node.chain.note_vote(FinalityVote.sign(key, block.hash(), number, 0, i))
        assert self.node.chain.finalized.number == number


@pytest.fixture
async def relay(nursery: trio.Nursery) -> RelayFixture:
    network = MemoryNetwork(random.Random(0), FRAME_MAX, record_trace=False)
    await nursery.start(network.run)
    genesis = dev_genesis(VALIDATORS, 1, 1, HostConfiguration()).relay
    key_a, key_b = Keypair.from_name("relay-a"), Keypair.from_name("relay-b")
    peers = [key_a.public, key_b.public]
    node = wiring.relay_node("relay-a", network.add_host(key_a.public), genesis, peers)
    peer = wiring.relay_node("relay-b", network.add_host(key_b.public), genesis, peers)
    await nursery.start(node.run)
    await nursery.start(peer.run)
    with trio.fail_after(GUARD_S):
        while not node.net.peers.connected_peers():
            await trio.sleep(0.01)
    fixture = RelayFixture(node, peer, 0)
    await fixture.import_up_to(IMPORTED_AT_START)
    fixture.finalize(FINALIZED_AT_START)
    fixture.port = await nursery.start(serve_rpc, node, "127.0.0.1", 0)
    return fixture


class NoRelay:
    """The collator under test never runs, so it never asks its relay node anything."""

    def watch_heads(self, buffer: int = 16) -> trio.MemoryReceiveChannel[Any]:
        raise AssertionError("not used")

    async def collation_context(self, para_id: int, leaf: bytes, max_cores: int = 0) -> Any:
        raise AssertionError("not used")


@pytest.fixture
async def collator(nursery: trio.Nursery) -> tuple[CollatorService, int]:
    network = MemoryNetwork(random.Random(0), FRAME_MAX, record_trace=False)
    key = Keypair.from_name("collator-2000-0")
    service = wiring.collator("collator-2000-0", key, PARA, network.add_host(key.public),
                              ideal_run().collator_chain, NoRelay(), 6000)
    service.blocks.update(ideal_run().para_blocks)
    port = await nursery.start(serve_rpc, service, "127.0.0.1", 0)
    return service, port


@pytest.fixture
async def http(relay: RelayFixture) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=relay.url) as client:
        yield client


async def call(client: httpx.AsyncClient, method: str, params: Any = None) -> Any:
    """The result of one call; an error response fails the test."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    response = await client.post("", json=body)
    assert response.status_code == 200
    out = response.json()
    assert "error" not in out, out
    return out["result"]


async def error_of(client: httpx.AsyncClient, method: str, params: Any = None) -> int:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    out = (await client.post("", json=body)).json()
    assert out["id"] == 7 and "result" not in out, out
    return int(out["error"]["code"])


# -- system -------------------------------------------------------------------------------------


async def test_system_methods_of_a_relay_node(relay: RelayFixture, http: httpx.AsyncClient
                                              ) -> None:
    assert await call(http, "system_name") == "relay-a"
    assert isinstance(await call(http, "system_version"), str)
    assert await call(http, "system_nodeRoles") == ["Full"]
    assert await call(http, "system_localListenAddresses") == []  # served without a p2p host
    assert await call(http, "system_health") == {"peers": 1, "isSyncing": False,
                                                 "shouldHavePeers": True}
    # relay-b is not in the validator set
    assert await call(http, "system_peers") == [
        {"peerId": hx(Keypair.from_name("relay-b").public), "roles": "FULL"}]
    names = (await call(http, "rpc_methods"))["methods"]
    for name in ["chain_getHeader", "chain_getBlock", "chain_getBlockHash",
                 "chain_getFinalizedHead", "parachain_getParaHead", "parachain_claimQueue",
                 "parachain_events", "parachain_backingState", "chain_subscribeNewHeads",
                 "chain_unsubscribeFinalizedHeads"]:
        assert name in names
    health = await http.get("/health")
    assert health.status_code == 200 and health.json()["peers"] == 1


# -- chain --------------------------------------------------------------------------------------


async def test_headers_blocks_and_hashes_match_the_chain(relay: RelayFixture,
                                                         http: httpx.AsyncClient) -> None:
    blocks = ideal_run().blocks
    best = blocks[IMPORTED_AT_START - 1].header
    header = await call(http, "chain_getHeader")
    assert header == {"parentHash": hx(best.parent_hash), "number": hex(best.number),
                      "stateRoot": hx(best.state_root), "extrinsicsRoot": hx(best.body_root),
                      "slot": best.slot, "author": best.author, "seal": hx(best.seal),
                      "hash": hx(best.hash())}
    third = blocks[2].header
    assert (await call(http, "chain_getHeader", [hx(third.hash())]))["number"] == "0x3"
    assert (await call(http, "chain_getHeader", {"hash": hx(third.hash())}))["number"] == "0x3"
    assert await call(http, "chain_getHeader", [hx(bytes(32))]) is None

    genesis = relay.node.chain.genesis.hash()
    assert await call(http, "chain_getBlockHash", [0]) == hx(genesis)
    assert await call(http, "chain_getBlockHash", [3]) == hx(third.hash())
    assert await call(http, "chain_getBlockHash", ["0x3"]) == hx(third.hash())
    assert await call(http, "chain_getBlockHash") == hx(best.hash())
    assert await call(http, "chain_getBlockHash", [IMPORTED_AT_START + 1]) is None
    for number in range(IMPORTED_AT_START + 1):  # every number of the best chain, each once
        h = await call(http, "chain_getBlockHash", [number])
        assert int((await call(http, "chain_getHeader", [h]))["number"], 16) == number

    block = await call(http, "chain_getBlock", [hx(third.hash())])
    assert block["block"]["header"]["hash"] == hx(third.hash())
    assert block["block"]["extrinsics"] == [hx(encode(blocks[2].body))]
    inherent = block["block"]["parachainsInherent"]
    assert len(inherent["bitfields"]) == len(blocks[2].body.bitfields) == VALIDATORS
    assert [c["candidateHash"] for c in inherent["backedCandidates"]] == \
        [hx(c.hash()) for c in blocks[2].body.backed_candidates]
    assert (await call(http, "chain_getBlock"))["block"]["header"]["hash"] == hx(best.hash())
    first = await call(http, "chain_getBlock", [hx(genesis)])
    assert first["block"]["extrinsics"] == [] and first["block"]["header"]["number"] == "0x0"
    assert await call(http, "chain_getBlock", [hx(bytes(32))]) is None

    finalized = blocks[FINALIZED_AT_START - 1].hash()
    assert await call(http, "chain_getFinalizedHead") == hx(finalized)


# -- parachains ---------------------------------------------------------------------------------


async def test_parachain_events_count_every_backed_and_included_candidate(
        relay: RelayFixture, http: httpx.AsyncClient) -> None:
    backed = included = 0
    for block in ideal_run().blocks[:IMPORTED_AT_START]:
        events = await call(http, "parachain_events", [hx(block.hash())])
        expected = relay.node.chain.events[block.hash()]
        assert [e["candidate_hash"] for e in events] == [hx(e.candidate_hash) for e in expected]
        for e, raw in zip(events, expected, strict=True):
            assert set(e) == {"type", "para_id", "candidate_hash", "relay_parent_number",
                              "para_number", "para_head_hash", "core", "backed_in"}
            assert e["para_id"] == PARA and e["core"] == 0
            assert e["relay_parent_number"] < block.header.number
            assert e["para_head_hash"] == hx(blake2_256(raw.head_data))
            # backed in this block, or (included) in the one before: the ideal pipeline
            assert e["backed_in"] == block.header.number - (e["type"] == "CandidateIncluded")
        backed += sum(e["type"] == EventKind.BACKED.value for e in events)
        included += sum(e["type"] == EventKind.INCLUDED.value for e in events)
    # The ideal network backs a candidate in every block and includes it in the next.
    assert (backed, included) == (IMPORTED_AT_START, IMPORTED_AT_START - 1)
    last = await call(http, "parachain_events")
    assert [e["type"] for e in last] == ["CandidateIncluded", "CandidateBacked"]
    assert last[1]["para_number"] == last[0]["para_number"] + 1
    assert await call(http, "parachain_events", [hx(bytes(32))]) is None


async def test_system_events_are_the_best_chains_recent_events_as_text(
        relay: RelayFixture, http: httpx.AsyncClient) -> None:
    events = await call(http, "system_events", [3])
    best = relay.node.chain.best.number
    expected = [(n, e) for n in range(best - 2, best + 1)
                for e in relay.node.chain.events[ideal_run().blocks[n - 1].hash()]]
    assert [(e["block"], e["candidate_hash"]) for e in events] == [
        (n, hx(e.candidate_hash)) for n, e in expected]
    for e in events:
        assert e["text"] == f"{e['type']}: para {PARA} candidate {e['candidate_hash']}"
    assert len(await call(http, "system_events")) > len(events)  # 64 blocks by default


async def test_para_head_claim_queue_and_backing_state(relay: RelayFixture,
                                                       http: httpx.AsyncClient) -> None:
    best_events = await call(http, "parachain_events")
    included_number = best_events[0]["para_number"]
    head = await call(http, "parachain_getParaHead", [PARA])
    assert head["paraId"] == PARA and head["number"] == included_number
    assert head["hash"] == hx(blake2_256(bytes.fromhex(head["headData"][2:])))
    # at an older block the head is an older one
    third = hx(ideal_run().blocks[2].hash())
    older = await call(http, "parachain_getParaHead", {"para_id": PARA, "at": third})
    assert older["number"] < included_number
    assert await call(http, "parachain_getParaHead", [9999]) is None

    queue = await call(http, "parachain_claimQueue")
    assert set(queue) == {"0"} and queue["0"] and set(queue["0"]) == {PARA}
    assert await call(http, "parachain_claimQueue", [third]) == queue  # one para, one core

    state = await call(http, "parachain_backingState", [PARA])
    assert state["constraints"]["requiredParent"] == head["headData"]
    pending = state["pendingAvailability"]
    assert [p["candidateHash"] for p in pending] == [best_events[1]["candidate_hash"]]
    assert pending[0]["paraNumber"] == included_number + 1
    assert await call(http, "parachain_backingState", [9999]) is None
    assert await error_of(http, "parachain_backingState", [PARA, hx(bytes(32))]) == -32000
    assert await error_of(http, "parachain_claimQueue", [hx(bytes(32))]) == -32000


async def test_validators_and_their_groups(relay: RelayFixture, http: httpx.AsyncClient) -> None:
    validators = await call(http, "parachain_validators")
    assert validators == [hx(Keypair.from_name(dev_name(i)).public) for i in range(VALIDATORS)]
    answer = await call(http, "parachain_validatorGroups")
    # one core: every validator in its one group
    assert answer["groups"] == [list(range(VALIDATORS))]
    best = await call(http, "chain_getHeader")
    rotation = answer["groupRotationInfo"]
    assert rotation == {"sessionStartBlock": 0, "groupRotationFrequency":
                        HostConfiguration().group_rotation_frequency,
                        "now": int(best["number"], 16) + 1}
    third = hx(ideal_run().blocks[2].hash())
    at_third = await call(http, "parachain_validatorGroups", [third])
    assert at_third["groupRotationInfo"]["now"] == 4
    assert await error_of(http, "parachain_validatorGroups", [hx(bytes(32))]) == -32000


# -- errors and batches ---------------------------------------------------------------------------


async def post_raw(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("", content=body, headers={"content-type": "application/json"})


async def test_every_error_code(http: httpx.AsyncClient) -> None:
    parse = (await post_raw(http, b'{"jsonrpc": "2.0", "id": 1, "method": ')).json()
    assert parse == {"jsonrpc": "2.0", "id": None,
                     "error": {"code": -32700, "message": "Parse error"}}
    for bad_request in [b"[]", b"5", b'"x"', b'{"id": 1, "method": "system_name"}',
                        b'{"jsonrpc": "1.0", "id": 1, "method": "system_name"}',
                        b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
                        b'{"jsonrpc": "2.0", "id": 1, "method": "system_name", "params": 3}',
                        b'{"jsonrpc": "2.0", "id": true, "method": "system_name"}',
                        b'{"jsonrpc": "2.0", "id": 1.5, "method": "system_name"}']:
        out = (await post_raw(http, bad_request)).json()
        assert out["error"]["code"] == -32600, bad_request
    assert await error_of(http, "chain_noSuchMethod") == -32601
    assert await error_of(http, "para_getHeader") == -32601  # a collator's method
    for method, params in [("chain_getHeader", ["0x1234"]),  # too short for a hash
                           ("chain_getHeader", ["zz" * 32]),  # no 0x
                           ("chain_getHeader", ["0x" + "zz" * 32]),
                           ("chain_getHeader", [hx(bytes(32)), 1]),  # too many
                           ("chain_getHeader", {"block": hx(bytes(32))}),  # unknown name
                           ("chain_getBlockHash", [-1]),
                           ("chain_getBlockHash", [True]),
                           ("chain_getBlockHash", [2**32]),
                           ("chain_getBlockHash", ["0xnothex"]),
                           ("parachain_getParaHead", []),  # para_id is required
                           ("parachain_getParaHead", ["2000"]),
                           ("system_name", [1])]:
        assert await error_of(http, method, params) == -32602, (method, params)
    # subscriptions need a connection to push on
    assert await error_of(http, "chain_subscribeNewHeads") == -32601


async def test_internal_errors_are_answered_not_raised() -> None:
    async def broken(name: str, params: Any) -> Any:
        if name == "boom":
            raise KeyError("a bug")
        raise RpcError(-32601, "Method not found")

    out = json.loads(await handle_payload(b'{"jsonrpc":"2.0","id":3,"method":"boom"}', broken)
                     or "")
    assert out == {"jsonrpc": "2.0", "id": 3,
                   "error": {"code": -32603, "message": "Internal error", "data": "KeyError"}}


async def test_batches(http: httpx.AsyncClient) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "system_name"},
        {"jsonrpc": "2.0", "method": "system_name"},  # a notification: no answer
        {"jsonrpc": "2.0", "id": "b", "method": "nope"},
        {"jsonrpc": "2.0", "id": "c", "method": "chain_getBlockHash", "params": [0]},
        17,
    ]
    out = (await http.post("", json=batch)).json()
    assert [r.get("id") for r in out] == ["a", "b", "c", None]
    assert out[0]["result"] == "relay-a"
    assert out[1]["error"]["code"] == -32601
    assert out[2]["result"].startswith("0x")
    assert out[3]["error"]["code"] == -32600

    only_notifications = [{"jsonrpc": "2.0", "method": "system_name"}] * 3
    response = await http.post("", json=only_notifications)
    assert response.status_code == 204 and response.content == b""
    single_notification = await http.post("", json=only_notifications[0])
    assert single_notification.status_code == 204

    full = [{"jsonrpc": "2.0", "id": i, "method": "system_name"} for i in range(MAX_BATCH)]
    assert len((await http.post("", json=full)).json()) == MAX_BATCH
    too_big = (await http.post("", json=[*full, full[0]])).json()
    assert too_big["error"]["code"] == -32600


async def test_http_transport_limits(http: httpx.AsyncClient) -> None:
    padding = " " * rpc_server.MAX_BODY_BYTES
    oversized = f'{{"jsonrpc": "2.0", "id": 1, "method": "system_name"{padding}}}'.encode()
    response = await post_raw(http, oversized)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600
    # just under the cap is served
    fits = b'{"jsonrpc": "2.0", "id": 1, "method": "system_name"' + \
        b" " * (rpc_server.MAX_BODY_BYTES - 60) + b"}"
    assert len(fits) <= rpc_server.MAX_BODY_BYTES
    assert (await post_raw(http, fits)).json()["result"] == "relay-a"

    assert (await http.get("/")).status_code == 405
    assert (await http.post("/elsewhere", json={})).status_code == 404


async def test_hostile_bodies_never_break_the_server(http: httpx.AsyncClient) -> None:
    hostile = [b"", b"\xff\xfe\x00garbage", b"[" * 200_000, b'{"a":' * 100_000,
               b"NaN", b'{"jsonrpc":"2.0","id":1,"method":"system_name","params":[NaN]}',
               b"1" * 10_000, b'{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash",'
               b'"params":[' + b"9" * 5000 + b"]}", b"[" + b"{}," * 10_000 + b"{}]",
               b'{"jsonrpc":"2.0","id":{"x":1},"method":"system_name"}',
               b'{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[{"$ne":1}]}',
               b'{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":["0x' +
               b"00" * 100_000 + b'"]}']
    for body in hostile:
        response = await post_raw(http, body)
        assert response.status_code == 200, body[:40]
        out = response.json()
        errors = out if isinstance(out, list) else [out]
        assert errors and all(e["error"]["code"] < 0 for e in errors), body[:40]
    assert await call(http, "system_name") == "relay-a"


# -- WebSocket ----------------------------------------------------------------------------------


class WsClient:
    """Requests and notifications over one WebSocket; notifications that arrive while waiting for
    a response are kept for `notification`."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.notifications: list[dict[str, Any]] = []
        self._next_id = 0

    async def call(self, method: str, params: Any = None) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self.ws.send_message(json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.ws.get_message())
            if message.get("id") == request_id:
                return dict(message)
            self.notifications.append(message)

    async def notification(self) -> dict[str, Any]:
        if self.notifications:
            return self.notifications.pop(0)
        return dict(json.loads(await self.ws.get_message()))


def ws_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/"


async def test_websocket_calls_and_bad_input(relay: RelayFixture) -> None:
    async with open_websocket_url(ws_url(relay.port)) as ws:
        client = WsClient(ws)
        assert (await client.call("system_name"))["result"] == "relay-a"
        await ws.send_message("{not json")
        assert json.loads(await ws.get_message())["error"]["code"] == -32700
        await ws.send_message(b'{"jsonrpc":"2.0","id":9,"method":"chain_getFinalizedHead"}')
        finalized = json.loads(await ws.get_message())
        assert finalized["result"] == hx(ideal_run().blocks[FINALIZED_AT_START - 1].hash())
        await ws.send_message(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "system_name"},
                                          {"jsonrpc": "2.0", "id": 2, "method": "x"}]))
        batch = json.loads(await ws.get_message())
        assert [r["id"] for r in batch] == [1, 2] and batch[1]["error"]["code"] == -32601
        assert (await client.call("system_health"))["result"]["peers"] == 1  # still serving


async def test_websocket_message_over_the_cap_closes_the_connection(relay: RelayFixture) -> None:
    async with open_websocket_url(ws_url(relay.port)) as ws:
        await ws.send_message("x" * (rpc_server.MAX_BODY_BYTES + 1))
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
    async with open_websocket_url(ws_url(relay.port)) as ws:  # the server is fine
        assert (await WsClient(ws).call("system_name"))["result"] == "relay-a"


async def test_new_heads_subscription(relay: RelayFixture) -> None:
    async with open_websocket_url(ws_url(relay.port)) as ws:
        client = WsClient(ws)
        with trio.fail_after(GUARD_S):
            sub = (await client.call("chain_subscribeNewHeads"))["result"]
            assert isinstance(sub, str)
            first = await client.notification()  # the current best, at once
            assert first["method"] == "chain_newHead"
            assert first["params"]["subscription"] == sub
            assert first["params"]["result"]["hash"] == hx(relay.node.chain.best_hash)
            assert int(first["params"]["result"]["number"], 16) == IMPORTED_AT_START

            numbers: list[int] = []
            for n in range(IMPORTED_AT_START + 1, IMPORTED_AT_START + 4):
                await relay.import_up_to(n)
                note = await client.notification()
                assert note["method"] == "chain_newHead"
                assert note["params"]["subscription"] == sub
                numbers.append(int(note["params"]["result"]["number"], 16))
            assert numbers == [IMPORTED_AT_START + 1, IMPORTED_AT_START + 2,
                               IMPORTED_AT_START + 3]
            assert note["params"]["result"]["hash"] == hx(relay.node.chain.best_hash)

            assert (await client.call("chain_unsubscribeNewHeads", [sub]))["result"] is True
            assert (await client.call("chain_unsubscribeNewHeads", [sub]))["result"] is False
            assert (await client.call("chain_unsubscribeNewHeads", []))["error"]["code"] == -32602
            # Only a second subscription's heads arrive once the first is gone.
            second = (await client.call("chain_subscribeNewHeads"))["result"]
            assert (await client.notification())["params"]["subscription"] == second
            await relay.import_up_to(IMPORTED_AT_START + 4)
            note = await client.notification()
            assert note["params"]["subscription"] == second
            assert int(note["params"]["result"]["number"], 16) == IMPORTED_AT_START + 4
            assert client.notifications == []


async def test_finalized_heads_subscription_sends_every_block_once(relay: RelayFixture) -> None:
    async with open_websocket_url(ws_url(relay.port)) as ws:
        client = WsClient(ws)
        with trio.fail_after(GUARD_S):
            sub = (await client.call("chain_subscribeFinalizedHeads"))["result"]
            first = await client.notification()
            assert first["method"] == "chain_finalizedHead"
            assert int(first["params"]["result"]["number"], 16) == FINALIZED_AT_START
            await relay.import_up_to(IMPORTED_AT_START + 3)
            relay.finalize(FINALIZED_AT_START + 1)
            relay.finalize(FINALIZED_AT_START + 4)  # jumps: the blocks in between come too
            numbers: list[int] = []
            while len(numbers) < 4:
                note = await client.notification()
                assert note["params"]["subscription"] == sub
                numbers.append(int(note["params"]["result"]["number"], 16))
            assert numbers == list(range(FINALIZED_AT_START + 1, FINALIZED_AT_START + 5))
            # the wrong kind of unsubscribe does not end it
            assert (await client.call("chain_unsubscribeNewHeads", [sub]))["result"] is False
            assert (await client.call("chain_unsubscribeFinalizedHeads", [sub]))["result"] is True


async def test_subscriptions_per_connection_are_capped(relay: RelayFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rpc_server, "MAX_SUBSCRIPTIONS_PER_CONNECTION", 2)
    async with open_websocket_url(ws_url(relay.port)) as ws:
        client = WsClient(ws)
        assert "result" in await client.call("chain_subscribeNewHeads")
        assert "result" in await client.call("chain_subscribeFinalizedHeads")
        refused = await client.call("chain_subscribeNewHeads")
        assert refused["error"]["code"] == -32006
        assert (await client.call("chain_subscribeNewHeads", [1]))["error"]["code"] == -32602


async def test_a_client_leaving_ends_its_subscriptions(relay: RelayFixture) -> None:
    watchers = relay.node._head_watchers  # the node's list: checked, never changed here
    before = len(watchers)
    async with open_websocket_url(ws_url(relay.port)) as ws:
        client = WsClient(ws)
        await client.call("chain_subscribeNewHeads")
        await client.notification()
        assert len(watchers) == before + 1
    # The feed's channel closes with the connection, so the node drops it at its next head.
    await relay.import_up_to(IMPORTED_AT_START + 1)
    with trio.fail_after(GUARD_S):
        while len(watchers) > before:
            await trio.sleep(0.01)


# -- collator -----------------------------------------------------------------------------------


async def test_collator_methods(collator: tuple[CollatorService, int]) -> None:
    service, port = collator
    chain = service.chain
    included = chain.chain.header(chain.included_hash)
    above = sorted((h for h in chain.chain.headers.values() if h.number > included.number),
                   key=lambda h: h.number)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/") as http:
        assert await call(http, "system_name") == "collator-2000-0"
        assert await call(http, "system_nodeRoles") == ["Collator"]
        assert await call(http, "system_health") == {"peers": 0, "isSyncing": False,
                                                     "shouldHavePeers": True}
        assert await call(http, "system_peers") == []

        segment = await call(http, "para_unincludedSegment")
        assert segment["includedHash"] == hx(chain.included_hash)
        assert [int(b["number"], 16) for b in segment["blocks"]] == \
            [h.number for h in above]
        assert len(segment["blocks"]) >= 1
        tip = await call(http, "para_getHeader")
        assert tip == segment["blocks"][-1] and tip["paraId"] == PARA
        assert int(tip["number"], 16) == included.number + len(segment["blocks"])
        by_hash = await call(http, "para_getHeader", [hx(chain.included_hash)])
        assert by_hash["hash"] == hx(chain.included_hash)
        assert by_hash["number"] == hex(included.number)
        assert await call(http, "para_getHeader", [hx(bytes(32))]) is None
        for header in segment["blocks"]:
            block = (await call(http, "para_getBlock", [header["hash"]]))["block"]
            assert block["header"] == header
            body = ideal_run().para_blocks[bytes.fromhex(header["hash"][2:])]
            assert block["extrinsics"] == [hx(encode(x)) for x in body.extrinsics]
            assert len(block["extrinsics"]) > 0  # a saturated pool
        assert (await call(http, "para_getBlock"))["block"]["header"] == tip
        assert await call(http, "para_getBlock", [hx(bytes(32))]) is None

        transfer = encode(Transfer(1, 2, 5, 0))
        before = len(service.pool)
        assert await call(http, "author_submitExtrinsic", [hx(transfer)]) == \
            hx(blake2_256(transfer))
        assert len(service.pool) == before + 1
        assert await error_of(http, "author_submitExtrinsic", ["0x1234"]) == -32602
        assert await error_of(http, "author_submitExtrinsic", ["nothex"]) == -32602
        assert await error_of(http, "author_submitExtrinsic", [hx(transfer + b"\0")]) == -32602
        assert await error_of(http, "author_submitExtrinsic", []) == -32602
        assert await error_of(http, "author_submitExtrinsic",
                              [hx(encode(Transfer(1, 10_000, 5, 0)))]) == 1010
        service.pool.capacity = len(service.pool)
        assert await error_of(http, "author_submitExtrinsic", [hx(transfer)]) == 1016
        assert len(service.pool) == before + 1
        assert await error_of(http, "chain_getHeader") == -32601  # a relay node's method


# -- a live network -----------------------------------------------------------------------------


@pytest.mark.slow
async def test_live_network_heads_and_events(nursery: trio.Nursery) -> None:
    """Three validators author in 1 s slots (shorter ones back nothing yet) and a collator builds
    on the relay node; over one WebSocket the relay node's new heads arrive and, asked for each
    head's events, its blocks carry the para's backed and then included candidates."""
    host = HostConfiguration(slot_ms=1000)
    dev = dev_genesis(VALIDATORS, 1, 1, host)
    network = MemoryNetwork(random.Random(1), FRAME_MAX, record_trace=False)
    await nursery.start(network.run)
    relay_key = Keypair.from_name("relay-0")
    peers = [k.public for k in dev.keys] + [relay_key.public]
    epoch = trio.current_time()
    services: list[Callable[..., Any]] = []
    for i, key in enumerate(dev.keys):
        v = wiring.validator(f"validator-{i}", key, network.add_host(key.public), dev.relay,
                             peers, epoch=epoch)
        services.append(v.run)
    relay_node = wiring.relay_node("relay-0", network.add_host(relay_key.public), dev.relay, peers)
    services.append(relay_node.run)
    col_key = Keypair.from_name("collator-2000-0")
    col = wiring.collator("collator-2000-0", col_key, PARA, network.add_host(col_key.public),
                          dev.paras[PARA].new_chain(), relay_node, host.slot_ms)
    services.append(col.run)
    for run in services:
        await nursery.start(run)
    port = await nursery.start(serve_rpc, relay_node, "127.0.0.1", 0)

    with trio.fail_after(60):
        async with open_websocket_url(ws_url(port)) as ws:
            client = WsClient(ws)
            sub = (await client.call("chain_subscribeNewHeads"))["result"]
            numbers: list[int] = []
            seen: set[str] = set()
            while not {"CandidateBacked", "CandidateIncluded"} <= seen:
                assert len(numbers) < 12, f"no backed and included candidate by #{numbers}"
                note = await client.notification()
                assert note["params"]["subscription"] == sub
                head = note["params"]["result"]
                numbers.append(int(head["number"], 16))
                events = (await client.call("parachain_events", [head["hash"]]))["result"]
                seen |= {e["type"] for e in events or []}
            assert len(numbers) >= 2 and numbers[-1] > numbers[0]
            health = (await client.call("system_health"))["result"]
            assert health["peers"] >= 1
