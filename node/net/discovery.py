"""Finding peers on a TCP network: bootnodes, then peer exchange.

A bootnode is `HOST:PORT` (its identity is learnt from the authenticated handshake) or
`0xIDENTITY@HOST:PORT`. Besides the configured ones, a node may be handed bootnodes while it runs
(`learn_bootnodes`): a collator given only its relay node's RPC URL learns that node's p2p address
over RPC and dials it like a configured bootnode. Every node tells each peer it connects to
where it listens and what it is, along with the addresses it knows, and repeats that once per
slot, so a node that joins late is learnt by everyone within a slot. What a node newly verifies
it passes on at once (`_pass_on_news`, at most `NEWS_PER_SLOT` times a slot): at start-up a
collator that reached its relay node before the validators did learns them within a fraction of
a slot rather than after its first collations went to nobody. Addresses go into the host's
address book; relay nodes learnt this way join the relay gossip (`on_relay_peer`). The address
of a configured bootnode stays the one dialled whatever is announced for its identity: a
collator on a host reaches nodes in a container network by their published ports, not by the
service names they announce.

What is believed. An announced address is a *claim* until a handshake at that address proves the
announced identity; only then is it recorded in `known`, passed on in exchanges and, for a relay
node, handed to the relay gossip (which dials it then, and every slot). The proof is a dial this
node makes (`_verify`) where that disturbs nobody: to a peer already connected to us (its end
refuses the second link after the handshake), or to a claimed relay node (a link this node's
relay gossip would dial anyway is kept: `dials`). A validator or collator that is not connected
is not dialled just to check (see `_claim`): a validator's address goes to the address book only
if it has none there (the relay gossip dials the roster there, and the handshake proves it); a
collator's is dropped. So a peer cannot make this node pass on, or
dial every slot, an identity nobody runs, nor point a real identity at another address. Claims
are bounded (`MAX_CLAIMS`, and `MAX_CLAIMS_PER_SOURCE` from any one sender; the oldest goes
first) and verified `MAX_VERIFYING` at a time; one that fails `MAX_FAILURES` times is forgotten.
`known` is bounded by `max_known`: past it, the entry verified longest ago that is neither
connected nor a configured bootnode is evicted. A known peer not connected for `REVERIFY_ROUNDS`
rounds is dropped from `known` (a relay node is dialled again first, every round while it fails,
and dropped after `MAX_FAILURES` failures in a row); its address leaves the book too, except a
validator's or a configured bootnode's (the roster is small and fixed, and a validator that comes
back at its address must be found again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from node.net.stack import NetworkStack
from node.net.tcp import TcpHost
from node.net.transport import TransportError
from proto.messages import PeerAddress, PeerExchange, PeerRole
from proto.network import COST_UNEXPECTED_MESSAGE, PeerId

MAX_SHARED = 64  # addresses per exchange (the message allows more; nobody needs them)
MAX_KNOWN = 256  # verified addresses kept (a network's relay nodes, validators and collators)
MAX_CLAIMS = 256  # announced addresses waiting to be verified
MAX_CLAIMS_PER_SOURCE = 16  # of those, from any one sender
MAX_VERIFYING = 8  # verification dials at once
MAX_FAILURES = 3  # failed verifications in a row before an address is forgotten
REVERIFY_ROUNDS = 30  # a known peer not connected is dialled again after this many rounds
# Newly verified addresses are passed on at most this many times a slot: a network starting
# verifies its nodes in a burst, and each passing on is one exchange to every connected peer.
NEWS_PER_SLOT = 8


@dataclass
class Claim:
    address: PeerAddress
    source: PeerId  # who announced it
    failures: int = 0


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
                 on_para_peer: Callable[[PeerId], None] | None = None,
                 on_dialable: Callable[[PeerId], None] | None = None,
                 dials: Callable[[PeerId], bool] | None = None,
                 max_known: int = MAX_KNOWN) -> None:
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
        # A relay peer's address just entered the address book: the relay gossip, which dials
        # its members once a slot, may dial this one now.
        self.on_dialable = on_dialable or (lambda _peer: None)
        # Whether the relay gossip would dial this peer itself (of two relay nodes, one dials):
        # then the link a verification opened is kept rather than closed and dialled again.
        self.dials = dials or (lambda _peer: False)
        # Verified addresses, oldest verification first (see the module docstring).
        self.known: dict[PeerId, PeerAddress] = {}
        self.max_known = max_known
        self.claims: dict[PeerId, Claim] = {}  # announced, not verified yet; oldest first
        self._verifying: set[PeerId] = set()
        self._known_failures: dict[PeerId, int] = {}
        self._round = 0  # rounds of `run` so far (one a slot)
        self._verified_round: dict[PeerId, int] = {}
        self.forgotten = 0  # addresses dropped after failing, or evicted
        # The chain spec's roster: only these may be announced as validators.
        self.validators = validators
        self.log = log
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()  # set when bootnodes are learnt: dial them without a slot's wait
        self._news_due = False  # a passing on of news is scheduled (see `_pass_on_news`)
        self._news_sent_at = float("-inf")
        net.on_direct(PeerExchange, self._on_exchange)
        net.peers.add_listener(self)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                while True:
                    self._round += 1
                    await self._bootstrap()
                    self._verify_some()
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
        if remote == self.me.identity:
            await conn.aclose()
            return None
        self._note_address(remote, host, port, pin)
        return remote if await self.net.peers.keep_dialled(conn) else None

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
        others = [a for p, a in reversed(self.known.items()) if p != peer][: MAX_SHARED - 1]
        await self.net.send_direct(peer, PeerExchange([self.me, *others]))

    async def _on_exchange(self, peer: PeerId, msg: PeerExchange) -> None:
        if len(msg.peers) > MAX_SHARED:
            self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
            return
        for i, addr in enumerate(msg.peers):
            if addr.identity == self.me.identity:
                continue
            # The first entry is the sender itself: its listen address (still to be verified:
            # the link proves who it is, not where it listens).
            if i == 0 and addr.identity != peer:
                self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
                return
            if addr.role == PeerRole.VALIDATOR and addr.identity not in self.validators:
                self.net.peers.report(peer, COST_UNEXPECTED_MESSAGE)
                continue  # claims a validator seat the chain spec does not give it
            self._claim(peer, addr)
        self._verify_some()

    # -- verification -------------------------------------------------------------------------

    def _claim(self, source: PeerId, addr: PeerAddress) -> None:
        """Note an announced address. One we verified, or a configured one, needs no dial (the
        role is all that may be new). Otherwise it waits for a verification dial if that dial
        disturbs nobody: the identity is connected to us already (its end refuses a second
        link, after the handshake that proves it), or it claims to be a relay node (a link
        between relay nodes that opens and closes costs nothing). A validator or collator we are
        not connected to is not dialled just to check (the link would open and close under its
        collator protocol): a validator's address goes to the address book only if it has none,
        so the relay gossip dials it there and the handshake proves it (and its own exchange
        then verifies it for passing on); a collator's is of no use to anyone but its para
        peers, who are configured."""
        known = self.known.get(addr.identity)
        if known is not None and (known.host, known.port) == (addr.host, addr.port):
            if known.role != addr.role and addr.identity == source:
                self.known[addr.identity] = addr  # a node says what it is
            return
        if addr.identity in self.pinned:
            book = self.host.addresses.get(addr.identity)
            if book is not None and addr.identity == source:
                # Verified by dialling the configured address; that address is what we pass on.
                self._record(PeerAddress(addr.identity, book[0], book[1], addr.role))
            return
        if not self.net.peers.is_connected(addr.identity) and not (
                addr.role == PeerRole.RELAY_NODE and addr.identity not in self.validators):
            if addr.role == PeerRole.VALIDATOR and addr.identity not in self.host.addresses:
                self.host.add_address(addr.identity, addr.host, addr.port)
                self.on_dialable(addr.identity)
            return
        held = self.claims.get(addr.identity)
        if held is not None:
            if held.address != addr and addr.identity == source:
                self.claims[addr.identity] = Claim(addr, source)  # its own word wins
            return
        if sum(1 for c in self.claims.values() if c.source == source) >= MAX_CLAIMS_PER_SOURCE:
            return
        while len(self.claims) >= MAX_CLAIMS:
            oldest = next(iter(self.claims))
            if oldest in self._verifying:
                return  # all slots are being dialled: this one waits for a later exchange
            del self.claims[oldest]
        self.claims[addr.identity] = Claim(addr, source)

    def _verify_some(self) -> None:
        """Start verification dials, up to `MAX_VERIFYING` at once: new claims first, then known
        peers that are not connected (so that a departed one is forgotten)."""
        if self._nursery is None:
            return
        stale = [a for p, a in self.known.items() if p not in self.pinned
                 and self._round - self._verified_round.get(p, 0) >= REVERIFY_ROUNDS
                 and not self.net.peers.is_connected(p)]
        for addr in [a for a in stale if a.role != PeerRole.RELAY_NODE]:
            self._forget(addr.identity)  # not to be dialled just to check (see `_claim`)
        stale = [a for a in stale if a.role == PeerRole.RELAY_NODE]
        for addr in [c.address for c in self.claims.values()] + stale:
            if len(self._verifying) >= MAX_VERIFYING:
                return
            if addr.identity not in self._verifying:
                self._verifying.add(addr.identity)
                self._nursery.start_soon(self._verify, addr)

    async def _verify(self, addr: PeerAddress) -> None:
        """Dial the claimed address; the handshake must prove the claimed identity there."""
        try:
            try:
                conn = await self.host.dial_address(addr.host, addr.port, expected=addr.identity)
            except TransportError:
                self._failed(addr)
                return
            if self.dials(addr.identity) and not self.net.peers.is_connected(addr.identity):
                # The link the relay gossip is about to dial: kept, so the peer does not see
                # this node come, go and come again.
                await self.net.peers.keep_dialled(conn)
            else:
                await conn.aclose()  # only the proof was wanted
            claim = self.claims.get(addr.identity)
            if claim is not None and claim.address == addr:
                del self.claims[addr.identity]
            self._known_failures.pop(addr.identity, None)
            self._verified_round[addr.identity] = self._round
            self._record(addr)
        finally:
            self._verifying.discard(addr.identity)

    def _failed(self, addr: PeerAddress) -> None:
        claim = self.claims.get(addr.identity)
        if claim is not None and claim.address == addr:
            claim.failures += 1
            if claim.failures >= MAX_FAILURES:
                del self.claims[addr.identity]
                self.forgotten += 1
            return
        if self.known.get(addr.identity) != addr:
            return
        failures = self._known_failures.get(addr.identity, 0) + 1
        self._known_failures[addr.identity] = failures
        if failures >= MAX_FAILURES:
            self._forget(addr.identity)

    def _record(self, addr: PeerAddress) -> None:
        """A verified address: into the book, `known` (newest last) and, for a relay node, the
        relay gossip."""
        peer = addr.identity
        new = peer not in self.known
        if new and not self._make_room():
            return
        self.known.pop(peer, None)
        self.known[peer] = addr
        if peer not in self.pinned:
            self.host.add_address(peer, addr.host, addr.port)
        if addr.role != PeerRole.COLLATOR:
            self.on_relay_peer(peer)
            self.on_dialable(peer)
        if new:
            if self.log is not None:
                self.log.info("peer discovered", peer="0x" + peer.hex()[:16],
                              address=f"{addr.host}:{addr.port}", role=addr.role)
            if not self._news_due and self._nursery is not None:
                self._news_due = True
                self._nursery.start_soon(self._pass_on_news)

    async def _pass_on_news(self) -> None:
        """Share what we know with every connected peer now rather than at the next round, once
        the last passing on is `1 / NEWS_PER_SLOT` of a slot old: what is verified meanwhile goes
        in the same exchange."""
        await trio.sleep_until(self._news_sent_at + self.slot_s / NEWS_PER_SLOT)
        self._news_due = False
        self._news_sent_at = trio.current_time()
        for peer in self.net.peers.connected_peers():
            await self._share(peer)

    def _make_room(self) -> bool:
        """Evict the entry verified longest ago that is neither connected nor pinned, if
        `known` is full; False if every entry is in use."""
        if len(self.known) < self.max_known:
            return True
        for peer in self.known:
            if peer not in self.pinned and not self.net.peers.is_connected(peer):
                self._forget(peer)
                return True
        return False

    def _forget(self, peer: PeerId) -> None:
        self.known.pop(peer, None)
        self._known_failures.pop(peer, None)
        self._verified_round.pop(peer, None)
        self.forgotten += 1
        if peer not in self.pinned and peer not in self.validators:
            self.host.addresses.pop(peer, None)
