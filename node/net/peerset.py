"""Peer reputation, bans and connection slots. Pure: time is an argument (seconds, virtual or not).

Scores follow Substrate's peer set and polkadot's unified reputation changes: misbehaviour costs,
useful behaviour earns, every score decays exponentially toward 0 so that old sins and old merits
fade, and a score below the ban threshold (one `MALICIOUS` report is enough) bans the peer: it is
disconnected and refused for at least `ban_window_s`, and for as long as its score stays under the
threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from node.net.transport import Direction
from proto.network import I32_MAX, I32_MIN, PeerId, ReputationChange

BANNED_THRESHOLD = -1_500_000_000
# Substrate takes 2 % off every score each second; continuous here, so a score halves in ~34 s
# (far inside the "halves at least every 140 s" requirement of the liveness checks).
DECAY_PER_SECOND = 0.98
BAN_WINDOW_S = 120.0  # at least; longer while the decaying score stays under the threshold
DEFAULT_MAX_INBOUND = 25
DEFAULT_MAX_OUTBOUND = 25


@dataclass
class _PeerRecord:
    score: float = 0.0
    updated_at: float = 0.0
    banned_until: float = -math.inf
    slot: Direction | None = None


class PeerSet:
    """Reputation and slot bookkeeping for the peers of one node."""

    def __init__(
        self,
        *,
        max_inbound: int = DEFAULT_MAX_INBOUND,
        max_outbound: int = DEFAULT_MAX_OUTBOUND,
        ban_threshold: int = BANNED_THRESHOLD,
        ban_window_s: float = BAN_WINDOW_S,
        decay_per_second: float = DECAY_PER_SECOND,
    ) -> None:
        if max_inbound < 0 or max_outbound < 0:
            raise ValueError("slot counts must be non-negative")
        if not 0.0 < decay_per_second <= 1.0:
            raise ValueError("decay_per_second must be in (0, 1]")
        self.max_inbound = max_inbound
        self.max_outbound = max_outbound
        self.ban_threshold = ban_threshold
        self.ban_window_s = ban_window_s
        self._log_decay = math.log(decay_per_second)
        self._peers: dict[PeerId, _PeerRecord] = {}
        self._slots_used = {Direction.INBOUND: 0, Direction.OUTBOUND: 0}

    # -- reputation -------------------------------------------------------------------------

    def _decayed(self, rec: _PeerRecord, now: float) -> float:
        elapsed = max(0.0, now - rec.updated_at)
        return rec.score * math.exp(self._log_decay * elapsed)

    def reputation(self, peer: PeerId, now: float) -> int:
        rec = self._peers.get(peer)
        return 0 if rec is None else int(self._decayed(rec, now))

    def report(self, peer: PeerId, change: ReputationChange, now: float) -> bool:
        """Apply `change`; returns True when the peer is banned afterwards (caller disconnects)."""
        rec = self._peers.setdefault(peer, _PeerRecord(updated_at=now))
        score = self._decayed(rec, now) + change.value
        rec.score = float(min(I32_MAX, max(I32_MIN, score)))
        rec.updated_at = max(rec.updated_at, now)
        if rec.score < self.ban_threshold:
            rec.banned_until = max(rec.banned_until, now + self.ban_window_s)
        return self.is_banned(peer, now)

    def is_banned(self, peer: PeerId, now: float) -> bool:
        rec = self._peers.get(peer)
        if rec is None:
            return False
        return now < rec.banned_until or self._decayed(rec, now) < self.ban_threshold

    def banned(self, now: float) -> list[PeerId]:
        return sorted(p for p in self._peers if self.is_banned(p, now))

    # -- slots ------------------------------------------------------------------------------

    def try_reserve(self, peer: PeerId, direction: Direction, now: float) -> bool:
        """Take a connection slot for `peer`, unless it is banned, already holds one, or the
        slots of that direction are full."""
        if self.is_banned(peer, now):
            return False
        rec = self._peers.get(peer)
        if rec is not None and rec.slot is not None:
            return False
        limit = self.max_inbound if direction is Direction.INBOUND else self.max_outbound
        if self._slots_used[direction] >= limit:
            return False
        rec = self._peers.setdefault(peer, _PeerRecord(updated_at=now))
        rec.slot = direction
        self._slots_used[direction] += 1
        return True

    def release(self, peer: PeerId) -> None:
        rec = self._peers.get(peer)
        if rec is None or rec.slot is None:
            return
        self._slots_used[rec.slot] -= 1
        rec.slot = None

    def slots_used(self, direction: Direction) -> int:
        return self._slots_used[direction]

    def holds_slot(self, peer: PeerId) -> bool:
        rec = self._peers.get(peer)
        return rec is not None and rec.slot is not None

    def prune(self, now: float) -> None:
        """Forget peers whose score has decayed to nothing, that are not banned and hold no slot,
        so the table stays bounded by the peers that matter."""
        for peer in [p for p, r in self._peers.items()
                     if r.slot is None and now >= r.banned_until
                     and abs(self._decayed(r, now)) < 1.0]:
            del self._peers[peer]

    def __len__(self) -> int:
        return len(self._peers)
