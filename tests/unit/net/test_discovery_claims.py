"""Discovery believes an announced address only once a handshake at it proves the announced
identity (issue 14): a peer's word alone neither reaches the address book, nor is passed on, nor
joins the relay gossip (which dials its members every slot). Claims and `known` are bounded, and
what fails to connect repeatedly is forgotten. Real TCP hosts on 127.0.0.1; the slot is a minute,
so every round here is one the test runs itself."""

from __future__ import annotations

import socket
from functools import partial

import trio

from node.chainspec import ChainSpec, dev_validators
from node.net.discovery import MAX_CLAIMS_PER_SOURCE, MAX_FAILURES, REVERIFY_ROUNDS, Discovery
from node.net.stack import NetworkStack
from node.net.tcp import TcpHost
from proto.keys import Keypair
from proto.messages import FRAME_MAX, PeerAddress, PeerExchange, PeerRole

SPEC = ChainSpec(name="test", id="test", validators=dev_validators(2), paras=())
SLOT_S = 60.0
GUARD_S = 20  # a hung test fails instead of blocking the suite; never an expected duration


def closed_port() -> int:
    """A loopback port nothing listens on (a dial there is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def listener(nursery: trio.Nursery, name: str) -> TcpHost:
    """A host that completes handshakes as `name` and nothing else."""
    host = TcpHost(Keypair.from_name(name), SPEC.genesis_id(), FRAME_MAX)
    await nursery.start(partial(host.run, "127.0.0.1", 0))
    return host


class Subject:
    """The node under test: a TCP host, its network stack and its discovery."""

    def __init__(self, host: TcpHost, net: NetworkStack, discovery: Discovery,
                 relay_peers: list[bytes]) -> None:
        self.host, self.net, self.discovery, self.relay_peers = host, net, discovery, relay_peers

    async def settle(self) -> None:
        """Until no verification dial is in flight."""
        await trio.sleep(0)
        while self.discovery._verifying:
            await trio.sleep(0.01)

    async def round(self) -> None:
        """One discovery round's verification, as `run` starts it every slot."""
        self.discovery._round += 1
        self.discovery._verify_some()
        await self.settle()


async def subject(nursery: trio.Nursery, max_known: int = 256) -> Subject:
    key = Keypair.from_name("alice")
    host = TcpHost(key, SPEC.genesis_id(), FRAME_MAX)
    await nursery.start(partial(host.run, "127.0.0.1", 0))
    assert host.port is not None
    net = NetworkStack(host, SLOT_S)
    relay_peers: list[bytes] = []
    discovery = Discovery(net, host, PeerAddress(key.public, "127.0.0.1", host.port,
                                                 PeerRole.VALIDATOR),
                          SLOT_S, [], on_relay_peer=relay_peers.append,
                          validators=frozenset(v.public for v in SPEC.validators),
                          max_known=max_known)
    await nursery.start(net.run)
    await nursery.start(discovery.run)
    return Subject(host, net, discovery, relay_peers)


def at(host: TcpHost, role: PeerRole = PeerRole.RELAY_NODE) -> PeerAddress:
    assert host.port is not None
    return PeerAddress(host.peer_id, "127.0.0.1", host.port, role)


async def test_only_addresses_a_handshake_proved_are_believed_and_passed_on() -> None:
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            me = await subject(nursery)
            sender = await listener(nursery, "relay-1")
            other = await listener(nursery, "relay-2")
            ghost = Keypair.from_name("nobody-runs-this").public
            bob = Keypair.from_name(SPEC.validators[1].name).public  # a roster identity
            made_up = PeerAddress(ghost, "127.0.0.1", closed_port(), PeerRole.RELAY_NODE)
            misplaced = PeerAddress(bob, "127.0.0.1", other.port or 0, PeerRole.VALIDATOR)
            collator = PeerAddress(Keypair.from_name("collator-1").public, "127.0.0.1",
                                   closed_port(), PeerRole.COLLATOR)
            await me.discovery._on_exchange(sender.peer_id, PeerExchange(
                [at(sender), made_up, misplaced, at(other), collator]))
            await me.settle()
            d = me.discovery
            # The sender's own address and a third party relay node's were proved by a
            # handshake there: believed, passed on, joined to the relay gossip.
            assert set(d.known) == {sender.peer_id, other.peer_id}
            assert sorted(me.relay_peers) == sorted([sender.peer_id, other.peer_id])
            assert me.host.addresses[other.peer_id] == ("127.0.0.1", other.port)
            # Nobody at the made-up address: not believed, a failure noted.
            assert ghost not in d.known and ghost not in me.host.addresses
            assert d.claims[ghost].failures == 1
            # A validator we are not connected to is not dialled just to check: its claimed
            # address is only where the relay gossip may dial it (the handshake there would
            # refuse another key); never passed on nor believed. A collator's is dropped.
            assert bob not in d.known and bob not in d.claims and bob not in me.relay_peers
            assert me.host.addresses[bob] == ("127.0.0.1", other.port)
            with trio.move_on_after(1):
                assert not await me.net.peers.connect(bob)  # relay-2 answers there, not bob
            assert collator.identity not in d.claims and collator.identity not in d.known
            assert collator.identity not in me.host.addresses
            # After MAX_FAILURES rounds the made-up one is forgotten and never dialled again.
            for _ in range(MAX_FAILURES - 1):
                await me.round()
            assert ghost not in d.claims and d.forgotten == 1
            d._verify_some()
            assert d._verifying == set()
            nursery.cancel_scope.cancel()


async def test_claims_are_bounded_per_sender() -> None:
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            me = await subject(nursery)
            sender = await listener(nursery, "relay-1")
            port = closed_port()
            flood = [PeerAddress(Keypair.from_name(f"ghost-{i}").public, "127.0.0.1", port,
                                 PeerRole.RELAY_NODE) for i in range(63)]
            await me.discovery._on_exchange(sender.peer_id, PeerExchange([at(sender), *flood]))
            await me.settle()
            assert len(me.discovery.claims) <= MAX_CLAIMS_PER_SOURCE
            assert set(me.discovery.known) == {sender.peer_id}
            nursery.cancel_scope.cancel()


async def test_known_is_capped_and_evicts_the_oldest_unconnected_entry() -> None:
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            me = await subject(nursery, max_known=2)
            hosts = [await listener(nursery, f"relay-{i}") for i in range(3)]
            for h in hosts:  # one after the other: verified in this order
                await me.discovery._on_exchange(h.peer_id, PeerExchange([at(h)]))
                await me.settle()
            assert list(me.discovery.known) == [hosts[1].peer_id, hosts[2].peer_id]
            assert hosts[0].peer_id not in me.host.addresses and me.discovery.forgotten == 1
            nursery.cancel_scope.cancel()


async def test_a_known_peer_that_went_away_is_forgotten_after_repeated_failures() -> None:
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            me = await subject(nursery)
            async with trio.open_nursery() as gone_soon:
                leaver = await listener(gone_soon, "relay-1")
                await me.discovery._on_exchange(leaver.peer_id, PeerExchange([at(leaver)]))
                await me.settle()
                assert leaver.peer_id in me.discovery.known
                gone_soon.cancel_scope.cancel()
            # Not dialled again before REVERIFY_ROUNDS rounds have passed ...
            me.discovery._verify_some()
            assert me.discovery._verifying == set()
            me.discovery._round += REVERIFY_ROUNDS - 1
            for _ in range(MAX_FAILURES):  # ... then once a round while it fails
                assert leaver.peer_id in me.discovery.known
                await me.round()
            assert leaver.peer_id not in me.discovery.known
            assert leaver.peer_id not in me.host.addresses
            nursery.cancel_scope.cancel()


async def test_a_validator_not_connected_for_long_is_no_longer_passed_on_nor_dialled() -> None:
    """A known validator whose link went is not dialled just to check (its collator protocol
    would see a link open and close): after `REVERIFY_ROUNDS` rounds it is dropped from what
    this node passes on, and its address stays in the book (the roster is fixed)."""
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            me = await subject(nursery)
            bob = await listener(nursery, SPEC.validators[1].name)
            await me.discovery._verify(at(bob, PeerRole.VALIDATOR))  # as when it was connected
            assert me.discovery.known[bob.peer_id].role == PeerRole.VALIDATOR
            dials = me.host.stats.outbound_authenticated
            me.discovery._round += REVERIFY_ROUNDS
            me.discovery._verify_some()
            await me.settle()
            assert bob.peer_id not in me.discovery.known
            assert me.host.stats.outbound_authenticated == dials  # not dialled
            assert me.host.addresses[bob.peer_id] == ("127.0.0.1", bob.port)
            nursery.cancel_scope.cancel()
