"""A small JSON-RPC 2.0 client over one WebSocket: calls with ids and a timeout, and
subscriptions whose notifications arrive on a trio channel.

    async with connect("ws://127.0.0.1:9944") as rpc:
        name = await rpc.call("system_name")
        heads = await rpc.subscribe("chain_subscribeNewHeads",
                                    unsubscribe="chain_unsubscribeNewHeads")
        async for header in heads: ...

One connection per `connect`; nothing reconnects by itself. When the connection goes, every
waiting and later call raises `RpcConnectionError` and every subscription channel ends, so the
owner sees it in one place and opens a new connection (`RpcRelayInterface` does this).

Errors: a JSON-RPC error response raises `node.rpc.errors.RpcError` (code, message, data), the
server's own exception type; transport trouble raises an `RpcClientError` subclass. Whatever the
server sends, a message it should not have sent is counted and dropped, never raised in the
reader: a hostile server can end the connection, not the program.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from node.rpc.errors import RpcError

DEFAULT_TIMEOUT_S = 10.0
# Larger than the server's inbound cap: answers (hex-encoded contexts, blocks) outgrow requests.
MAX_MESSAGE_BYTES = 16 << 20
SUBSCRIPTION_BUFFER = 64


class RpcClientError(Exception):
    """The exchange failed for a reason other than an error response."""


class RpcConnectionError(RpcClientError):
    """Could not connect, or the connection is closed: reconnect to go on."""


class RpcTimeout(RpcClientError):
    pass


class RpcResponseError(RpcClientError):
    """The server answered something that is not a JSON-RPC response to the request."""


@dataclass
class _Pending:
    """One request waiting for its response; the reader fills it in and sets `done`."""

    done: trio.Event = field(default_factory=trio.Event)
    response: dict[str, Any] | None = None
    # For a subscribe request: where its notifications go, registered by the reader the moment
    # the response arrives so a notification right behind it is not lost.
    subscription: _Subscription | None = None


@dataclass
class _Subscription:
    channel: trio.MemorySendChannel[Any]
    unsubscribe: str | None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_int(value: Any) -> int | None:
    # bool is an int to Python, and True would find request 1
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RpcClient:
    def __init__(self, ws: WebSocketConnection, nursery: trio.Nursery, url: str,
                 timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.ignored_messages = 0  # unparsable, unsolicited or for an unknown subscription
        self._ws = ws
        self._nursery = nursery
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._closed: str | None = None  # why, once the connection is gone

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def call(self, method: str, params: list[Any] | dict[str, Any] | None = None, *,
                   timeout_s: float | None = None) -> Any:
        """The result of `method`; raises `RpcError` for an error response, `RpcTimeout`,
        `RpcConnectionError` or `RpcResponseError`."""
        return await self._request(method, params, _Pending(), timeout_s)

    async def subscribe(self, method: str, params: list[Any] | dict[str, Any] | None = None, *,
                        unsubscribe: str | None = None, buffer: int = SUBSCRIPTION_BUFFER,
                        timeout_s: float | None = None) -> trio.MemoryReceiveChannel[Any]:
        """The notifications' `result`s, in order. The channel ends when the connection closes,
        or when its reader falls `buffer` behind (then `unsubscribe`, if named, is sent): the
        reader of the connection never waits for a slow subscriber."""
        send, recv = trio.open_memory_channel[Any](buffer)
        pending = _Pending(subscription=_Subscription(send, unsubscribe))
        try:
            sub_id = await self._request(method, params, pending, timeout_s)
        except BaseException:
            send.close()
            raise
        if not isinstance(sub_id, str):
            send.close()
            raise RpcResponseError(f"{method}: subscription id is not a string: {sub_id!r}")
        return recv

    async def _request(self, method: str, params: Any, pending: _Pending,
                       timeout_s: float | None) -> Any:
        if self._closed is not None:
            raise RpcConnectionError(f"{self.url}: {self._closed}")
        request_id = next(self._ids)
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            body["params"] = params
        self._pending[request_id] = pending
        try:
            with trio.move_on_after(timeout_s if timeout_s is not None else self.timeout_s
                                    ) as scope:
                try:
                    await self._ws.send_message(json.dumps(body))
                except ConnectionClosed:
                    self._note_closed("connection closed")
                    raise RpcConnectionError(f"{self.url}: {self._closed}") from None
                await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if scope.cancelled_caught:
            raise RpcTimeout(f"{method}: no answer from {self.url}")
        if pending.response is None:  # woken by the connection closing
            raise RpcConnectionError(f"{self.url}: {self._closed}")
        return _result_of(method, pending.response)

    # -- the reader -----------------------------------------------------------------------

    async def read_messages(self) -> None:
        """Dispatch every incoming message until the connection closes; never raises (other
        than cancellation), so it never takes down the nursery it runs in."""
        reason = "connection closed by the client"
        try:
            while True:
                self._dispatch(await self._ws.get_message())
        except ConnectionClosed as exc:
            reason = f"connection closed ({exc.reason})"
        except Exception as exc:  # a bug or a library surprise: end this connection only
            reason = f"connection reader failed: {exc!r}"
        finally:
            self._note_closed(reason)

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw, parse_constant=_reject_constant)
        except Exception:  # bad JSON, bad UTF-8, too deep: the server's problem, not ours
            self.ignored_messages += 1
            return
        if not isinstance(message, dict):  # we never send batches, so never get one back
            self.ignored_messages += 1
            return
        request_id = _json_int(message.get("id"))
        if request_id is not None and ("result" in message or "error" in message):
            self._on_response(request_id, message)
        elif isinstance(message.get("method"), str) and isinstance(message.get("params"), dict):
            self._on_notification(message["params"])
        else:
            self.ignored_messages += 1

    def _on_response(self, request_id: int, message: dict[str, Any]) -> None:
        pending = self._pending.get(request_id)
        if pending is None or pending.done.is_set():  # timed out already, or a stray id
            self.ignored_messages += 1
            return
        pending.response = message
        sub_id = message.get("result")
        if pending.subscription is not None and isinstance(sub_id, str):
            self._subscriptions[sub_id] = pending.subscription
        pending.done.set()

    def _on_notification(self, params: dict[str, Any]) -> None:
        sub_id = params.get("subscription")
        subscription = self._subscriptions.get(sub_id) if isinstance(sub_id, str) else None
        if subscription is None or "result" not in params:
            self.ignored_messages += 1
            return
        try:
            subscription.channel.send_nowait(params["result"])
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._drop_subscription(sub_id, subscription)

    def _drop_subscription(self, sub_id: Any, subscription: _Subscription) -> None:
        del self._subscriptions[sub_id]
        subscription.channel.close()
        if subscription.unsubscribe is not None and self._closed is None:
            self._nursery.start_soon(self._unsubscribe_quietly, subscription.unsubscribe, sub_id)

    async def _unsubscribe_quietly(self, method: str, sub_id: str) -> None:
        # Best effort: a failure here only leaves the server sending what we drop.
        with suppress(RpcError, RpcClientError):
            await self.call(method, [sub_id])

    def _note_closed(self, reason: str) -> None:
        if self._closed is not None:
            return
        self._closed = reason
        for pending in self._pending.values():
            pending.done.set()  # with no response: the caller raises RpcConnectionError
        for subscription in self._subscriptions.values():
            subscription.channel.close()
        self._subscriptions.clear()

    async def keep_alive(self, interval_s: float) -> None:
        """Ping every `interval_s`; a connection whose pong does not come back within the call
        timeout is dead (a peer gone without closing it) and is closed, which ends the reader."""
        while self._closed is None:
            await trio.sleep(interval_s)
            with trio.move_on_after(self.timeout_s) as scope:
                try:
                    await self._ws.ping()
                except ConnectionClosed:
                    return
            if scope.cancelled_caught:
                self._note_closed("keep-alive ping unanswered")
                with trio.move_on_after(self.timeout_s):
                    await self._ws.aclose()  # closes the stream even when cancelled
                return


def _result_of(method: str, response: dict[str, Any]) -> Any:
    if "error" in response:
        error = response["error"]
        if not isinstance(error, dict) or not isinstance(error.get("message"), str) \
                or _json_int(error.get("code")) is None:
            raise RpcResponseError(f"{method}: malformed error object {error!r:.200}")
        raise RpcError(error["code"], error["message"], error.get("data"))
    return response["result"]


def _why(exc: BaseException) -> str:
    """What went wrong at the bottom of `exc`'s causes, in words: trio-websocket's
    HandshakeError() wraps trio's "all attempts failed" group around the refused connection."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def connect(url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                  keepalive_s: float | None = None,
                  max_message_bytes: int = MAX_MESSAGE_BYTES) -> AsyncIterator[RpcClient]:
    """An `RpcClient` on a new WebSocket connection to `url` (ws://host:port/), closed on exit.
    Failing to connect raises `RpcConnectionError`; an exception of the body passes unchanged."""
    body_error: BaseException | None = None
    try:
        async with open_websocket_url(url, max_message_size=max_message_bytes,
                                      connect_timeout=timeout_s,
                                      disconnect_timeout=timeout_s) as ws, \
                trio.open_nursery() as nursery:
            client = RpcClient(ws, nursery, url, timeout_s)
            nursery.start_soon(client.read_messages)
            if keepalive_s is not None:
                nursery.start_soon(client.keep_alive, keepalive_s)
            try:
                yield client
            except BaseException as exc:
                # Re-raised outside the nursery, so the caller gets its own exception and not
                # an ExceptionGroup around it.
                body_error = exc
            finally:
                nursery.cancel_scope.cancel()
    except (HandshakeError, OSError, ValueError) as exc:
        # Opening (ValueError: a URL trio-websocket cannot parse) or closing failed; the body's
        # own exceptions were caught above and matter more than a failed close.
        if body_error is not None:
            raise body_error from None
        raise RpcConnectionError(f"cannot connect to {url}: {_why(exc)}") from exc
    if body_error is not None:
        raise body_error
