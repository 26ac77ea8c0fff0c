"""The launcher's HTTP client: one request per connection to a node's RPC or Prometheus port.

Small on purpose: JSON-RPC over HTTP POST and `GET /metrics` are all the launcher asks of a
node, and a fresh connection per request means a restarted or paused node costs a failed
request, never a poisoned connection pool. Built on h11 (already there for hypercorn) over a trio
TCP stream, so every request is cancellable and bounded by a timeout.
"""

from __future__ import annotations

import json
from typing import Any

import h11
import trio

from node.rpc.errors import RpcError

MAX_RESPONSE_BYTES = 16 << 20  # a block with its inherent is a few KiB; metrics a few tens
DEFAULT_TIMEOUT_S = 5.0


class NodeUnreachable(Exception):
    """The node did not answer (not listening, paused, or the exchange failed or timed out)."""


async def http_request(host: str, port: int, method: str, path: str, body: bytes = b"",
                       content_type: str = "application/json",
                       timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 exchange; `NodeUnreachable` for anything but an answer."""
    headers = [("Host", f"{host}:{port}"), ("Connection", "close"),
               ("Content-Length", str(len(body)))]
    if body:
        headers.append(("Content-Type", content_type))
    conn = h11.Connection(h11.CLIENT)
    status, chunks, size = 0, [], 0
    with trio.move_on_after(timeout_s) as scope:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise NodeUnreachable(f"{host}:{port}: {exc.strerror or exc}") from None
        async with stream:
            try:
                await stream.send_all(conn.send(h11.Request(method=method, target=path,
                                                            headers=headers)) or b"")
                await stream.send_all((conn.send(h11.Data(data=body)) if body else b"")
                                      + (conn.send(h11.EndOfMessage()) or b""))
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive_some(65536))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, h11.Data):
                        size += len(event.data)
                        if size > MAX_RESPONSE_BYTES:
                            raise NodeUnreachable(f"{host}:{port}{path}: answer over "
                                                  f"{MAX_RESPONSE_BYTES} bytes")
                        chunks.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                        break
            except (OSError, trio.BrokenResourceError, h11.ProtocolError) as exc:
                raise NodeUnreachable(f"{host}:{port}{path}: {exc}") from None
    if scope.cancelled_caught:
        raise NodeUnreachable(f"{host}:{port}{path}: no answer within {timeout_s} s")
    return status, b"".join(chunks)


async def rpc_call(host: str, port: int, method: str, params: Any = None,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """The result of a JSON-RPC call; `RpcError` for an error response (the server's own type,
    with code, message and data), `NodeUnreachable` when there is no valid answer."""
    doc = {"jsonrpc": "2.0", "id": 1, "method": method,
           "params": [] if params is None else params}
    status, body = await http_request(host, port, "POST", "/", json.dumps(doc).encode(),
                                      timeout_s=timeout_s)
    try:
        answer = json.loads(body)
    except ValueError:
        raise NodeUnreachable(f"{host}:{port} {method}: HTTP {status}, not JSON") from None
    if not isinstance(answer, dict):
        raise NodeUnreachable(f"{host}:{port} {method}: not a JSON-RPC response")
    error = answer.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        raise RpcError(code if isinstance(code, int) else 0, str(error.get("message", "")),
                       error.get("data"))
    if "result" not in answer:
        raise NodeUnreachable(f"{host}:{port} {method}: not a JSON-RPC response")
    return answer["result"]


async def get_text(host: str, port: int, path: str,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    status, body = await http_request(host, port, "GET", path, timeout_s=timeout_s)
    if status != 200:
        raise NodeUnreachable(f"{host}:{port}{path}: HTTP {status}")
    return body.decode("utf-8", "replace")
