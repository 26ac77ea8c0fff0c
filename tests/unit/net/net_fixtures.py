"""Shared helpers for the networking tests: a node = host + peer set + peer manager + gossip +
request/response, on a `MemoryNetwork`."""

from __future__ import annotations

import random

import trio

from node.net.gossip import Gossip
from node.net.memory import LinkProfile, MemoryHost, MemoryNetwork
from node.net.peers import PeerManager
from node.net.peerset import PeerSet
from node.net.reqresp import RequestResponse
from proto.hashing import blake2_256

GOSSIP, REQUEST, RESPONSE = 1, 2, 3
CAPS = {GOSSIP: 128 * 1024, REQUEST: 1024, RESPONSE: 128 * 1024}


def peer_id(name: str) -> bytes:
    return blake2_256(name.encode())


class Node:
    def __init__(self, network: MemoryNetwork, name: str, **peerset_args: int) -> None:
        self.name = name
        self.id = peer_id(name)
        self.host: MemoryHost = network.add_host(self.id)
        self.peerset = PeerSet(**peerset_args)  # type: ignore[arg-type]
        self.peers = PeerManager(self.host, self.peerset)
        self.gossip = Gossip(self.peers, GOSSIP)
        self.rr = RequestResponse(self.peers, REQUEST)

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.peers.run)
        await nursery.start(self.rr.run)


def make_network(seed: int, profile: LinkProfile | None = None) -> MemoryNetwork:
    return MemoryNetwork(random.Random(seed), CAPS, default=profile)
