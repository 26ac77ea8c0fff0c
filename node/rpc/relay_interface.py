"""The collator's `RelayChainInterface` when its relay node is another process: the relay node's
JSON-RPC WebSocket (`--relay-chain-rpc-url ws://HOST:PORT`).

`RpcRelayInterface.run` holds one connection at a time: it connects (retrying with capped
exponential backoff while the relay node is not up, each attempt a warning naming the URL, the
error and the wait), subscribes to `chain_subscribeNewHeadsRaw`
and hands each new best head, decoded from its canonical bytes into the very `RelayHeader` the
node holds, to every `watch_heads()` receiver, as `RelayNodeService.watch_heads` does in-process
(a receiver that falls `buffer` behind is dropped). When the connection goes it connects and
subscribes again; heads announced while it was away are not replayed (the collator builds on
the newest one only), and the current head the new subscription starts with is passed on only
if it is not the one passed on last.

On each connection it also asks the relay node where it listens for p2p
(`system_localListenAddresses`) and hands the addresses to `on_listen_addresses`: that is how a
collator given only `--relay-chain-rpc-url` finds the relay node to dial (an address on an
unspecified host, 0.0.0.0 or ::, is rewritten to the RPC URL's host, which is known to reach it).
A relay node that does not answer the method leaves the collator to its `--bootnodes`.

`collation_context` is one `parachain_collationContext` call. Nothing the relay node sends or
fails to send reaches the collator as an exception: a lost connection, a timeout, an error
response or a malformed answer is logged and answered with None, as the in-process node answers
for a block it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import trio

from node.rpc.client import RpcClient, RpcClientError, connect
from node.rpc.errors import STATE_UNAVAILABLE, RpcError
from proto.codec import decode
from proto.errors import DecodeError
from proto.relay_block import RelayHeader
from relay.core.collator_api import CollationContext

MAX_HEADER_BYTES = 1024  # an encoded header is ~200 bytes
MAX_CONTEXT_BYTES = 4 << 20  # a context is mostly its state proof: a few keys' merkle paths
MAX_LISTEN_ADDRESSES = 16
UNSPECIFIED_HOSTS = ("0.0.0.0", "::", "[::]")
HEADS_SUBSCRIPTION_BUFFER = 256  # between the socket and our fan-out, which never waits


def _unhex(value: Any, max_bytes: int) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("0x") \
            or len(value) > 2 + 2 * max_bytes:
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


def decode_relay_header(result: Any) -> RelayHeader | None:
    """A `chain_newHeadRaw` / `chain_getHeaderRaw` result as a header; None if it is not one."""
    raw = _unhex(result, MAX_HEADER_BYTES)
    if raw is None:
        return None
    try:
        return decode(raw, RelayHeader)
    except DecodeError:
        return None


def decode_collation_context(result: Any) -> CollationContext | None:
    """The inverse of `node.rpc.methods.collation_context_json`; None if `result` is not one."""
    raw = _unhex(result.get("context") if isinstance(result, dict) else None, MAX_CONTEXT_BYTES)
    if raw is None:
        return None
    try:
        return decode(raw, CollationContext)
    except DecodeError:
        return None


def listen_addresses(result: Any, rpc_url: str) -> list[str] | None:
    """A `system_localListenAddresses` answer as bootnode strings, an unspecified host replaced
    by the RPC URL's host; None if `result` is not a list of strings. The strings themselves
    are checked by whoever dials them (`Discovery.learn_bootnodes`)."""
    if not isinstance(result, list) or len(result) > MAX_LISTEN_ADDRESSES \
            or not all(isinstance(a, str) and len(a) < 256 for a in result):
        return None
    url_host = urlsplit(rpc_url).hostname or "127.0.0.1"
    if ":" in url_host:
        url_host = f"[{url_host}]"
    out = []
    for address in result:
        identity, sep, hostport = address.rpartition("@")
        host, colon, port = hostport.rpartition(":")
        if colon and host in UNSPECIFIED_HOSTS:
            hostport = f"{url_host}:{port}"
        out.append(f"{identity}{sep}{hostport}")
    return out


@dataclass
class RelayInterfaceStats:
    """Counts for logs and tests."""

    connections: int = 0  # sessions that got as far as a heads subscription
    heads: int = 0  # heads passed on to watchers
    rejected: int = 0  # notifications or answers that did not decode
    failed_calls: int = 0  # collation_context calls answered None for a failure


class RpcRelayInterface:
    def __init__(self, url: str, *, timeout_s: float = 10.0, retry_min_s: float = 0.1,
                 retry_max_s: float = 5.0, keepalive_s: float | None = 15.0,
                 log: Any = None,
                 on_listen_addresses: Callable[[list[str]], None] | None = None) -> None:
        self.url = url
        self.on_listen_addresses = on_listen_addresses
        self.timeout_s = timeout_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.keepalive_s = keepalive_s
        self.log = log
        self.stats = RelayInterfaceStats()
        self._client: RpcClient | None = None  # the live connection's, when there is one
        self._watchers: list[trio.MemorySendChannel[RelayHeader]] = []
        self._last_head: RelayHeader | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None and not self._client.closed

    # -- RelayChainInterface ------------------------------------------------------------------

    def watch_heads(self, buffer: int = 16) -> trio.MemoryReceiveChannel[RelayHeader]:
        """New best heads from now on; a watcher that falls `buffer` behind is dropped."""
        send, recv = trio.open_memory_channel[RelayHeader](buffer)
        self._watchers.append(send)
        return recv

    async def collation_context(self, para_id: int, leaf: bytes, max_cores: int = 0
                                ) -> CollationContext | None:
        client = self._client
        if client is None:
            self.stats.failed_calls += 1
            return None
        try:
            result = await client.call("parachain_collationContext",
                                       [para_id, "0x" + leaf.hex(), max_cores])
        except RpcError as exc:
            # Unknown or pruned block: the node may not have imported our leaf yet (or dropped
            # it); the in-process node answers None for that too.
            if exc.code != STATE_UNAVAILABLE:
                self._log("warning", "relay rpc collation context refused", code=exc.code,
                          message=exc.message)
            self.stats.failed_calls += 1
            return None
        except RpcClientError as exc:
            self._log("warning", "relay rpc collation context failed", error=str(exc))
            self.stats.failed_calls += 1
            return None
        if result is None:
            return None  # the para is not registered at `leaf`
        ctx = decode_collation_context(result)
        if ctx is None or ctx.target.relay_parent.hash != leaf:
            self.stats.rejected += 1
            self._log("warning", "relay rpc sent a malformed collation context",
                      leaf="0x" + leaf.hex())
            return None
        return ctx

    # -- the connection ----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Until cancelled: stay connected and pass heads on. Started at once, before the
        first connection, so a collator can start before its relay node."""
        task_status.started()
        delay = self.retry_min_s
        while True:
            connections = self.stats.connections
            try:
                await self._session()
                reason = "connection closed"
            except (RpcError, RpcClientError) as exc:
                # The client's messages lead with the URL, which the line names already.
                reason = str(exc).removeprefix(f"cannot connect to {self.url}: ").removeprefix(
                    f"{self.url}: ")
            except Exception as exc:  # whatever it was, the collator goes on and we retry
                reason = repr(exc)
                self._log("exception", "relay rpc session failed")
            if self.stats.connections > connections:
                delay = self.retry_min_s  # it was up: the next attempt is a reconnect
                self._log("warning", f"relay RPC {self.url} disconnected: {reason}; "
                          f"reconnecting in {delay:g}s", url=self.url, retry_in_s=delay)
            else:  # every attempt is a line, with the backoff it waits
                self._log("warning", f"cannot reach relay RPC {self.url}: {reason}; "
                          f"retrying in {delay:g}s", url=self.url, retry_in_s=delay)
            await trio.sleep(delay)
            delay = min(self.retry_max_s, delay * 2)

    async def _session(self) -> None:
        async with connect(self.url, timeout_s=self.timeout_s,
                           keepalive_s=self.keepalive_s) as client:
            heads = await client.subscribe("chain_subscribeNewHeadsRaw",
                                           unsubscribe="chain_unsubscribeNewHeadsRaw",
                                           buffer=HEADS_SUBSCRIPTION_BUFFER)
            self._client = client
            self.stats.connections += 1
            self._log("info", "relay rpc connected", url=self.url)
            await self._learn_listen_addresses(client)
            try:
                async for result in heads:
                    header = decode_relay_header(result)
                    if header is None:
                        self.stats.rejected += 1
                        self._log("warning", "relay rpc sent a malformed header")
                        continue
                    self._publish(header)
            finally:
                self._client = None

    async def _learn_listen_addresses(self, client: RpcClient) -> None:
        if self.on_listen_addresses is None:
            return
        try:
            result = await client.call("system_localListenAddresses")
        except RpcError as exc:
            self._log("warning", "relay node does not tell its p2p address; use --bootnodes",
                      code=exc.code, message=exc.message)
            return
        addresses = listen_addresses(result, self.url)
        if addresses is None:
            self.stats.rejected += 1
            self._log("warning", "relay rpc sent malformed listen addresses")
            return
        self._log("info", "relay node p2p address", addresses=addresses)
        self.on_listen_addresses(addresses)

    def _publish(self, header: RelayHeader) -> None:
        if header == self._last_head:
            return  # a new subscription starts with the current head, maybe already passed on
        self._last_head = header
        self.stats.heads += 1
        for watcher in list(self._watchers):
            try:
                watcher.send_nowait(header)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                # Dropped as the in-process node drops it (not closed): same semantics
                # whichever interface the collator has.
                self._watchers.remove(watcher)

    def _log(self, level: str, event: str, **kw: Any) -> None:
        if self.log is not None:
            getattr(self.log, level)(event, **kw)


__all__ = ["RelayInterfaceStats", "RpcRelayInterface", "decode_collation_context",
           "decode_relay_header", "listen_addresses"]
