"""Discovery over real TCP hosts on 127.0.0.1: bootnodes learnt while running (what a collator
given only its relay node's RPC URL does) are dialled at once, not a slot later, and malformed
ones are refused with the reason. The slot is a minute, so a connection within the hang guard can
only come from the learnt address being dialled straight away."""

from __future__ import annotations

from functools import partial
from typing import Any

import trio

from node.chainspec import ChainSpec, dev_validators
from node.net.discovery import Discovery
from node.net.stack import NetworkStack
from node.net.tcp import TcpHost
from proto.keys import Keypair
from proto.messages import FRAME_MAX, PeerAddress, PeerExchange, PeerRole

SPEC = ChainSpec(name="test", id="test", validators=dev_validators(2), paras=())
SLOT_S = 60.0
GUARD_S = 10  # a hung test fails instead of blocking the suite; never an expected duration


async def start_node(nursery: trio.Nursery, name: str, role: PeerRole,
                     slot_s: float = SLOT_S, **options: Any
                     ) -> tuple[TcpHost, NetworkStack, Discovery]:
    key = Keypair.from_name(name)
    host = TcpHost(key, SPEC.genesis_id(), FRAME_MAX)
    await nursery.start(partial(host.run, "127.0.0.1", 0))
    assert host.port is not None
    net = NetworkStack(host, slot_s)
    discovery = Discovery(net, host, PeerAddress(key.public, "127.0.0.1", host.port, role),
                          slot_s, [], validators=frozenset(v.public for v in SPEC.validators),
                          **options)
    await nursery.start(net.run)
    await nursery.start(discovery.run)
    return host, net, discovery


async def test_learnt_bootnodes_are_dialled_at_once_and_bad_ones_refused() -> None:
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            relay, _, _ = await start_node(nursery, "alice", PeerRole.VALIDATOR)
            _, collator_net, discovery = await start_node(nursery, "collator-2000-0",
                                                          PeerRole.COLLATOR)
            refused = discovery.learn_bootnodes(
                ["nonsense", "0x1234@127.0.0.1:1",
                 f"0x{relay.peer_id.hex()}@127.0.0.1:{relay.port}"])
            assert refused == ["bootnode 'nonsense': expected HOST:PORT",
                               "bootnode '0x1234@127.0.0.1:1': identity must be 32 bytes"]
            while not collator_net.peers.is_connected(relay.peer_id):
                await trio.sleep(0.01)
            # The relay side learns the collator's listen address from its peer exchange.
            while Keypair.from_name("collator-2000-0").public not in relay.addresses:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()


async def test_a_configured_bootnode_address_outlives_what_the_node_announces() -> None:
    """A collator outside a container network dials a validator by its published port; the
    validator announces its service name, which only resolves inside the network."""
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            key = Keypair.from_name("alice")
            validator = TcpHost(key, SPEC.genesis_id(), FRAME_MAX)
            await nursery.start(partial(validator.run, "127.0.0.1", 0))
            assert validator.port is not None
            vnet = NetworkStack(validator, SLOT_S)
            announced = PeerAddress(key.public, "alice.invalid", validator.port,
                                    PeerRole.VALIDATOR)
            await nursery.start(vnet.run)
            await nursery.start(Discovery(vnet, validator, announced, SLOT_S, [],
                                          validators=frozenset({key.public})).run)
            ckey = Keypair.from_name("collator-2000-0")
            chost = TcpHost(ckey, SPEC.genesis_id(), FRAME_MAX)
            await nursery.start(partial(chost.run, "127.0.0.1", 0))
            assert chost.port is not None
            cnet = NetworkStack(chost, SLOT_S)
            discovery = Discovery(cnet, chost, PeerAddress(ckey.public, "127.0.0.1", chost.port,
                                                           PeerRole.COLLATOR),
                                  SLOT_S, [f"127.0.0.1:{validator.port}"],
                                  validators=frozenset({key.public}))
            await nursery.start(cnet.run)
            await nursery.start(discovery.run)
            while key.public not in discovery.known:  # the validator's exchange arrived
                await trio.sleep(0.01)
            discovery.learn_bootnodes([f"0x{key.public.hex()}@alice.invalid:{validator.port}"])
            await trio.sleep(0.05)
            assert chost.addresses[key.public] == ("127.0.0.1", validator.port)
            # ... so the collator can dial it again after the link goes.
            await cnet.peers.disconnect(key.public)
            while cnet.peers.is_connected(key.public):
                await trio.sleep(0.01)
            assert await cnet.peers.connect(key.public)
            nursery.cancel_scope.cancel()



class LinkEvents:
    def __init__(self) -> None:
        self.events: list[str] = []

    def peer_connected(self, peer: bytes) -> None:
        self.events.append("connected")

    def peer_disconnected(self, peer: bytes) -> None:
        self.events.append("disconnected")


async def test_a_bootnode_given_by_address_alone_gets_one_link_that_stays() -> None:
    """The dial that learns the bootnode's identity is kept as the link: a second dial moments
    after the first would reach a peer still holding the first, which refuses one of the two,
    and its services would see this node leave just after it came (a para peer that says
    hello then leaves the round: collator/service.py)."""
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            first, first_net, _ = await start_node(nursery, "collator-2000-0", PeerRole.COLLATOR)
            seen = LinkEvents()
            first_net.peers.add_listener(seen)
            found: list[bytes] = []
            _, net, _ = await start_node(nursery, "collator-2000-1", PeerRole.COLLATOR,
                                         para_bootnodes=[f"127.0.0.1:{first.port}"],
                                         on_para_peer=found.append)
            while not found:
                await trio.sleep(0.01)
            await trio.sleep(0.2)  # a closed first link would have reached the other side
            assert found == [first.peer_id] and net.peers.is_connected(first.peer_id)
            assert seen.events == ["connected"]
            nursery.cancel_scope.cancel()


async def test_what_a_node_verifies_reaches_its_peers_before_its_next_round() -> None:
    """A collator that reached its relay node before a validator did gets the validator's
    address as soon as the relay node has verified it, not a slot later at the relay node's
    next round (by when its first collations went to nobody). The slot is long enough that no
    second round comes within the guard; news is passed on within an eighth of it."""
    slot_s = 16.0
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            hub, _, hub_discovery = await start_node(nursery, "ferdie", PeerRole.RELAY_NODE,
                                                     slot_s)
            collator, _, collator_discovery = await start_node(
                nursery, "collator-2000-0", PeerRole.COLLATOR, slot_s)
            bootnode = f"0x{hub.peer_id.hex()}@127.0.0.1:{hub.port}"
            collator_discovery.learn_bootnodes([bootnode])
            while collator.peer_id not in hub_discovery.known:
                await trio.sleep(0.01)
            validator, _, validator_discovery = await start_node(
                nursery, SPEC.validators[0].name, PeerRole.VALIDATOR, slot_s)
            validator_discovery.learn_bootnodes([bootnode])
            while validator.peer_id not in collator.addresses:
                await trio.sleep(0.01)
            assert collator.addresses[validator.peer_id] == ("127.0.0.1", validator.port)
            assert hub_discovery._round == 1  # it came with the news, not with a round
            nursery.cancel_scope.cancel()


async def verified_links(dials: bool) -> tuple[bool, list[str]]:
    """A relay node told of another's address verifies it by dialling there: whether the link
    stays, and what the other side saw."""
    with trio.fail_after(GUARD_S):
        async with trio.open_nursery() as nursery:
            other, other_net, _ = await start_node(nursery, "relay-b", PeerRole.RELAY_NODE)
            seen = LinkEvents()
            other_net.peers.add_listener(seen)
            _, net, discovery = await start_node(nursery, "relay-a", PeerRole.RELAY_NODE,
                                                 dials=lambda _peer: dials)
            assert other.port is not None
            claim = PeerAddress(other.peer_id, "127.0.0.1", other.port, PeerRole.RELAY_NODE)
            await discovery._on_exchange(other.peer_id, PeerExchange([claim]))
            while other.peer_id not in discovery.known:
                await trio.sleep(0.01)
            await trio.sleep(0.2)  # a closed link would have reached the other side
            linked = net.peers.is_connected(other.peer_id)
            nursery.cancel_scope.cancel()
    return linked, seen.events


async def test_a_verification_link_to_a_relay_node_this_node_dials_is_kept() -> None:
    """Of two relay nodes the relay gossip has one dial (full_node.py); when that one proves the
    other's address, the link it opened for the proof is kept: the other side sees one
    connection, not one that comes, goes and comes again a moment later."""
    assert await verified_links(dials=True) == (True, ["connected"])
    assert await verified_links(dials=False) == (False, ["connected", "disconnected"])
