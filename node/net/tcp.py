"""Authenticated, encrypted TCP transport: `node.net.handshake` over trio sockets, behind the same
`Host`/`Connection` ABCs as the in-memory network.

On the stream, after the three handshake messages (each a u32 length prefix and a body of at most
`HANDSHAKE_FRAME_CAP` bytes), everything is a record: a u32 length prefix, then a ChaCha20-Poly1305
ciphertext whose plaintext is exactly one wire frame (`encode_wire_frame`). A record length is
checked against the largest frame cap plus framing and AEAD overhead before any of its body is
read, so a hostile 2 GiB prefix costs a closed connection and nothing else.

The responder's first record is a confirmation (a sealed empty plaintext, never a valid frame): the
dialer's `dial` returns only once it has opened it, so a dialer whose identity the responder refuses
gets a `DialError` instead of a connection that dies on first use.

Unauthenticated inbound connections are bounded twice: each must finish its handshake within
`handshake_timeout` seconds, and at most `max_unauthenticated` may be handshaking at once (the excess
is closed as soon as it is accepted). A failed handshake closes that socket only; the listener goes
on accepting.
"""

from __future__ import annotations

import ipaddress
import secrets
import struct
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import trio

from node.net.handshake import (
    AEAD_TAG_LEN,
    HANDSHAKE_FRAME_CAP,
    DialerHandshake,
    HandshakeError,
    HandshakeResult,
    IdentityPolicy,
    MalformedHandshake,
    ResponderHandshake,
    SecureChannel,
    Signer,
    frame_handshake_message,
)
from node.net.transport import (
    Connection,
    ConnectionClosed,
    DialError,
    Direction,
    Frame,
    FrameCaps,
    Host,
    WireFrameDecoder,
    encode_wire_frame,
)
from proto.errors import DecodeError, FrameTooLarge
from proto.network import PeerId

DEFAULT_HANDSHAKE_TIMEOUT_S = 5.0
DEFAULT_MAX_UNAUTHENTICATED = 64
RECORD_PREFIX = struct.Struct(">I")
_WIRE_FRAME_OVERHEAD = 4 + 1  # the frame's own length prefix and its protocol byte
_RECEIVE_CHUNK = 65536

Address = tuple[str, int]


class HandshakeAborted(HandshakeError):
    """The peer closed the connection, or it broke, before the handshake completed."""


class HandshakeTimedOut(HandshakeError):
    """The handshake did not complete within the timeout."""


class HandshakeRefused(DialError):
    """A dial reached the peer but no session was established; `reason` says why."""

    def __init__(self, reason: HandshakeError) -> None:
        super().__init__(f"handshake failed: {type(reason).__name__}: {reason}")
        self.reason = reason


@dataclass
class TcpHostStats:
    inbound_authenticated: int = 0
    outbound_authenticated: int = 0
    refused_at_cap: int = 0
    handshake_timeouts: int = 0
    # Exception class name -> count, for inbound and outbound handshakes that failed.
    inbound_failures: Counter[str] = field(default_factory=Counter)
    outbound_failures: Counter[str] = field(default_factory=Counter)
    peak_unauthenticated: int = 0
    # Record bytes on authenticated connections (what the informant's traffic rates read).
    bytes_sent: int = 0
    bytes_received: int = 0


class _StreamEnded(Exception):
    def __init__(self, mid_message: bool) -> None:
        super().__init__("stream ended mid-message" if mid_message else "stream ended")
        self.mid_message = mid_message


class _StreamReader:
    """Buffered reads of exact sizes. Bytes stay in the buffer until taken, so a read cancelled
    half-way loses nothing, and bytes of the first records that arrive with the last handshake
    message are kept for the connection."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()

    async def fill(self, n: int) -> None:
        while len(self._buf) < n:
            try:
                data = await self._stream.receive_some(max(n - len(self._buf), _RECEIVE_CHUNK))
            except trio.BrokenResourceError:
                data = b""  # a reset is an end like any other
            if not data:
                raise _StreamEnded(mid_message=bool(self._buf))
            self._buf += data

    def peek_u32(self) -> int:
        (value,) = RECORD_PREFIX.unpack_from(self._buf)
        return int(value)

    def take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def read_prefixed(self, cap: int, too_large: Callable[[int], Exception]) -> bytes:
        """One `u32 length | body` unit; the length is checked before the body is waited for."""
        await self.fill(RECORD_PREFIX.size)
        length = self.peek_u32()
        if length > cap:
            raise too_large(length)
        await self.fill(RECORD_PREFIX.size + length)
        self.take(RECORD_PREFIX.size)
        return self.take(length)


def _oversized_handshake_message(length: int) -> Exception:
    return MalformedHandshake(f"handshake message of {length} bytes exceeds {HANDSHAKE_FRAME_CAP}")


async def _read_handshake_message(reader: _StreamReader) -> bytes:
    try:
        return await reader.read_prefixed(HANDSHAKE_FRAME_CAP, _oversized_handshake_message)
    except _StreamEnded:
        raise HandshakeAborted("peer closed the connection during the handshake") from None
    except trio.ClosedResourceError:
        raise HandshakeAborted("connection closed during the handshake") from None


async def _send_handshake_bytes(stream: trio.SocketStream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        raise HandshakeAborted("connection broke during the handshake") from None


def _peer_address(stream: trio.SocketStream) -> Address:
    try:
        name = stream.socket.getpeername()
    except OSError:
        return ("?", 0)
    return (str(name[0]), int(name[1]))


class TcpConnection(Connection):
    def __init__(self, host: TcpHost, stream: trio.SocketStream, reader: _StreamReader,
                 session: HandshakeResult, direction: Direction) -> None:
        self._host = host
        self._stream = stream
        self._reader = reader
        self._channel: SecureChannel = session.channel
        self.local = host.peer_id
        self.remote = session.remote
        self.direction = direction
        self.address = _peer_address(stream)
        self._caps = host.caps
        self._decoder = WireFrameDecoder(host.caps)
        self._max_record = host.max_record_len
        self._send_lock = trio.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, protocol: int, body: bytes) -> None:
        if self._closed:
            raise ConnectionClosed(f"connection to {self.remote.hex()[:8]} is closed")
        plaintext = encode_wire_frame(protocol, body, self._caps)
        # Sealing and writing under one lock: the counter nonce order must be the byte order.
        async with self._send_lock:
            await self._send_record(plaintext)

    async def send_raw(self, plaintext: bytes, *, corrupt: bool = False) -> None:
        """Send one record carrying `plaintext` as it is, not checked as a frame; `corrupt`
        flips a bit of the ciphertext so the record fails authentication. For tools that test
        a peer's decoder (`asyncback probe-peer`); a node never sends either."""
        if not corrupt:
            async with self._send_lock:
                await self._send_record(plaintext)
            return
        async with self._send_lock:
            if self._closed:
                raise ConnectionClosed(f"connection to {self.remote.hex()[:8]} is closed")
            sealed = bytearray(self._channel.seal(plaintext))
            sealed[-1] ^= 0x01
            try:
                await self._stream.send_all(RECORD_PREFIX.pack(len(sealed)) + bytes(sealed))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionClosed(f"connection to {self.remote.hex()[:8]} broke") from exc

    async def _send_record(self, plaintext: bytes) -> None:
        if self._closed:
            raise ConnectionClosed(f"connection to {self.remote.hex()[:8]} is closed")
        ciphertext = self._channel.seal(plaintext)
        data = RECORD_PREFIX.pack(len(ciphertext)) + ciphertext
        written = False
        try:
            await self._stream.send_all(data)
            written = True
            self._host.stats.bytes_sent += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed(f"connection to {self.remote.hex()[:8]} broke") from exc
        finally:
            if not written:
                # A record cut short (error or cancellation) desynchronises the stream for good.
                self._close_now()

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self

    async def __anext__(self) -> Frame:
        try:
            frame = await self._receive_frame()
        except DecodeError:
            self._close_now()
            raise
        if frame is None:
            self._close_now()
            raise StopAsyncIteration
        return frame

    async def _receive_record(self) -> bytes | None:
        """Plaintext of the next record, or None once the stream has ended."""
        if self._closed:
            return None
        try:
            ciphertext = await self._reader.read_prefixed(
                self._max_record, lambda n: FrameTooLarge(n, self._max_record))
        except (_StreamEnded, trio.ClosedResourceError):
            # A record cut short by the peer's end is a dead peer, not a malformed message: only
            # whole, authenticated records are ever delivered.
            return None
        self._host.stats.bytes_received += RECORD_PREFIX.size + len(ciphertext)
        return self._channel.open(ciphertext)

    async def _receive_frame(self) -> Frame | None:
        plaintext = await self._receive_record()
        if plaintext is None:
            return None
        frames = self._decoder.feed(plaintext)
        if len(frames) != 1 or len(plaintext) != _WIRE_FRAME_OVERHEAD + len(frames[0].body):
            raise DecodeError("a record must carry exactly one whole frame")
        return frames[0]

    async def aclose(self) -> None:
        self._close_now()
        await trio.lowlevel.checkpoint()

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        # trio's socket close wakes any task blocked on this socket (it raises ClosedResourceError
        # there), so a reader or sender in another task ends cleanly.
        self._stream.socket.close()
        self._host._forget(self)

    # -- handshake confirmation (the responder's first record) ------------------------------

    async def _send_confirmation(self) -> None:
        try:
            await self._send_record(b"")
        except ConnectionClosed:
            raise HandshakeAborted("connection broke before the confirmation was sent") from None

    async def _receive_confirmation(self) -> None:
        try:
            plaintext = await self._receive_record()
        except DecodeError as exc:
            raise MalformedHandshake(f"bad confirmation record: {exc}") from None
        if plaintext is None:
            raise HandshakeAborted("responder closed the connection instead of confirming "
                                   "(our identity may not be admitted)")
        if plaintext:
            raise MalformedHandshake("confirmation record is not empty")


class TcpHost(Host):
    """A node's TCP endpoint. Start `run` in a nursery (`await nursery.start(host.run)`) before
    accepting; dialing works without it."""

    def __init__(self, identity: Signer, genesis_id: bytes, caps: FrameCaps, *,
                 accept_identity: IdentityPolicy | None = None,
                 handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
                 max_unauthenticated: int = DEFAULT_MAX_UNAUTHENTICATED,
                 ephemeral_source: Callable[[], bytes] = lambda: secrets.token_bytes(32),
                 on_handshake_failure: Callable[[Address, HandshakeError], None] | None = None,
                 dial_from: str | None = None) -> None:
        if not caps:
            raise ValueError("at least one protocol cap is needed")
        if handshake_timeout <= 0 or max_unauthenticated < 1:
            raise ValueError("handshake_timeout must be positive and max_unauthenticated >= 1")
        self.peer_id = identity.public
        self.genesis_id = genesis_id
        self.caps = dict(caps)
        self.max_record_len = _WIRE_FRAME_OVERHEAD + max(self.caps.values()) + AEAD_TAG_LEN
        self.handshake_timeout = handshake_timeout
        self.max_unauthenticated = max_unauthenticated
        self.stats = TcpHostStats()
        self.addresses: dict[PeerId, Address] = {}
        self.port: int | None = None
        self._identity = identity
        self._accept_identity = accept_identity
        self._ephemeral_source = ephemeral_source
        self._on_handshake_failure = on_handshake_failure
        # Source address of dials to loopback peers (see `_source_address`).
        self.dial_from = dial_from
        # Authenticated links waiting for `accept` (the peer manager takes them at once): bounded,
        # the excess is closed (node/net/lanes.py).
        self._incoming_send, self._incoming = trio.open_memory_channel[TcpConnection](
            max_unauthenticated)
        self._connections: set[TcpConnection] = set()
        self._listeners: list[trio.SocketListener] = []
        self._cancel_scope: trio.CancelScope | None = None
        self._unauthenticated = 0
        self._down = False

    @property
    def unauthenticated(self) -> int:
        """Inbound connections currently in their handshake."""
        return self._unauthenticated

    def connections(self) -> list[TcpConnection]:
        return sorted(self._connections, key=lambda c: (c.remote, c.direction.value, c.address))

    def add_address(self, peer: PeerId, host: str, port: int) -> None:
        self.addresses[peer] = (host, port)

    # -- listening --------------------------------------------------------------------------

    async def run(self, host: str = "127.0.0.1", port: int = 0, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on `host:port` (a literal address; port 0 picks one, see `self.port`) and run
        inbound handshakes until cancelled or `aclose`d."""
        if self._down:
            raise ConnectionClosed("host is down")
        self._listeners = await trio.open_tcp_listeners(port, host=host)
        self.port = int(self._listeners[0].socket.getsockname()[1])
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                for listener in self._listeners:
                    nursery.start_soon(self._accept_loop, listener, nursery)
                task_status.started()
        finally:
            self._shut_down()

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return
            except OSError:
                # Out of file descriptors or similar: back off instead of spinning.
                await trio.sleep(0.1)
                continue
            if self._unauthenticated >= self.max_unauthenticated:
                self.stats.refused_at_cap += 1
                stream.socket.close()
                continue
            self._unauthenticated += 1
            self.stats.peak_unauthenticated = max(self.stats.peak_unauthenticated,
                                                  self._unauthenticated)
            nursery.start_soon(self._handle_inbound, stream)

    async def _handle_inbound(self, stream: trio.SocketStream) -> None:
        address = _peer_address(stream)
        conn: TcpConnection | None = None
        try:
            with trio.move_on_after(self.handshake_timeout):
                conn = await self._respond(stream)
            if conn is None:
                self.stats.handshake_timeouts += 1
                raise HandshakeTimedOut(f"no handshake within {self.handshake_timeout} s")
        except HandshakeError as exc:
            self.stats.inbound_failures[type(exc).__name__] += 1
            if self._on_handshake_failure is not None:
                self._on_handshake_failure(address, exc)
            return
        finally:
            self._unauthenticated -= 1
            if conn is None:  # failed, timed out, or the host is shutting down
                stream.socket.close()
        self.stats.inbound_authenticated += 1
        try:
            self._incoming_send.send_nowait(conn)
        except trio.WouldBlock:
            self.stats.refused_at_cap += 1
            await conn.aclose()
        except trio.ClosedResourceError:
            await conn.aclose()

    async def _respond(self, stream: trio.SocketStream) -> TcpConnection:
        reader = _StreamReader(stream)
        handshake = ResponderHandshake(self._identity, self.genesis_id, self._ephemeral_source(),
                                       accept_identity=self._admits)
        hello = await _read_handshake_message(reader)
        await _send_handshake_bytes(stream, frame_handshake_message(handshake.on_hello(hello)))
        session = handshake.on_finish(await _read_handshake_message(reader))
        conn = TcpConnection(self, stream, reader, session, Direction.INBOUND)
        await conn._send_confirmation()
        self._connections.add(conn)
        return conn

    def _admits(self, peer: PeerId) -> bool:
        """The configured identity policy, then the admission check (the peer manager's bans)."""
        if self._accept_identity is not None and not self._accept_identity(peer):
            return False
        return self.admission is None or self.admission(peer)

    async def accept(self) -> TcpConnection:
        try:
            return await self._incoming.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed("host is down") from None

    # -- dialing ----------------------------------------------------------------------------

    async def dial(self, peer: PeerId) -> TcpConnection:
        if peer == self.peer_id:
            raise DialError("cannot dial oneself")
        address = self.addresses.get(peer)
        if address is None:
            raise DialError(f"no address known for peer {peer.hex()[:8]}")
        return await self.dial_address(*address, expected=peer)

    async def dial_address(self, host: str, port: int,
                           expected: PeerId | None = None) -> TcpConnection:
        """Connect and handshake; with `expected`, refuse any responder that proves another
        identity. Raises `DialError` (`HandshakeRefused` once the peer was reached)."""
        if self._down:
            raise DialError("this host is down")
        if expected == self.peer_id:
            raise DialError("cannot dial oneself")
        stream: trio.SocketStream | None = None
        conn: TcpConnection | None = None
        try:
            with trio.move_on_after(self.handshake_timeout):
                try:
                    stream = await trio.open_tcp_stream(
                        host, port, local_address=self._source_address(host))
                except OSError as exc:
                    raise DialError(f"cannot reach {host}:{port}: {exc}") from exc
                conn = await self._initiate(stream, expected)
            if conn is None:
                raise HandshakeTimedOut(f"no handshake within {self.handshake_timeout} s")
        except HandshakeError as exc:
            self.stats.outbound_failures[type(exc).__name__] += 1
            raise HandshakeRefused(exc) from exc
        finally:
            if conn is None and stream is not None:  # failed, timed out or cancelled
                stream.socket.close()
        self.stats.outbound_authenticated += 1
        if self._down:  # went down while we were handshaking
            await conn.aclose()
            raise DialError("this host is down")
        self._connections.add(conn)
        return conn

    def _source_address(self, host: str) -> str | None:
        """`dial_from` when both it and `host` are loopback addresses of one family: several
        nodes on one machine, each listening on its own loopback address, then dial from it too,
        so a peer (or a fault proxy between them) sees which node a connection comes from. The
        kernel would otherwise pick 127.0.0.1 for every loopback dial."""
        if self.dial_from is None:
            return None
        try:
            source, target = ipaddress.ip_address(self.dial_from), ipaddress.ip_address(host)
        except ValueError:
            return None
        if source.is_loopback and target.is_loopback and source.version == target.version:
            return self.dial_from
        return None

    async def _initiate(self, stream: trio.SocketStream, expected: PeerId | None) -> TcpConnection:
        reader = _StreamReader(stream)
        handshake = DialerHandshake(self._identity, self.genesis_id, self._ephemeral_source(),
                                    expected=expected)
        await _send_handshake_bytes(stream, frame_handshake_message(handshake.start()))
        finish, session = handshake.on_reply(await _read_handshake_message(reader))
        await _send_handshake_bytes(stream, frame_handshake_message(finish))
        conn = TcpConnection(self, stream, reader, session, Direction.OUTBOUND)
        await conn._receive_confirmation()
        return conn

    # -- shutdown ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop listening, end `accept`, close every connection. Idempotent."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        self._shut_down()
        await trio.lowlevel.checkpoint()

    def _shut_down(self) -> None:
        self._down = True
        self._incoming_send.close()
        for listener in self._listeners:
            listener.socket.close()
        for conn in list(self._connections):
            conn._close_now()
        # Closing the receiving end too wakes a task blocked in `accept` (ConnectionClosed) and
        # drops the connections nobody accepted (all closed just above).
        self._incoming.close()

    def _forget(self, conn: TcpConnection) -> None:
        self._connections.discard(conn)
