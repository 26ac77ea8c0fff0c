"""The RPC port: JSON-RPC 2.0 over HTTP (POST /) and WebSocket on one port, as a raw ASGI app
served by hypercorn's trio worker.

HTTP: one request or a batch per POST, bodies over `MAX_BODY_BYTES` refused with 413;
`GET /health` answers `system_health` for probes. WebSocket: any number of requests per
connection, plus subscriptions whose notifications are pushed as they happen.

Two hypercorn behaviours shape this module: the app must answer the lifespan protocol or the
worker fails at start-up, and hypercorn does not cancel the app when a WebSocket client goes
away, so each connection runs its reader, writer and subscriptions in one nursery that is
cancelled on `websocket.disconnect`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from node.rpc.errors import (
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    TOO_MANY_SUBSCRIPTIONS,
    RpcError,
    invalid_params,
)
from node.rpc.methods import RpcMethods, Subscription
from node.rpc.params import Param, bind
from node.rpc.protocol import error_text, handle_payload
from node.throttle import Throttle

MAX_BODY_BYTES = 1 << 20
MAX_WS_CONNECTIONS = 256
MAX_SUBSCRIPTIONS_PER_CONNECTION = 64
# Messages queued for one WebSocket client; a subscriber that lets this fill is disconnected
# rather than allowed to hold the node's memory or stall its feeds.
OUTBOX_SIZE = 512
REFUSAL_LINE_S = 10.0

Scope = dict[str, Any]
Receive = Any  # ASGI callables; hypercorn's own aliases are not worth coupling to
Send = Any

_JSON = [(b"content-type", b"application/json")]


def _subscription_id(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_params("a subscription id is a string")
    return value


class RpcApp:
    def __init__(self, methods: RpcMethods, *, log: Any = None,
                 max_ws_connections: int = MAX_WS_CONNECTIONS) -> None:
        self.methods = methods
        self.log = log
        self.max_ws_connections = max_ws_connections
        self.ws_connections = 0
        self.ws_refused = 0
        self._refusal_lines = Throttle(REFUSAL_LINE_S, trio.current_time)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await WsConnection(self, send).run(receive)

    def note_refused(self) -> None:
        """A WebSocket refused at the cap: counted, and a warning at most every
        `REFUSAL_LINE_S` (a flood of connections is one line, not one per connection)."""
        self.ws_refused += 1
        held = self._refusal_lines.allow("cap")
        if held is not None and self.log is not None:
            self.log.warning("RPC WebSocket connection refused: at the connection cap",
                             cap=self.max_ws_connections,
                             **({"more_refused": held} if held else {}))

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- HTTP -----------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == "/health":
            await self._respond(send, 200, json.dumps(self.methods.call("system_health", None)))
            return
        if path != "/":
            await self._respond(send, 404, error_text(None, RpcError(INVALID_REQUEST, "Not found")))
            return
        if method != "POST":
            await self._respond(send, 405, error_text(None, RpcError(
                INVALID_REQUEST, "JSON-RPC takes POST")), [(b"allow", b"POST")])
            return
        body = await self._read_body(scope, receive)
        if body is None:
            await self._respond(send, 413, error_text(None, RpcError(
                INVALID_REQUEST, f"Request too large: over {MAX_BODY_BYTES} bytes")))
            return
        out = await handle_payload(body, self._http_call, log=self.log)
        if out is None:  # notifications only: nothing to answer
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await self._respond(send, 200, out)

    @staticmethod
    async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
        """The request body, or None once it passes the cap (declared or actual)."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                return None
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return bytes(body)  # the response goes nowhere; keep the path simple
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                return None
            if not message.get("more_body", False):
                return bytes(body)

    async def _http_call(self, name: str, params: Any) -> Any:
        if name in self.methods.subscriptions or name in self.methods.unsubscriptions:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {name} needs a WebSocket")
        return self.methods.call(name, params)

    @staticmethod
    async def _respond(send: Send, status: int, text: str,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = text.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_JSON, (b"content-length", str(len(body)).encode()),
                                *(headers or [])]})
        await send({"type": "http.response.body", "body": body})


@dataclass
class _ActiveSubscription:
    subscription: Subscription
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class WsConnection:
    def __init__(self, app: RpcApp, send: Send) -> None:
        self.app = app
        self.methods = app.methods
        self._send = send
        self._outbox_send, self._outbox_recv = trio.open_memory_channel[str](OUTBOX_SIZE)
        self._subscriptions: dict[str, _ActiveSubscription] = {}
        # Feeds started by the request being handled wait for its response to be queued, so a
        # client always learns its subscription id before the first notification.
        self._response_queued = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._close_code: int | None = None

    async def run(self, receive: Receive) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self.app.ws_connections >= self.app.max_ws_connections:
            self.app.note_refused()
            await self._send({"type": "websocket.close", "code": 1013})  # try again later
            return
        # The slot is taken before the first await: a handshake still sending its accept counts,
        # or every connection of a burst passes the check before any of them is counted.
        self.app.ws_connections += 1
        try:
            await self._send({"type": "websocket.accept"})
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._write)
                await self._read(receive)
                nursery.cancel_scope.cancel()
            if self._close_code is not None:
                # the client may be gone already; then there is nothing left to tell it
                with contextlib.suppress(Exception):
                    await self._send({"type": "websocket.close", "code": self._close_code})
        finally:
            self.app.ws_connections -= 1

    async def _read(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message["type"] != "websocket.receive":
                continue
            text = message.get("text")
            data = text if text is not None else message.get("bytes") or b""
            out = await handle_payload(data, self._call, log=self.app.log)
            if out is not None:
                await self._outbox_send.send(out)
            self._response_queued.set()
            self._response_queued = trio.Event()

    async def _write(self) -> None:
        try:
            async for text in self._outbox_recv:
                await self._send({"type": "websocket.send", "text": text})
        except Exception:
            self._drop()  # the socket is gone under us: end the connection's tasks

    def _drop(self, close_code: int | None = None) -> None:
        self._close_code = close_code
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # -- requests -------------------------------------------------------------------------------

    async def _call(self, name: str, params: Any) -> Any:
        subscription = self.methods.subscriptions.get(name)
        if subscription is not None:
            bind(params, ())
            return self._subscribe(subscription)
        subscription = self.methods.unsubscriptions.get(name)
        if subscription is not None:
            (sub_id,) = bind(params, (Param("subscription", _subscription_id, required=True),))
            active = self._subscriptions.get(sub_id)
            if active is None or active.subscription is not subscription:
                return False
            del self._subscriptions[sub_id]
            active.scope.cancel()
            return True
        return self.methods.call(name, params)

    def _subscribe(self, subscription: Subscription) -> str:
        if len(self._subscriptions) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise RpcError(TOO_MANY_SUBSCRIPTIONS, "Too many subscriptions on this connection")
        assert self._nursery is not None
        sub_id = secrets.token_hex(8)
        active = self._subscriptions[sub_id] = _ActiveSubscription(subscription)
        self._nursery.start_soon(self._run_feed, sub_id, active, self._response_queued)
        return sub_id

    async def _run_feed(self, sub_id: str, active: _ActiveSubscription, ready: trio.Event
                        ) -> None:
        notification = active.subscription.notification

        def emit(result: Any) -> None:
            text = json.dumps({"jsonrpc": "2.0", "method": notification,
                               "params": {"subscription": sub_id, "result": result}})
            try:
                self._outbox_send.send_nowait(text)
            except trio.WouldBlock:
                self._drop(1008)  # policy violation: the client does not read its notifications

        with active.scope:
            await ready.wait()
            try:
                await active.subscription.feed(emit)
            except Exception:  # a broken feed ends its subscription, not the connection
                if self.app.log is not None:
                    self.app.log.exception("rpc subscription failed", notification=notification)
            finally:
                if self._subscriptions.get(sub_id) is active:
                    del self._subscriptions[sub_id]  # it counts against the cap no longer


def _bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (not yet listening), as hypercorn would bind it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    return sock


def _port_of(bind: str) -> int:
    return int(bind.rsplit(":", 1)[1])


async def serve_rpc(node: Any, host: str, port: int, *, log: Any = None,
                    listen_addresses: Sequence[str] = (),
                    max_ws_connections: int = MAX_WS_CONNECTIONS,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `node`'s RPC on host:port until cancelled; `task_status.started(bound_port)` (so a
    port of 0 lets the system choose). `listen_addresses` answer `system_localListenAddresses`."""
    app = RpcApp(RpcMethods.for_node(node, listen_addresses), log=log,
                 max_ws_connections=max_ws_connections)
    config = Config()
    # Bound here, not by hypercorn: a port in use is then this OSError, raised before `started`
    # (hypercorn logs its own bind failure and ends with an unrelated ClosedResourceError).
    config.bind = [f"fd://{_bound_socket(host, port).detach()}"]
    config.websocket_max_message_size = MAX_BODY_BYTES
    # Hypercorn's errors go through the process's logging set-up (structlog), not its own handler.
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        # The app reads plain dicts; hypercorn's TypedDict signature would make it narrow each
        # message type for no gain.
        asgi_app = cast(Any, app)
        binds: list[str] = await nursery.start(partial(serve, asgi_app, config, mode="asgi"))
        task_status.started(_port_of(binds[0]))
