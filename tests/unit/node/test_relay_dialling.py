"""A relay node dials a relay peer as soon as discovery says where it listens (`dial_now`), not
at its next once-a-slot pass: at start-up that pass comes a slot after the addresses arrive, and
for that slot a validator lacks its group and collators lack their validators. Two relay nodes
over real TCP on 127.0.0.1 with minute-long slots, so a link within the hang guard can only come
from the dial made at once."""

from __future__ import annotations

import trio

from node import wiring
from node.devnet import dev_genesis
from node.net.tcp import TcpHost
from proto.keys import Keypair
from proto.messages import FRAME_MAX
from relay.core.config import HostConfiguration

GUARD_S = 10  # a hung test fails instead of blocking the suite; never an expected duration


async def test_a_relay_peer_is_dialled_once_its_address_is_known(nursery: trio.Nursery) -> None:
    genesis = dev_genesis(3, 1, 1, HostConfiguration(slot_ms=60_000)).relay
    # Only the lower identity of a pair dials (full_node.py): `dialler` is the lower.
    dialler_key, dialled_key = sorted((Keypair.from_name("relay-a"), Keypair.from_name("relay-b")),
                                      key=lambda k: k.public)
    hosts = [TcpHost(k, b"g" * 32, FRAME_MAX) for k in (dialler_key, dialled_key)]
    for h in hosts:
        await nursery.start(h.run, "127.0.0.1", 0)
    peers = [dialler_key.public, dialled_key.public]
    dialler, dialled = (wiring.relay_node(f"relay-{i}", h, genesis, peers)
                        for i, h in enumerate(hosts))
    await nursery.start(dialler.run)
    await nursery.start(dialled.run)
    await trio.sleep(0.2)  # the first pass has run and found no address to dial
    assert not dialler.net.peers.is_connected(dialled_key.public)
    assert hosts[1].port is not None
    hosts[0].add_address(dialled_key.public, "127.0.0.1", hosts[1].port)
    dialler.dial_now(dialled_key.public)
    with trio.fail_after(GUARD_S):
        while not dialler.net.peers.is_connected(dialled_key.public):
            await trio.sleep(0.01)
