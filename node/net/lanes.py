"""Every queue between a peer and a node's handlers, its bound, and what happens when it is full.

A peer can send faster than a node can handle; nothing it sends may make the node hold more than a
fixed amount of memory for it, and a peer that keeps trying is charged until it is banned. The
lanes of a node and their policies (ARCHITECTURE.md has the same table):

| lane / queue | where | bound | when full |
|---|---|---|---|
| socket → reader | `tcp.py` `_StreamReader` | one record (largest frame cap + AEAD) plus one 64 KiB read | nothing is read: the kernel's window closes, TCP pushes back on the sender |
| frames of one peer | `peers.py` `PeerManager._read` | one frame at a time, its handler awaited before the next is read | as above: a slow handler slows only that peer's link |
| gossip lane (notifications) | `PeerManager` frame budget | `GOSSIP_FRAMES_PER_SLOT` per slot per peer, bursts of `BURST_SLOTS` slots | the newest frame is dropped unread and the peer charged `COST_FLOOD`: a flood ends in a ban |
| gossip messages, alone or in batches | `gossip.py` `Gossip` message budget | `GOSSIP_MESSAGES_PER_SLOT` per slot per peer, bursts of `BURST_SLOTS` slots; `MAX_BATCH` in one frame | a batch's envelopes past the budget are dropped unhandled and the peer charged `COST_FLOOD` for each (a batch is one frame to the lane's budget) |
| batched gossip waiting for a peer whose last flush is still being written | `gossip.py` `Gossip._outbox` | `MAX_OUTBOX` (4,096) envelopes per peer | the oldest queued envelope is dropped (the peer is not reading; its link closes at the stall limit) |
| direct lane (collator protocol, statements to the group) | `PeerManager` frame budget | `DIRECT_FRAMES_PER_SLOT` per slot per peer | dropped unread, `COST_FLOOD` |
| request lane | `PeerManager` frame budget, then `reqresp.py` per-kind cap of requests in flight per peer | `REQUEST_FRAMES_PER_SLOT` per slot; `max_inbound_per_peer` concurrent per kind | over the budget: refused at once (`STATUS_BUSY`, the requester's `RequestRefused`) and `COST_FLOOD`; over the concurrency cap: refused (`STATUS_BUSY`), not charged (an honest peer retrying can overlap itself) |
| response lanes | `reqresp.py` `_pending` | one slot per request we sent (a channel of 1) | a response nobody waits for is dropped and `COST_UNEXPECTED_MESSAGE`, unless it answers a request we gave up on (below) |
| requests given up on (timed out, or cancelled by their caller) | `reqresp.py` `_abandoned` | `ABANDONED_REMEMBERED` (1,024) per node | the oldest is forgotten (a response to it would then be charged); a late response to one that is remembered is dropped, not charged |
| outbound frames | `TcpConnection.send` | the socket's buffer; the sender task waits | a peer that takes nothing for `SEND_STALL_SLOTS` slots is disconnected (its frame is not half-written: the link is closed) |
| authenticated, not yet adopted links | `tcp.py` `TcpHost._incoming` | `max_unauthenticated` (64) | the new link is closed (counted in `refused_at_cap`) |
| handshakes in progress | `tcp.py` | `max_unauthenticated`, each within `handshake_timeout` | closed at accept |
| gossip seen-cache | `gossip.py` `SeenCache` | 65,536 ids, 600 s | the oldest id is forgotten |
| peer table (reputations) | `peerset.py` `PeerSet` | peers holding a slot or a ban or a score, pruned past `PEER_TABLE_SOFT_CAP` | peers with a decayed score and no slot or ban are forgotten |
| addresses learnt from peer exchanges | `discovery.py` `Discovery.known` (verified by a handshake at that address) and `Discovery.claims` (announced, not verified yet) | `MAX_KNOWN` 256; `MAX_CLAIMS` 256, 16 per sender | the known entry verified longest ago, not connected and not configured, is evicted; a claim over the caps is dropped; 3 failed dials forget an address |
| imported blocks → processing (control) | `relay/service/full_node.py` `_imported` | blocks already in the block tree (itself bounded by finality and pruning) | never dropped: each entry is a block the node has imported and must persist |
| best-head watchers (control) | `full_node.py`, `node/rpc/relay_interface.py` `watch_heads` | 16 heads per watcher | the watcher that fell behind is dropped (it re-subscribes) |
| RPC outbox per WebSocket | `node/rpc/server.py` | 512 messages | a response waits (the client's own reads pace it); a notification that finds it full closes the connection (1008) |
| RPC client subscription | `node/rpc/client.py` | `SUBSCRIPTION_BUFFER` notifications | the subscription is dropped (and unsubscribed) |
| PoV re-executions (backing, approval checks, dispute participation) | `relay/service/pov_execution.py` | `MAX_EXECUTIONS` worker threads | a candidate waits for a worker within its deadline, or is not backed / approved / voted on |
| approval gossip for blocks not known yet | `relay/core/approval/waiting.py` `WaitingRoom` (in `relay/service/approvals.py`) | `MAX_WAITING` 4,096 in all, `MAX_WAITING_PER_PEER` 512 per sender | over a sender's cap its own oldest goes and it is charged `COST_WAITING_OVER_CAP` (not while catching up); over the total the oldest goes |
| in-memory network (simulation) | `memory.py` | the frames the sending node put in flight (the simulated wire) | not a peer's queue: every sender is one of the simulation's own nodes |

Budgets count frames per slot, so one table holds at 1 s and at 6 s slots; honest traffic is far
inside them (per slot a peer forwards at most a block, a finality vote and a bitfield per
validator, and a few statements and backed candidates per core).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from proto.messages import Protocol

GOSSIP_FRAMES_PER_SLOT = 500
# Envelopes, batched or not: a neighbour on the grid passes on about three messages per validator
# a slot (an assignment, an approval, a finality vote), 900 at 300 validators, plus re-sends.
GOSSIP_MESSAGES_PER_SLOT = 8_000
DIRECT_FRAMES_PER_SLOT = 200
REQUEST_FRAMES_PER_SLOT = 200
BURST_SLOTS = 2
SEND_STALL_SLOTS = 10
PEER_TABLE_SOFT_CAP = 4096


@dataclass(frozen=True)
class Budget:
    """`rate` frames per second, at most `burst` at once."""

    rate: float
    burst: float


def lane_budgets(slot_s: float) -> dict[int, Budget]:
    """The inbound frame budget of each budgeted lane, per peer, at this slot length."""
    per_slot = {Protocol.GOSSIP: GOSSIP_FRAMES_PER_SLOT, Protocol.DIRECT: DIRECT_FRAMES_PER_SLOT,
                Protocol.REQUEST: REQUEST_FRAMES_PER_SLOT}
    return {int(lane): Budget(n / slot_s, n * BURST_SLOTS) for lane, n in per_slot.items()}


def gossip_message_budget(slot_s: float) -> Budget:
    return Budget(GOSSIP_MESSAGES_PER_SLOT / slot_s, GOSSIP_MESSAGES_PER_SLOT * BURST_SLOTS)


class TokenBucket:
    """A budget's state for one peer on one lane. Pure: time is an argument."""

    def __init__(self, budget: Budget, now: float) -> None:
        self.budget = budget
        self.tokens = budget.burst
        self.updated_at = now

    def take(self, now: float) -> bool:
        """Spend one token; False (nothing spent) when the budget is exhausted."""
        return self.take_up_to(1, now) == 1

    def take_up_to(self, n: int, now: float) -> int:
        """Spend up to `n` whole tokens; how many were spent (fewer when the budget runs out)."""
        # Every frame a peer sends passes here: comparisons rather than min/max calls.
        tokens = self.tokens
        if now > self.updated_at:
            budget = self.budget
            tokens += (now - self.updated_at) * budget.rate
            if tokens > budget.burst:
                tokens = budget.burst
            self.updated_at = now
        spent = int(tokens)
        if n < spent:
            spent = n
        self.tokens = tokens - spent
        return spent


class Throttle:
    """At most one log line per key every `interval_s`; says how many were held back meanwhile.
    Pure: time is an argument. Bounded: keys not seen for an interval are forgotten."""

    def __init__(self, interval_s: float, max_keys: int = 1024) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[object, float] = {}
        self._held: dict[object, int] = {}

    def allow(self, key: object, now: float) -> int | None:
        """None: stay quiet; otherwise log now, and the int is how many were held back."""
        last = self._last.get(key, -math.inf)
        if now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) >= self.max_keys:
            for k in [k for k, t in self._last.items() if now - t >= self.interval_s]:
                del self._last[k]
                self._held.pop(k, None)
            if len(self._last) >= self.max_keys:
                return None  # too many noisy keys at once: the excess is not even counted
        self._last[key] = now
        return self._held.pop(key, 0)
