"""Hands the services what they run on: a network stack over a `Host` (TCP or in-memory) and a
metrics registry, so `relay/service` and `collator/service.py` never construct either (they
name only the interfaces in `proto.ports`). The simulator, the process runner and the tests all
build services through these three functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from collator.core.collator_chain import CollatorChain
from collator.service import CollatorService, RelayChainInterface
from node.metrics import NodeMetrics
from node.net.peerset import BAN_WINDOW_S
from node.net.stack import NetworkStack
from node.net.transport import Host
from proto.keys import Keypair
from proto.network import (
    COST_MALFORMED_MESSAGE,
    COST_OVERSIZED_FRAME,
    COST_OVERSIZED_RESPONSE,
    PeerId,
    ReputationChange,
)
from proto.relay_block import RelayHeader
from relay.core.state import RelayState
from relay.service.full_node import RelayNodeService
from relay.service.validator import ValidatorService

Genesis = tuple[RelayHeader, RelayState]


def _plumbing(name: str, role: str, host: Host, slot_ms: int, metrics: NodeMetrics | None,
              log: Any, ban_window_s: float = BAN_WINDOW_S, reserved_slots: int = 0
              ) -> tuple[NetworkStack, NodeMetrics]:
    """The network stack and metrics of one node, with handler failures logged and counted;
    `reserved_slots` on top of the ordinary ones (a relay node's: one a relay peer)."""
    net = NetworkStack(host, slot_ms / 1000, ban_window_s=ban_window_s,
                       reserved_slots=reserved_slots)
    metrics = metrics or NodeMetrics(role, name)
    net.log_handler_failures(log, name, metrics.handler_errors)
    net.peers.add_report_listener(partial(_count_report, metrics))
    net.count_lanes(metrics.frames_over_budget, metrics.peer_bans, metrics.banned_refused)
    return net, metrics


# The costs that mean a peer's bytes did not decode (a malformed message, or a frame or response
# over its cap): what `asyncback_decode_errors_total` counts.
_DECODE_COSTS = frozenset({COST_MALFORMED_MESSAGE, COST_OVERSIZED_FRAME, COST_OVERSIZED_RESPONSE})


def _count_report(metrics: NodeMetrics, _peer: PeerId, change: ReputationChange,
                  _banned: bool) -> None:
    metrics.reputation_changes.labels(change.reason).inc()
    if change in _DECODE_COSTS:
        metrics.decode_errors.inc()


def relay_node(name: str, host: Host, genesis: Genesis, relay_peers: list[PeerId], *,
               metrics: NodeMetrics | None = None, log: Any = None,
               ban_window_s: float = BAN_WINDOW_S, **kw: Any) -> RelayNodeService:
    net, m = _plumbing(name, RelayNodeService.role, host, genesis[1].config.slot_ms, metrics, log,
                       ban_window_s, reserved_slots=len(relay_peers))
    return RelayNodeService(name, net, m, genesis, relay_peers, log=log, **kw)


def validator(name: str, key: Keypair, host: Host, genesis: Genesis,
              relay_peers: list[PeerId], *, metrics: NodeMetrics | None = None,
              log: Any = None, ban_window_s: float = BAN_WINDOW_S,
              **kw: Any) -> ValidatorService:
    net, m = _plumbing(name, ValidatorService.role, host, genesis[1].config.slot_ms, metrics, log,
                       ban_window_s, reserved_slots=len(relay_peers))
    return ValidatorService(name, key, net, m, genesis, relay_peers, log=log, **kw)


def collator(name: str, key: Keypair, para_id: int, host: Host, chain: CollatorChain,
             relay: RelayChainInterface, slot_ms: int, *, metrics: NodeMetrics | None = None,
             para_peers: Sequence[PeerId] = (), log: Any = None,
             ban_window_s: float = BAN_WINDOW_S, **kw: Any) -> CollatorService:
    net, m = _plumbing(name, CollatorService.role, host, slot_ms, metrics, log, ban_window_s)
    return CollatorService(name, key, para_id, net, m, chain, relay, slot_ms,
                           para_peers=para_peers, log=log, **kw)
