"""What a node process tells its operator, beyond the events its services log (blocks imported and
authored, collations built): Substrate's informant, in a few lines a 30-minute log stays readable
with.

- every `interval_s` one summary: peers, best and finalized block, sync target while syncing, the
  p2p traffic rates (a collator: its para's best and included block);
- finality: the first finalized block, then at most one line per `FINALITY_LINE_S` saying how far
  it moved; a warning when it has stood still while the chain grew `STALL_BLOCKS` blocks, and a
  line when it moves again;
- peers connecting and disconnecting, with their address (at most one line per peer and event
  per `PEER_LINE_S`, the rest counted);
- misbehaving peers: a warning with the reason and the peer's reputation, at most one per peer
  per `MISBEHAVIOUR_LINE_S` with the number of reports it stands for; a ban always warned about
  (throttled the same way);
- inbound connections refused at the handshake cap, and failed handshakes, summed per interval
  (ten thousand hostile connections are one warning every few seconds, not ten thousand lines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from node.net.tcp import TcpHost
from node.throttle import THROTTLE_KEYS, Throttle
from proto.network import PeerId, ReputationChange
from relay.service.full_node import RelayNodeService

INTERVAL_S = 5.0
FINALITY_LINE_S = 30.0
STALL_BLOCKS = 10
PEER_LINE_S = 10.0
MISBEHAVIOUR_LINE_S = 30.0


def short(raw: bytes) -> str:
    """A peer id or hash as the logs write it: 0x and its first 8 bytes."""
    return "0x" + raw.hex()[:16]


def _rate(n_bytes: float, seconds: float) -> str:
    per_s = n_bytes / max(seconds, 1e-9)
    return f"{per_s / 1024:.1f}kiB/s"


class Informant:
    def __init__(self, service: Any, host: TcpHost, log: Any, *, interval_s: float = INTERVAL_S,
                 clock: Callable[[], float] = trio.current_time) -> None:
        """`clock`: what the per-peer rate limits and ban checks read (the peer manager's clock);
        the periodic lines keep trio's time."""
        self.service = service
        self.host = host
        self.log = log
        self.interval_s = interval_s
        self._clock = clock
        self._addresses: dict[PeerId, str] = {}
        self._peer_lines = Throttle(PEER_LINE_S, clock)
        self._misbehaviour = Throttle(MISBEHAVIOUR_LINE_S, clock)
        self._relay = isinstance(service, RelayNodeService)
        # Finality as last reported, and since when it stood still.
        self._finalized_logged = -1
        self._finality_line_at = -FINALITY_LINE_S
        self._stalled_since_best: int | None = None
        self._stall_warned = False
        self._last_finalized = 0
        self._last_bytes = (0, 0)
        self._last_refused = 0
        self._last_failures = 0
        peers = service.net.peers
        peers.add_listener(self)
        peers.add_report_listener(self.peer_reported)

    # -- peers ---------------------------------------------------------------------------------

    def _address(self, peer: PeerId) -> str:
        for conn in self.host.connections():
            if conn.remote == peer:
                host, port = conn.address
                return f"{host}:{port}"
        return self._addresses.get(peer, "?")

    def peer_connected(self, peer: PeerId) -> None:
        address = self._address(peer)
        if len(self._addresses) < THROTTLE_KEYS:
            self._addresses[peer] = address
        held = self._peer_lines.allow(("connected", peer))
        if held is not None:
            self.log.info("peer connected", peer=short(peer), address=address,
                          peers=len(self.service.net.peers.connected_peers()),
                          **({"reconnects_not_logged": held} if held else {}))

    def peer_disconnected(self, peer: PeerId) -> None:
        address = self._addresses.pop(peer, "?")
        held = self._peer_lines.allow(("disconnected", peer))
        if held is not None:
            banned = self.service.net.peers.peerset.is_banned(peer, self._clock())
            self.log.info("peer disconnected", peer=short(peer), address=address,
                          peers=len(self.service.net.peers.connected_peers()),
                          **({"reason": "banned"} if banned else {}),
                          **({"disconnects_not_logged": held} if held else {}))

    def peer_reported(self, peer: PeerId, change: ReputationChange, banned: bool) -> None:
        if change.value >= 0:
            return
        key = ("banned" if banned else "misbehaved", peer)
        held = self._misbehaviour.allow(key)
        if held is None:
            return
        peers = self.service.net.peers
        self.log.warning("peer banned" if banned else "peer misbehaved", peer=short(peer),
                         address=self._address(peer), reason=change.reason, cost=change.value,
                         reputation=peers.peerset.reputation(peer, self._clock()),
                         **({"more_reports": held, "in_s": MISBEHAVIOUR_LINE_S} if held else {}))

    # -- the periodic lines --------------------------------------------------------------------

    async def run(self) -> None:
        started = trio.current_time()
        next_summary = started + self.interval_s
        last_summary = started
        while True:
            await trio.sleep(min(1.0, self.interval_s))
            if self._relay:
                self._finality()
            now = trio.current_time()
            if now >= next_summary:
                self._summary(now - last_summary)
                self._handshakes()
                last_summary, next_summary = now, now + self.interval_s

    def _finality(self) -> None:
        chain = self.service.chain
        finalized, best = chain.finalized, chain.best
        now = trio.current_time()
        if finalized.number > self._last_finalized:
            self._last_finalized = finalized.number
            resumed = self._stall_warned
            self._stalled_since_best, self._stall_warned = best.number, False
            if resumed or self._finalized_logged < 0 \
                    or now - self._finality_line_at >= FINALITY_LINE_S:
                moved = finalized.number - max(self._finalized_logged, 0)
                self.log.info("finality resumed" if resumed else "finalized",
                              number=finalized.number, hash=short(finalized.hash()),
                              blocks=moved, best=best.number)
                self._finalized_logged, self._finality_line_at = finalized.number, now
            return
        if self._stalled_since_best is None:
            self._stalled_since_best = best.number
        grown = best.number - self._stalled_since_best
        if grown >= STALL_BLOCKS and not self._stall_warned and not self.service.is_syncing:
            self._stall_warned = True
            self.log.warning("finality stalled", finalized=finalized.number,
                             hash=short(finalized.hash()), best=best.number,
                             blocks_since=grown)

    def _traffic(self, seconds: float) -> dict[str, str]:
        stats = self.host.stats
        down, up = stats.bytes_received, stats.bytes_sent
        last_down, last_up = self._last_bytes
        self._last_bytes = (down, up)
        return {"down": _rate(down - last_down, seconds), "up": _rate(up - last_up, seconds)}

    def _summary(self, seconds: float) -> None:
        service = self.service
        peers = len(service.net.peers.connected_peers())
        traffic = self._traffic(seconds)
        if self._relay:
            chain = service.chain
            best, finalized = chain.best, chain.finalized
            heads = {"best": f"#{best.number} ({short(best.hash())})",
                     "finalized": f"#{finalized.number} ({short(finalized.hash())})"}
            if service.is_syncing:
                self.log.info("syncing", peers=peers, target=f"#{service.best_seen}", **heads,
                              **traffic)
            else:
                self.log.info("idle", peers=peers, **heads, **traffic)
            return
        chain = service.chain  # a collator's: its para's blocks
        best_hash = chain.chain.highest
        best = chain.chain.header(best_hash)
        included = chain.chain.header(chain.included_hash) \
            if chain.included_hash in chain.chain else None
        self.log.info("idle", peers=peers, para=service.para_id,
                      para_best=f"#{best.number} ({short(best_hash)})",
                      para_included=(f"#{included.number} ({short(chain.included_hash)})"
                                     if included is not None else "unknown (syncing)"),
                      built=service.stats.built, seconded=service.stats.seconded, **traffic)

    def _handshakes(self) -> None:
        stats = self.host.stats
        refused = stats.refused_at_cap
        failures = sum(stats.inbound_failures.values())
        if refused > self._last_refused:
            self.log.warning("inbound connections refused: too many handshakes at once",
                             refused=refused - self._last_refused, in_s=self.interval_s,
                             cap=self.host.max_unauthenticated)
        if failures > self._last_failures:
            self.log.warning("inbound handshakes failed", failed=failures - self._last_failures,
                             in_s=self.interval_s, by_kind=dict(stats.inbound_failures))
        self._last_refused, self._last_failures = refused, failures
