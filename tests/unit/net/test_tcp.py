"""The TCP transport over real sockets on 127.0.0.1 (port 0): frames both ways, and hostile peers
(garbage, huge length prefixes, slowloris, impersonation, tampered records) that cost a closed
socket and nothing else while the host keeps serving honest peers. Tests count events (closures,
refusals, delivered frames); timeouts are short configuration values, never measured."""

from __future__ import annotations

import secrets
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from impostor import Impostor
from net_fixtures import CAPS, GOSSIP, REQUEST

from node.chainspec import ChainSpec, dev_validators
from node.net.handshake import (
    DialerHandshake,
    HandshakeError,
    IdentityNotAllowed,
    InvalidIdentityProof,
    RecordAuthenticationError,
    SecureChannel,
    Signer,
    TamperedHandshake,
    UnexpectedIdentity,
    frame_handshake_message,
)
from node.net.peers import PeerManager
from node.net.peerset import PeerSet
from node.net.tcp import (
    Address,
    HandshakeAborted,
    HandshakeRefused,
    TcpConnection,
    TcpHost,
)
from node.net.transport import ConnectionClosed, DialError, Direction, Frame, encode_wire_frame
from proto.errors import DecodeError, FrameTooLarge
from proto.keys import Keypair

SPEC = ChainSpec(name="test", id="test", validators=dev_validators(3), paras=())
GENESIS = SPEC.genesis_id()
OTHER_GENESIS = ChainSpec(name="test", id="other", validators=(), paras=()).genesis_id()
ALICE, BOB, CHARLIE = (Keypair.from_name(n) for n in ("alice", "bob", "charlie"))
MALLORY = Keypair.from_name("mallory")
LOCALHOST = "127.0.0.1"
SAFETY_S = 10  # a hung test fails instead of blocking the suite; never an expected duration


@asynccontextmanager
async def running(*hosts: TcpHost) -> AsyncIterator[trio.Nursery]:
    with trio.fail_after(SAFETY_S):
        async with trio.open_nursery() as nursery:
            for host in hosts:
                await nursery.start(host.run)
            yield nursery
            for host in hosts:
                await host.aclose()


def make_host(key: Signer, genesis: bytes = GENESIS, **kw: object) -> TcpHost:
    return TcpHost(key, genesis, CAPS, **kw)  # type: ignore[arg-type]


def know(dialer: TcpHost, *targets: TcpHost) -> None:
    for target in targets:
        assert target.port is not None
        dialer.add_address(target.peer_id, LOCALHOST, target.port)


async def raw_socket(host: TcpHost) -> trio.SocketStream:
    assert host.port is not None
    return await trio.open_tcp_stream(LOCALHOST, host.port)


async def closed_by_peer(stream: trio.SocketStream) -> bool:
    """Read (and discard) until the peer closes; True once it has (EOF or reset)."""
    while True:
        try:
            data = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return True
        if not data:
            return True


async def receive_exactly(stream: trio.SocketStream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


async def receive_prefixed(stream: trio.SocketStream) -> bytes:
    (length,) = struct.unpack(">I", await receive_exactly(stream, 4))
    return await receive_exactly(stream, length)


def record(channel: SecureChannel, protocol: int, body: bytes) -> bytes:
    ciphertext = channel.seal(encode_wire_frame(protocol, body, CAPS))
    return struct.pack(">I", len(ciphertext)) + ciphertext


async def handshake_by_hand(host: TcpHost, key: Signer, genesis: bytes = GENESIS,
                            ) -> tuple[trio.SocketStream, SecureChannel, list[bytes]]:
    """A hostile client's own handshake (the pure module over a raw socket): an authenticated
    session whose records the test then writes byte by byte. Returns the handshake bytes sent."""
    stream = await raw_socket(host)
    handshake = DialerHandshake(key, genesis, secrets.token_bytes(32), expected=host.peer_id)
    hello = frame_handshake_message(handshake.start())
    await stream.send_all(hello)
    finish, session = handshake.on_reply(await receive_prefixed(stream))
    finish = frame_handshake_message(finish)
    await stream.send_all(finish)
    assert session.channel.open(await receive_prefixed(stream)) == b""  # the confirmation
    return stream, session.channel, [hello, finish]


async def honest_exchange(dialer: TcpHost, listener: TcpHost) -> None:
    """The listener still accepts an honest peer, and a frame crosses each way."""
    know(dialer, listener)
    out = await dialer.dial(listener.peer_id)
    inb = await listener.accept()
    assert inb.remote == dialer.peer_id and out.remote == listener.peer_id
    await out.send(GOSSIP, b"hello")
    await inb.send(REQUEST, b"hi back")
    assert await inb.__anext__() == Frame(GOSSIP, b"hello")
    assert await out.__anext__() == Frame(REQUEST, b"hi back")
    await out.aclose()
    await inb.aclose()


async def wait_for(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await trio.sleep(0.01)


# -- honest traffic -----------------------------------------------------------------------------


async def test_two_hosts_exchange_frames_both_ways() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        know(alice, bob)
        out = await alice.dial(bob.peer_id)
        inb = await bob.accept()
        assert (out.direction, inb.direction) == (Direction.OUTBOUND, Direction.INBOUND)
        assert (out.local, out.remote, inb.local, inb.remote) == (
            ALICE.public, BOB.public, BOB.public, ALICE.public)
        big = bytes(range(256)) * (CAPS[GOSSIP] // 256)  # exactly at the lane's cap
        got_a: list[Frame] = []
        got_b: list[Frame] = []

        async def collect(conn: TcpConnection, into: list[Frame], n: int) -> None:
            while len(into) < n:
                into.append(await conn.__anext__())

        async with trio.open_nursery() as readers:
            readers.start_soon(collect, inb, got_b, 51)
            readers.start_soon(collect, out, got_a, 50)
            for i in range(50):
                await out.send(GOSSIP, b"a%d" % i)
                await inb.send(REQUEST, b"b%d" % i)
            await out.send(GOSSIP, big)
        assert got_b == [Frame(GOSSIP, b"a%d" % i) for i in range(50)] + [Frame(GOSSIP, big)]
        assert got_a == [Frame(REQUEST, b"b%d" % i) for i in range(50)]
        # The sender refuses what the receiver's caps would reject, as in memory.py.
        with pytest.raises(FrameTooLarge):
            await out.send(REQUEST, bytes(CAPS[REQUEST] + 1))
        with pytest.raises(DecodeError):
            await out.send(99, b"no such lane")
        assert alice.stats.outbound_authenticated == bob.stats.inbound_authenticated == 1


async def test_close_ends_the_peers_iteration_and_is_idempotent() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        know(alice, bob)
        out = await alice.dial(bob.peer_id)
        inb = await bob.accept()
        await out.send(GOSSIP, b"last words")
        await out.aclose()
        await out.aclose()
        assert out.closed
        with pytest.raises(ConnectionClosed):
            await out.send(GOSSIP, b"too late")
        assert [f async for f in inb] == [Frame(GOSSIP, b"last words")]
        assert inb.closed and alice.connections() == [] and bob.connections() == []


async def test_local_close_ends_a_reader_blocked_in_another_task() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        know(alice, bob)
        out = await alice.dial(bob.peer_id)
        inb = await bob.accept()
        outcomes: list[list[Frame]] = []

        async def read_all() -> None:
            outcomes.append([f async for f in out])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            await trio.testing.wait_all_tasks_blocked()
            await out.aclose()
        assert outcomes == [[]]
        assert [f async for f in inb] == []


async def test_host_shutdown_ends_accept_and_closes_its_connections() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        know(alice, bob)
        out = await alice.dial(bob.peer_id)
        await bob.accept()
        await bob.aclose()
        await bob.aclose()
        with pytest.raises(ConnectionClosed):
            await bob.accept()
        assert [f async for f in out] == []
        with pytest.raises(DialError):
            await alice.dial(bob.peer_id)


async def test_dial_failures_are_dial_errors() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        with pytest.raises(DialError, match="no address"):
            await alice.dial(CHARLIE.public)
        with pytest.raises(DialError, match="oneself"):
            await alice.dial(ALICE.public)
        assert bob.port is not None
        await bob.aclose()  # nothing listens on that port any more
        with pytest.raises(DialError):
            await alice.dial_address(LOCALHOST, bob.port)


# -- hostile bytes before authentication --------------------------------------------------------


async def test_garbage_bytes_close_that_socket_and_the_listener_keeps_serving() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        for garbage in (secrets.token_bytes(1000), struct.pack(">I", 70) + bytes(70)):
            stream = await raw_socket(bob)
            await stream.send_all(garbage)
            assert await closed_by_peer(stream)
        assert bob.stats.inbound_failures["MalformedHandshake"] == 2
        await honest_exchange(alice, bob)


async def test_huge_length_prefix_in_the_handshake_is_refused_unread() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        stream = await raw_socket(bob)
        await stream.send_all(struct.pack(">I", 2**31))
        assert await closed_by_peer(stream)
        assert bob.stats.inbound_failures["MalformedHandshake"] == 1
        await honest_exchange(alice, bob)


async def test_eof_mid_handshake_is_a_clean_refusal() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        stream = await raw_socket(bob)
        hello = DialerHandshake(MALLORY, GENESIS, secrets.token_bytes(32)).start()
        await stream.send_all(frame_handshake_message(hello)[:20])
        await stream.aclose()
        await wait_for(lambda: bob.stats.inbound_failures["HandshakeAborted"] == 1)
        await honest_exchange(alice, bob)


async def test_slowloris_connections_are_closed_by_the_handshake_timeout() -> None:
    alice, bob = make_host(ALICE), make_host(BOB, handshake_timeout=0.3, max_unauthenticated=3)
    closed = 0
    async with running(alice, bob):

        async def trickle() -> None:
            nonlocal closed
            stream = await raw_socket(bob)
            hello = frame_handshake_message(
                DialerHandshake(MALLORY, GENESIS, secrets.token_bytes(32)).start())
            for byte in hello:  # one byte per 0.1 s: the whole hello would need ~7 s
                try:
                    await stream.send_all(bytes([byte]))
                except trio.BrokenResourceError:
                    break
                with trio.move_on_after(0.1):
                    if await closed_by_peer(stream):
                        break
            else:
                raise AssertionError("the host let a slowloris finish its hello")
            closed += 1

        async with trio.open_nursery() as attackers:
            for _ in range(5):
                attackers.start_soon(trickle)
        # Each of the 5 was closed: by the timeout if it got a handshake slot, at once if not.
        assert closed == 5
        assert bob.stats.handshake_timeouts + bob.stats.refused_at_cap == 5
        assert bob.stats.handshake_timeouts >= 3
        assert bob.stats.inbound_failures["HandshakeTimedOut"] == bob.stats.handshake_timeouts
        assert bob.stats.peak_unauthenticated <= 3
        assert bob.unauthenticated == 0
        await honest_exchange(alice, bob)


async def test_unauthenticated_connections_beyond_the_cap_are_closed_at_once() -> None:
    alice, bob = make_host(ALICE), make_host(BOB, max_unauthenticated=3)
    async with running(alice, bob):
        silent = [await raw_socket(bob) for _ in range(3)]
        await wait_for(lambda: bob.unauthenticated == 3)
        excess = [await raw_socket(bob) for _ in range(4)]
        for stream in excess:
            assert await closed_by_peer(stream)
        assert bob.stats.refused_at_cap == 4
        # An honest dial while the cap is full is refused too (it gets no handshake slot) ...
        know(alice, bob)
        with pytest.raises(DialError):
            await alice.dial(bob.peer_id)
        # ... and succeeds once the slots are free again.
        for stream in silent:
            await stream.aclose()
        await wait_for(lambda: bob.unauthenticated == 0)
        await honest_exchange(alice, bob)
        assert bob.stats.peak_unauthenticated == 3


# -- identity -----------------------------------------------------------------------------------


async def test_dialer_expecting_another_identity_refuses_the_responder() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        assert bob.port is not None
        alice.add_address(CHARLIE.public, LOCALHOST, bob.port)  # a stale or poisoned address
        with pytest.raises(HandshakeRefused) as refused:
            await alice.dial(CHARLIE.public)
        assert isinstance(refused.value.reason, UnexpectedIdentity)
        assert alice.connections() == []
        await honest_exchange(alice, bob)


async def test_impostor_responder_is_refused() -> None:
    alice, impostor = make_host(ALICE), make_host(Impostor(CHARLIE, MALLORY))
    async with running(alice, impostor):
        assert impostor.port is not None
        alice.add_address(CHARLIE.public, LOCALHOST, impostor.port)
        with pytest.raises(HandshakeRefused) as refused:
            await alice.dial(CHARLIE.public)
        assert isinstance(refused.value.reason, InvalidIdentityProof)
        with pytest.raises(HandshakeRefused):  # naming no one does not help the impostor
            await alice.dial_address(LOCALHOST, impostor.port)
        assert alice.stats.outbound_failures["InvalidIdentityProof"] == 2


async def test_impostor_dialer_is_refused_and_reported_and_honest_peers_still_connect() -> None:
    failures: list[tuple[Address, HandshakeError]] = []
    bob = make_host(BOB, on_handshake_failure=lambda addr, exc: failures.append((addr, exc)))
    impostor, charlie = make_host(Impostor(CHARLIE, MALLORY)), make_host(CHARLIE)
    async with running(bob, impostor, charlie):
        know(impostor, bob)
        with pytest.raises(HandshakeRefused) as refused:
            await impostor.dial(bob.peer_id)
        # The responder refused; all the dialer learns is that no confirmation came.
        assert isinstance(refused.value.reason, HandshakeAborted)
        await wait_for(lambda: len(failures) == 1)
        (address, error), = failures
        assert address[0] == LOCALHOST and isinstance(error, InvalidIdentityProof)
        assert bob.stats.inbound_authenticated == 0 and bob.connections() == []
        await honest_exchange(charlie, bob)


async def test_roster_policy_refuses_unknown_identities() -> None:
    roster = {v.public for v in SPEC.validators}
    bob = make_host(BOB, accept_identity=lambda peer: peer in roster)
    mallory, alice = make_host(MALLORY), make_host(ALICE)
    async with running(bob, mallory, alice):
        know(mallory, bob)
        with pytest.raises(DialError):
            await mallory.dial(bob.peer_id)
        await wait_for(lambda: bob.stats.inbound_failures[IdentityNotAllowed.__name__] == 1)
        await honest_exchange(alice, bob)


async def test_wrong_genesis_is_refused() -> None:
    bob, stranger = make_host(BOB), make_host(ALICE, genesis=OTHER_GENESIS)
    async with running(bob, stranger):
        know(stranger, bob)
        with pytest.raises(DialError):
            await stranger.dial(bob.peer_id)
        await wait_for(lambda: bob.stats.inbound_failures["WrongGenesis"] == 1)
        assert bob.stats.inbound_authenticated == 0


async def test_recorded_handshake_replayed_into_a_new_connection_fails() -> None:
    bob = make_host(BOB)
    async with running(bob):
        stream, _, sent = await handshake_by_hand(bob, ALICE)
        conn = await bob.accept()
        replay = await raw_socket(bob)
        await replay.send_all(b"".join(sent))
        # Bob's fresh ephemeral makes the recorded finish unopenable.
        assert await closed_by_peer(replay)
        await wait_for(lambda: bob.stats.inbound_failures[TamperedHandshake.__name__] == 1)
        assert bob.stats.inbound_authenticated == 1
        await stream.aclose()
        assert [f async for f in conn] == []


# -- hostile records after authentication -------------------------------------------------------


async def frames_until_error(conn: TcpConnection) -> tuple[list[Frame], Exception | None]:
    frames: list[Frame] = []
    try:
        async for frame in conn:
            frames.append(frame)
    except DecodeError as exc:
        return frames, exc
    return frames, None


async def test_huge_length_prefix_on_an_authenticated_link_closes_it_before_reading() -> None:
    bob = make_host(BOB)
    async with running(bob):
        stream, _, _ = await handshake_by_hand(bob, ALICE)
        conn = await bob.accept()
        await stream.send_all(struct.pack(">I", 2**31))  # and never the body
        frames, error = await frames_until_error(conn)
        assert frames == [] and isinstance(error, FrameTooLarge) and conn.closed
        assert await closed_by_peer(stream)


async def test_bit_flip_is_detected_and_the_peer_can_reconnect() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    async with running(alice, bob):
        stream, channel, _ = await handshake_by_hand(bob, ALICE)
        conn = await bob.accept()
        good = record(channel, GOSSIP, b"statement 1")
        bad = bytearray(record(channel, GOSSIP, b"statement 2"))
        bad[10] ^= 0x01
        await stream.send_all(good + bytes(bad) + record(channel, GOSSIP, b"statement 3"))
        frames, error = await frames_until_error(conn)
        assert frames == [Frame(GOSSIP, b"statement 1")]
        assert isinstance(error, RecordAuthenticationError) and conn.closed
        assert await closed_by_peer(stream)
        await honest_exchange(alice, bob)


@pytest.mark.parametrize("fault", ["duplicate", "drop", "reorder"])
async def test_duplicated_dropped_or_reordered_record_is_detected(fault: str) -> None:
    bob = make_host(BOB)
    async with running(bob):
        stream, channel, _ = await handshake_by_hand(bob, ALICE)
        conn = await bob.accept()
        r1, r2, r3 = (record(channel, GOSSIP, b"%d" % i) for i in (1, 2, 3))
        wire = {"duplicate": r1 + r1 + r2, "drop": r1 + r3, "reorder": r2 + r1}[fault]
        await stream.send_all(wire)
        frames, error = await frames_until_error(conn)
        assert frames == ([] if fault == "reorder" else [Frame(GOSSIP, b"1")])
        assert isinstance(error, RecordAuthenticationError)


async def test_a_record_must_hold_exactly_one_whole_frame() -> None:
    bob = make_host(BOB)
    async with running(bob):
        stream, channel, _ = await handshake_by_hand(bob, ALICE)
        conn = await bob.accept()
        two = encode_wire_frame(GOSSIP, b"a", CAPS) + encode_wire_frame(GOSSIP, b"b", CAPS)
        sealed = channel.seal(two)
        await stream.send_all(struct.pack(">I", len(sealed)) + sealed)
        frames, error = await frames_until_error(conn)
        assert frames == [] and isinstance(error, DecodeError)


# -- the peer manager over TCP ------------------------------------------------------------------


async def test_peer_manager_works_over_tcp_unchanged() -> None:
    alice, bob = make_host(ALICE), make_host(BOB)
    received: list[tuple[bytes, bytes]] = []
    both_ways = trio.Event()

    async with running(alice, bob) as nursery:
        managers = {h.peer_id: PeerManager(h, PeerSet()) for h in (alice, bob)}
        for peer_id, manager in managers.items():

            async def handler(peer: bytes, body: bytes, me: bytes = peer_id) -> None:
                received.append((me, body))
                if len(received) == 2:
                    both_ways.set()

            manager.register(GOSSIP, handler)
            await nursery.start(manager.run)
        know(alice, bob)
        know(bob, alice)
        a, b = managers[ALICE.public], managers[BOB.public]
        assert await a.connect(BOB.public)
        await wait_for(lambda: b.is_connected(ALICE.public))
        assert await a.send(BOB.public, GOSSIP, b"from alice")
        assert await b.send(ALICE.public, GOSSIP, b"from bob")
        await both_ways.wait()
        assert set(received) == {(ALICE.public, b"from bob"), (BOB.public, b"from alice")}
        # A second connection under the same identity is refused: never two active.
        extra = await alice.dial(BOB.public)
        assert [f async for f in extra] == []
        assert b.refused == 1 and b.connected_peers() == [ALICE.public]
        # Bob's manager reads nothing from a tampered link and charges the sender.
        stream, channel, _ = await handshake_by_hand(bob, CHARLIE)
        bad = bytearray(record(channel, GOSSIP, b"forged"))
        bad[-1] ^= 0x80
        await stream.send_all(bytes(bad))
        await wait_for(lambda: b.malformed == 1)
        assert (BOB.public, b"forged") not in received
        assert not b.is_connected(CHARLIE.public)
        nursery.cancel_scope.cancel()
