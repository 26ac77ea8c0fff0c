"""The transport interface every node service talks to, and the wire framing of its frames.

A node is identified by its public key bytes (`PeerId`). A `Host` dials peers and accepts their
dials; a `Connection` carries whole frames, each tagged with a small integer protocol id (the
"lane": gossip, requests, responses, ...). Implementations: `node.net.memory` (in-process, virtual
time, seeded faults) and, later, an authenticated TCP transport behind the same two ABCs.

Wire layout of one frame on a byte stream: `u32 big-endian length` then the body, where the body is
`protocol id (1 byte) || payload`. The length is checked against the largest cap of any lane by
`proto.framing.FrameDecoder` before a byte of the body is buffered; the exact per-lane cap is
checked as soon as the frame is complete and before it is delivered, so an oversized payload never
reaches a handler.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from enum import Enum
from typing import NamedTuple

from proto.errors import DecodeError, FrameTooLarge
from proto.framing import FrameDecoder, frame
from proto.network import PeerId

FrameCaps = Mapping[int, int]
"""Protocol id -> largest payload (bytes) accepted on that lane."""


class Direction(Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Frame(NamedTuple):
    protocol: int
    body: bytes


class TransportError(Exception):
    """Base of the transport's own failures (not of malformed peer input: that is DecodeError)."""


class DialError(TransportError):
    """The peer could not be reached (unknown, down, partitioned, or we are down)."""


class ConnectionClosed(TransportError):
    """Sending on, or accepting from, something already closed."""


class UnknownProtocol(DecodeError):
    """A frame on a lane this node does not speak: malformed input, like any other."""


def encode_wire_frame(protocol: int, body: bytes, caps: FrameCaps) -> bytes:
    """Length-prefixed bytes of one frame; refuses what the receiver's caps would reject."""
    if protocol not in caps or not 0 <= protocol <= 255:
        raise UnknownProtocol(f"no frame cap for protocol {protocol}")
    return frame(bytes((protocol,)) + body, caps[protocol] + 1)


class WireFrameDecoder:
    """Bytes in, `Frame`s out, with the per-lane caps enforced. Dead after the first error."""

    def __init__(self, caps: FrameCaps) -> None:
        if not caps:
            raise ValueError("at least one protocol cap is needed")
        self._caps = dict(caps)
        # +1 for the protocol byte that leads every body.
        self._frames = FrameDecoder(max(self._caps.values()) + 1)
        self._dead = False

    @property
    def between_frames(self) -> bool:
        """Alive and holding no part of a frame: a whole frame may be taken as is."""
        return not self._dead and self._frames.between_frames

    def feed(self, data: bytes) -> list[Frame]:
        if self._dead:
            raise DecodeError("frame decoder already failed; the connection must be closed")
        try:
            bodies = self._frames.feed(data)
        except DecodeError:
            self._dead = True
            raise
        out: list[Frame] = []
        for body in bodies:
            if not body:
                self._dead = True
                raise DecodeError("empty frame: no protocol id")
            protocol = body[0]
            cap = self._caps.get(protocol)
            if cap is None:
                self._dead = True
                raise UnknownProtocol(f"frame on unknown protocol {protocol}")
            if len(body) - 1 > cap:
                self._dead = True
                raise FrameTooLarge(len(body) - 1, cap)
            out.append(Frame(protocol, body[1:]))
        return out


class Connection(ABC):
    """One link to one peer. Iterating yields frames until either side closes; a malformed frame
    closes the connection and is raised (as `DecodeError`) out of the iteration."""

    local: PeerId
    remote: PeerId
    direction: Direction
    # Whether `send` can wait on the peer (a full socket buffer). A link whose send never waits
    # (the in-memory network's) needs no stall timer around each frame.
    send_may_stall: bool = True

    @abstractmethod
    async def send(self, protocol: int, body: bytes) -> None:
        """Queue one frame; raises `ConnectionClosed` if this side is closed."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[Frame]: ...

    @abstractmethod
    async def aclose(self) -> None:
        """Close both directions; idempotent. The peer's iteration ends."""

    @property
    @abstractmethod
    def closed(self) -> bool: ...


class Host(ABC):
    """A node's endpoint on a network."""

    peer_id: PeerId
    # Who may connect, asked at the handshake once the dialer has proven its key (None: anyone);
    # the peer manager installs its ban check here, so a banned key gets no link at all.
    admission: Callable[[PeerId], bool] | None = None

    @abstractmethod
    async def dial(self, peer: PeerId) -> Connection:
        """Open an outbound connection; raises `DialError` when the peer cannot be reached."""

    @abstractmethod
    async def accept(self) -> Connection:
        """Wait for the next inbound connection; raises `ConnectionClosed` once the host is down."""
