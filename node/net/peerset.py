"""Peer reputation with polkadot's named costs and benefits, bans for provable malice, and decay.

Scores live in [-2^31, 2^31). A peer whose score falls below `BANNED_THRESHOLD` is banned (one
`MALICIOUS` report is enough) for `BAN_SECONDS`; scores decay toward zero by half every
`HALF_LIFE_SECONDS`, so an honest peer that tripped on a few costs recovers. Time is an argument:
this module is pure and the same in simulation and in processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

BANNED_THRESHOLD = -1_500_000_000  # polkadot's `BANNED_THRESHOLD` is 82 % of i32::MIN
HALF_LIFE_SECONDS = 70.0  # an honest score halves at least every 140 virtual seconds (x2 margin)
BAN_SECONDS = 600.0
SCORE_MIN, SCORE_MAX = -(2**31), 2**31 - 1


class Rep(Enum):
    """Named reputation changes (value = score delta)."""

    COST_MINOR = -100_000
    COST_MAJOR = -300_000
    COST_UNEXPECTED_MESSAGE = -200_000
    COST_INVALID_SIGNATURE = -500_000
    COST_DECODE_ERROR = -150_000
    COST_OVERSIZED = -500_000
    COST_EXCESSIVE_SECONDED = -500_000
    COST_REQUEST_TIMEOUT = -50_000
    MALICIOUS = SCORE_MIN
    BENEFIT_VALID_MESSAGE = 10_000
    BENEFIT_NOTIFY_GOOD = 50_000


@dataclass
class PeerScore:
    score: float = 0.0
    updated_at: float = 0.0
    banned_until: float = 0.0
    history: list[tuple[float, str]] = field(default_factory=list)


class PeerSet:
    def __init__(self, max_history: int = 32) -> None:
        self.peers: dict[bytes, PeerScore] = {}
        self.max_history = max_history

    def _decayed(self, p: PeerScore, now: float) -> PeerScore:
        if now > p.updated_at and p.score:
            p.score *= 0.5 ** ((now - p.updated_at) / HALF_LIFE_SECONDS)
            if abs(p.score) < 1:
                p.score = 0.0
        p.updated_at = max(p.updated_at, now)
        return p

    def report(self, peer: bytes, change: Rep, now: float) -> bool:
        """Apply a named change; True if the peer is (now) banned."""
        p = self._decayed(self.peers.setdefault(peer, PeerScore(updated_at=now)), now)
        p.score = min(SCORE_MAX, max(SCORE_MIN, p.score + change.value))
        p.history = [*p.history, (now, change.name)][-self.max_history:]
        if p.score < BANNED_THRESHOLD:
            p.banned_until = now + BAN_SECONDS
        return self.is_banned(peer, now)

    def score(self, peer: bytes, now: float) -> float:
        p = self.peers.get(peer)
        return 0.0 if p is None else self._decayed(p, now).score

    def is_banned(self, peer: bytes, now: float) -> bool:
        p = self.peers.get(peer)
        return p is not None and now < p.banned_until

    def banned(self, now: float) -> list[bytes]:
        return [k for k in self.peers if self.is_banned(k, now)]
