"""node/cluster/http.py and parse_metrics: what a node handle makes of a node's answers, from an
honest Prometheus text to an HTTP server that answers junk or nothing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio

from node.cluster.handle import parse_metrics
from node.cluster.http import NodeUnreachable, get_text, rpc_call
from node.metrics import NodeMetrics
from node.rpc.errors import METHOD_NOT_FOUND, RpcError

GUARD_S = 10  # a hung test fails instead of blocking the suite; never an expected duration


def test_parse_metrics_keys_samples_by_name_and_labels() -> None:
    metrics = NodeMetrics("validator", "alice", start_time=12.0)
    metrics.block_height.labels("best").set(7)
    metrics.seconded.inc(3)
    parsed = parse_metrics(metrics.exposition().decode())
    assert parsed['substrate_block_height{status="best"}'] == 7.0
    assert parsed["polkadot_parachain_candidate_backing_candidates_seconded_total"] == 3.0
    assert parsed["process_start_time_seconds"] == 12.0
    assert parsed["substrate_node_roles"] == 4.0


Handler = Callable[[bytes], Awaitable[bytes | None]]


async def serve(nursery: trio.Nursery, answer: Handler) -> int:
    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive_some(4096)
            reply = await answer(request)
            if reply is not None:
                await stream.send_all(reply)

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


def http_reply(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n" + body)


async def test_answers_errors_and_junk(nursery: trio.Nursery) -> None:
    replies = iter([
        http_reply(json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"peers": 2}}).encode()),
        http_reply(json.dumps({"jsonrpc": "2.0", "id": 1, "error": {
            "code": METHOD_NOT_FOUND, "message": "Method not found: x"}}).encode()),
        http_reply(b"{not json"),
        http_reply(b"[1, 2]"),
        b"garbage that is not HTTP\r\n\r\n",
        http_reply(b"", b"404 Not Found"),
        http_reply(b"metric 1\n"),
    ])

    async def answer(_request: bytes) -> bytes | None:
        return next(replies)

    port = await serve(nursery, answer)
    with trio.fail_after(GUARD_S):
        assert await rpc_call("127.0.0.1", port, "system_health") == {"peers": 2}
        with pytest.raises(RpcError) as err:
            await rpc_call("127.0.0.1", port, "x")
        assert err.value.code == METHOD_NOT_FOUND
        for _ in range(3):
            with pytest.raises(NodeUnreachable):
                await rpc_call("127.0.0.1", port, "system_health")
        with pytest.raises(NodeUnreachable, match="HTTP 404"):
            await get_text("127.0.0.1", port, "/metrics")
        assert await get_text("127.0.0.1", port, "/metrics") == "metric 1\n"


async def test_silence_and_a_closed_port_are_unreachable(nursery: trio.Nursery) -> None:
    async def never(_request: bytes) -> bytes | None:
        await trio.sleep_forever()
        return None

    port = await serve(nursery, never)
    with trio.fail_after(GUARD_S):
        with pytest.raises(NodeUnreachable, match="no answer within"):
            await rpc_call("127.0.0.1", port, "system_health", timeout_s=0.2)
        with trio.socket.socket() as s:
            await s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        with pytest.raises(NodeUnreachable):
            await rpc_call("127.0.0.1", closed, "system_health")
