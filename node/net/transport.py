"""The transport interface the node services talk through. A connection carries whole message
bodies (framing, and for TCP encryption, are the transport's business); peers are identified by
their public key bytes."""

from __future__ import annotations

from typing import Protocol

PeerId = bytes


class ConnectionClosed(Exception):
    """The connection is gone (closed by either side, peer killed, or transport failure)."""


class Connection(Protocol):
    @property
    def local(self) -> PeerId: ...

    @property
    def remote(self) -> PeerId: ...

    async def send(self, body: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    async def aclose(self) -> None: ...


class Host(Protocol):
    @property
    def peer_id(self) -> PeerId: ...

    async def dial(self, peer: PeerId) -> Connection: ...

    async def accept(self) -> Connection: ...
