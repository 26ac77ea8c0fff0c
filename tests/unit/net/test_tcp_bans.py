"""Lane budgets and bans over real TCP on 127.0.0.1, through a node's whole network stack
(`NetworkStack` on a `TcpHost`): a peer flooding the gossip lane is charged for every frame over
its budget until it is banned and disconnected (the charges logged once, naming the lane, and the
ban once); while the ban lasts its key is refused at the handshake (the dialer gets
`HandshakeRefused`, no frame of it is read), an honest peer is not affected, the refusals are
logged at a limited rate, and once the ban is over the key may connect again. Counts frames and
events; `SAFETY_S` only stops a hung test."""

from __future__ import annotations

from typing import Any

import trio

from node.chainspec import ChainSpec, dev_validators
from node.net.gossip import GossipEnvelope
from node.net.lanes import BURST_SLOTS, GOSSIP_FRAMES_PER_SLOT
from node.net.peerset import PeerSet
from node.net.stack import NetworkStack
from node.net.tcp import HandshakeRefused, TcpHost
from node.net.transport import ConnectionClosed
from proto.codec import encode
from proto.keys import Keypair
from proto.messages import FRAME_MAX, Protocol
from proto.network import IGNORE, PeerId, Verdict

SPEC = ChainSpec(name="test", id="test", validators=dev_validators(3), paras=())
GENESIS = SPEC.genesis_id()
ALICE, BOB, MALLORY = (Keypair.from_name(n) for n in ("alice", "bob", "mallory"))
SAFETY_S = 30
SLOT_S = 1.0
TOPIC = 9


class ListLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **kw: Any) -> None:
        self.lines.append((event, kw))

    def error(self, event: str, **kw: Any) -> None:
        self.lines.append((event, kw))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [kw for event, kw in self.lines if event == name]


class NullCounter:
    def labels(self, *_: str) -> NullCounter:
        return self

    def inc(self) -> None:
        pass


async def wait_for(condition: Any) -> None:
    while not condition():
        await trio.sleep(0.01)


def ignore_all(_source: PeerId | None, _data: bytes) -> Verdict:
    return IGNORE  # valid-shaped, of no use: exactly what a flooder sends


async def flood(host: TcpHost, target: TcpHost, frames: int) -> int:
    """Distinct gossip frames as fast as the link takes them; how many went out before the
    target closed the link."""
    assert target.port is not None
    conn = await host.dial_address("127.0.0.1", target.port, expected=target.peer_id)
    sent = 0
    try:
        for i in range(frames):
            await conn.send(Protocol.GOSSIP, encode(GossipEnvelope(TOPIC, i.to_bytes(8, "big"))))
            sent += 1
    except ConnectionClosed:  # the target closed the link under us: what a ban does
        pass
    finally:
        await conn.aclose()
    return sent


async def test_a_gossip_flood_over_tcp_ends_in_a_ban_refused_at_the_handshake() -> None:
    log = ListLog()
    # A lower threshold (250 frames over budget, not ~7,500) and a fast decay, so that the ban
    # comes quickly and its end comes within the test: the window (3 s) decides it.
    peerset = PeerSet(ban_window_s=3.0, decay_per_second=0.5, ban_threshold=-50_000_000)
    bob_host = TcpHost(BOB, GENESIS, FRAME_MAX)
    bob = NetworkStack(bob_host, SLOT_S, peerset=peerset)
    bob.log_handler_failures(log, "bob", NullCounter())
    bob.gossip.subscribe(TOPIC, ignore_all, lambda _s, _d: None)
    budget = GOSSIP_FRAMES_PER_SLOT * BURST_SLOTS
    with trio.fail_after(SAFETY_S):
        async with trio.open_nursery() as nursery:
            await nursery.start(bob_host.run)
            await nursery.start(bob.run)
            # An honest peer stays connected throughout.
            alice_host = TcpHost(ALICE, GENESIS, FRAME_MAX)
            assert bob_host.port is not None
            alice_host.add_address(BOB.public, "127.0.0.1", bob_host.port)
            alice = NetworkStack(alice_host, SLOT_S)
            await nursery.start(alice.run)
            assert await alice.peers.connect(BOB.public)
            await wait_for(lambda: bob.peers.is_connected(ALICE.public))

            mallory = TcpHost(MALLORY, GENESIS, FRAME_MAX)
            started = trio.current_time()
            sent = await flood(mallory, bob_host, 50 * budget)
            await wait_for(lambda: not bob.peers.is_connected(MALLORY.public))
            assert peerset.is_banned(MALLORY.public, bob.peers.now())
            over = bob.peers.over_budget[Protocol.GOSSIP]
            handled = bob.gossip.stats.received
            lasted = trio.current_time() - started
            print(f"flood: {sent} frames sent in {lasted:.1f} s, {handled} handled, {over} over "
                  f"budget")
            # What got through is the budget: its burst and its rate over the flood's duration.
            assert bob.peers.bans == 1 and over > 0
            assert handled <= budget + GOSSIP_FRAMES_PER_SLOT / SLOT_S * lasted + 1
            assert handled + over <= sent < 50 * budget  # the ban cut the flood short
            assert [e["peer"] for e in log.events("peer banned")] == ["0x" + MALLORY.public.hex()[:16]]
            # The frames charged before the ban were logged too, once (at most once per peer per
            # 30 s: the flood lasted less), naming the lane.
            [line] = log.events("peer over its lane budget")
            assert (line["peer"], line["lane"]) == ("0x" + MALLORY.public.hex()[:16], "gossip")

            # While banned: every redial is refused at the handshake, no frame of it is read.
            for _ in range(5):
                try:
                    await mallory.dial_address("127.0.0.1", bob_host.port, expected=BOB.public)
                    raise AssertionError("a banned key got a link")
                except HandshakeRefused:
                    pass
            assert bob.peers.refused_banned == 5
            assert bob.gossip.stats.received == handled
            assert not bob.peers.is_connected(MALLORY.public)
            # Logged once, not five times (the next line would say how many were held back).
            assert len(log.events("banned peer refused at the handshake")) == 1
            # The honest peer was served throughout.
            assert bob.peers.is_connected(ALICE.public)
            assert await alice.gossip.publish(TOPIC, b"still here") == 1
            await wait_for(lambda: bob.gossip.stats.received == handled + 1)

            # The ban ends: the same key connects again.
            await wait_for(lambda: not peerset.is_banned(MALLORY.public, bob.peers.now()))
            conn = await mallory.dial_address("127.0.0.1", bob_host.port, expected=BOB.public)
            await wait_for(lambda: bob.peers.is_connected(MALLORY.public))
            await conn.aclose()
            assert bob.peers.refused_banned == 5
            nursery.cancel_scope.cancel()
