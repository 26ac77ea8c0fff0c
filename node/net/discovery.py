"""Finding peers on a TCP network: bootnodes, then peer exchange.

A bootnode is `HOST:PORT` (its identity is learnt from the authenticated handshake) or
`0xIDENTITY@HOST:PORT`. Besides the configured ones, a node may be handed bootnodes while it runs
(`learn_bootnodes`): a collator given only its relay node's RPC URL learns that node's p2p address
over RPC and dials it like a configured bootnode. Every node tells each peer it connects to where it listens and what it is,
along with the addresses it knows, and repeats that once per slot, so a node that joins late is
learnt by everyone within a slot. Addresses go into the host's address book; relay nodes learnt
this way join the relay gossip (`on_relay_peer`). The address of a configured bootnode stays the
one dialled whatever is announced for its identity: a collator on a host reaches nodes in a
container network by their published ports, not by the service names they announce.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from node.net.stack import NetworkStack
from node.net.tcp import TcpHost
from node.net.transport import TransportError
from proto.messages import PeerAddress, PeerExchange, PeerRole
from proto.network import COST_UNEXPECTED_MESSAGE, PeerId

MAX_SHARED = 64  # addresses per exchange (the message allows more; nobody needs them)
# Addresses learnt from peers, the chain spec's validators not counted (always learnt): beyond
# this a new identity is not learnt, so exchanges of made-up identities cannot grow the table.
MAX_KNOWN = 1024


def parse_bootnode(spec: str) -> tuple[PeerId | None, str, int]:
    """`HOST:PORT` or `0xIDENTITY@HOST:PORT`; `ValueError` with a message naming the problem."""
    identity: PeerId | None = None
    address = spec.strip()
    if "@" in address:
        ident, address = address.split("@", 1)
        try:
            identity = bytes.fromhex(ident.removeprefix("0x"))
        except ValueError:
            raise ValueError(f"bootnode {spec!r}: identity is not hex") from None
        if len(identity) != 32:
            raise ValueError(f"bootnode {spec!r}: identity must be 32 bytes")
    host, sep, port_s = address.rpartition(":")
    if not sep or not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"bootnode {spec!r}: expected HOST:PORT")
    return identity, host, int(port_s)


class Discovery:
    def __init__(self, net: NetworkStack, host: TcpHost, me: PeerAddress, slot_s: float,
                 bootnodes: list[str], on_relay_peer: Callable[[PeerId], None] | None = None,
                 log: Any = None, validators: frozenset[PeerId] = frozenset(),
                 para_bootnodes: list[str] | None = None,
                 on_para_peer: Callable[[PeerId], None] | None = None) -> None:
        self.net = net
        self.host = host
        self.me = me
        self.slot_s = slot_s
        self.bootnodes = [parse_bootnode(b) for b in bootnodes]
        self.learnt: list[tuple[PeerId | None, str, int]] = []  # see learn_bootnodes
        self.pinned: set[PeerId] = set()  # reached through a configured bootnode address
        # Collators of the same para (`--para-bootnodes`): dialled like bootnodes, and whoever
        # answers there is handed to `on_para_peer`, every round (the collator forgets a para
        # peer whose connection went).
        self.para_bootnodes = [parse_bootnode(b) for b in para_bootnodes or ()]
        self.on_para_peer = on_para_peer or (lambda _peer: None)
        self.on_relay_peer = on_relay_peer or (lambda _peer: None)
        self.known: dict[PeerId, PeerAddress] = {}
        self.not_learnt = 0  # new identities refused because `known` was full
        # The chain spec's roster: only these may be announced as validators.
        self.validators = validators
        self.log = log
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()  # set when bootnodes are learnt: dial them without a slot's wait
        net.on_direct(PeerExchange, self._on_exchange)
        net.peers.add_listener(self)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                while True:
                    await self._bootstrap()
                    for peer in self.net.peers.connected_peers():
                        await self._share(peer)
                    with trio.move_on_after(self.slot_s):
                        await self._wake.wait()
                    self._wake = trio.Event()
            finally:
                # Once this body ends the nursery takes no new task: a peer connecting during
                # shutdown must not make `peer_connected` raise into the peer manager.
                self._nursery = None

    def learn_bootnodes(self, addresses: list[str]) -> list[str]:
        """Dial these (in bootnode syntax) from the next round on, in place of those learnt
        before: the source (a relay node's RPC) may have moved. Returns the addresses refused,
        each with the reason; the others are kept."""
        learnt, refused = [], []
        for address in addresses:
            try:
                learnt.append(parse_bootnode(address))
            except ValueError as exc:
                refused.append(str(exc))
        self.learnt = learnt
        self._wake.set()
        return refused

    async def _bootstrap(self) -> None:
        """Dial every bootnode we are not connected to (they may start after us)."""
        configured = [(b, True) for b in self.bootnodes]
        for (identity, host, port), pin in [*configured, *((b, False) for b in self.learnt)]:
            await self._dial_bootnode(identity, host, port, pin)
        for identity, host, port in self.para_bootnodes:
            peer = await self._dial_bootnode(identity, host, port, True)
            if peer is not None:
                self.on_para_peer(peer)

    async def _dial_bootnode(self, identity: PeerId | None, host: str, port: int, pin: bool
                             ) -> PeerId | None:
        """Connect to a bootnode unless already connected; its identity when connected."""
        if identity is not None:
            if identity == self.me.identity:
                return None
            self._note_address(identity, host, port, pin)
            return identity if await self.net.peers.connect(identity) else None
        for peer, addr in self.host.addresses.items():
            if addr == (host, port) and self.net.peers.is_connected(peer):
                return peer
        try:
            conn = await self.host.dial_address(host, port)
        except TransportError:
            return None
        remote = conn.remote
        await conn.aclose()  # learnt who it is; the peer manager owns real connections
        if remote == self.me.identity:
            return None
        self._note_address(remote, host, port, pin)
        return remote if await self.net.peers.connect(remote) else None

    def _note_address(self, peer: PeerId, host: str, port: int, pin: bool) -> None:
        """An address the operator configured is the one to dial, whatever the peer or others
        announce: a node outside a container network reaches a node inside by a published port,
        not by the name the node announces."""
        if pin:
            self.pinned.add(peer)
        elif peer in self.pinned:
            return
        self.host.add_address(peer, host, port)

    def peer_connected(self, peer: PeerId) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._share, peer)

    def peer_disconnected(self, peer: PeerId) -> None:
        pass

    async def _share(self, peer: PeerId) -> None:
        others = [a for p, a in sorted(self.known.items()) if p != peer][: MAX_SHARED - 1]
        await self.net.send_direct(peer, PeerExchange([self.me, *others]))

    async def _on_exchange(self, peer: PeerId, msg: PeerExchange) -> None:
        if len(msg.peers) > MAX_SHARED:
            self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        for i, addr in enumerate(msg.peers):
            if addr.identity == self.me.identity:
                continue
            # The first entry is the sender itself: its listen address, vouched by the link.
            if i == 0 and addr.identity != peer:
                self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
                return
            if addr.role == PeerRole.VALIDATOR and addr.identity not in self.validators:
                self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
                continue  # claims a validator seat the chain spec does not give it
            new = addr.identity not in self.known
            if new and len(self.known) >= MAX_KNOWN and addr.identity not in self.validators:
                self.not_learnt += 1  # full: peers cannot grow the table (node/net/lanes.py)
                continue
            self.known[addr.identity] = addr
            if addr.identity not in self.pinned and (addr.identity not in self.host.addresses
                                                     or i == 0):
                self.host.add_address(addr.identity, addr.host, addr.port)
            if addr.role != PeerRole.COLLATOR:
                self.on_relay_peer(addr.identity)
            if new and self.log is not None:
                self.log.info("peer discovered", peer="0x" + addr.identity.hex()[:16],
                              address=f"{addr.host}:{addr.port}", role=addr.role)
