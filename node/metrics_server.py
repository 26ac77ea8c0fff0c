"""The Prometheus endpoint: `GET /metrics` on the prometheus port, the text exposition of one
node's registry. A deliberately small HTTP/1.x responder (one request per connection, bounded
request head, a timeout), so a scraper or a hostile client can never hold the node up."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import trio

MAX_REQUEST_HEAD = 8192
READ_TIMEOUT_S = 5.0
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


async def _read_head(stream: trio.abc.Stream) -> bytes | None:
    data = b""
    with trio.move_on_after(READ_TIMEOUT_S):
        while b"\r\n\r\n" not in data and len(data) < MAX_REQUEST_HEAD:
            chunk = await stream.receive_some(MAX_REQUEST_HEAD)
            if not chunk:
                break
            data += chunk
        return data
    return None


def _response(status: bytes, body: bytes, content_type: bytes = b"text/plain") -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n" + body)


async def _serve_one(stream: trio.abc.Stream, exposition: Callable[[], bytes]) -> None:
    try:
        head = await _read_head(stream)
        if head is None:
            return
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or parts[0] != b"GET":
            reply = _response(b"405 Method Not Allowed", b"GET /metrics\n")
        elif parts[1].split(b"?", 1)[0] in (b"/metrics", b"/"):
            reply = _response(b"200 OK", exposition(), CONTENT_TYPE)
        else:
            reply = _response(b"404 Not Found", b"not found\n")
        await stream.send_all(reply)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await stream.aclose()


async def serve_metrics(exposition: Callable[[], bytes], host: str, port: int, *,
                        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; reports the bound port (`port` 0 picks one)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = int(listeners[0].socket.getsockname()[1])
    async with trio.open_nursery() as nursery:
        task_status.started(bound)
        await trio.serve_listeners(partial(_serve_one, exposition=exposition), listeners,
                                   handler_nursery=nursery)
